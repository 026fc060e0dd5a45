package ecs

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

// preparedTD is a registered task definition, as stored.
func preparedTD(t *testing.T, td types.TaskDefinition) *types.TaskDefinition {
	t.Helper()
	if err := PrepareTaskDefinition(&td, PrepareOptions{}); err != nil {
		t.Fatal(err)
	}
	td.Revision = 3
	td.TaskDefinitionArn = aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/" + aws.ToString(td.Family) + ":3")
	return &td
}

func cdef(name string, mod func(*types.ContainerDefinition)) types.ContainerDefinition {
	c := types.ContainerDefinition{Name: aws.String(name), Image: aws.String("img")}
	mod(&c)
	return c
}

func TestTaskResources(t *testing.T) {
	tests := []struct {
		name string
		td   types.TaskDefinition
		ov   *types.TaskOverride
		want Resources
	}{
		{"container memory and cpu", types.TaskDefinition{Family: aws.String("f"), ContainerDefinitions: []types.ContainerDefinition{
			cdef("a", func(c *types.ContainerDefinition) { c.Cpu = 256; c.Memory = aws.Int32(512) }),
			cdef("b", func(c *types.ContainerDefinition) {
				c.Cpu = 128
				c.MemoryReservation = aws.Int32(64)
				c.Memory = aws.Int32(1024)
			}),
		}}, nil, Resources{CPU: 384, Memory: 576}},
		{"task level wins", types.TaskDefinition{Family: aws.String("f"), Cpu: aws.String("1 vCPU"), Memory: aws.String("2GB"), ContainerDefinitions: []types.ContainerDefinition{
			cdef("a", func(c *types.ContainerDefinition) { c.Cpu = 256; c.Memory = aws.Int32(512) }),
		}}, nil, Resources{CPU: 1024, Memory: 2048}},
		{"overrides", types.TaskDefinition{Family: aws.String("f"), ContainerDefinitions: []types.ContainerDefinition{
			cdef("a", func(c *types.ContainerDefinition) { c.Cpu = 256; c.Memory = aws.Int32(512) }),
		}}, &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("a"), Cpu: aws.Int32(100), MemoryReservation: aws.Int32(300)}}},
			Resources{CPU: 100, Memory: 300}},
		{"task overrides", types.TaskDefinition{Family: aws.String("f"), ContainerDefinitions: []types.ContainerDefinition{
			cdef("a", func(c *types.ContainerDefinition) { c.Memory = aws.Int32(512) }),
		}}, &types.TaskOverride{Cpu: aws.String("2048"), Memory: aws.String("4096")}, Resources{CPU: 2048, Memory: 4096}},
		{"bridge ports: static only", types.TaskDefinition{Family: aws.String("f"), ContainerDefinitions: []types.ContainerDefinition{
			cdef("a", func(c *types.ContainerDefinition) {
				c.Memory = aws.Int32(64)
				c.PortMappings = []types.PortMapping{
					{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080)},
					{ContainerPort: aws.Int32(81)},
					{ContainerPort: aws.Int32(53), HostPort: aws.Int32(53), Protocol: types.TransportProtocolUdp},
				}
			}),
		}}, nil, Resources{Memory: 64, Ports: []int32{8080}, PortsUDP: []int32{53}}},
		{"host mode", types.TaskDefinition{Family: aws.String("f"), NetworkMode: types.NetworkModeHost, ContainerDefinitions: []types.ContainerDefinition{
			cdef("a", func(c *types.ContainerDefinition) {
				c.Memory = aws.Int32(64)
				c.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(9000)}}
			}),
		}}, nil, Resources{Memory: 64, Ports: []int32{9000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := preparedTD(t, tt.td)
			if err := ValidateTaskOverride(td, tt.ov); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, TaskResources(td, tt.ov)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateTaskOverride(t *testing.T) {
	td := preparedTD(t, types.TaskDefinition{Family: aws.String("f"), ContainerDefinitions: []types.ContainerDefinition{
		cdef("app", func(c *types.ContainerDefinition) { c.Memory = aws.Int32(128) }),
	}})
	co := func(mod func(*types.ContainerOverride)) *types.TaskOverride {
		o := types.ContainerOverride{Name: aws.String("app")}
		mod(&o)
		return &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{o}}
	}
	if err := ValidateTaskOverride(td, &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{}}}); err != nil {
		t.Errorf("an empty container override is allowed: %v", err)
	}
	tests := []struct {
		ov  *types.TaskOverride
		msg string
	}{
		{co(func(o *types.ContainerOverride) { o.Name = aws.String("web") }), "Override for container named web is not a container in the TaskDefinition."},
		{&types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Command: []string{"x"}}}}, ""},
		{&types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app")}, {Name: aws.String("app")}}}, ""},
		{co(func(o *types.ContainerOverride) { o.Cpu = aws.Int32(-1) }), ""},
		{co(func(o *types.ContainerOverride) { o.Memory = aws.Int32(4) }), ""},
		{co(func(o *types.ContainerOverride) { o.Memory = aws.Int32(64); o.MemoryReservation = aws.Int32(128) }), ""},
		{&types.TaskOverride{Cpu: aws.String("lots")}, ""},
		{&types.TaskOverride{Memory: aws.String("0")}, ""},
		{co(func(o *types.ContainerOverride) { o.Command = []string{strings.Repeat("x", MaxOverridesBytes)} }), "Container Overrides length must be at most 8192"},
	}
	for _, tt := range tests {
		err := ValidateTaskOverride(td, tt.ov)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, ErrClient) {
			t.Errorf("%+v: %v is not InvalidParameterException", tt.ov, err)
			continue
		}
		if tt.msg != "" && errdefs.Message(err, "") != tt.msg {
			t.Errorf("message %q, want %q", errdefs.Message(err, ""), tt.msg)
		}
	}
}

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestTask(t *testing.T) TaskRecord {
	t.Helper()
	td := preparedTD(t, types.TaskDefinition{Family: aws.String("web"), ContainerDefinitions: []types.ContainerDefinition{
		cdef("app", func(c *types.ContainerDefinition) { c.Memory = aws.Int32(128); c.Cpu = 64 }),
		cdef("sidecar", func(c *types.ContainerDefinition) { c.MemoryReservation = aws.Int32(32); c.Essential = aws.Bool(false) }),
	}})
	return NewTask(NewTaskInput{
		Region: "us-east-1", Account: "123456789012", Cluster: "prod",
		ID: "0123456789abcdef0123456789abcdef", InstanceID: "fedcba9876543210fedcba9876543210",
		ContainerIDs:   []string{"11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-000000000000"},
		TaskDefinition: td, LaunchType: types.LaunchTypeEc2, Group: "family:web",
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}, Now: start,
	})
}

