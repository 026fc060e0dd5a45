package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

// monitor holds the Wait subscribers of one container. Any number of exit
// watchers (one from Start, one per adoption) may feed it: recording an exit
// is idempotent, and the first to finish delivers and removes the monitor.
type monitor struct {
	subs     []chan runtime.Exit
	watchers int
}

func (m *monitor) closeSubs() {
	for _, s := range m.subs {
		close(s)
	}
	m.subs = nil
}

func (r *Runtime) load(ctx context.Context, id string) (containerd.Container, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	if !runtime.ValidID(id) {
		return nil, errdefs.NotFound(fmt.Sprintf("container %q not found", id))
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, errdefs.NotFound(fmt.Sprintf("container %q not found", id))
		}
		return nil, wrap(err, fmt.Sprintf("loading container %q", id))
	}
	return c, nil
}

// task returns the container's task, or nil when it has none.
func task(ctx context.Context, c containerd.Container) (containerd.Task, error) {
	t, err := c.Task(ctx, nil)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(err, fmt.Sprintf("loading the task of container %q", c.ID()))
	}
	return t, nil
}

// Start implements runtime.Runtime.
func (r *Runtime) Start(ctx context.Context, id string) error {
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return wrap(err, "loading container "+id)
	}
	if _, stopped := info.Labels[labelExitCode]; stopped {
		return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q has exited; only a created container can start", id))
	}
	if t, err := task(ctx, c); err != nil {
		return err
	} else if t != nil {
		return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q has already been started", id))
	}
	creator := cio.NullIO
	if p := info.Labels[labelLogPath]; p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return errdefs.Internal(err)
		}
		creator = cio.LogFile(p)
	}
	t, err := c.NewTask(ctx, creator)
	if err != nil {
		return &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Message: fmt.Sprintf("starting container %q", id), Cause: err}
	}
	// Wait before Start, so even an instant exit is seen.
	exitCh, err := t.Wait(r.bg)
	if err != nil {
		r.deleteTask(t)
		return wrap(err, fmt.Sprintf("waiting for container %q", id))
	}
	if err := t.Start(ctx); err != nil {
		r.deleteTask(t)
		return &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Message: fmt.Sprintf("starting container %q", id), Cause: err}
	}
	r.mu.Lock()
	m := r.monitorLocked(id)
	if m == nil {
		r.mu.Unlock()
		return nil // closed meanwhile; the container runs on
	}
	m.watchers++
	r.wg.Add(1)
	r.mu.Unlock()
	go r.watch(c, t, exitCh)
	return nil
}

// deleteTask removes a task that failed to start, so the container stays
// "created".
func (r *Runtime) deleteTask(t containerd.Task) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = t.Delete(ctx, containerd.WithProcessKill)
}

// monitorLocked returns id's monitor, creating it; nil once closed.
func (r *Runtime) monitorLocked(id string) *monitor {
	if r.closed {
		return nil
	}
	m := r.monitors[id]
	if m == nil {
		m = &monitor{}
		r.monitors[id] = m
	}
	return m
}

// subscribe registers a waiter for id's exit and, when no watcher of this
// Runtime follows the container yet, starts one (adoption).
func (r *Runtime) subscribe(c containerd.Container) (chan runtime.Exit, error) {
	sub := make(chan runtime.Exit, 1)
	r.mu.Lock()
	m := r.monitorLocked(c.ID())
	if m == nil {
		r.mu.Unlock()
		return nil, errdefs.New(errdefs.ErrFailedPrecondition, "containerd runtime is closed")
	}
	m.subs = append(m.subs, sub)
	adopt := m.watchers == 0
	if adopt {
		m.watchers++
		r.wg.Add(1)
	}
	r.mu.Unlock()
	if adopt {
		go r.adopt(c)
	}
	return sub, nil
}

