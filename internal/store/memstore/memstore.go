// Package memstore is an in-memory store.Store for tests and for tools that
// need no durability. It passes the store/storetest conformance suite, and
// copies etcd's semantics where the port leaves room: one revision per
// writing transaction, none for a transaction that changes nothing,
// duplicate keys in one transaction rejected, a limit on ops per
// transaction, and a bounded history behind watches.
package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// Defaults for the options.
const (
	// DefaultHistory is how many writing transactions are kept for watches
	// that resume from a revision.
	DefaultHistory = 10000
	// DefaultWatchBacklog is how many transactions a watcher may fall behind
	// before it is cut off with an error wrapping store.ErrCompacted.
	DefaultWatchBacklog = 10000
	// DefaultMaxTxnOps matches etcd's default limit.
	DefaultMaxTxnOps = 128
)

// ErrClosed is returned (with kind errdefs.ErrUnavailable) after Close.
var ErrClosed = errors.New("memstore: closed")

// Option configures a Store.
type Option func(*Store)

// WithHistory keeps the last n writing transactions for Watch; a watch from
// an older revision gets store.ErrCompacted. n < 1 means 1.
func WithHistory(n int) Option { return func(s *Store) { s.historyMax = max(n, 1) } }

// WithWatchBacklog sets how many undelivered transactions a watcher may
// hold before it is cut off. n < 1 means 1.
func WithWatchBacklog(n int) Option { return func(s *Store) { s.backlogMax = max(n, 1) } }

// WithMaxTxnOps bounds the ops, and separately the conds, of one Txn;
// beyond it Txn fails with kind errdefs.ErrLimitExceeded. 0 means no limit.
func WithMaxTxnOps(n int) Option { return func(s *Store) { s.maxTxnOps = n } }

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	historyMax, backlogMax, maxTxnOps int

	mu sync.RWMutex // guards everything below
	// data holds current values. Stored values are private copies that are
	// never modified, so they can be shared with watchers.
	data map[string]store.KV
	keys []string // sorted keys of data
	rev  int64
	// history holds the events of the writing transactions with revisions
	// in (compacted, rev], oldest first.
	history   []txnRecord
	compacted int64
	watchers  map[*watcher]struct{}
	closed    bool
}

type txnRecord struct {
	rev    int64
	events []store.Event
}

var _ store.Store = (*Store)(nil)

// New returns an empty store at revision 0.
func New(opts ...Option) *Store {
	s := &Store{
		historyMax: DefaultHistory,
		backlogMax: DefaultWatchBacklog,
		maxTxnOps:  DefaultMaxTxnOps,
		data:       map[string]store.KV{},
		watchers:   map[*watcher]struct{}{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func closedErr() error {
	return &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "state store closed", Cause: ErrClosed}
}

func notFound(key string) error {
	return &errdefs.Error{Kind: errdefs.ErrNotFound, Message: "not found", Cause: fmt.Errorf("key %q", key)}
}

// Get implements store.Reader. The returned value is the caller's copy.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if key == "" {
		return store.KV{}, errdefs.InvalidArgument("empty key")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.KV{}, closedErr()
	}
	kv, ok := s.data[key]
	if !ok {
		return store.KV{}, notFound(key)
	}
	kv.Value = slices.Clone(kv.Value)
	return kv, nil
}

// List implements store.Reader. The returned values are the caller's copies.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, closedErr()
	}
	var out []store.KV
	i, _ := slices.BinarySearch(s.keys, prefix)
	for ; i < len(s.keys) && strings.HasPrefix(s.keys[i], prefix); i++ {
		kv := s.data[s.keys[i]]
		kv.Value = slices.Clone(kv.Value)
		out = append(out, kv)
	}
	return out, s.rev, nil
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, closedErr()
	}
	return s.rev, nil
}

