package ecs

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Task lastStatus values, in lifecycle order. desiredStatus is RUNNING or
// STOPPED (ECS never sets PENDING).
const (
	TaskStatusProvisioning   = "PROVISIONING"
	TaskStatusPending        = "PENDING"
	TaskStatusActivating     = "ACTIVATING"
	TaskStatusRunning        = "RUNNING"
	TaskStatusDeactivating   = "DEACTIVATING"
	TaskStatusStopping       = "STOPPING"
	TaskStatusDeprovisioning = "DEPROVISIONING"
	TaskStatusStopped        = "STOPPED"
)

// taskStatusRank orders lastStatus values; a task never moves backwards.
var taskStatusRank = map[string]int{
	TaskStatusProvisioning:   0,
	TaskStatusPending:        1,
	TaskStatusActivating:     2,
	TaskStatusRunning:        3,
	TaskStatusDeactivating:   4,
	TaskStatusStopping:       5,
	TaskStatusDeprovisioning: 6,
	TaskStatusStopped:        7,
}

// containerStatusRank orders container lastStatus values.
var containerStatusRank = map[string]int{TaskStatusPending: 0, TaskStatusRunning: 1, TaskStatusStopped: 2}

// Stop texts ECS uses.
const (
	StoppedReasonUser               = "Task stopped by user"
	StoppedReasonEssentialExited    = "Essential container in task exited"
	StoppedReasonForcedDeregistered = "Container instance deregistration forced by user"
	// stoppedReasonFailedToStart is berth's text when the agent gives none.
	stoppedReasonFailedToStart = "Task failed to start"
	// MaxContainerReason is ECS's limit on a container's reason.
	MaxContainerReason = 1024
	// MaxStopReason is StopTask's limit on reason.
	MaxStopReason = 255
)

// The transient phases ACTIVATING, DEACTIVATING and DEPROVISIONING stand for
// work the control plane does around the agent's work (load-balancer
// registration, deregistration, network teardown). A task enters such a
// phase only when there is such work for it; none exists yet for EC2 and
// EXTERNAL tasks in bridge, host or none mode, so these phases are passed
// through. The hooks below are where the service and Fargate work will say
// otherwise.
func (t *TaskRecord) hasActivationWork() bool     { return false }
func (t *TaskRecord) hasDeactivationWork() bool   { return false }
func (t *TaskRecord) hasDeprovisioningWork() bool { return false }

func (t *TaskRecord) lastStatus() string { return aws.ToString(t.Task.LastStatus) }

func (t *TaskRecord) setLast(s string) { t.Task.LastStatus = aws.String(s) }

func (t *TaskRecord) touch(now time.Time) {
	t.Task.Version++
	t.UpdatedAt = now
}

// Stop asks the task to stop (StopTask, a scheduler): desiredStatus STOPPED
// with stoppingAt, stopCode and stoppedReason. A task not yet stopping moves
// to DEACTIVATING when it has deactivation work, else STOPPING; the agent
// then stops its containers and reports STOPPED. Stopping a task whose
// desired status is already STOPPED changes nothing (false).
func (t *TaskRecord) Stop(code types.TaskStopCode, reason string, now time.Time) bool {
	if aws.ToString(t.Task.DesiredStatus) == TaskStatusStopped {
		return false
	}
	t.Task.DesiredStatus = aws.String(TaskStatusStopped)
	t.Task.StopCode = code
	t.Task.StoppedReason = aws.String(reason)
	t.Task.StoppingAt = aws.Time(now)
	if taskStatusRank[t.lastStatus()] < taskStatusRank[TaskStatusDeactivating] {
		if t.hasDeactivationWork() {
			t.setLast(TaskStatusDeactivating)
		} else {
			t.setLast(TaskStatusStopping)
		}
	}
	t.Task.Tags = nil // StopTask deletes the task's tags
	t.touch(now)
	return true
}

// ForceStop marks the task STOPPED without its agent: its container
// instance was deregistered with force, so ECS no longer tracks it.
func (t *TaskRecord) ForceStop(reason string, now time.Time) bool {
	if t.lastStatus() == TaskStatusStopped {
		return false
	}
	if aws.ToString(t.Task.DesiredStatus) != TaskStatusStopped {
		t.Task.DesiredStatus = aws.String(TaskStatusStopped)
		t.Task.StopCode = types.TaskStopCodeUserInitiated
		t.Task.StoppedReason = aws.String(reason)
	}
	if t.Task.StoppingAt == nil {
		t.Task.StoppingAt = aws.Time(now)
	}
	t.Task.ExecutionStoppedAt = aws.Time(now)
	t.Task.StoppedAt = aws.Time(now)
	t.setLast(TaskStatusStopped)
	for i := range t.Task.Containers {
		t.Task.Containers[i].LastStatus = aws.String(TaskStatusStopped)
	}
	t.touch(now)
	return true
}