// adopt finds how to learn c's exit: from its task, from its labels when it
// has already been recorded, or (never started) from a later Start.
func (r *Runtime) adopt(c containerd.Container) {
	t, err := c.Task(r.bg, nil)
	if err == nil {
		exitCh, err := t.Wait(r.bg)
		if err == nil {
			go r.watch(c, t, exitCh) // keeps the watcher count and wg
			return
		}
	}
	defer r.wg.Done()
	if ex, ok := r.recordedExit(r.bg, c); ok {
		r.deliver(c.ID(), ex)
		return
	}
	r.mu.Lock()
	if m := r.monitors[c.ID()]; m != nil {
		m.watchers--
	}
	r.mu.Unlock()
}

// watch waits for t's exit, records it and delivers it.
func (r *Runtime) watch(c containerd.Container, t containerd.Task, exitCh <-chan containerd.ExitStatus) {
	defer r.wg.Done()
	st := <-exitCh
	code, exitedAt, err := st.Result()
	if err != nil {
		// Closed, or containerd went away: the subscribers' channels close
		// (Close does it, or the last watcher below) and callers Wait again.
		r.mu.Lock()
		if m := r.monitors[c.ID()]; m != nil {
			m.watchers--
			if m.watchers == 0 {
				m.closeSubs()
				delete(r.monitors, c.ID())
			}
		}
		r.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex := runtime.Exit{Code: int(code), ExitedAt: exitedAt, OOMKilled: oomKilled(ctx, t)}
	r.record(ctx, c, t, ex)
	r.deliver(c.ID(), ex)
}

// record stores the exit in the container's labels, then deletes the task
// (which lets the shim exit). Another client may have done both already.
func (r *Runtime) record(ctx context.Context, c containerd.Container, t containerd.Task, ex runtime.Exit) {
	labels := map[string]string{
		labelExitCode: strconv.Itoa(ex.Code),
		labelExitedAt: ex.ExitedAt.UTC().Format(time.RFC3339Nano),
	}
	if ex.OOMKilled {
		labels[labelOOMKilled] = "true"
	}
	if _, err := c.SetLabels(ctx, labels); err != nil {
		return // the container is gone (removed) or containerd is: keep the task
	}
	_, _ = t.Delete(ctx)
}

// recordedExit reads an exit record from c's labels.
func (r *Runtime) recordedExit(ctx context.Context, c containerd.Container) (runtime.Exit, bool) {
	labels, err := c.Labels(ctx)
	if err != nil {
		return runtime.Exit{}, false
	}
	return exitFromLabels(labels)
}

func exitFromLabels(labels map[string]string) (runtime.Exit, bool) {
	v, ok := labels[labelExitCode]
	if !ok {
		return runtime.Exit{}, false
	}
	code, err := strconv.Atoi(v)
	if err != nil {
		return runtime.Exit{}, false
	}
	at, _ := time.Parse(time.RFC3339Nano, labels[labelExitedAt])
	return runtime.Exit{Code: code, ExitedAt: at, OOMKilled: labels[labelOOMKilled] == "true"}, true
}

func (r *Runtime) deliver(id string, ex runtime.Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.monitors[id]
	if m == nil {
		return
	}
	delete(r.monitors, id)
	for _, s := range m.subs {
		s <- ex // buffered; each subscriber gets exactly one value
		close(s)
	}
}

// oomKilled reports whether the kernel OOM-killed a process of the task's
// cgroup. The cgroup outlives the exit until the task is deleted, so its
// counters answer even when no OOM event was watched (agent restarts).
func oomKilled(ctx context.Context, t containerd.Task) bool {
	m, err := t.Metrics(ctx)
	if err != nil || m == nil || m.Data == nil {
		return false
	}
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return false
	}
	switch v := data.(type) {
	case *v1stats.Metrics:
		return v.GetMemoryOomControl().GetOomKill() > 0
	case *v2stats.Metrics:
		return v.GetMemoryEvents().GetOomKill() > 0
	}
	return false
}

