// Package storetest is the conformance suite for store.Store: every
// implementation (memstore, etcdstore, the watch-cached store) runs the same
// subtests, so the fast fake used by most tests behaves like production.
//
// Each subtest gets a fresh store from newStore and closes it at the end.
// Subtests do not run in parallel, so an implementation may share one
// backend (one etcd, under per-store key prefixes) between them.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// Options adapts the suite to what an implementation can do.
type Options struct {
	// Compact discards history up to and including rev. Nil skips the
	// compaction subtest.
	Compact func(t *testing.T, s store.Store, rev int64)
	// MaxTxnOps is the implementation's limit on the ops of one
	// transaction; 0 skips the limit subtest.
	MaxTxnOps int
}

// wait bounds every wait for an event. Generous, since it only matters when
// something is broken.
const wait = 10 * time.Second

// Run runs the conformance suite.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts Options) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"GetNotFound", testGetNotFound},
		{"PutGet", testPutGet},
		{"ValueIsCopied", testValueIsCopied},
		{"InvalidArgument", testInvalidArgument},
		{"ListSortedAndPrefixIsolated", testList},
		{"RevisionsIncreasePerTxn", testRevisions},
		{"CreateAndModRevision", testCreateModRevision},
		{"CondMustNotExist", testCondMustNotExist},
		{"CompareAndSwap", testCAS},
		{"TxnAtomic", testTxnAtomic},
		{"DeleteAbsentKey", testDeleteAbsent},
		{"EmptyTxnReturnsCurrentRevision", testEmptyTxn},
		{"WatchFromNow", testWatchFromNow},
		{"WatchReplaysHistory", testWatchReplay},
		{"WatchTxnInOneResponse", testWatchTxnOneResponse},
		{"WatchPrefixIsolated", testWatchPrefix},
		{"WatchDelete", testWatchDelete},
		{"WatchClosesOnCancel", testWatchCancel},
		{"ConcurrentCAS", testConcurrentCAS},
		{"WatchCompacted", func(t *testing.T, s store.Store) { testWatchCompacted(t, s, opts.Compact) }},
		{"MaxTxnOps", func(t *testing.T, s store.Store) { testMaxTxnOps(t, s, opts.MaxTxnOps) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Txn(ctxT(t), nil, []store.Op{store.Put(key, []byte(value))})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return rev
}

func del(t *testing.T, s store.Store, key string) int64 {
	t.Helper()
	rev, err := s.Txn(ctxT(t), nil, []store.Op{store.Delete(key)})
	if err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
	return rev
}

func get(t *testing.T, s store.Store, key string) store.KV {
	t.Helper()
	kv, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return kv
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	kv, err := s.Get(ctxT(t), key)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get %s = %+v, %v; want ErrNotFound", key, kv, err)
	}
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %v, want kind %v", what, err, kind)
	}
}

func testGetNotFound(t *testing.T, s store.Store) {
	wantNotFound(t, s, "/missing")
	put(t, s, "/missing/child", "x")
	wantNotFound(t, s, "/missing") // a key is not its prefix
}

func testPutGet(t *testing.T, s store.Store) {
	rev := put(t, s, "/k", "v1")
	kv := get(t, s, "/k")
	if kv.Key != "/k" || string(kv.Value) != "v1" || kv.ModRevision != rev || kv.CreateRevision != rev {
		t.Fatalf("get /k = %+v, want value v1 at revision %d", kv, rev)
	}
	put(t, s, "/empty", "")
	if kv := get(t, s, "/empty"); len(kv.Value) != 0 {
		t.Fatalf("get /empty = %q, want empty", kv.Value)
	}
}

func testValueIsCopied(t *testing.T, s store.Store) {
	v := []byte("original")
	if _, err := s.Txn(ctxT(t), nil, []store.Op{store.Put("/k", v)}); err != nil {
		t.Fatal(err)
	}
	copy(v, "XXXXXXXX")
	if kv := get(t, s, "/k"); string(kv.Value) != "original" {
		t.Fatalf("store kept the caller's slice: %q", kv.Value)
	}
}

