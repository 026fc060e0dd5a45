package testcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/node"
	"github.com/berth-dev/berth/internal/agent/taskrunner"
	domain "github.com/berth-dev/berth/internal/ecs"
)

// FakeEnv is the container environment variable that tells a fake agent
// how a container behaves:
//
//	FAKE=fail       the container cannot start: the task stops without
//	                ever RUNNING (stopCode TaskFailedToStart, container
//	                reason CannotStartContainerError: …)
//	FAKE=unhealthy  the container runs; its health check (if the
//	                definition has one) reports UNHEALTHY
//	(absent)        the container runs; HEALTHY if it has a health check
const FakeEnv = "FAKE"

// Behaviours FakeEnv names.
const (
	FakeFail      = "fail"
	FakeUnhealthy = "unhealthy"
)

// ReasonFakeFail is the container reason of a FAKE=fail container, in the
// form the real agent's runner gives a start failure.
const ReasonFakeFail = "CannotStartContainerError: fake: FAKE=fail"

// firstDynamicPort is where the fake agents' dynamic host ports start (the
// agent's default ephemeral range).
const firstDynamicPort = 32768

// agent is a fake agent: one registered container instance whose tasks
// "run" as records. Each Step it reads the tasks assigned to it (as the
// agent channel does) and moves each one step on, reporting with
// SubmitTaskStateChange through the SDK under the instance's own
// credentials and container health with ecsapi.Instances.ReportHealth
// (what the channel calls): PENDING, then RUNNING, then its health; or
// STOPPED when asked to stop, when it cannot start, or when killed.
// Reports are shaped as the real agent's runner shapes them
// (taskrunner.reportTask); no conformance suite covers agents (runtimetest
// covers runtimes), so TestFakeAgent pins what this fake reports.
type agent struct {
	id, arn string
	api     *ecs.Client
	tasks   map[string]*fakeTask // by task ARN
	port    int32                // next dynamic host port
}

// phase is what the agent has reported of a task.
type phase int

const (
	phaseNew phase = iota
	phasePending
	phaseRunning
)

type fakeTask struct {
	arn        string
	phase      phase
	containers []fakeContainer
	// exit, when set, is the exit code of the essential container that
	// was killed (Kill): the task stops at the next step.
	exit *int32
	// health is what each health-checked container's checks say
	// (FakeEnv, or SetHealth); sent is what was last reported.
	health, sent map[string]types.HealthStatus
}

type fakeContainer struct {
	name      string
	runtimeID string
	essential bool
	checked   bool // has a health check
	behaviour string
	bindings  []types.NetworkBinding
}

