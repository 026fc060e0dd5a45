package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/awsapi"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
)

// anyResource is the IAM resource of actions that are not resource-scoped.
const anyResource = "*"

// authorize checks that the caller may perform ecs:<action> on resource.
// A request without a principal (which the router never lets through) is
// checked as the zero principal, which no authorizer allows.
func (h *handlers) authorize(ctx context.Context, action, resource string) error {
	p, _ := awsapi.PrincipalFrom(ctx)
	return h.authz.Authorize(ctx, p, "ecs:"+action, resource)
}

// caller returns the authenticated principal.
func caller(ctx context.Context) iam.Principal {
	p, _ := awsapi.PrincipalFrom(ctx)
	return p
}

// maxTxnAttempts bounds the compare-and-swap retries of one request. A
// conflict means another request changed the same keys between our read
// and our write; a few retries resolve any realistic contention.
const maxTxnAttempts = 16

// commit runs attempt, which reads what it needs and returns a transaction,
// and applies that transaction; it starts again from the read when a
// condition fails. An attempt that returns no ops commits nothing (the
// request needs no write). attempt may be called several times, so it must
// not keep state from an earlier call other than what it overwrites.
func (h *handlers) commit(ctx context.Context, attempt func() ([]store.Cond, []store.Op, error)) error {
	return h.commitN(ctx, maxTxnAttempts, attempt)
}

// commitN is commit with its own bound on attempts, for writes that many
// requests contend for (placement on the same instances).
func (h *handlers) commitN(ctx context.Context, attempts int, attempt func() ([]store.Cond, []store.Op, error)) error {
	return store.Commit(ctx, h.store, attempts, attempt)
}

// includeTags reads the include of a Describe action whose only field is
// TAGS: whether it asks for tags, or ECS's error for any other field.
func includeTags[F ~string](include []F, tags F) (bool, error) {
	for _, f := range include {
		if f != tags {
			return false, domain.InvalidParameter("include should be one of [TAGS]")
		}
	}
	return len(include) > 0, nil
}

// storeError wraps an unexpected store failure: the caller sees a
// ServerException; the cause goes to the log.
func storeError(err error) error { return store.Unexpected(err) }

// getSynced is get that, when the record is missing, waits once (per
// *synced, shared by a commit's attempts) for the cache to apply every
// committed transaction and reads again: a caller may know of a record (an
// agent from its channel, the controller from its watch) before this
// server's cache applied it.
func getSynced[T any](ctx context.Context, st store.Store, key string, synced *bool) (v T, modRev int64, found bool, err error) {
	v, modRev, found, err = get[T](ctx, st, key)
	if err != nil || found || *synced {
		return v, modRev, found, err
	}
	*synced = true
	if err := store.Sync(ctx, st); err != nil {
		return v, 0, false, storeError(err)
	}
	return get[T](ctx, st, key)
}

// get reads and decodes the record at key. found is false when the key does
// not exist; err is only set for store or decoding failures.
func get[T any](ctx context.Context, r store.Reader, key string) (v T, modRev int64, found bool, err error) {
	v, modRev, err = store.GetJSON[T](ctx, r, key)
	switch {
	case err == nil:
		return v, modRev, true, nil
	case errors.Is(err, errdefs.ErrNotFound):
		var zero T
		return zero, 0, false, nil
	default:
		return v, 0, false, storeError(err)
	}
}

// list reads and decodes every record under prefix, with its key, for a
// caller that may change them.
func list[T any](ctx context.Context, r store.Reader, prefix string) ([]keyed[T], error) {
	return listWith(ctx, r, prefix, decode[T])
}

// listView lists through a memo: the records are shared and read-only, and
// each is decoded once per change rather than on every call (list actions
// over thousands of revisions would otherwise decode them all each time).
func listView[T any](ctx context.Context, r store.Reader, prefix string, memo *store.Memo[T]) ([]keyed[T], error) {
	return listWith(ctx, r, prefix, memo.Decode)
}

func listWith[T any](ctx context.Context, r store.Reader, prefix string, dec func(store.KV) (T, error)) ([]keyed[T], error) {
	kvs, _, err := r.List(ctx, prefix)
	if err != nil {
		return nil, storeError(err)
	}
	out := make([]keyed[T], 0, len(kvs))
	for _, kv := range kvs {
		v, err := dec(kv)
		if err != nil {
			return nil, err
		}
		out = append(out, keyed[T]{Key: kv.Key, ModRevision: kv.ModRevision, Value: v})
	}
	return out, nil
}

// keyed is a decoded record with its key and mod revision.
type keyed[T any] struct {
	Key         string
	ModRevision int64
	Value       T
}

func decode[T any](kv store.KV) (T, error) {
	var v T
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, errdefs.Internal(fmt.Errorf("decode %s: %w", kv.Key, err))
	}
	return v, nil
}

// put returns an OpPut of v as JSON.
func put(key string, v any) (store.Op, error) {
	return store.PutJSON(key, v)
}

// now is the handler's clock, truncated to milliseconds as ECS's
// timestamps are.
func (h *handlers) now() time.Time {
	return h.clock.Now().UTC().Truncate(time.Millisecond)
}

// refLimits describe the list of references an action takes: the message
// for an empty list, and its field name and maximum length.
type refLimits struct {
	emptyMessage string
	field        string
	max          int
}

// clusterAndRefs is the prologue of the actions that name up to lim.max
// resources of one cluster: it resolves the cluster, authorizes action on
// the ARN each reference stands for (on "*" when there is no cluster or no
// reference, so that a denied caller learns nothing), and checks the count.
func (h *handlers) clusterAndRefs(ctx context.Context, action string, clusterParam *string, refs []string,
	arnOf func(cluster, ref string) string, lim refLimits) (string, error) {
	cluster, err := h.clusterRef(clusterParam)
	if err != nil {
		if aerr := h.authorize(ctx, action, anyResource); aerr != nil {
			return "", aerr
		}
		return "", err
	}
	if len(refs) == 0 {
		if err := h.authorize(ctx, action, anyResource); err != nil {
			return "", err
		}
		return "", domain.InvalidParameter(lim.emptyMessage)
	}
	for _, ref := range refs {
		if err := h.authorize(ctx, action, arnOf(cluster, ref)); err != nil {
			return "", err
		}
	}
	if len(refs) > lim.max {
		return "", domain.InvalidParameter(fmt.Sprintf("%s can have at most %d items.", lim.field, lim.max))
	}
	return cluster, nil
}