// validateTxn checks what etcd would reject, so tests on memstore fail
// where production would.
func validateTxn(conds []store.Cond, ops []store.Op, limit int) error {
	if limit > 0 && (len(ops) > limit || len(conds) > limit) {
		return errdefs.New(errdefs.ErrLimitExceeded, fmt.Sprintf("transaction has more than %d ops or conditions", limit))
	}
	for _, c := range conds {
		if c.Key == "" {
			return errdefs.InvalidArgument("condition on an empty key")
		}
		if c.ModRevision < 0 {
			return errdefs.InvalidArgument("condition on a negative revision")
		}
	}
	seen := make(map[string]struct{}, len(ops))
	for _, op := range ops {
		if op.Key == "" {
			return errdefs.InvalidArgument("op on an empty key")
		}
		if op.Type != store.OpPut && op.Type != store.OpDelete {
			return errdefs.InvalidArgument(fmt.Sprintf("unknown op type %d", op.Type))
		}
		if _, dup := seen[op.Key]; dup {
			return errdefs.InvalidArgument(fmt.Sprintf("key %q appears twice in one transaction", op.Key))
		}
		seen[op.Key] = struct{}{}
	}
	return nil
}

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	if err := validateTxn(conds, ops, s.maxTxnOps); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, closedErr()
	}
	for _, c := range conds {
		kv, ok := s.data[c.Key]
		if c.ModRevision == 0 && ok || c.ModRevision != 0 && (!ok || kv.ModRevision != c.ModRevision) {
			return 0, &errdefs.Error{Kind: errdefs.ErrConflict, Message: "state changed concurrently", Cause: fmt.Errorf("condition on %q failed", c.Key)}
		}
	}

	rev := s.rev + 1
	var events []store.Event
	for _, op := range ops {
		old, exists := s.data[op.Key]
		switch op.Type {
		case store.OpPut:
			kv := store.KV{Key: op.Key, Value: slices.Clone(op.Value), CreateRevision: rev, ModRevision: rev}
			if kv.Value == nil {
				kv.Value = []byte{}
			}
			if exists {
				kv.CreateRevision = old.CreateRevision
			} else {
				i, _ := slices.BinarySearch(s.keys, op.Key)
				s.keys = slices.Insert(s.keys, i, op.Key)
			}
			s.data[op.Key] = kv
			events = append(events, store.Event{Type: store.EventPut, KV: kv})
		case store.OpDelete:
			if !exists {
				continue
			}
			i, _ := slices.BinarySearch(s.keys, op.Key)
			s.keys = slices.Delete(s.keys, i, i+1)
			delete(s.data, op.Key)
			events = append(events, store.Event{Type: store.EventDelete, KV: store.KV{Key: op.Key, ModRevision: rev}})
		}
	}
	if len(events) == 0 {
		// Like etcd: a transaction that changes nothing takes no revision.
		return s.rev, nil
	}
	s.rev = rev
	s.history = append(s.history, txnRecord{rev: rev, events: events})
	// Trim in batches so the copy is amortised over many transactions.
	if len(s.history) > s.historyMax+s.historyMax/4 {
		s.trimHistory(len(s.history) - s.historyMax)
	}
	for w := range s.watchers {
		w.deliver(rev, events)
	}
	return rev, nil
}

// trimHistory drops the oldest n records. Callers hold s.mu.
func (s *Store) trimHistory(n int) {
	if n <= 0 {
		return
	}
	s.compacted = s.history[n-1].rev
	s.history = append(s.history[:0:0], s.history[n:]...)
}

// historyIndex is the index of the first record at or after rev. Callers
// hold s.mu.
func (s *Store) historyIndex(rev int64) int {
	i, _ := slices.BinarySearchFunc(s.history, rev, func(r txnRecord, rev int64) int {
		return cmp.Compare(r.rev, rev)
	})
	return i
}

