package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/agent/runtime/containerd"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/internal/testimage"
)

// probeRef is the test image every agent test runs; it is imported into
// containerd, never pulled (the agent runs with prefer-cached).
const probeRef = "berth.test/e2e/probe:1"

// agentEnv is the local agent's configuration in these tests: cached images
// only (no packet leaves the machine), short stop and cleanup waits.
var agentEnv = []string{
	"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
	"ECS_CONTAINER_STOP_TIMEOUT=2s",
	"ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=5m",
}

// requireAgentPrereqs checks what a real agent needs: root, containerd and
// the CNI plugins (skip locally, fail under CI=true).
func requireAgentPrereqs(t *testing.T) string {
	t.Helper()
	cliAvailable(t)
	testenv.Root(t)
	addr := testenv.Containerd(t)
	_, err := os.Stat("/usr/lib/cni/bridge")
	requirePrereq(t, "the CNI plugins in /usr/lib/cni (Debian package containernetworking-plugins)", err == nil)
	return addr
}

// importProbe builds the probe image and imports it into containerd's berth
// namespace, where the agent finds it.
func importProbe(t *testing.T, address string) {
	t.Helper()
	tar := testimage.Build(t, probeRef)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt, err := containerd.New(ctx, containerd.Options{Address: address})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if _, err := rt.Import(ctx, tar); err != nil {
		t.Fatalf("import the probe image: %v", err)
	}
}

// startBerthWithAgent runs `berth up` with its local agent and waits until
// the agent's instance is registered in cluster default and connected.
func startBerthWithAgent(t *testing.T, dataDir string, env ...string) *instance {
	t.Helper()
	b := startCommandEnv(t, "up", dataDir, append(slices.Clone(agentEnv), env...))
	waitFor(t, 60*time.Second, "the local agent to connect", func() bool {
		return len(b.connectedInstances()) == 1
	})
	t.Cleanup(b.stopAllTasks)
	return b
}

// stopAllTasks stops every task still running in cluster default and waits
// until the agent has stopped them, so no container, host port or DNAT rule
// outlives the test (berth is SIGKILLed afterwards).
func (in *instance) stopAllTasks() {
	if in.cmd.ProcessState != nil {
		return
	}
	var list struct{ TaskArns []string }
	res := in.aws("ecs", "list-tasks", "--desired-status", "RUNNING")
	if res.code != 0 || jsonInto(res.stdout, &list) != nil {
		return
	}
	for _, arn := range list.TaskArns {
		in.aws("ecs", "stop-task", "--task", arn)
	}
	if len(list.TaskArns) > 0 {
		in.waitTasks(60*time.Second, "every task STOPPED at the end", stopped, list.TaskArns...)
	}
}

type containerInstance struct {
	ContainerInstanceArn string
	AgentConnected       bool
	Status               string
	RunningTasksCount    int
	PendingTasksCount    int
	RegisteredResources  []struct {
		Name           string
		IntegerValue   int
		StringSetValue []string
	}
}

func (in *instance) connectedInstances() []containerInstance {
	var list struct{ ContainerInstanceArns []string }
	res := in.aws("ecs", "list-container-instances")
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &list) != nil || len(list.ContainerInstanceArns) == 0 {
		return nil
	}
	var d struct{ ContainerInstances []containerInstance }
	in.awsJSON(&d, append([]string{"ecs", "describe-container-instances", "--container-instances"}, list.ContainerInstanceArns...)...)
	var out []containerInstance
	for _, ci := range d.ContainerInstances {
		if ci.AgentConnected {
			out = append(out, ci)
		}
	}
	return out
}

type taskView struct {
	TaskArn              string
	LastStatus           string
	DesiredStatus        string
	HealthStatus         string
	StopCode             string
	StoppedReason        string
	ContainerInstanceArn string
	StartedAt            any
	StoppedAt            any
	Containers           []struct {
		Name            string
		LastStatus      string
		ExitCode        *int
		Reason          string
		RuntimeId       string
		ImageDigest     string
		HealthStatus    string
		NetworkBindings []struct {
			BindIP        string
			ContainerPort int
			HostPort      int
			Protocol      string
		}
	}
}

