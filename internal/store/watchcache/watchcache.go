// Package watchcache keeps an in-memory copy of everything under a prefix
// of a store.Store, fed by a watch, so that API handlers and controllers
// read without a round trip to etcd.
//
// The cache lists the prefix, then follows a watch. When the store has
// compacted the history the watch needs (or a watcher fell behind), it
// re-lists; on other watch errors it resumes from the last applied revision,
// with back-off. CachedStore adds read-your-writes on top: a Txn returns
// only once the cache shows its effect.
package watchcache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// Back-off between failed attempts to follow the store. The first retry is
// immediate: a compaction or a dropped stream is routine.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// ErrClosed is the cause of errors from a Cache whose goroutine has ended
// (Close was called or New's context ended).
var ErrClosed = errors.New("watchcache: closed")

// Cache is a watch-fed copy of a prefix. It implements store.Reader.
//
// Values returned by Get and List are shared with the cache and with other
// callers: they must not be modified.
type Cache struct {
	st     store.Store
	prefix string
	cancel context.CancelFunc
	done   chan struct{} // closed when the follow goroutine has ended

	mu   sync.RWMutex // guards data, keys, rev and changed
	data map[string]store.KV
	keys []string // sorted keys of data
	rev  int64    // every change up to rev is applied
	// changed is closed and replaced whenever data or rev changes, waking
	// WaitForRevision and read-your-writes waiters.
	changed chan struct{}
}

var _ store.Reader = (*Cache)(nil)

// New lists prefix from st and starts following it. It fails if the first
// list fails; afterwards errors are retried until ctx ends or Close.
func New(ctx context.Context, st store.Store, prefix string) (*Cache, error) {
	runCtx, cancel := context.WithCancel(ctx)
	c := &Cache{
		st:      st,
		prefix:  prefix,
		cancel:  cancel,
		done:    make(chan struct{}),
		data:    map[string]store.KV{},
		changed: make(chan struct{}),
	}
	wctx, wcancel := context.WithCancel(runCtx)
	ch, err := c.listAndWatch(wctx)
	if err != nil {
		wcancel()
		cancel()
		return nil, err
	}
	go c.run(runCtx, ch, wcancel)
	return c, nil
}

// Close stops following the store and waits for the goroutine to end. Get
// and List keep serving the last state.
func (c *Cache) Close() {
	c.cancel()
	<-c.done
}

// Revision is the revision the cache has applied everything up to.
func (c *Cache) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// covers says whether key (or a List prefix) lies inside the cached prefix.
func (c *Cache) covers(key string) bool { return strings.HasPrefix(key, c.prefix) }

// Get implements store.Reader from memory. key must lie under the cache's
// prefix.
func (c *Cache) Get(ctx context.Context, key string) (store.KV, error) {
	if key == "" {
		return store.KV{}, errdefs.InvalidArgument("empty key")
	}
	if !c.covers(key) {
		return store.KV{}, errdefs.InvalidArgument(fmt.Sprintf("key %q is outside the cached prefix %q", key, c.prefix))
	}
	c.mu.RLock()
	kv, ok := c.data[key]
	c.mu.RUnlock()
	if !ok {
		return store.KV{}, &errdefs.Error{Kind: errdefs.ErrNotFound, Message: "not found", Cause: fmt.Errorf("key %q", key)}
	}
	return kv, nil
}

// List implements store.Reader from memory: keys under prefix, sorted, at
// the cache's revision. prefix must lie under the cache's prefix.
func (c *Cache) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	if !c.covers(prefix) {
		return nil, 0, errdefs.InvalidArgument(fmt.Sprintf("prefix %q is outside the cached prefix %q", prefix, c.prefix))
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	lo, _ := slices.BinarySearch(c.keys, prefix)
	hi := lo
	for hi < len(c.keys) && strings.HasPrefix(c.keys[hi], prefix) {
		hi++
	}
	var out []store.KV
	if hi > lo {
		out = make([]store.KV, hi-lo)
		for i, k := range c.keys[lo:hi] {
			out[i] = c.data[k]
		}
	}
	return out, c.rev, nil
}

