package simulate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/node"
	"github.com/berth-dev/berth/internal/agent/simulate"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/server"
)

// startServer runs a whole control plane (embedded etcd included) on a
// free loopback port and returns it with an admin ECS client.
func startServer(t *testing.T) (*server.Server, aws.Credentials, *ecs.Client) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
	})
	id, secret, err := account.ReadCredentials(srv.Files().Credentials)
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	client := ecs.New(ecs.Options{
		Region: srv.Account().Region, BaseEndpoint: aws.String(srv.Endpoint()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
	})
	return srv, creds, client
}

// createToken asks the server for a join token as `berth token create` does.
func createToken(t *testing.T, srv *server.Server, admin aws.Credentials) string {
	t.Helper()
	body := []byte(`{"cluster":"default"}`)
	req, _ := http.NewRequest(http.MethodPost, srv.Endpoint()+jointoken.TokensPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), admin, req, hex.EncodeToString(sum[:]), jointoken.SigningName, srv.Account().Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Token string }
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.Token == "" {
		t.Fatalf("create token: %d %s", resp.StatusCode, b)
	}
	return out.Token
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func describeInstances(t *testing.T, api *ecs.Client, arns []string) []types.ContainerInstance {
	t.Helper()
	out, err := api.DescribeContainerInstances(context.Background(), &ecs.DescribeContainerInstancesInput{ContainerInstances: arns})
	if err != nil {
		t.Fatal(err)
	}
	return out.ContainerInstances
}

func describeTasks(t *testing.T, api *ecs.Client, arns []string) []types.Task {
	t.Helper()
	out, err := api.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Tasks: arns})
	if err != nil {
		t.Fatal(err)
	}
	return out.Tasks
}

