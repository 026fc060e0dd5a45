package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Commit runs attempt, which reads what it needs and returns a transaction,
// and applies that transaction; when a condition fails it starts again from
// the read, at most attempts times, waiting a little (with jitter, so
// competing writers do not collide again in lockstep) and for a cached
// store to hold what beat it. An attempt that returns no ops commits
// nothing. attempt may be called several times, so it must not keep state
// from an earlier call other than what it overwrites.
//
// attempt's own errors come back unchanged; store failures come back as
// Unexpected(err); a conflict on the last attempt as errdefs.ErrConflict.
func Commit(ctx context.Context, st Store, attempts int, attempt func() ([]Cond, []Op, error)) error {
	for i := 0; ; i++ {
		conds, ops, err := attempt()
		if err != nil {
			return err
		}
		if len(ops) == 0 {
			return nil
		}
		_, err = st.Txn(ctx, conds, ops)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			return Unexpected(err)
		}
		if i+1 >= attempts {
			return &errdefs.Error{Kind: errdefs.ErrConflict, Message: "concurrent update", Cause: err}
		}
		// The next attempt must read what beat this one, not a cache that
		// has not applied it yet.
		if err := Sync(ctx, st); err != nil {
			return Unexpected(err)
		}
		d := time.Duration(1<<min(i, 5)) * time.Millisecond
		if !sleep(ctx, d+rand.N(d)) {
			return ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Unexpected wraps a store failure a request did not expect: its caller
// answers a server fault (unavailable when the store is) and logs the
// cause.
func Unexpected(err error) error {
	if errors.Is(err, errdefs.ErrUnavailable) {
		return &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "store unavailable", Cause: err}
	}
	return errdefs.Internal(err)
}
