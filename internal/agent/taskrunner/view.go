package taskrunner

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/state"
)

// TaskView is a read-only copy of what the engine knows about a task, for
// the task metadata endpoint and the agent's introspection.
type TaskView struct {
	ARN     string
	Cluster string
	Family  string
	// Revision is the task definition's revision.
	Revision      int32
	DesiredStatus string // RUNNING or STOPPED
	// KnownStatus is PENDING, RUNNING or STOPPED as reported; STOPPING
	// while its containers are being stopped.
	KnownStatus        string
	StoppedReason      string
	NetworkMode        network.Mode
	LaunchType         string
	Group              string
	CPU, Memory        string // task-level limits (overrides first), "" if unset
	PullStartedAt      time.Time
	PullStoppedAt      time.Time
	StartedAt          time.Time
	ExecutionStoppedAt time.Time
	Containers         []ContainerView
}

// ContainerView is one container of a TaskView.
type ContainerView struct {
	Name         string
	ContainerARN string
	RuntimeID    string
	Image        string
	ImageDigest  string
	// KnownStatus is PENDING, RUNNING or STOPPED; DesiredStatus RUNNING or
	// STOPPED.
	KnownStatus   string
	DesiredStatus string
	ExitCode      *int
	Reason        string
	Essential     bool
	Health        string // "" without a health check
	Ports         []state.PortBinding
	IPv4          string // bridge mode: the container's address
	EndpointID    string
	LogPath       string
	CreatedAt     time.Time
	StartedAt     time.Time
	FinishedAt    time.Time
	// Limits: CPU shares (0 = unset) and memory in MiB (0 = unset).
	CPU                  uint64
	MemoryMiB            int64
	MemoryReservationMiB int64
	Labels               map[string]string
}

// Task returns a snapshot of one task.
func (e *Engine) Task(taskARN string) (TaskView, bool) {
	r := e.runner(taskARN)
	if r == nil {
		return TaskView{}, false
	}
	return r.view(), true
}

// Tasks returns a snapshot of every task the engine holds, by ARN.
func (e *Engine) Tasks() []TaskView {
	var out []TaskView
	for _, r := range e.runnerList() {
		out = append(out, r.view())
	}
	return out
}

func (r *runner) view() TaskView {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, cfg := r.rec, r.e.cfg
	td := t.Desired.TaskDefinition
	v := TaskView{
		ARN: t.ARN, Cluster: cfg.Cluster, Family: aws.ToString(td.Family), Revision: td.Revision,
		DesiredStatus: t.Desired.DesiredStatus, KnownStatus: string(t.Phase), StoppedReason: t.StoppedReason,
		LaunchType: t.Desired.LaunchType, Group: t.Desired.Group,
		CPU: aws.ToString(td.Cpu), Memory: aws.ToString(td.Memory),
		PullStartedAt: t.PullStartedAt, PullStoppedAt: t.PullStoppedAt, StartedAt: t.StartedAt,
		ExecutionStoppedAt: t.ExecutionStoppedAt,
	}
	if o := t.Desired.Overrides; o != nil {
		if o.Cpu != nil {
			v.CPU = *o.Cpu
		}
		if o.Memory != nil {
			v.Memory = *o.Memory
		}
	}
	if r.plan != nil {
		v.NetworkMode = r.plan.mode
	}
	ctrDesired := "RUNNING"
	if t.Phase.rank() >= phaseStopping.rank() || t.Desired.DesiredStatus == "STOPPED" {
		ctrDesired = "STOPPED"
	}
	for i, c := range t.Containers {
		cv := ContainerView{
			Name: c.Name, ContainerARN: t.Desired.ContainerARNs[c.Name], RuntimeID: c.RuntimeID, Image: c.Image,
			ImageDigest: c.Digest, KnownStatus: reportedContainerStatus(c.Status), DesiredStatus: ctrDesired,
			Reason: c.Reason, Essential: true, Health: c.Health, Ports: slices.Clone(c.Ports), EndpointID: c.EndpointID,
			LogPath: LogPath(cfg.DataDir, t.ARN, c.Name), CreatedAt: c.CreatedAt, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt,
		}
		if c.ExitCode != nil {
			code := *c.ExitCode
			cv.ExitCode = &code
		}
		if c.Attachment != nil {
			cv.IPv4 = c.Attachment.IPv4
		}
		if r.plan != nil {
			cp := r.plan.containers[i]
			cv.Essential = cp.essential
			cv.CPU, cv.MemoryMiB, cv.MemoryReservationMiB = cp.cpu, cp.memory, cp.reservation
			cv.Labels = map[string]string{}
			for k, val := range cp.def.DockerLabels {
				if !strings.HasPrefix(k, "berth.") { // as the container got them
					cv.Labels[k] = val
				}
			}
			cv.Labels[labelECSCluster] = cfg.Cluster
			cv.Labels[labelECSContainer] = c.Name
			cv.Labels[labelECSTask] = t.ARN
			cv.Labels[labelECSFamily] = v.Family
			cv.Labels[labelECSVersion] = fmt.Sprint(td.Revision)
		}
		v.Containers = append(v.Containers, cv)
	}
	return v
}
