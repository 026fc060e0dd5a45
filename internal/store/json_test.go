package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

type rec struct{ N int }

func TestJSONHelpers(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	op, err := store.PutJSON("/k/a", rec{1})
	if err != nil {
		t.Fatal(err)
	}
	op2, _ := store.PutJSON("/k/b", rec{2})
	if _, err := st.Txn(ctx, nil, []store.Op{op, op2}); err != nil {
		t.Fatal(err)
	}
	v, rev, err := store.GetJSON[rec](ctx, st, "/k/a")
	if err != nil || v.N != 1 || rev == 0 {
		t.Fatalf("GetJSON: %+v %d %v", v, rev, err)
	}
	all, _, err := store.ListJSON[rec](ctx, st, "/k/")
	if err != nil || len(all) != 2 || all[1].N != 2 {
		t.Fatalf("ListJSON: %+v %v", all, err)
	}
	if _, err := st.Txn(ctx, nil, []store.Op{store.Put("/k/bad", []byte("{"))}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.GetJSON[rec](ctx, st, "/k/bad"); !errors.Is(err, errdefs.ErrInternal) {
		t.Fatalf("corrupt value: %v", err)
	}
	if _, err := store.PutJSON("/k/c", func() {}); !errors.Is(err, errdefs.ErrInternal) {
		t.Fatalf("unencodable value: %v", err)
	}
}

func TestMemoDecodesOncePerRevision(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	put := func(n int) {
		op, _ := store.PutJSON("/m", rec{n})
		if _, err := st.Txn(ctx, nil, []store.Op{op}); err != nil {
			t.Fatal(err)
		}
	}
	put(1)
	var m store.Memo[rec]
	kv, _ := st.Get(ctx, "/m")
	first, _ := m.Decode(kv)
	// Same revision, different bytes: the memo answers without decoding,
	// which proves it does not decode twice.
	kv.Value = []byte(`{"N":99}`)
	if again, _ := m.Decode(kv); again != first {
		t.Fatalf("memo decoded again: %+v", again)
	}
	put(2)
	if v, _, err := m.Get(ctx, st, "/m"); err != nil || v.N != 2 {
		t.Fatalf("after a change: %+v %v", v, err)
	}
	if _, _, err := m.Get(ctx, st, "/absent"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if v, _, err := m.Get(ctx, st, "/m"); err != nil || v.N != 2 {
					t.Errorf("concurrent: %+v %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
