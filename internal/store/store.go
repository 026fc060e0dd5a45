// Package store defines berth's state-store port: a key-value store with
// revisions, compare-and-swap on a key's mod revision, multi-key
// transactions and watches that resume from a revision.
//
// Two implementations exist: store/etcdstore (embedded or external etcd, the
// source of truth in production) and store/memstore (in-memory, for fast
// tests). Both pass the conformance suite in store/storetest. Values are
// opaque bytes here; JSON helpers in this package give typed access. The key
// layout is documented in docs/architecture/store-keys.md.
package store

import (
	"context"
	"errors"
)

// KV is one stored key and its value at a revision.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the revision that created the key.
	CreateRevision int64
	// ModRevision is the revision of the last change to the key. It is the
	// token for compare-and-swap (see Cond).
	ModRevision int64
}

// Cond is a transaction precondition on one key.
//
// ModRevision == 0 means "the key must not exist"; any other value means
// "the key must exist with exactly this mod revision".
type Cond struct {
	Key         string
	ModRevision int64
}

// OpType says what an Op does.
type OpType int

const (
	OpPut OpType = iota + 1
	OpDelete
)

// Op is one write inside a transaction.
type Op struct {
	Type  OpType
	Key   string
	Value []byte // for OpPut
}

// Put returns an OpPut.
func Put(key string, value []byte) Op { return Op{Type: OpPut, Key: key, Value: value} }

// Delete returns an OpDelete. Deleting an absent key is not an error.
func Delete(key string) Op { return Op{Type: OpDelete, Key: key} }

// EventType says what happened to a key.
type EventType int

const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one change seen by a watch. For EventDelete, KV.Value is nil
// and KV.ModRevision is the revision of the deletion.
type Event struct {
	Type EventType
	KV   KV
}

// WatchResponse is a batch of events, all from revisions ≤ Revision; events
// of one transaction always arrive in one response. Err, when set, ends the
// watch: the channel is closed right after it.
type WatchResponse struct {
	Events []Event
	// Revision is the store revision this response brings the watcher up to.
	Revision int64
	Err      error
}

// ErrCompacted is returned (in WatchResponse.Err) when a watch asks for a
// revision that the store has already discarded; the watcher must re-list.
var ErrCompacted = errors.New("store: requested revision has been compacted")

// Reader reads state. Both Store and a watch-fed cache implement it.
type Reader interface {
	// Get returns the key's current value, or an error of kind
	// errdefs.ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key that starts with prefix, sorted by key, and the
	// revision the listing was read at.
	List(ctx context.Context, prefix string) ([]KV, int64, error)
}

// Syncer is a Store whose reads may lag transactions committed by others
// (a watch-fed cache). Sync returns once reads reflect every transaction
// committed before the call.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Sync waits until reads of st reflect every transaction committed before
// the call. It is a no-op for stores that always read the latest state.
// Callers use it before answering "not found" for a key that another
// process (or another watcher) may just have seen written.
func Sync(ctx context.Context, st Store) error {
	if s, ok := st.(Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

// Store is the state-store port.
type Store interface {
	Reader

	// Txn applies ops atomically if every cond holds and returns the
	// revision of the commit. When a cond fails, nothing is written and the
	// error is of kind errdefs.ErrConflict. A Txn with no ops and true
	// conds writes nothing and returns the current revision.
	Txn(ctx context.Context, conds []Cond, ops []Op) (int64, error)

	// Watch streams every change to keys under prefix with a revision
	// greater than afterRev, in revision order, until ctx is cancelled
	// (the channel is then closed). afterRev 0 means "from now".
	Watch(ctx context.Context, prefix string, afterRev int64) <-chan WatchResponse

	// Revision returns the store's current revision.
	Revision(ctx context.Context) (int64, error)

	// Close releases the store's resources.
	Close() error
}

// Follow calls apply with each response of a watch until the watch reports
// an error, closes, or ctx ends, and returns that error and whether any
// response arrived (a watcher that made progress may resume at once).
func Follow(ctx context.Context, ch <-chan WatchResponse, apply func(WatchResponse)) (progressed bool, err error) {
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				return progressed, errWatchClosed
			}
			if resp.Err != nil {
				return progressed, resp.Err
			}
			apply(resp)
			progressed = true
		case <-ctx.Done():
			return progressed, ctx.Err()
		}
	}
}

var errWatchClosed = errors.New("watch closed")
