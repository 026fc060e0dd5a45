package memstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New() }, storetest.Options{
		Compact: func(t *testing.T, s store.Store, rev int64) {
			if err := s.(*Store).Compact(rev); err != nil {
				t.Fatalf("Compact: %v", err)
			}
		},
		MaxTxnOps: DefaultMaxTxnOps,
	})
}

func put(t *testing.T, s *Store, key string) int64 {
	t.Helper()
	rev, err := s.Txn(context.Background(), nil, []store.Op{store.Put(key, []byte("v"))})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// recv returns the next response, failing after a deadline.
func recv(t *testing.T, ch <-chan store.WatchResponse) (store.WatchResponse, bool) {
	t.Helper()
	select {
	case resp, ok := <-ch:
		return resp, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response")
		return store.WatchResponse{}, false
	}
}

func TestBoundedHistory(t *testing.T) {
	s := New(WithHistory(4))
	defer s.Close()
	var revs []int64
	for i := range 20 {
		revs = append(revs, put(t, s, fmt.Sprintf("/k%d", i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _ := recv(t, s.Watch(ctx, "/", revs[0]))
	if !errors.Is(resp.Err, store.ErrCompacted) {
		t.Fatalf("watch beyond the history: %+v, want ErrCompacted", resp)
	}
	// The last 4 transactions are always retained.
	resp, _ = recv(t, s.Watch(ctx, "/", revs[15]))
	if resp.Err != nil || len(resp.Events) != 4 || resp.Events[0].KV.ModRevision != revs[16] {
		t.Fatalf("watch within the history: %+v", resp)
	}
}

// TestSlowWatcherIsCutOff checks that a watcher nobody reads never blocks a
// writer, and learns it fell behind as ErrCompacted.
func TestSlowWatcherIsCutOff(t *testing.T) {
	s := New(WithWatchBacklog(3))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Watch(ctx, "/", 0)
	first := put(t, s, "/first")
	// The watcher goroutine may already hold the first txn; either way the
	// backlog overflows well before 10 more.
	for i := range 10 {
		put(t, s, fmt.Sprintf("/k%d", i))
	}
	// Before the cut-off the watcher may receive what its goroutine had
	// already taken (in order, from the first revision on, possibly several
	// transactions in one response), but never all eleven transactions.
	var sawErr error
	next := first
	for sawErr == nil {
		resp, ok := recv(t, ch)
		if !ok {
			t.Fatal("channel closed without an error")
		}
		if resp.Err != nil {
			sawErr = resp.Err
			break
		}
		for _, ev := range resp.Events {
			if ev.KV.ModRevision != next {
				t.Fatalf("slow watcher got revision %d, want %d: %+v", ev.KV.ModRevision, next, resp)
			}
			next++
		}
	}
	if delivered := next - first; delivered >= 11 {
		t.Fatalf("slow watcher received all %d transactions; the backlog of 3 was never exceeded", delivered)
	}
	if !errors.Is(sawErr, store.ErrCompacted) {
		t.Fatalf("cut-off error %v, want ErrCompacted", sawErr)
	}
	if _, ok := recv(t, ch); ok {
		t.Fatal("channel not closed after the error")
	}
}

func TestClose(t *testing.T) {
	s := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Watch(ctx, "/", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	resp, _ := recv(t, ch)
	if !errors.Is(resp.Err, errdefs.ErrUnavailable) {
		t.Fatalf("open watch after Close: %+v, want ErrUnavailable", resp)
	}
	if _, err := s.Txn(ctx, nil, []store.Op{store.Put("/k", nil)}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Txn after Close: %v", err)
	}
	if _, err := s.Get(ctx, "/k"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCompactFuture(t *testing.T) {
	s := New()
	defer s.Close()
	rev := put(t, s, "/k")
	if err := s.Compact(rev + 1); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Compact(future) = %v", err)
	}
}

func BenchmarkTxn(b *testing.B) {
	s := New()
	defer s.Close()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Txn(ctx, nil, []store.Op{store.Put(fmt.Sprintf("/k%d", i%1000), []byte("v"))}); err != nil {
			b.Fatal(err)
		}
	}
}
