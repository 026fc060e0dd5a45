package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// serviceView is what these tests read of describe-services.
type serviceView struct {
	ServiceName    string
	Status         string
	DesiredCount   int
	RunningCount   int
	PendingCount   int
	TaskDefinition string
	Deployments    []struct {
		Id                 string
		Status             string
		TaskDefinition     string
		DesiredCount       int
		RunningCount       int
		PendingCount       int
		FailedTasks        int
		RolloutState       string
		RolloutStateReason string
	}
	Events []struct {
		Id      string
		Message string
	}
}

func (in *instance) describeService(name string) serviceView {
	in.t.Helper()
	var d struct {
		Services []serviceView
		Failures []struct{ Arn, Reason string }
	}
	in.awsJSON(&d, "ecs", "describe-services", "--services", name)
	if len(d.Services) != 1 {
		in.t.Fatalf("describe-services %s: %+v", name, d)
	}
	return d.Services[0]
}

// waitService polls describe-services until cond holds.
func (in *instance) waitService(name string, timeout time.Duration, what string, cond func(serviceView) bool) serviceView {
	in.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := in.describeService(name)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", "  ")
			in.t.Fatalf("timed out after %v waiting for %s:\n%s\nberth output:\n%s", timeout, what, b, in.output.String())
		}
		<-time.After(500 * time.Millisecond)
	}
}

// awsWait runs an `aws ecs wait …` waiter, which may take minutes.
func (in *instance) awsWait(args ...string) {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	argv := append([]string{"--endpoint-url", in.endpoint, "--output", "json", "ecs", "wait"}, args...)
	cmd := exec.CommandContext(ctx, awsCLI, argv...)
	cmd.Env = in.awsEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		in.t.Fatalf("aws ecs wait %s: %v after %v\n%s\nberth output:\n%s", strings.Join(args, " "), err, time.Since(start), out.String(), in.output.String())
	}
	in.t.Logf("aws ecs wait %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Second))
}

func (in *instance) serviceTasks(name string) []taskView {
	in.t.Helper()
	var list struct{ TaskArns []string }
	in.awsJSON(&list, "ecs", "list-tasks", "--service-name", name)
	if len(list.TaskArns) == 0 {
		return nil
	}
	return in.describeTasks("default", list.TaskArns...)
}

func hasEvent(s serviceView, substr string) bool {
	return slices.ContainsFunc(s.Events, func(e struct{ Id, Message string }) bool { return strings.Contains(e.Message, substr) })
}

// sampler samples describe-services through the SDK every 200 ms and
// keeps the lowest running count and the highest running + pending count.
type sampler struct {
	mu                 sync.Mutex
	minRunning, maxAll int
	samples            int
	stop               chan struct{}
	done               chan struct{}
}

