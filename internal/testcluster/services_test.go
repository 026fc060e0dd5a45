package testcluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
)

// The service paths of issue 5, end to end: the SDK as the user, the real
// router, API, store and service controller, fake agents reporting through
// the API. Each test asserts what DescribeServices, ListTasks and
// DescribeTasks show.

const learnMore = " For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."

func zone(z string) types.Attribute { return Attr("ecs.availability-zone", z) }

// TestCreateServiceReachesSteadyState: desired 3 → 3 RUNNING tasks of
// the service (group, startedBy), one PRIMARY deployment COMPLETED once
// the settle time passed, the events in ECS's words, newest first, and
// the services-stable waiter satisfied.
func TestCreateServiceReachesSteadyState(t *testing.T) {
	tc := New(t)
	tc.AddInstance(2048, 2048, zone("us-east-1a"))
	tc.AddInstance(2048, 2048, zone("us-east-1b"))
	td := register(t, tc, "web")
	created := createService(t, tc, "web", td, 3)
	dep := aws.ToString(created.Deployments[0].Id)

	tc.Settle()
	s := describe(t, tc, "web")
	tasks := running(t, tc, "web")
	if s.RunningCount != 3 || s.PendingCount != 0 || len(tasks) != 3 {
		t.Fatalf("after settling: running %d pending %d, %d tasks listed", s.RunningCount, s.PendingCount, len(tasks))
	}
	for _, task := range tasks {
		if aws.ToString(task.Group) != "service:web" || aws.ToString(task.StartedBy) != dep || task.LaunchType != types.LaunchTypeEc2 {
			t.Errorf("task %s: group %q startedBy %q launchType %s", taskID(task), aws.ToString(task.Group), aws.ToString(task.StartedBy), task.LaunchType)
		}
	}
	// Before the settle time the tasks are not healthy yet.
	if d := s.Deployments; len(d) != 1 || d[0].RolloutState != types.DeploymentRolloutStateInProgress ||
		aws.ToString(d[0].RolloutStateReason) != "ECS deployment "+dep+" in progress." {
		t.Fatalf("before the settle time: %s", deploymentsString(s))
	}
	started := fmt.Sprintf("(service web) has started 3 tasks: (task %s) (task %s) (task %s).", ids(tasks)[0], ids(tasks)[1], ids(tasks)[2])
	if got := messages(s); len(got) != 1 || !sameTasks(got[0], started) {
		t.Fatalf("events %q, want [%q]", got, started)
	}

	tc.Advance(domain.SettleTime - time.Second)
	tc.Settle()
	if s := describe(t, tc, "web"); s.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress {
		t.Fatalf("completed before the settle time: %s", deploymentsString(s))
	}
	tc.Advance(time.Second)
	tc.Settle()
	s = describe(t, tc, "web")
	d := s.Deployments
	if len(d) != 1 || aws.ToString(d[0].Status) != "PRIMARY" || d[0].RolloutState != types.DeploymentRolloutStateCompleted ||
		aws.ToString(d[0].RolloutStateReason) != "ECS deployment "+dep+" completed." || d[0].RunningCount != 3 || d[0].DesiredCount != 3 {
		t.Fatalf("after the settle time: %s", deploymentsString(s))
	}
	want := []string{
		"(service web) has reached a steady state.",
		"(service web) (deployment " + dep + ") deployment completed.",
	}
	if got := messages(s); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || !sameTasks(got[2], started) {
		t.Fatalf("events %q, want %q then the start", got, want)
	}
	for _, e := range s.Events {
		if len(aws.ToString(e.Id)) != 36 || e.CreatedAt == nil {
			t.Errorf("event without id or time: %+v", e)
		}
	}
	if !s.Events[0].CreatedAt.Equal(Start.Add(domain.SettleTime)) {
		t.Errorf("steady-state event at %v, want the fake clock's %v", s.Events[0].CreatedAt, Start.Add(domain.SettleTime))
	}
	// Nothing more happens at steady state.
	tc.Advance(time.Hour)
	tc.Settle()
	if got := describe(t, tc, "web"); len(got.Events) != 3 {
		t.Errorf("events after an hour of steady state: %q", messages(got))
	}
	in := &ecs.DescribeServicesInput{Cluster: aws.String(tc.Name), Services: []string{"web"}}
	if err := ecs.NewServicesStableWaiter(tc.ECS).Wait(tc.Context(), in, time.Minute); err != nil {
		t.Errorf("services-stable: %v", err)
	}
}

// sameTasks compares two "has started" messages whatever the task order.
func sameTasks(got, want string) bool {
	split := func(s string) []string {
		parts := strings.Split(s, "(task ")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		slices.Sort(parts[1:])
		return parts
	}
	return slices.Equal(split(strings.TrimSuffix(got, ".")), split(strings.TrimSuffix(want, ".")))
}

