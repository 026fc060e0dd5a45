package ecs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
)

// TaskRecord is the value stored at TaskKey: the task exactly as
// DescribeTasks shows it (tags included), plus what berth needs to manage
// it. docs/architecture/task-lifecycle.md describes how it changes.
type TaskRecord struct {
	Task    types.Task `json:"task"`
	ID      string     `json:"id"`
	Cluster string     `json:"cluster"`
	// InstanceID is the container instance the task was placed on.
	InstanceID string `json:"instanceId,omitempty"`
	// Family and Revision name the task definition, for the agent channel.
	Family   string `json:"family"`
	Revision int32  `json:"revision"`
	// Essential lists the essential containers (task health derives from
	// them).
	Essential []string `json:"essential,omitempty"`
	// Reserved is what placement debited from the instance; Released says it
	// has been credited back (once, when the task reached STOPPED).
	Reserved  Resources `json:"reserved"`
	Released  bool      `json:"released,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// ARN is the task's ARN.
func (t *TaskRecord) ARN() string { return aws.ToString(t.Task.TaskArn) }

// ToAPI renders the task as DescribeTasks returns it; tags only when asked
// for (include TAGS; RunTask and StartTask always show them). The result
// shares no slice with the record that a caller could change.
func (t *TaskRecord) ToAPI(withTags bool) types.Task {
	out := t.Task
	out.Containers = slices.Clone(t.Task.Containers)
	out.Tags = nil
	if withTags {
		out.Tags = nonNil(slices.Clone(t.Task.Tags))
	}
	return out
}

// TaskPhase is how a task counts on its container instance.
type TaskPhase int

// Task phases.
const (
	PhasePending TaskPhase = iota // placed, not started yet
	PhaseRunning                  // started, not stopped yet
	PhaseStopped                  // STOPPED
)

// Phase says how the task counts on its instance.
func (t *TaskRecord) Phase() TaskPhase { return phaseOf(t.Task.LastStatus, t.Task.StartedAt) }

func phaseOf(lastStatus *string, startedAt *time.Time) TaskPhase {
	switch {
	case aws.ToString(lastStatus) == TaskStatusStopped:
		return PhaseStopped
	case startedAt != nil:
		return PhaseRunning
	default:
		return PhasePending
	}
}

// TaskPhaseView is the part of a stored TaskRecord that Phase reads.
// Decoding a record into it (to count an instance's tasks) keeps only two
// fields of the record.
type TaskPhaseView struct {
	Task struct {
		LastStatus *string
		StartedAt  *time.Time
	} `json:"task"`
}

// Phase is TaskRecord.Phase of the record v was decoded from.
func (v *TaskPhaseView) Phase() TaskPhase { return phaseOf(v.Task.LastStatus, v.Task.StartedAt) }

// NewTaskInput is what NewTask needs to build a task.
type NewTaskInput struct {
	Region, Account, Cluster string
	ID                       string // 32 hex characters
	InstanceID               string
	// ContainerIDs are one fresh UUID per container of the definition, in
	// order, for the container ARNs.
	ContainerIDs   []string
	TaskDefinition *types.TaskDefinition // ACTIVE, as stored
	Overrides      *types.TaskOverride   // validated with ValidateTaskOverride; may be nil
	LaunchType     types.LaunchType
	Group          string
	StartedBy      string
	Tags           []types.Tag
	EnableExecute  bool
	Reserved       Resources // from TaskResources
	Now            time.Time
}

// NewTask builds a new task record: PROVISIONING, desired RUNNING, each
// container PENDING, version 1.
func NewTask(in NewTaskInput) TaskRecord {
	td := in.TaskDefinition
	taskARN := arn.Task(in.Region, in.Account, in.Cluster, in.ID)
	ov := in.Overrides
	t := types.Task{
		TaskArn:              aws.String(taskARN),
		ClusterArn:           aws.String(arn.Cluster(in.Region, in.Account, in.Cluster)),
		TaskDefinitionArn:    td.TaskDefinitionArn,
		ContainerInstanceArn: aws.String(arn.ContainerInstance(in.Region, in.Account, in.Cluster, in.InstanceID)),
		Overrides:            renderOverrides(td, ov),
		LastStatus:           aws.String(TaskStatusProvisioning),
		DesiredStatus:        aws.String(TaskStatusRunning),
		Group:                aws.String(in.Group),
		LaunchType:           in.LaunchType,
		CreatedAt:            aws.Time(in.Now),
		HealthStatus:         types.HealthStatusUnknown,
		Version:              1,
		Tags:                 in.Tags,
		Attachments:          []types.Attachment{},
		EnableExecuteCommand: in.EnableExecute,
	}
	if in.StartedBy != "" {
		t.StartedBy = aws.String(in.StartedBy)
	}
	if cpu := effectiveTaskCPU(td, ov); cpu != "" {
		t.Cpu = aws.String(cpu)
	}
	if mem := effectiveTaskMemory(td, ov); mem != "" {
		t.Memory = aws.String(mem)
	}
	rec := TaskRecord{
		ID:         in.ID,
		Cluster:    in.Cluster,
		InstanceID: in.InstanceID,
		Family:     aws.ToString(td.Family),
		Revision:   td.Revision,
		Reserved:   in.Reserved,
		UpdatedAt:  in.Now,
	}
	for i, cd := range td.ContainerDefinitions {
		name := aws.ToString(cd.Name)
		co := containerOverride(ov, name)
		c := types.Container{
			ContainerArn:      aws.String(ContainerARN(in.Region, in.Account, in.Cluster, in.ID, in.ContainerIDs[i])),
			TaskArn:           aws.String(taskARN),
			Name:              aws.String(name),
			Image:             cd.Image,
			LastStatus:        aws.String(TaskStatusPending),
			HealthStatus:      types.HealthStatusUnknown,
			NetworkBindings:   []types.NetworkBinding{},
			NetworkInterfaces: []types.NetworkInterface{},
			Cpu:               aws.String(strconv.Itoa(int(containerCPU(cd, co)))),
		}
		if m := containerMemory(cd, co); m != nil {
			c.Memory = aws.String(strconv.Itoa(int(*m)))
		}
		if m := containerMemoryReservation(cd, co); m != nil {
			c.MemoryReservation = aws.String(strconv.Itoa(int(*m)))
		}
		t.Containers = append(t.Containers, c)
		if cd.Essential == nil || *cd.Essential {
			rec.Essential = append(rec.Essential, name)
		}
	}
	rec.Task = t
	return rec
}

// ContainerARN returns arn:aws:ecs:{region}:{account}:container/{cluster}/{task id}/{uuid}.
func ContainerARN(region, account, cluster, taskID, uuid string) string {
	return "arn:" + arn.Partition(region) + ":ecs:" + region + ":" + account + ":container/" + cluster + "/" + taskID + "/" + uuid
}

// renderOverrides is the task's overrides as ECS shows them: every
// container of the definition listed by name (with its override when one
// was given), and an empty inferenceAcceleratorOverrides.
func renderOverrides(td *types.TaskDefinition, ov *types.TaskOverride) *types.TaskOverride {
	out := &types.TaskOverride{
		ContainerOverrides:            []types.ContainerOverride{},
		InferenceAcceleratorOverrides: []types.InferenceAcceleratorOverride{},
	}
	if ov != nil {
		out.Cpu, out.Memory = ov.Cpu, ov.Memory
		out.TaskRoleArn, out.ExecutionRoleArn = ov.TaskRoleArn, ov.ExecutionRoleArn
		out.EphemeralStorage = ov.EphemeralStorage
		if ov.InferenceAcceleratorOverrides != nil {
			out.InferenceAcceleratorOverrides = ov.InferenceAcceleratorOverrides
		}
	}
	for _, cd := range td.ContainerDefinitions {
		name := aws.ToString(cd.Name)
		if co := containerOverride(ov, name); co != nil {
			out.ContainerOverrides = append(out.ContainerOverrides, *co)
		} else {
			out.ContainerOverrides = append(out.ContainerOverrides, types.ContainerOverride{Name: aws.String(name)})
		}
	}
	return out
}

func containerOverride(ov *types.TaskOverride, name string) *types.ContainerOverride {
	if ov == nil {
		return nil
	}
	for i := range ov.ContainerOverrides {
		if aws.ToString(ov.ContainerOverrides[i].Name) == name {
			return &ov.ContainerOverrides[i]
		}
	}
	return nil
}

func containerCPU(cd types.ContainerDefinition, co *types.ContainerOverride) int32 {
	if co != nil && co.Cpu != nil {
		return *co.Cpu
	}
	return cd.Cpu
}

func containerMemory(cd types.ContainerDefinition, co *types.ContainerOverride) *int32 {
	if co != nil && co.Memory != nil {
		return co.Memory
	}
	return cd.Memory
}

func containerMemoryReservation(cd types.ContainerDefinition, co *types.ContainerOverride) *int32 {
	if co != nil && co.MemoryReservation != nil {
		return co.MemoryReservation
	}
	return cd.MemoryReservation
}

// effectiveTaskCPU is the task-level cpu ECS reports: the override, else the
// definition's, else the sum of the containers' cpu.
func effectiveTaskCPU(td *types.TaskDefinition, ov *types.TaskOverride) string {
	if ov != nil && aws.ToString(ov.Cpu) != "" {
		if n, ok := parseTaskCPU(*ov.Cpu); ok {
			return strconv.Itoa(n)
		}
	}
	if aws.ToString(td.Cpu) != "" {
		return *td.Cpu
	}
	sum := int64(0)
	for _, cd := range td.ContainerDefinitions {
		sum += int64(containerCPU(cd, containerOverride(ov, aws.ToString(cd.Name))))
	}
	return strconv.FormatInt(sum, 10)
}

// effectiveTaskMemory is the task-level memory: the override, else the
// definition's; empty when neither sets one (ECS then shows none).
func effectiveTaskMemory(td *types.TaskDefinition, ov *types.TaskOverride) string {
	if ov != nil && aws.ToString(ov.Memory) != "" {
		if n, ok := parseTaskMemory(*ov.Memory); ok {
			return strconv.Itoa(n)
		}
	}
	return aws.ToString(td.Memory)
}

// TaskResources is what a task reserves on a container instance, as ECS
// accounts for it on EC2 and EXTERNAL:
//   - CPU: the task-level cpu when set (override first), else the sum of
//     the containers' cpu;
//   - memory: the task-level memory when set, else per container its
//     memoryReservation when set, else its memory;
//   - ports: every static host port (hostPort > 0) of the bridge and host
//     network modes, by protocol. Dynamic host ports (0) and awsvpc ports
//     (which live on the task's own interface) reserve nothing.
func TaskResources(td *types.TaskDefinition, ov *types.TaskOverride) Resources {
	var r Resources
	if cpu := effectiveTaskCPUOverride(td, ov); cpu > 0 {
		r.CPU = cpu
	} else {
		for _, cd := range td.ContainerDefinitions {
			r.CPU += int64(containerCPU(cd, containerOverride(ov, aws.ToString(cd.Name))))
		}
	}
	if mem := effectiveTaskMemory(td, ov); mem != "" {
		if n, ok := parseTaskMemory(mem); ok {
			r.Memory = int64(n)
		}
	} else {
		for _, cd := range td.ContainerDefinitions {
			co := containerOverride(ov, aws.ToString(cd.Name))
			if m := containerMemoryReservation(cd, co); m != nil {
				r.Memory += int64(*m)
			} else if m := containerMemory(cd, co); m != nil {
				r.Memory += int64(*m)
			}
		}
	}
	if td.NetworkMode == types.NetworkModeAwsvpc {
		return r
	}
	for _, cd := range td.ContainerDefinitions {
		for _, pm := range cd.PortMappings {
			host := aws.ToInt32(pm.HostPort)
			if td.NetworkMode == types.NetworkModeHost && pm.ContainerPort != nil {
				host = *pm.ContainerPort
			}
			if host <= 0 || pm.ContainerPortRange != nil {
				continue
			}
			if pm.Protocol == types.TransportProtocolUdp {
				r.PortsUDP = append(r.PortsUDP, host)
			} else {
				r.Ports = append(r.Ports, host)
			}
		}
	}
	return r
}

// effectiveTaskCPUOverride is the task-level cpu in units, or 0 when none
// is set.
func effectiveTaskCPUOverride(td *types.TaskDefinition, ov *types.TaskOverride) int64 {
	if ov != nil && aws.ToString(ov.Cpu) != "" {
		if n, ok := parseTaskCPU(*ov.Cpu); ok {
			return int64(n)
		}
	}
	if n, ok := parseTaskCPU(aws.ToString(td.Cpu)); ok {
		return int64(n)
	}
	return 0
}

// MaxOverridesBytes is ECS's limit on the JSON of a task's overrides.
const MaxOverridesBytes = 8192

// ValidateTaskOverride checks RunTask's and StartTask's overrides against
// the task definition: each container override names a container of the
// definition (once), cpu and memory values are sensible, and the whole
// fits in 8192 characters of JSON.
func ValidateTaskOverride(td *types.TaskDefinition, ov *types.TaskOverride) error {
	if ov == nil {
		return nil
	}
	// The SDK types carry no JSON tags, so this measures the same values
	// under Go's field names: close to, not byte-equal with, the wire form.
	if b, err := json.Marshal(ov); err == nil && len(b) > MaxOverridesBytes {
		return InvalidParameter(fmt.Sprintf("Container Overrides length must be at most %d", MaxOverridesBytes))
	}
	seen := map[string]bool{}
	for _, co := range ov.ContainerOverrides {
		name := aws.ToString(co.Name)
		if name == "" {
			if co.Command == nil && co.Environment == nil && co.EnvironmentFiles == nil && co.Cpu == nil &&
				co.Memory == nil && co.MemoryReservation == nil && co.ResourceRequirements == nil {
				continue // an empty override is allowed
			}
			return InvalidParameter("Container override name is required when an override is specified.")
		}
		if !slices.ContainsFunc(td.ContainerDefinitions, func(cd types.ContainerDefinition) bool { return aws.ToString(cd.Name) == name }) {
			return InvalidParameter("Override for container named " + name + " is not a container in the TaskDefinition.")
		}
		if seen[name] {
			return InvalidParameter("Duplicate override for container named " + name + ".")
		}
		seen[name] = true
		if co.Cpu != nil && *co.Cpu < 0 {
			return InvalidParameter("Invalid cpu override for container " + name + ": the value must not be negative.")
		}
		if co.Memory != nil && *co.Memory < containerMinMemoryMiB {
			return InvalidParameter(fmt.Sprintf("Invalid memory override for container %s: the minimum is %d MiB.", name, containerMinMemoryMiB))
		}
		if co.MemoryReservation != nil && *co.MemoryReservation < containerMinMemoryMiB {
			return InvalidParameter(fmt.Sprintf("Invalid memoryReservation override for container %s: the minimum is %d MiB.", name, containerMinMemoryMiB))
		}
		if co.Memory != nil && co.MemoryReservation != nil && *co.Memory < *co.MemoryReservation {
			return InvalidParameter("Invalid overrides for container " + name + ": memory must be greater than or equal to memoryReservation.")
		}
	}
	if c := aws.ToString(ov.Cpu); c != "" {
		if _, ok := parseTaskCPU(c); !ok {
			return InvalidParameter("Invalid 'cpu' override: " + c + ".")
		}
	}
	if m := aws.ToString(ov.Memory); m != "" {
		if _, ok := parseTaskMemory(m); !ok {
			return InvalidParameter("Invalid 'memory' override: " + m + ".")
		}
	}
	return nil
}

// TaskDefinitionSupports reports whether the definition can run with a
// launch type: its compatibilities (computed at registration) list it.
func TaskDefinitionSupports(td *types.TaskDefinition, lt types.LaunchType) bool {
	return slices.Contains(td.Compatibilities, types.Compatibility(lt))
}

// ClientTokenRecord is the value stored at ClientTokenKey: the answer given
// to the first request with that token, so that a retry gets the same tasks.
type ClientTokenRecord struct {
	// RequestHash identifies the request's parameters; a reuse of the token
	// with other parameters is refused.
	RequestHash string `json:"requestHash"`
	Cluster     string `json:"cluster"`
	// TaskIDs are the tasks the request created, in order.
	TaskIDs   []string        `json:"taskIds"`
	Failures  []types.Failure `json:"failures,omitempty"`
	CreatedAt time.Time       `json:"createdAt"`
	ExpiresAt time.Time       `json:"expiresAt"`
}
