package taskrunner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestHappyPath(t *testing.T) {
	h := newHarness(t, nil)
	h.rep.failNext = 2 // the server is down at first: reports are retried, in order
	web := withPorts(ctr("web", "sleep"), 8080)
	web.DockerLabels = map[string]string{"team": "a", "berth.task-arn": "forged"}
	web.Environment = []types.KeyValuePair{{Name: aws.String("A"), Value: aws.String("1")}}
	web.HealthCheck = &types.HealthCheck{Command: []string{"CMD", "healthcheck", "/probe"}}
	side := nonEssential(ctr("side", "sleep"))
	task := newTask("t1", 10, "RUNNING", web, side)
	h.apply(true, task)

	running := h.waitReport(task.TaskARN, "RUNNING")
	if got := h.rep.statuses(task.TaskARN); !slices.Equal(got, []string{"PENDING", "RUNNING"}) {
		t.Fatalf("reports %v, want PENDING then RUNNING", got)
	}
	pending := h.rep.taskReports(task.TaskARN)[0]
	if pending.PullStartedAt == nil || aws.ToString(pending.Cluster) != "default" {
		t.Errorf("PENDING report: pullStartedAt %v cluster %q", pending.PullStartedAt, aws.ToString(pending.Cluster))
	}
	if running.PullStoppedAt == nil {
		t.Error("RUNNING report without pullStoppedAt")
	}
	rc := reportedContainer(running, "web")
	if aws.ToString(rc.Status) != "RUNNING" || aws.ToString(rc.RuntimeId) == "" || !strings.HasPrefix(aws.ToString(rc.ImageDigest), "sha256:") {
		t.Errorf("web in the RUNNING report: %+v", rc)
	}
	if len(rc.NetworkBindings) != 1 {
		t.Fatalf("web network bindings %+v", rc.NetworkBindings)
	}
	nb := rc.NetworkBindings[0]
	hp := aws.ToInt32(nb.HostPort)
	if aws.ToString(nb.BindIP) != "0.0.0.0" || aws.ToInt32(nb.ContainerPort) != 8080 || hp < int32(portRange.First) || hp > int32(portRange.Last) || nb.Protocol != "tcp" {
		t.Errorf("network binding %+v", nb)
	}

	id := aws.ToString(rc.RuntimeId)
	spec := h.rt.Specs()[id]
	if spec.PidsLimit != DefaultPidsLimit {
		t.Errorf("pids limit %d, want the default %d", spec.PidsLimit, DefaultPidsLimit)
	}
	for k, want := range map[string]string{
		"team": "a", LabelTaskARN: task.TaskARN, LabelContainerName: "web", LabelManaged: "true",
		"com.amazonaws.ecs.cluster": "default", "com.amazonaws.ecs.container-name": "web",
		"com.amazonaws.ecs.task-arn": task.TaskARN, "com.amazonaws.ecs.task-definition-family": "fam",
		"com.amazonaws.ecs.task-definition-version": "4",
	} {
		if spec.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, spec.Labels[k], want)
		}
	}
	view := h.container(task.TaskARN, "web")
	if !slices.Contains(spec.Env, "A=1") || !slices.Contains(spec.Env, "ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/"+view.EndpointID) {
		t.Errorf("env %v", spec.Env)
	}
	if want := filepath.Join(h.dir, "logs", "t1", "web.log"); spec.LogPath != want || view.LogPath != want {
		t.Errorf("log path %q / %q, want %q", spec.LogPath, view.LogPath, want)
	}
	if spec.NetNSPath != "/run/netns/"+id || view.IPv4 == "" {
		t.Errorf("netns %q ipv4 %q", spec.NetNSPath, view.IPv4)
	}
	if spec.StopTimeout != 100*time.Millisecond {
		t.Errorf("stop timeout %v", spec.StopTimeout)
	}
	if arn, name, ok := h.eng.LookupEndpoint(view.EndpointID); !ok || arn != task.TaskARN || name != "web" {
		t.Errorf("LookupEndpoint = %q %q %v", arn, name, ok)
	}
	if _, _, ok := h.eng.LookupEndpoint("0123456789abcdef0123456789abcdef"); ok {
		t.Error("LookupEndpoint found an unknown id")
	}
	if view.Health != HealthUnknown || view.ContainerARN == "" || !view.Essential || h.container(task.TaskARN, "side").Essential {
		t.Errorf("view %+v", view)
	}
	if c := h.eng.Counts(); c.Running != 1 || c.Pending+c.Stopping+c.Stopped != 0 {
		t.Errorf("counts %+v", c)
	}
	// The health check runs on the clock.
	h.advanceUntil("web healthy", 10*time.Second, func() bool { return h.container(task.TaskARN, "web").Health == HealthHealthy })
	h.waitFor("health report", func() bool { _, ok := h.health.first(task.TaskARN, "web", HealthHealthy); return ok })
	h.health.mu.Lock()
	n := len(h.health.msgs)
	h.health.mu.Unlock()
	h.eng.ResendHealth(context.Background())
	h.waitFor("health resent", func() bool { h.health.mu.Lock(); defer h.health.mu.Unlock(); return len(h.health.msgs) > n })
}

