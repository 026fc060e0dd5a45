package taskrunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Reasons the runner gives, in ECS's words where ECS has them.
const (
	ReasonEssentialExited = "Essential container in task exited"
	ReasonOOM             = "OutOfMemoryError: Container killed due to memory usage"
	ReasonNotAssigned     = "Task stopped by the agent: the task is not assigned to this container instance"
	reasonGone            = "CannotInspectContainerError: the container no longer exists"
)

// runner drives one task from its desired state to its end: pull, ports,
// network, containers in dependsOn order, health checks, exits, stop,
// report and cleanup. Its goroutine (run) is the only writer of rec; other
// goroutines read rec under mu for snapshots.
type runner struct {
	e   *Engine
	arn string
	log *slog.Logger

	mu         sync.Mutex // guards the fields below
	rec        *taskRec
	plan       *taskPlan        // set once by run
	latest     *agentproto.Task // newest desired state offered by Apply, not yet taken
	acted      int64            // newest revision accepted by Apply
	unassigned string           // set when a full Sync no longer lists the task

	wake   chan struct{} // a new desired state or unassignment (capacity 1)
	exits  chan exitMsg
	health chan healthMsg
	done   chan struct{} // closed when run returns

	// Owned by the run goroutine.
	q            *reportQueue
	ctrCtx       context.Context
	ctrWG        sync.WaitGroup // container waiters and health checkers
	waiting      map[int]bool
	healthStop   map[int]context.CancelFunc
	depSince     map[int]time.Time
	stopAcked    chan struct{}
	stopReported bool
	// fresh: the record was made in this run of the agent, so no earlier
	// run can have created its containers; nothing to look for first.
	fresh bool
}

type exitMsg struct {
	index int
	exit  runtime.Exit
	gone  bool
}

type healthMsg struct {
	index  int
	status string
}

func newRunner(e *Engine, rec *taskRec) *runner {
	return &runner{
		e: e, arn: rec.ARN, log: e.log.With("task", rec.ARN), rec: rec, acted: rec.Revision,
		wake: make(chan struct{}, 1), exits: make(chan exitMsg), health: make(chan healthMsg),
		done: make(chan struct{}), waiting: map[int]bool{}, healthStop: map[int]context.CancelFunc{},
		depSince: map[int]time.Time{}, stopAcked: make(chan struct{}),
		q: newReportQueue(e.cfg.Reporter, e.log.With("task", rec.ARN), e.cfg.RetryMin, e.cfg.RetryMax),
	}
}

// offer hands the runner a newer desired state; older or equal revisions
// are ignored. It reports whether the state was taken.
func (r *runner) offer(t agentproto.Task) bool {
	r.mu.Lock()
	if t.Revision <= r.acted {
		r.mu.Unlock()
		return false
	}
	r.acted = t.Revision
	r.latest = &t
	r.mu.Unlock()
	r.poke()
	return true
}

// unassign asks the runner to stop a task the server no longer lists.
func (r *runner) unassign(reason string) {
	r.mu.Lock()
	if r.unassigned != "" || r.rec.Phase.rank() >= phaseStopping.rank() {
		r.mu.Unlock()
		return
	}
	r.unassigned = reason
	r.mu.Unlock()
	r.poke()
}

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *runner) phase() phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.Phase
}

// edit changes rec under the lock.
func (r *runner) edit(fn func(t *taskRec)) {
	r.mu.Lock()
	fn(r.rec)
	r.mu.Unlock()
}

// save writes rec to the state database.
func (r *runner) save() {
	r.mu.Lock()
	st, err := r.rec.toState()
	r.mu.Unlock()
	if err == nil {
		err = r.e.cfg.State.PutTask(st)
	}
	if err != nil {
		r.log.Error("saving the task's state", "error", err)
	}
}

func (r *runner) now() time.Time { return r.e.clock.Now() }