func testInvalidArgument(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	_, err := s.Get(ctx, "")
	wantKind(t, "Get empty key", err, errdefs.ErrInvalidArgument)
	for name, tc := range map[string]struct {
		conds []store.Cond
		ops   []store.Op
	}{
		"empty put key":    {ops: []store.Op{store.Put("", []byte("x"))}},
		"empty delete key": {ops: []store.Op{store.Delete("")}},
		"empty cond key":   {conds: []store.Cond{{Key: ""}}, ops: []store.Op{store.Put("/a", nil)}},
		"unknown op type":  {ops: []store.Op{{Type: 99, Key: "/a"}}},
		"negative cond":    {conds: []store.Cond{{Key: "/a", ModRevision: -1}}},
		"duplicate key":    {ops: []store.Op{store.Put("/a", []byte("1")), store.Put("/a", []byte("2"))}},
		"put and delete":   {ops: []store.Op{store.Put("/a", []byte("1")), store.Delete("/a")}},
	} {
		_, err := s.Txn(ctx, tc.conds, tc.ops)
		wantKind(t, name, err, errdefs.ErrInvalidArgument)
	}
	wantNotFound(t, s, "/a")
}

func testList(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	keys := []string{"/a/2", "/a/1", "/a/3", "/ab", "/a", "/b/1", "/a/1/x"}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	var last int64
	for _, k := range keys {
		last = put(t, s, k, "v"+k)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"/a/", []string{"/a/1", "/a/1/x", "/a/2", "/a/3"}},
		{"/ab", []string{"/ab"}},
		{"/a", []string{"/a", "/a/1", "/a/1/x", "/a/2", "/a/3", "/ab"}},
		{"/b/", []string{"/b/1"}},
		{"/nothing/", nil},
	} {
		kvs, rev, err := s.List(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", tc.prefix, err)
		}
		var got []string
		for _, kv := range kvs {
			got = append(got, kv.Key)
			if string(kv.Value) != "v"+kv.Key {
				t.Errorf("List(%q): %s = %q", tc.prefix, kv.Key, kv.Value)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		if rev < last {
			t.Errorf("List(%q) revision %d, older than the last write %d", tc.prefix, rev, last)
		}
	}
}

func testRevisions(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	var prev int64
	for i := range 5 {
		rev, err := s.Txn(ctx, nil, []store.Op{
			store.Put("/r/a", []byte(strconv.Itoa(i))),
			store.Put(fmt.Sprintf("/r/b%d", i), []byte("x")),
		})
		if err != nil {
			t.Fatal(err)
		}
		if rev <= prev {
			t.Fatalf("txn %d committed at revision %d, not after %d", i, rev, prev)
		}
		prev = rev
		for _, k := range []string{"/r/a", fmt.Sprintf("/r/b%d", i)} {
			if kv := get(t, s, k); kv.ModRevision != rev {
				t.Fatalf("%s ModRevision %d, want the txn's revision %d", k, kv.ModRevision, rev)
			}
		}
	}
	cur, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur != prev {
		t.Fatalf("Revision() = %d, want the last commit %d", cur, prev)
	}
}

func testCreateModRevision(t *testing.T, s store.Store) {
	r1 := put(t, s, "/k", "1")
	r2 := put(t, s, "/k", "2")
	if kv := get(t, s, "/k"); kv.CreateRevision != r1 || kv.ModRevision != r2 {
		t.Fatalf("after update: create %d mod %d, want %d %d", kv.CreateRevision, kv.ModRevision, r1, r2)
	}
	del(t, s, "/k")
	r4 := put(t, s, "/k", "3")
	if kv := get(t, s, "/k"); kv.CreateRevision != r4 || kv.ModRevision != r4 {
		t.Fatalf("after re-create: create %d mod %d, want %d %d", kv.CreateRevision, kv.ModRevision, r4, r4)
	}
}

func testCondMustNotExist(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	mustNotExist := []store.Cond{{Key: "/k", ModRevision: 0}}
	rev, err := s.Txn(ctx, mustNotExist, []store.Op{store.Put("/k", []byte("first"))})
	if err != nil {
		t.Fatalf("create absent key: %v", err)
	}
	_, err = s.Txn(ctx, mustNotExist, []store.Op{store.Put("/k", []byte("second"))})
	wantKind(t, "create existing key", err, errdefs.ErrConflict)
	if kv := get(t, s, "/k"); string(kv.Value) != "first" || kv.ModRevision != rev {
		t.Fatalf("failed create changed the key: %+v", kv)
	}
	// After a delete the key is absent again.
	del(t, s, "/k")
	if _, err := s.Txn(ctx, mustNotExist, []store.Op{store.Put("/k", []byte("third"))}); err != nil {
		t.Fatalf("create deleted key: %v", err)
	}
}

func testCAS(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	r1 := put(t, s, "/k", "1")
	r2, err := s.Txn(ctx, []store.Cond{{Key: "/k", ModRevision: r1}}, []store.Op{store.Put("/k", []byte("2"))})
	if err != nil {
		t.Fatalf("CAS with current revision: %v", err)
	}
	_, err = s.Txn(ctx, []store.Cond{{Key: "/k", ModRevision: r1}}, []store.Op{store.Put("/k", []byte("stale"))})
	wantKind(t, "CAS with stale revision", err, errdefs.ErrConflict)
	if kv := get(t, s, "/k"); string(kv.Value) != "2" || kv.ModRevision != r2 {
		t.Fatalf("failed CAS changed the key: %+v", kv)
	}
	// A non-zero revision means "must exist": an absent key fails it.
	_, err = s.Txn(ctx, []store.Cond{{Key: "/absent", ModRevision: r2}}, []store.Op{store.Put("/absent", []byte("x"))})
	wantKind(t, "CAS on absent key", err, errdefs.ErrConflict)
	wantNotFound(t, s, "/absent")
	// CAS delete.
	if _, err := s.Txn(ctx, []store.Cond{{Key: "/k", ModRevision: r2}}, []store.Op{store.Delete("/k")}); err != nil {
		t.Fatalf("CAS delete: %v", err)
	}
	wantNotFound(t, s, "/k")
}

func testTxnAtomic(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	ra := put(t, s, "/t/a", "a1")
	rb := put(t, s, "/t/b", "b1")
	put(t, s, "/t/gone", "x")

	// One failing cond out of two: nothing is written.
	_, err := s.Txn(ctx,
		[]store.Cond{{Key: "/t/a", ModRevision: ra}, {Key: "/t/b", ModRevision: ra}},
		[]store.Op{store.Put("/t/a", []byte("a2")), store.Put("/t/c", []byte("c")), store.Delete("/t/gone")})
	wantKind(t, "txn with one stale cond", err, errdefs.ErrConflict)
	if kv := get(t, s, "/t/a"); string(kv.Value) != "a1" {
		t.Fatalf("failed txn wrote /t/a: %+v", kv)
	}
	wantNotFound(t, s, "/t/c")
	get(t, s, "/t/gone")

	// All conds hold: every op lands at one revision.
	rev, err := s.Txn(ctx,
		[]store.Cond{{Key: "/t/a", ModRevision: ra}, {Key: "/t/b", ModRevision: rb}, {Key: "/t/c"}},
		[]store.Op{store.Put("/t/a", []byte("a2")), store.Put("/t/c", []byte("c")), store.Delete("/t/gone")})
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	for k, v := range map[string]string{"/t/a": "a2", "/t/c": "c"} {
		if kv := get(t, s, k); string(kv.Value) != v || kv.ModRevision != rev {
			t.Fatalf("%s = %+v, want %q at %d", k, kv, v, rev)
		}
	}
	wantNotFound(t, s, "/t/gone")
	if kv := get(t, s, "/t/b"); kv.ModRevision != rb {
		t.Fatalf("/t/b was only a cond but changed: %+v", kv)
	}
}

func testDeleteAbsent(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	before := put(t, s, "/other", "x")
	rev, err := s.Txn(ctx, nil, []store.Op{store.Delete("/absent")})
	if err != nil {
		t.Fatalf("delete absent key: %v", err)
	}
	if rev != before {
		t.Fatalf("deleting nothing returned revision %d, want the current %d (a txn that changes nothing takes no revision)", rev, before)
	}
	wantNotFound(t, s, "/absent")
	get(t, s, "/other")
}

func testEmptyTxn(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	r := put(t, s, "/k", "v")
	for name, conds := range map[string][]store.Cond{
		"no conds":       nil,
		"true conds":     {{Key: "/k", ModRevision: r}, {Key: "/absent"}},
		"empty not nil":  {},
		"true must-miss": {{Key: "/absent", ModRevision: 0}},
	} {
		got, err := s.Txn(ctx, conds, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != r {
			t.Fatalf("%s: empty txn returned %d, want current revision %d", name, got, r)
		}
	}
	_, err := s.Txn(ctx, []store.Cond{{Key: "/k", ModRevision: r + 100}}, nil)
	wantKind(t, "empty txn with false cond", err, errdefs.ErrConflict)
	if cur, err := s.Revision(ctx); err != nil || cur != r {
		t.Fatalf("Revision() = %d, %v; want %d (empty txns write nothing)", cur, err, r)
	}
}

// watcher reads a watch channel with deadlines and checks the invariants
// every response must keep.
type watcher struct {
	t       *testing.T
	ch      <-chan store.WatchResponse
	lastRev int64 // highest event revision seen
	respRev int64
	pending []store.Event
}

func watch(t *testing.T, s store.Store, prefix string, afterRev int64) *watcher {
	t.Helper()
	return &watcher{t: t, ch: s.Watch(ctxT(t), prefix, afterRev)}
}

// next returns the next response with events (or an error).
func (w *watcher) next() store.WatchResponse {
	w.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case resp, ok := <-w.ch:
			if !ok {
				w.t.Fatal("watch channel closed unexpectedly")
			}
			if resp.Err != nil {
				return resp
			}
			if resp.Revision < w.respRev {
				w.t.Fatalf("watch response revision went back from %d to %d", w.respRev, resp.Revision)
			}
			w.respRev = resp.Revision
			for _, ev := range resp.Events {
				if ev.KV.ModRevision < w.lastRev {
					w.t.Fatalf("event %s@%d after revision %d: out of order", ev.KV.Key, ev.KV.ModRevision, w.lastRev)
				}
				if ev.KV.ModRevision > resp.Revision {
					w.t.Fatalf("event %s@%d in a response at revision %d", ev.KV.Key, ev.KV.ModRevision, resp.Revision)
				}
				w.lastRev = ev.KV.ModRevision
			}
			if len(resp.Events) > 0 {
				return resp
			}
		case <-timer.C:
			w.t.Fatalf("no watch response within %s", wait)
		}
	}
}

