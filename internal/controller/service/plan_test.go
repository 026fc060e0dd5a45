package service

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// scenario builds views for decide.
type scenario struct {
	rec       domain.ServiceRecord
	tasks     []*domain.TaskRecord
	instances map[string]*domain.ContainerInstance
	checked   map[string]bool
	now       time.Time
	n         int
}

func newScenario(desired, minPct, maxPct int32) *scenario {
	s := &scenario{now: t0, instances: map[string]*domain.ContainerInstance{}, checked: map[string]bool{}}
	s.rec = domain.ServiceRecord{Name: "web", Cluster: "default"}
	s.rec.Service.Status = aws.String(domain.ServiceStatusActive)
	s.rec.Service.DesiredCount = desired
	s.rec.Service.DeploymentConfiguration = &types.DeploymentConfiguration{
		MinimumHealthyPercent: aws.Int32(minPct), MaximumPercent: aws.Int32(maxPct),
	}
	for _, id := range []string{"i-1", "i-2", "i-3"} {
		s.instances[id] = &domain.ContainerInstance{ID: id, Status: domain.InstanceStatusActive}
	}
	s.deploy(1)
	return s
}

func (s *scenario) deploy(rev int32) string {
	td := &types.TaskDefinition{Family: aws.String("web"), Revision: rev,
		TaskDefinitionArn: aws.String(fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/web:%d", rev))}
	d := domain.NewDeployment(domain.NewDeploymentInput{TaskDefinition: td, DesiredCount: s.rec.Service.DesiredCount, Breaker: true, Now: s.now})
	s.rec.StartDeployment(d, s.now)
	return d.ID()
}

func (s *scenario) primary() string { return s.rec.Primary().ID() }

// task adds a task of deployment dep: running since `since` ago (0: still
// pending), on instance.
func (s *scenario) task(dep string, since time.Duration, instance string) *domain.TaskRecord {
	s.n++
	t := &domain.TaskRecord{ID: fmt.Sprintf("t%02d", s.n), InstanceID: instance}
	t.Task.StartedBy = aws.String(dep)
	t.Task.DesiredStatus = aws.String("RUNNING")
	t.Task.CreatedAt = aws.Time(s.now.Add(-since - time.Second))
	t.Task.LastStatus = aws.String("PENDING")
	t.Task.HealthStatus = types.HealthStatusUnknown
	if since > 0 {
		t.Task.LastStatus = aws.String("RUNNING")
		t.Task.StartedAt = aws.Time(s.now.Add(-since))
	}
	s.tasks = append(s.tasks, t)
	return t
}

// failed adds a task of dep that stopped without running, ago.
func (s *scenario) failed(dep string, ago time.Duration) {
	t := s.task(dep, 0, "i-1")
	t.Task.LastStatus, t.Task.DesiredStatus = aws.String("STOPPED"), aws.String("STOPPED")
	t.Task.StopCode = types.TaskStopCodeTaskFailedToStart
	t.Task.StoppedAt = aws.Time(s.now.Add(-ago))
}

func (s *scenario) decide() plan {
	return decide(view{rec: s.rec, tasks: s.tasks, instances: s.instances, checked: s.checked, now: s.now})
}

func launched(p plan) int {
	n := 0
	for _, l := range p.launches {
		n += l.count
	}
	return n
}

func events(p plan) string {
	var msgs []string
	for _, e := range p.rec.Service.Events {
		msgs = append(msgs, aws.ToString(e.Message))
	}
	return strings.Join(msgs, "\n")
}

const settled = domain.SettleTime + time.Second

func TestNewServiceLaunchesDesired(t *testing.T) {
	s := newScenario(3, 100, 200)
	p := s.decide()
	if launched(p) != 3 || len(p.stops) != 0 {
		t.Fatalf("launches %+v stops %+v", p.launches, p.stops)
	}
	if p.launches[0].deployment != s.primary() {
		t.Errorf("launch for %q, want the primary", p.launches[0].deployment)
	}
}

func TestSteadyStateCompletes(t *testing.T) {
	s := newScenario(3, 100, 200)
	for _, i := range []string{"i-1", "i-2", "i-3"} {
		s.task(s.primary(), settled, i)
	}
	p := s.decide()
	if launched(p) != 0 || len(p.stops) != 0 {
		t.Fatalf("steady service acted: %+v %+v", p.launches, p.stops)
	}
	d := p.rec.Primary().Deployment
	if d.RolloutState != types.DeploymentRolloutStateCompleted || aws.ToString(d.RolloutStateReason) != domain.ReasonCompleted(s.primary()) {
		t.Errorf("rollout %s %q", d.RolloutState, aws.ToString(d.RolloutStateReason))
	}
	ev := events(p)
	if !strings.Contains(ev, "has reached a steady state.") || !strings.Contains(ev, "deployment completed.") {
		t.Errorf("events:\n%s", ev)
	}
	if p.rec.LastCompleted == nil || p.rec.LastCompleted.ID() != s.primary() {
		t.Errorf("last completed %+v", p.rec.LastCompleted)
	}
}

func TestRunningTaskCountsHealthyAfterSettleTime(t *testing.T) {
	s := newScenario(2, 100, 200)
	s.task(s.primary(), 10*time.Second, "i-1")
	s.task(s.primary(), 10*time.Second, "i-2")
	p := s.decide()
	if p.rec.Primary().Deployment.RolloutState != types.DeploymentRolloutStateInProgress {
		t.Fatal("completed before the tasks settled")
	}
	if want := s.now.Add(domain.SettleTime - 10*time.Second); !p.wakeAt.Equal(want) {
		t.Errorf("wake at %v, want %v", p.wakeAt, want)
	}
	// With a container health check, HEALTHY counts at once.
	s.checked[s.primary()] = true
	for _, tk := range s.tasks {
		tk.Task.HealthStatus = types.HealthStatusHealthy
	}
	if p := s.decide(); p.rec.Primary().Deployment.RolloutState != types.DeploymentRolloutStateCompleted {
		t.Error("healthy tasks did not complete the deployment")
	}
}

// TestRollingUpdate50_200 walks ECS's first worked example: desired 4,
// min 50 %, max 200 %: start 4 new and stop 2 old at once, the other 2
// once the new ones are healthy.
func TestRollingUpdate50_200(t *testing.T) {
	s := newScenario(4, 50, 200)
	old := s.primary()
	for _, i := range []string{"i-1", "i-2", "i-3", "i-1"} {
		s.task(old, settled, i)
	}
	s.rec.Primary().Deployment.RolloutState = types.DeploymentRolloutStateCompleted
	s.deploy(2)
	p := s.decide()
	if launched(p) != 4 || len(p.stops) != 2 {
		t.Fatalf("first step: launched %d, stopped %d; want 4 and 2", launched(p), len(p.stops))
	}
	if len(p.rec.Deployments) != 2 || p.rec.Deployments[1].Status() != domain.DeploymentActive {
		t.Fatalf("deployments %+v", p.rec.Deployments)
	}
	// The two stopping tasks are still RUNNING; four new are PENDING: no
	// further stop may happen (2 healthy = the minimum).
	stopping := map[string]bool{}
	for _, st := range p.stops {
		stopping[st.taskID] = true
	}
	for _, tk := range s.tasks {
		if stopping[tk.ID] {
			tk.Task.DesiredStatus = aws.String("STOPPED")
		}
	}
	for _, i := range []string{"i-1", "i-2", "i-3", "i-2"} {
		s.task(s.primary(), 0, i)
	}
	p = s.decide()
	if launched(p) != 0 || len(p.stops) != 0 {
		t.Fatalf("second step acted: launched %d, stops %+v", launched(p), p.stops)
	}
	// The stopped ones are gone; the new ones run and settle.
	s.tasks = slices.DeleteFunc(s.tasks, func(tk *domain.TaskRecord) bool { return stopping[tk.ID] })
	for _, tk := range s.tasks {
		if aws.ToString(tk.Task.StartedBy) == s.primary() {
			tk.Task.LastStatus, tk.Task.StartedAt = aws.String("RUNNING"), aws.Time(s.now.Add(-settled))
		}
	}
	p = s.decide()
	if launched(p) != 0 || len(p.stops) != 2 {
		t.Fatalf("third step: launched %d, stopped %d; want 0 and 2", launched(p), len(p.stops))
	}
	s.tasks = slices.DeleteFunc(s.tasks, func(tk *domain.TaskRecord) bool { return aws.ToString(tk.Task.StartedBy) == old })
	p = s.decide()
	if len(p.rec.Deployments) != 1 || p.rec.Primary().Deployment.RolloutState != types.DeploymentRolloutStateCompleted {
		t.Fatalf("after the old tasks stopped: %+v", p.rec.Deployments)
	}
}

func TestDefaultDeploymentStartsBeforeStopping(t *testing.T) {
	s := newScenario(4, 100, 200)
	old := s.primary()
	for range 4 {
		s.task(old, settled, "i-1")
	}
	s.deploy(2)
	p := s.decide()
	if launched(p) != 4 || len(p.stops) != 0 {
		t.Fatalf("launched %d stopped %d, want 4 and 0", launched(p), len(p.stops))
	}
}

func TestDeadlockEvent(t *testing.T) {
	s := newScenario(3, 100, 125)
	old := s.primary()
	for range 3 {
		s.task(old, settled, "i-1")
	}
	s.deploy(2)
	p := s.decide()
	if launched(p) != 0 || len(p.stops) != 0 {
		t.Fatalf("acted: %+v %+v", p.launches, p.stops)
	}
	if !strings.Contains(events(p), "was unable to stop or start tasks during a deployment because of the service deployment configuration.") {
		t.Errorf("no deadlock event:\n%s", events(p))
	}
}

func TestMinZeroMax100StopsFirst(t *testing.T) {
	s := newScenario(1, 0, 100)
	old := s.primary()
	s.task(old, settled, "i-1")
	s.deploy(2)
	p := s.decide()
	if launched(p) != 0 || len(p.stops) != 1 {
		t.Fatalf("launched %d stopped %d, want 0 and 1", launched(p), len(p.stops))
	}
	s.tasks = nil
	if p := s.decide(); launched(p) != 1 {
		t.Fatalf("after the old task stopped: launched %d, want 1", launched(p))
	}
}

func TestScaleIn(t *testing.T) {
	s := newScenario(2, 100, 200)
	for _, i := range []string{"i-1", "i-1", "i-1", "i-2", "i-3", "i-3"} {
		s.task(s.primary(), settled, i)
	}
	p := s.decide()
	if len(p.stops) != 4 || launched(p) != 0 {
		t.Fatalf("stopped %d launched %d, want 4 and 0", len(p.stops), launched(p))
	}
}

func TestUnhealthyTaskReplaced(t *testing.T) {
	s := newScenario(2, 100, 200)
	s.checked[s.primary()] = true
	a := s.task(s.primary(), settled, "i-1")
	b := s.task(s.primary(), settled, "i-2")
	a.Task.HealthStatus = types.HealthStatusHealthy
	b.Task.HealthStatus = types.HealthStatusUnhealthy
	p := s.decide()
	if launched(p) != 1 || len(p.stops) != 1 || p.stops[0].taskID != b.ID || p.stops[0].reason != reasonUnhealthy {
		t.Fatalf("launches %+v stops %+v", p.launches, p.stops)
	}
	// Inside the grace period an UNHEALTHY task is left alone.
	s.rec.Service.HealthCheckGracePeriodSeconds = aws.Int32(3600)
	if p := s.decide(); len(p.stops) != 0 {
		t.Fatalf("stopped inside the grace period: %+v", p.stops)
	}
}

func TestDrainingInstanceReplacedWithinMinimum(t *testing.T) {
	s := newScenario(2, 100, 200)
	s.task(s.primary(), settled, "i-1")
	d := s.task(s.primary(), settled, "i-2")
	s.instances["i-2"].Status = domain.InstanceStatusDraining
	p := s.decide()
	if launched(p) != 1 || len(p.stops) != 0 {
		t.Fatalf("first: launched %d stops %+v; want a replacement first", launched(p), p.stops)
	}
	s.task(s.primary(), settled, "i-3") // the replacement is healthy
	p = s.decide()
	if launched(p) != 0 || len(p.stops) != 1 || p.stops[0].taskID != d.ID || p.stops[0].reason != reasonDraining {
		t.Fatalf("second: launches %+v stops %+v", p.launches, p.stops)
	}
}

func TestCircuitBreakerRollsBack(t *testing.T) {
	s := newScenario(2, 100, 200)
	good := s.primary()
	s.task(good, settled, "i-1")
	s.task(good, settled, "i-2")
	s.rec.Service.DeploymentConfiguration.DeploymentCircuitBreaker = &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}
	s.rec = s.decide().rec // completes: the rollback target
	bad := s.deploy(2)
	for i := range 9 {
		s.failed(bad, time.Duration(10-i)*time.Minute)
	}
	p := s.decide()
	if got := p.rec.Primary().Deployment.FailedTasks; got != 9 || p.rec.Primary().ID() != bad {
		t.Fatalf("after 9 failures: failedTasks %d, primary %s", got, p.rec.Primary().ID())
	}
	s.failed(bad, time.Minute)
	p = s.decide()
	if p.rec.Primary().ID() == bad || len(p.launches) != 0 {
		t.Fatalf("breaker did not roll back: primary %s, launches %+v", p.rec.Primary().ID(), p.launches)
	}
	failed := p.rec.Deployment(bad)
	if failed == nil || failed.Deployment.RolloutState != types.DeploymentRolloutStateFailed ||
		aws.ToString(failed.Deployment.RolloutStateReason) != domain.ReasonBreakerFailed {
		t.Fatalf("failed deployment %+v", failed)
	}
	roll := p.rec.Primary()
	if aws.ToString(roll.Deployment.TaskDefinition) != aws.ToString(s.rec.LastCompleted.Deployment.TaskDefinition) ||
		aws.ToString(roll.Deployment.RolloutStateReason) != domain.ReasonRollback(good) {
		t.Fatalf("rollback deployment %+v", roll.Deployment)
	}
	ev := events(p)
	if !strings.Contains(ev, "deployment failed: tasks failed to start.") || !strings.Contains(ev, "rolling back to deployment "+good) {
		t.Errorf("events:\n%s", ev)
	}
}

func TestCircuitBreakerWithoutRollbackStopsLaunching(t *testing.T) {
	s := newScenario(1, 100, 200)
	s.rec.Service.DeploymentConfiguration.DeploymentCircuitBreaker = &types.DeploymentCircuitBreaker{Enable: true}
	for i := range 10 {
		s.failed(s.primary(), time.Duration(20-i)*time.Minute)
	}
	p := s.decide()
	if p.rec.Primary().Deployment.RolloutState != types.DeploymentRolloutStateFailed || launched(p) != 0 {
		t.Fatalf("rollout %s launches %+v", p.rec.Primary().Deployment.RolloutState, p.launches)
	}
	s.rec = p.rec
	if p := s.decide(); launched(p) != 0 {
		t.Fatalf("a FAILED deployment launched %d tasks", launched(p))
	}
}

func TestThrottle(t *testing.T) {
	s := newScenario(1, 100, 200)
	s.now = s.now.Add(10 * time.Minute) // failures since the deployment began count
	for i := range 6 {
		s.failed(s.primary(), time.Duration(6-i)*time.Second) // the last one 1 s ago
	}
	p := s.decide()
	if launched(p) != 0 || !p.throttled {
		t.Fatalf("not throttled: %+v", p.launches)
	}
	if want := s.now.Add(-time.Second + domain.ThrottleDelay(6)); !p.wakeAt.Equal(want) {
		t.Errorf("wake at %v, want %v", p.wakeAt, want)
	}
	if !strings.Contains(events(p), "is unable to consistently start tasks successfully.") {
		t.Errorf("events:\n%s", events(p))
	}
	s.now = s.now.Add(time.Minute)
	if p := s.decide(); launched(p) != 1 {
		t.Fatalf("after the delay: launched %d", launched(p))
	}
}

func TestDaemon(t *testing.T) {
	s := newScenario(0, 0, 100)
	s.rec.Service.SchedulingStrategy = types.SchedulingStrategyDaemon
	s.instances["i-3"].Status = domain.InstanceStatusDraining
	d := s.task(s.primary(), settled, "i-3")
	s.task(s.primary(), settled, "i-1")
	p := s.decide()
	if len(p.launches) != 1 || p.launches[0].instance != "i-2" {
		t.Fatalf("launches %+v, want one on i-2", p.launches)
	}
	if len(p.stops) != 1 || p.stops[0].taskID != d.ID {
		t.Fatalf("stops %+v, want the task on the draining instance", p.stops)
	}
	if p.rec.Service.DesiredCount != 2 {
		t.Errorf("desired %d, want 2 (ACTIVE instances)", p.rec.Service.DesiredCount)
	}
	// A new revision: min 0 % lets the old task stop first; the new one
	// starts once the instance is free.
	s.tasks = s.tasks[1:]
	s.instances["i-3"].Status = domain.InstanceStatusActive
	s.deploy(2)
	p = s.decide()
	if len(p.stops) != 1 || len(p.launches) != 2 {
		t.Fatalf("rolling daemon: launches %+v stops %+v", p.launches, p.stops)
	}
	for _, l := range p.launches {
		if l.instance == "i-1" {
			t.Errorf("launched on i-1 while its old task runs")
		}
	}
}

func TestDeletedServiceDrains(t *testing.T) {
	s := newScenario(2, 100, 200)
	s.task(s.primary(), settled, "i-1")
	s.task(s.primary(), 0, "i-2")
	s.rec.Service.Status = aws.String(domain.ServiceStatusDraining)
	p := s.decide()
	if len(p.stops) != 2 || launched(p) != 0 || p.rec.Status() != domain.ServiceStatusDraining {
		t.Fatalf("stops %+v status %s", p.stops, p.rec.Status())
	}
	s.tasks = nil
	if p := s.decide(); p.rec.Status() != domain.ServiceStatusInactive {
		t.Fatalf("status %s, want INACTIVE", p.rec.Status())
	}
}
