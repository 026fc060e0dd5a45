package account

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/store"
)

// joinTokenPrefix holds one JoinToken per key, by token id.
const joinTokenPrefix = "/v1/iam/join-tokens/"

// Lifetimes of join tokens.
const (
	DefaultJoinTokenTTL = 24 * time.Hour
	MinJoinTokenTTL     = time.Minute
	MaxJoinTokenTTL     = 365 * 24 * time.Hour
)

// JoinToken is the server's record of a join token. It holds a hash of the
// secret, never the secret. A token joins any number of agents until it
// expires (see docs/adr/0006-join-tokens.md).
type JoinToken struct {
	ID         string    `json:"id"`
	SecretHash string    `json:"secretHash"` // jointoken.HashSecret
	Cluster    string    `json:"cluster"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// InstanceCredentials are what a redeemed join token yields: the access
// key of a fresh instance user and the cluster the agent joins.
type InstanceCredentials struct {
	UserName        string // i-<16 hex>
	ARN             string // arn:aws:iam::<account>:user/berth/instances/<UserName>
	AccessKeyID     string
	SecretAccessKey string
	Cluster         string
}

// CreateJoinToken stores a new join token for cluster ("" means "default")
// valid for ttl (0 means DefaultJoinTokenTTL) from now, and returns its
// record and its secret; the secret is not stored and cannot be shown
// again. Tokens that have expired are removed in the same transaction, so
// the records do not pile up.
func CreateJoinToken(ctx context.Context, st store.Store, cluster string, ttl time.Duration, now time.Time) (JoinToken, string, error) {
	if cluster == "" {
		cluster = ecs.DefaultClusterName
	}
	if err := ecs.ValidateClusterName(cluster); err != nil {
		return JoinToken{}, "", err
	}
	if ttl == 0 {
		ttl = DefaultJoinTokenTTL
	}
	if ttl < MinJoinTokenTTL || ttl > MaxJoinTokenTTL {
		return JoinToken{}, "", errdefs.InvalidArgument(fmt.Sprintf(
			"a join token's lifetime must be between %s and %s (%d days); got %s", MinJoinTokenTTL, MaxJoinTokenTTL, MaxJoinTokenTTL/(24*time.Hour), ttl))
	}
	id, err := jointoken.NewID()
	if err != nil {
		return JoinToken{}, "", err
	}
	secret, err := jointoken.NewSecret()
	if err != nil {
		return JoinToken{}, "", err
	}
	now = now.UTC()
	rec := JoinToken{ID: id, SecretHash: jointoken.HashSecret(secret), Cluster: cluster, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	put, err := store.PutJSON(joinTokenPrefix+id, rec)
	if err != nil {
		return JoinToken{}, "", err
	}
	ops := []store.Op{put}
	old, _, err := store.ListJSON[JoinToken](ctx, st, joinTokenPrefix)
	if err != nil {
		return JoinToken{}, "", err
	}
	for _, t := range old {
		if !now.Before(t.ExpiresAt) && jointoken.ValidateID(t.ID) == nil {
			ops = append(ops, store.Delete(joinTokenPrefix+t.ID))
		}
	}
	// Expired records are immutable, so deleting them needs no condition;
	// the new id is random, so "must not exist" fails only by a miracle.
	if _, err := st.Txn(ctx, []store.Cond{{Key: joinTokenPrefix + id}}, ops); err != nil {
		return JoinToken{}, "", err
	}
	return rec, secret, nil
}

// RedeemJoinToken checks a token id and secret and, when they are valid and
// unexpired, creates an instance user (path iam.InstancePath) with one
// access key, in one transaction, and returns its credentials. The token
// stays valid: one token joins many agents until it expires. An unknown,
// wrong or expired token is an error of kind errdefs.ErrAccessDenied whose
// message says which.
func RedeemJoinToken(ctx context.Context, st store.Store, acct Account, id, secret string, now time.Time) (InstanceCredentials, error) {
	if jointoken.ValidateID(id) != nil {
		return InstanceCredentials{}, errdefs.New(errdefs.ErrAccessDenied, "the join token id is malformed; copy the whole token again")
	}
	key := joinTokenPrefix + id
	for attempt := 0; attempt < 5; attempt++ {
		tok, rev, err := store.GetJSON[JoinToken](ctx, st, key)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			return InstanceCredentials{}, errdefs.New(errdefs.ErrAccessDenied, fmt.Sprintf(
				"join token %s is not known to this server (it belongs to another server, or it expired and was removed); create one with `berth token create`", id))
		case err != nil:
			return InstanceCredentials{}, err
		}
		// The secret is checked before anything about the token is told.
		if !jointoken.SecretMatches(secret, tok.SecretHash) {
			return InstanceCredentials{}, errdefs.New(errdefs.ErrAccessDenied, fmt.Sprintf(
				"the secret of join token %s is wrong; copy the whole token again", id))
		}
		if !now.Before(tok.ExpiresAt) {
			return InstanceCredentials{}, errdefs.New(errdefs.ErrAccessDenied, fmt.Sprintf(
				"join token %s expired at %s; create a new one with `berth token create`", id, tok.ExpiresAt.UTC().Format(time.RFC3339)))
		}
		creds, ops, conds, err := newInstanceUser(acct, tok.Cluster, now)
		if err != nil {
			return InstanceCredentials{}, err
		}
		// The token must be the one just checked: a token deleted meanwhile
		// (revoked) joins nobody.
		conds = append(conds, store.Cond{Key: key, ModRevision: rev})
		_, err = st.Txn(ctx, conds, ops)
		if errors.Is(err, errdefs.ErrConflict) {
			continue
		}
		if err != nil {
			return InstanceCredentials{}, err
		}
		return creds, nil
	}
	return InstanceCredentials{}, errdefs.Conflict("could not create the instance user; try again")
}

// CreateInstanceUser creates an instance user and its access key without a
// join token, for an agent the server process itself starts (`berth up`),
// where no token needs to change hands. cluster "" means "default".
func CreateInstanceUser(ctx context.Context, st store.Store, acct Account, cluster string, now time.Time) (InstanceCredentials, error) {
	if cluster == "" {
		cluster = ecs.DefaultClusterName
	}
	if err := ecs.ValidateClusterName(cluster); err != nil {
		return InstanceCredentials{}, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		creds, ops, conds, err := newInstanceUser(acct, cluster, now)
		if err != nil {
			return InstanceCredentials{}, err
		}
		_, err = st.Txn(ctx, conds, ops)
		if errors.Is(err, errdefs.ErrConflict) {
			continue // a random name or key id collided: draw again
		}
		if err != nil {
			return InstanceCredentials{}, err
		}
		return creds, nil
	}
	return InstanceCredentials{}, errdefs.Conflict("could not create the instance user; try again")
}

// newInstanceUser builds the user and access-key records of a new instance
// and the transaction parts that create them.
func newInstanceUser(acct Account, cluster string, now time.Time) (InstanceCredentials, []store.Op, []store.Cond, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return InstanceCredentials{}, nil, nil, errdefs.Internal(err)
	}
	name := "i-" + hex.EncodeToString(b)
	userID, err := randomID("AIDA")
	if err != nil {
		return InstanceCredentials{}, nil, nil, err
	}
	akid, secret, err := newAccessKey()
	if err != nil {
		return InstanceCredentials{}, nil, nil, err
	}
	now = now.UTC()
	arn := iam.InstanceARNPrefix(acct.ID) + name
	user := User{UserName: name, Path: iam.InstancePath, UserID: userID, ARN: arn, CreateDate: now}
	key := AccessKey{AccessKeyID: akid, SecretAccessKey: secret, UserName: name, Status: "Active", CreateDate: now}
	putUser, err := store.PutJSON(userKeyPrefix+name, user)
	if err != nil {
		return InstanceCredentials{}, nil, nil, err
	}
	putKey, err := store.PutJSON(accessKeyPrefix+akid, key)
	if err != nil {
		return InstanceCredentials{}, nil, nil, err
	}
	creds := InstanceCredentials{UserName: name, ARN: arn, AccessKeyID: akid, SecretAccessKey: secret, Cluster: cluster}
	conds := []store.Cond{{Key: userKeyPrefix + name}, {Key: accessKeyPrefix + akid}}
	return creds, []store.Op{putUser, putKey}, conds, nil
}