// run is the runner's goroutine.
func (r *runner) run(ctx context.Context, resumed bool) {
	defer close(r.done)
	r.fresh = !resumed
	qctx, qcancel := context.WithCancel(ctx)
	var qwg sync.WaitGroup
	qwg.Go(func() { r.q.run(qctx) })
	defer func() { qcancel(); qwg.Wait() }()
	cctx, ccancel := context.WithCancel(ctx)
	r.ctrCtx = cctx
	stopContainerWork := func() { ccancel(); r.ctrWG.Wait() }
	defer stopContainerWork()

	plan, f := r.e.plan(r.rec.Desired)
	r.mu.Lock()
	r.plan = plan
	r.mu.Unlock()
	if resumed {
		r.reportCurrent()
	}
	if r.phase().rank() < phaseStopping.rank() {
		if stop, reason := r.takeDesired(); stop {
			r.beginStop(reason)
		} else if f != nil {
			r.fail(f)
		} else {
			r.startAndWatch(ctx)
		}
	}
	if ctx.Err() != nil {
		return
	}
	if r.phase() == phaseStopping {
		if !r.stopAll(ctx) {
			return
		}
	}
	stopContainerWork()

	r.mu.Lock()
	reportedAt := r.rec.StopReportedAt
	r.mu.Unlock()
	if reportedAt.IsZero() {
		select {
		case <-r.stopAcked:
		case <-ctx.Done():
			return
		}
		reportedAt = r.now()
		r.edit(func(t *taskRec) { t.StopReportedAt = reportedAt })
		r.save()
	}
	if !r.e.sleepUntil(ctx, reportedAt.Add(r.e.cfg.CleanupWait)) {
		return
	}
	if r.cleanup(ctx) {
		r.e.forget(r)
	}
}

// takeDesired applies the newest desired state from Apply and says
// whether the task should stop, and why (empty: the server's reason).
func (r *runner) takeDesired() (stop bool, reason string) {
	r.mu.Lock()
	changed := r.latest != nil
	if changed {
		r.rec.Desired = *r.latest
		r.rec.Revision = r.latest.Revision
		r.latest = nil
	}
	unassigned, desired := r.unassigned, r.rec.Desired.DesiredStatus
	r.mu.Unlock()
	if changed {
		r.save()
	}
	if unassigned != "" {
		return true, unassigned
	}
	return desired == "STOPPED", ""
}

// pollDesired checks, without waiting, for a new desired state that stops
// the task; it reports whether the task is now stopping.
func (r *runner) pollDesired() bool {
	select {
	case <-r.wake:
		if stop, reason := r.takeDesired(); stop {
			r.beginStop(reason)
		}
	default:
	}
	return r.phase().rank() >= phaseStopping.rank()
}

// beginStop moves the task to STOPPING; the first reason stays.
func (r *runner) beginStop(reason string) {
	r.mu.Lock()
	if r.rec.Phase.rank() >= phaseStopping.rank() {
		r.mu.Unlock()
		return
	}
	r.rec.Phase = phaseStopping
	if r.rec.StoppedReason == "" {
		r.rec.StoppedReason = reason
	}
	r.mu.Unlock()
	r.log.Info("stopping task", "reason", reason)
	r.save()
}

// fail stops a task that cannot go on, giving the reason to the container
// it concerns and to the task.
func (r *runner) fail(f *failure) {
	r.edit(func(t *taskRec) {
		for _, c := range t.Containers {
			if c.Name == f.container && c.Reason == "" {
				c.Reason = f.reason
			}
		}
	})
	r.log.Warn("task failed", "container", f.container, "reason", f.reason)
	r.beginStop(f.reason)
}

// startAndWatch brings the task up and watches it until it is to stop or
// ctx ends.
func (r *runner) startAndWatch(ctx context.Context) {
	r.mu.Lock()
	first := r.rec.PullStartedAt.IsZero()
	if first {
		r.rec.PullStartedAt = r.now()
	}
	r.mu.Unlock()
	if first {
		r.save()
		r.reportTask()
	}
	for i, c := range r.rec.Containers {
		if c.Status != ctrNone {
			continue
		}
		img, err := r.e.cfg.Runtime.EnsureImage(ctx, r.plan.containers[i].image, r.e.cfg.Pull)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.fail(failf(c.Name, "CannotPullContainerError: %v", err))
			return
		}
		r.edit(func(*taskRec) { c.Digest = img.Digest })
		if r.pollDesired() {
			return
		}
	}
	r.mu.Lock()
	if r.rec.PullStoppedAt.IsZero() {
		r.rec.PullStoppedAt = r.now()
	}
	r.mu.Unlock()
	if r.rec.PortsAllocated {
		r.save()
	} else if f := r.allocatePorts(); f != nil { // it saves the pull's times too
		r.fail(f)
		return
	}
	if !r.adopt(ctx) {
		return
	}
	r.watch(ctx)
}

