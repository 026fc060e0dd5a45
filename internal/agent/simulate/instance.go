package simulate

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agent/taskrunner"
	"github.com/berth-dev/berth/internal/agentproto"
)

// status is what the server has accepted of a task, in the order the
// agent reports it.
type status uint8

const (
	statusNone status = iota
	statusPending
	statusRunning
	statusStopped
)

func (s status) String() string {
	return [...]string{"NONE", "PENDING", "RUNNING", "STOPPED"}[s]
}

// finishedKeep is how long a stopped task's ARN is remembered so that a
// late or resent Sync cannot start it again; full Syncs prune earlier.
const finishedKeep = 5 * time.Minute

// instance is one simulated container instance: the tasks its channel
// assigned and what has been reported of them. Everything is guarded by mu;
// at most one report worker holds the instance at a time (queued).
type instance struct {
	index   int
	arn     string
	zone    string
	cluster string
	ports   *portPool
	acs     *acsclient.Client // set before the channel runs

	mu       sync.Mutex
	tasks    map[string]*task
	finished map[string]time.Time // stopped tasks, by ARN, when reported
	dirty    []*task              // tasks with a report to send, oldest first
	queued   bool                 // on the work queue or held by a worker
}

// task is one assigned task.
type task struct {
	arn        string
	rev        int64
	desired    string // RUNNING or STOPPED
	reason     string // sent with STOPPED when the agent stops it itself
	reported   status
	counted    bool // in the running figure: its RUNNING was accepted
	assignedAt time.Time
	containers []container
	inDirty    bool
}

type container struct {
	name      string
	runtimeID string
	bindings  []types.NetworkBinding
	health    bool // has a health check: reported HEALTHY once running
}

func newInstance(index int, cluster, zone string, ports *portPool) *instance {
	return &instance{index: index, cluster: cluster, zone: zone, ports: ports,
		tasks: map[string]*task{}, finished: map[string]time.Time{}}
}

// next is the report a task needs, or statusNone.
func (t *task) next() status {
	switch {
	case t.reported == statusStopped:
		return statusNone
	case t.desired == "STOPPED":
		return statusStopped
	case t.reported < statusPending:
		return statusPending
	case t.reported < statusRunning:
		return statusRunning
	}
	return statusNone
}

// apply takes one Sync as the real engine does: a task is acted on only at
// a revision above the one already seen, a stopped task is never started
// again, and a task missing from a full Sync is stopped by the agent
// (taskrunner.ReasonNotAssigned). It returns whether the instance now has
// reports to send. It never fails: nothing is stored, so every Sync is
// acknowledged.
func (in *instance) apply(tasks []agentproto.Task, full bool, now time.Time) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	var listed map[string]bool
	if full {
		listed = make(map[string]bool, len(tasks))
	}
	for _, at := range tasks {
		if full {
			listed[at.TaskARN] = true
		}
		if _, done := in.finished[at.TaskARN]; done {
			continue
		}
		t := in.tasks[at.TaskARN]
		if t == nil {
			t = in.newTask(at, now)
			in.tasks[at.TaskARN] = t
			in.markDirty(t)
			continue
		}
		if at.Revision <= t.rev {
			continue
		}
		t.rev = at.Revision
		if at.DesiredStatus == "STOPPED" && t.desired != "STOPPED" {
			t.desired = "STOPPED"
			in.markDirty(t)
		}
	}
	if full {
		for arn, t := range in.tasks {
			if !listed[arn] && t.desired != "STOPPED" {
				t.desired, t.reason = "STOPPED", taskrunner.ReasonNotAssigned
				in.markDirty(t)
			}
		}
	}
	for arn, at := range in.finished {
		if full && !listed[arn] || now.Sub(at) > finishedKeep {
			delete(in.finished, arn)
		}
	}
	return len(in.dirty) > 0
}

func (in *instance) markDirty(t *task) {
	if !t.inDirty && t.next() != statusNone {
		t.inDirty = true
		in.dirty = append(in.dirty, t)
	}
}

// newTask builds a task's containers from its definition: fake runtime ids
// and the host ports the real agent would bind (static ones as given,
// dynamic ones from this instance's pool).
func (in *instance) newTask(at agentproto.Task, now time.Time) *task {
	t := &task{arn: at.TaskARN, rev: at.Revision, desired: at.DesiredStatus, assignedAt: now}
	mode := at.TaskDefinition.NetworkMode
	for _, def := range at.TaskDefinition.ContainerDefinitions {
		name := aws.ToString(def.Name)
		c := container{name: name, runtimeID: runtimeID(at.TaskARN, name), health: def.HealthCheck != nil}
		for _, pm := range def.PortMappings {
			proto := pm.Protocol
			if proto == "" {
				proto = types.TransportProtocolTcp
			}
			cport := aws.ToInt32(pm.ContainerPort)
			var host int32
			switch mode {
			case types.NetworkModeHost:
				host = cport
			case types.NetworkModeBridge, "":
				host = aws.ToInt32(pm.HostPort)
				if host == 0 {
					p, ok := in.ports.take(t.arn)
					if !ok {
						continue // the real agent would fail the task; a simulation just binds nothing
					}
					host = int32(p)
				}
			default:
				continue // awsvpc and none bind no host ports
			}
			c.bindings = append(c.bindings, types.NetworkBinding{
				BindIP: aws.String("0.0.0.0"), ContainerPort: aws.Int32(cport), HostPort: aws.Int32(host), Protocol: proto,
			})
		}
		t.containers = append(t.containers, c)
	}
	return t
}

