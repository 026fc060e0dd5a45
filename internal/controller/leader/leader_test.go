package leader

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/store/memstore"
)

const ttl = 300 * time.Millisecond

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// TestOneLeaderAtATime runs three contenders; at no moment do two run
// their controller, and when the leader dies (its process stops renewing)
// another takes over.
func TestOneLeaderAtATime(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	var running, maxRunning atomic.Int32
	leaders := make(chan string, 16)
	ctxs := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c"} {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[id] = cancel
		wg.Go(func() {
			Run(ctx, Config{Store: st, Name: "svc", ID: id, TTL: ttl}, func(lctx context.Context) {
				n := running.Add(1)
				for {
					m := maxRunning.Load()
					if n <= m || maxRunning.CompareAndSwap(m, n) {
						break
					}
				}
				leaders <- id
				<-lctx.Done()
				running.Add(-1)
			})
		})
	}
	first := <-leaders
	// Let the others observe the lease for several TTLs: none may take it.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		select {
		case id := <-leaders:
			t.Fatalf("%s became leader while %s renews", id, first)
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctxs[first]() // the leader goes away without releasing
	select {
	case second := <-leaders:
		if second == first {
			t.Fatalf("the stopped contender led again")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nobody took over a stale lease")
	}
	for _, cancel := range ctxs {
		cancel()
	}
	wg.Wait()
	if maxRunning.Load() != 1 {
		t.Fatalf("%d controllers ran at once", maxRunning.Load())
	}
}

// TestSameIDTakesBackAtOnce: a restarted server (same id, from its data
// directory) need not wait out its own lease.
func TestSameIDTakesBackAtOnce(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		Run(ctx, Config{Store: st, Name: "svc", ID: "x", TTL: time.Hour}, func(lctx context.Context) {
			started <- struct{}{}
			<-lctx.Done()
		})
		close(done)
	}()
	<-started
	cancel()
	<-done
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go Run(ctx2, Config{Store: st, Name: "svc", ID: "x", TTL: time.Hour}, func(lctx context.Context) {
		started <- struct{}{}
		<-lctx.Done()
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the same id waited for its own lease")
	}
}

// TestLeaderStepsDownWhenTakenOver: a lease overwritten by another holder
// cancels the controller.
func TestLeaderStepsDownWhenTakenOver(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var lost atomic.Bool
	go Run(ctx, Config{Store: st, Name: "svc", ID: "a", TTL: ttl}, func(lctx context.Context) {
		<-lctx.Done()
		lost.Store(true)
	})
	waitUntil(t, "a lease", func() bool {
		_, err := st.Get(context.Background(), KeyPrefix+"svc")
		return err == nil
	})
	e := &election{cfg: Config{Store: st, Name: "svc", ID: "b", TTL: ttl, Clock: realClock{}}, key: KeyPrefix + "svc"}
	kv, err := st.Get(context.Background(), KeyPrefix+"svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.write(context.Background(), kv.ModRevision); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the old leader to step down", lost.Load)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
