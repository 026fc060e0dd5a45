package service

import (
	"cmp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
)

// view is what one reconcile of a service sees: its record, every task
// record it started that is still stored, the cluster's instances, and
// which deployments' task definitions have container health checks.
type view struct {
	rec       domain.ServiceRecord
	tasks     []*domain.TaskRecord
	instances map[string]*domain.ContainerInstance // by id
	// instanceRevs are the instances' mod revisions, by id.
	instanceRevs map[string]int64
	// refused are the ACTIVE instances a DAEMON service's task was refused
	// on (resources, constraints) and that did not change since.
	refused map[string]bool
	// unfit are the instances that do not meet a DAEMON service's memberOf
	// constraints (any more): its task there stops.
	unfit map[string]bool
	// checked says, per deployment id, whether an essential container of
	// its task definition has a health check (then a task is healthy only
	// once HEALTHY; otherwise SettleTime after RUNNING).
	checked map[string]bool
	now     time.Time
}

// stop is one task the plan stops.
type stop struct {
	taskID string
	reason string
	// running says the task was RUNNING (for the "has stopped N running
	// tasks" event).
	running bool
}

// launch asks for count tasks of a deployment; instance is set for a
// DAEMON service (one task there).
type launch struct {
	deployment string
	count      int
	instance   string
}

// plan is what one reconcile decides: the tasks to start and stop, and the
// service record to write (deployments, events, status).
type plan struct {
	launches []launch
	stops    []stop
	// rec is the record to write; changed says whether it differs.
	rec domain.ServiceRecord
	// wakeAt, when not zero, is when time alone changes the decision (a
	// task turns healthy, a grace period or a throttle ends).
	wakeAt time.Time
	// throttled says the launches were held back by the throttle.
	throttled bool
}

// Stop reasons, as ECS words them.
const (
	reasonUnhealthy = "Task failed container health checks"
	reasonDeleted   = "Service deleted"
	reasonDraining  = "Container instance is draining"
	// reasonUnfit: berth's words; ECS documents that DAEMON tasks stop
	// where the constraints no longer hold, not the reason it gives.
	reasonUnfit = "Container instance no longer meets the service's placement constraints"
)

// taskState is a task classified for the plan.
type taskState struct {
	t          *domain.TaskRecord
	id         string
	deployment string
	active     bool // desiredStatus RUNNING
	running    bool // lastStatus RUNNING
	counted    bool // not STOPPED: counts toward maximumPercent
	started    bool // PROVISIONING … RUNNING: not yet stopping
	healthy    bool // counts toward minimumHealthyPercent
	unhealthy  bool // failed its health checks after the grace period
	draining   bool // on a DRAINING or gone instance
	instance   string
}