// WaitForRevision blocks until the cache has applied rev. It returns early
// with ctx's error, or with an error of kind errdefs.ErrUnavailable once the
// cache has stopped.
//
// The cache advances only on changes under its prefix (and on progress
// reports, where the store sends them): waiting for the revision of a write
// elsewhere may block until the next change under the prefix.
func (c *Cache) WaitForRevision(ctx context.Context, rev int64) error {
	return c.waitUntil(ctx, func() bool { return c.rev >= rev })
}

// waitUntil blocks until cond, evaluated under c.mu after every change,
// holds.
func (c *Cache) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		c.mu.RLock()
		ok, changed := cond(), c.changed
		c.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			// One last look: the final change may have raced with the end.
			c.mu.RLock()
			ok := cond()
			c.mu.RUnlock()
			if ok {
				return nil
			}
			return &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "state cache stopped", Cause: ErrClosed}
		}
	}
}

// broadcast wakes every waiter. Callers hold c.mu for writing.
func (c *Cache) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// listAndWatch opens a watch from now, then lists, and replaces the cache's
// contents with the listing. Watching first leaves no gap between the two:
// events the listing already contains are skipped by apply.
func (c *Cache) listAndWatch(ctx context.Context) (<-chan store.WatchResponse, error) {
	ch := c.st.Watch(ctx, c.prefix, 0)
	kvs, rev, err := c.st.List(ctx, c.prefix)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", c.prefix, err)
	}
	data := make(map[string]store.KV, len(kvs))
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		data[kv.Key] = kv
		keys[i] = kv.Key
	}
	// The port promises sorted lists; do not trust it with the index.
	if !slices.IsSorted(keys) {
		slices.Sort(keys)
	}
	c.mu.Lock()
	c.data, c.keys, c.rev = data, keys, rev
	c.broadcast()
	c.mu.Unlock()
	return ch, nil
}

// run follows the store until ctx ends. ch is the open watch and wcancel
// ends it.
func (c *Cache) run(ctx context.Context, ch <-chan store.WatchResponse, wcancel context.CancelFunc) {
	defer close(c.done)
	failures := 0
	for {
		progressed, err := store.Follow(ctx, ch, c.apply)
		wcancel()
		if ctx.Err() != nil {
			return
		}
		if progressed {
			failures = 0
		}
		relist := errors.Is(err, store.ErrCompacted)
		for {
			if !clock.Sleep(ctx, backoff(failures)) {
				return
			}
			failures++
			var wctx context.Context
			wctx, wcancel = context.WithCancel(ctx)
			if !relist && c.Revision() > 0 {
				ch = c.st.Watch(wctx, c.prefix, c.Revision())
				break
			}
			// failures is reset only by progress, not by a good listing: a
			// watch that fails right after every listing must back off too.
			if ch, err = c.listAndWatch(wctx); err == nil {
				break
			}
			wcancel()
			relist = true
		}
	}
}

// apply applies one watch response, skipping events the cache already has
// (from a listing newer than the watch's start).
func (c *Cache) apply(resp store.WatchResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	base := c.rev
	changed := false
	for _, ev := range resp.Events {
		if ev.KV.ModRevision <= base {
			continue
		}
		changed = true
		key := ev.KV.Key
		_, exists := c.data[key]
		switch ev.Type {
		case store.EventPut:
			if !exists {
				i, _ := slices.BinarySearch(c.keys, key)
				c.keys = slices.Insert(c.keys, i, key)
			}
			c.data[key] = ev.KV
		case store.EventDelete:
			if exists {
				i, _ := slices.BinarySearch(c.keys, key)
				c.keys = slices.Delete(c.keys, i, i+1)
				delete(c.data, key)
			}
		}
		c.rev = max(c.rev, ev.KV.ModRevision)
	}
	if resp.Revision > c.rev {
		c.rev = resp.Revision
		changed = true
	}
	if changed {
		c.broadcast()
	}
}

func backoff(failures int) time.Duration {
	if failures == 0 {
		return 0
	}
	d := minBackoff << min(failures-1, 10)
	return min(d, maxBackoff)
}