// events returns exactly the next n events, possibly spread over several
// responses.
func (w *watcher) events(n int) []store.Event {
	w.t.Helper()
	for len(w.pending) < n {
		resp := w.next()
		if resp.Err != nil {
			w.t.Fatalf("watch error: %v", resp.Err)
		}
		w.pending = append(w.pending, resp.Events...)
	}
	out := w.pending[:n]
	w.pending = w.pending[n:]
	return out
}

func checkEvent(t *testing.T, ev store.Event, typ store.EventType, key, value string, rev int64) {
	t.Helper()
	if ev.Type != typ || ev.KV.Key != key || string(ev.KV.Value) != value || ev.KV.ModRevision != rev {
		t.Fatalf("event %v %s=%q@%d, want %v %s=%q@%d", ev.Type, ev.KV.Key, ev.KV.Value, ev.KV.ModRevision, typ, key, value, rev)
	}
	if typ == store.EventDelete && ev.KV.Value != nil {
		t.Fatalf("delete event carries value %q, want nil", ev.KV.Value)
	}
}

func testWatchFromNow(t *testing.T, s store.Store) {
	put(t, s, "/w/before", "old")
	w := watch(t, s, "/w/", 0)
	rev := put(t, s, "/w/a", "1")
	ev := w.events(1)[0]
	checkEvent(t, ev, store.EventPut, "/w/a", "1", rev)
	if ev.KV.CreateRevision != rev {
		t.Fatalf("put event CreateRevision %d, want %d", ev.KV.CreateRevision, rev)
	}
	rev2 := put(t, s, "/w/a", "2")
	ev = w.events(1)[0]
	checkEvent(t, ev, store.EventPut, "/w/a", "2", rev2)
	if ev.KV.CreateRevision != rev {
		t.Fatalf("update event CreateRevision %d, want %d", ev.KV.CreateRevision, rev)
	}
}

