package ecs

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Container instance statuses that berth's records hold. ECS also has
// REGISTERING, REGISTRATION_FAILED and DEREGISTERING (awsvpc trunking);
// berth registers and deregisters at once, so no record ever holds them,
// though ListContainerInstances accepts them as filters.
const (
	InstanceStatusActive   = "ACTIVE"
	InstanceStatusDraining = "DRAINING"
	InstanceStatusInactive = "INACTIVE"
)

// Reasons for the container-instance and attribute exceptions.
var (
	ErrAttributeLimitExceeded = errors.New("attribute limit exceeded") // with errdefs.ErrLimitExceeded
	ErrTargetNotFound         = errors.New("target not found")         // with errdefs.ErrNotFound
)

// Names and types of the resources an instance registers.
const (
	ResourceCPU      = "CPU"
	ResourceMemory   = "MEMORY"
	ResourcePorts    = "PORTS"
	ResourcePortsUDP = "PORTS_UDP"

	resourceTypeInteger   = "INTEGER"
	resourceTypeLong      = "LONG"
	resourceTypeDouble    = "DOUBLE"
	resourceTypeStringSet = "STRINGSET"
)

// Resources is an amount of what placement accounts for: CPU units, MiB of
// memory and static host ports (TCP and UDP).
type Resources struct {
	CPU      int64   `json:"cpu,omitempty"`
	Memory   int64   `json:"memory,omitempty"`
	Ports    []int32 `json:"ports,omitempty"`
	PortsUDP []int32 `json:"portsUdp,omitempty"`
}

// IsZero reports whether r reserves nothing.
func (r Resources) IsZero() bool {
	return r.CPU == 0 && r.Memory == 0 && len(r.Ports) == 0 && len(r.PortsUDP) == 0
}

// ContainerInstance is the value stored at ContainerInstanceKey. Resource
// accounting lives here so that placement can compare-and-swap on it: Used
// is the sum of the reservations of the instance's tasks that are not yet
// STOPPED, so remaining = registered − used, and ports in use are the
// reserved ports plus the static host ports of those tasks.
//
// A deregistered instance keeps its record with status INACTIVE, so
// DescribeContainerInstances still shows it, until the reaper removes it.
type ContainerInstance struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	Status  string `json:"status"`
	// AgentConnected is set by the agent channel: false until the agent's
	// channel connects, false again when it misses its heartbeats.
	AgentConnected bool `json:"agentConnected"`
	// AgentChangedAt is when AgentConnected last changed (or registration).
	AgentChangedAt time.Time `json:"agentChangedAt"`
	// Registered is what the agent registered: CPU, MEMORY and the reserved
	// PORTS/PORTS_UDP. OtherResources are any further totalResources entries
	// (GPUs, say), echoed unchanged and not accounted.
	Registered     Resources        `json:"registered"`
	OtherResources []types.Resource `json:"otherResources,omitempty"`
	Used           Resources        `json:"used"`
	// Attributes hold name and value only; the API adds target and type.
	Attributes  []types.Attribute  `json:"attributes,omitempty"`
	VersionInfo *types.VersionInfo `json:"versionInfo,omitempty"`
	Tags        []types.Tag        `json:"tags,omitempty"`
	// The record holds no pending/running task counts: a task's start
	// would rewrite it and conflict with placements on the same instance.
	// They are counted from the instance's index keys and task records
	// (TaskCounts). Records written before kept "runningTasks" and
	// "pendingTasks" fields; decoding ignores them.
	// Groups counts the instance's tasks that are not STOPPED by task group
	// (placement's spread, distinctInstance and task:group read it).
	Groups         map[string]int32 `json:"groups,omitempty"`
	RegisteredAt   time.Time        `json:"registeredAt"`
	UpdatedAt      time.Time        `json:"updatedAt"`
	DeregisteredAt *time.Time       `json:"deregisteredAt,omitempty"`
	// Version goes up by one with every change, as ECS's does.
	Version int64 `json:"version"`
}

// ARN is the container instance's ARN in the long format.
func (ci *ContainerInstance) ARN(region, account string) string {
	return arn.ContainerInstance(region, account, ci.Cluster, ci.ID)
}