// runtimeID is a container id shaped like containerd's: 64 hex digits.
func runtimeID(taskARN, name string) string {
	sum := sha256.Sum256([]byte("berth-simulated\x00" + taskARN + "\x00" + name))
	return hex.EncodeToString(sum[:])
}

// pick returns the first dirty task and the report it needs, dropping
// tasks that need none; ok is false when nothing is left to send.
func (in *instance) pick() (t *task, st status, ok bool) {
	for len(in.dirty) > 0 {
		t = in.dirty[0]
		if st = t.next(); st != statusNone {
			return t, st, true
		}
		t.inDirty = false
		in.dirty = in.dirty[1:]
	}
	in.dirty = nil
	return nil, statusNone, false
}

// done records that st of t was sent (accepted, or refused for good and
// dropped, as the real agent drops such a report and goes on), moves t to
// the back of the dirty list if it needs more, and reports whether the
// instance has more to send.
func (in *instance) done(t *task, st status, now time.Time) bool {
	if st > t.reported {
		t.reported = st
	}
	if t.reported == statusStopped {
		delete(in.tasks, t.arn)
		in.finished[t.arn] = now
		in.ports.release(t.arn)
	}
	if len(in.dirty) > 0 && in.dirty[0] == t {
		in.dirty = in.dirty[1:]
		t.inDirty = false
		in.markDirty(t)
	}
	return len(in.dirty) > 0
}

// report is the SubmitTaskStateChange that tells the server t reached st.
func (in *instance) report(t *task, st status, now time.Time) *ecs.SubmitTaskStateChangeInput {
	r := &ecs.SubmitTaskStateChangeInput{Cluster: aws.String(in.cluster), Task: aws.String(t.arn), Status: aws.String(st.String())}
	started := t.reported >= statusRunning
	switch st {
	case statusPending:
		// No image is pulled: as if it were cached.
		r.PullStartedAt, r.PullStoppedAt = aws.Time(now), aws.Time(now)
	case statusStopped:
		r.ExecutionStoppedAt = aws.Time(now)
		if t.reason != "" {
			r.Reason = aws.String(t.reason)
		}
	}
	for _, c := range t.containers {
		ch := types.ContainerStateChange{ContainerName: aws.String(c.name), Status: aws.String(st.String())}
		switch {
		case st == statusRunning:
			ch.RuntimeId = aws.String(c.runtimeID)
			ch.NetworkBindings = c.bindings
		case st == statusStopped && started:
			ch.RuntimeId = aws.String(c.runtimeID)
			ch.ExitCode = aws.Int32(0) // simulated containers exit cleanly
		}
		r.Containers = append(r.Containers, ch)
	}
	return r
}

// health is the Health message of a running task with health checks (every
// such container HEALTHY), or false.
func (t *task) health() (agentproto.Health, bool) {
	h := agentproto.Health{TaskARN: t.arn}
	for _, c := range t.containers {
		if c.health {
			if h.Containers == nil {
				h.Containers = map[string]string{}
			}
			h.Containers[c.name] = "HEALTHY"
		}
	}
	return h, h.Containers != nil
}

// runningHealth lists the health of every running task with health checks,
// for sending again after a reconnect.
func (in *instance) runningHealth() []agentproto.Health {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []agentproto.Health
	for _, t := range in.tasks {
		if t.reported == statusRunning && t.desired != "STOPPED" {
			if h, ok := t.health(); ok {
				out = append(out, h)
			}
		}
	}
	return out
}

// portPool hands out fake dynamic host ports per instance, as the real
// agent's allocator would: from the dynamic range, skipping reserved and
// used ports. It is created lazily: most simulations use no dynamic ports.
type portPool struct {
	first, last uint16
	reserved    map[uint16]bool
	next        uint16
	used        map[uint16]string   // port → task
	byTask      map[string][]uint16 // task → ports
}

func newPortPool(first, last uint16, reserved map[uint16]bool) *portPool {
	return &portPool{first: first, last: last, reserved: reserved, next: first}
}

func (p *portPool) take(taskARN string) (uint16, bool) {
	if p.used == nil {
		p.used, p.byTask = map[uint16]string{}, map[string][]uint16{}
	}
	n := int(p.last) - int(p.first) + 1
	for range n {
		port := p.next
		if p.next == p.last {
			p.next = p.first
		} else {
			p.next++
		}
		if _, busy := p.used[port]; busy || p.reserved[port] {
			continue
		}
		p.used[port] = taskARN
		p.byTask[taskARN] = append(p.byTask[taskARN], port)
		return port, true
	}
	return 0, false
}

func (p *portPool) release(taskARN string) {
	for _, port := range p.byTask[taskARN] {
		delete(p.used, port)
	}
	delete(p.byTask, taskARN)
}
