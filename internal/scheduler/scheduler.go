// Package scheduler is berth's task placement: a pure function from a
// snapshot of a cluster's container instances and a task's demand to
// placements, or to failures with ECS's reasons and an explanation per
// instance. It does no I/O and knows nothing of the store or the API; the
// ECS API builds the snapshot, calls Place (or Decide), and commits the
// result in one transaction (retrying on a fresh snapshot when an instance
// changed meanwhile).
//
// Placement follows ECS's pipeline: instances that lack the CPU, memory or
// static host ports are filtered out, then those that fail a constraint
// (distinctInstance, memberOf with the cluster query language, in
// ParseExpression); the rest are ranked by the strategies (binpack,
// spread, random; each later one breaks the ties of those before it) and
// the best takes the task. docs/placement.md describes it in full.
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
	// ReasonMemberOf and ReasonDistinctInstance are ECS's reasons, word
	// for word, for an instance that a constraint excludes.
	ReasonMemberOf         = "MemberOf placement constraint unsatisfied."
	ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied."
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
	// AgentVersion is the agent's version (agentVersion in expressions).
	AgentVersion string
	RegisteredAt time.Time
	Registered   Resources
	// Remaining is CPU and memory still free, and every host port in use
	// (reserved ones and those of tasks).
	Remaining         Resources
	Attributes        []Attribute
	RunningTasksCount int
	// Groups counts the instance's tasks that are not stopped by task
	// group: distinctInstance, spread and task:group read it.
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
	// Group is the task's group (family:<family> by default, or
	// service:<name>): distinctInstance and spread count its tasks.
	Group string
	// RequiresAttributes are the task definition's requiresAttributes: an
	// instance lacking one (or with another value, where Value is set)
	// fails with ATTRIBUTE.
	RequiresAttributes []Attribute
}

// Options are the caller's placement strategies and constraints: RunTask's
// placementStrategy and placementConstraints, the task definition's
// constraints appended to the latter (ECS applies them all; at most 10 in
// total). Without strategies Place uses DefaultStrategies (RunTask's
// default, random); a service passes ServiceDefaultStrategies.
type Options struct {
	Strategies  []types.PlacementStrategy
	Constraints []types.PlacementConstraint
	// Seed drives the random strategy: the same snapshot, demand, options
	// and seed give the same placements. Callers pass a fresh random seed
	// per call.
	Seed uint64
}

// DefaultStrategies is what RunTask places with when the call names no
// strategy: random ("Using RunTask, you can allow the default task
// placement strategy to distribute tasks randomly across your cluster",
// ECS developer guide, "Amazon ECS launch types and scheduling").
var DefaultStrategies = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}

// ServiceDefaultStrategies is a service's default: spread across
// Availability Zones (developer guide, task placement strategies).
var ServiceDefaultStrategies = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}}

// Failure says why an instance could not take a task. InstanceARN is the
// instance (empty when the failure is about no instance in particular),
// Reason is ECS's reason (the Reason* constants), Detail explains it for a
// person, e.g. "6a0b…: memory 512 needed, 256 free". The other fields are
// the same explanation as data.
type Failure struct {
	InstanceARN string
	Reason      string
	Detail      string
	// Instance is the instance's index in the snapshot, -1 for none.
	Instance int
	// Rule is the rule that excluded the instance (the Rule* constants).
	Rule string
	// Needed and Free are the amounts of RuleCPU and RuleMemory.
	Needed, Free int64
	// Port is the port of RulePorts and RulePortsUDP.
	Port int32
	// Attribute is the attribute of RuleAttribute.
	Attribute string
	// Constraint is the expression of the memberOf constraint that
	// failed; Clause says which part of it, e.g.
	// "attribute:ecs.instance-type !~ t3.* (is m5.large)".
	Constraint, Clause string
}

// Rules, in the order Place checks them; the first that fails is an
// instance's reason.
const (
	RuleStatus           = "status"
	RuleAgent            = "agent"
	RuleCPU              = "cpu"
	RuleMemory           = "memory"
	RulePorts            = "ports"
	RulePortsUDP         = "portsUdp"
	RuleAttribute        = "attribute"
	RuleDistinctInstance = "distinctInstance"
	RuleMemberOf         = "memberOf"
)

