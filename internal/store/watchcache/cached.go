package watchcache

import (
	"context"

	"github.com/berth-dev/berth/internal/store"
)

// CachedStore is a store.Store that reads from a Cache and writes to the
// store under it, with read-your-writes: Txn returns once the cache shows
// the transaction's effect, so a Get right after a Txn sees it.
//
// Reads outside the cache's prefix go to the store. Watch and Revision go to
// the store. Close closes the cache only: the store belongs to whoever
// opened it, and may have other users.
type CachedStore struct {
	st    store.Store
	cache *Cache
}

var _ store.Store = (*CachedStore)(nil)

// NewCachedStore reads through c and writes to st; c must be a cache of st.
func NewCachedStore(st store.Store, c *Cache) store.Store {
	return &CachedStore{st: st, cache: c}
}

// Get implements store.Reader; the value must not be modified.
func (s *CachedStore) Get(ctx context.Context, key string) (store.KV, error) {
	if key != "" && s.cache.covers(key) {
		return s.cache.Get(ctx, key)
	}
	return s.st.Get(ctx, key)
}

// List implements store.Reader; the values must not be modified.
func (s *CachedStore) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	if s.cache.covers(prefix) {
		return s.cache.List(ctx, prefix)
	}
	return s.st.List(ctx, prefix)
}

// Txn implements store.Store. After the commit it waits for the cache:
//   - a put under the prefix produces an event at the commit revision, so
//     it waits for that revision;
//   - deletes alone may produce no event (deleting an absent key takes no
//     revision), so it waits until each deleted key is gone from the cache,
//     or was re-created later, or the cache reached the commit revision.
//
// If ctx ends or the cache stops while waiting, Txn still returns the
// commit revision and no error: the write is done, and a caller whose
// context has ended reads nothing more.
func (s *CachedStore) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	rev, err := s.st.Txn(ctx, conds, ops)
	if err != nil {
		return rev, err
	}
	put := false
	var deleted []string
	for _, op := range ops {
		if !s.cache.covers(op.Key) {
			continue
		}
		if op.Type == store.OpPut {
			put = true
		} else {
			deleted = append(deleted, op.Key)
		}
	}
	c := s.cache
	switch {
	case put:
		_ = c.WaitForRevision(ctx, rev)
	case len(deleted) > 0:
		_ = c.waitUntil(ctx, func() bool {
			if c.rev >= rev {
				return true
			}
			for _, k := range deleted {
				if kv, ok := c.data[k]; ok && kv.ModRevision <= rev {
					return false
				}
			}
			return true
		})
	}
	return rev, nil
}

// Sync implements store.Syncer: it reads the store's current revision and
// waits until the cache has applied it.
func (s *CachedStore) Sync(ctx context.Context) error {
	rev, err := s.st.Revision(ctx)
	if err != nil {
		return err
	}
	return s.cache.WaitForRevision(ctx, rev)
}

// Watch implements store.Store by delegating to the store.
func (s *CachedStore) Watch(ctx context.Context, prefix string, afterRev int64) <-chan store.WatchResponse {
	return s.st.Watch(ctx, prefix, afterRev)
}

// Revision implements store.Store by delegating to the store.
func (s *CachedStore) Revision(ctx context.Context) (int64, error) { return s.st.Revision(ctx) }

// Close closes the cache, not the store.
func (s *CachedStore) Close() error {
	s.cache.Close()
	return nil
}