func (in *instance) describeTasks(cluster string, arns ...string) []taskView {
	in.t.Helper()
	var d struct{ Tasks []taskView }
	in.awsJSON(&d, append([]string{"ecs", "describe-tasks", "--cluster", cluster, "--tasks"}, arns...)...)
	return d.Tasks
}

// waitTasks polls describe-tasks in cluster default until every task
// satisfies cond.
func (in *instance) waitTasks(timeout time.Duration, what string, cond func(taskView) bool, arns ...string) []taskView {
	in.t.Helper()
	return in.waitTasksIn("default", timeout, what, cond, arns...)
}

// waitTasksIn is waitTasks in another cluster.
func (in *instance) waitTasksIn(cluster string, timeout time.Duration, what string, cond func(taskView) bool, arns ...string) []taskView {
	in.t.Helper()
	var last []taskView
	deadline := time.Now().Add(timeout)
	for {
		last = in.describeTasks(cluster, arns...)
		ok := len(last) == len(arns)
		for _, tk := range last {
			ok = ok && cond(tk)
		}
		if ok {
			return last
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(last, "", "  ")
			in.t.Fatalf("timed out after %v waiting for %s:\n%s\nberth output:\n%s", timeout, what, b, in.output.String())
		}
		<-time.After(200 * time.Millisecond)
	}
}

func (in *instance) runTask(args ...string) []string {
	in.t.Helper()
	var out struct {
		Tasks    []struct{ TaskArn string }
		Failures []struct{ Arn, Reason, Detail string }
	}
	in.awsJSON(&out, append([]string{"ecs", "run-task"}, args...)...)
	if len(out.Failures) > 0 {
		in.t.Fatalf("run-task %v: failures %+v", args, out.Failures)
	}
	var arns []string
	for _, tk := range out.Tasks {
		arns = append(arns, tk.TaskArn)
	}
	return arns
}

func (in *instance) registerTaskDef(family string, containers string, extra ...string) {
	in.t.Helper()
	in.awsJSON(nil, append([]string{"ecs", "register-task-definition", "--family", family, "--container-definitions", containers}, extra...)...)
}

func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func running(tk taskView) bool { return tk.LastStatus == "RUNNING" }
func stopped(tk taskView) bool { return tk.LastStatus == "STOPPED" }

