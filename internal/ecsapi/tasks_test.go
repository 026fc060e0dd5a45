package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// registerTD registers family with one container "app" of cpu units and
// memory MiB, with a static host port when hostPort > 0.
func (e *env) registerTD(family string, cpu, memory, hostPort int32) *types.TaskDefinition {
	e.t.Helper()
	c := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx:1.27"), Cpu: cpu, Memory: aws.Int32(memory)}
	if hostPort > 0 {
		c.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(hostPort)}}
	}
	return must(e.t, e.h.RegisterTaskDefinition)(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), ContainerDefinitions: []types.ContainerDefinition{c},
		Tags: []types.Tag{tag("from", "td")},
	}).TaskDefinition
}

func (e *env) runTask(cluster, family string, count int32) *ecs.RunTaskOutput {
	e.t.Helper()
	return must(e.t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(family), Count: aws.Int32(count)})
}

func (e *env) describeTask(cluster, ref string) types.Task {
	e.t.Helper()
	out := must(e.t, e.h.DescribeTasks)(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{ref}, Include: []types.TaskField{types.TaskFieldTags}})
	if len(out.Tasks) != 1 {
		e.t.Fatalf("describe %s: %+v", ref, out.Failures)
	}
	return out.Tasks[0]
}

func (e *env) submit(cluster, task, status string, containers ...types.ContainerStateChange) {
	e.t.Helper()
	in := &submitTaskStateChangeRequest{}
	in.Cluster, in.Task, in.Status, in.Containers = aws.String(cluster), aws.String(task), aws.String(status), containers
	must(e.t, e.h.SubmitTaskStateChange)(e.ctx, in)
}

func (e *env) listTasks(in *ecs.ListTasksInput) []string {
	e.t.Helper()
	var ids []string
	for _, a := range must(e.t, e.h.ListTasks)(e.ctx, in).TaskArns {
		ids = append(ids, instanceID(a))
	}
	return ids
}

func TestTaskLifecycleThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	inst := e.registerInstance("prod", 2048, 4096)
	td := e.registerTD("web", 256, 512, 8080)

	run := must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{
		Cluster: aws.String("prod"), TaskDefinition: td.TaskDefinitionArn, StartedBy: aws.String("ci-42"),
		Tags: []types.Tag{tag("job", "42")}, PropagateTags: types.PropagateTagsTaskDefinition,
	})
	if len(run.Tasks) != 1 || len(run.Failures) != 0 {
		t.Fatalf("run: %+v", run)
	}
	task := run.Tasks[0]
	arn := aws.ToString(task.TaskArn)
	id := instanceID(arn)
	if !hex32.MatchString(id) || arn != "arn:aws:ecs:us-east-1:123456789012:task/prod/"+id ||
		aws.ToString(task.ContainerInstanceArn) != instanceARN("prod", inst) ||
		aws.ToString(task.LastStatus) != "PROVISIONING" || aws.ToString(task.DesiredStatus) != "RUNNING" ||
		aws.ToString(task.Group) != "family:web" || aws.ToString(task.StartedBy) != "ci-42" || task.LaunchType != types.LaunchTypeEc2 ||
		aws.ToString(task.Cpu) != "256" || task.Version != 1 || len(task.Containers) != 1 || !task.CreatedAt.Equal(testStart) {
		t.Errorf("RunTask task: %+v", task)
	}
	if tags := tagMap(task.Tags); tags["job"] != "42" || tags["from"] != "td" {
		t.Errorf("tags (given plus propagated): %v", tags)
	}
	ci := e.describeInstance("prod", inst)
	if resource(ci.RemainingResources, "CPU") != "1792" || resource(ci.RemainingResources, "MEMORY") != "3584" ||
		resource(ci.RemainingResources, "PORTS") != "22,2375,2376,51678,51679,8080" || ci.PendingTasksCount != 1 {
		t.Errorf("instance after placement: %+v", ci)
	}
	if kvs, _, _ := e.store.List(context.Background(), domain.InstanceTasksPrefix("prod", inst)); len(kvs) != 1 || !strings.HasSuffix(kvs[0].Key, id) {
		t.Errorf("index: %+v", kvs)
	}

	e.clock.Advance(time.Second)
	pull := float64(testStart.Add(500*time.Millisecond).UnixMilli()) / 1000
	in := &submitTaskStateChangeRequest{PullStartedAtEpoch: &epochTime{time.UnixMilli(int64(pull * 1000)).UTC()}}
	in.Cluster, in.Task, in.Status = aws.String("prod"), aws.String(arn), aws.String("PENDING")
	must(t, e.h.SubmitTaskStateChange)(e.ctx, in)
	if got := e.describeTask("prod", id); aws.ToString(got.LastStatus) != "PENDING" || got.PullStartedAt == nil || got.Connectivity != types.ConnectivityConnected {
		t.Errorf("after PENDING: %+v", got)
	}
	e.clock.Advance(time.Second)
	e.submit("prod", id, "RUNNING", types.ContainerStateChange{
		ContainerName: aws.String("app"), Status: aws.String("RUNNING"), RuntimeId: aws.String("ctr-1"),
		NetworkBindings: []types.NetworkBinding{{BindIP: aws.String("0.0.0.0"), ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080), Protocol: types.TransportProtocolTcp}},
	})
	got := e.describeTask("prod", id)
	if aws.ToString(got.LastStatus) != "RUNNING" || !got.StartedAt.Equal(testStart.Add(2*time.Second)) ||
		aws.ToString(got.Containers[0].RuntimeId) != "ctr-1" || len(got.Containers[0].NetworkBindings) != 1 {
		t.Errorf("after RUNNING: %+v", got)
	}
	if ci := e.describeInstance("prod", inst); ci.RunningTasksCount != 1 || ci.PendingTasksCount != 0 {
		t.Errorf("counts after RUNNING: %d running, %d pending", ci.RunningTasksCount, ci.PendingTasksCount)
	}
	if ids := e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("prod")}); len(ids) != 1 || ids[0] != id {
		t.Errorf("ListTasks: %v", ids)
	}

	e.clock.Advance(time.Second)
	stop := must(t, e.h.StopTask)(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("prod"), Task: aws.String(arn)}).Task
	if aws.ToString(stop.LastStatus) != "RUNNING" || aws.ToString(stop.DesiredStatus) != "STOPPED" || stop.StopCode != types.TaskStopCodeUserInitiated ||
		aws.ToString(stop.StoppedReason) != "Task stopped by user" || stop.StoppingAt == nil || stop.Tags == nil || len(stop.Tags) != 0 {
		t.Errorf("StopTask: %+v", stop)
	}
	if got := e.describeTask("prod", id); aws.ToString(got.LastStatus) != "STOPPING" {
		t.Errorf("after StopTask: %s", aws.ToString(got.LastStatus))
	}
	if ids := e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("prod")}); len(ids) != 0 {
		t.Errorf("RUNNING list after stop: %v", ids)
	}
	if ids := e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("prod"), DesiredStatus: types.DesiredStatusStopped}); len(ids) != 1 {
		t.Errorf("STOPPED list: %v", ids)
	}
	// StopTask again changes nothing. A task ARN names its cluster.
	again := must(t, e.h.StopTask)(e.ctx, &ecs.StopTaskInput{Task: aws.String(arn), Reason: aws.String("other")}).Task
	if aws.ToString(again.StoppedReason) != "Task stopped by user" || aws.ToString(again.LastStatus) != "STOPPING" {
		t.Errorf("second StopTask: %+v", again)
	}

	e.clock.Advance(time.Second)
	e.submit("", arn, "STOPPED", types.ContainerStateChange{ContainerName: aws.String("app"), Status: aws.String("STOPPED"), ExitCode: aws.Int32(0)})
	got = e.describeTask("prod", id)
	if aws.ToString(got.LastStatus) != "STOPPED" || !got.StoppedAt.Equal(testStart.Add(4*time.Second)) || got.ExecutionStoppedAt == nil ||
		aws.ToInt32(got.Containers[0].ExitCode) != 0 || got.Containers[0].ExitCode == nil || got.Version != 5 {
		t.Errorf("after STOPPED: %+v", got)
	}
	ci = e.describeInstance("prod", inst)
	if resource(ci.RemainingResources, "CPU") != "2048" || resource(ci.RemainingResources, "PORTS") != "22,2375,2376,51678,51679" ||
		ci.RunningTasksCount != 0 || ci.PendingTasksCount != 0 {
		t.Errorf("instance after stop: %+v", ci)
	}
	if kvs, _, _ := e.store.List(context.Background(), domain.InstanceTasksPrefix("prod", inst)); len(kvs) != 0 {
		t.Errorf("index after stop: %d keys", len(kvs))
	}
	// A late report changes nothing.
	e.submit("prod", id, "RUNNING")
	if got := e.describeTask("prod", id); got.Version != 5 {
		t.Errorf("a late report changed the task: version %d", got.Version)
	}
}