// allocatePorts reserves the host ports of every container at once.
func (r *runner) allocatePorts() *failure {
	alloc := r.e.cfg.Ports
	// A reservation without the record saying so is a leftover of a crash
	// between the two writes: start over.
	if err := alloc.Release(r.arn); err != nil {
		return failf("", "ResourceInitializationError: releasing stale host ports: %v", err)
	}
	type req struct {
		ctr  int
		plan portPlan
	}
	var reqs []req
	var preqs []hostports.PortRequest
	for i, c := range r.plan.containers {
		for _, p := range c.ports {
			reqs = append(reqs, req{ctr: i, plan: p})
			preqs = append(preqs, hostports.PortRequest{Proto: p.proto, HostPort: p.hostPort})
		}
	}
	bindings, err := alloc.Reserve(r.arn, preqs)
	if err != nil {
		return failf("", "ResourceInitializationError: unable to allocate host ports: %v", err)
	}
	r.edit(func(t *taskRec) {
		for k, q := range reqs {
			c := t.Containers[q.ctr]
			c.Ports = append(c.Ports, state.PortBinding{
				ContainerPort: q.plan.containerPort, HostPort: bindings[k].HostPort, Protocol: q.plan.proto, BindIP: "0.0.0.0",
			})
		}
		t.PortsAllocated = true
	})
	r.save()
	return nil
}

// adopt looks at the containers the record says were created or started
// (after an agent restart): running ones are waited for again, exited ones
// are handled as exits, vanished ones are re-created or, if they ran,
// handled as exits. It returns false when ctx ended.
func (r *runner) adopt(ctx context.Context) bool {
	seen := false // a fresh task has nothing to adopt, nor to save
	for i, c := range r.rec.Containers {
		if c.Status != ctrCreated && c.Status != ctrRunning {
			continue
		}
		seen = true
		st, err := r.e.cfg.Runtime.Inspect(ctx, c.RuntimeID)
		switch {
		case ctx.Err() != nil:
			return false
		case errors.Is(err, errdefs.ErrNotFound) && c.Status == ctrCreated:
			r.edit(func(*taskRec) { c.Status = ctrNone })
		case errors.Is(err, errdefs.ErrNotFound):
			r.onExit(exitMsg{index: i, gone: true})
		case err != nil:
			r.fail(failf(c.Name, "CannotInspectContainerError: %v", err))
			return true
		default:
			r.observe(i, st)
		}
	}
	if seen {
		r.save()
	}
	return true
}

// observe takes a container's runtime status as its own.
func (r *runner) observe(i int, st runtime.ContainerStatus) {
	c := r.rec.Containers[i]
	switch st.State {
	case runtime.StateCreated:
		r.edit(func(*taskRec) {
			c.Status = ctrCreated
			if c.CreatedAt.IsZero() {
				c.CreatedAt = st.CreatedAt
			}
		})
	case runtime.StateRunning:
		r.edit(func(*taskRec) {
			c.Status = ctrRunning
			if c.StartedAt.IsZero() {
				c.StartedAt = r.now()
			}
			if c.Digest == "" {
				c.Digest = st.ImageDigest
			}
		})
		r.spawnWaiter(i)
		r.spawnHealth(i)
	case runtime.StateStopped:
		r.edit(func(*taskRec) {
			if c.StartedAt.IsZero() {
				c.StartedAt = st.CreatedAt
			}
		})
		r.onExit(exitMsg{index: i, exit: runtime.Exit{Code: st.ExitCode, ExitedAt: st.ExitedAt, OOMKilled: st.OOMKilled}})
	}
}

