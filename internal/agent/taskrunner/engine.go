// Package taskrunner is the node agent's task engine: it turns the desired
// state the server pushes (agentproto.Task) into running containers and
// reports what happened (SubmitTaskStateChange, SubmitContainerStateChange,
// health), as the ECS agent's task engine does.
//
// One runner goroutine per task, owned by the Engine: pull → host ports →
// network → containers in dependsOn order → health checks → watch exits →
// stop → report → cleanup after ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION.
// Every step is persisted in the agent's state database before the next,
// so a restarted agent adopts its tasks where they were: running containers
// are waited for again, never re-created; nothing is lost, duplicated or
// orphaned. docs/architecture/agent-task-engine.md describes the flow.
package taskrunner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Defaults of the Config fields left zero.
const (
	DefaultStartTimeout = 3 * time.Minute // ECS_CONTAINER_START_TIMEOUT
	DefaultCleanupWait  = 3 * time.Hour   // ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION
	DefaultTick         = time.Second
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = time.Minute
)

// finishedRetention is how long the engine remembers a task it cleaned up,
// so a late Sync cannot start it again.
const finishedRetention = 24 * time.Hour

// Config configures an Engine. Runtime, Network, Ports, State, Reporter,
// Cluster and DataDir are required.
type Config struct {
	// Cluster is the cluster name (or ARN) the reports and the
	// com.amazonaws.ecs.cluster label carry.
	Cluster string
	// DataDir is the agent's data directory (ECS_DATADIR): container logs go
	// to DataDir/logs/<task id>/<container>.log, task-scoped volumes to
	// DataDir/volumes/tasks/<task id>/<volume>.
	DataDir  string
	Runtime  runtime.Runtime
	Network  network.Network
	Ports    *hostports.Allocator // persisting through State (hostports.Config.Store)
	State    *state.DB
	Reporter Reporter
	// Health receives container health; nil drops it.
	Health HealthReporter
	// MetadataEnv returns the environment injected into a container for its
	// metadata endpoint id (ECS_CONTAINER_METADATA_URI_V4, …); nil injects
	// nothing.
	MetadataEnv func(endpointID string) []string
	// Pull says how images are pulled (ECS_IMAGE_PULL_BEHAVIOR, registry
	// credentials).
	Pull runtime.PullOptions
	// StopTimeout is ECS_CONTAINER_STOP_TIMEOUT, for containers without a
	// stopTimeout; 0 means runtime.DefaultStopTimeout.
	StopTimeout time.Duration
	// StartTimeout bounds the wait for a container's dependencies when its
	// definition has no startTimeout; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// CleanupWait is ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION; 0 means
	// DefaultCleanupWait.
	CleanupWait time.Duration
	// PidsLimit caps the processes of each container (ECS_TASK_PIDS_LIMIT);
	// 0 means DefaultPidsLimit, an isolation default the agent adds so a
	// fork bomb in one task cannot exhaust the machine.
	PidsLimit int64
	// PrivilegedDisabled (ECS_DISABLE_PRIVILEGED) fails tasks with
	// privileged containers.
	PrivilegedDisabled bool
	// Clock times health checks, dependency timeouts and the cleanup wait;
	// nil means the wall clock.
	Clock clock.Clock
	// Tick is how often, in real time, waits on Clock look at it again
	// (tests with a fake clock make it small); 0 means DefaultTick.
	Tick time.Duration
	// RetryMin and RetryMax bound the back-off of failed reports and
	// cleanup steps; 0 means DefaultRetryMin / DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Engine runs the tasks assigned to this agent.
type Engine struct {
	cfg   Config
	clock clock.Clock
	log   *slog.Logger

	ctx    context.Context // owns every runner
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	started   bool
	closed    bool
	runners   map[string]*runner
	finished  map[string]time.Time // task ARN → when it was cleaned up
	endpoints map[string]endpoint  // endpoint id → container
}

type endpoint struct{ task, container string }

// New checks cfg and returns an Engine; Start adopts the tasks of a
// previous run and begins.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Runtime == nil, cfg.Network == nil, cfg.Ports == nil, cfg.State == nil, cfg.Reporter == nil:
		return nil, errdefs.InvalidArgument("taskrunner: Runtime, Network, Ports, State and Reporter are required")
	case cfg.Cluster == "":
		return nil, errdefs.InvalidArgument("taskrunner: Cluster is required")
	case !strings.HasPrefix(cfg.DataDir, "/"):
		return nil, errdefs.InvalidArgument(fmt.Sprintf("taskrunner: DataDir %q must be an absolute path", cfg.DataDir))
	}
	setDefault(&cfg.StopTimeout, runtime.DefaultStopTimeout)
	setDefault(&cfg.StartTimeout, DefaultStartTimeout)
	setDefault(&cfg.CleanupWait, DefaultCleanupWait)
	setDefault(&cfg.Tick, DefaultTick)
	setDefault(&cfg.RetryMin, DefaultRetryMin)
	setDefault(&cfg.RetryMax, DefaultRetryMax)
	if cfg.PidsLimit <= 0 {
		cfg.PidsLimit = DefaultPidsLimit
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		cfg: cfg, clock: cfg.Clock, log: cfg.Logger.With("component", "taskrunner"),
		ctx: ctx, cancel: cancel,
		runners: map[string]*runner{}, finished: map[string]time.Time{}, endpoints: map[string]endpoint{},
	}, nil
}