func TestRunTaskPlacementFailures(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 512, 1024, 8080)
	_, err := e.h.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web")})
	wantErr(t, err, "InvalidParameterException", "No Container Instances were found in your cluster.")

	a := e.registerInstance("prod", 4096, 1500)
	b := e.registerInstance("prod", 256, 8192)
	e.clock.Advance(time.Second)
	out := e.runTask("prod", "web", 3)
	if len(out.Tasks) != 1 || aws.ToString(out.Tasks[0].ContainerInstanceArn) != instanceARN("prod", a) {
		t.Fatalf("tasks: %+v", out.Tasks)
	}
	want := map[string]string{
		instanceARN("prod", a): "RESOURCE:MEMORY " + a + ": memory 1024 needed, 476 free",
		instanceARN("prod", b): "RESOURCE:CPU " + b + ": cpu 512 needed, 256 free",
	}
	if len(out.Failures) != 2 {
		t.Fatalf("failures: %+v", out.Failures)
	}
	for _, f := range out.Failures {
		if got := aws.ToString(f.Reason) + " " + aws.ToString(f.Detail); got != want[aws.ToString(f.Arn)] {
			t.Errorf("failure %s: %q, want %q", aws.ToString(f.Arn), got, want[aws.ToString(f.Arn)])
		}
	}
	e.setConnected("prod", a, false)
	out = e.runTask("prod", "web", 1)
	if len(out.Tasks) != 0 || reasonFor(out.Failures, a) != "AGENT" {
		t.Errorf("disconnected: %+v", out.Failures)
	}
	e.setConnected("prod", a, true)
	// The static port 8080 is taken on a; a bigger b takes the next one.
	c := e.registerInstance("prod", 4096, 8192)
	out = e.runTask("prod", "web", 2)
	if len(out.Tasks) != 1 || aws.ToString(out.Tasks[0].ContainerInstanceArn) != instanceARN("prod", c) {
		t.Errorf("tasks: %+v", out.Tasks)
	}
	reasons := map[string]string{}
	for _, f := range out.Failures {
		reasons[instanceID(aws.ToString(f.Arn))] = aws.ToString(f.Reason)
	}
	if reasons[a] != "RESOURCE:MEMORY" || reasons[c] != "RESOURCE:PORTS" || reasons[b] != "RESOURCE:CPU" {
		t.Errorf("reasons: %v", reasons)
	}
	must(t, e.h.UpdateContainerInstancesState)(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("prod"), ContainerInstances: []string{a, b, c}, Status: types.ContainerInstanceStatusDraining})
	out = e.runTask("prod", "web", 1)
	if len(out.Tasks) != 0 || len(out.Failures) != 3 || aws.ToString(out.Failures[0].Reason) != "DRAINING" {
		t.Errorf("all draining: %+v", out.Failures)
	}
}

// reasonFor is the failure reason reported for an instance.
func reasonFor(fs []types.Failure, id string) string {
	for _, f := range fs {
		if instanceID(aws.ToString(f.Arn)) == id {
			return aws.ToString(f.Reason)
		}
	}
	return "none"
}