// Remaining is what placement may still use: registered minus used CPU and
// memory (never below zero), and the ports in use: the reserved ones in
// their registered order, then the tasks' static ports in ascending order.
func (ci *ContainerInstance) Remaining() Resources {
	return Resources{
		CPU:      max(ci.Registered.CPU-ci.Used.CPU, 0),
		Memory:   max(ci.Registered.Memory-ci.Used.Memory, 0),
		Ports:    unionPorts(ci.Registered.Ports, ci.Used.Ports),
		PortsUDP: unionPorts(ci.Registered.PortsUDP, ci.Used.PortsUDP),
	}
}

func unionPorts(reserved, used []int32) []int32 {
	out := slices.Clone(reserved)
	extra := slices.Clone(used)
	slices.Sort(extra)
	for _, p := range extra {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Reserve debits a task's reservation and counts it in group.
func (ci *ContainerInstance) Reserve(r Resources, group string) {
	ci.Used.CPU += r.CPU
	ci.Used.Memory += r.Memory
	ci.Used.Ports = append(ci.Used.Ports, r.Ports...)
	ci.Used.PortsUDP = append(ci.Used.PortsUDP, r.PortsUDP...)
	if ci.Groups == nil {
		ci.Groups = map[string]int32{}
	}
	ci.Groups[group]++
}

// Release credits back a reservation made by Reserve for a task in group.
func (ci *ContainerInstance) Release(r Resources, group string) {
	ci.Used.CPU = max(ci.Used.CPU-r.CPU, 0)
	ci.Used.Memory = max(ci.Used.Memory-r.Memory, 0)
	ci.Used.Ports = removePorts(ci.Used.Ports, r.Ports)
	ci.Used.PortsUDP = removePorts(ci.Used.PortsUDP, r.PortsUDP)
	if n := ci.Groups[group]; n > 1 {
		ci.Groups[group] = n - 1
	} else {
		delete(ci.Groups, group)
	}
}

func removePorts(used, release []int32) []int32 {
	out := slices.Clone(used)
	for _, p := range release {
		if i := slices.Index(out, p); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// TaskCounts are an instance's tasks that are not STOPPED, by phase:
// DescribeContainerInstances' pendingTasksCount and runningTasksCount.
type TaskCounts struct {
	Pending, Running int32
}

// Add counts one task in phase p (STOPPED tasks count nowhere).
func (n *TaskCounts) Add(p TaskPhase) {
	switch p {
	case PhasePending:
		n.Pending++
	case PhaseRunning:
		n.Running++
	}
}

// Touch records a change: the version goes up and UpdatedAt moves.
func (ci *ContainerInstance) Touch(now time.Time) {
	ci.Version++
	ci.UpdatedAt = now
}

// InstanceView says which optional parts of a container instance to show:
// DescribeContainerInstances' include (TAGS, CONTAINER_INSTANCE_HEALTH).
type InstanceView struct {
	Tags   bool
	Health bool
}

// InstanceViewOf reads DescribeContainerInstances' include list.
func InstanceViewOf(include []types.ContainerInstanceField) (InstanceView, error) {
	var v InstanceView
	for _, f := range include {
		switch f {
		case types.ContainerInstanceFieldTags:
			v.Tags = true
		case types.ContainerInstanceFieldContainerInstanceHealth:
			v.Health = true
		default:
			return v, InvalidParameter("include should be one of [TAGS,CONTAINER_INSTANCE_HEALTH]")
		}
	}
	return v, nil
}

// ToAPI renders the instance as DescribeContainerInstances returns it,
// with its task counts.
func (ci *ContainerInstance) ToAPI(region, account string, view InstanceView, tasks TaskCounts) types.ContainerInstance {
	vi := ci.VersionInfo
	if vi == nil {
		vi = &types.VersionInfo{}
	}
	out := types.ContainerInstance{
		ContainerInstanceArn: aws.String(ci.ARN(region, account)),
		Status:               aws.String(ci.Status),
		AgentConnected:       ci.AgentConnected,
		RegisteredResources:  RenderResources(ci.Registered, ci.OtherResources),
		RemainingResources:   RenderResources(ci.Remaining(), ci.OtherResources),
		RunningTasksCount:    tasks.Running,
		PendingTasksCount:    tasks.Pending,
		Attributes:           renderAttributes(ci.Attributes),
		Attachments:          []types.Attachment{},
		RegisteredAt:         aws.Time(ci.RegisteredAt),
		Version:              ci.Version,
		VersionInfo:          vi,
	}
	if view.Tags {
		out.Tags = nonNil(slices.Clone(ci.Tags))
	}
	if view.Health {
		state := types.InstanceHealthCheckStateInsufficientData
		if ci.AgentConnected {
			state = types.InstanceHealthCheckStateOk
		}
		out.HealthStatus = &types.ContainerInstanceHealthStatus{
			OverallStatus: state,
			Details: []types.InstanceHealthCheckResult{{
				Type:             types.InstanceHealthCheckTypeContainerRuntime,
				Status:           state,
				LastUpdated:      aws.Time(ci.UpdatedAt),
				LastStatusChange: aws.Time(ci.AgentChangedAt),
			}},
		}
	}
	return out
}

func renderAttributes(attrs []types.Attribute) []types.Attribute {
	out := make([]types.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, types.Attribute{Name: a.Name, Value: a.Value})
	}
	return out
}

// RenderResources renders resources as ECS lists them: CPU and MEMORY as
// INTEGER, PORTS and PORTS_UDP as STRINGSET (always present, [] when
// empty), then any other registered resources unchanged.
func RenderResources(r Resources, other []types.Resource) []types.Resource {
	out := []types.Resource{
		{Name: aws.String(ResourceCPU), Type: aws.String(resourceTypeInteger), IntegerValue: clampInt32(r.CPU)},
		{Name: aws.String(ResourceMemory), Type: aws.String(resourceTypeInteger), IntegerValue: clampInt32(r.Memory)},
		{Name: aws.String(ResourcePorts), Type: aws.String(resourceTypeStringSet), StringSetValue: portStrings(r.Ports)},
		{Name: aws.String(ResourcePortsUDP), Type: aws.String(resourceTypeStringSet), StringSetValue: portStrings(r.PortsUDP)},
	}
	return append(out, other...)
}

func clampInt32(v int64) int32 {
	return int32(min(max(v, math.MinInt32), math.MaxInt32))
}

func portStrings(ports []int32) []string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, strconv.Itoa(int(p)))
	}
	return out
}

