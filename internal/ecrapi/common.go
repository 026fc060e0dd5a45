package ecrapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// anyResource is the IAM resource of actions that are not resource-scoped.
const anyResource = "*"

// authorize checks that the caller may perform ecr:<action> on resource,
// as ecsapi does for ecs:<action>. A request without a principal (which
// the router never lets through) is checked as the zero principal, which no
// authorizer allows.
func (h *handlers) authorize(ctx context.Context, action, resource string) error {
	p, _ := awsapi.PrincipalFrom(ctx)
	return h.authz.Authorize(ctx, p, ecr.Namespace+":"+action, resource)
}

// maxTxnAttempts bounds the compare-and-swap retries of one request.
const maxTxnAttempts = 16

// commit runs attempt and applies its transaction, starting again from
// the read when a condition fails (store.Commit).
func (h *handlers) commit(ctx context.Context, attempt func() ([]store.Cond, []store.Op, error)) error {
	return store.Commit(ctx, h.store, maxTxnAttempts, attempt)
}

// storeError wraps an unexpected store failure: the caller sees a
// ServerException; the cause goes to the log.
func storeError(err error) error { return store.Unexpected(err) }

// now is the handler's clock, truncated to milliseconds as ECR's
// timestamps are.
func (h *handlers) now() time.Time {
	return h.clock.Now().UTC().Truncate(time.Millisecond)
}

var registryIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// registryID resolves the optional registryId parameter: "" means the
// caller's registry, which is the only one berth serves.
func (h *handlers) registryID(param *string) (string, error) {
	id := aws.ToString(param)
	if id == "" {
		return h.account, nil
	}
	if !registryIDPattern.MatchString(id) {
		return "", ecr.InvalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''")
	}
	return id, nil
}

// repoTarget is a repository an action names: its name, registry and ARN.
type repoTarget struct {
	name     string
	registry string
	arn      string
}

// target is the prologue of the actions on one repository: it resolves the
// registry, authorizes action on the repository's ARN (on "*" when the
// name or registry is malformed, so that a denied caller learns nothing)
// and validates the name.
func (h *handlers) target(ctx context.Context, action string, registryParam, nameParam *string) (repoTarget, error) {
	name := aws.ToString(nameParam)
	reg, regErr := h.registryID(registryParam)
	nameErr := ecr.ValidateRepositoryName(name)
	if regErr != nil || nameErr != nil {
		if err := h.authorize(ctx, action, anyResource); err != nil {
			return repoTarget{}, err
		}
		if regErr != nil {
			return repoTarget{}, regErr
		}
		return repoTarget{}, nameErr
	}
	t := repoTarget{name: name, registry: reg, arn: ecr.RepositoryARN(h.region, reg, name)}
	if err := h.authorize(ctx, action, t.arn); err != nil {
		return repoTarget{}, err
	}
	return t, nil
}

// repository reads the record of t, which must exist (a repository of
// another registry never does here).
func (h *handlers) repository(ctx context.Context, t repoTarget) (ecr.Repository, int64, error) {
	if t.registry != h.account {
		return ecr.Repository{}, 0, ecr.RepositoryNotFound(t.name, t.registry)
	}
	r, rev, found, err := getRepository(ctx, h.store, t.name)
	if err != nil {
		return r, 0, err
	}
	if !found {
		return r, 0, ecr.RepositoryNotFound(t.name, t.registry)
	}
	return r, rev, nil
}

// getRepository reads a repository record. found is false when there is
// none; a cached store is synced before it says so, so that a repository
// created through another server is seen.
func getRepository(ctx context.Context, st store.Store, name string) (ecr.Repository, int64, bool, error) {
	key := ecr.RepositoryKey(name)
	for synced := false; ; synced = true {
		r, rev, err := store.GetJSON[ecr.Repository](ctx, st, key)
		switch {
		case err == nil:
			return r, rev, true, nil
		case !errors.Is(err, errdefs.ErrNotFound):
			return r, 0, false, storeError(fmt.Errorf("read %s: %w", key, err))
		case synced:
			return ecr.Repository{}, 0, false, nil
		}
		if err := store.Sync(ctx, st); err != nil {
			return ecr.Repository{}, 0, false, storeError(err)
		}
	}
}

// updateRepository applies change to the record of t in a compare-and-swap
// loop and returns the record as written. change may be called more than
// once; it returns false when nothing needs writing.
func (h *handlers) updateRepository(ctx context.Context, t repoTarget, change func(*ecr.Repository) (bool, error)) (ecr.Repository, error) {
	var out ecr.Repository
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		r, rev, err := h.repository(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		changed, err := change(&r)
		out = r
		if err != nil || !changed {
			return nil, nil, err
		}
		op, err := store.PutJSON(ecr.RepositoryKey(t.name), r)
		if err != nil {
			return nil, nil, errdefs.Internal(err)
		}
		return []store.Cond{{Key: ecr.RepositoryKey(t.name), ModRevision: rev}}, []store.Op{op}, nil
	})
	return out, err
}
