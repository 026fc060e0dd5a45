package ecsapi

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store"
)

// errNoLiveInstances: a service's tasks found no live instance in the
// cluster (RunTask answers InvalidParameterException instead).
var errNoLiveInstances = errors.New("no container instances in the cluster")

// closestNoInstances is the closest-instance text of ECS's service event
// when the cluster has no container instance.
const closestNoInstances = "Reason: No Container Instances were found in your cluster."

// ServiceTasks is what the service controller needs of tasks, without the
// rest of the ECS API: launching a deployment's tasks (placed and committed
// exactly as RunTask places them, with the service → task index), stopping
// them, and listing a service's tasks. It is an internal caller: nothing is
// authorized.
type ServiceTasks struct {
	h *handlers
}

// NewServiceTasks returns ServiceTasks over the ECS API's configuration
// (its Authorizer is not used).
func NewServiceTasks(cfg Config) *ServiceTasks {
	return &ServiceTasks{h: newHandlers(cfg)}
}

// Launch places and starts l.Count tasks of a service's deployment: group
// service:<name>, startedBy the deployment id, the service's strategies
// (spread across Availability Zones when it has none) and constraints
// with the task definition's, the given tags (with the task definition's
// first when the service propagates them). With l.Instance set, tasks go
// on that instance only, its constraints checked (a DAEMON service). The
// task definition may be INACTIVE: a service keeps running a deregistered
// revision, as in ECS. Tasks are committed in batches of at most 10 (the
// RunTask bound, which keeps each transaction small); the first batch that
// cannot place all its tasks ends the launch. Tasks that cannot be placed
// are Failures, never an error; Closest then names the closest matching
// instance in ECS's words.
func (s *ServiceTasks) Launch(ctx context.Context, l domain.ServiceLaunch) (domain.ServiceLaunchResult, error) {
	h := s.h
	var res domain.ServiceLaunchResult
	if l.Count <= 0 {
		return res, nil
	}
	ref, err := h.parseTaskDefRef(l.TaskDefinitionARN)
	if err != nil {
		return res, err
	}
	tdRec, _, err := h.findTaskDefinition(ctx, ref, h.taskDefs.Decode)
	if err != nil {
		return res, err
	}
	td := &tdRec.TaskDefinition
	tags, err := h.launchTags(ctx, l, tdRec.Tags)
	if err != nil {
		return res, err
	}
	lt := l.LaunchType
	if lt == "" {
		lt = types.LaunchTypeEc2
	}
	opts := scheduler.Options{Strategies: l.PlacementStrategy, Constraints: slices.Clone(l.PlacementConstraints)}
	if len(opts.Strategies) == 0 {
		opts.Strategies = scheduler.ServiceDefaultStrategies
	}
	for _, c := range td.PlacementConstraints {
		opts.Constraints = append(opts.Constraints, types.PlacementConstraint{Type: types.PlacementConstraintType(c.Type), Expression: c.Expression})
	}
	pin := placeInput{
		cluster: l.Cluster, td: td, demand: domain.TaskResources(td, nil), launchType: lt,
		group: domain.GroupOfService(l.Service), startedBy: l.DeploymentID, tags: tags,
		execute: l.EnableExecute, opts: opts, service: l.Service, only: l.Instance,
	}
	for remaining := l.Count; remaining > 0; {
		pin.count = min(remaining, maxRunCount)
		pr, err := h.place(ctx, pin)
		if errors.Is(err, errNoLiveInstances) {
			res.Failures = append(res.Failures, types.Failure{
				Reason: aws.String(scheduler.ReasonMissing),
				Detail: aws.String("No Container Instances were found in your cluster."),
			})
			res.Closest = closestNoInstances
			return res, nil
		}
		if err != nil {
			return res, err
		}
		res.Tasks = append(res.Tasks, pr.tasks...)
		res.Failures = append(res.Failures, pr.failures...)
		if pr.closest != "" {
			res.Closest = pr.closest
		}
		remaining -= len(pr.tasks)
		if len(pr.tasks) < pin.count {
			break
		}
	}
	return res, nil
}

