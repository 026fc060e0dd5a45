package acs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/store"
)

// DefaultQueueLimit bounds the changes queued for one connection.
const DefaultQueueLimit = 256

// Back-off between attempts to (re)open the hub's watch; the first retry
// is immediate, since a compaction or a dropped stream is routine.
const (
	hubMinBackoff = 50 * time.Millisecond
	hubMaxBackoff = 5 * time.Second
)

// hub is the server's one watch over every cluster's task records. It
// decodes each change once and posts it to the inboxes of the connections
// of the instance the task is assigned to; it never waits for a
// connection.
//
// The hand-off to a connection's full read: registering an inbox asks for
// a full read that reflects at least the revision the hub has posted up to
// (rev), and every change after rev is posted to the inbox from then on. A
// full read at revision R ≥ that minimum, followed by the posted changes
// above R, therefore misses nothing and repeats nothing.
type hub struct {
	st    store.Store
	log   *slog.Logger
	limit int

	mu sync.Mutex
	// rev: every change up to rev has been posted (0 until the first watch
	// is open). Guarded by mu, written only by run.
	rev   int64
	boxes map[string]map[string][]*inbox // cluster → instance id → inboxes; guarded by mu
}

// change is one task record as of a revision, decoded once and shared by
// every connection it is posted to: read-only.
type change struct {
	rev  int64
	task *domain.TaskRecord
}

// inbox is what the hub has for one connection: the changes since the
// last take, or a request for a full read (resync) that reflects at least
// minRev. A queue that would exceed the limit is dropped for a full read:
// a slow agent costs itself a full Sync, never the others their changes.
type inbox struct {
	cluster, instanceID string
	notify              chan struct{} // holds a token while there is something to take

	mu      sync.Mutex
	changes []change // guarded by mu
	resync  bool     // guarded by mu
	minRev  int64    // guarded by mu
}

func newHub(st store.Store, log *slog.Logger, limit int) *hub {
	return &hub{st: st, log: log, limit: limit, boxes: map[string]map[string][]*inbox{}}
}

// register returns a new inbox for an instance's connection, asking for a
// full read first.
func (h *hub) register(cluster, instanceID string) *inbox {
	in := &inbox{cluster: cluster, instanceID: instanceID, notify: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	byID := h.boxes[cluster]
	if byID == nil {
		byID = map[string][]*inbox{}
		h.boxes[cluster] = byID
	}
	byID[instanceID] = append(byID[instanceID], in)
	in.askResync(h.rev)
	return in
}

func (h *hub) unregister(in *inbox) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byID := h.boxes[in.cluster]
	boxes := byID[in.instanceID]
	for i, b := range boxes {
		if b == in {
			boxes = append(boxes[:i:i], boxes[i+1:]...)
			break
		}
	}
	switch {
	case len(boxes) > 0:
		byID[in.instanceID] = boxes
	case len(byID) > 1:
		delete(byID, in.instanceID)
	default:
		delete(h.boxes, in.cluster)
	}
}

