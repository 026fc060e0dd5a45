package testcluster

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestFakeAgent checks that the fake agent reports a standalone task as
// the real agent's runner does, step by step, seen through DescribeTasks:
// PENDING, RUNNING with runtime ids and host ports, health, and the three
// ways a task ends (asked to stop, failing to start, killed).
func TestFakeAgent(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []tdOption
		// act runs once the task is RUNNING (nil: nothing).
		act        func(c *Cluster, arn string)
		wantHealth types.HealthStatus
		// the end, after act and a Settle
		wantLast, wantCode, wantReason, wantContainerReason string
		wantExit                                            *int32
		wantStarted                                         bool
	}{
		{
			name: "runs until stopped", opts: []tdOption{hostPort(8080)},
			act: func(c *Cluster, arn string) {
				if _, err := c.ECS.StopTask(c.Context(), &ecs.StopTaskInput{Cluster: aws.String(c.Name), Task: aws.String(arn)}); err != nil {
					t.Fatal(err)
				}
			},
			wantHealth: types.HealthStatusUnknown, wantLast: "STOPPED", wantCode: "UserInitiated",
			wantReason: "Task stopped by user", wantExit: aws.Int32(0), wantStarted: true,
		},
		{
			name: "fails to start", opts: []tdOption{fake(FakeFail)},
			wantLast: "STOPPED", wantCode: "TaskFailedToStart", wantReason: ReasonFakeFail, wantContainerReason: ReasonFakeFail,
		},
		{
			name: "healthy", opts: []tdOption{checked()},
			wantHealth: types.HealthStatusHealthy, wantLast: "RUNNING", wantStarted: true,
		},
		{
			name: "unhealthy", opts: []tdOption{checked(), fake(FakeUnhealthy)},
			wantHealth: types.HealthStatusUnhealthy, wantLast: "RUNNING", wantStarted: true,
		},
		{
			name: "killed", opts: []tdOption{checked()},
			act:        func(c *Cluster, arn string) { c.Kill(arn, 137) },
			wantHealth: types.HealthStatusHealthy, wantLast: "STOPPED", wantCode: "EssentialContainerExited",
			wantReason: "Essential container in task exited", wantExit: aws.Int32(137), wantStarted: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(t)
			inst := c.AddInstance(1024, 1024)
			td := register(t, c, "job", tc.opts...)
			out, err := c.ECS.RunTask(c.Context(), &ecs.RunTaskInput{Cluster: aws.String(c.Name), TaskDefinition: aws.String(td)})
			if err != nil || len(out.Tasks) != 1 {
				t.Fatalf("RunTask: %v %+v", err, out)
			}
			arn := aws.ToString(out.Tasks[0].TaskArn)
			get := func() types.Task { return describeTasks(t, c, []string{arn})[0] }

			// One step per report: PENDING first, with the pull times.
			if !c.Step() {
				t.Fatal("first step reported nothing")
			}
			if task := get(); aws.ToString(task.LastStatus) != "PENDING" || task.PullStartedAt == nil || instanceOf(task) != inst {
				t.Fatalf("after one step: %s pull %v on %s", aws.ToString(task.LastStatus), task.PullStartedAt, instanceOf(task))
			}
			c.Step()
			task := get()
			if tc.wantStarted {
				ctr := task.Containers[0]
				if aws.ToString(task.LastStatus) != "RUNNING" || task.StartedAt == nil || len(aws.ToString(ctr.RuntimeId)) != 64 {
					t.Fatalf("after two steps: %s started %v runtime id %q", aws.ToString(task.LastStatus), task.StartedAt, aws.ToString(ctr.RuntimeId))
				}
				if tc.name == "runs until stopped" && (len(ctr.NetworkBindings) != 1 || aws.ToInt32(ctr.NetworkBindings[0].HostPort) != 8080) {
					t.Errorf("network bindings %+v, want host port 8080", ctr.NetworkBindings)
				}
				c.Step() // health, if checked
				if h := get().HealthStatus; h != tc.wantHealth {
					t.Errorf("health %s, want %s", h, tc.wantHealth)
				}
			}
			if tc.act != nil {
				tc.act(c, arn)
			}
			c.Settle()
			if c.Step() {
				t.Error("a settled cluster still reported")
			}
			task = get()
			ctr := task.Containers[0]
			if aws.ToString(task.LastStatus) != tc.wantLast || string(task.StopCode) != tc.wantCode ||
				aws.ToString(task.StoppedReason) != tc.wantReason || aws.ToString(ctr.Reason) != tc.wantContainerReason {
				t.Errorf("end: last %s stopCode %q reason %q container reason %q, want %s %q %q %q",
					aws.ToString(task.LastStatus), task.StopCode, aws.ToString(task.StoppedReason), aws.ToString(ctr.Reason),
					tc.wantLast, tc.wantCode, tc.wantReason, tc.wantContainerReason)
			}
			if (tc.wantExit == nil) != (ctr.ExitCode == nil) || tc.wantExit != nil && *tc.wantExit != *ctr.ExitCode {
				t.Errorf("exit code %v, want %v", ctr.ExitCode, tc.wantExit)
			}
			if (task.StartedAt != nil) != tc.wantStarted {
				t.Errorf("startedAt %v, want started %v", task.StartedAt, tc.wantStarted)
			}
			if tc.wantLast == "STOPPED" && (task.StoppedAt == nil || task.ExecutionStoppedAt == nil) {
				t.Errorf("stopped without stoppedAt/executionStoppedAt: %v %v", task.StoppedAt, task.ExecutionStoppedAt)
			}
		})
	}
}