// watch starts containers as their dependencies allow and handles exits,
// health changes and desired-state changes until the task is to stop.
func (r *runner) watch(ctx context.Context) {
	for r.phase().rank() < phaseStopping.rank() {
		if !r.progress(ctx) {
			return
		}
		if r.phase().rank() >= phaseStopping.rank() {
			return
		}
		// Dependencies with a start timeout are checked against the clock
		// every tick.
		var tick <-chan time.Time
		var timer *time.Timer
		if len(r.depSince) > 0 {
			timer = time.NewTimer(r.e.cfg.Tick)
			tick = timer.C
		}
		select {
		case m := <-r.exits:
			r.onExit(m)
		case m := <-r.health:
			r.onHealth(ctx, m)
		case <-r.wake:
			if stop, reason := r.takeDesired(); stop {
				r.beginStop(reason)
			}
		case <-tick:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// progress starts every container whose dependencies are met and moves
// the task to RUNNING once every container has started. It returns false
// when ctx ended.
func (r *runner) progress(ctx context.Context) bool {
	for _, i := range r.plan.order {
		c := r.rec.Containers[i]
		if c.Status != ctrNone && c.Status != ctrCreated {
			delete(r.depSince, i)
			continue
		}
		ok, f := r.depsMet(i)
		if f != nil {
			r.fail(f)
			return true
		}
		if !ok {
			since, waiting := r.depSince[i]
			if !waiting {
				r.depSince[i] = r.now()
			} else if limit := r.plan.containers[i].startTimeout; r.now().Sub(since) >= limit {
				r.fail(failf(c.Name, "CannotStartContainerError: dependency graph: container %s timed out after %s waiting for its dependencies", c.Name, limit))
				return true
			}
			continue
		}
		delete(r.depSince, i)
		r.bringUp(ctx, i)
		if ctx.Err() != nil {
			return false
		}
		if r.phase().rank() >= phaseStopping.rank() {
			return true
		}
	}
	r.mu.Lock()
	up := r.rec.Phase == phasePending && !slices.ContainsFunc(r.rec.Containers, func(c *ctrRec) bool {
		return c.Status == ctrNone || c.Status == ctrCreated
	})
	if up {
		r.rec.Phase = phaseRunning
		r.rec.StartedAt = r.now()
	}
	r.mu.Unlock()
	if up {
		r.log.Info("task running")
		r.save()
		r.reportTask()
	}
	return true
}

// depsMet says whether container i may start, or why it never can.
func (r *runner) depsMet(i int) (bool, *failure) {
	c := r.plan.containers[i]
	for _, d := range c.deps {
		dc := r.rec.Containers[d.index]
		exited := dc.Status == ctrStopped
		ran := exited && !dc.StartedAt.IsZero()
		never := func(why string) (bool, *failure) {
			return false, failf(c.name, "CannotStartContainerError: dependency graph: container %s cannot start: its dependency %s (condition %s) %s", c.name, d.name, d.condition, why)
		}
		switch d.condition {
		case types.ContainerConditionStart:
			if exited && !ran {
				return never("never started")
			}
			if dc.Status != ctrRunning && !ran {
				return false, nil
			}
		case types.ContainerConditionComplete:
			if exited && !ran {
				return never("never started")
			}
			if !exited {
				return false, nil
			}
		case types.ContainerConditionSuccess:
			if !exited {
				return false, nil
			}
			if dc.ExitCode == nil || *dc.ExitCode != 0 {
				code := "no exit code"
				if dc.ExitCode != nil {
					code = fmt.Sprintf("exit code %d", *dc.ExitCode)
				}
				return never("did not exit successfully (" + code + ")")
			}
		case types.ContainerConditionHealthy:
			if exited {
				return never("exited")
			}
			if dc.Status != ctrRunning || dc.Health != HealthHealthy {
				return false, nil
			}
		}
	}
	return true, nil
}

// bringUp creates (network first) and starts container i, or adopts it if
// a previous run of the agent created it already.
func (r *runner) bringUp(ctx context.Context, i int) {
	rt := r.e.cfg.Runtime
	c, cp := r.rec.Containers[i], r.plan.containers[i]
	if c.Status == ctrNone && !r.fresh {
		st, err := rt.Inspect(ctx, c.RuntimeID)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			r.observe(i, st)
			r.save()
			if c.Status != ctrCreated {
				return
			}
		case !errors.Is(err, errdefs.ErrNotFound):
			r.fail(failf(c.Name, "CannotInspectContainerError: %v", err))
			return
		}
	}
	if c.Status == ctrNone {
		for _, d := range cp.volumeDirs {
			if err := os.MkdirAll(d, 0o755); err != nil {
				r.fail(failf(c.Name, "ResourceInitializationError: volume directory: %v", err))
				return
			}
		}
		if !r.createWhileAttaching(ctx, i) {
			return
		}
	}
	// A container a crashed run created before it recorded the network
	// (createWhileAttaching) still needs it.
	if c.Attachment == nil && !r.attach(ctx, i) {
		return
	}
	r.spawnWaiter(i)
	err := rt.Start(ctx, c.RuntimeID)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.fail(failf(c.Name, "CannotStartContainerError: %v", err))
		return
	}
	r.edit(func(*taskRec) { c.Status, c.StartedAt = ctrRunning, r.now() })
	r.save()
	r.spawnHealth(i)
}

// netRequest is container i's network request.
func (r *runner) netRequest(i int) network.Request {
	c := r.rec.Containers[i]
	var ports []network.PortMapping
	for _, p := range c.Ports {
		ports = append(ports, network.PortMapping{ContainerPort: p.ContainerPort, HostPort: p.HostPort, Protocol: p.Protocol})
	}
	return network.Request{ID: c.RuntimeID, Mode: r.plan.mode, Ports: ports}
}

// attach sets up container i's network and records it; false when the task
// failed or ctx ended.
func (r *runner) attach(ctx context.Context, i int) bool {
	c := r.rec.Containers[i]
	att, err := r.e.cfg.Network.Attach(ctx, r.netRequest(i))
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		r.fail(failf(c.Name, "ResourceInitializationError: failed to set up the network of container %s: %v", c.Name, err))
		return false
	}
	r.edit(func(*taskRec) { c.Attachment = &att })
	r.save()
	return true
}