// TestScale: scaling up starts the missing tasks; scaling in stops the
// not-yet-healthy tasks first, then tasks from the instance holding the
// most of the service's tasks, with ECS's reason; scaling to 0 stops all.
func TestScale(t *testing.T) {
	tc := New(t)
	small := tc.AddInstance(1024, 256) // room for two tasks of 128 MiB
	td := register(t, tc, "web")
	created := createService(t, tc, "web", td, 2)
	dep := aws.ToString(created.Deployments[0].Id)
	settleRollout(t, tc, "web")
	big := tc.AddInstance(1024, 1024)

	// Up to 3: the third task can only go on the big instance.
	updateService(t, tc, &ecs.UpdateServiceInput{DesiredCount: aws.Int32(3)})
	tc.Settle()
	tasks := running(t, tc, "web")
	if len(tasks) != 3 {
		t.Fatalf("scaled to 3: %d running", len(tasks))
	}
	var fresh string
	for _, task := range tasks {
		if instanceOf(task) == big {
			fresh = taskID(task)
		}
	}
	if s := describe(t, tc, "web"); !hasEvent(s, "(service web) has started 1 tasks: (task "+fresh+").") {
		t.Errorf("events %q lack the start of %s", messages(s), fresh)
	}

	// Down to 2 before the new task is healthy: it goes, although the
	// small instance holds more of the service's tasks.
	updateService(t, tc, &ecs.UpdateServiceInput{DesiredCount: aws.Int32(2)})
	tc.Settle()
	gone := stopped(t, tc, "web")
	if len(gone) != 1 || taskID(gone[0]) != fresh || aws.ToString(gone[0].StoppedReason) != "Scaling activity initiated by (deployment "+dep+")" ||
		gone[0].StopCode != types.TaskStopCodeServiceSchedulerInitiated {
		t.Fatalf("scale-in of a not-yet-healthy task: stopped %s", taskStates(gone))
	}

	// Up to 3 and healthy, then down to 2: a task of the small instance
	// (two of the service's tasks) goes.
	updateService(t, tc, &ecs.UpdateServiceInput{DesiredCount: aws.Int32(3)})
	tc.Settle()
	tc.Advance(domain.SettleTime)
	tc.Settle()
	updateService(t, tc, &ecs.UpdateServiceInput{DesiredCount: aws.Int32(2)})
	tc.Settle()
	var now []types.Task
	for _, task := range stopped(t, tc, "web") {
		if taskID(task) != fresh {
			now = append(now, task)
		}
	}
	if len(now) != 1 || instanceOf(now[0]) != small {
		t.Fatalf("scale-in of healthy tasks stopped %s, want one task of the small instance %s", taskStates(now), small)
	}
	s := describe(t, tc, "web")
	if s.RunningCount != 2 || !hasEvent(s, "(service web) has stopped 1 running tasks: (task "+taskID(now[0])+").") {
		t.Errorf("after scale-in: running %d events %q", s.RunningCount, messages(s))
	}

	updateService(t, tc, &ecs.UpdateServiceInput{DesiredCount: aws.Int32(0)})
	tc.Settle()
	if s := describe(t, tc, "web"); s.RunningCount != 0 || s.PendingCount != 0 || len(running(t, tc, "web")) != 0 {
		t.Errorf("scaled to 0: running %d pending %d", s.RunningCount, s.PendingCount)
	}
	if s := settleRollout(t, tc, "web"); !steady(s) {
		t.Errorf("scaled to 0 not steady: %s", deploymentsString(s))
	}
}