func TestEssentialExit(t *testing.T) {
	tests := []struct {
		name     string
		main     types.ContainerDefinition
		wantCode int32
		reason   string
	}{
		{"exit code", ctr("main", "exit", "3", "100ms"), 3, ""},
		{"oom", func() types.ContainerDefinition {
			c := ctr("main", "alloc", "100")
			c.Memory = aws.Int32(64)
			return c
		}(), 137, ReasonOOM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			task := newTask("t1", 1, "RUNNING", tt.main, ctr("side", "sleep"))
			h.apply(false, task)
			stopped := h.waitReport(task.TaskARN, "STOPPED")
			if aws.ToString(stopped.Reason) != ReasonEssentialExited || stopped.ExecutionStoppedAt == nil {
				t.Errorf("STOPPED reason %q executionStoppedAt %v", aws.ToString(stopped.Reason), stopped.ExecutionStoppedAt)
			}
			m := reportedContainer(stopped, "main")
			if aws.ToString(m.Status) != "STOPPED" || aws.ToInt32(m.ExitCode) != tt.wantCode || aws.ToString(m.Reason) != tt.reason {
				t.Errorf("main: status %s exit %d reason %q", aws.ToString(m.Status), aws.ToInt32(m.ExitCode), aws.ToString(m.Reason))
			}
			s := reportedContainer(stopped, "side")
			if aws.ToString(s.Status) != "STOPPED" || s.ExitCode == nil || *s.ExitCode != 0 {
				t.Errorf("side was not stopped with SIGTERM: %+v", s)
			}
			st, err := h.inspect(aws.ToString(s.RuntimeId))
			if err != nil || st.State != runtime.StateStopped {
				t.Errorf("side container: %+v %v", st, err)
			}
		})
	}
}

func TestNonEssentialExitIsReported(t *testing.T) {
	h := newHarness(t, nil)
	task := newTask("t1", 1, "RUNNING", ctr("main", "sleep"), nonEssential(ctr("job", "exit", "5", "50ms")))
	h.apply(false, task)
	h.waitFor("job report", func() bool { return len(h.rep.containerReports(task.TaskARN)) == 1 })
	c := h.rep.containerReports(task.TaskARN)[0]
	if aws.ToString(c.ContainerName) != "job" || aws.ToString(c.Status) != "STOPPED" || aws.ToInt32(c.ExitCode) != 5 {
		t.Errorf("container report %+v", c)
	}
	if v := h.view(task.TaskARN); v.KnownStatus != "RUNNING" {
		t.Errorf("task is %s after a non-essential exit", v.KnownStatus)
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(*Config)
		def    types.ContainerDefinition
		prefix string
	}{
		{"pull", nil, func() types.ContainerDefinition {
			c := withPorts(ctr("main", "sleep"), 80)
			c.Image = aws.String("127.0.0.1:1/nope:latest")
			return c
		}(), "CannotPullContainerError: "},
		{"privileged", func(c *Config) { c.PrivilegedDisabled = true }, func() types.ContainerDefinition {
			c := ctr("main", "sleep")
			c.Privileged = aws.Bool(true)
			return c
		}(), "CannotCreateContainerError: container main: privileged containers are disabled"},
		{"s3 environment file", nil, func() types.ContainerDefinition {
			c := ctr("main", "sleep")
			c.EnvironmentFiles = []types.EnvironmentFile{{Type: types.EnvironmentFileTypeS3, Value: aws.String("arn:aws:s3:::b/k.env")}}
			return c
		}(), "ResourceInitializationError: failed to read environment files of container main"},
		{"start", nil, func() types.ContainerDefinition {
			c := ctr("main")
			c.EntryPoint = []string{"/nonexistent"}
			return c
		}(), "CannotStartContainerError: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.Pull.PlainHTTPHosts = []string{"127.0.0.1:1"}
				if tt.adjust != nil {
					tt.adjust(c)
				}
			})
			task := newTask("t1", 1, "RUNNING", tt.def)
			h.apply(false, task)
			stopped := h.waitReport(task.TaskARN, "STOPPED")
			if got := h.rep.statuses(task.TaskARN); slices.Contains(got, "RUNNING") {
				t.Errorf("reports %v", got)
			}
			m := reportedContainer(stopped, "main")
			if !strings.HasPrefix(aws.ToString(m.Reason), tt.prefix) || !strings.HasPrefix(aws.ToString(stopped.Reason), tt.prefix) {
				t.Errorf("reasons: container %q task %q, want prefix %q", aws.ToString(m.Reason), aws.ToString(stopped.Reason), tt.prefix)
			}
			if aws.ToString(m.Status) != "STOPPED" {
				t.Errorf("container status %s", aws.ToString(m.Status))
			}
		})
	}
}

