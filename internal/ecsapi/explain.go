package ecsapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/scheduler"
)

// ExplainPlacementPath is berth's own endpoint behind `berth
// explain-placement`: POST, SigV4-signed with scope service "berth", the
// body a RunTask request (RunTaskInput as JSON), the answer a
// PlacementExplanation. It is authorized exactly as RunTask is.
const ExplainPlacementPath = "/berth/v1/explain-placement"

// PlacementExplanation is what a RunTask would do, without doing it: where
// each task would go, the failures RunTask would return, and a verdict on
// every container instance of the cluster. It is the JSON body of
// ExplainPlacementPath's answer.
type PlacementExplanation struct {
	Cluster           string `json:"cluster"`
	TaskDefinitionArn string `json:"taskDefinitionArn"`
	Group             string `json:"group"`
	Count             int    `json:"count"`
	// Demand is what one task reserves on its instance.
	Demand ExplainedResources `json:"demand"`
	// Strategies are the ones placement ranks with (RunTask's default,
	// random, when the request names none).
	Strategies []ExplainedStrategy `json:"placementStrategy"`
	// Constraints are the request's and the task definition's, in the
	// order they are checked.
	Constraints []ExplainedConstraint `json:"placementConstraints"`
	// Random is whether a random strategy decides ties: the placements are
	// then one possible draw, and RunTask draws anew.
	Random bool `json:"random"`
	// Placements has one entry per task that would be placed, in order.
	Placements []ExplainedPlacement `json:"placements"`
	// Failures are RunTask's failures, word for word: empty when every
	// task would be placed.
	Failures []ExplainedFailure `json:"failures"`
	// Instances has a verdict on every live container instance of the
	// cluster, oldest registration first (the order ties are broken in).
	Instances []InstanceVerdict `json:"containerInstances"`
}

// ExplainedResources is an amount of CPU units, MiB and static host ports.
type ExplainedResources struct {
	CPU      int64   `json:"cpu"`
	Memory   int64   `json:"memory"`
	Ports    []int32 `json:"ports,omitempty"`
	PortsUDP []int32 `json:"portsUdp,omitempty"`
}

// ExplainedStrategy is one placement strategy.
type ExplainedStrategy struct {
	Type  string `json:"type"`
	Field string `json:"field,omitempty"`
}

// ExplainedConstraint is one placement constraint.
type ExplainedConstraint struct {
	Type       string `json:"type"`
	Expression string `json:"expression,omitempty"`
}

// ExplainedPlacement is one task placed.
type ExplainedPlacement struct {
	ContainerInstanceArn string `json:"containerInstanceArn"`
	ContainerInstanceID  string `json:"containerInstanceId"`
}

