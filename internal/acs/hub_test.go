package acs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/store"
)

func taskPut(t *testing.T, cluster, instanceID, taskID string, rev int64) store.Event {
	t.Helper()
	b, err := json.Marshal(domain.TaskRecord{ID: taskID, Cluster: cluster, InstanceID: instanceID})
	if err != nil {
		t.Fatal(err)
	}
	return store.Event{Type: store.EventPut, KV: store.KV{Key: domain.TaskKey(cluster, taskID), Value: b, ModRevision: rev}}
}

// taken is what one take returned, with task ids for changes.
type taken struct {
	ids    []string
	resync bool
	minRev int64
}

func takeAll(in *inbox) taken {
	changes, resync, minRev := in.take()
	out := taken{resync: resync, minRev: minRev}
	for _, c := range changes {
		out.ids = append(out.ids, c.task.ID)
	}
	return out
}

func TestHubPostsToTheInstancesConnections(t *testing.T) {
	// Inboxes: a and a2 are two connections of one instance (a reconnect
	// overlapping the old connection's end); b another instance; other
	// an instance of another cluster with a's id.
	const limit = 3
	for _, tc := range []struct {
		name   string
		events func(t *testing.T) []store.Event
		want   map[string]taken
	}{
		{
			name: "each change reaches only its instance's connections",
			events: func(t *testing.T) []store.Event {
				return []store.Event{
					taskPut(t, "c1", "ia", "t1", 11),
					taskPut(t, "c1", "ib", "t2", 11),
					taskPut(t, "c2", "ia", "t3", 12),
					taskPut(t, "c1", "", "t4", 12), // not placed on an instance
				}
			},
			want: map[string]taken{
				"a": {ids: []string{"t1"}}, "a2": {ids: []string{"t1"}},
				"b": {ids: []string{"t2"}}, "other": {ids: []string{"t3"}},
			},
		},
		{
			name: "deletes, other keys, undecodable and already posted records are dropped",
			events: func(t *testing.T) []store.Event {
				old := taskPut(t, "c1", "ia", "t0", 10) // at the hub's revision
				return []store.Event{
					old,
					{Type: store.EventDelete, KV: store.KV{Key: domain.TaskKey("c1", "t1"), ModRevision: 11}},
					{Type: store.EventPut, KV: store.KV{Key: domain.TasksPrefix("c1") + "x/y", Value: old.KV.Value, ModRevision: 11}},
					{Type: store.EventPut, KV: store.KV{Key: domain.TaskKey("c1", "t2"), Value: []byte("{"), ModRevision: 11}},
				}
			},
			want: map[string]taken{"a": {}, "a2": {}, "b": {}, "other": {}},
		},
		{
			name: "an overflowing queue turns into a full read at the response's revision",
			events: func(t *testing.T) []store.Event {
				var evs []store.Event
				for i, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
					evs = append(evs, taskPut(t, "c1", "ia", id, int64(11+i)))
				}
				return append(evs, taskPut(t, "c1", "ib", "t6", 16))
			},
			want: map[string]taken{
				"a": {resync: true, minRev: 16}, "a2": {resync: true, minRev: 16},
				"b": {ids: []string{"t6"}}, "other": {},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(nil, slog.New(slog.DiscardHandler), limit)
			h.rev = 10
			boxes := map[string]*inbox{
				"a": h.register("c1", "ia"), "a2": h.register("c1", "ia"),
				"b": h.register("c1", "ib"), "other": h.register("c2", "ia"),
			}
			for name, in := range boxes {
				// Registration asks for a full read at the hub's revision.
				if got := takeAll(in); !got.resync || got.minRev != 10 || len(got.ids) != 0 {
					t.Fatalf("%s on registration: %+v", name, got)
				}
			}
			evs := tc.events(t)
			top := int64(10)
			for _, ev := range evs {
				top = max(top, ev.KV.ModRevision)
			}
			h.post(store.WatchResponse{Events: evs, Revision: top})
			for name, in := range boxes {
				got := takeAll(in)
				got.minRev = map[bool]int64{true: got.minRev}[got.resync]
				if w := tc.want[name]; !slices.Equal(got.ids, w.ids) || got.resync != w.resync || got.minRev != w.minRev {
					t.Errorf("%s took %+v, want %+v", name, got, w)
				}
			}
			if h.revision() != top {
				t.Errorf("hub revision %d, want %d", h.revision(), top)
			}
		})
	}
}