func testWatchReplay(t *testing.T, s store.Store) {
	r1 := put(t, s, "/r/a", "a1")
	r2 := put(t, s, "/r/b", "b1")
	put(t, s, "/other", "x") // outside the prefix: not replayed
	r3 := put(t, s, "/r/a", "a2")
	r4 := del(t, s, "/r/b")
	var more []int64
	for i := range 20 {
		more = append(more, put(t, s, fmt.Sprintf("/r/n%02d", i), "n"))
	}

	w := watch(t, s, "/r/", r1)
	evs := w.events(3 + len(more))
	checkEvent(t, evs[0], store.EventPut, "/r/b", "b1", r2)
	checkEvent(t, evs[1], store.EventPut, "/r/a", "a2", r3)
	checkEvent(t, evs[2], store.EventDelete, "/r/b", "", r4)
	for i, rev := range more {
		checkEvent(t, evs[3+i], store.EventPut, fmt.Sprintf("/r/n%02d", i), "n", rev)
	}
	// History then live, with nothing lost at the seam.
	r5 := put(t, s, "/r/live", "l")
	checkEvent(t, w.events(1)[0], store.EventPut, "/r/live", "l", r5)

	// Watching from the latest revision replays nothing.
	w2 := watch(t, s, "/r/", r5)
	r6 := put(t, s, "/r/after", "x")
	checkEvent(t, w2.events(1)[0], store.EventPut, "/r/after", "x", r6)
}

