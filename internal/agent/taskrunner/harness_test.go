package taskrunner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/runtime/fakeruntime"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
)

// fakeNet is an in-memory network.Network.
type fakeNet struct {
	mu       sync.Mutex
	attached map[string]network.Attachment
	detached []string
	n        int
}

func newFakeNet() *fakeNet { return &fakeNet{attached: map[string]network.Attachment{}} }

func (f *fakeNet) Attach(_ context.Context, req network.Request) (network.Attachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.attached[req.ID]; ok {
		return a, nil
	}
	a := network.Attachment{ID: req.ID, Mode: req.Mode, Ports: req.Ports}
	switch req.Mode {
	case network.ModeBridge:
		f.n++
		a.NetNSPath = "/run/netns/" + req.ID
		a.IPv4 = fmt.Sprintf("10.4.0.%d", f.n+1)
	case network.ModeHost:
		a.NetNSPath = runtime.NetNSHost
	}
	f.attached[req.ID] = a
	return a, nil
}

func (f *fakeNet) Detach(_ context.Context, att network.Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, att.ID)
	f.detached = append(f.detached, att.ID)
	return nil
}

func (f *fakeNet) isAttached(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.attached[id]
	return ok
}

// preparingNet is a fakeNet that also prepares bridge namespaces
// (network.Preparer), as the CNI network does; failAttach makes the Attach
// after a Prepare fail.
type preparingNet struct {
	*fakeNet
	mu         sync.Mutex
	prepared   []string
	failAttach error
}

func (p *preparingNet) Prepare(_ context.Context, req network.Request) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prepared = append(p.prepared, req.ID)
	return "/run/netns/" + req.ID, nil
}

func (p *preparingNet) Attach(ctx context.Context, req network.Request) (network.Attachment, error) {
	p.mu.Lock()
	err := p.failAttach
	p.mu.Unlock()
	if err != nil {
		return network.Attachment{}, err
	}
	return p.fakeNet.Attach(ctx, req)
}

// fakeReporter records reports in the order they arrive; it can refuse
// the first calls to test the retries.
type fakeReporter struct {
	mu       sync.Mutex
	failNext int
	calls    int
	tasks    []*ecs.SubmitTaskStateChangeInput
	ctrs     []*ecs.SubmitContainerStateChangeInput
	events   []string // "task <arn> <status>" and "container <arn> <name> <status>"
}

func (f *fakeReporter) fail() error {
	f.calls++
	if f.failNext > 0 {
		f.failNext--
		return errdefs.New(errdefs.ErrUnavailable, "server down")
	}
	return nil
}

func (f *fakeReporter) SubmitTaskStateChange(_ context.Context, in *ecs.SubmitTaskStateChangeInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return err
	}
	f.tasks = append(f.tasks, in)
	f.events = append(f.events, "task "+aws.ToString(in.Task)+" "+aws.ToString(in.Status))
	return nil
}

func (f *fakeReporter) SubmitContainerStateChange(_ context.Context, in *ecs.SubmitContainerStateChangeInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return err
	}
	f.ctrs = append(f.ctrs, in)
	f.events = append(f.events, "container "+aws.ToString(in.Task)+" "+aws.ToString(in.ContainerName)+" "+aws.ToString(in.Status))
	return nil
}

// taskReports returns the task reports of arn, in order.
func (f *fakeReporter) taskReports(arn string) []*ecs.SubmitTaskStateChangeInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*ecs.SubmitTaskStateChangeInput
	for _, in := range f.tasks {
		if aws.ToString(in.Task) == arn {
			out = append(out, in)
		}
	}
	return out
}

func (f *fakeReporter) statuses(arn string) []string {
	var out []string
	for _, in := range f.taskReports(arn) {
		out = append(out, aws.ToString(in.Status))
	}
	return out
}

func (f *fakeReporter) containerReports(arn string) []*ecs.SubmitContainerStateChangeInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*ecs.SubmitContainerStateChangeInput
	for _, in := range f.ctrs {
		if aws.ToString(in.Task) == arn {
			out = append(out, in)
		}
	}
	return out
}

// fakeHealth records health messages with the (real) time they arrived.
type fakeHealth struct {
	mu   sync.Mutex
	msgs []agentproto.Health
	at   []time.Time
}

func (f *fakeHealth) ReportHealth(_ context.Context, h agentproto.Health) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, h)
	f.at = append(f.at, time.Now())
	return nil
}

func (f *fakeHealth) first(arn, container, status string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.msgs {
		if m.TaskARN == arn && m.Containers[container] == status {
			return f.at[i], true
		}
	}
	return time.Time{}, false
}

type harness struct {
	t      *testing.T
	dir    string
	rt     *fakeruntime.Runtime
	net    *fakeNet
	rep    *fakeReporter
	health *fakeHealth
	clk    *clock.Fake
	db     *state.DB
	ports  *hostports.Allocator
	eng    *Engine
	cfg    func(*Config)
}

var portRange = hostports.Range{First: 40000, Last: 40009}