func TestDependsOn(t *testing.T) {
	created := func(h *harness, arn, name string) (runtime.ContainerStatus, bool) {
		st, err := h.inspect(h.container(arn, name).RuntimeID)
		return st, err == nil
	}
	t.Run("START", func(t *testing.T) {
		h := newHarness(t, nil)
		task := newTask("t1", 1, "RUNNING", dependsOn(ctr("app", "sleep"), "db", types.ContainerConditionStart), ctr("db", "sleep"))
		h.apply(false, task)
		h.waitReport(task.TaskARN, "RUNNING")
		app, _ := created(h, task.TaskARN, "app")
		db, _ := created(h, task.TaskARN, "db")
		if app.CreatedAt.Before(db.CreatedAt) {
			t.Errorf("app created at %v, before db at %v", app.CreatedAt, db.CreatedAt)
		}
		// Dependents stop first.
		h.apply(false, newTask("t1", 2, "STOPPED"))
		h.waitReport(task.TaskARN, "STOPPED")
		app, _ = created(h, task.TaskARN, "app")
		db, _ = created(h, task.TaskARN, "db")
		if db.ExitedAt.Before(app.ExitedAt) {
			t.Errorf("db stopped at %v, before app at %v", db.ExitedAt, app.ExitedAt)
		}
	})
	for _, cond := range []types.ContainerCondition{types.ContainerConditionComplete, types.ContainerConditionSuccess} {
		t.Run(string(cond), func(t *testing.T) {
			h := newHarness(t, nil)
			task := newTask("t1", 1, "RUNNING", dependsOn(ctr("app", "sleep"), "init", cond), nonEssential(ctr("init", "exit", "0", "100ms")))
			h.apply(false, task)
			running := h.waitReport(task.TaskARN, "RUNNING")
			app, _ := created(h, task.TaskARN, "app")
			init, _ := created(h, task.TaskARN, "init")
			if init.State != runtime.StateStopped || app.CreatedAt.Before(init.ExitedAt) {
				t.Errorf("app created at %v; init %s, exited at %v", app.CreatedAt, init.State, init.ExitedAt)
			}
			if c := reportedContainer(running, "init"); aws.ToString(c.Status) != "STOPPED" || aws.ToInt32(c.ExitCode) != 0 {
				t.Errorf("init in the RUNNING report: %+v", c)
			}
		})
	}
	t.Run("SUCCESS not met", func(t *testing.T) {
		h := newHarness(t, nil)
		task := newTask("t1", 1, "RUNNING", dependsOn(ctr("app", "sleep"), "init", types.ContainerConditionSuccess), nonEssential(ctr("init", "exit", "1")))
		h.apply(false, task)
		stopped := h.waitReport(task.TaskARN, "STOPPED")
		if _, ok := created(h, task.TaskARN, "app"); ok {
			t.Error("app was created")
		}
		if r := aws.ToString(reportedContainer(stopped, "app").Reason); !strings.Contains(r, "did not exit successfully (exit code 1)") {
			t.Errorf("app reason %q", r)
		}
	})
	t.Run("HEALTHY", func(t *testing.T) {
		h := newHarness(t, nil)
		db := ctr("db", "sleep")
		db.HealthCheck = &types.HealthCheck{Command: []string{"CMD", "healthcheck", "/probe"}, Interval: aws.Int32(5)}
		task := newTask("t1", 1, "RUNNING", dependsOn(ctr("app", "sleep"), "db", types.ContainerConditionHealthy), db)
		h.apply(false, task)
		h.waitFor("db running", func() bool { return h.container(task.TaskARN, "db").KnownStatus == "RUNNING" })
		if _, ok := created(h, task.TaskARN, "app"); ok {
			t.Fatal("app created before db is healthy")
		}
		h.advanceUntil("app running", time.Second, func() bool { return h.container(task.TaskARN, "app").KnownStatus == "RUNNING" })
		healthyAt, ok := h.health.first(task.TaskARN, "db", HealthHealthy)
		app, _ := created(h, task.TaskARN, "app")
		if !ok || app.CreatedAt.Before(healthyAt) {
			t.Errorf("app created at %v, db healthy at %v (%v)", app.CreatedAt, healthyAt, ok)
		}
	})
	t.Run("start timeout", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.StartTimeout = time.Minute })
		db := ctr("db", "sleep")
		db.HealthCheck = &types.HealthCheck{Command: []string{"CMD", "healthcheck", "/missing"}, Interval: aws.Int32(5)}
		task := newTask("t1", 1, "RUNNING", dependsOn(ctr("app", "sleep"), "db", types.ContainerConditionHealthy), db)
		h.apply(false, task)
		h.waitFor("db running", func() bool { return h.container(task.TaskARN, "db").KnownStatus == "RUNNING" })
		h.advanceUntil("task stopped", 10*time.Second, func() bool { return len(h.rep.statuses(task.TaskARN)) == 2 })
		stopped := h.waitReport(task.TaskARN, "STOPPED")
		if r := aws.ToString(stopped.Reason); !strings.Contains(r, "timed out after 1m0s waiting for its dependencies") {
			t.Errorf("reason %q", r)
		}
	})
}

