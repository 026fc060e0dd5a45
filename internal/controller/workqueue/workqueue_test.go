package workqueue

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestDeduplicates(t *testing.T) {
	q := New()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if q.Len() != 2 {
		t.Fatalf("len %d, want 2", q.Len())
	}
	k, _ := q.Get()
	if k != "a" {
		t.Fatalf("first key %q", k)
	}
	// Added while processing: not handed out until Done.
	q.Add("a")
	k2, _ := q.Get()
	if k2 != "b" {
		t.Fatalf("second key %q, want b (a is being processed)", k2)
	}
	if q.Len() != 0 {
		t.Fatalf("len %d while a is processed, want 0", q.Len())
	}
	q.Done("a")
	if q.Len() != 1 {
		t.Fatalf("a was not requeued after Done")
	}
	q.Done("b")
	if k, _ := q.Get(); k != "a" {
		t.Fatalf("got %q", k)
	}
	q.Done("a")
	if q.Len() != 0 {
		t.Fatalf("len %d, want 0", q.Len())
	}
}

func TestNeverTwoWorkersOnOneKey(t *testing.T) {
	q := New()
	var mu sync.Mutex
	busy := map[string]bool{}
	handled := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				k, ok := q.Get()
				if !ok {
					return
				}
				mu.Lock()
				if busy[k] {
					t.Errorf("key %q handed to two workers", k)
				}
				busy[k] = true
				mu.Unlock()
				mu.Lock()
				busy[k] = false
				handled++
				mu.Unlock()
				q.Done(k)
			}
		})
	}
	for i := range 1000 {
		q.Add([]string{"a", "b", "c"}[i%3])
	}
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() > 0 && time.Now().Before(deadline) {
		<-time.After(time.Millisecond)
	}
	q.ShutDown()
	wg.Wait()
	if handled == 0 {
		t.Fatal("nothing handled")
	}
}

func TestAddAfterAndRetry(t *testing.T) {
	q := New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.RunTimers(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	q.AddAfter("later", 50*time.Millisecond)
	q.AddAfter("sooner", 10*time.Millisecond)
	k, _ := q.Get()
	if k != "sooner" {
		t.Fatalf("first due %q", k)
	}
	q.Done(k)
	k, _ = q.Get()
	if k != "later" || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("second %q after %v", k, time.Since(start))
	}
	q.Done(k)

	q.Retry("x") // 100 ms
	q.Retry("x") // 200 ms: a second failure doubles
	if q.failures["x"] != 2 {
		t.Fatalf("failures %d", q.failures["x"])
	}
	k, _ = q.Get()
	if k != "x" {
		t.Fatalf("retry %q", k)
	}
	q.Done(k)
	q.Forget("x")
	if _, ok := q.failures["x"]; ok {
		t.Fatal("Forget kept the failures")
	}
}

func TestShutDownWakesGet(t *testing.T) {
	q := New()
	got := make(chan bool)
	go func() {
		_, ok := q.Get()
		got <- ok
	}()
	q.ShutDown()
	select {
	case ok := <-got:
		if ok {
			t.Fatal("Get after ShutDown returned a key")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not wake on ShutDown")
	}
	q.Add("a")
	if q.Len() != 0 {
		t.Fatal("Add after ShutDown queued a key")
	}
}
