// Package workqueue is the controllers' queue of keys to reconcile: a key
// added many times is handed out once, a key is never handed to two
// workers at once (added while being processed, it is handed out again
// after Done), keys may be added after a delay, and failed keys are
// retried with a per-key exponential back-off. It holds keys, never
// events: a reconciler reads the current state of whatever a key names.
package workqueue

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Retry back-off bounds.
const (
	retryBase = 100 * time.Millisecond
	retryMax  = 30 * time.Second
)

// Queue is a deduplicating work queue of string keys.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string        // keys ready to hand out, oldest first
	dirty      map[string]bool // keys queued or to requeue after Done
	processing map[string]bool
	failures   map[string]int
	delayed    delayHeap
	wakeTimers chan struct{} // pokes RunTimers when delayed changes
	shut       bool
}

// New returns an empty queue. Delayed adds need RunTimers running.
func New() *Queue {
	q := &Queue{
		dirty: map[string]bool{}, processing: map[string]bool{}, failures: map[string]int{},
		wakeTimers: make(chan struct{}, 1),
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it is queued already.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shut || q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return // Done queues it again
	}
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter queues key once d has passed.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shut {
		return
	}
	heap.Push(&q.delayed, delayed{key: key, at: time.Now().Add(d)})
	select {
	case q.wakeTimers <- struct{}{}:
	default:
	}
}

// Retry queues key after its back-off, which doubles with each failure
// until Forget.
func (q *Queue) Retry(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	q.AddAfter(key, min(retryMax, retryBase<<min(n, 20)))
}

// Forget resets key's back-off.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Get blocks until a key is ready and hands it out; ok is false once the
// queue is shut down. The caller must call Done(key).
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shut {
		q.cond.Wait()
	}
	if q.shut {
		return "", false
	}
	key = q.order[0]
	q.order = q.order[1:]
	delete(q.dirty, key)
	q.processing[key] = true
	return key, true
}

// Done marks key processed; if it was added meanwhile, it is queued again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] && !q.shut {
		q.order = append(q.order, key)
		q.cond.Signal()
	}
}

// Len is the number of keys ready to hand out.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// ShutDown wakes every Get with ok false and drops what is queued.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shut = true
	q.cond.Broadcast()
}

// RunTimers moves delayed keys to the queue when they are due, until ctx
// ends.
func (q *Queue) RunTimers(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := time.Now()
		for len(q.delayed) > 0 && !q.delayed[0].at.After(now) {
			d := heap.Pop(&q.delayed).(delayed)
			q.addLocked(d.key)
		}
		next := time.Hour
		if len(q.delayed) > 0 {
			next = q.delayed[0].at.Sub(now)
		}
		q.mu.Unlock()
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-q.wakeTimers:
		case <-timer.C:
		}
	}
}

type delayed struct {
	key string
	at  time.Time
}

type delayHeap []delayed

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