func TestNewTask(t *testing.T) {
	rec := newTestTask(t)
	got := rec.ToAPI(true)
	if aws.ToString(got.TaskArn) != "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef" ||
		aws.ToString(got.ClusterArn) != "arn:aws:ecs:us-east-1:123456789012:cluster/prod" ||
		aws.ToString(got.ContainerInstanceArn) != "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/fedcba9876543210fedcba9876543210" ||
		aws.ToString(got.TaskDefinitionArn) != "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3" {
		t.Errorf("ARNs: %+v", got)
	}
	if aws.ToString(got.LastStatus) != "PROVISIONING" || aws.ToString(got.DesiredStatus) != "RUNNING" || got.Version != 1 ||
		aws.ToString(got.Group) != "family:web" || got.StartedBy != nil || aws.ToString(got.Cpu) != "64" || got.Memory != nil ||
		got.HealthStatus != types.HealthStatusUnknown || !got.CreatedAt.Equal(start) || len(got.Tags) != 1 {
		t.Errorf("task: %+v", got)
	}
	containerARN := regexp.MustCompile(`^arn:aws:ecs:us-east-1:123456789012:container/prod/0123456789abcdef0123456789abcdef/[0-9a-f-]{36}$`)
	for _, c := range got.Containers {
		if !containerARN.MatchString(aws.ToString(c.ContainerArn)) || aws.ToString(c.LastStatus) != "PENDING" ||
			aws.ToString(c.TaskArn) != aws.ToString(got.TaskArn) || c.NetworkBindings == nil {
			t.Errorf("container: %+v", c)
		}
	}
	if aws.ToString(got.Containers[1].Cpu) != "0" || aws.ToString(got.Containers[1].MemoryReservation) != "32" || got.Containers[1].Memory != nil {
		t.Errorf("sidecar: %+v", got.Containers[1])
	}
	ov := got.Overrides
	if len(ov.ContainerOverrides) != 2 || aws.ToString(ov.ContainerOverrides[1].Name) != "sidecar" || ov.InferenceAcceleratorOverrides == nil {
		t.Errorf("overrides list every container by name: %+v", ov)
	}
	if notags := rec.ToAPI(false); notags.Tags != nil {
		t.Error("tags shown without include TAGS")
	}
	if rec.Phase() != PhasePending || !cmp.Equal(rec.Essential, []string{"app"}) {
		t.Errorf("record: %+v", rec)
	}
}