func TestDesiredStoppedEscalates(t *testing.T) {
	h := newHarness(t, nil)
	task := newTask("t1", 1, "RUNNING", ctr("main", "ignore-sigterm"), nonEssential(ctr("polite", "sleep")))
	h.apply(false, task)
	h.waitReport(task.TaskARN, "RUNNING")
	stop := task
	stop.Revision, stop.DesiredStatus = 2, "STOPPED"
	h.apply(false, stop)
	stopped := h.waitReport(task.TaskARN, "STOPPED")
	if m := reportedContainer(stopped, "main"); aws.ToInt32(m.ExitCode) != 137 {
		t.Errorf("main exit %d, want 137 (SIGKILL after the stop timeout)", aws.ToInt32(m.ExitCode))
	}
	if p := reportedContainer(stopped, "polite"); p.ExitCode == nil || *p.ExitCode != 0 {
		t.Errorf("polite %+v", p)
	}
	if stopped.ExecutionStoppedAt == nil || stopped.Reason != nil {
		t.Errorf("executionStoppedAt %v reason %q", stopped.ExecutionStoppedAt, aws.ToString(stopped.Reason))
	}
}

func TestRevisions(t *testing.T) {
	h := newHarness(t, nil)
	task := newTask("t1", 5, "RUNNING", ctr("main", "exit", "0", "150ms"))
	h.apply(false, task)
	h.waitReport(task.TaskARN, "RUNNING")
	// The same revision again and an older one that says STOPPED: ignored.
	old := task
	old.Revision, old.DesiredStatus = 3, "STOPPED"
	h.apply(false, task, old)
	h.apply(true, task)
	if v := h.view(task.TaskARN); v.DesiredStatus != "RUNNING" || v.KnownStatus == "STOPPING" {
		t.Errorf("an old revision was acted on: %+v", v)
	}
	// The container exits; newer revisions asking for RUNNING do not
	// start the task again.
	h.waitReport(task.TaskARN, "STOPPED")
	for rev := int64(6); rev < 9; rev++ {
		again := task
		again.Revision = rev
		h.apply(true, again)
	}
	if n := len(h.rt.Specs()); n != 1 {
		t.Errorf("%d containers created, want 1", n)
	}
	if got := h.rep.statuses(task.TaskARN); !slices.Equal(got, []string{"PENDING", "RUNNING", "STOPPED"}) {
		t.Errorf("reports %v", got)
	}
}

