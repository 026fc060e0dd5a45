package service

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/controller/workqueue"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

// storeLauncher places tasks by writing their records and index keys, as
// ecsapi's placement does, without instances or resources.
type storeLauncher struct {
	st       store.Store
	mu       sync.Mutex
	launched int
	n        int
}

func (l *storeLauncher) Launch(ctx context.Context, req domain.ServiceLaunch) (domain.ServiceLaunchResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var res domain.ServiceLaunchResult
	var ops []store.Op
	for range req.Count {
		l.n++
		t := domain.TaskRecord{ID: fmt.Sprintf("t%03d", l.n), Cluster: req.Cluster}
		t.Task.StartedBy = aws.String(req.DeploymentID)
		t.Task.Group = aws.String(domain.GroupOfService(req.Service))
		t.Task.LastStatus, t.Task.DesiredStatus = aws.String("PENDING"), aws.String("RUNNING")
		op, err := store.PutJSON(domain.TaskKey(req.Cluster, t.ID), t)
		if err != nil {
			return res, err
		}
		ops = append(ops, op, store.Put(domain.ServiceTaskKey(req.Cluster, req.Service, t.ID), []byte{}))
		res.Tasks = append(res.Tasks, t)
	}
	if _, err := l.st.Txn(ctx, nil, ops); err != nil {
		return res, err
	}
	l.launched += req.Count
	return res, nil
}

func (l *storeLauncher) Stop(context.Context, string, string, string) error { return nil }

func (l *storeLauncher) Unfit(context.Context, string, []types.PlacementConstraint) (map[string]bool, error) {
	return nil, nil
}

func (l *storeLauncher) Tasks(ctx context.Context, cluster, service string) ([]*domain.TaskRecord, error) {
	kvs, _, err := l.st.List(ctx, domain.ServiceTasksPrefix(cluster, service))
	if err != nil {
		return nil, err
	}
	var out []*domain.TaskRecord
	for _, kv := range kvs {
		_, _, id, _ := domain.ParseServiceTaskKey(kv.Key)
		tkv, err := l.st.Get(ctx, domain.TaskKey(cluster, id))
		if err != nil {
			return nil, err
		}
		var t domain.TaskRecord
		if err := json.Unmarshal(tkv.Value, &t); err != nil {
			return nil, err
		}
		out = append(out, &t)
	}
	return out, nil
}

func (l *storeLauncher) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.launched
}

func putService(t *testing.T, st store.Store, name string, desired int32) {
	t.Helper()
	s := newScenario(desired, 100, 200)
	s.rec.Name = name
	op, err := store.PutJSON(domain.ServiceKey("default", name), s.rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Txn(context.Background(), nil, []store.Op{op}); err != nil {
		t.Fatal(err)
	}
}

// TestRunLaunchesOnceAndFollowsChanges runs the controller's loop over a
// store: a service is launched once (its own launches are seen before it
// decides again), a service created later is picked up from the watch,
// and scaling up launches only the difference.
func TestRunLaunchesOnceAndFollowsChanges(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	putService(t, st, "a", 3)
	l := &storeLauncher{st: st}
	c := New(Config{Store: st, Launcher: l, Workers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitCount := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for l.count() != want {
			if time.Now().After(deadline) {
				t.Fatalf("launched %d, want %d", l.count(), want)
			}
			<-time.After(5 * time.Millisecond)
		}
	}
	waitCount(3)
	putService(t, st, "b", 2)
	waitCount(5)
	// Scale b to 4 through the record, as UpdateService would.
	kv, err := st.Get(ctx, domain.ServiceKey("default", "b"))
	if err != nil {
		t.Fatal(err)
	}
	var rec domain.ServiceRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		t.Fatal(err)
	}
	rec.Service.DesiredCount = 4
	op, _ := store.PutJSON(kv.Key, rec)
	if _, err := st.Txn(ctx, []store.Cond{{Key: kv.Key, ModRevision: kv.ModRevision}}, []store.Op{op}); err != nil {
		t.Fatal(err)
	}
	waitCount(7)
	// Nothing else happens: no launch beyond the desired counts.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if l.count() != 7 {
			t.Fatalf("launched %d, want 7", l.count())
		}
		<-time.After(10 * time.Millisecond)
	}
}

// TestRouteInstanceChanges: an instance that appears or changes status
// concerns every service of its cluster; other changes of it concern only
// the services waiting for room.
func TestRouteInstanceChanges(t *testing.T) {
	c := New(Config{Store: memstore.New(), Launcher: &storeLauncher{}})
	q := workqueue.New()
	for _, n := range []string{"a", "b", "c"} {
		c.route(q, store.Event{Type: store.EventPut, KV: store.KV{Key: domain.ServiceKey("default", n), Value: []byte(`{}`)}})
	}
	drain := func() map[string]bool {
		got := map[string]bool{}
		for q.Len() > 0 {
			k, _ := q.Get()
			got[k] = true
			q.Done(k)
		}
		return got
	}
	drain()
	inst := func(status string) store.Event {
		b, _ := json.Marshal(domain.ContainerInstance{ID: "i-1", Status: status})
		return store.Event{Type: store.EventPut, KV: store.KV{Key: domain.ContainerInstanceKey("default", "i-1"), Value: b}}
	}
	c.route(q, inst(domain.InstanceStatusActive))
	if got := drain(); len(got) != 3 {
		t.Fatalf("a new instance queued %v, want every service", got)
	}
	c.route(q, inst(domain.InstanceStatusActive)) // resources changed only
	if got := drain(); len(got) != 0 {
		t.Fatalf("a resource change queued %v, want none", got)
	}
	c.setCapacityWaiter("default", domain.ServiceKey("default", "b"), true)
	c.route(q, inst(domain.InstanceStatusActive))
	if got := drain(); len(got) != 1 || !got[domain.ServiceKey("default", "b")] {
		t.Fatalf("a resource change queued %v, want the service waiting for room", got)
	}
	c.route(q, inst(domain.InstanceStatusDraining))
	if got := drain(); len(got) != 3 {
		t.Fatalf("draining queued %v, want every service", got)
	}
	// A task change reaches its owner through the index.
	c.route(q, store.Event{Type: store.EventPut, KV: store.KV{Key: domain.ServiceTaskKey("default", "c", "t1")}})
	c.route(q, store.Event{Type: store.EventPut, KV: store.KV{Key: domain.TaskKey("default", "t1"), Value: []byte(`{}`)}})
	if got := drain(); len(got) != 1 || !got[domain.ServiceKey("default", "c")] {
		t.Fatalf("a task change queued %v, want its service", got)
	}
	c.route(q, store.Event{Type: store.EventPut, KV: store.KV{Key: domain.TaskKey("default", "standalone"), Value: []byte(`{}`)}})
	if got := drain(); len(got) != 0 {
		t.Fatalf("a standalone task queued %v", got)
	}
}