// createWhileAttaching creates container i. In bridge mode, with a network
// that can prepare namespaces, the container is created in its prepared
// namespace while CNI wires it, instead of after: the two take about as
// long as each other. Either way the network is recorded before the
// container counts as created. False when the task failed or ctx ended.
func (r *runner) createWhileAttaching(ctx context.Context, i int) bool {
	c, cp := r.rec.Containers[i], r.plan.containers[i]
	prep, ok := r.e.cfg.Network.(network.Preparer)
	if c.Attachment != nil || !ok || r.plan.mode != network.ModeBridge {
		if c.Attachment == nil && !r.attach(ctx, i) {
			return false
		}
		return r.create(ctx, i)
	}
	req := r.netRequest(i)
	nsPath, err := prep.Prepare(ctx, req)
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		r.fail(failf(c.Name, "ResourceInitializationError: failed to set up the network of container %s: %v", c.Name, err))
		return false
	}
	type attached struct {
		att network.Attachment
		err error
	}
	done := make(chan attached, 1)
	go func() { // waited for below, on every path
		att, err := r.e.cfg.Network.Attach(ctx, req)
		done <- attached{att, err}
	}()
	spec, f := r.e.spec(r.desired(), r.plan, cp, c, nsPath)
	var createErr error
	if f == nil {
		createErr = r.e.cfg.Runtime.Create(ctx, spec)
	}
	res := <-done
	if ctx.Err() != nil {
		return false
	}
	if res.err == nil {
		r.edit(func(*taskRec) { c.Attachment = &res.att })
		r.save()
	}
	switch {
	case f != nil:
		r.fail(f)
		return false
	case createErr != nil:
		r.fail(failf(c.Name, "CannotCreateContainerError: %v", createErr))
		return false
	case res.err != nil:
		r.fail(failf(c.Name, "ResourceInitializationError: failed to set up the network of container %s: %v", c.Name, res.err))
		return false
	}
	r.edit(func(*taskRec) { c.Status, c.CreatedAt = ctrCreated, r.now() })
	r.save()
	return true
}