// revision is the revision the hub has posted every change up to.
func (h *hub) revision() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// run follows the task records until ctx ends.
func (h *hub) run(ctx context.Context) {
	failures := 0
	fresh := true // no position to resume from: start at the current revision
	for {
		if failures > 0 && !clock.Sleep(ctx, backoff(failures-1)) {
			return
		}
		wctx, cancel := context.WithCancel(ctx)
		ch, err := h.open(wctx, fresh)
		if err == nil {
			var progressed bool
			progressed, err = store.Follow(ctx, ch, h.post)
			if progressed {
				failures = 0
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		failures++
		// Compacted: the changes since rev are gone, so every connection
		// reads everything again. Otherwise the watch resumes at rev.
		fresh = errors.Is(err, store.ErrCompacted)
		h.log.Info("agent channel: task watch ended, reopening", "error", err, "resync", fresh)
	}
}

// open starts the watch: after rev, or, when fresh, at the store's current
// revision, asking every connection for a full read at least that recent
// (the changes between their reads and that revision are not posted).
func (h *hub) open(ctx context.Context, fresh bool) (<-chan store.WatchResponse, error) {
	if !fresh {
		return h.st.Watch(ctx, domain.AllTasksPrefix, h.revision()), nil
	}
	rev, err := h.st.Revision(ctx)
	if err != nil {
		return nil, err
	}
	ch := h.st.Watch(ctx, domain.AllTasksPrefix, rev)
	if rev == 0 {
		// Watch(…, 0) means "from now", which is revision 0 only if
		// nothing has been written meanwhile.
		if now, err := h.st.Revision(ctx); err != nil || now != 0 {
			return nil, errors.Join(err, errors.New("the store moved on while the watch opened"))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = rev
	for _, byID := range h.boxes {
		for _, boxes := range byID {
			for _, in := range boxes {
				in.askResync(rev)
			}
		}
	}
	return ch, nil
}

// post hands one response's changes out. It holds mu throughout, so that
// a registration sees either none or all of the response, and gives each
// inbox its share at once, so that a transaction reaches a connection
// whole.
func (h *hub) post(resp store.WatchResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	top := max(h.rev, resp.Revision)
	for _, ev := range resp.Events {
		top = max(top, ev.KV.ModRevision)
	}
	var out []delivery
	for _, ev := range resp.Events {
		if ev.KV.ModRevision <= h.rev {
			continue // already posted (a resumed watch repeating itself)
		}
		// Deletes are dropped: only the task reaper deletes task records,
		// long after they STOPPED, and connections forget a STOPPED task
		// once its agent has acknowledged it.
		if ev.Type != store.EventPut {
			continue
		}
		cluster, _, ok := domain.ParseTaskKey(ev.KV.Key)
		if !ok || len(h.boxes[cluster]) == 0 {
			continue // nobody of that cluster is connected: not even decoded
		}
		t := new(domain.TaskRecord)
		if err := json.Unmarshal(ev.KV.Value, t); err != nil {
			h.log.Warn("agent channel: undecodable task record", "key", ev.KV.Key, "error", err)
			continue
		}
		for _, in := range h.boxes[cluster][t.InstanceID] {
			c := change{rev: ev.KV.ModRevision, task: t}
			if i := slices.IndexFunc(out, func(d delivery) bool { return d.in == in }); i >= 0 {
				out[i].changes = append(out[i].changes, c)
			} else {
				out = append(out, delivery{in, []change{c}})
			}
		}
	}
	for _, d := range out {
		d.in.post(d.changes, h.limit, top)
	}
	h.rev = top
}

// delivery is one inbox's share of a response.
type delivery struct {
	in      *inbox
	changes []change
}

// post queues changes, or, when the queue would exceed limit, drops the
// queue for a full read at least as recent as top (the revision of the
// response the changes are part of).
func (in *inbox) post(changes []change, limit int, top int64) {
	in.mu.Lock()
	if in.resync {
		// Those the full read already asked for covers need not queue.
		changes = slices.DeleteFunc(changes, func(c change) bool { return c.rev <= in.minRev })
	}
	if len(in.changes)+len(changes) > limit {
		in.changes, in.resync, in.minRev = nil, true, max(in.minRev, top)
	} else {
		in.changes = append(in.changes, changes...)
	}
	in.mu.Unlock()
	in.wake()
}

// askResync asks for a full read reflecting at least rev; the changes
// queued so far are all at or below rev, so the read covers them.
func (in *inbox) askResync(rev int64) {
	in.mu.Lock()
	in.changes, in.resync, in.minRev = nil, true, max(in.minRev, rev)
	in.mu.Unlock()
	in.wake()
}

func (in *inbox) wake() {
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// take empties the inbox. When resync is set, the changes returned came
// after it was asked for: they apply on top of the full read, above its
// revision.
func (in *inbox) take() (changes []change, resync bool, minRev int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	changes, resync, minRev = in.changes, in.resync, in.minRev
	in.changes, in.resync = nil, false
	return changes, resync, minRev
}

func backoff(failures int) time.Duration {
	if failures == 0 {
		return 0
	}
	return min(hubMinBackoff<<min(failures-1, 16), hubMaxBackoff)
}