func TestRunTaskValidation(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	e.registerInstance("default", 4096, 4096)
	e.registerTD("web", 0, 64, 0)
	old := e.registerTD("old", 0, 64, 0)
	must(t, e.h.DeregisterTaskDefinition)(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: old.TaskDefinitionArn})
	awsvpc := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("i"), Memory: aws.Int32(64)}
	must(t, e.h.RegisterTaskDefinition)(e.ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("vpc"), NetworkMode: types.NetworkModeAwsvpc, ContainerDefinitions: []types.ContainerDefinition{awsvpc}})

	strategies := make([]types.PlacementStrategy, 6)
	for i := range strategies {
		strategies[i] = types.PlacementStrategy{Type: types.PlacementStrategyTypeRandom}
	}
	constraints := make([]types.PlacementConstraint, 11)
	for i := range constraints {
		constraints[i] = types.PlacementConstraint{Type: types.PlacementConstraintTypeDistinctInstance}
	}
	tests := []struct {
		name string
		in   ecs.RunTaskInput
		code string
		msg  string
	}{
		{"count 0", ecs.RunTaskInput{Count: aws.Int32(0)}, "InvalidParameterException", "count must be between 1 and 10."},
		{"count 11", ecs.RunTaskInput{Count: aws.Int32(11)}, "InvalidParameterException", ""},
		{"fargate", ecs.RunTaskInput{LaunchType: types.LaunchTypeFargate}, "InvalidParameterException", "The FARGATE launch type is not supported by berth yet; use launchType EC2 or EXTERNAL."},
		{"launch type and strategy", ecs.RunTaskInput{LaunchType: types.LaunchTypeEc2, CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE")}}},
			"InvalidParameterException", "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."},
		{"bad launch type", ecs.RunTaskInput{LaunchType: "MOON"}, "InvalidParameterException", ""},
		{"inactive", ecs.RunTaskInput{TaskDefinition: old.TaskDefinitionArn}, "InvalidParameterException", "TaskDefinition is inactive"},
		{"unknown definition", ecs.RunTaskInput{TaskDefinition: aws.String("nope")}, "ClientException", "Unable to describe task definition."},
		{"unknown cluster", ecs.RunTaskInput{Cluster: aws.String("nope")}, "ClusterNotFoundException", "Cluster not found."},
		{"unknown container override", ecs.RunTaskInput{Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("db")}}}},
			"InvalidParameterException", "Override for container named db is not a container in the TaskDefinition."},
		{"six strategies", ecs.RunTaskInput{PlacementStrategy: strategies}, "InvalidParameterException", ""},
		{"binpack field", ecs.RunTaskInput{PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("disk")}}}, "InvalidParameterException", ""},
		{"eleven constraints", ecs.RunTaskInput{PlacementConstraints: constraints}, "InvalidParameterException", ""},
		{"memberOf without expression", ecs.RunTaskInput{PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf}}}, "InvalidParameterException", ""},
		{"awsvpc", ecs.RunTaskInput{TaskDefinition: aws.String("vpc")}, "InvalidParameterException", ""},
		{"propagate SERVICE", ecs.RunTaskInput{PropagateTags: types.PropagateTagsService}, "InvalidParameterException", ""},
		{"startedBy", ecs.RunTaskInput{StartedBy: aws.String("has space")}, "InvalidParameterException", ""},
		{"long token", ecs.RunTaskInput{ClientToken: aws.String(strings.Repeat("t", 65))}, "InvalidParameterException", ""},
		{"reserved tag", ecs.RunTaskInput{Tags: []types.Tag{tag("aws:x", "y")}}, "InvalidParameterException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.TaskDefinition == nil {
				in.TaskDefinition = aws.String("web")
			}
			_, err := e.h.RunTask(e.ctx, &in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if ids := e.listTasks(&ecs.ListTasksInput{}); len(ids) != 0 {
		t.Errorf("rejected RunTasks created %v", ids)
	}
	// Valid shapes are applied: a memberOf no instance satisfies gives
	// ECS's failure with the explanation; one that holds places the task.
	out := must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), LaunchType: types.LaunchTypeExternal,
		PlacementStrategy:    []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}, {Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}},
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.instance-type =~ t3.*")}},
	})
	if len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MemberOf placement constraint unsatisfied." ||
		!strings.Contains(aws.ToString(out.Failures[0].Detail), "ecs.instance-type") {
		t.Errorf("unsatisfiable memberOf: %+v %+v", out.Tasks, out.Failures)
	}
	out = must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), LaunchType: types.LaunchTypeExternal,
		PlacementStrategy:    []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}, {Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}},
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("not attribute:ecs.instance-type exists")}},
	})
	if len(out.Tasks) != 1 || out.Tasks[0].LaunchType != types.LaunchTypeExternal {
		t.Errorf("EXTERNAL with placement options: %+v %+v", out.Tasks, out.Failures)
	}
}

