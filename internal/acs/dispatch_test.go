package acs_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

func (e *env) registerInstance() (id, instanceARN string) {
	e.t.Helper()
	reg, err := e.ecs.RegisterContainerInstance(context.Background(), &ecs.RegisterContainerInstanceInput{
		Cluster: aws.String(cluster),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 4096},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 8192},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	instanceARN = aws.ToString(reg.ContainerInstance.ContainerInstanceArn)
	return instanceARN[strings.LastIndexByte(instanceARN, '/')+1:], instanceARN
}

func (e *env) startTaskOn(instanceARN string) string {
	e.t.Helper()
	out, err := e.ecs.StartTask(context.Background(), &ecs.StartTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String("web"), ContainerInstances: []string{instanceARN},
	})
	if err != nil || len(out.Tasks) != 1 {
		e.t.Fatalf("start task: %v %+v", err, out)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

// view folds an agent's Syncs as the agent does: a full Sync replaces
// everything, a partial one updates the tasks it names. It returns the
// desired status by task ARN.
func (r *recorder) view() map[string]string {
	v := map[string]string{}
	for _, s := range r.all() {
		if s.full {
			clear(v)
		}
		for _, t := range s.tasks {
			v[t.TaskARN] = t.DesiredStatus
		}
	}
	return v
}

func TestChangesReachOnlyTheirInstance(t *testing.T) {
	e := newEnv(t, testTimings)
	_, arnB := e.registerInstance()
	recA, recB := &recorder{}, &recorder{}
	e.startAgent(recA, instanceARN)
	e.startAgentOf(recB, instanceARN, arnB)
	waitFor(t, "both full syncs", func() bool { return len(recA.all()) > 0 && len(recB.all()) > 0 })

	var forA []string
	for range 3 {
		forA = append(forA, e.startTaskOn(e.arn))
	}
	forB := e.startTaskOn(arnB)
	// B's stream is in revision order: once B has its task, every change
	// of A's tasks before it has been dispatched.
	waitFor(t, "B's task", func() bool { return recB.view()[forB] == "RUNNING" })
	waitFor(t, "A's tasks", func() bool {
		v := recA.view()
		return v[forA[0]] == "RUNNING" && v[forA[1]] == "RUNNING" && v[forA[2]] == "RUNNING"
	})
	for _, s := range recB.all() {
		for _, tk := range s.tasks {
			if tk.TaskARN != forB {
				t.Errorf("instance B was sent %s", tk.TaskARN)
			}
		}
	}
	for _, s := range recA.all() {
		for _, tk := range s.tasks {
			if tk.TaskARN == forB {
				t.Errorf("instance A was sent B's task %s", tk.TaskARN)
			}
		}
	}
}

func TestQueueOverflowTurnsIntoAFullSync(t *testing.T) {
	for _, tc := range []struct {
		name     string
		limit    int
		wantFull bool
	}{
		{"within the limit: one partial sync", 0, false},
		{"over the limit: one full sync", 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timings := testTimings
			timings.QueueLimit = tc.limit
			e := newEnv(t, timings)
			rec := &recorder{}
			e.startAgent(rec, instanceARN)
			waitFor(t, "the first full sync", func() bool { return len(rec.all()) > 0 })
			n := len(rec.all())

			// Ten tasks in one transaction reach the connection at once.
			var ops []store.Op
			var arns []string
			for i := range 10 {
				id := fmt.Sprintf("%032x", i+1)
				ops = append(ops, taskOps(t, e.instanceID, id)...)
				arns = append(arns, arn.Task(region, account, cluster, id))
			}
			if _, err := e.mem.Txn(context.Background(), nil, ops); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the ten tasks", func() bool { return len(rec.view()) == 10 })
			got := rec.all()[n]
			var gotARNs []string
			for _, tk := range got.tasks {
				gotARNs = append(gotARNs, tk.TaskARN)
			}
			if got.full != tc.wantFull || !slices.Equal(gotARNs, arns) {
				t.Fatalf("sync after the burst: full %v with %v, want full %v with %v", got.full, gotARNs, tc.wantFull, arns)
			}
		})
	}
}

// gatedSource holds back the watch responses the cache follows while
// paused: the cache then lags the store, and the channel's watch.
type gatedSource struct {
	store.Store
	mu     sync.Mutex
	paused bool
	resume chan struct{} // closed by open
}

func (g *gatedSource) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.paused, g.resume = true, make(chan struct{})
}

func (g *gatedSource) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		g.paused = false
		close(g.resume)
	}
}

