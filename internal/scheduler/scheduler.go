// Package scheduler is berth's task placement: a pure function from a
// snapshot of a cluster's container instances and a task's demand to
// placements, or to failures with ECS's reasons. It does no I/O and knows
// nothing of the store or the API; the ECS API builds the snapshot, calls
// Place, and commits the result in one transaction (retrying on a fresh
// snapshot when an instance changed meanwhile).
//
// Placement is first-fit: each task goes to the first instance of the
// snapshot, in the caller's order, that is ACTIVE, has a connected agent and
// has the CPU, memory and static host ports the task needs. Strategies
// (binpack, spread, random) and constraints (distinctInstance, memberOf)
// are carried in Options so that callers pass them already; the placement
// issue ranks and filters with them inside Place, without changing its
// signature. The cluster query language that memberOf and
// ListContainerInstances use is in this package too (ParseExpression).
package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Failure reasons, as ECS reports them in RunTask's and StartTask's failures.
const (
	ReasonCPU      = "RESOURCE:CPU"
	ReasonMemory   = "RESOURCE:MEMORY"
	ReasonPorts    = "RESOURCE:PORTS"
	ReasonPortsUDP = "RESOURCE:PORTS_UDP"
	ReasonAgent    = "AGENT"
	ReasonAttr     = "ATTRIBUTE"
	ReasonMissing  = "MISSING"
	ReasonInactive = "INACTIVE"
	// ReasonDraining is berth's reason for an instance that is DRAINING
	// (ECS documents none; INACTIVE is its analogue for StartTask).
	ReasonDraining = "DRAINING"
)

// Instance statuses the scheduler distinguishes.
const (
	StatusActive   = "ACTIVE"
	StatusDraining = "DRAINING"
	StatusInactive = "INACTIVE"
)

// Resources is an amount of CPU units, MiB of memory and host ports.
type Resources struct {
	CPU      int64
	Memory   int64
	Ports    []int32
	PortsUDP []int32
}

// Attribute is one container-instance attribute; Value is empty for an
// attribute that has a name only.
type Attribute struct {
	Name, Value string
}

// Instance is what placement knows of one container instance.
type Instance struct {
	ARN string
	// Name identifies the instance in explanations (its id).
	Name           string
	Status         string // ACTIVE, DRAINING or INACTIVE
	AgentConnected bool
	EC2InstanceID  string
	RegisteredAt   time.Time
	Registered     Resources
	// Remaining is CPU and memory still free, and every host port in use
	// (reserved ones and those of tasks).
	Remaining         Resources
	Attributes        []Attribute
	RunningTasksCount int
	// Groups counts the instance's tasks that are not stopped by task group.
	Groups map[string]int
}