func TestRunTaskOverrides(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	inst := e.registerInstance("default", 4096, 4096)
	e.registerTD("web", 100, 512, 0)
	out := must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Overrides: &types.TaskOverride{
		ContainerOverrides: []types.ContainerOverride{{
			Name: aws.String("app"), Command: []string{"sh", "-c", "echo hi"}, Cpu: aws.Int32(300), MemoryReservation: aws.Int32(200),
			Environment: []types.KeyValuePair{{Name: aws.String("A"), Value: aws.String("1")}},
		}},
		TaskRoleArn: aws.String("arn:aws:iam::123456789012:role/app"),
	}})
	task := out.Tasks[0]
	co := task.Overrides.ContainerOverrides
	if len(co) != 1 || len(co[0].Command) != 3 || aws.ToString(task.Overrides.TaskRoleArn) == "" ||
		aws.ToString(task.Containers[0].Cpu) != "300" || aws.ToString(task.Containers[0].MemoryReservation) != "200" || aws.ToString(task.Cpu) != "300" {
		t.Errorf("task: %+v", task)
	}
	ci := e.describeInstance("default", inst)
	if resource(ci.RemainingResources, "CPU") != "3796" || resource(ci.RemainingResources, "MEMORY") != "3896" {
		t.Errorf("memoryReservation and cpu overrides are what placement debits: %+v", ci.RemainingResources)
	}
	out = must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Overrides: &types.TaskOverride{Cpu: aws.String("1 vCPU"), Memory: aws.String("1GB")}})
	if aws.ToString(out.Tasks[0].Cpu) != "1024" || aws.ToString(out.Tasks[0].Memory) != "1024" {
		t.Errorf("task-level overrides: %+v", out.Tasks[0])
	}
	ci = e.describeInstance("default", inst)
	if resource(ci.RemainingResources, "CPU") != "2772" || resource(ci.RemainingResources, "MEMORY") != "2872" {
		t.Errorf("after task-level overrides: %+v", ci.RemainingResources)
	}
}

func TestRunTaskClientToken(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	e.registerInstance("default", 4096, 4096)
	e.registerTD("web", 0, 64, 0)
	in := &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(2), ClientToken: aws.String("tok-1")}
	first := must(t, e.h.RunTask)(e.ctx, in)
	second := must(t, e.h.RunTask)(e.ctx, in)
	if len(first.Tasks) != 2 || len(second.Tasks) != 2 ||
		aws.ToString(first.Tasks[0].TaskArn) != aws.ToString(second.Tasks[0].TaskArn) ||
		aws.ToString(first.Tasks[1].TaskArn) != aws.ToString(second.Tasks[1].TaskArn) {
		t.Errorf("retry returned other tasks: %v / %v", first.Tasks, second.Tasks)
	}
	if ids := e.listTasks(&ecs.ListTasksInput{}); len(ids) != 2 {
		t.Errorf("%d tasks exist", len(ids))
	}
	_, err := e.h.RunTask(e.ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(1), ClientToken: aws.String("tok-1")})
	wantErr(t, err, "InvalidParameterException", "The clientToken was already used with different parameters.")
	// After the token's window it is a new request.
	e.clock.Advance(clientTokenTTL + time.Second)
	third := must(t, e.h.RunTask)(e.ctx, in)
	if aws.ToString(third.Tasks[0].TaskArn) == aws.ToString(first.Tasks[0].TaskArn) {
		t.Error("an expired token still replayed")
	}
}

