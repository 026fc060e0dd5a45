package taskrunner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/errdefs"
)

// phase is where a task's runner is. It only moves forward.
type phase string

const (
	phasePending  phase = "PENDING"  // pulling, allocating, creating, starting
	phaseRunning  phase = "RUNNING"  // every container started (or, if non-essential, exited)
	phaseStopping phase = "STOPPING" // stopping its containers
	phaseStopped  phase = "STOPPED"  // every container stopped; waiting for the report and the cleanup
)

func (p phase) rank() int {
	switch p {
	case phasePending:
		return 0
	case phaseRunning:
		return 1
	case phaseStopping:
		return 2
	case phaseStopped:
		return 3
	}
	return -1
}

// Container statuses inside the runner; reported as PENDING (none,
// created), RUNNING and STOPPED.
const (
	ctrNone    = ""
	ctrCreated = "CREATED"
	ctrRunning = "RUNNING"
	ctrStopped = "STOPPED"
)

// Health statuses, as ECS names them.
const (
	HealthUnknown   = "UNKNOWN"
	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
)

// recordVersion is the layout of taskExtra this code writes.
const recordVersion = 1

// taskRec is everything the runner knows about one task. It is persisted
// as a state.Task (toState/fromState) after every change that must survive
// an agent restart.
type taskRec struct {
	ARN string
	// Revision is the Sync revision last acted on; Desired is that state.
	Revision int64
	Desired  agentproto.Task
	Phase    phase
	// PortsAllocated says the host ports of the containers are reserved
	// and written into the containers' Ports.
	PortsAllocated               bool
	PullStartedAt, PullStoppedAt time.Time
	StartedAt                    time.Time
	ExecutionStoppedAt           time.Time
	// StopReportedAt is when the STOPPED report was acknowledged; the
	// cleanup runs CleanupWait later.
	StopReportedAt time.Time
	StoppedReason  string
	Containers     []*ctrRec
}