// DefaultPidsLimit is a container's pids limit when ECS_TASK_PIDS_LIMIT is
// unset: far above what a service needs, far below the kernel's pid_max.
const DefaultPidsLimit = 4096

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Start adopts what a previous run of the agent left: it restores the host
// port allocations, resumes a runner for every task in the state database,
// releases ports no task holds, and stops and removes (in the background)
// containers labelled as berth's that no task record knows. A record that
// cannot be read is logged and dropped; its containers are then orphans.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return errdefs.New(errdefs.ErrFailedPrecondition, "taskrunner: Start called twice or after Close")
	}
	ports, err := e.cfg.State.Ports()
	if err != nil {
		return err
	}
	if err := e.cfg.Ports.Restore(ports); err != nil {
		e.log.Warn("restoring host port allocations", "error", err)
	}
	stored, err := e.cfg.State.Tasks()
	if err != nil {
		return err
	}
	recs := map[string]*taskRec{}
	for _, st := range stored {
		rec, err := fromState(st)
		if err != nil {
			e.log.Error("dropping an unreadable task record; its containers will be removed", "task", st.ARN, "error", err)
			if err := e.cfg.State.DeleteTask(st.ARN); err != nil {
				return err
			}
			continue
		}
		recs[rec.ARN] = rec
	}
	list, err := e.cfg.Runtime.List(ctx, map[string]string{LabelManaged: "true"})
	if err != nil {
		return fmt.Errorf("taskrunner: listing containers: %w", err)
	}
	var orphans []string
	for _, cs := range list {
		rec := recs[cs.Labels[LabelTaskARN]]
		if rec == nil || !slices.ContainsFunc(rec.Containers, func(c *ctrRec) bool { return c.RuntimeID == cs.ID }) {
			orphans = append(orphans, cs.ID)
		}
	}
	for owner := range ports {
		if recs[owner] == nil {
			if err := e.cfg.Ports.Release(owner); err != nil {
				e.log.Warn("releasing the host ports of an unknown task", "owner", owner, "error", err)
			}
		}
	}
	for _, rec := range recs {
		e.startRunner(newRunner(e, rec), true)
	}
	if len(orphans) > 0 {
		e.wg.Go(func() { e.removeOrphans(orphans) })
	}
	e.started = true
	return nil
}

// removeOrphans stops and removes containers no task owns.
func (e *Engine) removeOrphans(ids []string) {
	for _, id := range ids {
		e.log.Warn("removing a container no task owns", "container", id)
		if err := e.cfg.Runtime.Stop(e.ctx, id, e.cfg.StopTimeout); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			e.log.Warn("stopping an orphan container", "container", id, "error", err)
		}
		if err := e.cfg.Runtime.Remove(e.ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			e.log.Warn("removing an orphan container", "container", id, "error", err)
		}
		// Its attachment is unknown; a bridge attachment is named by the
		// container id, and detaching what is not there is no error.
		if err := e.cfg.Network.Detach(e.ctx, network.Attachment{ID: id, Mode: network.ModeBridge}); err != nil {
			e.log.Warn("detaching an orphan container", "container", id, "error", err)
		}
		if e.ctx.Err() != nil {
			return
		}
	}
}