func testWatchTxnOneResponse(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	put(t, s, "/w/gone", "x")
	w := watch(t, s, "/w/", 0)
	rev, err := s.Txn(ctx, nil, []store.Op{
		store.Put("/w/1", []byte("a")), store.Put("/w/2", []byte("b")),
		store.Put("/w/3", []byte("c")), store.Delete("/w/gone"),
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := w.next()
	if resp.Err != nil {
		t.Fatal(resp.Err)
	}
	if len(resp.Events) != 4 {
		t.Fatalf("txn of 4 ops arrived as a response of %d events", len(resp.Events))
	}
	got := map[string]store.EventType{}
	for _, ev := range resp.Events {
		if ev.KV.ModRevision != rev {
			t.Fatalf("event %s@%d, want revision %d", ev.KV.Key, ev.KV.ModRevision, rev)
		}
		got[ev.KV.Key] = ev.Type
	}
	want := map[string]store.EventType{"/w/1": store.EventPut, "/w/2": store.EventPut, "/w/3": store.EventPut, "/w/gone": store.EventDelete}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func testWatchPrefix(t *testing.T, s store.Store) {
	w := watch(t, s, "/a/", 0)
	put(t, s, "/ab", "no")
	put(t, s, "/a", "no")
	put(t, s, "/b/a/", "no")
	rev := put(t, s, "/a/x", "yes")
	ev := w.events(1)[0]
	checkEvent(t, ev, store.EventPut, "/a/x", "yes", rev)
}

func testWatchDelete(t *testing.T, s store.Store) {
	put(t, s, "/d/k", "v")
	w := watch(t, s, "/d/", 0)
	del(t, s, "/d/absent") // no event: nothing was deleted
	rev := del(t, s, "/d/k")
	checkEvent(t, w.events(1)[0], store.EventDelete, "/d/k", "", rev)
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(ctxT(t))
	ch := s.Watch(ctx, "/c/", 0)
	put(t, s, "/c/1", "x")
	cancel()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("watch channel still open %s after cancel", wait)
		}
	}
}

func testConcurrentCAS(t *testing.T, s store.Store) {
	const workers, each = 8, 10
	ctx := ctxT(t)
	key := "/counter"
	incr := func() error {
		for {
			var cond store.Cond
			n := 0
			kv, err := s.Get(ctx, key)
			switch {
			case errors.Is(err, errdefs.ErrNotFound):
				cond = store.Cond{Key: key, ModRevision: 0}
			case err != nil:
				return err
			default:
				if n, err = strconv.Atoi(string(kv.Value)); err != nil {
					return err
				}
				cond = store.Cond{Key: key, ModRevision: kv.ModRevision}
			}
			_, err = s.Txn(ctx, []store.Cond{cond}, []store.Op{store.Put(key, []byte(strconv.Itoa(n+1)))})
			if !errors.Is(err, errdefs.ErrConflict) {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if err := incr(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if kv := get(t, s, key); string(kv.Value) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s, want %d: a CAS lost an update", kv.Value, workers*each)
	}
}

func testWatchCompacted(t *testing.T, s store.Store, compact func(*testing.T, store.Store, int64)) {
	if compact == nil {
		t.Skip("implementation cannot compact on demand")
	}
	var revs []int64
	for i := range 5 {
		revs = append(revs, put(t, s, "/c/k", strconv.Itoa(i)))
	}
	compact(t, s, revs[3])

	w := watch(t, s, "/c/", revs[0])
	resp := w.next()
	if !errors.Is(resp.Err, store.ErrCompacted) {
		t.Fatalf("watch from compacted revision: %+v, want ErrCompacted", resp)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case _, ok := <-w.ch:
		if ok {
			t.Fatal("watch channel still open after its error")
		}
	case <-timer.C:
		t.Fatal("watch channel still open after its error")
	}

	// The retained end of history is still watchable.
	w2 := watch(t, s, "/c/", revs[4])
	rev := put(t, s, "/c/k", "after")
	checkEvent(t, w2.events(1)[0], store.EventPut, "/c/k", "after", rev)
}

func testMaxTxnOps(t *testing.T, s store.Store, limit int) {
	if limit == 0 {
		t.Skip("no transaction size limit given")
	}
	ctx := ctxT(t)
	ops := make([]store.Op, 0, limit+1)
	for i := range limit + 1 {
		ops = append(ops, store.Put(fmt.Sprintf("/m/%04d", i), []byte("x")))
	}
	_, err := s.Txn(ctx, nil, ops)
	wantKind(t, "txn over the limit", err, errdefs.ErrLimitExceeded)
	wantNotFound(t, s, "/m/0000")
	if _, err := s.Txn(ctx, nil, ops[:limit]); err != nil {
		t.Fatalf("txn at the limit: %v", err)
	}
}