// TestRollingUpdate rolls a new revision out of a service of 4 with
// ECS's worked examples: at every observed moment runningCount ≥
// ceil(4 × min%), running + pending ≤ floor(4 × max%) and no more tasks
// hold an instance; the first reconcile starts and stops what ECS's
// arithmetic allows; the end is one COMPLETED deployment on the new
// revision.
func TestRollingUpdate(t *testing.T) {
	for _, c := range []struct {
		name               string
		minPct, maxPct     *int32
		minKeep, maxTotal  int32
		firstNew, firstOld int32 // PRIMARY pending, old running after the first reconcile
	}{
		{name: "50/200", minPct: aws.Int32(50), maxPct: aws.Int32(200), minKeep: 2, maxTotal: 8, firstNew: 4, firstOld: 2},
		{name: "default 100/200", minKeep: 4, maxTotal: 8, firstNew: 4, firstOld: 4},
		{name: "75/150", minPct: aws.Int32(75), maxPct: aws.Int32(150), minKeep: 3, maxTotal: 6, firstNew: 2, firstOld: 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := New(t)
			for _, z := range []string{"a", "b"} {
				tc.AddInstance(4096, 4096, zone("us-east-1"+z))
			}
			v1 := register(t, tc, "web")
			createService(t, tc, "web", v1, 4, func(in *ecs.CreateServiceInput) {
				in.DeploymentConfiguration = &types.DeploymentConfiguration{MinimumHealthyPercent: c.minPct, MaximumPercent: c.maxPct}
			})
			settleRollout(t, tc, "web")
			requireBounds(t, tc, "web", c.minKeep, c.maxTotal)

			v2 := register(t, tc, "web")
			up := updateService(t, tc, &ecs.UpdateServiceInput{TaskDefinition: aws.String(v2)})
			newDep := aws.ToString(up.Deployments[0].Id)
			tc.Reconcile()
			s := describe(t, tc, "web")
			if len(s.Deployments) != 2 || s.Deployments[0].PendingCount != c.firstNew || s.Deployments[1].RunningCount != c.firstOld {
				t.Fatalf("first reconcile: %s, want %d new pending and %d old running", deploymentsString(s), c.firstNew, c.firstOld)
			}
			s = settleRollout(t, tc, "web")
			if d := s.Deployments[0]; aws.ToString(d.Id) != newDep || aws.ToString(d.TaskDefinition) != v2 {
				t.Fatalf("end: %s", deploymentsString(s))
			}
			for _, task := range running(t, tc, "web") {
				if aws.ToString(task.TaskDefinitionArn) != v2 {
					t.Errorf("task %s still runs %s", taskID(task), revisionOf(aws.ToString(task.TaskDefinitionArn)))
				}
			}
			if !hasEvent(s, "(service web) (deployment "+newDep+") deployment completed.") {
				t.Errorf("events %q", messages(s))
			}
		})
	}
}

// TestMinZeroMax100 is ECS's "1 at 0/100" example: the old task stops
// first, then the new one starts; never two tasks at once. The container
// maps a static host port on the only instance, the set-up that needs
// this configuration.
func TestMinZeroMax100(t *testing.T) {
	tc := New(t)
	tc.AddInstance(1024, 1024)
	v1 := register(t, tc, "web", hostPort(80))
	createService(t, tc, "web", v1, 1, func(in *ecs.CreateServiceInput) {
		in.DeploymentConfiguration = &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(0), MaximumPercent: aws.Int32(100)}
	})
	settleRollout(t, tc, "web")
	requireBounds(t, tc, "web", 0, 1)

	v2 := register(t, tc, "web", hostPort(80))
	updateService(t, tc, &ecs.UpdateServiceInput{TaskDefinition: aws.String(v2)})
	s := settleRollout(t, tc, "web")
	if tasks := running(t, tc, "web"); len(tasks) != 1 || aws.ToString(tasks[0].TaskDefinitionArn) != v2 {
		t.Errorf("end: %s", taskStates(tasks))
	}
	if hasEvent(s, "was unable to place a task") {
		t.Errorf("the new task could not be placed while the old one held the port: %q", messages(s))
	}
}

// TestStuckDeployment is ECS's "3 at 100/125" example: nothing can start
// or stop; the service says so in ECS's words, once, and proceeds when
// maximumPercent is raised.
func TestStuckDeployment(t *testing.T) {
	tc := New(t)
	tc.AddInstance(4096, 4096)
	v1 := register(t, tc, "web")
	createService(t, tc, "web", v1, 3, func(in *ecs.CreateServiceInput) {
		in.DeploymentConfiguration = &types.DeploymentConfiguration{MaximumPercent: aws.Int32(125)}
	})
	settleRollout(t, tc, "web")
	v2 := register(t, tc, "web")
	updateService(t, tc, &ecs.UpdateServiceInput{TaskDefinition: aws.String(v2)})
	tc.Settle()
	tc.Advance(time.Hour)
	tc.Settle()
	s := describe(t, tc, "web")
	stuck := "(service web) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
	if countEvents(s, stuck) != 1 {
		t.Errorf("events %q, want the stuck message once", messages(s))
	}
	if d := s.Deployments; len(d) != 2 || d[0].RunningCount+d[0].PendingCount != 0 || d[1].RunningCount != 3 ||
		d[0].RolloutState != types.DeploymentRolloutStateInProgress {
		t.Fatalf("stuck deployment: %s", deploymentsString(s))
	}
	updateService(t, tc, &ecs.UpdateServiceInput{DeploymentConfiguration: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(200)}})
	s = settleRollout(t, tc, "web")
	if aws.ToString(s.Deployments[0].TaskDefinition) != v2 {
		t.Errorf("after raising maximumPercent: %s", deploymentsString(s))
	}
}

