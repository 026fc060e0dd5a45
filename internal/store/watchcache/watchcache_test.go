package watchcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
	"github.com/berth-dev/berth/internal/store/storetest"
)

// cachedMem lets the suite's Compact reach the memstore under the cache.
type cachedMem struct {
	store.Store
	mem *memstore.Store
}

func newCachedMem(t *testing.T, prefix string) cachedMem {
	mem := memstore.New()
	t.Cleanup(func() { mem.Close() })
	c, err := New(context.Background(), mem, prefix)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return cachedMem{Store: NewCachedStore(mem, c), mem: mem}
}

func TestConformance(t *testing.T) {
	for _, prefix := range []string{"", "/", "/w/"} {
		t.Run(fmt.Sprintf("prefix=%q", prefix), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return newCachedMem(t, prefix) }, storetest.Options{
				Compact: func(t *testing.T, s store.Store, rev int64) {
					if err := s.(cachedMem).mem.Compact(rev); err != nil {
						t.Fatal(err)
					}
				},
				MaxTxnOps: memstore.DefaultMaxTxnOps,
			})
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Txn(context.Background(), nil, []store.Op{store.Put(key, []byte(value))})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func newCache(t *testing.T, st store.Store, prefix string) *Cache {
	t.Helper()
	c, err := New(context.Background(), st, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestFollowsStore(t *testing.T) {
	ctx := ctxT(t)
	mem := memstore.New()
	defer mem.Close()
	put(t, mem, "/p/before", "1")
	put(t, mem, "/other", "x")
	c := newCache(t, mem, "/p/")

	if kv, err := c.Get(ctx, "/p/before"); err != nil || string(kv.Value) != "1" {
		t.Fatalf("listed key: %+v, %v", kv, err)
	}
	r1 := put(t, mem, "/p/b", "2")
	r2 := put(t, mem, "/p/a", "3")
	rdel, err := mem.Txn(ctx, nil, []store.Op{store.Delete("/p/before")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForRevision(ctx, rdel); err != nil {
		t.Fatal(err)
	}
	kvs, rev, err := c.List(ctx, "/p/")
	if err != nil {
		t.Fatal(err)
	}
	if rev != rdel || len(kvs) != 2 || kvs[0].Key != "/p/a" || kvs[0].ModRevision != r2 || kvs[1].Key != "/p/b" || kvs[1].ModRevision != r1 {
		t.Fatalf("List = %+v at %d", kvs, rev)
	}
	if _, err := c.Get(ctx, "/p/before"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	if _, err := c.Get(ctx, "/other"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Get outside the prefix: %v", err)
	}
	if _, _, err := c.List(ctx, "/"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("List wider than the prefix: %v", err)
	}
}

func TestWaitForRevision(t *testing.T) {
	ctx := ctxT(t)
	mem := memstore.New()
	defer mem.Close()
	c := newCache(t, mem, "/")
	rev := c.Revision()

	done := make(chan error, 1)
	go func() { done <- c.WaitForRevision(ctx, rev+1) }()
	select {
	case err := <-done:
		t.Fatalf("WaitForRevision returned %v before the write", err)
	default:
	}
	put(t, mem, "/k", "v")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("WaitForRevision did not return after the write")
	}

	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.WaitForRevision(short, rev+100); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitForRevision with cancelled ctx: %v", err)
	}
	c.Close()
	if err := c.WaitForRevision(ctx, rev+100); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("WaitForRevision after Close: %v", err)
	}
	if err := c.WaitForRevision(ctx, rev+1); err != nil {
		t.Fatalf("WaitForRevision of an applied revision after Close: %v", err)
	}
}

// flakyStore lets a test end the current watch with an error of its choice.
type flakyStore struct {
	*memstore.Store
	mu      sync.Mutex
	kill    chan error // the current watch ends with the error sent here
	watches int
	lists   int
}

func (f *flakyStore) Watch(ctx context.Context, prefix string, afterRev int64) <-chan store.WatchResponse {
	f.mu.Lock()
	f.watches++
	kill := f.kill
	f.mu.Unlock()
	in := f.Store.Watch(ctx, prefix, afterRev)
	out := make(chan store.WatchResponse)
	go func() {
		defer close(out)
		for {
			select {
			case resp, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- resp:
				case <-ctx.Done():
					return
				}
			case err := <-kill:
				select {
				case out <- store.WatchResponse{Err: err}:
				case <-ctx.Done():
				}
				return
			}
		}
	}()
	return out
}

func (f *flakyStore) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	f.mu.Lock()
	f.lists++
	f.mu.Unlock()
	return f.Store.List(ctx, prefix)
}

func (f *flakyStore) counts() (watches, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches, f.lists
}

func TestRecovers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantLists int
	}{
		// Compaction: the history is gone, only a new listing helps.
		{"compacted", fmt.Errorf("gone: %w", store.ErrCompacted), 2},
		// Anything else: resume from the applied revision, no listing.
		{"stream broke", errdefs.New(errdefs.ErrUnavailable, "connection reset"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			f := &flakyStore{Store: memstore.New(), kill: make(chan error)}
			defer f.Close()
			c := newCache(t, f, "/")
			// Resuming needs an applied revision; the empty store has none.
			if err := c.WaitForRevision(ctx, put(t, f, "/a", "1")); err != nil {
				t.Fatal(err)
			}
			f.kill <- tc.err // blocks until the cache's watch takes it
			// Writes while the cache is away must still arrive.
			put(t, f, "/b", "2")
			rev := put(t, f, "/a", "3")
			if err := c.WaitForRevision(ctx, rev); err != nil {
				t.Fatal(err)
			}
			kvs, _, _ := c.List(ctx, "/")
			if len(kvs) != 2 || string(kvs[0].Value) != "3" || string(kvs[1].Value) != "2" {
				t.Fatalf("after recovery: %+v", kvs)
			}
			if watches, lists := f.counts(); watches != 2 || lists != tc.wantLists {
				t.Fatalf("watches %d lists %d, want 2 and %d", watches, lists, tc.wantLists)
			}
		})
	}
}