func TestTaskLifecycle(t *testing.T) {
	rec := newTestTask(t)
	at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	pull := at(1)
	apply := func(r TaskReport, now time.Time) bool {
		t.Helper()
		changed, err := rec.Apply(r, now)
		if err != nil {
			t.Fatal(err)
		}
		checkPhaseView(t, &rec)
		return changed
	}
	checkPhaseView(t, &rec)
	if !apply(TaskReport{Status: "PENDING", PullStartedAt: &pull}, at(1)) {
		t.Fatal("PENDING changed nothing")
	}
	if aws.ToString(rec.Task.LastStatus) != "PENDING" || !rec.Task.PullStartedAt.Equal(pull) ||
		rec.Task.Connectivity != types.ConnectivityConnected || rec.Task.Version != 2 {
		t.Errorf("after PENDING: %+v", rec.Task)
	}
	if apply(TaskReport{Status: "PENDING", PullStartedAt: &pull}, at(2)) {
		t.Error("a repeated report changed the task")
	}
	bind := []types.NetworkBinding{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(32768), Protocol: types.TransportProtocolTcp}}
	apply(TaskReport{Status: "RUNNING", Containers: []ContainerReport{
		{Name: "app", Status: "RUNNING", RuntimeID: "c1", ImageDigest: "sha256:ab", NetworkBindings: bind},
	}}, at(3))
	if aws.ToString(rec.Task.LastStatus) != "RUNNING" || !rec.Task.StartedAt.Equal(at(3)) || rec.Phase() != PhaseRunning {
		t.Errorf("after RUNNING: %+v", rec.Task)
	}
	app := rec.Task.Containers[0]
	if aws.ToString(app.LastStatus) != "RUNNING" || aws.ToString(app.RuntimeId) != "c1" || len(app.NetworkBindings) != 1 {
		t.Errorf("app: %+v", app)
	}
	// A late PENDING does not move the task back.
	apply(TaskReport{Status: "PENDING"}, at(4))
	if aws.ToString(rec.Task.LastStatus) != "RUNNING" {
		t.Errorf("moved back to %s", aws.ToString(rec.Task.LastStatus))
	}
	if !rec.Stop(types.TaskStopCodeUserInitiated, StoppedReasonUser, at(5)) {
		t.Fatal("Stop changed nothing")
	}
	if aws.ToString(rec.Task.LastStatus) != "STOPPING" || aws.ToString(rec.Task.DesiredStatus) != "STOPPED" ||
		!rec.Task.StoppingAt.Equal(at(5)) || rec.Task.Tags != nil || rec.Task.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("after Stop: %+v", rec.Task)
	}
	if rec.Stop(types.TaskStopCodeUserInitiated, "again", at(6)) || aws.ToString(rec.Task.StoppedReason) != StoppedReasonUser {
		t.Error("a second Stop changed the task")
	}
	// The agent still says RUNNING while it stops: stays STOPPING.
	apply(TaskReport{Status: "RUNNING"}, at(6))
	if aws.ToString(rec.Task.LastStatus) != "STOPPING" {
		t.Errorf("RUNNING report moved a stopping task to %s", aws.ToString(rec.Task.LastStatus))
	}
	exec := at(7)
	apply(TaskReport{Status: "STOPPED", ExecutionStoppedAt: &exec, Containers: []ContainerReport{
		{Name: "app", Status: "STOPPED", ExitCode: aws.Int32(143), Reason: "stopped"},
	}}, at(8))
	if aws.ToString(rec.Task.LastStatus) != "STOPPED" || !rec.Task.StoppedAt.Equal(at(8)) || !rec.Task.ExecutionStoppedAt.Equal(exec) ||
		aws.ToString(rec.Task.StoppedReason) != StoppedReasonUser || rec.Phase() != PhaseStopped {
		t.Errorf("after STOPPED: %+v", rec.Task)
	}
	for _, c := range rec.Task.Containers {
		if aws.ToString(c.LastStatus) != "STOPPED" {
			t.Errorf("container %s is %s", aws.ToString(c.Name), aws.ToString(c.LastStatus))
		}
	}
	if aws.ToInt32(rec.Task.Containers[0].ExitCode) != 143 {
		t.Errorf("exit code %v", rec.Task.Containers[0].ExitCode)
	}
	v := rec.Task.Version
	if apply(TaskReport{Status: "RUNNING"}, at(9)) || rec.Task.Version != v {
		t.Error("a STOPPED task took a report")
	}
}