// TestAgentRunsTasks is issue 3's end-to-end walk on real containerd with
// the real CLI: a web image with dynamic host ports, stop-task, an
// essential container's exit code, OOM, dependsOn order, an unhealthy
// health check, the task metadata endpoint, and a SIGKILLed agent that
// adopts its tasks.
func TestAgentRunsTasks(t *testing.T) {
	addr := requireAgentPrereqs(t)
	importProbe(t, addr)
	dir := t.TempDir()
	b := startBerthWithAgent(t, dir)

	ci := b.connectedInstances()[0]
	cpu := 0
	for _, r := range ci.RegisteredResources {
		if r.Name == "CPU" {
			cpu = r.IntegerValue
		}
	}
	if want := 1024 * goNumCPU(); cpu != want {
		t.Errorf("registered CPU %d, want cores×1024 = %d", cpu, want)
	}

	web := fmt.Sprintf(`[{"name":"web","image":%q,"command":["serve"],"memory":64,"essential":true,
		"portMappings":[{"containerPort":8080,"hostPort":0,"protocol":"tcp"}]}]`, probeRef)
	b.registerTaskDef("web", web)
	arns := b.runTask("--task-definition", "web", "--count", "3")
	if len(arns) != 3 {
		t.Fatalf("run-task --count 3 gave %d tasks", len(arns))
	}
	tasks := b.waitTasks(90*time.Second, "three web tasks RUNNING", running, arns...)
	ports := map[int]string{}
	for _, tk := range tasks {
		c := tk.Containers[0]
		if len(c.NetworkBindings) != 1 || c.NetworkBindings[0].HostPort == 0 || c.RuntimeId == "" || !strings.HasPrefix(c.ImageDigest, "sha256:") {
			t.Fatalf("container of %s: %+v", tk.TaskArn, c)
		}
		port := c.NetworkBindings[0].HostPort
		if _, dup := ports[port]; dup {
			t.Fatalf("host port %d given twice", port)
		}
		ports[port] = tk.TaskArn
		// RUNNING means the container started, not that the program in it
		// listens yet (as on ECS): poll.
		waitFor(t, 15*time.Second, fmt.Sprintf("task %s to answer on 127.0.0.1:%d", tk.TaskArn, port), func() bool {
			code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port))
			return err == nil && code == 200 && strings.HasPrefix(body, "hello from")
		})
	}

	// The task metadata endpoint answers from inside the task.
	anyPort := tasks[0].Containers[0].NetworkBindings[0].HostPort
	code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/fetch?env=ECS_CONTAINER_METADATA_URI_V4&path=/task", anyPort))
	if err != nil || code != 200 {
		t.Fatalf("metadata endpoint from inside the task: %d %q %v", code, body, err)
	}
	var meta struct {
		TaskARN    string
		Family     string
		Containers []struct{ Name, DockerId string }
	}
	if err := json.Unmarshal([]byte(body), &meta); err != nil || meta.TaskARN != tasks[0].TaskArn || meta.Family != "web" || len(meta.Containers) != 1 {
		t.Fatalf("metadata /task: %v %s", err, body)
	}
	code, body, err = httpGet(fmt.Sprintf("http://127.0.0.1:%d/fetch?env=ECS_CONTAINER_METADATA_URI_V4&path=/stats", anyPort))
	if err != nil || code != 200 || !strings.Contains(body, "memory_stats") {
		t.Fatalf("metadata /stats: %d %q %v", code, body, err)
	}

	// The agent is SIGKILLed (with the server: one process) and restarted:
	// the same tasks run on the same ports, nothing is duplicated.
	if err := b.stop(syscall.SIGKILL); err == nil {
		t.Fatal("berth up exited 0 on SIGKILL")
	}
	b = startBerthWithAgent(t, dir)
	after := b.waitTasks(60*time.Second, "the web tasks RUNNING after the restart", running, arns...)
	for _, tk := range after {
		port := tk.Containers[0].NetworkBindings[0].HostPort
		if ports[port] != tk.TaskArn {
			t.Errorf("task %s moved to port %d after the restart", tk.TaskArn, port)
		}
		if code, _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || code != 200 {
			t.Errorf("task %s on port %d after the restart: %d %v", tk.TaskArn, port, code, err)
		}
	}
	var list struct{ TaskArns []string }
	b.awsJSON(&list, "ecs", "list-tasks", "--desired-status", "RUNNING")
	if len(list.TaskArns) != 3 {
		t.Errorf("after the restart %d tasks desired RUNNING, want 3: %v", len(list.TaskArns), list.TaskArns)
	}
	if n := b.connectedInstances(); len(n) != 1 || n[0].RunningTasksCount != 3 {
		t.Errorf("after the restart: instances %+v, want one with 3 running tasks", n)
	}

	// stop-task → STOPPED with the caller's reason and an exit code.
	b.awsJSON(nil, "ecs", "stop-task", "--task", arns[0], "--reason", "e2e says stop")
	st := b.waitTasks(60*time.Second, "the stopped task STOPPED", stopped, arns[0])[0]
	if st.StopCode != "UserInitiated" || st.StoppedReason != "e2e says stop" || st.Containers[0].ExitCode == nil {
		t.Errorf("stopped task: %+v", st)
	}
	if _, _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", st.Containers[0].NetworkBindings[0].HostPort)); err == nil {
		t.Errorf("the stopped task's port still answers")
	}

	// The container's output stays on the node, readable with berth logs.
	logs, err := exec.Command(binary, "logs", arns[0], "web", "--agent-data-dir", filepath.Join(dir, "agent")).CombinedOutput()
	if err != nil || !strings.Contains(string(logs), "ready") {
		t.Errorf("berth logs of the stopped web task: %v\n%s", err, logs)
	}

	// An essential container exiting 3 stops its task with exit code 3.
	b.registerTaskDef("exit3", fmt.Sprintf(`[{"name":"app","image":%q,"command":["exit","3","1s"],"memory":32,"essential":true}]`, probeRef))
	ex := b.runTask("--task-definition", "exit3")
	got := b.waitTasks(60*time.Second, "exit3 STOPPED", stopped, ex...)[0]
	if c := got.Containers[0]; c.ExitCode == nil || *c.ExitCode != 3 || got.StopCode != "EssentialContainerExited" {
		t.Errorf("exit3: %+v", got)
	}

	// Exceeding the memory limit is reported as ECS reports an OOM kill.
	b.registerTaskDef("oom", fmt.Sprintf(`[{"name":"hog","image":%q,"command":["alloc","256"],"memory":32,"essential":true}]`, probeRef))
	oom := b.runTask("--task-definition", "oom")
	got = b.waitTasks(60*time.Second, "oom STOPPED", stopped, oom...)[0]
	if c := got.Containers[0]; !strings.Contains(c.Reason, "OutOfMemoryError") || c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("oom: %+v", got)
	}

	// dependsOn: app reads the file init wrote; had it started first, cat
	// would exit 1.
	b.registerTaskDef("ordered", fmt.Sprintf(`[
		{"name":"init","image":%[1]q,"command":["touch","/data/ready"],"memory":32,"essential":false,
		 "mountPoints":[{"sourceVolume":"shared","containerPath":"/data"}]},
		{"name":"app","image":%[1]q,"command":["cat","/data/ready"],"memory":32,"essential":true,
		 "mountPoints":[{"sourceVolume":"shared","containerPath":"/data"}],
		 "dependsOn":[{"containerName":"init","condition":"SUCCESS"}]}]`, probeRef),
		"--volumes", `[{"name":"shared"}]`)
	ord := b.runTask("--task-definition", "ordered")
	got = b.waitTasks(60*time.Second, "ordered STOPPED", stopped, ord...)[0]
	for _, c := range got.Containers {
		if c.ExitCode == nil || *c.ExitCode != 0 {
			t.Errorf("ordered: container %s exit %v (%s): dependsOn SUCCESS not observed", c.Name, c.ExitCode, c.Reason)
		}
	}

	// A failing health check turns the task UNHEALTHY.
	b.registerTaskDef("sick", fmt.Sprintf(`[{"name":"app","image":%q,"command":["serve"],"memory":32,"essential":true,
		"healthCheck":{"command":["CMD","/probe","healthcheck","/nonexistent"],"interval":5,"timeout":2,"retries":1,"startPeriod":0}}]`, probeRef))
	sick := b.runTask("--task-definition", "sick")
	got = b.waitTasks(60*time.Second, "sick UNHEALTHY", func(tk taskView) bool { return tk.HealthStatus == "UNHEALTHY" }, sick...)[0]
	if got.Containers[0].HealthStatus != "UNHEALTHY" {
		t.Errorf("sick: %+v", got)
	}
	b.awsJSON(nil, "ecs", "stop-task", "--task", sick[0])
	for _, a := range arns[1:] {
		b.awsJSON(nil, "ecs", "stop-task", "--task", a)
	}
	b.waitTasks(60*time.Second, "every task STOPPED", stopped, append(sick, arns[1:]...)...)
}

// goNumCPU is the CPU count the agent registers (cores×1024 units).
func goNumCPU() int { return goruntime.NumCPU() }

func jsonInto(s string, v any) error { return json.Unmarshal([]byte(s), v) }