// TestCircuitBreaker: a revision whose tasks cannot start trips the
// breaker at ECS's threshold (10 for desired 2). Without rollback the
// deployment is FAILED and launches nothing more; with rollback the last
// COMPLETED revision comes back, in ECS's words.
func TestCircuitBreaker(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollback=%v", rollback), func(t *testing.T) {
			tc := New(t)
			tc.AddInstance(4096, 4096)
			v1 := register(t, tc, "web")
			created := createService(t, tc, "web", v1, 2, func(in *ecs.CreateServiceInput) {
				in.DeploymentConfiguration = &types.DeploymentConfiguration{
					DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: rollback},
				}
			})
			good := aws.ToString(created.Deployments[0].Id)
			settleRollout(t, tc, "web")
			requireBounds(t, tc, "web", 2, 4)
			var failed *types.Deployment // the FAILED deployment, when seen
			tc.Observe(func() {
				for _, d := range describe(t, tc, "web").Deployments {
					if d.RolloutState == types.DeploymentRolloutStateFailed {
						failed = &d
					}
				}
			})

			bad := register(t, tc, "web", fake(FakeFail))
			up := updateService(t, tc, &ecs.UpdateServiceInput{TaskDefinition: aws.String(bad)})
			badDep := aws.ToString(up.Deployments[0].Id)
			for i := 0; failed == nil; i++ {
				if i == 30 {
					s := describe(t, tc, "web")
					t.Fatalf("the breaker never tripped: %s", deploymentsString(s))
				}
				tc.Settle()
				tc.Advance(time.Minute) // past the throttle's delays
			}
			if aws.ToString(failed.Id) != badDep || failed.FailedTasks < 10 ||
				aws.ToString(failed.RolloutStateReason) != "ECS deployment circuit breaker: task failed to start." {
				t.Errorf("failed deployment %+v", *failed)
			}
			tripped := len(stopped(t, tc, "web"))
			s := describe(t, tc, "web")
			if !hasEvent(s, "(service web) (deployment "+badDep+") deployment failed: tasks failed to start.") {
				t.Errorf("events %q", messages(s))
			}
			if !rollback {
				tc.Advance(time.Hour)
				tc.Settle()
				s = describe(t, tc, "web")
				if n := len(stopped(t, tc, "web")); n != tripped || s.PendingCount != 0 {
					t.Errorf("a FAILED deployment launched again: %d failed tasks, then %d; %s", tripped, n, deploymentsString(s))
				}
				d := s.Deployments
				if len(d) != 2 || aws.ToString(d[0].Id) != badDep || d[0].RolloutState != types.DeploymentRolloutStateFailed ||
					d[0].FailedTasks < 10 || aws.ToString(d[1].Id) != good || d[1].RunningCount != 2 {
					t.Errorf("without rollback: %s", deploymentsString(s))
				}
				return
			}
			primary := s.Deployments[0]
			if aws.ToString(primary.TaskDefinition) != v1 || aws.ToString(primary.Id) == good ||
				aws.ToString(primary.RolloutStateReason) != "ECS deployment circuit breaker: rolling back to deploymentId "+good+"." {
				t.Errorf("rollback deployment: %s reason %q", deploymentsString(s), aws.ToString(primary.RolloutStateReason))
			}
			if !hasEvent(s, "(service web) rolling back to deployment "+good+".") {
				t.Errorf("events %q", messages(s))
			}
			s = settleRollout(t, tc, "web")
			if aws.ToString(s.Deployments[0].TaskDefinition) != v1 {
				t.Errorf("after the rollback: %s", deploymentsString(s))
			}
		})
	}
}

// TestThrottle: tasks that keep failing to start are relaunched at once
// five times, then after a delay that doubles with each failure (5 s,
// 10 s, 20 s), with the event "is unable to consistently start tasks
// successfully." once; a new deployment relaunches at once.
func TestThrottle(t *testing.T) {
	tc := New(t)
	tc.AddInstance(1024, 1024)
	bad := register(t, tc, "web", fake(FakeFail))
	createService(t, tc, "web", bad, 1)
	// Failing takes a moment: a failure at the deployment's very instant
	// is not counted (settle compares with After).
	tc.Advance(time.Second)
	tc.Settle()
	failedTasks := func() int {
		t.Helper()
		n := 0
		for _, task := range stopped(t, tc, "web") {
			if task.StopCode != types.TaskStopCodeTaskFailedToStart || aws.ToString(task.StoppedReason) != ReasonFakeFail ||
				aws.ToString(task.Containers[0].Reason) != ReasonFakeFail || task.StartedAt != nil {
				t.Fatalf("failed task %s: stopCode %s reason %q container reason %q", taskID(task), task.StopCode,
					aws.ToString(task.StoppedReason), aws.ToString(task.Containers[0].Reason))
			}
			n++
		}
		return n
	}
	if n := failedTasks(); n != 6 {
		t.Fatalf("%d tasks failed before the throttle, want 6 (5 free relaunches)", n)
	}
	s := describe(t, tc, "web")
	throttled := "(service web) is unable to consistently start tasks successfully." + learnMore
	if countEvents(s, throttled) != 1 || s.PendingCount != 0 {
		t.Fatalf("throttled: pending %d events %q", s.PendingCount, messages(s))
	}
	for i, delay := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		tc.Advance(delay - time.Second)
		tc.Settle()
		if n := failedTasks(); n != 6+i {
			t.Fatalf("relaunched %v before the %v delay ended: %d failed tasks", time.Second, delay, n)
		}
		tc.Advance(time.Second)
		tc.Settle()
		if n := failedTasks(); n != 7+i {
			t.Fatalf("not relaunched when the %v delay ended: %d failed tasks", delay, n)
		}
	}
	if s := describe(t, tc, "web"); countEvents(s, throttled) != 1 {
		t.Errorf("the throttle event repeated: %q", messages(s))
	}

	good := register(t, tc, "web")
	updateService(t, tc, &ecs.UpdateServiceInput{TaskDefinition: aws.String(good)})
	tc.Settle()
	if tasks := running(t, tc, "web"); len(tasks) != 1 || aws.ToString(tasks[0].TaskDefinitionArn) != good {
		t.Fatalf("a new deployment is throttled: %s", taskStates(tasks))
	}
}