// TestRunTaskStorm runs many RunTasks at once against few instances: no
// instance may ever be over-committed, every request must answer (tasks or
// failures, never an error), and each instance's accounting must equal the
// sum of the tasks placed on it.
func TestRunTaskStorm(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	const memory, per = 2000, 100
	insts := []string{e.registerInstance("default", 10240, memory), e.registerInstance("default", 10240, memory)}
	e.registerTD("web", 10, per, 0)
	e.registerTD("port", 0, 16, 9000)
	counting := &conflictCounter{Store: e.store}
	h := newTestHandlers(counting, e.clock)

	const workers = 24
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				family := "web"
				if (w+i)%5 == 0 {
					family = "port"
				}
				out, err := h.RunTask(e.ctx, &ecs.RunTaskInput{TaskDefinition: aws.String(family), Count: aws.Int32(int32(1 + rand.IntN(3)))})
				if err != nil {
					errs <- fmt.Errorf("%s (%s)", err, code(err))
					return
				}
				for _, f := range out.Failures {
					if r := aws.ToString(f.Reason); !strings.HasPrefix(r, "RESOURCE:") {
						errs <- fmt.Errorf("failure %s", r)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	placed := map[string][]types.Task{}
	ids := e.listTasks(&ecs.ListTasksInput{MaxResults: aws.Int32(100)})
	for i := 0; i < len(ids); i += 100 {
		out := must(t, e.h.DescribeTasks)(e.ctx, &ecs.DescribeTasksInput{Tasks: ids[i:min(i+100, len(ids))]})
		for _, task := range out.Tasks {
			id := instanceID(aws.ToString(task.ContainerInstanceArn))
			placed[id] = append(placed[id], task)
		}
	}
	t.Logf("%d tasks placed; %d commits conflicted and were placed again", len(ids), counting.conflicts.Load())
	for _, id := range insts {
		mem, ports := 0, 0
		for _, task := range placed[id] {
			if aws.ToString(task.Group) == "family:port" {
				mem += 16
				ports++
			} else {
				mem += per
			}
		}
		if mem > memory || ports > 1 {
			t.Errorf("instance %s over-committed: %d MiB of %d, port 9000 placed %d times", id, mem, memory, ports)
		}
		ci := e.describeInstance("default", id)
		if got, want := resource(ci.RemainingResources, "MEMORY"), fmt.Sprint(memory-mem); got != want {
			t.Errorf("instance %s: remaining memory %s, tasks account for %s", id, got, want)
		}
		if int(ci.PendingTasksCount) != len(placed[id]) {
			t.Errorf("instance %s: pending %d, tasks %d", id, ci.PendingTasksCount, len(placed[id]))
		}
	}
	// The listing is paged at 100: check that there is no second page lost.
	all := must(t, e.h.ListTasks)(e.ctx, &ecs.ListTasksInput{MaxResults: aws.Int32(100)})
	if all.NextToken != nil {
		t.Fatalf("more than 100 tasks placed on %d MiB", 2*memory)
	}
}

func TestStartTask(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	a := e.registerInstance("prod", 4096, 4096)
	b := e.registerInstance("prod", 4096, 100)
	gone := e.registerInstance("prod", 4096, 4096)
	must(t, e.h.DeregisterContainerInstance)(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("prod"), ContainerInstance: aws.String(gone)})
	e.registerTD("web", 0, 512, 0)
	out := must(t, e.h.StartTask)(e.ctx, &ecs.StartTaskInput{
		Cluster: aws.String("prod"), TaskDefinition: aws.String("web"),
		ContainerInstances: []string{instanceARN("prod", a), a, b, gone, "ffff"},
		Group:              aws.String("batch"),
	})
	if len(out.Tasks) != 2 || aws.ToString(out.Tasks[0].Group) != "batch" ||
		aws.ToString(out.Tasks[1].ContainerInstanceArn) != instanceARN("prod", a) {
		t.Errorf("tasks: %+v", out.Tasks)
	}
	want := []string{"RESOURCE:MEMORY " + b, "INACTIVE " + gone, "MISSING ffff"}
	if len(out.Failures) != len(want) {
		t.Fatalf("failures: %+v", out.Failures)
	}
	for i, f := range out.Failures {
		if got := aws.ToString(f.Reason) + " " + instanceID(aws.ToString(f.Arn)); got != want[i] {
			t.Errorf("failure %d: %s, want %s", i, got, want[i])
		}
	}
	_, err := e.h.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web")})
	wantErr(t, err, "InvalidParameterException", "Container instance cannot be empty.")
	_, err = e.h.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), ContainerInstances: make([]string, 11)})
	wantErr(t, err, "InvalidParameterException", "containerInstances can have at most 10 items.")
}

func TestTaskStopsOnItsOwn(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	e.registerInstance("default", 4096, 4096)
	e.registerTD("job", 0, 64, 0)
	id := instanceID(aws.ToString(e.runTask("default", "job", 1).Tasks[0].TaskArn))
	e.submit("default", id, "RUNNING")
	e.submit("default", id, "STOPPED", types.ContainerStateChange{ContainerName: aws.String("app"), Status: aws.String("STOPPED"), ExitCode: aws.Int32(3)})
	got := e.describeTask("default", id)
	if got.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(got.StoppedReason) != "Essential container in task exited" ||
		aws.ToInt32(got.Containers[0].ExitCode) != 3 || aws.ToString(got.DesiredStatus) != "STOPPED" {
		t.Errorf("%+v", got)
	}
	// Container reports alone change containers, not the task's status.
	id2 := instanceID(aws.ToString(e.runTask("default", "job", 1).Tasks[0].TaskArn))
	must(t, e.h.SubmitContainerStateChange)(e.ctx, &ecs.SubmitContainerStateChangeInput{
		Task: aws.String(id2), ContainerName: aws.String("app"), Status: aws.String("RUNNING"), RuntimeId: aws.String("c"),
	})
	if got := e.describeTask("default", id2); aws.ToString(got.LastStatus) != "PROVISIONING" || aws.ToString(got.Containers[0].LastStatus) != "RUNNING" {
		t.Errorf("after a container report: %+v", got)
	}
}