// create creates container i in its recorded network.
func (r *runner) create(ctx context.Context, i int) bool {
	c, cp := r.rec.Containers[i], r.plan.containers[i]
	spec, f := r.e.spec(r.desired(), r.plan, cp, c, c.Attachment.NetNSPath)
	if f != nil {
		r.fail(f)
		return false
	}
	err := r.e.cfg.Runtime.Create(ctx, spec)
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		r.fail(failf(c.Name, "CannotCreateContainerError: %v", err))
		return false
	}
	r.edit(func(*taskRec) { c.Status, c.CreatedAt = ctrCreated, r.now() })
	r.save()
	return true
}

// desired is the newest desired state.
func (r *runner) desired() agentproto.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.Desired
}

// spawnWaiter forwards container i's exit to the run loop.
func (r *runner) spawnWaiter(i int) {
	if r.waiting[i] {
		return
	}
	id := r.rec.Containers[i].RuntimeID
	ch, err := r.e.cfg.Runtime.Wait(r.ctrCtx, id)
	if err != nil {
		// Inspect found it a moment ago; if it is gone now, that is an exit.
		if errors.Is(err, errdefs.ErrNotFound) {
			r.waiting[i] = true
			r.ctrWG.Go(func() { r.sendExit(exitMsg{index: i, gone: true}) })
		}
		return
	}
	r.waiting[i] = true
	r.ctrWG.Go(func() {
		if ex, ok := <-ch; ok {
			r.sendExit(exitMsg{index: i, exit: ex})
		}
	})
}

func (r *runner) sendExit(m exitMsg) {
	select {
	case r.exits <- m:
	case <-r.ctrCtx.Done():
	}
}

// spawnHealth starts the health checks of container i, if it has any.
func (r *runner) spawnHealth(i int) {
	h := r.plan.containers[i].health
	if h == nil || r.healthStop[i] != nil {
		return
	}
	c := r.rec.Containers[i]
	ctx, cancel := context.WithCancel(r.ctrCtx)
	r.healthStop[i] = cancel
	r.mu.Lock()
	startedAt, status := c.StartedAt, c.Health
	r.mu.Unlock()
	r.ctrWG.Go(func() { r.e.checkHealth(ctx, r, i, c.RuntimeID, h, startedAt, status) })
}

func (r *runner) onHealth(ctx context.Context, m healthMsg) {
	c := r.rec.Containers[m.index]
	if c.Status != ctrRunning || c.Health == m.status {
		return
	}
	r.edit(func(*taskRec) { c.Health = m.status })
	r.log.Info("container health changed", "container", c.Name, "health", m.status)
	r.save()
	r.e.reportHealth(ctx, r)
}

// onExit records a container's exit; an essential container's exit stops
// the task, another's is reported on its own.
func (r *runner) onExit(m exitMsg) {
	c := r.rec.Containers[m.index]
	if c.Status == ctrStopped {
		return
	}
	if cancel := r.healthStop[m.index]; cancel != nil {
		cancel()
	}
	r.edit(func(*taskRec) {
		c.Status = ctrStopped
		c.FinishedAt = m.exit.ExitedAt
		if c.FinishedAt.IsZero() {
			c.FinishedAt = r.now()
		}
		switch {
		case m.gone:
			c.Reason = reasonGone
		default:
			code := m.exit.Code
			c.ExitCode = &code
			if m.exit.OOMKilled {
				c.Reason = ReasonOOM
			}
		}
	})
	r.log.Info("container exited", "container", c.Name, "exitCode", m.exit.Code, "oom", m.exit.OOMKilled)
	r.save()
	if r.phase().rank() >= phaseStopping.rank() {
		return
	}
	if r.plan == nil || r.plan.containers[m.index].essential {
		r.beginStop(ReasonEssentialExited)
		return
	}
	r.reportContainer(m.index)
}