// TestUnhealthyTaskReplaced: a task whose container health check fails is
// stopped ("Task failed container health checks") and replaced within
// maximumPercent.
func TestUnhealthyTaskReplaced(t *testing.T) {
	for _, c := range []struct {
		name              string
		minPct, maxPct    int32
		minKeep, maxTotal int32
	}{
		{"100/200", 100, 200, 1, 4},
		{"50/100", 50, 100, 1, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := New(t)
			tc.AddInstance(4096, 4096)
			td := register(t, tc, "web", checked())
			createService(t, tc, "web", td, 2, func(in *ecs.CreateServiceInput) {
				in.DeploymentConfiguration = &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(c.minPct), MaximumPercent: aws.Int32(c.maxPct)}
			})
			tc.Settle() // health-checked tasks are healthy once HEALTHY: no settle time
			if s := describe(t, tc, "web"); !steady(s) {
				t.Fatalf("not steady: %s", deploymentsString(s))
			}
			requireBounds(t, tc, "web", c.minKeep, c.maxTotal)
			sick := running(t, tc, "web")[0]
			tc.SetHealth(aws.ToString(sick.TaskArn), types.HealthStatusUnhealthy)
			tc.Settle()
			gone := stopped(t, tc, "web")
			if len(gone) != 1 || taskID(gone[0]) != taskID(sick) || aws.ToString(gone[0].StoppedReason) != "Task failed container health checks" {
				t.Fatalf("stopped %s, want %s for its health checks", taskStates(gone), taskID(sick))
			}
			tasks := running(t, tc, "web")
			if len(tasks) != 2 || slices.Contains(ids(tasks), taskID(sick)) {
				t.Fatalf("not replaced: %s", taskStates(tasks))
			}
			for _, task := range tasks {
				if task.HealthStatus != types.HealthStatusHealthy {
					t.Errorf("task %s health %s", taskID(task), task.HealthStatus)
				}
			}
		})
	}
}

// TestHealthCheckGracePeriod: an UNHEALTHY task is left alone inside
// healthCheckGracePeriodSeconds and replaced once it ends.
func TestHealthCheckGracePeriod(t *testing.T) {
	tc := New(t)
	tc.AddInstance(4096, 4096)
	td := register(t, tc, "web", checked(), fake(FakeUnhealthy))
	createService(t, tc, "web", td, 1, func(in *ecs.CreateServiceInput) { in.HealthCheckGracePeriodSeconds = aws.Int32(60) })
	tc.Settle()
	first := running(t, tc, "web")
	if len(first) != 1 || first[0].HealthStatus != types.HealthStatusUnhealthy {
		t.Fatalf("first task: %s health %v", taskStates(first), first)
	}
	tc.Advance(59 * time.Second)
	tc.Settle()
	if gone := stopped(t, tc, "web"); len(gone) != 0 {
		t.Fatalf("stopped inside the grace period: %s", taskStates(gone))
	}
	tc.Advance(time.Second)
	tc.Settle()
	gone := stopped(t, tc, "web")
	if len(gone) != 1 || taskID(gone[0]) != taskID(first[0]) || aws.ToString(gone[0].StoppedReason) != "Task failed container health checks" {
		t.Fatalf("after the grace period: stopped %s", taskStates(gone))
	}
	if now := running(t, tc, "web"); len(now) != 1 || taskID(now[0]) == taskID(first[0]) {
		t.Fatalf("no replacement: %s", taskStates(now))
	}
}