func TestStoppedBeforeStart(t *testing.T) {
	h := newHarness(t, nil)
	task := newTask("t1", 2, "STOPPED", ctr("main", "sleep"))
	h.apply(false, task)
	h.waitReport(task.TaskARN, "STOPPED")
	if got := h.rep.statuses(task.TaskARN); !slices.Equal(got, []string{"STOPPED"}) {
		t.Errorf("reports %v", got)
	}
	if n := len(h.rt.Specs()); n != 0 {
		t.Errorf("%d containers created", n)
	}
}

func TestFullSyncStopsAbsentTasks(t *testing.T) {
	h := newHarness(t, nil)
	a := newTask("a", 1, "RUNNING", ctr("main", "sleep"))
	b := newTask("b", 1, "RUNNING", ctr("main", "sleep"))
	h.apply(true, a, b)
	h.waitReport(a.TaskARN, "RUNNING")
	h.waitReport(b.TaskARN, "RUNNING")
	h.apply(true, a)
	stopped := h.waitReport(b.TaskARN, "STOPPED")
	if aws.ToString(stopped.Reason) != ReasonNotAssigned {
		t.Errorf("reason %q", aws.ToString(stopped.Reason))
	}
	// Absent again: a stopped task is not stopped (or reported) twice.
	h.apply(true, a)
	h.apply(true)
	h.waitReport(a.TaskARN, "STOPPED")
	if got := h.rep.statuses(b.TaskARN); !slices.Equal(got, []string{"PENDING", "RUNNING", "STOPPED"}) {
		t.Errorf("b reports %v", got)
	}
}

func TestDynamicPortsNeverCollide(t *testing.T) {
	h := newHarness(t, nil)
	var tasks []string
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
		task := newTask(id, 1, "RUNNING", withPorts(ctr("main", "sleep"), 80, 443))
		tasks = append(tasks, task.TaskARN)
		h.apply(false, task)
	}
	seen := map[int32]string{}
	for _, arn := range tasks {
		running := h.waitReport(arn, "RUNNING")
		for _, nb := range reportedContainer(running, "main").NetworkBindings {
			p := aws.ToInt32(nb.HostPort)
			if other, dup := seen[p]; dup {
				t.Errorf("host port %d given to %s and %s", p, other, arn)
			}
			seen[p] = arn
		}
	}
	if len(seen) != 10 {
		t.Fatalf("%d host ports, want 10", len(seen))
	}
	// The range (10 ports) is full: the next task fails to start.
	full := newTask("t6", 1, "RUNNING", withPorts(ctr("main", "sleep"), 80))
	h.apply(false, full)
	stopped := h.waitReport(full.TaskARN, "STOPPED")
	if r := aws.ToString(stopped.Reason); !strings.HasPrefix(r, "ResourceInitializationError: unable to allocate host ports") {
		t.Errorf("reason %q", r)
	}
	// Static ports are honoured and checked against the dynamic ones.
	static := withPorts(ctr("main", "sleep"), 80)
	static.PortMappings[0].HostPort = aws.Int32(8080)
	st := newTask("t7", 1, "RUNNING", static)
	h.apply(false, st)
	nb := reportedContainer(h.waitReport(st.TaskARN, "RUNNING"), "main").NetworkBindings
	if len(nb) != 1 || aws.ToInt32(nb[0].HostPort) != 8080 {
		t.Errorf("static binding %+v", nb)
	}
}

