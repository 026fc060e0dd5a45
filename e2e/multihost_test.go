package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/agent/runtime/containerd"
	"github.com/berth-dev/berth/internal/testimage"
)

// host is a network namespace posing as a second machine: a veth pair to
// the test's host, 10.251.N.2 inside and 10.251.N.1 outside.
type host struct {
	name, inside, outside string
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

func newHost(t *testing.T, n int) host {
	t.Helper()
	h := host{
		name:    fmt.Sprintf("berth-e2e-h%d", n),
		inside:  fmt.Sprintf("10.251.%d.2", n),
		outside: fmt.Sprintf("10.251.%d.1", n),
	}
	veth := fmt.Sprintf("be2e-h%d", n)
	_ = exec.Command("ip", "netns", "del", h.name).Run() // left over from a killed run
	_ = exec.Command("ip", "link", "del", veth).Run()
	run(t, "ip", "netns", "add", h.name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", veth).Run()
		_ = exec.Command("ip", "netns", "del", h.name).Run()
	})
	run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.name)
	run(t, "ip", "addr", "add", h.outside+"/30", "dev", veth)
	run(t, "ip", "link", "set", veth, "up")
	in := []string{"ip", "netns", "exec", h.name}
	run(t, append(in, "ip", "link", "set", "lo", "up")...)
	run(t, append(in, "ip", "addr", "add", h.inside+"/30", "dev", "eth0")...)
	run(t, append(in, "ip", "link", "set", "eth0", "up")...)
	run(t, append(in, "ip", "route", "add", "default", "via", h.outside)...)
	return h
}

var agentUpLine = regexp.MustCompile(`berth agent is up: container instance (\S+) in cluster (\S+)`)

// startAgentIn runs `berth agent` inside h with its own containerd
// namespace and data dir.
func startAgentIn(t *testing.T, h host, token, dataDir string) {
	t.Helper()
	// nsenter enters only the network namespace: `ip netns exec` would
	// also give the agent a private mount namespace, hiding the task
	// namespaces it bind-mounts from containerd.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.name, binary, "agent", "--token", token,
		"--containerd-namespace", h.name, "--config", filepath.Join(dataDir, "ecs.config"), "--log-level", "info")
	cmd.Env = append(os.Environ(), "ECS_DATADIR="+dataDir, "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached", "ECS_CONTAINER_STOP_TIMEOUT=2s")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "ecs.config"), []byte("ECS_CLUSTER=multi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			if m := agentUpLine.FindStringSubmatch(sc.Text()); m != nil {
				up <- m[1]
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("agent in %s:\n%s", h.name, out.String())
		}
	})
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("agent in %s exited: %v\n%s", h.name, err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("agent in %s not up after 60s\n%s", h.name, out.String())
	}
}

// TestTwoAgentsAsTwoHosts registers two agents, each in its own network
// namespace (its own bridge, iptables and 169.254.170.2), into one cluster
// of a server on the test's host; tasks land on both and answer on each
// host's address.
func TestTwoAgentsAsTwoHosts(t *testing.T) {
	addr := requireAgentPrereqs(t)
	hosts := []host{newHost(t, 1), newHost(t, 2)}
	tar := testimage.Build(t, probeRef)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, h := range hosts {
		rt, err := containerd.New(ctx, containerd.Options{Address: addr, Namespace: h.name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Import(ctx, tar); err != nil {
			t.Fatal(err)
		}
		rt.Close()
	}

	// The server listens on host 1's outside address; host 2 reaches it
	// through the test's host, which routes between the two veths.
	l, err := net.Listen("tcp", hosts[0].outside+":0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	b := startCommandEnv(t, "server", t.TempDir(), nil, "--listen", listen)
	b.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", "multi")
	out, err := exec.Command(binary, "token", "create", "--data-dir", b.dataDir, "--cluster", "multi").Output()
	if err != nil {
		t.Fatalf("berth token create: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	for i, h := range hosts {
		startAgentIn(t, h, tok, filepath.Join(t.TempDir(), fmt.Sprint("agent", i)))
	}
	waitFor(t, 60*time.Second, "both agents connected", func() bool {
		var list struct{ ContainerInstanceArns []string }
		res := b.aws("ecs", "list-container-instances", "--cluster", "multi")
		if res.code != 0 || jsonInto(res.stdout, &list) != nil || len(list.ContainerInstanceArns) != 2 {
			return false
		}
		var d struct{ ContainerInstances []containerInstance }
		b.awsJSON(&d, append([]string{"ecs", "describe-container-instances", "--cluster", "multi", "--container-instances"}, list.ContainerInstanceArns...)...)
		return len(d.ContainerInstances) == 2 && d.ContainerInstances[0].AgentConnected && d.ContainerInstances[1].AgentConnected
	})

	// Each task takes a whole CPU: first-fit fills one host, then the other.
	b.registerTaskDef("web", fmt.Sprintf(`[{"name":"web","image":%q,"command":["serve"],"cpu":1024,"memory":32,"essential":true,
		"portMappings":[{"containerPort":8080}]}]`, probeRef))
	per := goNumCPU()
	arns := b.runTask("--cluster", "multi", "--task-definition", "web", "--count", fmt.Sprint(2*per))
	tasks := b.waitTasksIn("multi", 90*time.Second, "every task RUNNING", running, arns...)
	byInstance := map[string]int{}
	for _, tk := range tasks {
		byInstance[tk.ContainerInstanceArn]++
	}
	if len(byInstance) != 2 {
		t.Fatalf("tasks landed on %d instances, want 2: %v", len(byInstance), byInstance)
	}
	// Every task answers on its own host's address and host port.
	insideOf := map[string]string{} // container instance ARN → its host's address
	for _, h := range hosts {
		for _, tk := range tasks {
			port := tk.Containers[0].NetworkBindings[0].HostPort
			if _, known := insideOf[tk.ContainerInstanceArn]; known {
				continue
			}
			if code, _, err := httpGet(fmt.Sprintf("http://%s:%d/", h.inside, port)); err == nil && code == 200 {
				insideOf[tk.ContainerInstanceArn] = h.inside
			}
		}
	}
	for _, tk := range tasks {
		port := tk.Containers[0].NetworkBindings[0].HostPort
		// RUNNING means started, not listening yet: poll.
		waitFor(t, 15*time.Second, fmt.Sprintf("task %s to answer on its host's port %d", tk.TaskArn, port), func() bool {
			addr, ok := insideOf[tk.ContainerInstanceArn]
			if !ok {
				for _, h := range hosts {
					if code, _, err := httpGet(fmt.Sprintf("http://%s:%d/", h.inside, port)); err == nil && code == 200 {
						insideOf[tk.ContainerInstanceArn] = h.inside
						return true
					}
				}
				return false
			}
			code, body, err := httpGet(fmt.Sprintf("http://%s:%d/", addr, port))
			return err == nil && code == 200 && strings.HasPrefix(body, "hello from")
		})
	}
	if len(insideOf) != 2 {
		t.Fatalf("tasks answered on %d hosts, want 2", len(insideOf))
	}
	for _, a := range arns {
		b.awsJSON(nil, "ecs", "stop-task", "--cluster", "multi", "--task", a)
	}
	b.waitTasksIn("multi", 60*time.Second, "every task STOPPED", stopped, arns...)
}