// TestKilledTaskReplaced: a container killed from outside stops its task
// (EssentialContainerExited, the exit code kept) and the service starts
// another.
func TestKilledTaskReplaced(t *testing.T) {
	tc := New(t)
	tc.AddInstance(4096, 4096)
	td := register(t, tc, "web")
	createService(t, tc, "web", td, 2)
	settleRollout(t, tc, "web")
	victim := running(t, tc, "web")[0]
	tc.Kill(aws.ToString(victim.TaskArn), 137)
	tc.Settle()
	gone := stopped(t, tc, "web")
	if len(gone) != 1 || taskID(gone[0]) != taskID(victim) || gone[0].StopCode != types.TaskStopCodeEssentialContainerExited ||
		aws.ToString(gone[0].StoppedReason) != "Essential container in task exited" || aws.ToInt32(gone[0].Containers[0].ExitCode) != 137 {
		t.Fatalf("killed task: %s", taskStates(gone))
	}
	tasks := running(t, tc, "web")
	if len(tasks) != 2 || slices.Contains(ids(tasks), taskID(victim)) {
		t.Fatalf("not replaced: %s", taskStates(tasks))
	}
	if s := describe(t, tc, "web"); !hasEvent(s, "has started 1 tasks") {
		t.Errorf("events %q", messages(s))
	}
}

// TestDrainingInstance: draining an instance moves the service's tasks to
// the others while the service stays at 100% healthy (and within 200%); a
// standalone task on it keeps running.
func TestDrainingInstance(t *testing.T) {
	tc := New(t)
	a := tc.AddInstance(4096, 4096, zone("us-east-1a"))
	tc.AddInstance(4096, 4096, zone("us-east-1b"))
	tc.AddInstance(4096, 4096, zone("us-east-1c"))
	td := register(t, tc, "web")
	createService(t, tc, "web", td, 4)
	settleRollout(t, tc, "web")
	job := register(t, tc, "job")
	st, err := tc.ECS.StartTask(tc.Context(), &ecs.StartTaskInput{Cluster: aws.String(tc.Name), TaskDefinition: aws.String(job), ContainerInstances: []string{a}})
	if err != nil || len(st.Tasks) != 1 {
		t.Fatalf("StartTask: %v %+v", err, st)
	}
	standalone := aws.ToString(st.Tasks[0].TaskArn)
	tc.Settle()
	onA := 0
	for _, task := range running(t, tc, "web") {
		if instanceOf(task) == a {
			onA++
		}
	}
	if onA == 0 {
		t.Fatal("no task of the service on the instance to drain (spread by zone)")
	}
	requireBounds(t, tc, "web", 4, 8)

	if _, err := tc.ECS.UpdateContainerInstancesState(tc.Context(), &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String(tc.Name), ContainerInstances: []string{a}, Status: types.ContainerInstanceStatusDraining,
	}); err != nil {
		t.Fatal(err)
	}
	tc.Settle()
	if n := len(stopped(t, tc, "web")); n != 0 {
		t.Fatalf("%d healthy tasks stopped before their replacements were healthy", n)
	}
	s := settleRollout(t, tc, "web")
	for _, task := range running(t, tc, "web") {
		if instanceOf(task) == a {
			t.Errorf("task %s still on the draining instance", taskID(task))
		}
	}
	if gone := stopped(t, tc, "web"); len(gone) != onA {
		t.Errorf("stopped %s, want the %d tasks of the draining instance", taskStates(gone), onA)
	}
	if s.RunningCount != 4 {
		t.Errorf("running %d after draining", s.RunningCount)
	}
	if task := describeTasks(t, tc, []string{standalone})[0]; aws.ToString(task.LastStatus) != "RUNNING" || aws.ToString(task.DesiredStatus) != "RUNNING" {
		t.Errorf("standalone task on the draining instance: %s", taskStates([]types.Task{task}))
	}
}

// daemonHarness creates the DAEMON service "web" (constraints optional)
// and returns expect, which settles and checks the tasks per instance
// and desiredCount. Every observed moment, no instance holds two live
// tasks of the service and none in notOn holds one.
func daemonHarness(t *testing.T, tc *Cluster, td string, constraints []types.PlacementConstraint, notOn ...string) func(what string, want ...string) types.Service {
	t.Helper()
	createService(t, tc, "web", td, 0, func(in *ecs.CreateServiceInput) {
		in.DesiredCount = nil
		in.SchedulingStrategy = types.SchedulingStrategyDaemon
		in.PlacementConstraints = constraints
	})
	tc.Observe(func() {
		perInstance := map[string]int{}
		for _, task := range live(t, tc, "web") {
			perInstance[instanceOf(task)]++
		}
		for id, n := range perInstance {
			if n > 1 || n > 0 && slices.Contains(notOn, id) {
				t.Fatalf("instance %s holds %d tasks of the daemon service: %s", id, n, taskStates(live(t, tc, "web")))
			}
		}
	})
	return func(what string, want ...string) types.Service {
		t.Helper()
		s := settleRollout(t, tc, "web")
		got := map[string]int{}
		for _, task := range running(t, tc, "web") {
			got[instanceOf(task)]++
		}
		wantMap := map[string]int{}
		for _, id := range want {
			wantMap[id] = 1
		}
		if fmt.Sprint(got) != fmt.Sprint(wantMap) || s.DesiredCount != int32(len(want)) {
			t.Fatalf("%s: tasks per instance %v, want %v; desiredCount %d", what, got, wantMap, s.DesiredCount)
		}
		if !hasEvent(s, "(service web) has reached a steady state.") {
			t.Errorf("%s: events %q", what, messages(s))
		}
		return s
	}
}