// stopAll stops every container (dependents first), marks the task
// STOPPED and reports it. It returns false when ctx ended first.
func (r *runner) stopAll(ctx context.Context) bool {
	for _, cancel := range r.healthStop {
		cancel()
	}
	rt := r.e.cfg.Runtime
	for _, i := range r.stopOrder() {
		c := r.rec.Containers[i]
		if c.Status == ctrStopped {
			continue
		}
		// Never-created containers too: a create may have happened just
		// before a crash, unrecorded.
		err := rt.Stop(ctx, c.RuntimeID, r.stopTimeout(i))
		if ctx.Err() != nil {
			return false
		}
		stopErr := err
		if errors.Is(err, errdefs.ErrNotFound) {
			stopErr = nil
		}
		st, err := rt.Inspect(ctx, c.RuntimeID)
		if ctx.Err() != nil {
			return false
		}
		r.edit(func(*taskRec) {
			wasStarted := c.Status == ctrRunning
			c.Status = ctrStopped
			switch {
			case err == nil && st.State == runtime.StateStopped:
				code := st.ExitCode
				c.ExitCode = &code
				c.FinishedAt = st.ExitedAt
				if st.OOMKilled && c.Reason == "" {
					c.Reason = ReasonOOM
				}
			case errors.Is(err, errdefs.ErrNotFound) && wasStarted && c.Reason == "":
				c.Reason = reasonGone
			}
			if stopErr != nil && c.Reason == "" {
				c.Reason = "CannotStopContainerError: " + stopErr.Error()
			}
			if c.FinishedAt.IsZero() && wasStarted {
				c.FinishedAt = r.now()
			}
		})
	}
	// The task's host ports and network go as soon as its containers have
	// stopped, before STOPPED is reported, as Docker releases a stopped
	// container's ports: waiting for the cleanup (hours) would hold ports
	// the server credits back to the instance at STOPPED.
	if !r.releaseNetwork(ctx) {
		return false
	}
	r.edit(func(t *taskRec) {
		t.Phase = phaseStopped
		t.ExecutionStoppedAt = r.now()
	})
	r.log.Info("task stopped")
	r.save()
	r.reportTask()
	return true
}

// stopOrder is the reverse of the start order: dependents stop first.
func (r *runner) stopOrder() []int {
	var order []int
	if r.plan != nil {
		order = slices.Clone(r.plan.order)
	} else {
		for i := range r.rec.Containers {
			order = append(order, i)
		}
	}
	slices.Reverse(order)
	return order
}

func (r *runner) stopTimeout(i int) time.Duration {
	if r.plan != nil {
		return r.plan.containers[i].stopTimeout
	}
	return r.e.cfg.StopTimeout
}

// reportCurrent queues a report of where the task is (after a restart:
// the server ignores what it already has).
func (r *runner) reportCurrent() {
	switch r.phase() {
	case phaseStopping:
		// STOPPED follows once the containers are stopped.
	case phaseStopped:
		if r.rec.StopReportedAt.IsZero() {
			r.reportTask()
		}
	default:
		if !r.rec.PullStartedAt.IsZero() {
			r.reportTask()
		}
	}
}

// reportTask queues a SubmitTaskStateChange with the task's current state.
func (r *runner) reportTask() {
	r.mu.Lock()
	t := r.rec
	in := &ecs.SubmitTaskStateChangeInput{
		Cluster: aws.String(r.e.cfg.Cluster), Task: aws.String(t.ARN),
		Status: aws.String(reportedTaskStatus(t.Phase)),
	}
	if !t.PullStartedAt.IsZero() {
		in.PullStartedAt = aws.Time(t.PullStartedAt)
	}
	if !t.PullStoppedAt.IsZero() {
		in.PullStoppedAt = aws.Time(t.PullStoppedAt)
	}
	stopped := t.Phase == phaseStopped
	if stopped {
		in.ExecutionStoppedAt = aws.Time(t.ExecutionStoppedAt)
		if t.StoppedReason != "" {
			in.Reason = aws.String(t.StoppedReason)
		}
	}
	for _, c := range t.Containers {
		in.Containers = append(in.Containers, containerChange(c))
	}
	r.mu.Unlock()
	rep := report{task: in}
	if stopped && !r.stopReported {
		r.stopReported = true
		rep.acked = r.stopAcked
	}
	r.q.push(rep)
}