func TestInboxQueuesAgainAfterOverflow(t *testing.T) {
	h := newHub(nil, slog.New(slog.DiscardHandler), 1)
	h.rev = 10
	in := h.register("c1", "ia")
	h.post(store.WatchResponse{Events: []store.Event{taskPut(t, "c1", "ia", "t1", 11), taskPut(t, "c1", "ia", "t2", 11)}, Revision: 11})
	// The full read is not taken yet: later changes queue behind it, to
	// apply on top of it.
	h.post(store.WatchResponse{Events: []store.Event{taskPut(t, "c1", "ia", "t3", 12)}, Revision: 12})
	if got := takeAll(in); !got.resync || got.minRev != 11 || !slices.Equal(got.ids, []string{"t3"}) {
		t.Fatalf("took %+v, want a full read at 11 and then t3", got)
	}
	h.unregister(in)
	h.post(store.WatchResponse{Events: []store.Event{taskPut(t, "c1", "ia", "t4", 13)}, Revision: 13})
	if got := takeAll(in); got.resync || len(got.ids) != 0 {
		t.Fatalf("an unregistered inbox took %+v", got)
	}
	if len(h.boxes) != 0 {
		t.Fatalf("boxes left after unregister: %v", h.boxes)
	}
}

// scriptedStore serves the hub's Revision and Watch calls from the test.
type scriptedStore struct {
	store.Store
	rev     chan int64         // answers to Revision
	watches chan scriptedWatch // one per Watch call
}

type scriptedWatch struct {
	after int64
	ch    chan store.WatchResponse
}

func (s *scriptedStore) Revision(ctx context.Context) (int64, error) {
	select {
	case r := <-s.rev:
		return r, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (s *scriptedStore) Watch(ctx context.Context, _ string, after int64) <-chan store.WatchResponse {
	w := scriptedWatch{after: after, ch: make(chan store.WatchResponse)}
	s.watches <- w
	return w.ch
}

func TestHubResumesOrResyncsWhenTheWatchEnds(t *testing.T) {
	st := &scriptedStore{rev: make(chan int64, 1), watches: make(chan scriptedWatch)}
	h := newHub(st, slog.New(slog.DiscardHandler), DefaultQueueLimit)
	in := h.register("c1", "ia")
	takeAll(in)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	next := func(wantAfter int64) scriptedWatch {
		t.Helper()
		select {
		case w := <-st.watches:
			if w.after != wantAfter {
				t.Fatalf("watch after %d, want %d", w.after, wantAfter)
			}
			return w
		case <-time.After(10 * time.Second):
			t.Fatal("no watch opened")
		}
		panic("unreachable")
	}
	send := func(w scriptedWatch, resp store.WatchResponse) {
		t.Helper()
		select {
		case w.ch <- resp:
		case <-time.After(10 * time.Second):
			t.Fatal("the hub does not read its watch")
		}
	}
	waitTake := func(what string) taken {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case <-in.notify:
			case <-deadline:
				t.Fatalf("nothing posted: %s", what)
			}
			// A wake-up may find nothing new (one left from registering,
			// say): wait for the next.
			if got := takeAll(in); got.resync || len(got.ids) > 0 {
				return got
			}
		}
	}

	// First open: at the store's revision; connections read again.
	st.rev <- 5
	w := next(5)
	if got := waitTake("first open"); !got.resync || got.minRev != 5 {
		t.Fatalf("after the first open: %+v", got)
	}
	send(w, store.WatchResponse{Events: []store.Event{taskPut(t, "c1", "ia", "t1", 6)}, Revision: 6})
	if got := waitTake("change"); got.resync || !slices.Equal(got.ids, []string{"t1"}) {
		t.Fatalf("after a change: %+v", got)
	}
	// A broken stream resumes where it ended: nobody reads again.
	send(w, store.WatchResponse{Err: errors.New("stream broke")})
	w = next(6)
	send(w, store.WatchResponse{Events: []store.Event{taskPut(t, "c1", "ia", "t2", 7)}, Revision: 7})
	if got := waitTake("change after resume"); got.resync || !slices.Equal(got.ids, []string{"t2"}) {
		t.Fatalf("after the resume: %+v", got)
	}
	// Compacted: the changes in between are lost, so everyone reads again
	// at least as recently as the new watch's start.
	send(w, store.WatchResponse{Err: store.ErrCompacted})
	st.rev <- 9
	next(9)
	if got := waitTake("compaction"); !got.resync || got.minRev != 9 {
		t.Fatalf("after a compaction: %+v", got)
	}
}