// Compact discards the history up to and including rev, as etcd's
// compaction does: a later Watch from an older revision gets
// store.ErrCompacted. Compacting a future revision is an invalid argument.
func (s *Store) Compact(rev int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev > s.rev {
		return errdefs.InvalidArgument(fmt.Sprintf("revision %d is in the future (current %d)", rev, s.rev))
	}
	s.trimHistory(s.historyIndex(rev + 1))
	s.compacted = max(s.compacted, rev)
	return nil
}

// Watch implements store.Store. Events are queued per watcher and never
// block Txn; a watcher that falls more than the backlog behind receives an
// error wrapping store.ErrCompacted and must re-list.
func (s *Store) Watch(ctx context.Context, prefix string, afterRev int64) <-chan store.WatchResponse {
	w := &watcher{
		prefix:  prefix,
		backlog: s.backlogMax,
		wake:    make(chan struct{}, 1),
		out:     make(chan store.WatchResponse),
	}
	s.mu.Lock()
	switch {
	case s.closed:
		w.err = closedErr()
	case afterRev < 0:
		w.err = errdefs.InvalidArgument("negative watch revision")
	case afterRev == 0:
		w.after = s.rev
	case afterRev < s.compacted:
		w.err = fmt.Errorf("watch after revision %d, compacted up to %d: %w", afterRev, s.compacted, store.ErrCompacted)
	default:
		w.after = afterRev
		// Replay the retained history, then go live: both under s.mu, so
		// no transaction falls between them.
		for _, rec := range s.history[s.historyIndex(afterRev+1):] {
			w.queueLocked(rec.rev, rec.events)
		}
	}
	if w.err == nil {
		s.watchers[w] = struct{}{}
	}
	s.mu.Unlock()
	go s.runWatcher(ctx, w)
	return w.out
}

func (s *Store) runWatcher(ctx context.Context, w *watcher) {
	defer close(w.out)
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()
	for {
		resp, ok := w.take()
		if ok {
			select {
			case w.out <- resp:
			case <-ctx.Done():
				return
			}
			if resp.Err != nil {
				return
			}
			continue
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		}
	}
}

// Close implements store.Store: later calls fail with kind
// errdefs.ErrUnavailable, and open watches end with that error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for w := range s.watchers {
		w.fail(closedErr())
	}
	clear(s.watchers)
	return nil
}

// watcher buffers one watch's undelivered events between Txn (producer,
// under the store lock) and its goroutine (consumer).
type watcher struct {
	prefix  string
	after   int64 // events at or before this revision are not wanted
	backlog int
	wake    chan struct{} // capacity 1: "the queue changed"
	out     chan store.WatchResponse

	mu     sync.Mutex // guards below
	queue  []store.Event
	qrev   int64 // revision of the newest queued txn
	queued int   // transactions in queue
	err    error // ends the watch once the queue is delivered
}

// deliver queues the events of the txn at rev that match the prefix.
func (w *watcher) deliver(rev int64, events []store.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queueLocked(rev, events)
}

func (w *watcher) queueLocked(rev int64, events []store.Event) {
	if w.err != nil || rev <= w.after {
		return
	}
	n := len(w.queue)
	for _, ev := range events {
		if strings.HasPrefix(ev.KV.Key, w.prefix) {
			w.queue = append(w.queue, ev)
		}
	}
	if len(w.queue) == n {
		return
	}
	w.qrev = rev
	w.queued++
	if w.queued > w.backlog {
		w.queue, w.queued = nil, 0
		w.err = fmt.Errorf("memstore: watcher fell more than %d transactions behind: %w", w.backlog, store.ErrCompacted)
	}
	w.signal()
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	w.signal()
}

func (w *watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns everything queued as one response (transactions stay whole,
// several may share a response), or the final error once the queue is empty.
func (w *watcher) take() (store.WatchResponse, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) > 0 {
		resp := store.WatchResponse{Events: w.queue, Revision: w.qrev}
		w.queue, w.queued = nil, 0
		return resp, true
	}
	if w.err != nil {
		return store.WatchResponse{Err: w.err}, true
	}
	return store.WatchResponse{}, false
}