// reportContainer queues a SubmitContainerStateChange for container i.
func (r *runner) reportContainer(i int) {
	r.mu.Lock()
	ch := containerChange(r.rec.Containers[i])
	r.mu.Unlock()
	r.q.push(report{container: &ecs.SubmitContainerStateChangeInput{
		Cluster: aws.String(r.e.cfg.Cluster), Task: aws.String(r.arn), ContainerName: ch.ContainerName,
		Status: ch.Status, ExitCode: ch.ExitCode, Reason: ch.Reason, RuntimeId: ch.RuntimeId,
		NetworkBindings: ch.NetworkBindings,
	}})
}

func containerChange(c *ctrRec) types.ContainerStateChange {
	ch := types.ContainerStateChange{ContainerName: aws.String(c.Name), Status: aws.String(reportedContainerStatus(c.Status))}
	if c.Status == ctrStopped && c.ExitCode != nil {
		ch.ExitCode = aws.Int32(int32(*c.ExitCode))
	}
	if c.Reason != "" {
		ch.Reason = aws.String(c.Reason)
	}
	if c.Status != ctrNone {
		ch.RuntimeId = aws.String(c.RuntimeID)
	}
	if c.Digest != "" {
		ch.ImageDigest = aws.String(c.Digest)
	}
	if c.Status != ctrStopped {
		for _, p := range c.Ports {
			ch.NetworkBindings = append(ch.NetworkBindings, types.NetworkBinding{
				BindIP: aws.String(p.BindIP), ContainerPort: aws.Int32(int32(p.ContainerPort)),
				HostPort: aws.Int32(int32(p.HostPort)), Protocol: types.TransportProtocol(p.Protocol),
			})
		}
	}
	return ch
}

// releaseNetwork detaches the task's containers from the network and
// releases its host ports. Both steps are idempotent, so a restart that
// repeats them is harmless. It returns false when ctx ended first.
func (r *runner) releaseNetwork(ctx context.Context) bool {
	for _, c := range r.rec.Containers {
		if att := c.Attachment; att != nil {
			if !r.e.retry(ctx, "detaching the network of "+c.RuntimeID, func() error { return r.e.cfg.Network.Detach(ctx, *att) }) {
				return false
			}
		}
	}
	return r.e.retry(ctx, "releasing host ports", func() error { return r.e.cfg.Ports.Release(r.arn) })
}

// cleanup removes what the task left behind: containers, network
// attachments, host ports, task-scoped volumes and finally its record (the
// last step, so an agent restart in between repeats the cleanup). Logs are
// kept. It returns false when ctx ended first.
func (r *runner) cleanup(ctx context.Context) bool {
	rt := r.e.cfg.Runtime
	for i, c := range r.rec.Containers {
		ok := r.e.retry(ctx, "removing container "+c.RuntimeID, func() error {
			err := rt.Remove(ctx, c.RuntimeID)
			if errors.Is(err, errdefs.ErrFailedPrecondition) {
				// Still running (a stop that failed): stop it again first.
				if err := rt.Stop(ctx, c.RuntimeID, r.stopTimeout(i)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					return err
				}
				err = rt.Remove(ctx, c.RuntimeID)
			}
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil
			}
			return err
		})
		if !ok {
			return false
		}
	}
	// Done when the task stopped; again here for a record from before that.
	if !r.releaseNetwork(ctx) {
		return false
	}
	if !r.e.retry(ctx, "removing task volumes", func() error { return os.RemoveAll(taskVolumesDir(r.e.cfg.DataDir, r.arn)) }) {
		return false
	}
	if !r.e.retry(ctx, "deleting the task's state", func() error { return r.e.cfg.State.DeleteTask(r.arn) }) {
		return false
	}
	r.log.Info("task cleaned up")
	return true
}