// TaskReport is a state change the agent reports (SubmitTaskStateChange,
// SubmitContainerStateChange). Status is PENDING, RUNNING, STOPPED or empty
// (a container-only report).
type TaskReport struct {
	Status             string
	Reason             string
	Containers         []ContainerReport
	PullStartedAt      *time.Time
	PullStoppedAt      *time.Time
	ExecutionStoppedAt *time.Time
}

// ContainerReport is the reported state of one container. Empty or nil
// fields leave the container's value unchanged.
type ContainerReport struct {
	Name            string
	Status          string // PENDING, RUNNING, STOPPED or empty
	ExitCode        *int32
	Reason          string
	RuntimeID       string
	ImageDigest     string
	NetworkBindings []types.NetworkBinding // nil: unchanged
	// HealthStatus comes from the agent's health checks (not part of the
	// SubmitXxx shapes; the agent channel may carry it).
	HealthStatus types.HealthStatus
}

// ValidReportStatus reports whether s is a status an agent may report.
func ValidReportStatus(s string) bool {
	return s == TaskStatusPending || s == TaskStatusRunning || s == TaskStatusStopped
}

// Apply applies an agent's report and says whether anything changed. The
// agent reports only PENDING, RUNNING and STOPPED; berth derives the rest:
//
//	report PENDING:  PROVISIONING → PENDING
//	report RUNNING:  PROVISIONING/PENDING → ACTIVATING (if activation work) → RUNNING; startedAt
//	report STOPPED:  any → DEPROVISIONING (if deprovisioning work) → STOPPED;
//	                 stoppedAt, executionStoppedAt, and, when nobody asked
//	                 the task to stop, desiredStatus STOPPED with stopCode
//	                 EssentialContainerExited (or TaskFailedToStart if it
//	                 never ran)
//
// Statuses never move backwards, so repeated or reordered reports are
// harmless; a STOPPED task takes no more reports. An unknown container name
// is an error.
func (t *TaskRecord) Apply(r TaskReport, now time.Time) (bool, error) {
	if r.Status != "" && !ValidReportStatus(r.Status) {
		return false, InvalidParameter(fmt.Sprintf("Invalid status %q. Valid values are PENDING, RUNNING and STOPPED.", r.Status))
	}
	for _, c := range r.Containers {
		if t.container(c.Name) < 0 {
			return false, InvalidParameter(fmt.Sprintf("Container %s is not a container of task %s.", c.Name, t.ID))
		}
		if c.Status != "" && !ValidReportStatus(c.Status) {
			return false, InvalidParameter(fmt.Sprintf("Invalid status %q for container %s. Valid values are PENDING, RUNNING and STOPPED.", c.Status, c.Name))
		}
	}
	if t.lastStatus() == TaskStatusStopped {
		return false, nil
	}
	changed := false
	for _, c := range r.Containers {
		if t.applyContainer(c) {
			changed = true
		}
	}
	setTime := func(dst **time.Time, v *time.Time) {
		if v != nil && *dst == nil {
			*dst = aws.Time(v.UTC())
			changed = true
		}
	}
	setTime(&t.Task.PullStartedAt, r.PullStartedAt)
	setTime(&t.Task.PullStoppedAt, r.PullStoppedAt)
	if r.Status != "" && t.Task.Connectivity == "" {
		t.Task.Connectivity = types.ConnectivityConnected
		t.Task.ConnectivityAt = aws.Time(now)
		changed = true
	}
	rank := taskStatusRank[t.lastStatus()]
	switch r.Status {
	case TaskStatusPending:
		if rank < taskStatusRank[TaskStatusPending] {
			t.setLast(TaskStatusPending)
			changed = true
		}
	case TaskStatusRunning:
		if t.Task.StartedAt == nil {
			t.Task.StartedAt = aws.Time(now)
			changed = true
		}
		if rank < taskStatusRank[TaskStatusActivating] {
			if t.hasActivationWork() {
				t.setLast(TaskStatusActivating)
			} else {
				t.setLast(TaskStatusRunning)
			}
			changed = true
		}
	case TaskStatusStopped:
		t.stopped(r, now)
		changed = true
	}
	if t.updateHealth() {
		changed = true
	}
	if changed {
		t.touch(now)
	}
	return changed, nil
}