// TestDaemon: one task per ACTIVE instance, following an instance that
// joins, drains and is deregistered; a new revision rolls instance by
// instance (never two tasks on one instance).
func TestDaemon(t *testing.T) {
	tc := New(t)
	a := tc.AddInstance(2048, 2048)
	b := tc.AddInstance(2048, 2048)
	v1 := register(t, tc, "agent")
	expect := daemonHarness(t, tc, v1, nil)
	expect("created", a, b)
	d := tc.AddInstance(2048, 2048)
	expect("an instance joined", a, b, d)

	v2 := register(t, tc, "agent")
	updateService(t, tc, &ecs.UpdateServiceInput{TaskDefinition: aws.String(v2)})
	s := expect("new revision", a, b, d)
	for _, task := range running(t, tc, "web") {
		if aws.ToString(task.TaskDefinitionArn) != v2 {
			t.Errorf("task %s on %s runs %s", taskID(task), instanceOf(task), revisionOf(aws.ToString(task.TaskDefinitionArn)))
		}
	}
	if len(s.Deployments) != 1 {
		t.Errorf("deployments after the new revision: %s", deploymentsString(s))
	}

	if _, err := tc.ECS.UpdateContainerInstancesState(tc.Context(), &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String(tc.Name), ContainerInstances: []string{a}, Status: types.ContainerInstanceStatusDraining,
	}); err != nil {
		t.Fatal(err)
	}
	expect("an instance drained", b, d)
	if _, err := tc.ECS.DeregisterContainerInstance(tc.Context(), &ecs.DeregisterContainerInstanceInput{
		Cluster: aws.String(tc.Name), ContainerInstance: aws.String(b), Force: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	expect("an instance deregistered", d)
}

// TestDaemonPlacementConstraints: an instance lacking the attribute the
// service's constraint asks for gets no task and does not count in
// desiredCount; the deployment still completes; an instance that joins
// with the attribute gets one.
func TestDaemonPlacementConstraints(t *testing.T) {
	tc := New(t)
	web := Attr("role", "web")
	a := tc.AddInstance(2048, 2048, web)
	b := tc.AddInstance(2048, 2048, web)
	other := tc.AddInstance(2048, 2048)
	v1 := register(t, tc, "agent")
	expect := daemonHarness(t, tc, v1,
		[]types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:role == web")}}, other)
	expect("created", a, b)
	d := tc.AddInstance(2048, 2048, web)
	tc.AddInstance(2048, 2048)
	expect("instances joined", a, b, d)

	// An instance that stops meeting the constraints loses its task.
	if _, err := tc.ECS.DeleteAttributes(tc.Context(), &ecs.DeleteAttributesInput{
		Cluster: aws.String(tc.Name),
		Attributes: []types.Attribute{{Name: aws.String("role"), TargetId: aws.String(b),
			TargetType: types.TargetTypeContainerInstance}},
	}); err != nil {
		t.Fatal(err)
	}
	expect("an attribute removed", a, d)
	for _, task := range stopped(t, tc, "web") {
		if instanceOf(task) == b && !strings.Contains(aws.ToString(task.StoppedReason), "placement constraints") {
			t.Errorf("the task on %s stopped for %q", b, aws.ToString(task.StoppedReason))
		}
	}
}

// TestDeleteService: with desiredCount 0 or with force, the service turns
// DRAINING, its tasks stop, then INACTIVE; ListServices no longer lists
// it, DescribeServices still shows it, UpdateService refuses it.
func TestDeleteService(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("force=%v", force), func(t *testing.T) {
			tc := New(t)
			tc.AddInstance(4096, 4096)
			td := register(t, tc, "web")
			createService(t, tc, "web", td, 2)
			settleRollout(t, tc, "web")
			del := &ecs.DeleteServiceInput{Cluster: aws.String(tc.Name), Service: aws.String("web")}
			if !force {
				_, err := tc.ECS.DeleteService(tc.Context(), del)
				var ipe *types.InvalidParameterException
				if !errors.As(err, &ipe) || ipe.ErrorMessage() != "The service cannot be stopped while it is scaled above 0." {
					t.Fatalf("DeleteService while scaled up: %v", err)
				}
				updateService(t, tc, &ecs.UpdateServiceInput{DesiredCount: aws.Int32(0)})
				tc.Settle()
			} else {
				del.Force = aws.Bool(true)
			}
			out, err := tc.ECS.DeleteService(tc.Context(), del)
			if err != nil || aws.ToString(out.Service.Status) != "DRAINING" || out.Service.DesiredCount != 0 {
				t.Fatalf("DeleteService: %v %+v", err, out)
			}
			list, err := tc.ECS.ListServices(tc.Context(), &ecs.ListServicesInput{Cluster: aws.String(tc.Name)})
			if err != nil || len(list.ServiceArns) != 0 {
				t.Errorf("ListServices lists a DRAINING service: %v %v", err, list.ServiceArns)
			}
			tc.Settle()
			s := describe(t, tc, "web")
			if aws.ToString(s.Status) != "INACTIVE" || s.RunningCount != 0 || len(running(t, tc, "web")) != 0 {
				t.Fatalf("after settling: %s running %d", aws.ToString(s.Status), s.RunningCount)
			}
			for _, task := range stopped(t, tc, "web") {
				if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeServiceSchedulerInitiated {
					t.Errorf("task of the deleted service: %s stopCode %s", taskStates([]types.Task{task}), task.StopCode)
				}
			}
			in := &ecs.DescribeServicesInput{Cluster: aws.String(tc.Name), Services: []string{"web"}}
			if err := ecs.NewServicesInactiveWaiter(tc.ECS).Wait(tc.Context(), in, time.Minute); err != nil {
				t.Errorf("services-inactive: %v", err)
			}
			list, err = tc.ECS.ListServices(tc.Context(), &ecs.ListServicesInput{Cluster: aws.String(tc.Name)})
			if err != nil || len(list.ServiceArns) != 0 {
				t.Errorf("ListServices lists an INACTIVE service: %v %v", err, list.ServiceArns)
			}
			_, err = tc.ECS.UpdateService(tc.Context(), &ecs.UpdateServiceInput{Cluster: aws.String(tc.Name), Service: aws.String("web"), DesiredCount: aws.Int32(1)})
			var sna *types.ServiceNotActiveException
			if !errors.As(err, &sna) || sna.ErrorMessage() != "Service was not ACTIVE." {
				t.Errorf("UpdateService of a deleted service: %v", err)
			}
		})
	}
}