// TestReadYourWrites checks that a write through CachedStore is visible to
// the next read through it, for puts and for delete-only transactions.
func TestReadYourWrites(t *testing.T) {
	ctx := ctxT(t)
	mem := memstore.New()
	defer mem.Close()
	c := newCache(t, mem, "/")
	s := NewCachedStore(mem, c)
	for i := range 200 {
		key := fmt.Sprintf("/k%d", i%7)
		if _, err := s.Txn(ctx, nil, []store.Op{store.Put(key, []byte(fmt.Sprint(i)))}); err != nil {
			t.Fatal(err)
		}
		if kv, err := s.Get(ctx, key); err != nil || string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("read after put %d: %+v, %v", i, kv, err)
		}
		if _, err := s.Txn(ctx, nil, []store.Op{store.Delete(key)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("read after delete %d: %v", i, err)
		}
	}
}

func TestCachedStoreCloseLeavesStoreOpen(t *testing.T) {
	ctx := ctxT(t)
	mem := memstore.New()
	defer mem.Close()
	s := NewCachedStore(mem, newCache(t, mem, "/"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Txn(ctx, nil, []store.Op{store.Put("/k", nil)}); err != nil {
		t.Fatalf("store after CachedStore.Close: %v", err)
	}
}

func fill(b *testing.B) *Cache {
	mem := memstore.New(memstore.WithMaxTxnOps(0))
	b.Cleanup(func() { mem.Close() })
	for c := range 10 {
		ops := make([]store.Op, 0, 1000)
		for t := range 1000 {
			ops = append(ops, store.Put(fmt.Sprintf("/v1/ecs/tasks/c%d/t%04d", c, t), []byte(`{"lastStatus":"RUNNING","desiredStatus":"RUNNING","cpu":"256","memory":"512"}`)))
		}
		if _, err := mem.Txn(context.Background(), nil, ops); err != nil {
			b.Fatal(err)
		}
	}
	cache, err := New(context.Background(), mem, "/")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	return cache
}

func BenchmarkCacheGet(b *testing.B) {
	c := fill(b)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Get(ctx, fmt.Sprintf("/v1/ecs/tasks/c%d/t%04d", i%10, i%1000)); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
}

func BenchmarkCacheList(b *testing.B) {
	c := fill(b)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			kvs, _, err := c.List(ctx, fmt.Sprintf("/v1/ecs/tasks/c%d/", i%10))
			if err != nil || len(kvs) != 1000 {
				b.Fatalf("List: %d, %v", len(kvs), err)
			}
			i++
		}
	})
}

// TestSyncSeesOthersWrites: a write that bypasses the cached store (another
// server, another watcher) is visible after store.Sync.
func TestSyncSeesOthersWrites(t *testing.T) {
	ctx := ctxT(t)
	mem := memstore.New()
	defer mem.Close()
	s := NewCachedStore(mem, newCache(t, mem, "/"))
	for i := range 100 {
		key := fmt.Sprintf("/other/%d", i)
		if _, err := mem.Txn(ctx, nil, []store.Op{store.Put(key, []byte("v"))}); err != nil {
			t.Fatal(err)
		}
		if err := store.Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		if kv, err := s.Get(ctx, key); err != nil || string(kv.Value) != "v" {
			t.Fatalf("after Sync, write %d not visible: %+v %v", i, kv, err)
		}
	}
	if err := store.Sync(ctx, mem); err != nil {
		t.Fatalf("Sync of a store without a cache: %v", err)
	}
}