func (in *instance) sample(name string) *sampler {
	s := &sampler{minRunning: 1 << 30, stop: make(chan struct{}), done: make(chan struct{})}
	c := in.ecsClient(in.adminCreds())
	go func() {
		defer close(s.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{name}})
			cancel()
			if err == nil && len(out.Services) == 1 {
				sv := out.Services[0]
				s.mu.Lock()
				s.minRunning = min(s.minRunning, int(sv.RunningCount))
				s.maxAll = max(s.maxAll, int(sv.RunningCount+sv.PendingCount))
				s.samples++
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) finish() (minRunning, maxAll, samples int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minRunning, s.maxAll, s.samples
}

// TestServicesWithTheCLI is issue 5's end-to-end walk on real containerd
// with the real CLI: create-service and `aws ecs wait services-stable`,
// scaling, a rolling update within minimumHealthyPercent 50 /
// maximumPercent 200 sampled every 200 ms, a revision that cannot start
// tripping the circuit breaker and rolling back, a container killed from
// outside being replaced, and a drained instance being emptied onto
// another (simulated) instance.
func TestServicesWithTheCLI(t *testing.T) {
	addr := requireAgentPrereqs(t)
	importProbe(t, addr)
	b := startBerthWithAgent(t, t.TempDir())
	t.Cleanup(func() {
		// Services first: otherwise they replace what stopAllTasks stops.
		b.aws("ecs", "delete-service", "--service", "web", "--force")
		waitFor(t, 90*time.Second, "service web INACTIVE", func() bool {
			var d struct{ Services []serviceView }
			res := b.aws("ecs", "describe-services", "--services", "web")
			return res.code == 0 && json.Unmarshal([]byte(res.stdout), &d) == nil && len(d.Services) == 1 && d.Services[0].Status == "INACTIVE"
		})
	})

	web := func(version string) string {
		return fmt.Sprintf(`[{"name":"web","image":%q,"command":["serve"],"memory":32,"essential":true,
			"environment":[{"name":"VERSION","value":%q}],
			"portMappings":[{"containerPort":8080,"hostPort":0}],
			"healthCheck":{"command":["CMD","/probe","healthcheck","http://127.0.0.1:8080/"],"interval":5,"timeout":2,"retries":2,"startPeriod":0}}]`, probeRef, version)
	}
	b.registerTaskDef("web", web("1")) // web:1
	b.registerTaskDef("web", web("2")) // web:2
	// An entry point that does not exist: every task fails to start.
	b.registerTaskDef("web", fmt.Sprintf(`[{"name":"web","image":%q,"entryPoint":["/does-not-exist"],"memory":32,"essential":true}]`, probeRef)) // web:3

	b.awsJSON(nil, "ecs", "create-service", "--service-name", "web", "--task-definition", "web:1", "--desired-count", "4",
		"--deployment-configuration", "minimumHealthyPercent=50,maximumPercent=200")
	b.awsWait("services-stable", "--services", "web")
	s := b.describeService("web")
	if s.RunningCount != 4 || len(s.Deployments) != 1 || s.Deployments[0].Status != "PRIMARY" {
		t.Fatalf("after create: %+v", s)
	}
	tasks := b.serviceTasks("web")
	if len(tasks) != 4 {
		t.Fatalf("%d tasks listed for service web, want 4", len(tasks))
	}
	for _, tk := range tasks {
		port := tk.Containers[0].NetworkBindings[0].HostPort
		if code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || code != 200 {
			t.Errorf("task %s on port %d: %d %q %v", tk.TaskArn, port, code, body, err)
		}
	}
	s = b.waitService("web", 60*time.Second, "a steady-state event", func(s serviceView) bool {
		return hasEvent(s, "(service web) has reached a steady state.") && s.Deployments[0].RolloutState == "COMPLETED"
	})
	if !hasEvent(s, "(service web) has started 4 tasks:") {
		t.Errorf("no start event: %+v", s.Events)
	}

	// Scaling.
	for _, n := range []int{6, 2, 4} {
		b.awsJSON(nil, "ecs", "update-service", "--service", "web", "--desired-count", fmt.Sprint(n))
		b.awsWait("services-stable", "--services", "web")
		if s := b.describeService("web"); s.RunningCount != n || s.DesiredCount != n {
			t.Fatalf("after scaling to %d: %+v", n, s)
		}
	}

	// A rolling update within 50 % / 200 % of 4: running ≥ 2, total ≤ 8.
	smp := b.sample("web")
	b.awsJSON(nil, "ecs", "update-service", "--service", "web", "--task-definition", "web:2")
	b.awsWait("services-stable", "--services", "web")
	s = b.waitService("web", 60*time.Second, "the update COMPLETED", func(s serviceView) bool {
		return len(s.Deployments) == 1 && s.Deployments[0].RolloutState == "COMPLETED"
	})
	minRunning, maxAll, samples := smp.finish()
	t.Logf("rolling update: %d samples, running ≥ %d, running+pending ≤ %d", samples, minRunning, maxAll)
	if minRunning < 2 || maxAll > 8 || samples < 10 {
		t.Errorf("rolling update left the bounds: running ≥ %d (want ≥ 2), total ≤ %d (want ≤ 8), %d samples", minRunning, maxAll, samples)
	}
	if !strings.HasSuffix(s.TaskDefinition, ":task-definition/web:2") || s.Deployments[0].Status != "PRIMARY" {
		t.Errorf("after the update: %+v", s)
	}
	for _, tk := range b.serviceTasks("web") {
		if tk.LastStatus == "RUNNING" && !strings.Contains(b.taskDefinitionOf(tk.TaskArn), "web:2") {
			t.Errorf("task %s still runs %s", tk.TaskArn, b.taskDefinitionOf(tk.TaskArn))
		}
	}

	// A revision that cannot start trips the circuit breaker, which rolls
	// back to web:2.
	b.awsJSON(nil, "ecs", "update-service", "--service", "web", "--task-definition", "web:3",
		"--deployment-configuration", "minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}")
	s = b.waitService("web", 4*time.Minute, "the circuit breaker to roll back", func(s serviceView) bool {
		return hasEvent(s, "deployment failed: tasks failed to start.") && hasEvent(s, "rolling back to deployment")
	})
	b.awsWait("services-stable", "--services", "web")
	s = b.waitService("web", 60*time.Second, "the rollback COMPLETED", func(s serviceView) bool {
		return len(s.Deployments) == 1 && s.Deployments[0].RolloutState == "COMPLETED"
	})
	if !strings.HasSuffix(s.TaskDefinition, "web:2") || !strings.HasPrefix(s.Deployments[0].RolloutStateReason, "ECS deployment") {
		t.Errorf("after the rollback: %+v", s)
	}

	// A container killed from outside is replaced.
	tasks = slices.DeleteFunc(b.serviceTasks("web"), func(tk taskView) bool { return tk.LastStatus != "RUNNING" })
	victim := tasks[0]
	if out, err := exec.Command("ctr", "--address", addr, "-n", "berth", "task", "kill", "-s", "SIGKILL", victim.Containers[0].RuntimeId).CombinedOutput(); err != nil {
		t.Fatalf("ctr task kill: %v\n%s", err, out)
	}
	b.waitTasks(60*time.Second, "the killed task STOPPED", stopped, victim.TaskArn)
	b.waitService("web", 90*time.Second, "a replacement", func(s serviceView) bool {
		if s.RunningCount != 4 {
			return false
		}
		for _, tk := range b.serviceTasks("web") {
			if tk.LastStatus == "RUNNING" && tk.TaskArn == victim.TaskArn {
				return false
			}
		}
		return true
	})

	// Draining the real instance moves the tasks to a simulated one,
	// never below 2 healthy tasks.
	real := b.connectedInstances()[0].ContainerInstanceArn
	b.startSimulation("default", 1, 4096, 4096, "us-east-1a")
	smp = b.sample("web")
	b.awsJSON(nil, "ecs", "update-container-instances-state", "--container-instances", real, "--status", "DRAINING")
	waitFor(t, 3*time.Minute, "the drained instance emptied", func() bool {
		var d struct{ ContainerInstances []containerInstance }
		b.awsJSON(&d, "ecs", "describe-container-instances", "--container-instances", real)
		return len(d.ContainerInstances) == 1 && d.ContainerInstances[0].RunningTasksCount == 0 && d.ContainerInstances[0].PendingTasksCount == 0
	})
	b.awsWait("services-stable", "--services", "web")
	minRunning, _, _ = smp.finish()
	if minRunning < 2 {
		t.Errorf("draining left %d running tasks, want ≥ 2", minRunning)
	}
	b.awsJSON(nil, "ecs", "update-container-instances-state", "--container-instances", real, "--status", "ACTIVE")
}

// taskDefinitionOf is a task's task definition ARN.
func (in *instance) taskDefinitionOf(taskARN string) string {
	in.t.Helper()
	var d struct {
		Tasks []struct{ TaskDefinitionArn string }
	}
	in.awsJSON(&d, "ecs", "describe-tasks", "--tasks", taskARN)
	if len(d.Tasks) != 1 {
		return ""
	}
	return d.Tasks[0].TaskDefinitionArn
}