// classify sorts the service's tasks.
func (v *view) classify(grace time.Duration, wake func(time.Time)) []taskState {
	out := make([]taskState, 0, len(v.tasks))
	for _, t := range v.tasks {
		s := taskState{t: t, id: t.ID, deployment: aws.ToString(t.Task.StartedBy), instance: t.InstanceID}
		last := aws.ToString(t.Task.LastStatus)
		s.active = aws.ToString(t.Task.DesiredStatus) == domain.TaskStatusRunning
		s.running = last == domain.TaskStatusRunning
		// Every task not yet STOPPED holds its instance (ports, memory),
		// also while it stops: it counts toward maximumPercent until the
		// agent reports it STOPPED.
		s.counted = last != domain.TaskStatusStopped
		switch last {
		case domain.TaskStatusProvisioning, domain.TaskStatusPending, domain.TaskStatusActivating, domain.TaskStatusRunning:
			s.started = true
		}
		if ci := v.instances[t.InstanceID]; t.InstanceID != "" && (ci == nil || ci.Status != domain.InstanceStatusActive) {
			s.draining = true
		}
		if s.active && s.running && t.Task.StartedAt != nil {
			started := *t.Task.StartedAt
			inGrace := v.now.Before(started.Add(grace))
			if inGrace {
				wake(started.Add(grace))
			}
			if v.checked[s.deployment] {
				switch t.Task.HealthStatus {
				case types.HealthStatusHealthy:
					s.healthy = true
				case types.HealthStatusUnhealthy:
					s.unhealthy = !inGrace
				}
			} else {
				settled := started.Add(domain.SettleTime)
				if v.now.Before(settled) {
					wake(settled)
				} else {
					s.healthy = true
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// failedToStart says whether a stopped task never reached RUNNING (or
// was stopped for failing its health checks): what the throttle and the
// circuit breaker count.
func failedToStart(t *domain.TaskRecord) bool {
	if aws.ToString(t.Task.LastStatus) != domain.TaskStatusStopped || t.Task.StoppedAt == nil {
		return false
	}
	return t.Task.StartedAt == nil || t.Task.StopCode == types.TaskStopCodeTaskFailedToStart ||
		aws.ToString(t.Task.StoppedReason) == reasonUnhealthy
}

// decide is the reconcile, with no I/O: it compares the service's desired
// state with its tasks and returns what to do. Callers run the launches
// and stops, then write plan.rec if it changed.
func decide(v view) plan {
	p := plan{rec: cloneRecord(v.rec)}
	rec := &p.rec
	grace := time.Duration(aws.ToInt32(rec.Service.HealthCheckGracePeriodSeconds)) * time.Second
	states := v.classify(grace, p.wake)

	if rec.Status() != domain.ServiceStatusActive {
		decideDeleted(rec, states, &p, v.now)
		return p
	}
	if rec.IsDaemon() {
		decideDaemon(rec, states, &v, &p)
	} else {
		decideReplica(rec, states, &p, v.now)
	}
	settle(rec, states, &p, v.now)
	return p
}

// decideDeleted stops every task of a DRAINING service and makes it
// INACTIVE once every task is STOPPING or STOPPED (as ECS does).
func decideDeleted(rec *domain.ServiceRecord, states []taskState, p *plan, now time.Time) {
	left := 0
	for _, s := range states {
		if s.active {
			p.stops = append(p.stops, stop{taskID: s.id, reason: reasonDeleted, running: s.running})
		}
		if s.started {
			left++
		}
	}
	if left == 0 && rec.Status() == domain.ServiceStatusDraining && len(p.stops) == 0 {
		rec.Service.Status = aws.String(domain.ServiceStatusInactive)
		for i := range rec.Deployments {
			rec.Deployments[i].Deployment.Status = aws.String(domain.DeploymentInactive)
			rec.Deployments[i].Deployment.UpdatedAt = aws.Time(now)
		}
	}
}

// decideReplica is the rolling reconciler of a REPLICA service
// (ecs-behaviour.md §4.3): start up to maxTotal − counted tasks of the
// PRIMARY deployment, stop old, unhealthy, surplus and draining tasks
// while at least minKeep healthy tasks remain.
func decideReplica(rec *domain.ServiceRecord, states []taskState, p *plan, now time.Time) {
	primary := rec.Primary()
	pid := primary.ID()
	desired := rec.Service.DesiredCount
	minPct, maxPct := rec.Percents()
	minKeep := domain.MinHealthyTasks(desired, minPct)
	maxTotal := domain.MaxTotalTasks(desired, maxPct)

	counted, healthy := 0, 0
	var keep []taskState // PRIMARY tasks that stay: active, not unhealthy, not draining
	var old, pendingOld, unhealthy, draining []taskState
	for _, s := range states {
		if s.counted {
			counted++
		}
		if s.healthy {
			healthy++
		}
		if !s.active {
			continue
		}
		switch {
		case s.unhealthy:
			unhealthy = append(unhealthy, s)
		case s.deployment != pid && !s.running:
			pendingOld = append(pendingOld, s)
		case s.deployment != pid:
			old = append(old, s)
		case s.draining:
			draining = append(draining, s)
		default:
			keep = append(keep, s)
		}
	}

	// Stops that cost no healthy task: unhealthy tasks, old tasks not yet
	// running.
	for _, s := range unhealthy {
		p.stops = append(p.stops, stop{taskID: s.id, reason: reasonUnhealthy, running: s.running})
	}
	for _, s := range pendingOld {
		p.stops = append(p.stops, stop{taskID: s.id, reason: scalingReason(pid), running: false})
	}

	// Surplus PRIMARY tasks (scale-in): the not yet healthy first, then the
	// instance with the most of the service's tasks.
	var surplus []taskState
	if extra := len(keep) - int(desired); extra > 0 {
		sortForScaleIn(keep)
		surplus, keep = keep[:extra], keep[extra:]
	}

	// Launch the PRIMARY tasks still missing, within maximumPercent.
	need := int(desired) - len(keep)
	canStart := maxTotal - counted
	if need > 0 && canStart > 0 && primary.Deployment.RolloutState != types.DeploymentRolloutStateFailed {
		p.launches = append(p.launches, launch{deployment: pid, count: min(need, canStart)})
	}

	// Stops that may cost healthy tasks, within minimumHealthyPercent:
	// surplus, draining, then old deployments' tasks (the not yet healthy
	// first: they cost nothing).
	budget := healthy - minKeep
	var costly []taskState
	costly = append(costly, surplus...)
	costly = append(costly, draining...)
	sortForScaleIn(old)
	costly = append(costly, old...)
	slices.SortStableFunc(costly, func(a, b taskState) int {
		return cmp.Compare(boolInt(a.healthy), boolInt(b.healthy))
	})
	for _, s := range costly {
		if s.healthy {
			// A draining or old task is stopped only once its replacement
			// exists, unless minimumHealthyPercent leaves room.
			if budget <= 0 {
				continue
			}
			budget--
		}
		reason := scalingReason(pid)
		if s.draining && s.deployment == pid {
			reason = reasonDraining
		}
		p.stops = append(p.stops, stop{taskID: s.id, reason: reason, running: s.running})
	}

	// Stuck: work remains, nothing may start or stop, nothing is on its
	// way to healthy.
	progressing := false
	for _, s := range states {
		if s.active && s.counted && !s.healthy && !s.unhealthy {
			progressing = true
		}
	}
	work := need > 0 || len(old) > 0 || len(draining) > 0 || len(surplus) > 0
	if work && len(p.launches) == 0 && len(p.stops) == 0 && !progressing &&
		primary.Deployment.RolloutState == types.DeploymentRolloutStateInProgress {
		rec.AddEvent("stuck", newEventID(), domain.EventDeploymentStuck(rec.Name), now)
	} else {
		rec.ForgetEvent("stuck")
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scalingReason(deploymentID string) string {
	return "Scaling activity initiated by (deployment " + deploymentID + ")"
}

// sortForScaleIn orders tasks by which ECS stops first when it scales in
// without a strategy: not yet running, then from the instance holding the
// most of the service's tasks, then the newest.
func sortForScaleIn(ts []taskState) {
	perInstance := map[string]int{}
	for _, s := range ts {
		perInstance[s.instance]++
	}
	slices.SortStableFunc(ts, func(a, b taskState) int {
		if c := cmp.Compare(boolInt(a.running), boolInt(b.running)); c != 0 {
			return c
		}
		if c := cmp.Compare(boolInt(a.healthy), boolInt(b.healthy)); c != 0 {
			return c
		}
		if c := cmp.Compare(perInstance[b.instance], perInstance[a.instance]); c != 0 {
			return c
		}
		return b.t.Task.CreatedAt.Compare(aws.ToTime(a.t.Task.CreatedAt))
	})
}

// decideDaemon keeps one PRIMARY task on every ACTIVE instance: it stops
// tasks on instances that are draining or gone and tasks of older
// deployments (within minimumHealthyPercent), and launches on every ACTIVE
// instance without a task of the service. Instances that cannot take the
// task are found by the launch itself (placement checks resources and
// constraints) and no longer count toward the desired count.
func decideDaemon(rec *domain.ServiceRecord, states []taskState, v *view, p *plan) {
	primary := rec.Primary()
	pid := primary.ID()
	byInstance := map[string][]taskState{}
	healthy := 0
	for _, s := range states {
		if s.healthy {
			healthy++
		}
		if s.active || s.counted {
			byInstance[s.instance] = append(byInstance[s.instance], s)
		}
	}
	ids := make([]string, 0, len(v.instances))
	for id, ci := range v.instances {
		if ci.Status == domain.InstanceStatusActive && !v.refused[id] && !v.unfit[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	desired := int32(len(ids))
	if rec.Service.DesiredCount != desired {
		rec.Service.DesiredCount = desired
		primary.Deployment.DesiredCount = desired
	}
	minPct, _ := rec.Percents()
	budget := healthy - domain.MinHealthyTasks(desired, minPct)
	for _, s := range states {
		if !s.active {
			continue
		}
		switch {
		case s.draining:
			p.stops = append(p.stops, stop{taskID: s.id, reason: reasonDraining, running: s.running})
		case v.unfit[s.instance]:
			p.stops = append(p.stops, stop{taskID: s.id, reason: reasonUnfit, running: s.running})
		case s.unhealthy:
			p.stops = append(p.stops, stop{taskID: s.id, reason: reasonUnhealthy, running: s.running})
		case s.deployment != pid:
			if s.healthy {
				if budget <= 0 {
					continue
				}
				budget--
			}
			p.stops = append(p.stops, stop{taskID: s.id, reason: scalingReason(pid), running: s.running})
		}
	}
	if primary.Deployment.RolloutState == types.DeploymentRolloutStateFailed {
		return
	}
	for _, id := range ids {
		busy := false
		for _, s := range byInstance[id] {
			// An instance holds one task of the service: a new one starts
			// once the old one is no longer running or pending.
			if s.counted || s.active && !s.unhealthy {
				busy = true
			}
		}
		if !busy {
			p.launches = append(p.launches, launch{deployment: pid, count: 1, instance: id})
		}
	}
}

// settle updates the deployments from the tasks: counts of failures, the
// circuit breaker (and its rollback), completion, the removal of fully
// replaced deployments, and the steady-state event.
func settle(rec *domain.ServiceRecord, states []taskState, p *plan, now time.Time) {
	primary := rec.Primary()
	pid := primary.ID()
	perDeployment := map[string]int{} // counted tasks
	primaryHealthy := 0
	var lastHealthy time.Time
	for _, s := range states {
		if s.counted {
			perDeployment[s.deployment]++
		}
		if s.deployment == pid && s.healthy {
			primaryHealthy++
			if at := aws.ToTime(s.t.Task.StartedAt); at.After(lastHealthy) {
				lastHealthy = at
			}
		}
	}

	// Throttle: tasks that failed to start since the last task that did
	// (or since the deployment began) delay the next launch.
	since := aws.ToTime(primary.Deployment.CreatedAt)
	for _, s := range states {
		if at := aws.ToTime(s.t.Task.StartedAt); s.t.Task.StartedAt != nil && at.After(since) {
			since = at
		}
	}
	failures := 0
	var lastFailure time.Time
	for _, s := range states {
		if failedToStart(s.t) && !s.t.Task.StoppedAt.Before(since) {
			failures++
			if s.t.Task.StoppedAt.After(lastFailure) {
				lastFailure = *s.t.Task.StoppedAt
			}
		}
	}
	if d := domain.ThrottleDelay(failures); d > 0 && now.Before(lastFailure.Add(d)) && len(p.launches) > 0 {
		p.launches = nil
		p.throttled = true
		p.wake(lastFailure.Add(d))
		rec.AddEvent("throttle", newEventID(), domain.EventUnableToStartConsistently(rec.Name), now)
	} else if failures == 0 {
		rec.ForgetEvent("throttle")
	}

	// Circuit breaker: the PRIMARY deployment's failed tasks since one of
	// its tasks was last healthy (resetOnHealthyTask).
	if primary.Deployment.RolloutState == types.DeploymentRolloutStateInProgress {
		failed := 0
		reset := lastHealthy
		if cb := rec.CircuitBreaker(); cb != nil && cb.ResetOnHealthyTask != nil && !*cb.ResetOnHealthyTask {
			reset = time.Time{}
		}
		for _, s := range states {
			if s.deployment == pid && failedToStart(s.t) && s.t.Task.StoppedAt.After(reset) {
				failed++
			}
		}
		setDeployment(primary, now, func(d *types.Deployment) { d.FailedTasks = int32(failed) })
		if cb := rec.CircuitBreaker(); cb != nil && primary.Breaker {
			if failed >= domain.BreakerThreshold(rec.Service.DesiredCount, cb.ThresholdConfiguration) {
				trip(rec, primary, cb.Rollback, now)
				p.launches = nil
				return
			}
		}
	}

	// Fully replaced deployments leave the list.
	kept := rec.Deployments[:1]
	for _, d := range rec.Deployments[1:] {
		if perDeployment[d.ID()] > 0 {
			kept = append(kept, d)
		}
	}
	rec.Deployments = kept
	primary = rec.Primary()

	desired := int(rec.Service.DesiredCount)
	done := len(rec.Deployments) == 1 && primaryHealthy >= desired && perDeployment[pid] == desired && len(p.launches) == 0
	if !done {
		return
	}
	if primary.Deployment.RolloutState == types.DeploymentRolloutStateInProgress {
		setDeployment(primary, now, func(d *types.Deployment) {
			d.RolloutState = types.DeploymentRolloutStateCompleted
			d.RolloutStateReason = aws.String(domain.ReasonCompleted(pid))
			d.FailedTasks = 0
		})
		c := *primary
		rec.LastCompleted = &c
		rec.AddEvent("completed", newEventID(), domain.EventDeploymentCompleted(rec.Name, pid), now)
	}
	if primary.Deployment.RolloutState == types.DeploymentRolloutStateCompleted {
		rec.AddEvent("steady", newEventID(), domain.EventSteadyState(rec.Name), now)
	}
}

// wake notes when time alone changes the decision.
func (p *plan) wake(t time.Time) {
	if p.wakeAt.IsZero() || t.Before(p.wakeAt) {
		p.wakeAt = t
	}
}

// trip fails the PRIMARY deployment and, with rollback, starts a
// deployment of the last completed one.
func trip(rec *domain.ServiceRecord, primary *domain.DeploymentRecord, rollback bool, now time.Time) {
	pid := primary.ID()
	setDeployment(primary, now, func(d *types.Deployment) {
		d.RolloutState = types.DeploymentRolloutStateFailed
		d.RolloutStateReason = aws.String(domain.ReasonBreakerFailed)
	})
	rec.AddEvent("failed", newEventID(), domain.EventDeploymentFailed(rec.Name, pid), now)
	target := rec.LastCompleted
	if !rollback || target == nil || target.ID() == pid {
		return
	}
	td := &types.TaskDefinition{
		TaskDefinitionArn: target.Deployment.TaskDefinition,
		Family:            aws.String(target.Family),
		Revision:          target.Revision,
	}
	d := domain.NewDeployment(domain.NewDeploymentInput{
		TaskDefinition: td,
		DesiredCount:   rec.Service.DesiredCount,
		LaunchType:     target.Deployment.LaunchType,
		Network:        target.Deployment.NetworkConfiguration,
		// The rollback is not watched: a breaker tripping on it would have
		// nothing to go back to.
		Breaker: false,
		Reason:  domain.ReasonRollback(target.ID()),
		Now:     now,
	})
	rec.StartDeployment(d, now)
	rec.Generation++
	rec.AddEvent("rollback", newEventID(), domain.EventRollingBack(rec.Name, target.ID()), now)
}

// setDeployment changes a deployment, stamping updatedAt when anything
// changed.
func setDeployment(d *domain.DeploymentRecord, now time.Time, change func(*types.Deployment)) {
	before := d.Deployment
	change(&d.Deployment)
	after := d.Deployment
	after.UpdatedAt = before.UpdatedAt
	if before.FailedTasks != after.FailedTasks || before.RolloutState != after.RolloutState ||
		aws.ToString(before.RolloutStateReason) != aws.ToString(after.RolloutStateReason) {
		d.Deployment.UpdatedAt = aws.Time(now)
	}
}

// cloneRecord copies what decide changes, so the caller's view stays
// untouched.
func cloneRecord(r domain.ServiceRecord) domain.ServiceRecord {
	r.Deployments = slices.Clone(r.Deployments)
	r.Service.Events = slices.Clone(r.Service.Events)
	if r.LastCompleted != nil {
		c := *r.LastCompleted
		r.LastCompleted = &c
	}
	memo := make(map[string]domain.EventMemo, len(r.EventMemo))
	for k, v := range r.EventMemo {
		memo[k] = v
	}
	r.EventMemo = memo
	return r
}
