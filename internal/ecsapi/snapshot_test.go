package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store"
)

func snapKV(t interface{ Fatal(...any) }, id string, rev int64, ci domain.ContainerInstance) store.KV {
	ci.ID, ci.Cluster = id, "c"
	b, err := json.Marshal(ci)
	if err != nil {
		t.Fatal(err)
	}
	return store.KV{Key: domain.ContainerInstanceKey("c", id), Value: b, ModRevision: rev}
}

func arnOfTest(id string) string { return "arn:" + id }

// An incremental snapshot is exactly the snapshot built from scratch, and
// building it leaves the previous one as it was (snapshots are shared).
func TestSnapshotIncrementalProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		type inst struct {
			rev    int64
			reg    int
			status string
			used   int64
			attr   string
		}
		cur := map[string]inst{}
		var prev *instSnapshot
		rev := int64(0)
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for range steps {
			// Change some instances: add, change, delete.
			for range rapid.IntRange(0, 4).Draw(rt, "changes") {
				id := fmt.Sprintf("i%d", rapid.IntRange(0, 7).Draw(rt, "id"))
				if rapid.IntRange(0, 5).Draw(rt, "delete") == 0 {
					delete(cur, id)
					continue
				}
				rev++
				old, ok := cur[id]
				in := inst{rev: rev, reg: old.reg, status: domain.InstanceStatusActive, used: old.used, attr: old.attr}
				if !ok || rapid.Bool().Draw(rt, "reregister") {
					in.reg = rapid.IntRange(0, 3).Draw(rt, "registeredAt")
				}
				in.status = rapid.SampledFrom([]string{domain.InstanceStatusActive, domain.InstanceStatusDraining, domain.InstanceStatusInactive}).Draw(rt, "status")
				in.used = rapid.Int64Range(0, 100).Draw(rt, "used")
				in.attr = rapid.SampledFrom([]string{"a", "b"}).Draw(rt, "attr")
				cur[id] = in
			}
			var kvs []store.KV
			for _, id := range slices.Sorted(func(yield func(string) bool) {
				for id := range cur {
					if !yield(id) {
						return
					}
				}
			}) {
				in := cur[id]
				kvs = append(kvs, snapKV(rt, id, in.rev, domain.ContainerInstance{
					Status: in.status, AgentConnected: true, RegisteredAt: testStart.Add(time.Duration(in.reg) * time.Second),
					Registered: domain.Resources{CPU: 100, Memory: 100}, Used: domain.Resources{CPU: in.used},
					Attributes: []types.Attribute{{Name: aws.String("x"), Value: aws.String(in.attr)}},
				}))
			}
			var before []scheduler.Instance
			var beforeOrder []int
			if prev != nil {
				before, beforeOrder = slices.Clone(prev.live), slices.Clone(prev.order)
			}
			got, err := buildSnapshot(prev, kvs, arnOfTest)
			if err != nil {
				rt.Fatal(err)
			}
			want, err := buildSnapshot(nil, kvs, arnOfTest)
			if err != nil {
				rt.Fatal(err)
			}
			if diff := cmp.Diff(want.live, got.live); diff != "" {
				rt.Fatalf("live (-fresh +incremental):\n%s", diff)
			}
			if !slices.Equal(want.order, got.order) || !slices.Equal(want.pos, got.pos) {
				rt.Fatalf("order %v pos %v, fresh %v %v", got.order, got.pos, want.order, want.pos)
			}
			for i, e := range got.all {
				if e.key != kvs[i].Key || e.rev != kvs[i].ModRevision || e.key != domain.ContainerInstanceKey("c", e.ci.ID) {
					rt.Fatalf("entry %d: %s@%d, listed %s@%d", i, e.key, e.rev, kvs[i].Key, kvs[i].ModRevision)
				}
			}
			if prev != nil {
				if diff := cmp.Diff(before, prev.live); diff != "" || !slices.Equal(beforeOrder, prev.order) {
					rt.Fatalf("the previous snapshot changed:\n%s", diff)
				}
			}
			prev = got
		}
	})
}