func TestStateChangeErrors(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	e.registerInstance("default", 4096, 4096)
	e.registerTD("job", 0, 64, 0)
	id := instanceID(aws.ToString(e.runTask("default", "job", 1).Tasks[0].TaskArn))
	tests := []struct {
		name   string
		task   string
		status string
		cs     []types.ContainerStateChange
		msg    string
	}{
		{"unknown task", "0123456789abcdef0123456789abcdef", "RUNNING", nil, "The referenced task was not found."},
		{"no task", "", "RUNNING", nil, "task is required."},
		{"bad status", id, "ACTIVATING", nil, "Invalid status ACTIVATING. Valid values are PENDING, RUNNING and STOPPED."},
		{"unknown container", id, "RUNNING", []types.ContainerStateChange{{ContainerName: aws.String("db")}}, ""},
	}
	for _, tt := range tests {
		in := &submitTaskStateChangeRequest{}
		in.Task, in.Status, in.Containers = aws.String(tt.task), aws.String(tt.status), tt.cs
		_, err := e.h.SubmitTaskStateChange(e.ctx, in)
		if code(err) != "InvalidParameterException" || tt.msg != "" && message(err) != tt.msg {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	_, err := e.h.SubmitContainerStateChange(e.ctx, &ecs.SubmitContainerStateChangeInput{Task: aws.String(id)})
	wantErr(t, err, "InvalidParameterException", "containerName is required.")
	_, err = e.h.StopTask(e.ctx, &ecs.StopTaskInput{Task: aws.String("nope")})
	wantErr(t, err, "InvalidParameterException", "The referenced task was not found.")
	_, err = e.h.StopTask(e.ctx, &ecs.StopTaskInput{Task: aws.String(id), Reason: aws.String(strings.Repeat("r", 256))})
	wantErr(t, err, "InvalidParameterException", "")
	if got := e.describeTask("default", id); aws.ToString(got.LastStatus) != "PROVISIONING" || got.Version != 1 {
		t.Errorf("rejected reports changed the task: %+v", got)
	}
}

func TestDescribeAndListTasks(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	a := e.registerInstance("prod", 8192, 8192)
	e.registerTD("web", 0, 64, 0)
	e.registerTD("job", 0, 64, 0)
	web := e.runTask("prod", "web", 3)
	job := must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("job"), StartedBy: aws.String("cron"), LaunchType: types.LaunchTypeExternal})
	svc := must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), Group: aws.String("service:api")})
	jobID := instanceID(aws.ToString(job.Tasks[0].TaskArn))

	count := func(in *ecs.ListTasksInput) int {
		in.Cluster = aws.String("prod")
		return len(e.listTasks(in))
	}
	for name, tt := range map[string]struct {
		in   ecs.ListTasksInput
		want int
	}{
		"all running":        {ecs.ListTasksInput{}, 5},
		"family":             {ecs.ListTasksInput{Family: aws.String("web")}, 4},
		"startedBy":          {ecs.ListTasksInput{StartedBy: aws.String("cron")}, 1},
		"service":            {ecs.ListTasksInput{ServiceName: aws.String("api")}, 1},
		"launch type":        {ecs.ListTasksInput{LaunchType: types.LaunchTypeExternal}, 1},
		"instance":           {ecs.ListTasksInput{ContainerInstance: aws.String(instanceARN("prod", a))}, 5},
		"unknown instance":   {ecs.ListTasksInput{ContainerInstance: aws.String("ffff")}, 0},
		"pending is nothing": {ecs.ListTasksInput{DesiredStatus: types.DesiredStatusPending}, 0},
		"stopped":            {ecs.ListTasksInput{DesiredStatus: types.DesiredStatusStopped}, 0},
		"combined":           {ecs.ListTasksInput{Family: aws.String("job"), StartedBy: aws.String("other")}, 0},
	} {
		if got := count(&tt.in); got != tt.want {
			t.Errorf("%s: %d tasks, want %d", name, got, tt.want)
		}
	}
	_, err := e.h.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), DesiredStatus: "DONE"})
	wantErr(t, err, "InvalidParameterException", "")
	_, err = e.h.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("nope")})
	wantErr(t, err, "ClusterNotFoundException", "")

	desc := must(t, e.h.DescribeTasks)(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"),
		Tasks: []string{aws.ToString(web.Tasks[0].TaskArn), jobID, "ffffffffffffffffffffffffffffffff", aws.ToString(svc.Tasks[0].TaskArn) + "x"}})
	if len(desc.Tasks) != 2 || desc.Tasks[0].Tags != nil || len(desc.Failures) != 2 {
		t.Fatalf("describe: %d tasks, failures %+v", len(desc.Tasks), desc.Failures)
	}
	if f := desc.Failures[0]; aws.ToString(f.Arn) != "arn:aws:ecs:us-east-1:123456789012:task/prod/ffffffffffffffffffffffffffffffff" || aws.ToString(f.Reason) != "MISSING" {
		t.Errorf("failure: %+v", f)
	}
	// A task is looked up in the cluster named (default when none), as in ECS.
	_, err = e.h.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Tasks: []string{jobID}})
	wantErr(t, err, "ClusterNotFoundException", "")
	e.createCluster("default")
	other := must(t, e.h.DescribeTasks)(e.ctx, &ecs.DescribeTasksInput{Tasks: []string{aws.ToString(job.Tasks[0].TaskArn)}})
	if len(other.Tasks) != 0 || len(other.Failures) != 1 {
		t.Errorf("a task of prod described in default: %+v", other)
	}
	_, err = e.h.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod")})
	wantErr(t, err, "InvalidParameterException", "Tasks cannot be empty.")
	_, err = e.h.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: make([]string, 101)})
	wantErr(t, err, "InvalidParameterException", "taskIds can have at most 100 items.")
	_, err = e.h.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: []string{jobID}, Include: []types.TaskField{"X"}})
	wantErr(t, err, "InvalidParameterException", "include should be one of [TAGS]")

	var seen []string
	var tok *string
	for {
		out := must(t, e.h.ListTasks)(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), MaxResults: aws.Int32(2), NextToken: tok})
		seen = append(seen, out.TaskArns...)
		if tok = out.NextToken; tok == nil {
			break
		}
	}
	if len(seen) != 5 {
		t.Errorf("paged: %d", len(seen))
	}
}