func TestHostModePorts(t *testing.T) {
	h := newHarness(t, nil)
	task := newTask("t1", 1, "RUNNING", withPorts(ctr("main", "sleep"), 9000))
	task.TaskDefinition.NetworkMode = types.NetworkModeHost
	task.TaskDefinition.ContainerDefinitions[0].Hostname = aws.String("ignored")
	h.apply(false, task)
	running := h.waitReport(task.TaskARN, "RUNNING")
	c := reportedContainer(running, "main")
	if len(c.NetworkBindings) != 1 || aws.ToInt32(c.NetworkBindings[0].HostPort) != 9000 {
		t.Errorf("bindings %+v", c.NetworkBindings)
	}
	if spec := h.rt.Specs()[aws.ToString(c.RuntimeId)]; spec.NetNSPath != runtime.NetNSHost || spec.Hostname != "" {
		t.Errorf("netns %q hostname %q", spec.NetNSPath, spec.Hostname)
	}
}

func TestCleanup(t *testing.T) {
	h := newHarness(t, nil)
	main := withPorts(ctr("main", "exit", "0", "50ms"), 80)
	main.MountPoints = []types.MountPoint{{SourceVolume: aws.String("scratch"), ContainerPath: aws.String("/data")}}
	task := newTask("t1", 1, "RUNNING", main)
	task.TaskDefinition.Volumes = []types.Volume{{Name: aws.String("scratch")}}
	h.apply(false, task)
	stopped := h.waitReport(task.TaskARN, "STOPPED")
	id := aws.ToString(reportedContainer(stopped, "main").RuntimeId)
	vol := volumeDir(h.dir, task.TaskARN, "scratch")
	if spec := h.rt.Specs()[id]; len(spec.Mounts) != 1 || spec.Mounts[0].Source != vol || spec.Mounts[0].Destination != "/data" {
		t.Errorf("mounts %+v", spec.Mounts)
	}
	if _, err := os.Stat(vol); err != nil {
		t.Errorf("volume directory: %v", err)
	}
	// Ports and network go when the task stops; the container stays until
	// the wait has passed.
	h.waitFor("stopped in the view", func() bool { return h.eng.Counts().Stopped == 1 })
	h.waitFor("ports released at the stop", func() bool { return len(h.ports.Allocations()) == 0 })
	h.waitFor("network detached at the stop", func() bool { return !h.net.isAttached(id) })
	if _, err := h.inspect(id); err != nil {
		t.Fatalf("container removed before the cleanup wait: %v", err)
	}
	h.clk.Advance(time.Hour)
	h.waitFor("cleanup", func() bool { _, ok := h.eng.Task(task.TaskARN); return !ok })
	if _, err := h.inspect(id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("container still there: %v", err)
	}
	if h.net.isAttached(id) {
		t.Error("network still attached")
	}
	if a := h.ports.Allocations(); len(a) != 0 {
		t.Errorf("ports still allocated: %v", a)
	}
	if _, ok, _ := h.db.Task(task.TaskARN); ok {
		t.Error("state record still there")
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Errorf("volume directory still there: %v", err)
	}
	logs, err := h.eng.LogPaths(task.TaskARN)
	if err != nil || logs["main"] != LogPath(h.dir, task.TaskARN, "main") {
		t.Errorf("LogPaths = %v, %v", logs, err)
	}
	if _, err := os.Stat(logs["main"]); err != nil {
		t.Errorf("log file: %v", err)
	}
	// A late Sync does not bring a cleaned-up task back.
	late := task
	late.Revision = 9
	h.apply(true, late)
	if _, ok := h.eng.Task(task.TaskARN); ok {
		t.Error("cleaned-up task started again")
	}
}