func TestSnapshotReuse(t *testing.T) {
	a := snapKV(t, "a", 1, domain.ContainerInstance{Status: "ACTIVE", RegisteredAt: testStart})
	b := snapKV(t, "b", 2, domain.ContainerInstance{Status: "ACTIVE", RegisteredAt: testStart.Add(-time.Second)})
	s1, err := buildSnapshot(nil, []store.KV{a, b}, arnOfTest)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s1.order, []int{1, 0}) || s1.live[0].Name != "b" || s1.live[0].ARN != "arn:b" {
		t.Fatalf("order %v, first %s", s1.order, s1.live[0].Name)
	}
	// Nothing changed: the same snapshot.
	if s2, _ := buildSnapshot(s1, []store.KV{a, b}, arnOfTest); s2 != s1 {
		t.Error("an unchanged listing built a new snapshot")
	}
	// One instance changed: only it is decoded again; the order is kept.
	a2 := snapKV(t, "a", 3, domain.ContainerInstance{Status: "ACTIVE", RegisteredAt: testStart, Used: domain.Resources{CPU: 5}})
	s3, err := buildSnapshot(s1, []store.KV{a2, b}, arnOfTest)
	if err != nil {
		t.Fatal(err)
	}
	if s3.all[1] != s1.all[1] || s3.all[0] == s1.all[0] || &s3.order[0] != &s1.order[0] {
		t.Error("unchanged entries or order not reused")
	}
	if s3.live[1].Name != "a" || s3.all[0].rev != 3 {
		t.Errorf("changed entry: %+v", s3.live[1])
	}
	// A record that does not decode is an internal error.
	if _, err := buildSnapshot(s3, []store.KV{{Key: a.Key, Value: []byte("{"), ModRevision: 9}, b}, arnOfTest); err == nil {
		t.Error("a bad record decoded")
	}
	// An empty cluster.
	if s, err := buildSnapshot(s3, nil, arnOfTest); err != nil || len(s.all) != 0 || len(s.live) != 0 {
		t.Errorf("empty: %+v, %v", s, err)
	}
}

func TestClusterGates(t *testing.T) {
	var l clusterGates
	bg := context.Background()
	leave1, err := l.enter(bg, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	leave2, err := l.enter(bg, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	// Another cluster is not held up.
	leaveB, err := l.enter(bg, "b", 2)
	if err != nil {
		t.Fatal(err)
	}
	leaveB()
	// A third placement of a full cluster waits; a waiter whose context
	// ends gives up.
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := l.enter(ctx, "a", 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("entered a full gate: %v", err)
	}
	got := make(chan func(), 1)
	go func() {
		leave, err := l.enter(bg, "a", 2)
		if err != nil {
			t.Error(err)
		}
		got <- leave
	}()
	leave1()
	(<-got)()
	leave2()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.gates) != 0 {
		t.Errorf("%d gates kept after every placement left", len(l.gates))
	}
}

func TestPlacementWidth(t *testing.T) {
	var c snapCache
	if got := c.width("a"); got != placementsInFlight {
		t.Errorf("before any snapshot: %d, want %d", got, placementsInFlight)
	}
	for _, tc := range []struct{ live, want int }{{0, 1}, {1, 1}, {3, 3}, {placementsInFlight + 5, placementsInFlight}} {
		c.clusters = map[string]cachedSnapshot{"a": {s: &instSnapshot{live: make([]scheduler.Instance, tc.live)}, rev: 1}}
		if got := c.width("a"); got != tc.want {
			t.Errorf("%d live instances: width %d, want %d", tc.live, got, tc.want)
		}
	}
	// A gate opened at width 1 admits one placement at a time.
	var l clusterGates
	leave, err := l.enter(context.Background(), "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.enter(ctx, "a", 8); !errors.Is(err, context.Canceled) {
		t.Errorf("a second placement entered a gate of width 1: %v", err)
	}
	leave()
}
