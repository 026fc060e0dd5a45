package testcluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
)

// tdOption adjusts the one container ("app") of a test task definition.
type tdOption func(*types.ContainerDefinition, *ecs.RegisterTaskDefinitionInput)

// fake sets the container's FAKE behaviour.
func fake(behaviour string) tdOption {
	return func(c *types.ContainerDefinition, _ *ecs.RegisterTaskDefinitionInput) {
		c.Environment = append(c.Environment, types.KeyValuePair{Name: aws.String(FakeEnv), Value: aws.String(behaviour)})
	}
}

// checked gives the container a health check.
func checked() tdOption {
	return func(c *types.ContainerDefinition, _ *ecs.RegisterTaskDefinitionInput) {
		c.HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}}
	}
}

// hostPort maps container port 80 to a static host port.
func hostPort(p int32) tdOption {
	return func(c *types.ContainerDefinition, _ *ecs.RegisterTaskDefinitionInput) {
		c.PortMappings = append(c.PortMappings, types.PortMapping{ContainerPort: aws.Int32(80), HostPort: aws.Int32(p)})
	}
}

// memory sets the container's memory (MiB; default 128).
func memory(mib int32) tdOption {
	return func(c *types.ContainerDefinition, _ *ecs.RegisterTaskDefinitionInput) { c.Memory = aws.Int32(mib) }
}