// startRunner registers r and starts its goroutine. e.mu is held.
func (e *Engine) startRunner(r *runner, resumed bool) {
	e.runners[r.arn] = r
	for _, c := range r.rec.Containers {
		e.endpoints[c.EndpointID] = endpoint{task: r.arn, container: c.Name}
	}
	e.wg.Go(func() { r.run(e.ctx, resumed) })
}

// forget drops a cleaned-up task, remembering it was there.
func (e *Engine) forget(r *runner) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.runners, r.arn)
	for _, c := range r.rec.Containers {
		delete(e.endpoints, c.EndpointID)
	}
	now := e.clock.Now()
	e.finished[r.arn] = now
	for arn, at := range e.finished {
		if now.Sub(at) > finishedRetention {
			delete(e.finished, arn)
		}
	}
}

// Apply takes desired state from the server (one Sync). A task whose
// Revision is not newer than the one already acted on is ignored; a new
// task gets a runner (persisted before it starts); a known one gets the new
// desired state (only RUNNING → STOPPED changes anything: a task never
// starts twice). With full set, a task the engine runs that is absent from
// tasks is stopped with ReasonNotAssigned unless it is stopping already.
// Errors name tasks that could not be taken; the others were.
func (e *Engine) Apply(ctx context.Context, tasks []agentproto.Task, full bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.closed {
		return errdefs.New(errdefs.ErrFailedPrecondition, "taskrunner: the engine is not running")
	}
	var errs []error
	listed := map[string]bool{}
	for _, t := range tasks {
		listed[t.TaskARN] = true
		if r := e.runners[t.TaskARN]; r != nil {
			r.offer(t)
			continue
		}
		if _, done := e.finished[t.TaskARN]; done {
			continue
		}
		rec, err := newRecord(t)
		if err == nil {
			var st state.Task
			if st, err = rec.toState(); err == nil {
				err = e.cfg.State.PutTask(st)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", t.TaskARN, err))
			continue
		}
		e.log.Info("task assigned", "task", t.TaskARN, "desiredStatus", t.DesiredStatus, "revision", t.Revision)
		e.startRunner(newRunner(e, rec), false)
	}
	if full {
		for arn, r := range e.runners {
			if !listed[arn] {
				r.unassign(ReasonNotAssigned)
			}
		}
	}
	return errors.Join(errs...)
}

// newRecord is the first record of a task.
func newRecord(t agentproto.Task) (*taskRec, error) {
	if t.TaskARN == "" {
		return nil, errdefs.InvalidArgument("a task without an ARN")
	}
	rec := &taskRec{ARN: t.TaskARN, Revision: t.Revision, Desired: t, Phase: phasePending}
	for i, def := range t.TaskDefinition.ContainerDefinitions {
		name := aws.ToString(def.Name)
		id, err := newEndpointID()
		if err != nil {
			return nil, err
		}
		c := &ctrRec{Name: name, RuntimeID: runtimeID(t.TaskARN, i, name), EndpointID: id, Image: aws.ToString(def.Image)}
		if def.HealthCheck != nil {
			c.Health = HealthUnknown
		}
		rec.Containers = append(rec.Containers, c)
	}
	return rec, nil
}

// newEndpointID is a random 128-bit id, hex: what a container's metadata
// endpoint URL carries.
func newEndpointID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errdefs.Internal(err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Close stops the engine's goroutines and waits for them. Containers keep
// running: this is an agent shutdown, not a task stop; the next Start
// adopts them.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// sleepUntil waits until the clock reaches t; false means ctx ended.
func (e *Engine) sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		d := t.Sub(e.clock.Now())
		if d <= 0 {
			return true
		}
		timer := time.NewTimer(min(d, e.cfg.Tick))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return false
		}
	}
}