// ParseTotalResources reads RegisterContainerInstance's totalResources:
// CPU and MEMORY as INTEGER (LONG and whole DOUBLE values are accepted
// too), PORTS and PORTS_UDP as STRINGSET of port numbers. Other names are
// returned in other, unchanged. A missing CPU or MEMORY counts as 0.
func ParseTotalResources(res []types.Resource) (r Resources, other []types.Resource, err error) {
	seen := map[string]bool{}
	for _, x := range res {
		name := aws.ToString(x.Name)
		if name == "" {
			return r, nil, InvalidParameter("Resource names must not be empty.")
		}
		if seen[name] {
			return r, nil, InvalidParameter("Duplicate resource " + name + " in totalResources.")
		}
		seen[name] = true
		switch name {
		case ResourceCPU, ResourceMemory:
			v, err := resourceNumber(x)
			if err != nil {
				return r, nil, err
			}
			if name == ResourceCPU {
				r.CPU = v
			} else {
				r.Memory = v
			}
		case ResourcePorts, ResourcePortsUDP:
			if t := aws.ToString(x.Type); t != "" && t != resourceTypeStringSet {
				return r, nil, InvalidParameter(fmt.Sprintf("Resource %s must be of type STRINGSET.", name))
			}
			ports, err := parsePorts(name, x.StringSetValue)
			if err != nil {
				return r, nil, err
			}
			if name == ResourcePorts {
				r.Ports = ports
			} else {
				r.PortsUDP = ports
			}
		default:
			other = append(other, x)
		}
	}
	return r, other, nil
}

// resourceNumber reads a CPU or MEMORY resource. Values must fit ECS's
// INTEGER and not be negative.
func resourceNumber(x types.Resource) (int64, error) {
	name := aws.ToString(x.Name)
	var v int64
	switch t := aws.ToString(x.Type); t {
	case "", resourceTypeInteger:
		v = int64(x.IntegerValue)
	case resourceTypeLong:
		v = x.LongValue
	case resourceTypeDouble:
		if x.DoubleValue != math.Trunc(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) || math.IsNaN(x.DoubleValue) {
			return 0, InvalidParameter(fmt.Sprintf("Resource %s must be a whole number.", name))
		}
		if math.Abs(x.DoubleValue) > math.MaxInt32 {
			return 0, InvalidParameter(fmt.Sprintf("Resource %s is out of range.", name))
		}
		v = int64(x.DoubleValue)
	default:
		return 0, InvalidParameter(fmt.Sprintf("Resource %s has an invalid type %s.", name, t))
	}
	if v < 0 || v > math.MaxInt32 {
		return 0, InvalidParameter(fmt.Sprintf("Resource %s must be between 0 and %d.", name, math.MaxInt32))
	}
	return v, nil
}