// TestCreateServiceIdempotent: the same CreateService with the same
// clientToken is one service (one deployment, desired tasks once); the
// token with other parameters is refused.
func TestCreateServiceIdempotent(t *testing.T) {
	tc := New(t)
	tc.AddInstance(4096, 4096)
	td := register(t, tc, "web")
	token := func(in *ecs.CreateServiceInput) { in.ClientToken = aws.String("deploy-42") }
	first := createService(t, tc, "web", td, 2, token)
	tc.Settle()
	again := createService(t, tc, "web", td, 2, token)
	if aws.ToString(again.Deployments[0].Id) != aws.ToString(first.Deployments[0].Id) || len(again.Deployments) != 1 {
		t.Errorf("the retried CreateService made another deployment: %s", deploymentsString(again))
	}
	tc.Settle()
	if n := len(running(t, tc, "web")); n != 2 {
		t.Errorf("%d tasks after a retried CreateService, want 2", n)
	}
	_, err := tc.ECS.CreateService(tc.Context(), &ecs.CreateServiceInput{
		Cluster: aws.String(tc.Name), ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3), ClientToken: aws.String("deploy-42"),
	})
	var ipe *types.InvalidParameterException
	if !errors.As(err, &ipe) || ipe.ErrorMessage() != "Creation of service was not idempotent." {
		t.Errorf("CreateService with other parameters: %v", err)
	}
}

// TestPlacementFailure: a task no instance can take gives ECS's event
// naming the closest instance and what it lacks; an instance that can take
// it brings the service up.
func TestPlacementFailure(t *testing.T) {
	tc := New(t)
	td := register(t, tc, "web", memory(512))
	createService(t, tc, "web", td, 1)
	tc.Settle()
	none := "(service web) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster." + learnMore
	if s := describe(t, tc, "web"); !hasEvent(s, none) {
		t.Errorf("without instances: events %q", messages(s))
	}
	small := tc.AddInstance(1024, 256)
	tc.Settle()
	closest := "(service web) was unable to place a task because no container instance met all of its requirements. The closest matching container-instance " +
		small + " has insufficient memory available." + learnMore
	s := describe(t, tc, "web")
	if messages(s)[0] != closest || s.RunningCount+s.PendingCount != 0 {
		t.Fatalf("with a small instance: events %q", messages(s))
	}
	tc.Advance(time.Hour)
	tc.Settle()
	if n := countEvents(describe(t, tc, "web"), closest); n != 1 {
		t.Errorf("the placement event appears %d times, want once", n)
	}
	big := tc.AddInstance(1024, 1024)
	tc.Settle()
	tasks := running(t, tc, "web")
	if len(tasks) != 1 || instanceOf(tasks[0]) != big {
		t.Fatalf("after adding an instance: %s", taskStates(tasks))
	}
	if s := describe(t, tc, "web"); !strings.HasPrefix(messages(s)[0], "(service web) has started 1 tasks: (task "+taskID(tasks[0])+")") {
		t.Errorf("events %q", messages(s))
	}
}