// stopped records the agent's STOPPED report.
func (t *TaskRecord) stopped(r TaskReport, now time.Time) {
	if aws.ToString(t.Task.DesiredStatus) != TaskStatusStopped {
		t.Task.DesiredStatus = aws.String(TaskStatusStopped)
		reason := r.Reason
		if t.Task.StartedAt == nil {
			t.Task.StopCode = types.TaskStopCodeTaskFailedToStart
			if reason == "" {
				reason = t.firstContainerReason()
			}
			if reason == "" {
				reason = stoppedReasonFailedToStart
			}
		} else {
			t.Task.StopCode = types.TaskStopCodeEssentialContainerExited
			if reason == "" {
				reason = StoppedReasonEssentialExited
			}
		}
		t.Task.StoppedReason = aws.String(truncate(reason, MaxContainerReason))
	}
	if t.Task.StoppingAt == nil {
		t.Task.StoppingAt = aws.Time(now)
	}
	exec := now
	if r.ExecutionStoppedAt != nil {
		exec = r.ExecutionStoppedAt.UTC()
	}
	if t.Task.ExecutionStoppedAt == nil {
		t.Task.ExecutionStoppedAt = aws.Time(exec)
	}
	for i := range t.Task.Containers {
		t.Task.Containers[i].LastStatus = aws.String(TaskStatusStopped)
	}
	if t.hasDeprovisioningWork() {
		t.setLast(TaskStatusDeprovisioning)
		return
	}
	t.setLast(TaskStatusStopped)
	t.Task.StoppedAt = aws.Time(now)
}

func (t *TaskRecord) container(name string) int {
	for i := range t.Task.Containers {
		if aws.ToString(t.Task.Containers[i].Name) == name {
			return i
		}
	}
	return -1
}

func (t *TaskRecord) firstContainerReason() string {
	for _, c := range t.Task.Containers {
		if r := aws.ToString(c.Reason); r != "" {
			return r
		}
	}
	return ""
}

func (t *TaskRecord) applyContainer(r ContainerReport) bool {
	c := &t.Task.Containers[t.container(r.Name)]
	changed := false
	setStr := func(dst **string, v string) {
		if v != "" && aws.ToString(*dst) != v {
			*dst = aws.String(v)
			changed = true
		}
	}
	if r.Status != "" && containerStatusRank[r.Status] > containerStatusRank[aws.ToString(c.LastStatus)] {
		c.LastStatus = aws.String(r.Status)
		changed = true
	}
	if r.ExitCode != nil && (c.ExitCode == nil || *c.ExitCode != *r.ExitCode) {
		c.ExitCode = aws.Int32(*r.ExitCode)
		changed = true
	}
	setStr(&c.Reason, truncate(r.Reason, MaxContainerReason))
	setStr(&c.RuntimeId, r.RuntimeID)
	setStr(&c.ImageDigest, r.ImageDigest)
	if r.NetworkBindings != nil {
		c.NetworkBindings = r.NetworkBindings
		changed = true
	}
	if r.HealthStatus != "" && r.HealthStatus != c.HealthStatus {
		c.HealthStatus = r.HealthStatus
		changed = true
	}
	return changed
}

// updateHealth derives the task's healthStatus from its essential
// containers: HEALTHY when all are HEALTHY, UNHEALTHY when any is, else
// UNKNOWN.
func (t *TaskRecord) updateHealth() bool {
	h := types.HealthStatusHealthy
	for _, c := range t.Task.Containers {
		name := aws.ToString(c.Name)
		essential := false
		for _, e := range t.Essential {
			if e == name {
				essential = true
			}
		}
		if !essential {
			continue
		}
		switch c.HealthStatus {
		case types.HealthStatusUnhealthy:
			h = types.HealthStatusUnhealthy
		case types.HealthStatusHealthy:
		default:
			if h != types.HealthStatusUnhealthy {
				h = types.HealthStatusUnknown
			}
		}
	}
	if len(t.Essential) == 0 {
		h = types.HealthStatusUnknown
	}
	if h == t.Task.HealthStatus {
		return false
	}
	t.Task.HealthStatus = h
	return true
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