func parsePorts(name string, vals []string) ([]int32, error) {
	var out []int32
	for _, s := range vals {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 65535 {
			return nil, InvalidParameter(fmt.Sprintf("Invalid port %q in resource %s.", s, name))
		}
		if !slices.Contains(out, int32(n)) {
			out = append(out, int32(n))
		}
	}
	return out, nil
}

// Attribute limits (ECS developer guide, "Attributes").
const (
	MaxCustomAttributes  = 10
	maxAttributeLength   = 128
	MaxAttributesPerCall = 10
)

// IsCustomAttribute reports whether an attribute counts against the limit
// of 10 custom attributes: everything but ECS's own ecs.* and
// com.amazonaws.ecs.* attributes.
func IsCustomAttribute(name string) bool {
	return !hasPrefix(name, "ecs.") && !hasPrefix(name, "com.amazonaws.ecs.")
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// ValidateAttribute checks an attribute's name and value: a name of 1–128
// letters, digits, hyphens, underscores, periods and forward or back
// slashes; an optional value of 1–128 of those characters plus @, : and
// spaces, not starting or ending with a space.
func ValidateAttribute(a types.Attribute) error {
	name := aws.ToString(a.Name)
	if !validAttributeText(name, false) {
		return InvalidParameter(fmt.Sprintf("Invalid attribute name %q. Attribute names must be 1-128 characters: letters, numbers, hyphens, underscores, periods, forward slashes and back slashes.", name))
	}
	if a.Value == nil {
		return nil
	}
	v := *a.Value
	if !validAttributeText(v, true) || v[0] == ' ' || v[len(v)-1] == ' ' {
		return InvalidParameter(fmt.Sprintf("Invalid value %q for attribute %s. Attribute values must be 1-128 characters: letters, numbers, hyphens, underscores, periods, at signs, forward slashes, back slashes, colons and spaces, and cannot start or end with a space.", v, name))
	}
	return nil
}

func validAttributeText(s string, value bool) bool {
	if len(s) < 1 || len(s) > maxAttributeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == '/', c == '\\':
		case value && (c == '@' || c == ':' || c == ' '):
		default:
			return false
		}
	}
	return true
}

// MergeAttributes returns existing with add applied by name: a name already
// present takes the new value, new names are appended. Only name and value
// are kept.
func MergeAttributes(existing, add []types.Attribute) []types.Attribute {
	out := renderAttributes(existing)
	for _, a := range add {
		a = types.Attribute{Name: a.Name, Value: a.Value}
		i := slices.IndexFunc(out, func(e types.Attribute) bool { return aws.ToString(e.Name) == aws.ToString(a.Name) })
		if i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	return out
}

// RemoveAttributes returns existing without the named attributes.
func RemoveAttributes(existing []types.Attribute, names []string) []types.Attribute {
	return slices.DeleteFunc(renderAttributes(existing), func(a types.Attribute) bool {
		return slices.Contains(names, aws.ToString(a.Name))
	})
}

// CheckCustomAttributeLimit fails with AttributeLimitExceededException when
// attrs hold more than 10 custom attributes.
func CheckCustomAttributeLimit(attrs []types.Attribute) error {
	n := 0
	for _, a := range attrs {
		if IsCustomAttribute(aws.ToString(a.Name)) {
			n++
		}
	}
	if n > MaxCustomAttributes {
		return errdefs.WithReason(errdefs.ErrLimitExceeded, ErrAttributeLimitExceeded,
			fmt.Sprintf("You can apply up to %d custom attributes per resource.", MaxCustomAttributes))
	}
	return nil
}

// ValidInstanceID reports whether s can be a container instance or task id:
// berth's are 32 hexadecimal characters; ECS's older ids are 36-character
// UUIDs. Anything else names nothing.
func ValidInstanceID(s string) bool { return validID(s) }

func validID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