// ctrRec is one container of a task.
type ctrRec struct {
	Name       string
	RuntimeID  string
	Status     string
	ExitCode   *int
	Reason     string
	EndpointID string
	Image      string // as the task definition names it
	Digest     string
	Attachment *network.Attachment
	Ports      []state.PortBinding
	Health     string // "" when the container has no health check
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// taskExtra is the runner's part of a state.Task record (state.Task.Extra).
type taskExtra struct {
	V                  int             `json:"v"`
	Revision           int64           `json:"revision"`
	Desired            agentproto.Task `json:"desired"`
	Phase              phase           `json:"phase"`
	PortsAllocated     bool            `json:"portsAllocated,omitempty"`
	PullStartedAt      time.Time       `json:"pullStartedAt,omitzero"`
	PullStoppedAt      time.Time       `json:"pullStoppedAt,omitzero"`
	StartedAt          time.Time       `json:"startedAt,omitzero"`
	ExecutionStoppedAt time.Time       `json:"executionStoppedAt,omitzero"`
	StopReportedAt     time.Time       `json:"stopReportedAt,omitzero"`
	StoppedReason      string          `json:"stoppedReason,omitempty"`
	Containers         []ctrExtra      `json:"containers"`
}

type ctrExtra struct {
	Name       string              `json:"name"`
	Reason     string              `json:"reason,omitempty"`
	EndpointID string              `json:"endpointId"`
	Image      string              `json:"image"`
	Digest     string              `json:"digest,omitempty"`
	Attachment *network.Attachment `json:"attachment,omitempty"`
	Health     string              `json:"health,omitempty"`
	CreatedAt  time.Time           `json:"createdAt,omitzero"`
	StartedAt  time.Time           `json:"startedAt,omitzero"`
	FinishedAt time.Time           `json:"finishedAt,omitzero"`
}

// toState renders the record for the state database.
func (t *taskRec) toState() (state.Task, error) {
	x := taskExtra{
		V: recordVersion, Revision: t.Revision, Desired: t.Desired, Phase: t.Phase,
		PortsAllocated: t.PortsAllocated, PullStartedAt: t.PullStartedAt, PullStoppedAt: t.PullStoppedAt,
		StartedAt: t.StartedAt, ExecutionStoppedAt: t.ExecutionStoppedAt, StopReportedAt: t.StopReportedAt,
		StoppedReason: t.StoppedReason,
	}
	st := state.Task{ARN: t.ARN, DesiredStatus: t.Desired.DesiredStatus, KnownStatus: reportedTaskStatus(t.Phase)}
	for _, c := range t.Containers {
		x.Containers = append(x.Containers, ctrExtra{
			Name: c.Name, Reason: c.Reason, EndpointID: c.EndpointID, Image: c.Image, Digest: c.Digest,
			Attachment: c.Attachment, Health: c.Health, CreatedAt: c.CreatedAt, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt,
		})
		st.Containers = append(st.Containers, state.Container{
			Name: c.Name, RuntimeID: c.RuntimeID, KnownStatus: c.Status, ExitCode: c.ExitCode, PortBindings: c.Ports,
		})
	}
	raw, err := json.Marshal(x)
	if err != nil {
		return state.Task{}, errdefs.Internal(err)
	}
	st.Extra = raw
	return st, nil
}

// fromState reads a record the runner wrote. It checks what the runner
// relies on, so a damaged record is refused rather than half-resumed.
func fromState(st state.Task) (*taskRec, error) {
	bad := func(format string, a ...any) error {
		return errdefs.InvalidArgument(fmt.Sprintf("task record %q: ", st.ARN) + fmt.Sprintf(format, a...))
	}
	if st.ARN == "" {
		return nil, errdefs.InvalidArgument("task record without an ARN")
	}
	var x taskExtra
	if err := json.Unmarshal(st.Extra, &x); err != nil {
		return nil, bad("extra: %v", err)
	}
	switch {
	case x.V < 1 || x.V > recordVersion:
		return nil, bad("record version %d, this agent reads 1 to %d", x.V, recordVersion)
	case x.Phase.rank() < 0:
		return nil, bad("phase %q", x.Phase)
	case x.Desired.TaskARN != st.ARN:
		return nil, bad("desired state names task %q", x.Desired.TaskARN)
	case len(x.Containers) != len(st.Containers):
		return nil, bad("%d containers in the record, %d in its extra", len(st.Containers), len(x.Containers))
	case len(x.Containers) != len(x.Desired.TaskDefinition.ContainerDefinitions):
		return nil, bad("%d containers, %d in the task definition", len(x.Containers), len(x.Desired.TaskDefinition.ContainerDefinitions))
	}
	t := &taskRec{
		ARN: st.ARN, Revision: x.Revision, Desired: x.Desired, Phase: x.Phase, PortsAllocated: x.PortsAllocated,
		PullStartedAt: x.PullStartedAt, PullStoppedAt: x.PullStoppedAt, StartedAt: x.StartedAt,
		ExecutionStoppedAt: x.ExecutionStoppedAt, StopReportedAt: x.StopReportedAt, StoppedReason: x.StoppedReason,
	}
	seen := map[string]bool{}
	for i, xc := range x.Containers {
		sc := st.Containers[i]
		switch {
		case xc.Name == "" || xc.Name != sc.Name:
			return nil, bad("container %d is named %q and %q", i, xc.Name, sc.Name)
		case seen[xc.Name]:
			return nil, bad("container %q twice", xc.Name)
		case sc.KnownStatus != ctrNone && sc.KnownStatus != ctrCreated && sc.KnownStatus != ctrRunning && sc.KnownStatus != ctrStopped:
			return nil, bad("container %q status %q", xc.Name, sc.KnownStatus)
		case sc.RuntimeID == "":
			return nil, bad("container %q has no runtime id", xc.Name)
		case !validEndpointID(xc.EndpointID):
			return nil, bad("container %q endpoint id %q", xc.Name, xc.EndpointID)
		case xc.Health != "" && xc.Health != HealthUnknown && xc.Health != HealthHealthy && xc.Health != HealthUnhealthy:
			return nil, bad("container %q health %q", xc.Name, xc.Health)
		}
		seen[xc.Name] = true
		t.Containers = append(t.Containers, &ctrRec{
			Name: xc.Name, RuntimeID: sc.RuntimeID, Status: sc.KnownStatus, ExitCode: sc.ExitCode, Reason: xc.Reason,
			EndpointID: xc.EndpointID, Image: xc.Image, Digest: xc.Digest, Attachment: xc.Attachment, Ports: sc.PortBindings,
			Health: xc.Health, CreatedAt: xc.CreatedAt, StartedAt: xc.StartedAt, FinishedAt: xc.FinishedAt,
		})
	}
	return t, nil
}

// reportedTaskStatus is the status ECS shows for a phase.
func reportedTaskStatus(p phase) string {
	switch p {
	case phaseRunning:
		return "RUNNING"
	case phaseStopped:
		return "STOPPED"
	}
	return "PENDING" // STOPPING is still RUNNING or PENDING to ECS; the agent never reports it
}

func reportedContainerStatus(s string) string {
	switch s {
	case ctrRunning, ctrStopped:
		return s
	}
	return "PENDING"
}

func validEndpointID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// TaskID is the last part of a task ARN, made safe for file and container
// names: an ARN whose id holds anything else is named by a hash instead.
func TaskID(taskARN string) string {
	id := taskARN[strings.LastIndex(taskARN, "/")+1:]
	if len(id) > 0 && len(id) <= 40 && safeName(id) {
		return id
	}
	sum := sha256.Sum256([]byte(taskARN))
	return hex.EncodeToString(sum[:16])
}

// safeName reports whether s is letters, digits, '_' and '-' only,
// starting with a letter or digit.
func safeName(s string) bool {
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return s != ""
}

// runtimeID names the i-th container of a task in the runtime. It is
// derived, not random, so a container created just before an agent crash
// is found (and adopted) under the same name.
func runtimeID(taskARN string, i int, name string) string {
	prefix := TaskID(taskARN) + "-" + strconv.Itoa(i)
	clean := []byte(name)
	for j, c := range clean {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			clean[j] = '_'
		}
	}
	if room := 76 - len(prefix) - 1; len(clean) > room {
		clean = clean[:room]
	}
	if len(clean) == 0 {
		return prefix
	}
	return prefix + "-" + string(clean)
}

// LogPath is where the log of a task's container is written. Logs are kept
// after the task is cleaned up.
func LogPath(dataDir, taskARN, containerName string) string {
	return filepath.Join(LogDir(dataDir, taskARN), fileName(containerName)+".log")
}

// LogDir is the directory holding a task's container logs.
func LogDir(dataDir, taskARN string) string {
	return filepath.Join(dataDir, "logs", TaskID(taskARN))
}

// fileName keeps a container or volume name usable as one path element.
func fileName(name string) string {
	if safeName(name) && len(name) <= 200 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "x-" + hex.EncodeToString(sum[:16])
}

// volumeDir is the host directory of a task-scoped volume.
func volumeDir(dataDir, taskARN, volume string) string {
	return filepath.Join(taskVolumesDir(dataDir, taskARN), fileName(volume))
}

func taskVolumesDir(dataDir, taskARN string) string {
	return filepath.Join(dataDir, "volumes", "tasks", TaskID(taskARN))
}

// sharedVolumeDir is the host directory of a shared docker volume; it
// outlives the tasks that use it.
func sharedVolumeDir(dataDir, volume string) string {
	return filepath.Join(dataDir, "volumes", "shared", fileName(volume))
}