// TestSimulationAgainstServer runs 20 simulated instances against a whole
// server: they register with their attributes and connect; RunTask
// count=10 reaches RUNNING with fake runtime ids, the static host port and
// health; StopTask reaches STOPPED; shutting down deregisters everything.
func TestSimulationAgainstServer(t *testing.T) {
	const n = 20
	srv, admin, api := startServer(t)
	id, err := node.Join(context.Background(), createToken(t, srv, admin))
	if err != nil {
		t.Fatal(err)
	}
	acfg := agentconfig.Default()
	acfg.ReservedMemoryMiB = 48
	acfg.InstanceAttributes = map[string]string{"stack": "blue"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := simulate.Start(ctx, simulate.Config{
		Agent: acfg, Identity: id, Count: n, CPU: 1536, MemoryMiB: 2048,
		Host:          &node.Host{CPUs: 64, MemoryMiB: 1 << 20, Arch: "x86_64"},
		StatsInterval: -1, Workers: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	arns := sim.Instances()
	if len(arns) != n || sim.Cluster() != "default" {
		t.Fatalf("%d instances in cluster %q", len(arns), sim.Cluster())
	}
	poll(t, "every instance connected", func() bool {
		for _, ci := range describeInstances(t, api, arns) {
			if !ci.AgentConnected {
				return false
			}
		}
		return sim.Stats().Connected == n
	})
	indexes, zones := map[string]bool{}, map[string]int{}
	for _, ci := range describeInstances(t, api, arns) {
		attrs := map[string]string{}
		for _, a := range ci.Attributes {
			attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
		}
		indexes[attrs[simulate.IndexAttribute]] = true
		zones[attrs[simulate.ZoneAttribute]]++
		if attrs["stack"] != "blue" || attrs["ecs.os-type"] != "linux" {
			t.Errorf("%s: attributes %v lack ECS_INSTANCE_ATTRIBUTES or capabilities", aws.ToString(ci.ContainerInstanceArn), attrs)
		}
		for _, r := range ci.RegisteredResources {
			if aws.ToString(r.Name) == "CPU" && r.IntegerValue != 1536 || aws.ToString(r.Name) == "MEMORY" && r.IntegerValue != 2048-48 {
				t.Errorf("registered %s = %d", aws.ToString(r.Name), r.IntegerValue)
			}
		}
	}
	for i := range n {
		if !indexes[strconv.Itoa(i)] {
			t.Errorf("no instance has %s=%d: %v", simulate.IndexAttribute, i, indexes)
		}
	}
	if zones["us-east-1a"] != 7 || zones["us-east-1b"] != 7 || zones["us-east-1c"] != 6 {
		t.Errorf("zones %v, want 7/7/6 over us-east-1a..c", zones)
	}

	// A static host port puts at most one task on an instance.
	if _, err := api.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("nginx"), Memory: aws.Int32(64),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080)}},
			HealthCheck:  &types.HealthCheck{Command: []string{"CMD", "true"}},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	run, err := api.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(10)})
	if err != nil || len(run.Tasks) != 10 {
		t.Fatalf("RunTask: %v (%d tasks, failures %v)", err, len(run.Tasks), run.Failures)
	}
	var tasks []string
	on := map[string]bool{}
	for _, tk := range run.Tasks {
		tasks = append(tasks, aws.ToString(tk.TaskArn))
		on[aws.ToString(tk.ContainerInstanceArn)] = true
	}
	if len(on) != 10 {
		t.Errorf("10 tasks with a static port on %d instances", len(on))
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{64}$`)
	poll(t, "10 tasks RUNNING and HEALTHY", func() bool {
		for _, tk := range describeTasks(t, api, tasks) {
			if aws.ToString(tk.LastStatus) != "RUNNING" || tk.HealthStatus != types.HealthStatusHealthy {
				return false
			}
		}
		return true
	})
	for _, tk := range describeTasks(t, api, tasks) {
		c := tk.Containers[0]
		if aws.ToString(c.LastStatus) != "RUNNING" || !hexID.MatchString(aws.ToString(c.RuntimeId)) {
			t.Errorf("container %s runtimeId %q", aws.ToString(c.LastStatus), aws.ToString(c.RuntimeId))
		}
		if len(c.NetworkBindings) != 1 || aws.ToInt32(c.NetworkBindings[0].HostPort) != 8080 || aws.ToInt32(c.NetworkBindings[0].ContainerPort) != 80 {
			t.Errorf("network bindings %+v", c.NetworkBindings)
		}
		if tk.StartedAt == nil || tk.PullStartedAt == nil {
			t.Errorf("task %s lacks startedAt or pullStartedAt", aws.ToString(tk.TaskArn))
		}
	}
	if st := sim.Stats(); st.Running != 10 || st.Started != 10 || st.StartP50 <= 0 || st.Dropped != 0 || st.Reports != 20 {
		t.Errorf("stats %+v: want 10 running and started, 20 reports, none dropped, a start latency", st)
	}

	for _, arn := range tasks[:3] {
		if _, err := api.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn), Reason: aws.String("test")}); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "3 tasks STOPPED", func() bool {
		for _, tk := range describeTasks(t, api, tasks[:3]) {
			if aws.ToString(tk.LastStatus) != "STOPPED" {
				return false
			}
		}
		return true
	})
	for _, tk := range describeTasks(t, api, tasks[:3]) {
		if c := tk.Containers[0]; aws.ToString(c.LastStatus) != "STOPPED" || c.ExitCode == nil || *c.ExitCode != 0 || aws.ToString(tk.StoppedReason) != "test" {
			t.Errorf("stopped task: container %s exit %v, reason %q", aws.ToString(c.LastStatus), c.ExitCode, aws.ToString(tk.StoppedReason))
		}
	}
	poll(t, "7 running in the figures", func() bool { st := sim.Stats(); return st.Running == 7 && st.Stopped == 3 })

	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, ci := range describeInstances(t, api, arns) {
		if aws.ToString(ci.Status) != "INACTIVE" {
			t.Errorf("%s is %s after the simulation stopped", aws.ToString(ci.ContainerInstanceArn), aws.ToString(ci.Status))
		}
	}
	for _, tk := range describeTasks(t, api, tasks[3:]) {
		if aws.ToString(tk.LastStatus) != "STOPPED" {
			t.Errorf("task %s is %s after its instance was deregistered", aws.ToString(tk.TaskArn), aws.ToString(tk.LastStatus))
		}
	}
}