func newHarness(t *testing.T, adjust func(*Config)) *harness {
	t.Helper()
	h := &harness{
		t: t, dir: t.TempDir(), net: newFakeNet(), rep: &fakeReporter{}, health: &fakeHealth{},
		clk: clock.NewFake(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)), cfg: adjust,
		rt: fakeruntime.New(fakeruntime.WithRemoteImage("probe", fakeruntime.ProbeConfig)),
	}
	h.start()
	t.Cleanup(func() {
		h.eng.Close()
		h.db.Close()
	})
	return h
}

// start opens the state database and starts an engine on it, as an agent
// process does.
func (h *harness) start() {
	t := h.t
	t.Helper()
	db, err := state.Open(filepath.Join(h.dir, state.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ports, err := hostports.New(hostports.Config{DynamicRange: portRange, Probe: func(string, uint16) bool { return true }, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Cluster: "default", DataDir: h.dir, Runtime: h.rt, Network: h.net, Ports: ports, State: db,
		Reporter: h.rep, Health: h.health, Clock: h.clk, Tick: time.Millisecond,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, CleanupWait: time.Hour,
		StopTimeout: 100 * time.Millisecond,
		MetadataEnv: func(id string) []string {
			return []string{"ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/" + id}
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if h.cfg != nil {
		h.cfg(&cfg)
	}
	eng, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.db, h.ports, h.eng = db, ports, eng
}

// restart closes the engine and its database and starts a new agent on the
// same data directory and the same (fake) machine.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.eng.Close(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.db.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.rt = h.rt.NewClient()
	h.start()
}

func (h *harness) apply(full bool, tasks ...agentproto.Task) {
	h.t.Helper()
	if err := h.eng.Apply(context.Background(), tasks, full); err != nil {
		h.t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; reports: %v", what, h.events())
		}
		<-time.After(2 * time.Millisecond) // the next poll
	}
}

func (h *harness) events() []string {
	h.rep.mu.Lock()
	defer h.rep.mu.Unlock()
	return slices.Clone(h.rep.events)
}

// waitReport waits for a task report with status and returns it.
func (h *harness) waitReport(arn, status string) *ecs.SubmitTaskStateChangeInput {
	h.t.Helper()
	var got *ecs.SubmitTaskStateChangeInput
	h.waitFor("task "+arn+" "+status, func() bool {
		for _, in := range h.rep.taskReports(arn) {
			if aws.ToString(in.Status) == status {
				got = in
				return true
			}
		}
		return false
	})
	return got
}

// advanceUntil moves the fake clock by step until cond holds.
func (h *harness) advanceUntil(what string, step time.Duration, cond func() bool) {
	h.t.Helper()
	h.waitFor(what, func() bool {
		if cond() {
			return true
		}
		h.clk.Advance(step)
		return false
	})
}

func (h *harness) inspect(id string) (runtime.ContainerStatus, error) {
	return h.rt.Inspect(context.Background(), id)
}

func (h *harness) view(arn string) TaskView {
	h.t.Helper()
	v, ok := h.eng.Task(arn)
	if !ok {
		h.t.Fatalf("task %s unknown to the engine", arn)
	}
	return v
}

func (h *harness) container(arn, name string) ContainerView {
	h.t.Helper()
	for _, c := range h.view(arn).Containers {
		if c.Name == name {
			return c
		}
	}
	h.t.Fatalf("task %s has no container %s", arn, name)
	return ContainerView{}
}

func taskARN(id string) string { return "arn:aws:ecs:us-east-1:123456789012:task/default/" + id }

func newTask(id string, rev int64, desired string, ctrs ...types.ContainerDefinition) agentproto.Task {
	arns := map[string]string{}
	for _, c := range ctrs {
		arns[aws.ToString(c.Name)] = "arn:aws:ecs:us-east-1:123456789012:container/default/" + id + "/" + aws.ToString(c.Name)
	}
	return agentproto.Task{
		TaskARN: taskARN(id), Revision: rev, DesiredStatus: desired, ContainerARNs: arns, LaunchType: "EC2",
		TaskDefinition: types.TaskDefinition{
			Family: aws.String("fam"), Revision: 4, NetworkMode: types.NetworkModeBridge,
			ContainerDefinitions: ctrs,
		},
	}
}

func ctr(name string, command ...string) types.ContainerDefinition {
	return types.ContainerDefinition{Name: aws.String(name), Image: aws.String("probe"), Command: command, Essential: aws.Bool(true)}
}

func nonEssential(c types.ContainerDefinition) types.ContainerDefinition {
	c.Essential = aws.Bool(false)
	return c
}

func withPorts(c types.ContainerDefinition, ports ...int32) types.ContainerDefinition {
	for _, p := range ports {
		c.PortMappings = append(c.PortMappings, types.PortMapping{ContainerPort: aws.Int32(p), Protocol: types.TransportProtocolTcp})
	}
	return c
}

func dependsOn(c types.ContainerDefinition, on string, cond types.ContainerCondition) types.ContainerDefinition {
	c.DependsOn = append(c.DependsOn, types.ContainerDependency{ContainerName: aws.String(on), Condition: cond})
	return c
}

func reportedContainer(in *ecs.SubmitTaskStateChangeInput, name string) types.ContainerStateChange {
	for _, c := range in.Containers {
		if aws.ToString(c.ContainerName) == name {
			return c
		}
	}
	return types.ContainerStateChange{}
}