// Check says why inst cannot take a task of demand d, or nil when it can,
// looking at its status, agent, resources and the demand's required
// attributes, not at constraints (StartTask, which names its instances,
// honours none). Checks run in the order of the Rule* constants; the first
// that fails is the reason. Failure.Instance is -1.
func Check(inst *Instance, d Demand) *Failure {
	f := check(inst, &d)
	if f != nil {
		f.Instance = -1
	}
	return f
}

// fits is whether check would return nil.
func fits(inst *Instance, d *Demand) bool {
	r := &inst.Remaining
	if inst.Status != StatusActive || !inst.AgentConnected || d.CPU > r.CPU || d.Memory > r.Memory {
		return false
	}
	if _, ok := clash(d.Ports, r.Ports); ok {
		return false
	}
	if _, ok := clash(d.PortsUDP, r.PortsUDP); ok {
		return false
	}
	for _, want := range d.RequiresAttributes {
		if v, ok := inst.Attribute(want.Name); !ok || want.Value != "" && v != want.Value {
			return false
		}
	}
	return true
}

// check is Check without constraints, the instance index left 0.
func check(inst *Instance, d *Demand) *Failure {
	switch inst.Status {
	case StatusActive:
	case StatusDraining:
		return fail(inst, ReasonDraining, RuleStatus, "instance is DRAINING")
	default:
		return fail(inst, ReasonInactive, RuleStatus, "instance is "+inst.Status)
	}
	if !inst.AgentConnected {
		return fail(inst, ReasonAgent, RuleAgent, "agent is not connected")
	}
	r := &inst.Remaining
	if d.CPU > r.CPU {
		f := fail(inst, ReasonCPU, RuleCPU, fmt.Sprintf("cpu %d needed, %d free", d.CPU, r.CPU))
		f.Needed, f.Free = d.CPU, r.CPU
		return f
	}
	if d.Memory > r.Memory {
		f := fail(inst, ReasonMemory, RuleMemory, fmt.Sprintf("memory %d needed, %d free", d.Memory, r.Memory))
		f.Needed, f.Free = d.Memory, r.Memory
		return f
	}
	if p, ok := clash(d.Ports, r.Ports); ok {
		f := fail(inst, ReasonPorts, RulePorts, fmt.Sprintf("port %d/tcp in use", p))
		f.Port = p
		return f
	}
	if p, ok := clash(d.PortsUDP, r.PortsUDP); ok {
		f := fail(inst, ReasonPortsUDP, RulePortsUDP, fmt.Sprintf("port %d/udp in use", p))
		f.Port = p
		return f
	}
	for _, want := range d.RequiresAttributes {
		v, ok := inst.Attribute(want.Name)
		var f *Failure
		switch {
		case !ok:
			f = fail(inst, ReasonAttr, RuleAttribute, "attribute "+want.Name+" missing")
		case want.Value != "" && v != want.Value:
			f = fail(inst, ReasonAttr, RuleAttribute, "attribute "+want.Name+" is "+v+", not "+want.Value)
		default:
			continue
		}
		f.Attribute = want.Name
		return f
	}
	return nil
}

func fail(inst *Instance, reason, rule, detail string) *Failure {
	name := inst.Name
	if name == "" {
		name = inst.ARN
	}
	return &Failure{InstanceARN: inst.ARN, Reason: reason, Rule: rule, Detail: name + ": " + detail}
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

// ValidateOptions checks placement strategies and constraints as RunTask
// and CreateService accept them: at most 5 strategies of type binpack
// (field cpu or memory), spread (field instanceId, host or
// attribute:<name>) or random; at most 10 constraints (the task
// definition's included) of type distinctInstance (no expression) or
// memberOf (an expression of at most 2000 characters that parses). Errors
// are of kind errdefs.ErrInvalidArgument (InvalidParameterException).
func ValidateOptions(o Options) error {
	_, err := compile(o)
	return err
}

// validateShape is ValidateOptions without parsing expressions.
func validateShape(o Options) error {
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
			if c.Expression != nil {
				return errdefs.InvalidArgument("distinctInstance expression should not be specified.")
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