// ExplainedFailure is one failure as RunTask returns it.
type ExplainedFailure struct {
	Arn    string `json:"arn,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// InstanceVerdict is what placement concluded about one instance.
type InstanceVerdict struct {
	ContainerInstanceArn string `json:"containerInstanceArn"`
	ContainerInstanceID  string `json:"containerInstanceId"`
	Status               string `json:"status"`
	AgentConnected       bool   `json:"agentConnected"`
	// Remaining is what the instance had free before this call; its ports
	// are those in use (reserved and tasks'), as in ECS's
	// remainingResources.
	Remaining ExplainedResources `json:"remainingResources"`
	// Attributes are the instance's values of the attributes the spread
	// strategies name (absent ones are left out).
	Attributes map[string]string `json:"attributes,omitempty"`
	// Placed is how many of the call's tasks it would take.
	Placed int `json:"placed"`
	// Excluded says why it could take no (further) task; nil when it
	// could take more.
	Excluded *ExcludedBecause `json:"excluded,omitempty"`
}

// ExcludedBecause is the rule that excluded an instance, as text and as
// data (scheduler.Failure).
type ExcludedBecause struct {
	// Reason is ECS's failure reason, e.g. RESOURCE:MEMORY.
	Reason string `json:"reason"`
	// Rule is berth's rule: status, agent, cpu, memory, ports, portsUdp,
	// attribute, distinctInstance or memberOf.
	Rule string `json:"rule"`
	// Detail is the explanation without the instance's name, e.g.
	// "memory 512 needed, 256 free".
	Detail     string `json:"detail"`
	Needed     int64  `json:"needed,omitempty"`
	Free       int64  `json:"free,omitempty"`
	Port       int32  `json:"port,omitempty"`
	Attribute  string `json:"attribute,omitempty"`
	Constraint string `json:"constraint,omitempty"`
	Clause     string `json:"clause,omitempty"`
}

// Explainer answers ExplainPlacementPath over the same store and
// authorizer as the ECS API.
type Explainer struct {
	h *handlers
}

// NewExplainer returns an Explainer with the ECS API's configuration.
func NewExplainer(cfg Config) *Explainer {
	return &Explainer{h: newHandlers(cfg)}
}

// ExplainPlacement validates and authorizes in exactly as RunTask does
// (ecs:RunTask on the task definition, iam:PassRole for its roles, the same
// InvalidParameterException texts), places its tasks on a snapshot of the
// cluster, and returns the decision without committing anything. The
// caller's principal comes from ctx (awsapi.WithPrincipal).
func (e *Explainer) ExplainPlacement(ctx context.Context, in *ecs.RunTaskInput) (*PlacementExplanation, error) {
	h := e.h
	pin, err := h.prepareRunTask(ctx, in)
	if err != nil {
		return nil, err
	}
	if _, _, err := h.activeCluster(ctx, pin.cluster); err != nil {
		return nil, err
	}
	snap, err := h.instanceSnapshot(ctx, pin.cluster)
	if err != nil {
		return nil, err
	}
	live, demand, err := h.runInstances(ctx, pin, snap)
	if err != nil {
		return nil, err
	}
	opts := pin.opts
	opts.Seed = rand.Uint64()
	dec, err := scheduler.Decide(live, demand, pin.count, opts)
	if err != nil {
		return nil, err
	}
	return explanation(pin, live, dec), nil
}

// prepareRunTask is RunTask's validation: prepareRun's, then the count,
// the launch type and the placement options (the request's constraints
// followed by the task definition's).
func (h *handlers) prepareRunTask(ctx context.Context, in *ecs.RunTaskInput) (placeInput, error) {
	pin, err := h.prepareRun(ctx, taskRun{
		action: "RunTask", taskDefinition: in.TaskDefinition, cluster: in.Cluster, overrides: in.Overrides,
		group: in.Group, startedBy: in.StartedBy, tags: in.Tags, propagateTags: in.PropagateTags,
		referenceID: in.ReferenceId, execute: in.EnableExecuteCommand, networkConfig: in.NetworkConfiguration,
	})
	if err != nil {
		return pin, err
	}
	count := int(aws.ToInt32(in.Count))
	if in.Count == nil {
		count = 1
	}
	if count < 1 || count > maxRunCount {
		return pin, domain.InvalidParameter(fmt.Sprintf("count must be between 1 and %d.", maxRunCount))
	}
	pin.count = count
	if pin.launchType, err = runLaunchType(in.LaunchType, in.CapacityProviderStrategy, pin.td); err != nil {
		return pin, err
	}
	pin.opts = scheduler.Options{Strategies: in.PlacementStrategy, Constraints: slices.Clone(in.PlacementConstraints)}
	for _, c := range pin.td.PlacementConstraints {
		pin.opts.Constraints = append(pin.opts.Constraints, types.PlacementConstraint{Type: types.PlacementConstraintType(c.Type), Expression: c.Expression})
	}
	if err := scheduler.ValidateOptions(pin.opts); err != nil {
		return pin, err
	}
	return pin, nil
}

// runInstances is what RunTask places on: the snapshot's live (not
// INACTIVE) instances, oldest registration first, with their running task
// counts when a constraint reads them; and the task's demand. A cluster
// without a live instance is InvalidParameterException, as in ECS. The
// instances are shared and read-only.
func (h *handlers) runInstances(ctx context.Context, in placeInput, snap *instSnapshot) ([]scheduler.Instance, scheduler.Demand, error) {
	demand := schedDemand(in)
	if len(snap.live) == 0 {
		return nil, demand, noInstances()
	}
	if readsRunningCount(in.opts.Constraints) {
		live, err := h.withRunningCounts(ctx, in.cluster, snap.live)
		return live, demand, err
	}
	return snap.live, demand, nil
}

// schedDemand is what one task of in needs, for the scheduler.
func schedDemand(in placeInput) scheduler.Demand {
	return scheduler.Demand{
		CPU: in.demand.CPU, Memory: in.demand.Memory,
		Ports: in.demand.Ports, PortsUDP: in.demand.PortsUDP,
		Group: in.group,
	}
}

// explanation renders a decision.
func explanation(pin placeInput, live []scheduler.Instance, dec scheduler.Decision) *PlacementExplanation {
	x := &PlacementExplanation{
		Cluster:           pin.cluster,
		TaskDefinitionArn: aws.ToString(pin.td.TaskDefinitionArn),
		Group:             pin.group,
		Count:             pin.count,
		Demand:            explainedResources(pin.demand.CPU, pin.demand.Memory, pin.demand.Ports, pin.demand.PortsUDP),
		Placements:        []ExplainedPlacement{},
		Failures:          []ExplainedFailure{},
		Constraints:       []ExplainedConstraint{},
		Instances:         make([]InstanceVerdict, 0, len(dec.Verdicts)),
	}
	strategies := pin.opts.Strategies
	if len(strategies) == 0 {
		strategies = scheduler.DefaultStrategies
	}
	var spreadAttrs []string
	for _, s := range strategies {
		x.Strategies = append(x.Strategies, ExplainedStrategy{Type: string(s.Type), Field: aws.ToString(s.Field)})
		if s.Type == types.PlacementStrategyTypeRandom {
			x.Random = true
		}
		if name, ok := strings.CutPrefix(aws.ToString(s.Field), "attribute:"); ok && s.Type == types.PlacementStrategyTypeSpread {
			spreadAttrs = append(spreadAttrs, name)
		}
	}
	for _, c := range pin.opts.Constraints {
		x.Constraints = append(x.Constraints, ExplainedConstraint{Type: string(c.Type), Expression: aws.ToString(c.Expression)})
	}
	for _, p := range dec.Placements {
		x.Placements = append(x.Placements, ExplainedPlacement{ContainerInstanceArn: p.InstanceARN, ContainerInstanceID: live[p.Instance].Name})
	}
	for _, f := range failures(dec.Failures) {
		x.Failures = append(x.Failures, ExplainedFailure{Arn: aws.ToString(f.Arn), Reason: aws.ToString(f.Reason), Detail: aws.ToString(f.Detail)})
	}
	for _, v := range dec.Verdicts {
		si := &live[v.Instance]
		iv := InstanceVerdict{
			ContainerInstanceArn: si.ARN,
			ContainerInstanceID:  si.Name,
			Status:               si.Status,
			AgentConnected:       si.AgentConnected,
			Remaining:            explainedResources(si.Remaining.CPU, si.Remaining.Memory, slices.Clone(si.Remaining.Ports), slices.Clone(si.Remaining.PortsUDP)),
			Placed:               v.Placed,
		}
		for _, name := range spreadAttrs {
			if val, ok := si.Attribute(name); ok {
				if iv.Attributes == nil {
					iv.Attributes = map[string]string{}
				}
				iv.Attributes[name] = val
			}
		}
		if f := v.Failure; f != nil {
			iv.Excluded = &ExcludedBecause{
				Reason: f.Reason, Rule: f.Rule, Detail: strings.TrimPrefix(f.Detail, si.Name+": "),
				Needed: f.Needed, Free: f.Free, Port: f.Port, Attribute: f.Attribute,
				Constraint: f.Constraint, Clause: f.Clause,
			}
		}
		x.Instances = append(x.Instances, iv)
	}
	return x
}

func explainedResources(cpu, memory int64, ports, udp []int32) ExplainedResources {
	return ExplainedResources{CPU: cpu, Memory: memory, Ports: ports, PortsUDP: udp}
}
