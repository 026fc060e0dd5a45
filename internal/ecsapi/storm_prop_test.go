package ecsapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"pgregory.net/rapid"

	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store/memstore"
	"github.com/berth-dev/berth/internal/store/watchcache"
)

// stormCall is one RunTask of a storm, drawn before the storm starts (rapid's
// generators are not safe for concurrent use).
type stormCall struct {
	family string
	in     *ecs.RunTaskInput
	// report is what the agent reports of the call's tasks once placed
	// (none, RUNNING or STOPPED), while the storm goes on.
	report string
}

// TestRunTaskStormProperty runs random storms of concurrent RunTasks (random
// demands, counts, strategies and constraints) against an API over an
// in-memory store behind the watch-fed cache, as production reads it. After
// each storm, read from the store itself (the calls go to two APIs over
// the store, as to two servers):
//   - no instance's used CPU or memory exceeds what it registered, and no
//     static host port is taken twice on one instance;
//   - each instance's used CPU, memory and ports and its task-group counts
//     are exactly the sum of the reservations of its tasks not STOPPED, and
//     DescribeContainerInstances counts those tasks as pending and running
//     exactly as their records say (reports that start and stop tasks run
//     concurrently with the placements);
//   - the tasks stored are exactly those RunTask returned (no lost or
//     phantom commit), and the group that always runs with distinctInstance
//     never has two tasks on one instance;
//   - every failure RunTask returned is a resource or constraint reason with
//     an explanation naming its instance.
func TestRunTaskStormProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		zones := []string{"za", "zb", "zc"}
		typesOf := []string{"t3.small", "t3.large", "m5.large"}
		type instSpec struct {
			cpu, memory int32
			zone, typ   string
		}
		insts := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) instSpec {
			return instSpec{
				cpu:    rapid.Int32Range(256, 4096).Draw(t, "cpu"),
				memory: rapid.Int32Range(256, 4096).Draw(t, "memory"),
				zone:   rapid.SampledFrom(zones).Draw(t, "zone"),
				typ:    rapid.SampledFrom(typesOf).Draw(t, "type"),
			}
		}), 1, 6).Draw(rt, "instances")
		type tdSpec struct{ cpu, memory, port int32 }
		tds := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) tdSpec {
			port := int32(0)
			if rapid.IntRange(0, 3).Draw(t, "hasPort") == 0 {
				port = rapid.SampledFrom([]int32{80, 8080}).Draw(t, "port")
			}
			return tdSpec{
				cpu:    rapid.SampledFrom([]int32{0, 10, 128, 512, 1024}).Draw(t, "cpu"),
				memory: rapid.Int32Range(16, 1024).Draw(t, "memory"),
				port:   port,
			}
		}), 1, 4).Draw(rt, "taskDefinitions")
		strategies := [][]types.PlacementStrategy{
			nil, // random, RunTask's default
			{strategy("binpack", "memory")},
			{strategy("binpack", "cpu")},
			{strategy("spread", "attribute:ecs.availability-zone"), strategy("binpack", "memory")},
			{strategy("spread", "instanceId")},
			{strategy("random", "")},
		}
		constraints := [][]types.PlacementConstraint{
			nil,
			{memberOf("attribute:ecs.instance-type =~ t3.*")},
			{memberOf("attribute:ecs.availability-zone in [za, zb]")},
			{distinct},
		}
		workers := rapid.IntRange(2, 12).Draw(rt, "workers")
		calls := make([][]stormCall, workers)
		for w := range calls {
			n := rapid.IntRange(1, 4).Draw(rt, "calls")
			for range n {
				c := stormCall{in: &ecs.RunTaskInput{
					Count:             aws.Int32(rapid.Int32Range(1, 10).Draw(rt, "count")),
					PlacementStrategy: rapid.SampledFrom(strategies).Draw(rt, "strategy"),
				}, report: rapid.SampledFrom([]string{"", "RUNNING", "STOPPED"}).Draw(rt, "report")}
				if rapid.IntRange(0, 4).Draw(rt, "distinctGroup") == 0 {
					// One group always placed with distinctInstance.
					c.family = "td0"
					c.in.Group = aws.String("distinct")
					c.in.PlacementConstraints = []types.PlacementConstraint{distinct}
				} else {
					c.family = fmt.Sprintf("td%d", rapid.IntRange(0, len(tds)-1).Draw(rt, "family"))
					c.in.PlacementConstraints = rapid.SampledFrom(constraints).Draw(rt, "constraint")
				}
				c.in.TaskDefinition = aws.String(c.family)
				calls[w] = append(calls[w], c)
			}
		}

		// One API over a fresh store, behind the cache.
		ctx := asPrincipal(adminARN)
		mem := memstore.New()
		defer mem.Close()
		cache, err := watchcache.New(context.Background(), mem, "/v1/")
		if err != nil {
			rt.Fatal(err)
		}
		defer cache.Close()
		st := watchcache.NewCachedStore(mem, cache)
		fc := clock.NewFake(testStart)
		h := newTestHandlers(st, fc)
		// A second API over the same store, as a second server: each
		// serializes its own placements, so only the store's conditions
		// keep the two from over-committing an instance.
		servers := []*handlers{h, newTestHandlers(st, fc)}
		if _, err := h.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
			rt.Fatal(err)
		}
		ids := map[string]instSpec{}
		for _, s := range insts {
			out, err := h.RegisterContainerInstance(ctx, instanceInput("default", s.cpu, s.memory, attr("ecs.availability-zone", s.zone), attr("ecs.instance-type", s.typ)))
			if err != nil {
				rt.Fatal(err)
			}
			id := instanceID(aws.ToString(out.ContainerInstance.ContainerInstanceArn))
			ids[id] = s
			if err := (Instances{Store: st, Clock: fc, Region: testRegion, AccountID: testAccount}).SetAgentConnected(context.Background(), "default", id, true); err != nil {
				rt.Fatal(err)
			}
		}
		for i, s := range tds {
			c := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx"), Cpu: s.cpu, Memory: aws.Int32(s.memory)}
			if s.port > 0 {
				c.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(s.port)}}
			}
			if _, err := h.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(fmt.Sprintf("td%d", i)), ContainerDefinitions: []types.ContainerDefinition{c}}); err != nil {
				rt.Fatal(err)
			}
		}

		// The storm.
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			returned = map[string]bool{}
			problems []string
		)
		for w, mine := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := servers[w%len(servers)]
				for _, c := range mine {
					out, err := h.RunTask(ctx, c.in)
					if err == nil && c.report != "" {
						for _, task := range out.Tasks {
							in := &submitTaskStateChangeRequest{}
							in.Cluster, in.Task, in.Status = aws.String("default"), task.TaskArn, aws.String(c.report)
							if _, rerr := h.SubmitTaskStateChange(ctx, in); rerr != nil {
								mu.Lock()
								problems = append(problems, fmt.Sprintf("report %s: %v", c.report, rerr))
								mu.Unlock()
							}
						}
					}
					mu.Lock()
					if err != nil {
						problems = append(problems, fmt.Sprintf("RunTask %s: %v (%s)", c.family, err, code(err)))
					} else {
						for _, task := range out.Tasks {
							returned[instanceID(aws.ToString(task.TaskArn))] = true
						}
						for _, f := range out.Failures {
							if p := checkFailure(f); p != "" {
								problems = append(problems, p)
							}
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for _, p := range problems {
			rt.Error(p)
		}

		// What the store holds.
		stored, err := list[domain.ContainerInstance](context.Background(), mem, domain.ContainerInstancesPrefix("default"))
		if err != nil {
			rt.Fatal(err)
		}
		tasks, err := list[domain.TaskRecord](context.Background(), mem, domain.TasksPrefix("default"))
		if err != nil {
			rt.Fatal(err)
		}
		type sum struct {
			cpu, memory int64
			ports       []int32
			counts      domain.TaskCounts
			groups      map[string]int32
		}
		sums := map[string]*sum{}
		for _, k := range tasks {
			task := k.Value
			if !returned[task.ID] {
				rt.Errorf("task %s is stored but no RunTask returned it", task.ID)
			}
			delete(returned, task.ID)
			if task.Released != (task.Phase() == domain.PhaseStopped) {
				rt.Errorf("task %s: released %v in phase %d", task.ID, task.Released, task.Phase())
			}
			if task.Released {
				continue
			}
			s := sums[task.InstanceID]
			if s == nil {
				s = &sum{groups: map[string]int32{}}
				sums[task.InstanceID] = s
			}
			s.cpu += task.Reserved.CPU
			s.memory += task.Reserved.Memory
			s.ports = append(s.ports, task.Reserved.Ports...)
			s.counts.Add(task.Phase())
			s.groups[aws.ToString(task.Task.Group)]++
		}
		for id := range returned {
			rt.Errorf("RunTask returned task %s, which is not stored", id)
		}
		if len(stored) != len(ids) {
			rt.Fatalf("%d instances stored, %d registered", len(stored), len(ids))
		}
		for _, k := range stored {
			ci := k.Value
			s := sums[ci.ID]
			if s == nil {
				s = &sum{groups: map[string]int32{}}
			}
			if ci.Used.CPU > ci.Registered.CPU || ci.Used.Memory > ci.Registered.Memory {
				rt.Errorf("instance %s over-committed: used cpu %d of %d, memory %d of %d", ci.ID, ci.Used.CPU, ci.Registered.CPU, ci.Used.Memory, ci.Registered.Memory)
			}
			if ci.Used.CPU != s.cpu || ci.Used.Memory != s.memory {
				rt.Errorf("instance %s: used cpu %d, memory %d; its tasks reserve cpu %d, memory %d", ci.ID, ci.Used.CPU, ci.Used.Memory, s.cpu, s.memory)
			}
			used, want := slices.Sorted(slices.Values(ci.Used.Ports)), slices.Sorted(slices.Values(s.ports))
			if !slices.Equal(used, want) {
				rt.Errorf("instance %s: ports in use %v, its tasks reserve %v", ci.ID, used, want)
			}
			if all := append(slices.Clone(ci.Registered.Ports), used...); len(slices.Compact(slices.Sorted(slices.Values(all)))) != len(all) {
				rt.Errorf("instance %s: a host port is taken twice: %v", ci.ID, all)
			}
			d, err := h.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{ci.ID}})
			if err != nil || len(d.ContainerInstances) != 1 {
				rt.Fatalf("describe %s: %v %+v", ci.ID, err, d)
			}
			if got := (domain.TaskCounts{Pending: d.ContainerInstances[0].PendingTasksCount, Running: d.ContainerInstances[0].RunningTasksCount}); got != s.counts {
				rt.Errorf("instance %s: described %+v tasks, stored %+v", ci.ID, got, s.counts)
			}
			if !maps.Equal(ci.Groups, s.groups) && (len(ci.Groups) != 0 || len(s.groups) != 0) {
				rt.Errorf("instance %s: groups %v, its tasks' %v", ci.ID, ci.Groups, s.groups)
			}
			if s.groups["distinct"] > 1 {
				rt.Errorf("instance %s runs %d tasks of the distinctInstance group", ci.ID, s.groups["distinct"])
			}
		}
	})
}

// checkFailure says what is wrong with a failure of a storm's RunTask: it
// must be one of the resource or constraint reasons, and its detail must
// start with the id of the instance it names.
func checkFailure(f types.Failure) string {
	switch aws.ToString(f.Reason) {
	case scheduler.ReasonCPU, scheduler.ReasonMemory, scheduler.ReasonPorts, scheduler.ReasonMemberOf, scheduler.ReasonDistinctInstance:
	default:
		return fmt.Sprintf("failure reason %q (%s)", aws.ToString(f.Reason), aws.ToString(f.Detail))
	}
	if id := instanceID(aws.ToString(f.Arn)); id == "" || !strings.HasPrefix(aws.ToString(f.Detail), id+": ") {
		return fmt.Sprintf("failure %s of %s: detail %q does not explain it", aws.ToString(f.Reason), aws.ToString(f.Arn), aws.ToString(f.Detail))
	}
	return ""
}