func TestRestartAdoption(t *testing.T) {
	h := newHarness(t, nil)
	web := withPorts(ctr("web", "sleep"), 8080)
	task := newTask("t1", 1, "RUNNING", web, nonEssential(ctr("side", "sleep")))
	other := newTask("t2", 1, "RUNNING", ctr("main", "sleep"))
	h.apply(true, task, other)
	h.waitReport(task.TaskARN, "RUNNING")
	h.waitReport(other.TaskARN, "RUNNING")
	before := h.view(task.TaskARN)
	ports := h.ports.Allocations()

	// While the agent is down: t2's essential container dies, and a
	// container labelled as berth's appears that no task owns.
	h.eng.Close()
	ctx := context.Background()
	if err := h.rt.Stop(ctx, h.container(other.TaskARN, "main").RuntimeID, time.Second); err != nil {
		t.Fatal(err)
	}
	orphan := runtime.ContainerSpec{ID: "stray", Image: "probe", Command: []string{"sleep"},
		Labels: map[string]string{LabelManaged: "true", LabelTaskARN: taskARN("gone")}}
	if _, err := h.rt.EnsureImage(ctx, "probe", runtime.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Start(ctx, "stray"); err != nil {
		t.Fatal(err)
	}
	h.restart()

	after := h.view(task.TaskARN)
	for i, c := range after.Containers {
		b := before.Containers[i]
		if c.RuntimeID != b.RuntimeID || c.EndpointID != b.EndpointID || !slices.Equal(c.Ports, b.Ports) {
			t.Errorf("container %s: before %+v, after %+v", c.Name, b, c)
		}
	}
	if got := h.ports.Allocations(); len(got[task.TaskARN]) != 1 || got[task.TaskARN][0] != ports[task.TaskARN][0] {
		t.Errorf("allocations after restart %v, before %v", got, ports)
	}
	stopped := h.waitReport(other.TaskARN, "STOPPED")
	if aws.ToString(stopped.Reason) != ReasonEssentialExited {
		t.Errorf("t2 reason %q", aws.ToString(stopped.Reason))
	}
	h.waitFor("orphan removed", func() bool { _, err := h.inspect("stray"); return errors.Is(err, errdefs.ErrNotFound) })
	// The same Sync again after the reconnect: nothing new is created.
	h.apply(true, task)
	h.waitFor("t1 running again in the view", func() bool { return h.view(task.TaskARN).KnownStatus == "RUNNING" })
	if n := len(h.rt.Specs()); n != 4 { // web, side, main, stray
		t.Errorf("%d containers created in all, want 4", n)
	}
	// The adopted containers are watched: an exit now stops the task.
	if err := h.rt.Stop(ctx, after.Containers[0].RuntimeID, time.Second); err != nil {
		t.Fatal(err)
	}
	stopped = h.waitReport(task.TaskARN, "STOPPED")
	if aws.ToString(stopped.Reason) != ReasonEssentialExited {
		t.Errorf("t1 reason %q", aws.ToString(stopped.Reason))
	}
	// A new task after the restart never gets an adopted task's port.
	fresh := newTask("t3", 1, "RUNNING", withPorts(ctr("main", "sleep"), 80, 81, 82, 83, 84, 85, 86, 87, 88))
	h.apply(false, fresh)
	h.waitReport(fresh.TaskARN, "RUNNING")
}

func TestRestartResumesCleanup(t *testing.T) {
	h := newHarness(t, nil)
	task := newTask("t1", 1, "RUNNING", withPorts(ctr("main", "exit", "0", "20ms"), 80))
	h.apply(false, task)
	stopped := h.waitReport(task.TaskARN, "STOPPED")
	id := aws.ToString(reportedContainer(stopped, "main").RuntimeId)
	h.waitFor("stop acknowledged", func() bool {
		rec, ok, _ := h.db.Task(task.TaskARN)
		r, err := fromState(rec)
		return ok && err == nil && !r.StopReportedAt.IsZero()
	})
	h.restart()
	if got := h.rep.statuses(task.TaskARN); !slices.Equal(got, []string{"PENDING", "RUNNING", "STOPPED"}) {
		t.Errorf("reports %v", got)
	}
	h.clk.Advance(time.Hour)
	h.waitFor("cleanup after the restart", func() bool { _, err := h.inspect(id); return errors.Is(err, errdefs.ErrNotFound) })
	h.waitFor("ports released", func() bool { return len(h.ports.Allocations()) == 0 })
	if h.net.isAttached(id) {
		t.Error("network still attached")
	}
}

// TestRestartAfterLostWrites imitates crashes between a runtime call and
// the state write that records it: the runtime has more than the record
// says, and the restarted agent must adopt rather than duplicate or lose.
func TestRestartAfterLostWrites(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*taskRec)
		check func(t *testing.T, h *harness, task string, before TaskView)
	}{
		{"created and started, unrecorded", func(r *taskRec) {
			r.Containers[0].Status = ctrNone
			r.Phase, r.StartedAt = phasePending, time.Time{}
		}, func(t *testing.T, h *harness, task string, before TaskView) {
			h.waitFor("running again", func() bool { return h.view(task).KnownStatus == "RUNNING" })
			if n := len(h.rt.Specs()); n != 1 {
				t.Errorf("%d containers created, want 1", n)
			}
		}},
		{"ports reserved, unrecorded", func(r *taskRec) {
			// The crash came after the reservation was written and before
			// the record said so; nothing was created yet.
			r.Phase, r.StartedAt, r.PortsAllocated = phasePending, time.Time{}, false
			for _, c := range r.Containers {
				c.Status, c.Ports, c.Attachment, c.ExitCode = ctrNone, nil, nil, nil
			}
		}, func(t *testing.T, h *harness, task string, before TaskView) {
			running := h.waitReport(task, "RUNNING")
			nb := reportedContainer(running, "main").NetworkBindings
			a := h.ports.Allocations()[task]
			if len(nb) != 1 || len(a) != 1 || a[0].HostPort != uint16(aws.ToInt32(nb[0].HostPort)) {
				t.Errorf("bindings %+v, allocations %v", nb, a)
			}
		}},
		{"running container removed", func(r *taskRec) {}, func(t *testing.T, h *harness, task string, before TaskView) {
			stopped := h.waitReport(task, "STOPPED")
			if c := reportedContainer(stopped, "main"); aws.ToString(c.Reason) != reasonGone {
				t.Errorf("reason %q", aws.ToString(c.Reason))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			task := newTask("t1", 1, "RUNNING", withPorts(ctr("main", "sleep"), 80))
			h.apply(false, task)
			h.waitReport(task.TaskARN, "RUNNING")
			before := h.view(task.TaskARN)
			h.eng.Close()
			st, _, err := h.db.Task(task.TaskARN)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := fromState(st)
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(rec)
			if st, err = rec.toState(); err != nil {
				t.Fatal(err)
			}
			if err := h.db.PutTask(st); err != nil {
				t.Fatal(err)
			}
			if tt.name != "created and started, unrecorded" {
				ctx := context.Background()
				id := before.Containers[0].RuntimeID
				if err := h.rt.Stop(ctx, id, time.Second); err != nil {
					t.Fatal(err)
				}
				if err := h.rt.Remove(ctx, id); err != nil {
					t.Fatal(err)
				}
				if err := h.net.Detach(ctx, network.Attachment{ID: id}); err != nil {
					t.Fatal(err)
				}
			}
			h.restart()
			tt.check(t, h, task.TaskARN, before)
		})
	}
}