// register registers a revision of family and returns its ARN.
func register(t *testing.T, tc *Cluster, family string, opts ...tdOption) string {
	t.Helper()
	c := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx:1.27"), Memory: aws.Int32(128)}
	in := &ecs.RegisterTaskDefinitionInput{Family: aws.String(family)}
	for _, o := range opts {
		o(&c, in)
	}
	in.ContainerDefinitions = []types.ContainerDefinition{c}
	out, err := tc.ECS.RegisterTaskDefinition(tc.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// createService creates a service in the cluster; adjust sets more fields.
func createService(t *testing.T, tc *Cluster, name, td string, desired int32, adjust ...func(*ecs.CreateServiceInput)) types.Service {
	t.Helper()
	in := &ecs.CreateServiceInput{Cluster: aws.String(tc.Name), ServiceName: aws.String(name), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(desired)}
	for _, a := range adjust {
		a(in)
	}
	out, err := tc.ECS.CreateService(tc.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return *out.Service
}

func updateService(t *testing.T, tc *Cluster, in *ecs.UpdateServiceInput) types.Service {
	t.Helper()
	in.Cluster, in.Service = aws.String(tc.Name), aws.String("web")
	out, err := tc.ECS.UpdateService(tc.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return *out.Service
}

// describe is DescribeServices of one service.
func describe(t *testing.T, tc *Cluster, name string) types.Service {
	t.Helper()
	out, err := tc.ECS.DescribeServices(tc.Context(), &ecs.DescribeServicesInput{Cluster: aws.String(tc.Name), Services: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 {
		t.Fatalf("DescribeServices %s: %+v", name, out.Failures)
	}
	return out.Services[0]
}

// listTasks lists tasks through ListTasks (all pages) with the given
// filters and describes them.
func listTasks(t *testing.T, tc *Cluster, in ecs.ListTasksInput) []types.Task {
	t.Helper()
	in.Cluster = aws.String(tc.Name)
	var arns []string
	p := ecs.NewListTasksPaginator(tc.ECS, &in)
	for p.HasMorePages() {
		out, err := p.NextPage(tc.Context())
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, out.TaskArns...)
	}
	return describeTasks(t, tc, arns)
}

func describeTasks(t *testing.T, tc *Cluster, arns []string) []types.Task {
	t.Helper()
	var tasks []types.Task
	for chunk := range slices.Chunk(arns, 100) {
		out, err := tc.ECS.DescribeTasks(tc.Context(), &ecs.DescribeTasksInput{Cluster: aws.String(tc.Name), Tasks: chunk})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Failures) > 0 {
			t.Fatalf("DescribeTasks: %+v", out.Failures)
		}
		tasks = append(tasks, out.Tasks...)
	}
	slices.SortFunc(tasks, func(a, b types.Task) int { return strings.Compare(aws.ToString(a.TaskArn), aws.ToString(b.TaskArn)) })
	return tasks
}

// running lists the service's tasks that are RUNNING and meant to run.
func running(t *testing.T, tc *Cluster, service string) []types.Task {
	t.Helper()
	var out []types.Task
	for _, task := range listTasks(t, tc, ecs.ListTasksInput{ServiceName: aws.String(service)}) {
		if aws.ToString(task.LastStatus) == "RUNNING" {
			out = append(out, task)
		}
	}
	return out
}

// stopped lists the service's tasks asked to stop (or stopped).
func stopped(t *testing.T, tc *Cluster, service string) []types.Task {
	t.Helper()
	return listTasks(t, tc, ecs.ListTasksInput{ServiceName: aws.String(service), DesiredStatus: types.DesiredStatusStopped})
}

// live lists the service's tasks that still hold their instance: every
// task whose agent has not reported it STOPPED, whatever it was asked.
func live(t *testing.T, tc *Cluster, service string) []types.Task {
	t.Helper()
	out := listTasks(t, tc, ecs.ListTasksInput{ServiceName: aws.String(service)})
	for _, task := range stopped(t, tc, service) {
		if aws.ToString(task.LastStatus) != "STOPPED" {
			out = append(out, task)
		}
	}
	return out
}

func taskID(task types.Task) string {
	a := aws.ToString(task.TaskArn)
	return a[strings.LastIndex(a, "/")+1:]
}

func instanceOf(task types.Task) string {
	a := aws.ToString(task.ContainerInstanceArn)
	return a[strings.LastIndex(a, "/")+1:]
}

func ids(tasks []types.Task) []string {
	out := make([]string, len(tasks))
	for i, task := range tasks {
		out[i] = taskID(task)
	}
	return out
}

// messages are the service's event messages, newest first.
func messages(s types.Service) []string {
	out := make([]string, len(s.Events))
	for i, e := range s.Events {
		out[i] = aws.ToString(e.Message)
	}
	return out
}

// hasEvent says whether an event message contains text.
func hasEvent(s types.Service, text string) bool {
	return slices.ContainsFunc(messages(s), func(m string) bool { return strings.Contains(m, text) })
}

func countEvents(s types.Service, text string) int {
	n := 0
	for _, m := range messages(s) {
		if strings.Contains(m, text) {
			n++
		}
	}
	return n
}

// revisionOf is the task definition revision an ARN names ("web:2").
func revisionOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// deploymentsString summarizes deployments for failure messages.
func deploymentsString(s types.Service) string {
	var b strings.Builder
	for _, d := range s.Deployments {
		fmt.Fprintf(&b, "[%s %s %s %s running %d pending %d failed %d desired %d] ", aws.ToString(d.Id), aws.ToString(d.Status),
			revisionOf(aws.ToString(d.TaskDefinition)), d.RolloutState, d.RunningCount, d.PendingCount, d.FailedTasks, d.DesiredCount)
	}
	return b.String()
}

// steady says whether the service is at one COMPLETED deployment running
// its desired count.
func steady(s types.Service) bool {
	return len(s.Deployments) == 1 && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted &&
		s.RunningCount == s.DesiredCount && s.PendingCount == 0
}

// settleRollout settles, lets the settle time pass and settles again until
// the service is steady (bounded).
func settleRollout(t *testing.T, tc *Cluster, name string) types.Service {
	t.Helper()
	for range 20 {
		tc.Settle()
		if s := describe(t, tc, name); steady(s) {
			return s
		}
		tc.Advance(domain.SettleTime)
	}
	s := describe(t, tc, name)
	t.Fatalf("service %s never steady: %s\nevents %q", name, deploymentsString(s), messages(s))
	return s
}

// requireBounds makes every observed moment keep a rolling deployment's
// bounds: runningCount ≥ minKeep, runningCount + pendingCount ≤ maxTotal,
// and no more than maxTotal tasks holding an instance.
func requireBounds(t *testing.T, tc *Cluster, name string, minKeep, maxTotal int32) {
	tc.Observe(func() {
		s := describe(t, tc, name)
		if s.RunningCount < minKeep || s.RunningCount+s.PendingCount > maxTotal {
			t.Fatalf("bounds broken: running %d pending %d, want running ≥ %d and running+pending ≤ %d: %s",
				s.RunningCount, s.PendingCount, minKeep, maxTotal, deploymentsString(s))
		}
		if l := live(t, tc, name); len(l) > int(maxTotal) {
			t.Fatalf("%d tasks hold an instance, want ≤ %d: %s", len(l), maxTotal, taskStates(l))
		}
	})
}

func taskStates(tasks []types.Task) string {
	var parts []string
	for _, task := range tasks {
		parts = append(parts, fmt.Sprintf("%s(%s→%s %s)", taskID(task)[:8], aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus), revisionOf(aws.ToString(task.TaskDefinitionArn))))
	}
	return strings.Join(parts, " ")
}
