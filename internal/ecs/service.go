package ecs

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Service statuses (ECS: ACTIVE → DRAINING after DeleteService → INACTIVE
// once no task of it runs).
const (
	ServiceStatusActive   = "ACTIVE"
	ServiceStatusDraining = "DRAINING"
	ServiceStatusInactive = "INACTIVE"
)

// Deployment statuses: PRIMARY is the newest deployment, ACTIVE an older
// one whose tasks are still being replaced, INACTIVE one fully replaced.
const (
	DeploymentPrimary  = "PRIMARY"
	DeploymentActive   = "ACTIVE"
	DeploymentInactive = "INACTIVE"
)

// Service scheduler constants (ecs-behaviour.md §4).
const (
	// SettleTime is how long a task without container health checks and
	// without a load balancer must have been RUNNING before it counts as
	// healthy for minimumHealthyPercent (ECS: "the service scheduler will
	// wait for 40 seconds after a task reaches a RUNNING state").
	SettleTime = 40 * time.Second
	// MaxServiceEvents bounds service.events (newest first).
	MaxServiceEvents = 100
	// EventRepeatAfter is how long a repeated message is suppressed while
	// its cause lasts (and how often "steady state" is repeated).
	EventRepeatAfter = 6 * time.Hour
	// MaxThrottleDelay caps the relaunch delay of a service whose tasks
	// keep failing to start (ECS: up to 15 minutes).
	MaxThrottleDelay = 15 * time.Minute
	// throttleFreeFailures is how many consecutive launch failures are
	// relaunched without delay; throttleBase is the first delay after them,
	// doubled with each further failure.
	throttleFreeFailures = 5
	throttleBase         = 5 * time.Second
)

// Defaults of deploymentConfiguration.
const (
	DefaultReplicaMinimumHealthyPercent = 100
	DefaultReplicaMaximumPercent        = 200
	DefaultDaemonMinimumHealthyPercent  = 0
	DefaultDaemonMaximumPercent         = 100
)

// ServiceRecord is one service: the value under ServiceKey.
type ServiceRecord struct {
	// Service is the service as DescribeServices shows it, except for
	// three parts filled in when it is read: runningCount and
	// pendingCount (service and deployments), counted from its tasks so
	// they are true at every moment, and deployments, rendered from
	// Deployments below.
	Service types.Service `json:"service"`
	Name    string        `json:"name"`
	Cluster string        `json:"cluster"`
	// Deployments are the service's deployments, PRIMARY first.
	Deployments []DeploymentRecord `json:"deployments"`
	// LastCompleted is the newest deployment that reached COMPLETED: what a
	// circuit-breaker rollback restores. Nil until one completes.
	LastCompleted *DeploymentRecord `json:"lastCompleted,omitempty"`
	// EventMemo remembers, per kind of event, the last message and when it
	// was written, so a repeated message is suppressed (EventRepeatAfter).
	EventMemo map[string]EventMemo `json:"eventMemo,omitempty"`
	// ClientToken and RequestHash make CreateService idempotent.
	ClientToken string `json:"clientToken,omitempty"`
	RequestHash string `json:"requestHash,omitempty"`
	// Generation counts the API's changes of the desired state.
	Generation int64     `json:"generation"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// DeploymentRecord is one deployment of a service.
type DeploymentRecord struct {
	// Deployment is as DescribeServices shows it, without the counts.
	Deployment types.Deployment `json:"deployment"`
	// Family and Revision name the task definition.
	Family   string `json:"family"`
	Revision int32  `json:"revision"`
	// Breaker says whether the circuit breaker watches this deployment:
	// ECS does not start it when the deployment had a task running
	// successfully already.
	Breaker bool `json:"breaker,omitempty"`
	// ResetAt is when a task of the deployment was last seen healthy:
	// failures before it no longer count (resetOnHealthyTask).
	ResetAt *time.Time `json:"resetAt,omitempty"`
}

// EventMemo is the last event of one kind.
type EventMemo struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// ID is the deployment's id (ecs-svc/<19 digits>).
func (d *DeploymentRecord) ID() string { return aws.ToString(d.Deployment.Id) }

// Status is PRIMARY, ACTIVE or INACTIVE.
func (d *DeploymentRecord) Status() string { return aws.ToString(d.Deployment.Status) }

// ARN is the service's ARN.
func (s *ServiceRecord) ARN() string { return aws.ToString(s.Service.ServiceArn) }

// Status is ACTIVE, DRAINING or INACTIVE.
func (s *ServiceRecord) Status() string { return aws.ToString(s.Service.Status) }

// Primary is the newest deployment, nil when there is none (a service that
// is INACTIVE keeps its last one).
func (s *ServiceRecord) Primary() *DeploymentRecord {
	if len(s.Deployments) == 0 {
		return nil
	}
	return &s.Deployments[0]
}

// Deployment returns the deployment with id, or nil.
func (s *ServiceRecord) Deployment(id string) *DeploymentRecord {
	for i := range s.Deployments {
		if s.Deployments[i].ID() == id {
			return &s.Deployments[i]
		}
	}
	return nil
}

// IsDaemon says whether the service runs one task per instance.
func (s *ServiceRecord) IsDaemon() bool {
	return s.Service.SchedulingStrategy == types.SchedulingStrategyDaemon
}

// Percents returns the service's minimumHealthyPercent and maximumPercent
// with ECS's defaults filled in.
func (s *ServiceRecord) Percents() (minPct, maxPct int32) {
	minPct, maxPct = DefaultReplicaMinimumHealthyPercent, DefaultReplicaMaximumPercent
	if s.IsDaemon() {
		minPct, maxPct = DefaultDaemonMinimumHealthyPercent, DefaultDaemonMaximumPercent
	}
	if dc := s.Service.DeploymentConfiguration; dc != nil {
		if dc.MinimumHealthyPercent != nil {
			minPct = *dc.MinimumHealthyPercent
		}
		if dc.MaximumPercent != nil {
			maxPct = *dc.MaximumPercent
		}
	}
	return minPct, maxPct
}

// CircuitBreaker returns the service's circuit breaker configuration, nil
// when it has none or it is disabled.
func (s *ServiceRecord) CircuitBreaker() *types.DeploymentCircuitBreaker {
	dc := s.Service.DeploymentConfiguration
	if dc == nil || dc.DeploymentCircuitBreaker == nil || !dc.DeploymentCircuitBreaker.Enable {
		return nil
	}
	return dc.DeploymentCircuitBreaker
}

// GroupOfService is the task group ECS gives a service's tasks.
func GroupOfService(name string) string { return "service:" + name }

// MinHealthyTasks is how many tasks must stay RUNNING and healthy during a
// deployment: ceil(desired × minimumHealthyPercent / 100).
func MinHealthyTasks(desired, minPct int32) int {
	if desired <= 0 || minPct <= 0 {
		return 0
	}
	return int((int64(desired)*int64(minPct) + 99) / 100)
}

// MaxTotalTasks is how many tasks may be RUNNING or PENDING together:
// floor(desired × maximumPercent / 100).
func MaxTotalTasks(desired, maxPct int32) int {
	if desired <= 0 || maxPct <= 0 {
		return 0
	}
	return int(int64(desired) * int64(maxPct) / 100)
}

// BreakerThreshold is how many failed tasks make the circuit breaker trip.
// Without a thresholdConfiguration it is ECS's classic formula,
// clamp(ceil(0.5 × desired), 10, 200); with one, COUNT uses the value,
// BOUNDED_PERCENT clamps ceil(value% × desired) to 3–200 and
// UNBOUNDED_PERCENT does not clamp (at least 1 either way).
func BreakerThreshold(desired int32, cfg *types.ThresholdConfiguration) int {
	if cfg == nil {
		return clamp(int(math.Ceil(0.5*float64(desired))), 10, 200)
	}
	pct := func() int { return int((int64(desired)*int64(cfg.Value) + 99) / 100) }
	switch cfg.Type {
	case types.ThresholdTypeCount:
		return max(1, int(cfg.Value))
	case types.ThresholdTypeUnboundedPercent:
		return max(1, pct())
	default: // BOUNDED_PERCENT
		return clamp(pct(), 3, 200)
	}
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

// ThrottleDelay is how long the scheduler waits before launching again
// after failures consecutive tasks stopped without reaching RUNNING: none
// for the first few, then 5 s doubling per failure up to 15 minutes. ECS
// documents the growth and the cap, not the steps; docs/services.md.
func ThrottleDelay(failures int) time.Duration {
	if failures <= throttleFreeFailures {
		return 0
	}
	n := failures - throttleFreeFailures - 1
	if n >= 20 {
		return MaxThrottleDelay
	}
	return min(MaxThrottleDelay, throttleBase<<n)
}

// Service event messages, in ECS's words (ecs-behaviour.md §4.5).

// EventSteadyState: the service runs its desired count, one deployment.
func EventSteadyState(service string) string {
	return fmt.Sprintf("(service %s) has reached a steady state.", service)
}

// EventStarted lists started tasks by id.
func EventStarted(service string, taskIDs []string) string {
	return fmt.Sprintf("(service %s) has started %d tasks: %s.", service, len(taskIDs), taskList(taskIDs))
}

// EventStopped lists stopped running tasks by id.
func EventStopped(service string, taskIDs []string) string {
	return fmt.Sprintf("(service %s) has stopped %d running tasks: %s.", service, len(taskIDs), taskList(taskIDs))
}

func taskList(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "(task " + id + ")"
	}
	return strings.Join(parts, " ")
}

// EventUnableToPlace: no instance met the task's requirements; closest,
// when known, names the closest instance and what it lacked.
func EventUnableToPlace(service, closest string) string {
	msg := fmt.Sprintf("(service %s) was unable to place a task because no container instance met all of its requirements.", service)
	if closest != "" {
		msg += " " + closest
	}
	return msg + " For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
}

// EventUnableToStartConsistently: the throttle is in effect.
func EventUnableToStartConsistently(service string) string {
	return fmt.Sprintf("(service %s) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", service)
}

// EventDeploymentStuck: minimumHealthyPercent and maximumPercent leave no
// room to stop or start a task.
func EventDeploymentStuck(service string) string {
	return fmt.Sprintf("(service %s) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.", service)
}

// EventDeploymentCompleted: a deployment reached COMPLETED.
func EventDeploymentCompleted(service, deploymentID string) string {
	return fmt.Sprintf("(service %s) (deployment %s) deployment completed.", service, deploymentID)
}

// EventDeploymentFailed: the circuit breaker tripped.
func EventDeploymentFailed(service, deploymentID string) string {
	return fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start.", service, deploymentID)
}

// EventRollingBack: the circuit breaker restores an earlier deployment.
func EventRollingBack(service, deploymentID string) string {
	return fmt.Sprintf("(service %s) rolling back to deployment %s.", service, deploymentID)
}

// Rollout state reasons.
func ReasonInProgress(id string) string { return "ECS deployment " + id + " in progress." }
func ReasonCompleted(id string) string  { return "ECS deployment " + id + " completed." }

// ReasonBreakerFailed is a failed deployment's rolloutStateReason.
const ReasonBreakerFailed = "ECS deployment circuit breaker: task failed to start."

// ReasonRollback is the rolloutStateReason of a rollback deployment.
func ReasonRollback(targetID string) string {
	return "ECS deployment circuit breaker: rolling back to deploymentId " + targetID + "."
}

// AddEvent records a service event of a kind, newest first and at most
// MaxServiceEvents, unless the same message of that kind was recorded less
// than EventRepeatAfter ago. It reports whether the event was recorded.
func (s *ServiceRecord) AddEvent(kind, id, message string, now time.Time) bool {
	if m, ok := s.EventMemo[kind]; ok && m.Message == message && now.Sub(m.At) < EventRepeatAfter {
		return false
	}
	if s.EventMemo == nil {
		s.EventMemo = map[string]EventMemo{}
	}
	s.EventMemo[kind] = EventMemo{Message: message, At: now}
	ev := types.ServiceEvent{Id: aws.String(id), CreatedAt: aws.Time(now), Message: aws.String(message)}
	s.Service.Events = slices.Insert(s.Service.Events, 0, ev)
	if len(s.Service.Events) > MaxServiceEvents {
		s.Service.Events = s.Service.Events[:MaxServiceEvents]
	}
	return true
}

// ForgetEvent clears the memo of a kind whose cause is resolved, so the
// next occurrence is recorded again at once.
func (s *ServiceRecord) ForgetEvent(kind string) { delete(s.EventMemo, kind) }

// ServiceTaskCounts are a deployment's (or a service's) task counts.
type ServiceTaskCounts struct {
	Running, Pending int32
}

// CountServiceTasks counts tasks per deployment (by startedBy) and in all:
// running = lastStatus RUNNING, pending = PROVISIONING/PENDING/ACTIVATING;
// tasks asked to stop count in neither once they left RUNNING, as ECS
// counts them.
func CountServiceTasks(tasks []*TaskRecord) (total ServiceTaskCounts, byDeployment map[string]ServiceTaskCounts) {
	byDeployment = map[string]ServiceTaskCounts{}
	for _, t := range tasks {
		c := byDeployment[aws.ToString(t.Task.StartedBy)]
		switch aws.ToString(t.Task.LastStatus) {
		case TaskStatusRunning:
			c.Running++
			total.Running++
		case "PROVISIONING", "PENDING", "ACTIVATING":
			if aws.ToString(t.Task.DesiredStatus) == TaskStatusStopped {
				continue
			}
			c.Pending++
			total.Pending++
		default:
			continue
		}
		byDeployment[aws.ToString(t.Task.StartedBy)] = c
	}
	return total, byDeployment
}

// ToAPI renders the service as DescribeServices shows it, with counts from
// its tasks (every task record of the service still stored); tags only
// when asked for.
func (s *ServiceRecord) ToAPI(tasks []*TaskRecord, withTags bool) types.Service {
	out := s.Service
	total, byDep := CountServiceTasks(tasks)
	out.RunningCount, out.PendingCount = total.Running, total.Pending
	out.Deployments = make([]types.Deployment, 0, len(s.Deployments))
	for _, d := range s.Deployments {
		dep := d.Deployment
		c := byDep[d.ID()]
		dep.RunningCount, dep.PendingCount = c.Running, c.Pending
		out.Deployments = append(out.Deployments, dep)
	}
	out.Events = nonNil(slices.Clone(s.Service.Events))
	out.Tags = nil
	if withTags {
		out.Tags = nonNil(slices.Clone(s.Service.Tags))
	}
	return out
}

// NewDeploymentID returns a deployment id as ECS shapes them:
// "ecs-svc/" and 19 decimal digits.
func NewDeploymentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	n := binary.BigEndian.Uint64(b[:]) % 9e18
	return fmt.Sprintf("ecs-svc/%019d", n+1e18)
}

// NewDeploymentInput describes a deployment to start.
type NewDeploymentInput struct {
	ID             string // "" draws a fresh one
	TaskDefinition *types.TaskDefinition
	DesiredCount   int32
	LaunchType     types.LaunchType
	Network        *types.NetworkConfiguration
	Breaker        bool
	// Reason overrides the rolloutStateReason ("… in progress.").
	Reason string
	Now    time.Time
}

// NewDeployment builds a PRIMARY deployment, IN_PROGRESS.
func NewDeployment(in NewDeploymentInput) DeploymentRecord {
	id := in.ID
	if id == "" {
		id = NewDeploymentID()
	}
	reason := in.Reason
	if reason == "" {
		reason = ReasonInProgress(id)
	}
	return DeploymentRecord{
		Deployment: types.Deployment{
			Id:                   aws.String(id),
			Status:               aws.String(DeploymentPrimary),
			TaskDefinition:       in.TaskDefinition.TaskDefinitionArn,
			DesiredCount:         in.DesiredCount,
			LaunchType:           in.LaunchType,
			NetworkConfiguration: in.Network,
			CreatedAt:            aws.Time(in.Now),
			UpdatedAt:            aws.Time(in.Now),
			RolloutState:         types.DeploymentRolloutStateInProgress,
			RolloutStateReason:   aws.String(reason),
		},
		Family:   aws.ToString(in.TaskDefinition.Family),
		Revision: in.TaskDefinition.Revision,
		Breaker:  in.Breaker,
	}
}

// StartDeployment makes d the PRIMARY deployment: the previous PRIMARY
// becomes ACTIVE (its tasks are replaced) and the service's task
// definition is d's.
func (s *ServiceRecord) StartDeployment(d DeploymentRecord, now time.Time) {
	for i := range s.Deployments {
		if s.Deployments[i].Status() == DeploymentPrimary {
			s.Deployments[i].Deployment.Status = aws.String(DeploymentActive)
			s.Deployments[i].Deployment.UpdatedAt = aws.Time(now)
		}
	}
	s.Deployments = slices.Insert(s.Deployments, 0, d)
	s.Service.TaskDefinition = d.Deployment.TaskDefinition
}

// ServiceLaunch asks for tasks of one deployment of a service to be placed
// and started, as RunTask would place them (the service controller's
// request; ecsapi carries it out).
type ServiceLaunch struct {
	Cluster, Service string
	// DeploymentID becomes the tasks' startedBy; the group is
	// GroupOfService(Service).
	DeploymentID string
	// TaskDefinitionARN names the revision (with its number).
	TaskDefinitionARN    string
	Count                int
	LaunchType           types.LaunchType
	PlacementStrategy    []types.PlacementStrategy
	PlacementConstraints []types.PlacementConstraint
	// Tags are the tasks' tags (what propagateTags and enableECSManagedTags
	// give them).
	Tags          []types.Tag
	EnableExecute bool
	// Instance, for a DAEMON service, is the one container instance (id) to
	// place on; "" places anywhere in the cluster.
	Instance string
}

// ServiceLaunchResult is what a ServiceLaunch started, and why the rest
// could not be placed.
type ServiceLaunchResult struct {
	Tasks    []TaskRecord
	Failures []types.Failure
	// Closest, when no task could be placed, names the closest matching
	// instance and what it lacked, in the words of ECS's service event
	// ("The closest matching container-instance <id> has insufficient
	// memory available.").
	Closest string
}