// retry runs fn until it succeeds, backing off; false means ctx ended.
func (e *Engine) retry(ctx context.Context, what string, fn func() error) bool {
	backoff := e.cfg.RetryMin
	for {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		e.log.Warn(what+" failed; retrying", "in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, e.cfg.RetryMax)
	}
}

// checkHealth runs a container's health check until ctx ends, as Docker
// does: the first check one interval after the start, a failure counts
// only after the start period, retries consecutive failures make it
// UNHEALTHY, one success HEALTHY. Changes go to the runner.
func (e *Engine) checkHealth(ctx context.Context, r *runner, i int, id string, h *healthPlan, startedAt time.Time, status string) {
	if status == "" {
		status = HealthUnknown
	}
	failures := 0
	next := startedAt.Add(h.interval)
	for {
		if !e.sleepUntil(ctx, next) {
			return
		}
		code, err := e.cfg.Runtime.Exec(ctx, id, h.argv, h.timeout)
		if ctx.Err() != nil {
			return
		}
		now := e.clock.Now()
		newStatus := status
		switch {
		case err == nil && code == 0:
			failures = 0
			newStatus = HealthHealthy
		case now.Sub(startedAt) < h.startPeriod:
			// failures in the start period do not count
		default:
			failures++
			if failures >= h.retries {
				newStatus = HealthUnhealthy
			}
		}
		if newStatus != status {
			status = newStatus
			select {
			case r.health <- healthMsg{index: i, status: status}:
			case <-ctx.Done():
				return
			}
		}
		next = now.Add(h.interval)
	}
}

// reportHealth sends the health of r's containers that have health checks.
func (e *Engine) reportHealth(ctx context.Context, r *runner) {
	if e.cfg.Health == nil {
		return
	}
	h, ok := r.healthMessage()
	if !ok {
		return
	}
	if err := e.cfg.Health.ReportHealth(ctx, h); err != nil {
		e.log.Debug("reporting health", "task", r.arn, "error", err)
	}
}

func (r *runner) healthMessage() (agentproto.Health, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := agentproto.Health{TaskARN: r.arn, Containers: map[string]string{}}
	for _, c := range r.rec.Containers {
		if c.Health != "" {
			h.Containers[c.Name] = c.Health
		}
	}
	return h, len(h.Containers) > 0
}

// ResendHealth sends the current health of every task with health checks
// again (after the agent channel reconnects).
func (e *Engine) ResendHealth(ctx context.Context) {
	for _, r := range e.runnerList() {
		if r.phase() == phaseStopped {
			continue
		}
		e.reportHealth(ctx, r)
	}
}

func (e *Engine) runnerList() []*runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := slices.Collect(maps.Values(e.runners))
	slices.SortFunc(out, func(a, b *runner) int { return strings.Compare(a.arn, b.arn) })
	return out
}

// LookupEndpoint finds the container a metadata endpoint id belongs to.
func (e *Engine) LookupEndpoint(endpointID string) (taskARN, containerName string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ep, ok := e.endpoints[endpointID]
	return ep.task, ep.container, ok
}

// LogPaths returns the log files of a task's containers by container name,
// also after the task was cleaned up (logs are kept).
func (e *Engine) LogPaths(taskARN string) (map[string]string, error) {
	out := map[string]string{}
	if r := e.runner(taskARN); r != nil {
		r.mu.Lock()
		for _, c := range r.rec.Containers {
			out[c.Name] = LogPath(e.cfg.DataDir, taskARN, c.Name)
		}
		r.mu.Unlock()
		return out, nil
	}
	dir := LogDir(e.cfg.DataDir, taskARN)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("no logs for task " + taskARN)
	}
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	for _, en := range entries {
		if name, ok := strings.CutSuffix(en.Name(), ".log"); ok && !en.IsDir() {
			out[name] = dir + "/" + en.Name()
		}
	}
	return out, nil
}

func (e *Engine) runner(taskARN string) *runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runners[taskARN]
}

// Counts is how many tasks the engine holds, by phase.
type Counts struct {
	Pending  int // not yet running (pulling, starting)
	Running  int
	Stopping int
	Stopped  int // stopped, waiting for cleanup
}

// Counts counts the engine's tasks.
func (e *Engine) Counts() Counts {
	var c Counts
	for _, r := range e.runnerList() {
		switch r.phase() {
		case phasePending:
			c.Pending++
		case phaseRunning:
			c.Running++
		case phaseStopping:
			c.Stopping++
		case phaseStopped:
			c.Stopped++
		}
	}
	return c
}