// Attribute returns the value of the named attribute and whether the
// instance has it.
func (in *Instance) Attribute(name string) (string, bool) {
	for _, a := range in.Attributes {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// Demand is what one task needs.
type Demand struct {
	CPU      int64
	Memory   int64
	Ports    []int32 // static TCP host ports
	PortsUDP []int32 // static UDP host ports
	// Group is the task's group (family:<family> by default).
	Group string
}

// Options are the caller's placement strategies and constraints (RunTask's
// placementStrategy and placementConstraints, plus the task definition's
// constraints). Place honours neither yet: it places first-fit. Callers
// validate their shape; the placement issue gives them effect here.
type Options struct {
	Strategies  []types.PlacementStrategy
	Constraints []types.PlacementConstraint
}

// Placement is one task placed: the index of its instance in the snapshot.
type Placement struct {
	Instance    int
	InstanceARN string
}

// Failure says why an instance could not take a task: InstanceARN is the
// instance (empty when the failure is about no instance in particular),
// Reason is ECS's reason, Detail explains it for a person, e.g.
// "6a0b…: memory 512 needed, 256 free".
type Failure struct {
	InstanceARN string
	Reason      string
	Detail      string
}

// Place places count tasks of demand d on the snapshot, first-fit, and
// returns where they went. When a task cannot be placed, every instance's
// reason is returned once in failures and no further task is tried (each
// would fail alike: resources only shrink). The snapshot is not modified.
func Place(snapshot []Instance, d Demand, count int, opts Options) ([]Placement, []Failure) {
	// Only instances that take a task change; they are kept apart (Take
	// copies what it changes), so the snapshot is never written.
	taken := map[int]Instance{}
	var placements []Placement
	for n := 0; n < count; n++ {
		var fails []Failure
		placed := false
		for i := range snapshot {
			inst, ok := taken[i]
			if !ok {
				inst = snapshot[i]
			}
			if f := Check(&inst, d); f != nil {
				fails = append(fails, *f)
				continue
			}
			taken[i] = Take(inst, d)
			placements = append(placements, Placement{Instance: i, InstanceARN: inst.ARN})
			placed = true
			break
		}
		if !placed {
			return placements, fails
		}
	}
	return placements, nil
}

// Check says why inst cannot take a task of demand d, or nil when it can.
// Checks run in this order: status, agent, CPU, memory, TCP ports, UDP
// ports; the first that fails is the reason.
func Check(inst *Instance, d Demand) *Failure {
	fail := func(reason, format string, args ...any) *Failure {
		return &Failure{InstanceARN: inst.ARN, Reason: reason, Detail: inst.Name + ": " + fmt.Sprintf(format, args...)}
	}
	switch inst.Status {
	case StatusActive:
	case StatusDraining:
		return fail(ReasonDraining, "instance is DRAINING")
	default:
		return fail(ReasonInactive, "instance is %s", inst.Status)
	}
	if !inst.AgentConnected {
		return fail(ReasonAgent, "agent is not connected")
	}
	r := inst.Remaining
	if d.CPU > r.CPU {
		return fail(ReasonCPU, "cpu %d needed, %d free", d.CPU, r.CPU)
	}
	if d.Memory > r.Memory {
		return fail(ReasonMemory, "memory %d needed, %d free", d.Memory, r.Memory)
	}
	if p, ok := clash(d.Ports, r.Ports); ok {
		return fail(ReasonPorts, "port %d/tcp in use", p)
	}
	if p, ok := clash(d.PortsUDP, r.PortsUDP); ok {
		return fail(ReasonPortsUDP, "port %d/udp in use", p)
	}
	return nil
}

// clash returns the first wanted port that is in use, or that the demand
// itself lists twice.
func clash(want, used []int32) (int32, bool) {
	for i, p := range want {
		if slices.Contains(used, p) || slices.Contains(want[:i], p) {
			return p, true
		}
	}
	return 0, false
}

// Take returns inst with a task of demand d placed on it: its CPU and
// memory debited, its ports taken, its group counted. inst itself (and the
// slices it shares) is not changed.
func Take(inst Instance, d Demand) Instance {
	inst.Remaining = cloneResources(inst.Remaining)
	inst.Remaining.CPU -= d.CPU
	inst.Remaining.Memory -= d.Memory
	inst.Remaining.Ports = append(inst.Remaining.Ports, d.Ports...)
	inst.Remaining.PortsUDP = append(inst.Remaining.PortsUDP, d.PortsUDP...)
	groups := make(map[string]int, len(inst.Groups)+1)
	for k, v := range inst.Groups {
		groups[k] = v
	}
	groups[d.Group]++
	inst.Groups = groups
	return inst
}

func cloneResources(r Resources) Resources {
	r.Ports = slices.Clone(r.Ports)
	r.PortsUDP = slices.Clone(r.PortsUDP)
	return r
}

// Limits of placement options (ECS API reference, RunTask).
const (
	MaxStrategies  = 5
	MaxConstraints = 10
)

// ValidateOptions checks the shape of placement strategies and constraints,
// as RunTask and CreateService accept them: at most 5 strategies of type
// binpack (field cpu or memory), spread (field instanceId, host or
// attribute:<name>) or random; at most 10 constraints (the task
// definition's included) of type distinctInstance (no expression) or
// memberOf (an expression of at most 2000 characters). memberOf expressions
// are parsed by the placement issue, which evaluates them. Errors are of
// kind errdefs.ErrInvalidArgument.
func ValidateOptions(o Options) error {
	if len(o.Strategies) > MaxStrategies {
		return errdefs.InvalidArgument(fmt.Sprintf("You can specify at most %d placement strategies.", MaxStrategies))
	}
	for _, s := range o.Strategies {
		field := aws.ToString(s.Field)
		switch s.Type {
		case types.PlacementStrategyTypeBinpack:
			if f := strings.ToLower(field); f != "cpu" && f != "memory" {
				return errdefs.InvalidArgument("Invalid field " + strconv.Quote(field) + " for the binpack placement strategy. Valid values are cpu and memory.")
			}
		case types.PlacementStrategyTypeSpread:
			name, isAttr := strings.CutPrefix(field, "attribute:")
			if field != "instanceId" && field != "host" && (!isAttr || name == "") {
				return errdefs.InvalidArgument("Invalid field " + strconv.Quote(field) + " for the spread placement strategy. Valid values are instanceId, host and attribute:<name>.")
			}
		case types.PlacementStrategyTypeRandom:
		default:
			return errdefs.InvalidArgument("Invalid placement strategy type " + strconv.Quote(string(s.Type)) + ". Valid values are random, spread and binpack.")
		}
	}
	if len(o.Constraints) > MaxConstraints {
		return errdefs.InvalidArgument(fmt.Sprintf("You can specify at most %d placement constraints, including those of the task definition.", MaxConstraints))
	}
	for _, c := range o.Constraints {
		expr := aws.ToString(c.Expression)
		switch c.Type {
		case types.PlacementConstraintTypeDistinctInstance:
			if expr != "" {
				return errdefs.InvalidArgument("A distinctInstance placement constraint takes no expression.")
			}
		case types.PlacementConstraintTypeMemberOf:
			if strings.TrimSpace(expr) == "" {
				return errdefs.InvalidArgument("A memberOf placement constraint requires an expression.")
			}
			if len(expr) > MaxExpressionLength {
				return errdefs.InvalidArgument(fmt.Sprintf("Placement constraint expression is too long. The maximum length is %d characters.", MaxExpressionLength))
			}
		default:
			return errdefs.InvalidArgument("Invalid placement constraint type " + strconv.Quote(string(c.Type)) + ". Valid values are distinctInstance and memberOf.")
		}
	}
	return nil
}