func TestTaskStopsByItself(t *testing.T) {
	t.Run("essential container exited", func(t *testing.T) {
		rec := newTestTask(t)
		_, _ = rec.Apply(TaskReport{Status: "RUNNING"}, start)
		_, _ = rec.Apply(TaskReport{Status: "STOPPED", Containers: []ContainerReport{{Name: "app", Status: "STOPPED", ExitCode: aws.Int32(3)}}}, start.Add(time.Minute))
		if rec.Task.StopCode != types.TaskStopCodeEssentialContainerExited ||
			aws.ToString(rec.Task.StoppedReason) != "Essential container in task exited" ||
			aws.ToString(rec.Task.DesiredStatus) != "STOPPED" || rec.Task.StoppingAt == nil {
			t.Errorf("%+v", rec.Task)
		}
	})
	t.Run("failed to start", func(t *testing.T) {
		rec := newTestTask(t)
		_, _ = rec.Apply(TaskReport{Status: "STOPPED", Containers: []ContainerReport{
			{Name: "app", Status: "STOPPED", Reason: "CannotPullContainerError: pull access denied"},
		}}, start)
		if rec.Task.StopCode != types.TaskStopCodeTaskFailedToStart ||
			aws.ToString(rec.Task.StoppedReason) != "CannotPullContainerError: pull access denied" {
			t.Errorf("%+v", rec.Task)
		}
	})
	t.Run("forced deregistration", func(t *testing.T) {
		rec := newTestTask(t)
		if !rec.ForceStop(StoppedReasonForcedDeregistered, start) || rec.ForceStop("x", start) {
			t.Fatal("ForceStop")
		}
		if aws.ToString(rec.Task.LastStatus) != "STOPPED" || aws.ToString(rec.Task.StoppedReason) != StoppedReasonForcedDeregistered {
			t.Errorf("%+v", rec.Task)
		}
	})
}

func TestTaskReportErrorsAndHealth(t *testing.T) {
	rec := newTestTask(t)
	for _, r := range []TaskReport{
		{Status: "ACTIVATING"},
		{Containers: []ContainerReport{{Name: "nope"}}},
		{Containers: []ContainerReport{{Name: "app", Status: "DEAD"}}},
	} {
		if _, err := rec.Apply(r, start); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: %v", r, err)
		}
	}
	_, _ = rec.Apply(TaskReport{Containers: []ContainerReport{{Name: "app", HealthStatus: types.HealthStatusHealthy}}}, start)
	if rec.Task.HealthStatus != types.HealthStatusHealthy {
		t.Errorf("only the essential container counts: %s", rec.Task.HealthStatus)
	}
	_, _ = rec.Apply(TaskReport{Containers: []ContainerReport{{Name: "app", HealthStatus: types.HealthStatusUnhealthy}}}, start)
	if rec.Task.HealthStatus != types.HealthStatusUnhealthy {
		t.Errorf("health %s", rec.Task.HealthStatus)
	}
	long := strings.Repeat("é", MaxContainerReason)
	_, _ = rec.Apply(TaskReport{Containers: []ContainerReport{{Name: "app", Reason: long}}}, start)
	if r := aws.ToString(rec.Task.Containers[0].Reason); len(r) > MaxContainerReason || !strings.HasPrefix(long, r) {
		t.Errorf("reason not cut at a character boundary within %d bytes: %d bytes", MaxContainerReason, len(r))
	}
}

// checkPhaseView checks that the stored form of rec, decoded into a
// TaskPhaseView, has rec's phase (instances' task counts are read so).
func checkPhaseView(t *testing.T, rec *TaskRecord) {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var v TaskPhaseView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Phase() != rec.Phase() {
		t.Errorf("phase view %d, record %d (status %s)", v.Phase(), rec.Phase(), aws.ToString(rec.Task.LastStatus))
	}
}
