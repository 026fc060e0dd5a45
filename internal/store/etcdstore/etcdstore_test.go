package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/embedetcd"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/storetest"
	"github.com/berth-dev/berth/internal/store/watchcache"
)

// startEtcd starts an embedded member the way `berth server` does, and the
// stores below reach it only through its endpoints, as with
// --etcd-endpoints.
func startEtcd(t *testing.T) *embedetcd.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedetcd.Start(ctx, embedetcd.Config{Dir: t.TempDir(), UnsafeNoFsync: true})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func newStore(t *testing.T, endpoints []string, prefix string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, Config{Endpoints: endpoints, Prefix: prefix, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := startEtcd(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		// One etcd for every subtest; prefixes keep them apart.
		return newStore(t, srv.Endpoints(), fmt.Sprintf("/conformance%d", n.Add(1)))
	}, storetest.Options{
		Compact: func(t *testing.T, s store.Store, rev int64) {
			if err := s.(*Store).Compact(context.Background(), rev); err != nil {
				t.Fatalf("Compact: %v", err)
			}
		},
		MaxTxnOps: 128, // etcd's default, which embedetcd keeps
	})
}

// TestConformanceCached runs the suite through the watch cache on etcd, the
// way the server reads.
func TestConformanceCached(t *testing.T) {
	srv := startEtcd(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		s := newStore(t, srv.Endpoints(), fmt.Sprintf("/cached%d", n.Add(1)))
		t.Cleanup(func() { s.Close() })
		c, err := watchcache.New(context.Background(), s, "/")
		if err != nil {
			t.Fatalf("watchcache.New: %v", err)
		}
		return watchcache.NewCachedStore(s, c)
	}, storetest.Options{MaxTxnOps: 128})
}

// TestPrefixIsolation checks that "/berth" sees nothing of "/berth2", the
// case a plain string prefix would get wrong.
func TestPrefixIsolation(t *testing.T) {
	srv := startEtcd(t)
	ctx := context.Background()
	a := newStore(t, srv.Endpoints(), "/berth")
	defer a.Close()
	b := newStore(t, srv.Endpoints(), "/berth2")
	defer b.Close()

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wa := a.Watch(wctx, "", 0)
	if _, err := b.Txn(ctx, nil, []store.Op{store.Put("/k", []byte("b"))}); err != nil {
		t.Fatal(err)
	}
	rev, err := a.Txn(ctx, nil, []store.Op{store.Put("/k", []byte("a"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "/"} {
		kvs, _, err := a.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != 1 || string(kvs[0].Value) != "a" || kvs[0].Key != "/k" {
			t.Fatalf("List(%q) under /berth = %+v, want only its own /k", prefix, kvs)
		}
	}
	select {
	case resp := <-wa:
		if resp.Err != nil || len(resp.Events) != 1 || resp.Events[0].KV.ModRevision != rev || resp.Events[0].KV.Key != "/k" {
			t.Fatalf("watch under /berth got %+v, want only its own put at %d", resp, rev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	if _, err := a.Get(ctx, "k"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("key without leading / under a prefix: %v, want ErrInvalidArgument", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx := context.Background()
	_, err = New(ctx, Config{Endpoints: []string{"http://" + addr}, Prefix: "/berth", DialTimeout: 500 * time.Millisecond})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("New against a closed port: %v, want ErrUnavailable", err)
	}
	if _, err := New(ctx, Config{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("New without endpoints: %v", err)
	}
}

// TestWatchEndsWhenStoreCloses checks that a watch whose client goes away
// reports an error instead of hanging.
func TestWatchEndsWhenStoreCloses(t *testing.T) {
	srv := startEtcd(t)
	s := newStore(t, srv.Endpoints(), "/berth")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Watch(ctx, "/", 0)
	s.Close()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				t.Fatal("channel closed without an error")
			}
			if resp.Err != nil {
				if _, ok := <-ch; ok {
					t.Fatal("channel open after the error")
				}
				return
			}
		case <-deadline:
			t.Fatal("watch still open after Close")
		}
	}
}