// launchTags are the tags of a service's tasks: the launch's, after the
// task definition's when the service propagates TASK_DEFINITION tags
// (the controller adds the service's own and ECS's managed tags). ECS's
// aws: tags do not count toward the 50-tag limit, so none is enforced.
func (h *handlers) launchTags(ctx context.Context, l domain.ServiceLaunch, tdTags []types.Tag) ([]types.Tag, error) {
	rec, _, err := h.services.Get(ctx, h.store, domain.ServiceKey(l.Cluster, l.Service))
	if errors.Is(err, errdefs.ErrNotFound) || err == nil && rec.Service.PropagateTags != types.PropagateTagsTaskDefinition {
		return l.Tags, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	out := slices.Clone(tdTags)
	for _, t := range l.Tags {
		i := slices.IndexFunc(out, func(e types.Tag) bool { return aws.ToString(e.Key) == aws.ToString(t.Key) })
		if i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out, nil
}

// Stop asks a task to stop as StopTask does, with stopCode
// ServiceSchedulerInitiated and the given stoppedReason. A task that is
// already stopping or stopped, or no longer exists, is left alone.
func (s *ServiceTasks) Stop(ctx context.Context, cluster, taskID, reason string) error {
	h := s.h
	key := domain.TaskKey(cluster, taskID)
	synced := false
	return h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		t, rev, found, err := getSynced[domain.TaskRecord](ctx, h.store, key, &synced)
		if err != nil {
			return nil, nil, err
		}
		if !found || !t.Stop(types.TaskStopCodeServiceSchedulerInitiated, reason, h.now()) {
			return nil, nil, nil
		}
		op, err := put(key, t)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{op}, nil
	})
}

// Tasks lists a service's task records (STOPPED ones included while their
// records exist), as DescribeServices counts them. The records are shared
// and read-only.
func (s *ServiceTasks) Tasks(ctx context.Context, cluster, service string) ([]*domain.TaskRecord, error) {
	return s.h.serviceTasks(ctx, cluster, service)
}

// closestRank orders the placement rules by how far an instance got
// through them: an instance that failed a later rule met every earlier
// one. Instances excluded by status (DRAINING, INACTIVE) are not
// candidates at all.
var closestRank = map[string]int{
	scheduler.RuleAgent:            1,
	scheduler.RuleCPU:              2,
	scheduler.RuleMemory:           3,
	scheduler.RulePorts:            4,
	scheduler.RulePortsUDP:         4,
	scheduler.RuleAttribute:        5,
	scheduler.RuleDistinctInstance: 6,
	scheduler.RuleMemberOf:         6,
}

// closestInstance names the instance that got furthest through placement
// (the first such, in placement order) and what it lacked, in the words of
// ECS's service event ("The closest matching container-instance <id> has
// insufficient memory available."); "" when no instance was a candidate.
func closestInstance(fs []scheduler.Failure) string {
	best, bestRank := -1, 0
	for i, f := range fs {
		if r := closestRank[f.Rule]; r > bestRank {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return ""
	}
	f := fs[best]
	id := f.InstanceARN[strings.LastIndex(f.InstanceARN, "/")+1:]
	prefix := "The closest matching container-instance " + id
	switch f.Rule {
	case scheduler.RuleAgent:
		return prefix + ` encountered error "AGENT".`
	case scheduler.RuleCPU:
		return prefix + " has insufficient CPU units available."
	case scheduler.RuleMemory:
		return prefix + " has insufficient memory available."
	case scheduler.RulePorts, scheduler.RulePortsUDP:
		return prefix + " is already using a port required by your task."
	case scheduler.RuleAttribute:
		return prefix + " is missing an attribute required by your task."
	default: // distinctInstance, memberOf: berth's words, ECS documents none
		return prefix + " does not meet the placement constraints of your task."
	}
}

// Unfit returns the ids of the cluster's live instances that do not meet
// a service's memberOf placement constraints (now: attributes change, and
// a DAEMON service stops its task where its constraints no longer hold).
// distinctInstance has nothing to say about a placed task; nil when the
// service has no memberOf constraint.
func (s *ServiceTasks) Unfit(ctx context.Context, cluster string, constraints []types.PlacementConstraint) (map[string]bool, error) {
	var exprs []*scheduler.Expression
	var member []types.PlacementConstraint
	for _, c := range constraints {
		if c.Type != types.PlacementConstraintTypeMemberOf {
			continue
		}
		e, err := scheduler.ParseExpression(aws.ToString(c.Expression))
		if err != nil {
			return nil, err
		}
		exprs = append(exprs, e)
		member = append(member, c)
	}
	if len(exprs) == 0 {
		return nil, nil
	}
	h := s.h
	snap, err := h.instanceSnapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	live := snap.live
	if readsRunningCount(member) {
		if live, err = h.withRunningCounts(ctx, cluster, live); err != nil {
			return nil, err
		}
	}
	out := map[string]bool{}
	for i := range live {
		for _, e := range exprs {
			if !e.Match(&live[i]) {
				out[live[i].Name] = true
			}
		}
	}
	return out, nil
}