func (g *gatedSource) Watch(ctx context.Context, prefix string, after int64) <-chan store.WatchResponse {
	in := g.Store.Watch(ctx, prefix, after)
	out := make(chan store.WatchResponse)
	go func() {
		defer close(out)
		for resp := range in {
			g.mu.Lock()
			paused, resume := g.paused, g.resume
			g.mu.Unlock()
			if paused {
				select {
				case <-resume:
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// revisionHook calls onRevision (when set) on every Revision: what
// store.Sync asks before it waits for the cache.
type revisionHook struct {
	store.Store
	mu         sync.Mutex
	onRevision func()
}

func (r *revisionHook) Revision(ctx context.Context) (int64, error) {
	r.mu.Lock()
	f := r.onRevision
	r.mu.Unlock()
	if f != nil {
		f()
	}
	return r.Store.Revision(ctx)
}

func TestNoGapWhenTheCacheLagsTheWatch(t *testing.T) {
	gate := &gatedSource{}
	hook := &revisionHook{}
	e := newEnvOn(t, testTimings,
		func(m *memstore.Store) store.Store { gate.Store = m; return gate },
		func(m *memstore.Store) store.Store { hook.Store = m; return hook })
	// A first connection marks the instance connected, so that the second
	// one writes nothing (a write would wait for the cache).
	first := e.dial(t, credsOf(instanceARN))
	readSync(t, first)
	waitFor(t, "agentConnected", e.agentConnected)

	// The cache stops following; a task is placed, and the channel's
	// watch sees it.
	gate.pause()
	t.Cleanup(gate.open)
	id := fmt.Sprintf("%032x", 1)
	rev, err := e.mem.Txn(context.Background(), nil, taskOps(t, e.instanceID, id))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watch to pass the task", func() bool { return e.channel.HubRevision() >= rev })

	// The reconnect's full read finds the cache behind what the watch has
	// already dispatched: it must wait for the cache (store.Sync asks the
	// store's revision, which lets the cache go on) rather than send a
	// full Sync without the task. Without a Sync the gate opens after 2 s,
	// too late for the full Sync.
	hook.mu.Lock()
	hook.onRevision = gate.open
	hook.mu.Unlock()
	fallback := time.AfterFunc(2*time.Second, gate.open)
	defer fallback.Stop()
	second := e.dial(t, credsOf(instanceARN))
	full := readSync(t, second)
	if !full.Sync.Full || len(full.Sync.Tasks) != 1 || full.Sync.Tasks[0].TaskARN != arn.Task(region, account, cluster, id) {
		t.Fatalf("full sync = %+v, want the task placed before the connect", full.Sync)
	}
}

func TestReconnectWhileChangesFlow(t *testing.T) {
	timings := testTimings
	timings.QueueLimit = 2 // RunTask of three tasks overflows
	e := newEnv(t, timings)
	rec := &recorder{}
	e.startAgent(rec, instanceARN)
	waitFor(t, "the first full sync", func() bool { return len(rec.all()) > 0 })

	var want []string
	ctx := context.Background()
	for i := range 12 {
		// Placement wants a connected agent: retried while it reconnects.
		var out *ecs.RunTaskOutput
		waitFor(t, "a placement", func() bool {
			var err error
			out, err = e.ecs.RunTask(ctx, &ecs.RunTaskInput{
				Cluster: aws.String(cluster), TaskDefinition: aws.String("web"), Count: aws.Int32(int32(1 + 2*(i%2))),
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range out.Failures {
				if aws.ToString(f.Reason) != "AGENT" {
					t.Fatalf("run task: %s %s", aws.ToString(f.Reason), aws.ToString(f.Detail))
				}
			}
			return len(out.Failures) == 0
		})
		for _, tk := range out.Tasks {
			want = append(want, aws.ToString(tk.TaskArn))
		}
		if i%3 == 1 {
			e.stopTask(want[0])
		}
		if i%4 == 0 {
			// Another connection of the instance ends the agent's; the
			// agent reconnects while the tasks keep coming.
			ws := e.dial(t, credsOf(instanceARN))
			_ = ws.Close()
		}
	}
	// Level-based: whatever the reconnects and overflows cut, the agent
	// ends up told exactly the store's state.
	waitFor(t, "the agent's view to match the store", func() bool {
		v := rec.view()
		if len(v) != len(want) || v[want[0]] != "STOPPED" {
			return false
		}
		for _, a := range want[1:] {
			if v[a] != "RUNNING" {
				return false
			}
		}
		return true
	})
	fulls := 0
	for _, s := range rec.all() {
		if s.full {
			fulls++
		}
	}
	if fulls < 4 {
		t.Fatalf("%d full syncs: the agent did not reconnect, or nothing overflowed", fulls)
	}
}
