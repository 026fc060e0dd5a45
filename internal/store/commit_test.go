package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

func TestCommit(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	defer st.Close()

	// A conflict is retried from the read; the second attempt wins.
	calls := 0
	err := store.Commit(ctx, st, 3, func() ([]store.Cond, []store.Op, error) {
		calls++
		if calls == 1 {
			// Someone else writes k between our read and our commit.
			if _, err := st.Txn(ctx, nil, []store.Op{store.Put("k", []byte("theirs"))}); err != nil {
				t.Fatal(err)
			}
			return []store.Cond{{Key: "k", ModRevision: 0}}, []store.Op{store.Put("k", []byte("ours"))}, nil
		}
		kv, err := st.Get(ctx, "k")
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: "k", ModRevision: kv.ModRevision}}, []store.Op{store.Put("k", []byte("ours"))}, nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Commit = %v after %d attempts, want nil after 2", err, calls)
	}
	if kv, _ := st.Get(ctx, "k"); string(kv.Value) != "ours" {
		t.Fatalf("k = %q", kv.Value)
	}

	// Always conflicting: a conflict after the last attempt.
	calls = 0
	err = store.Commit(ctx, st, 3, func() ([]store.Cond, []store.Op, error) {
		calls++
		return []store.Cond{{Key: "k", ModRevision: 0}}, []store.Op{store.Put("k", nil)}, nil
	})
	if !errors.Is(err, errdefs.ErrConflict) || calls != 3 {
		t.Fatalf("Commit = %v after %d attempts, want a conflict after 3", err, calls)
	}

	// No ops: nothing written; the attempt's own error comes back as is.
	if err := store.Commit(ctx, st, 3, func() ([]store.Cond, []store.Op, error) { return nil, nil, nil }); err != nil {
		t.Fatal(err)
	}
	mine := errdefs.InvalidArgument("bad")
	if err := store.Commit(ctx, st, 3, func() ([]store.Cond, []store.Op, error) { return nil, nil, mine }); err != mine {
		t.Fatalf("attempt error became %v", err)
	}
}