// Wait implements runtime.Runtime.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan runtime.Exit, error) {
	c, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	sub, err := r.subscribe(c)
	if err != nil {
		return nil, err
	}
	out := make(chan runtime.Exit, 1)
	go func() {
		defer close(out)
		select {
		case ex, ok := <-sub:
			if ok {
				out <- ex
			}
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// Stop implements runtime.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	t, err := task(ctx, c)
	if err != nil || t == nil {
		return err // never started, or exited and recorded
	}
	info, err := c.Info(ctx)
	if err != nil {
		return wrap(err, "loading container "+id)
	}
	sub, err := r.subscribe(c)
	if err != nil {
		return err
	}
	if timeout <= 0 {
		timeout, _ = time.ParseDuration(info.Labels[labelStopTimeout])
	}
	if timeout <= 0 {
		timeout = runtime.DefaultStopTimeout
	}
	sig, err := runtime.ParseSignal(info.Labels[labelStopSignal])
	if err != nil {
		sig = syscall.SIGTERM
	}
	if ts, err := t.Status(ctx); err == nil && ts.Status == containerd.Stopped {
		// Exited unobserved: the watcher subscribe started records it.
		select {
		case _, ok := <-sub:
			return stopResult(ok, id)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := t.Kill(ctx, sig); err != nil && !cerrdefs.IsNotFound(err) {
		return exitedMeanwhile(ctx, sub, id, wrap(err, fmt.Sprintf("signalling container %q", id)))
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case _, ok := <-sub:
		return stopResult(ok, id)
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !cerrdefs.IsNotFound(err) {
		return exitedMeanwhile(ctx, sub, id, wrap(err, fmt.Sprintf("killing container %q", id)))
	}
	select {
	case _, ok := <-sub:
		return stopResult(ok, id)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exitedMeanwhile handles a failed kill: the container may have exited
// just before it, and the watcher's deletion of its task closed the shim's
// connection ("ttrpc: closed"). Then the exit arrives on sub shortly;
// otherwise the kill's error stands.
func exitedMeanwhile(ctx context.Context, sub <-chan runtime.Exit, id string, killErr error) error {
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case _, ok := <-sub:
		return stopResult(ok, id)
	case <-timer.C:
		return killErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopResult: a subscription closed without an exit means this client was
// closed or lost containerd before the container exited.
func stopResult(exited bool, id string) error {
	if exited {
		return nil
	}
	return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("stopping container %q: lost track of it (runtime closed or containerd unavailable)", id))
}

// Exec implements runtime.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, argv []string, timeout time.Duration) (int, error) {
	c, err := r.load(ctx, id)
	if err != nil {
		return -1, err
	}
	if len(argv) == 0 {
		return -1, errdefs.InvalidArgument("exec: empty command")
	}
	t, err := task(ctx, c)
	if err != nil {
		return -1, err
	}
	notRunning := errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q is not running", id))
	if t == nil {
		return -1, notRunning
	}
	if st, err := t.Status(ctx); err != nil {
		return -1, wrap(err, "container "+id)
	} else if st.Status != containerd.Running {
		return -1, notRunning
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, wrap(err, "loading the spec of container "+id)
	}
	pspec := *spec.Process
	pspec.Args = slices.Clone(argv)
	pspec.Terminal = false
	if timeout <= 0 {
		timeout = runtime.DefaultStopTimeout
	}
	execID := "exec-" + randomHex()
	p, err := t.Exec(ctx, execID, &pspec, cio.NullIO)
	if err != nil {
		return -1, wrap(err, fmt.Sprintf("exec in container %q", id))
	}
	// The process is deleted whatever happens, on a context of its own.
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = p.Delete(dctx, containerd.WithProcessKill)
	}()
	exitCh, err := p.Wait(r.bg)
	if err != nil {
		return -1, wrap(err, fmt.Sprintf("exec in container %q", id))
	}
	if err := p.Start(ctx); err != nil {
		return -1, &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Message: fmt.Sprintf("exec %q in container %q", argv[0], id), Cause: err}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case st := <-exitCh:
		code, _, err := st.Result()
		if err != nil {
			return -1, wrap(err, fmt.Sprintf("exec in container %q", id))
		}
		return int(code), nil
	case <-timer.C:
		err = context.DeadlineExceeded
	case <-ctx.Done():
		err = ctx.Err()
	}
	kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.Kill(kctx, syscall.SIGKILL)
	select {
	case <-exitCh:
	case <-kctx.Done():
	}
	return -1, fmt.Errorf("exec %q in container %q: %w", strings.Join(argv, " "), id, err)
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Inspect implements runtime.Runtime.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	c, err := r.load(ctx, id)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	return r.status(ctx, c)
}

func (r *Runtime) status(ctx context.Context, c containerd.Container) (runtime.ContainerStatus, error) {
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return runtime.ContainerStatus{}, wrap(err, "loading container "+c.ID())
	}
	st := runtime.ContainerStatus{
		ID: c.ID(), Image: info.Image, ImageDigest: info.Labels[labelImageDigest],
		CreatedAt: info.CreatedAt, LogPath: info.Labels[labelLogPath],
		Labels: map[string]string{}, State: runtime.StateCreated,
	}
	for k, v := range info.Labels {
		if !strings.HasPrefix(k, runtime.InternalLabelPrefix) {
			st.Labels[k] = v
		}
	}
	if ex, ok := exitFromLabels(info.Labels); ok {
		st.State, st.ExitCode, st.ExitedAt, st.OOMKilled = runtime.StateStopped, ex.Code, ex.ExitedAt, ex.OOMKilled
		return st, nil
	}
	t, err := task(ctx, c)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	if t == nil {
		return st, nil
	}
	ts, err := t.Status(ctx)
	if cerrdefs.IsNotFound(err) {
		// Deleted between the two calls: the exit has just been recorded.
		if ex, ok := r.recordedExit(ctx, c); ok {
			st.State, st.ExitCode, st.ExitedAt, st.OOMKilled = runtime.StateStopped, ex.Code, ex.ExitedAt, ex.OOMKilled
		}
		return st, nil
	} else if err != nil {
		return runtime.ContainerStatus{}, wrap(err, "container "+c.ID())
	}
	switch ts.Status {
	case containerd.Stopped:
		// Exited but not recorded yet (no client was watching).
		st.State, st.ExitCode, st.ExitedAt = runtime.StateStopped, int(ts.ExitStatus), ts.ExitTime
		st.OOMKilled = oomKilled(ctx, t)
	case containerd.Created:
	default:
		st.State, st.Pid = runtime.StateRunning, int(t.Pid())
	}
	return st, nil
}

// List implements runtime.Runtime. Filtering happens here rather than in a
// containerd filter expression, so label values need no quoting.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerStatus, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, wrap(err, "listing containers")
	}
	var out []runtime.ContainerStatus
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		match := true
		for k, v := range labels {
			if got, ok := info.Labels[k]; !ok || got != v {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		st, err := r.status(ctx, c)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed meanwhile
		} else if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b runtime.ContainerStatus) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Remove implements runtime.Runtime. The log file stays.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	t, err := task(ctx, c)
	if err != nil {
		return err
	}
	if t != nil {
		st, err := t.Status(ctx)
		if err != nil && !cerrdefs.IsNotFound(err) {
			return wrap(err, "container "+id)
		}
		if err == nil && st.Status != containerd.Stopped && st.Status != containerd.Created {
			return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q is running; stop it first", id))
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !cerrdefs.IsNotFound(err) {
			return wrap(err, "deleting the task of container "+id)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		if cerrdefs.IsNotFound(err) {
			return errdefs.NotFound(fmt.Sprintf("container %q not found", id))
		}
		return wrap(err, "removing container "+id)
	}
	r.mu.Lock()
	if m := r.monitors[id]; m != nil {
		m.closeSubs()
		delete(r.monitors, id)
	}
	r.mu.Unlock()
	return nil
}