// AddInstance registers a container instance with cpu units and mem MiB
// (and the attributes the real agent advertises, plus attrs) as a real
// agent does: RegisterContainerInstance through the SDK with instance
// credentials, then the agent channel's connect (SetAgentConnected). It
// returns the instance's id.
func (c *Cluster) AddInstance(cpu, mem int32, attrs ...types.Attribute) string {
	c.t.Helper()
	creds, err := account.CreateInstanceUser(c.ctx, c.Store, c.acct, c.Name, c.Clock.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	api := c.client(creds.AccessKeyID, creds.SecretAccessKey)
	cfg := agentconfig.Default()
	in, err := node.RegistrationInput(cfg, node.Host{CPUs: 1, MemoryMiB: int64(mem) + int64(cfg.ReservedMemoryMiB), Arch: "x86_64"}, c.Name, "")
	if err != nil {
		c.t.Fatal(err)
	}
	in.TotalResources[0].IntegerValue = cpu
	in.TotalResources[1].IntegerValue = mem
	in.Attributes = append(in.Attributes, attrs...)
	arn, err := node.Register(c.ctx, api, in)
	if err != nil {
		c.t.Fatal(err)
	}
	id := arn[strings.LastIndex(arn, "/")+1:]
	if err := c.instances.SetAgentConnected(c.ctx, c.Name, id, true); err != nil {
		c.t.Fatal(err)
	}
	c.agents = append(c.agents, &agent{id: id, arn: arn, api: api, tasks: map[string]*fakeTask{}, port: firstDynamicPort})
	return id
}

// Attr is an instance attribute.
func Attr(name, value string) types.Attribute {
	a := types.Attribute{Name: aws.String(name)}
	if value != "" {
		a.Value = aws.String(value)
	}
	return a
}

// Step plays every agent once, in the order the instances were added: each
// assigned task moves one step on. It reports whether anything changed.
func (c *Cluster) Step() bool {
	c.t.Helper()
	changed := false
	for _, a := range c.agents {
		before := c.revision()
		c.step(a)
		if c.revision() != before {
			changed = true
			c.observe()
		}
	}
	return changed
}

func (c *Cluster) step(a *agent) {
	c.t.Helper()
	assigned, _, err := c.instances.AssignedTasks(c.ctx, c.Name, a.id)
	if err != nil {
		c.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, at := range assigned {
		rec := at.Record.Task
		arn := aws.ToString(rec.TaskArn)
		seen[arn] = true
		ft := a.tasks[arn]
		if ft == nil {
			ft = a.newTask(arn, at.TaskDefinition)
			a.tasks[arn] = ft
		}
		switch {
		case aws.ToString(rec.DesiredStatus) == domain.TaskStatusStopped:
			// Asked to stop: the containers get the stop signal and exit.
			c.submit(a, ft, stateChange(ft, domain.TaskStatusStopped, "", 0))
			delete(a.tasks, arn)
		case ft.phase == phaseNew:
			in := stateChange(ft, domain.TaskStatusPending, "", 0)
			in.PullStartedAt, in.PullStoppedAt = aws.Time(c.Clock.Now()), aws.Time(c.Clock.Now())
			c.submit(a, ft, in)
			ft.phase = phasePending
		case ft.phase == phasePending && ft.failing() != "":
			in := stateChange(ft, domain.TaskStatusStopped, "", 0)
			for i := range in.Containers {
				if aws.ToString(in.Containers[i].ContainerName) == ft.failing() {
					in.Containers[i].Reason = aws.String(ReasonFakeFail)
				}
			}
			in.Reason = aws.String(ReasonFakeFail)
			c.submit(a, ft, in)
			delete(a.tasks, arn)
		case ft.phase == phasePending:
			c.submit(a, ft, stateChange(ft, domain.TaskStatusRunning, "", 0))
			ft.phase = phaseRunning
		case ft.exit != nil:
			c.submit(a, ft, stateChange(ft, domain.TaskStatusStopped, taskrunner.ReasonEssentialExited, *ft.exit))
			delete(a.tasks, arn)
		case !maps.Equal(ft.health, ft.sent):
			// Sent on every change, as the agent sends it over the channel.
			if err := c.instances.ReportHealth(c.ctx, c.Name, a.id, arn, ft.health); err != nil {
				c.t.Fatalf("agent %s: report health of %s: %v", a.id, arn, err)
			}
			ft.sent = maps.Clone(ft.health)
		}
	}
	// Tasks the server no longer assigns (stopped without the agent: a
	// forced deregistration) are forgotten.
	for arn := range a.tasks {
		if !seen[arn] {
			delete(a.tasks, arn)
		}
	}
}

// newTask reads a task's containers from its definition: their behaviour
// (FakeEnv), health checks, runtime ids and host ports.
func (a *agent) newTask(arn string, td types.TaskDefinition) *fakeTask {
	ft := &fakeTask{arn: arn, health: map[string]types.HealthStatus{}}
	for _, def := range td.ContainerDefinitions {
		name := aws.ToString(def.Name)
		sum := sha256.Sum256([]byte(arn + "\x00" + name))
		ctr := fakeContainer{
			name: name, runtimeID: hex.EncodeToString(sum[:]),
			essential: def.Essential == nil || *def.Essential,
			checked:   def.HealthCheck != nil,
		}
		for _, kv := range def.Environment {
			if aws.ToString(kv.Name) == FakeEnv {
				ctr.behaviour = aws.ToString(kv.Value)
			}
		}
		if ctr.checked {
			ft.health[name] = types.HealthStatusHealthy
			if ctr.behaviour == FakeUnhealthy {
				ft.health[name] = types.HealthStatusUnhealthy
			}
		}
		for _, pm := range def.PortMappings {
			host := aws.ToInt32(pm.HostPort)
			switch td.NetworkMode {
			case types.NetworkModeHost:
				host = aws.ToInt32(pm.ContainerPort)
			case types.NetworkModeBridge, "":
				if host == 0 {
					host = a.port
					a.port++
				}
			default:
				continue
			}
			proto := pm.Protocol
			if proto == "" {
				proto = types.TransportProtocolTcp
			}
			ctr.bindings = append(ctr.bindings, types.NetworkBinding{
				BindIP: aws.String("0.0.0.0"), ContainerPort: pm.ContainerPort, HostPort: aws.Int32(host), Protocol: proto,
			})
		}
		ft.containers = append(ft.containers, ctr)
	}
	return ft
}

// failing names the first essential container that cannot start.
func (ft *fakeTask) failing() string {
	for _, ctr := range ft.containers {
		if ctr.essential && ctr.behaviour == FakeFail {
			return ctr.name
		}
	}
	return ""
}

// stateChange is the report of a task reaching status, as the real agent's
// runner builds it: every container with its status, runtime id once
// created and host ports while running; on STOPPED the exit codes of the
// containers that ran (exit for the first essential one when it was
// killed, else 0: they exited on the stop signal).
func stateChange(ft *fakeTask, status, reason string, exit int32) *ecs.SubmitTaskStateChangeInput {
	in := &ecs.SubmitTaskStateChangeInput{Task: aws.String(ft.arn), Status: aws.String(status)}
	if reason != "" {
		in.Reason = aws.String(reason)
	}
	killed := false
	for _, ctr := range ft.containers {
		ch := types.ContainerStateChange{ContainerName: aws.String(ctr.name), Status: aws.String(status)}
		switch {
		case status == domain.TaskStatusRunning:
			ch.RuntimeId = aws.String(ctr.runtimeID)
			ch.NetworkBindings = ctr.bindings
		case status == domain.TaskStatusStopped && ft.phase == phaseRunning:
			ch.RuntimeId = aws.String(ctr.runtimeID)
			code := int32(0)
			if ft.exit != nil && ctr.essential && !killed {
				code, killed = exit, true
			}
			ch.ExitCode = aws.Int32(code)
		case status == domain.TaskStatusStopped && ft.phase == phasePending:
			ch.RuntimeId = aws.String(ctr.runtimeID) // created, never started
		}
		in.Containers = append(in.Containers, ch)
	}
	return in
}

func (c *Cluster) submit(a *agent, ft *fakeTask, in *ecs.SubmitTaskStateChangeInput) {
	c.t.Helper()
	in.Cluster = aws.String(c.Name)
	if aws.ToString(in.Status) == domain.TaskStatusStopped {
		in.ExecutionStoppedAt = aws.Time(c.Clock.Now())
	}
	if _, err := a.api.SubmitTaskStateChange(c.ctx, in); err != nil {
		c.t.Fatalf("agent %s: SubmitTaskStateChange %s %s: %v", a.id, ft.arn, aws.ToString(in.Status), err)
	}
}

// running finds the agent running a task (reported RUNNING, not asked to
// stop); it fails the test when none does.
func (c *Cluster) running(taskARN string) *fakeTask {
	c.t.Helper()
	for _, a := range c.agents {
		for arn, ft := range a.tasks {
			if (arn == taskARN || strings.HasSuffix(arn, "/"+taskARN)) && ft.phase == phaseRunning {
				return ft
			}
		}
	}
	c.t.Fatalf("no agent runs task %s", taskARN)
	return nil
}

// Kill makes a running task's first essential container exit with
// exitCode, as a container killed from outside; its agent reports the task
// STOPPED ("Essential container in task exited") at its next step.
func (c *Cluster) Kill(taskARN string, exitCode int32) {
	c.t.Helper()
	ft := c.running(taskARN)
	ft.exit = aws.Int32(exitCode)
}

// SetHealth makes the health checks of a running task's containers report
// status from the agent's next step on.
func (c *Cluster) SetHealth(taskARN string, status types.HealthStatus) {
	c.t.Helper()
	ft := c.running(taskARN)
	if len(ft.health) == 0 {
		c.t.Fatalf("task %s has no health check", taskARN)
	}
	for name := range ft.health {
		ft.health[name] = status
	}
}