// TestCreateWhileAttaching: with a network that prepares namespaces, a
// bridge container is created in the prepared namespace while it is wired,
// and the attachment is recorded; a wiring failure fails the task.
func TestCreateWhileAttaching(t *testing.T) {
	pn := &preparingNet{fakeNet: newFakeNet()}
	h := newHarness(t, func(c *Config) { c.Network = pn })
	task := newTask("t1", 1, "RUNNING", withPorts(ctr("web", "serve"), 8080))
	h.apply(false, task)
	running := h.waitReport(task.TaskARN, "RUNNING")
	id := aws.ToString(reportedContainer(running, "web").RuntimeId)
	if spec := h.rt.Specs()[id]; spec.NetNSPath != "/run/netns/"+id {
		t.Errorf("created in %q, want the prepared namespace", spec.NetNSPath)
	}
	pn.mu.Lock()
	prepared := slices.Clone(pn.prepared)
	pn.mu.Unlock()
	if len(prepared) != 1 || prepared[0] != id || !pn.isAttached(id) {
		t.Errorf("prepared %v, attached %v", prepared, pn.isAttached(id))
	}
	if v, _ := h.eng.Task(task.TaskARN); v.Containers[0].IPv4 == "" {
		t.Errorf("attachment not recorded: %+v", v.Containers[0])
	}

	pn.mu.Lock()
	pn.failAttach = errors.New("CNI ADD: no addresses left")
	pn.mu.Unlock()
	bad := newTask("t2", 1, "RUNNING", withPorts(ctr("web", "serve"), 8080))
	h.apply(false, bad)
	stopped := h.waitReport(bad.TaskARN, "STOPPED")
	if r := aws.ToString(reportedContainer(stopped, "web").Reason); !strings.Contains(r, "ResourceInitializationError") || !strings.Contains(r, "no addresses left") {
		t.Errorf("reason %q", r)
	}
}