// conflictCounter counts transactions that failed their conditions.
type conflictCounter struct {
	store.Store
	conflicts atomic.Int32
}

func (s *conflictCounter) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	rev, err := s.Store.Txn(ctx, conds, ops)
	if errors.Is(err, errdefs.ErrConflict) {
		s.conflicts.Add(1)
	}
	return rev, err
}

// interleavingStore runs before, once, just ahead of the first transaction
// that writes a container-instance record, standing in for a concurrent
// request that commits between this request's read and its write.
type interleavingStore struct {
	store.Store
	once   sync.Once
	before func()
	txns   atomic.Int32
}

func (s *interleavingStore) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	for _, op := range ops {
		if strings.HasPrefix(op.Key, domain.AllContainerInstancesPrefix) {
			s.once.Do(s.before)
			break
		}
	}
	s.txns.Add(1)
	return s.Store.Txn(ctx, conds, ops)
}

// TestPlacementRetriesOnConflict: a placement whose instance changed between
// its read and its commit is placed again on a fresh snapshot, so the
// instance is not over-committed.
func TestPlacementRetriesOnConflict(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	inst := e.registerInstance("default", 1024, 1000)
	e.registerTD("big", 0, 600, 0)
	st := &interleavingStore{Store: e.store}
	st.before = func() {
		if out := e.runTask("default", "big", 1); len(out.Tasks) != 1 {
			t.Errorf("competing RunTask: %+v", out.Failures)
		}
	}
	h := newTestHandlers(st, e.clock)
	out := must(t, h.RunTask)(e.ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("big")})
	if len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:MEMORY" {
		t.Errorf("after the conflict: %d tasks, failures %+v", len(out.Tasks), out.Failures)
	}
	if st.txns.Load() != 1 {
		t.Errorf("%d transactions; the retry should have found no room and written nothing", st.txns.Load())
	}
	if ci := e.describeInstance("default", inst); resource(ci.RemainingResources, "MEMORY") != "400" || ci.PendingTasksCount != 1 {
		t.Errorf("instance: %+v", ci)
	}
}
