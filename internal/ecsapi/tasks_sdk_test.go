package ecsapi

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestSDKInstancesAndTasks drives the container-instance and task actions
// through the AWS SDK's own client and the real router: what the agent
// sends (registration, state changes with timestamps) and what a user runs
// (run-task, describe, list with the paginator, stop-task, the
// tasks-running waiter).
func TestSDKInstancesAndTasks(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()

	_, err := c.RegisterContainerInstance(ctx, instanceInput("default", 2048, 4096))
	apiErr[*types.ClusterNotFoundException](t, err, "Cluster not found.")
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	reg, err := c.RegisterContainerInstance(ctx, instanceInput("", 2048, 4096, attr("ecs.os-type", "linux"), attr("ecs.capability.external", "")))
	if err != nil {
		t.Fatal(err)
	}
	ci := reg.ContainerInstance
	if len(ci.Attributes) != 2 || ci.AgentConnected || aws.ToString(ci.Status) != "ACTIVE" || resource(ci.RemainingResources, "MEMORY") != "4096" {
		t.Errorf("registered: %+v", ci)
	}
	id := instanceID(aws.ToString(ci.ContainerInstanceArn))
	e.setConnected("default", id, true)

	_, err = c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{}})
	apiErr[*types.InvalidParameterException](t, err, "Container instance cannot be empty.")
	_, err = c.PutAttributes(ctx, &ecs.PutAttributesInput{Attributes: []types.Attribute{{Name: aws.String("x"), TargetId: aws.String("ffff")}}})
	apiErr[*types.TargetNotFoundException](t, err, "")

	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("nginx"), Memory: aws.Int32(256),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	run, err := c.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 3 || len(run.Failures) != 0 {
		t.Fatalf("run: %+v", run)
	}
	task := run.Tasks[0]
	if aws.ToString(task.LastStatus) != "PROVISIONING" || task.Version != 1 || task.CreatedAt == nil ||
		len(task.Overrides.ContainerOverrides) != 1 || task.Containers[0].NetworkBindings == nil {
		t.Errorf("RunTask over the wire: %+v", task)
	}
	arn := aws.ToString(task.TaskArn)

	// The agent's reports, timestamps included (epoch seconds on the wire).
	pull := testStart.Add(1500 * time.Millisecond)
	if _, err := c.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{
		Task: aws.String(arn), Status: aws.String("RUNNING"), PullStartedAt: aws.Time(testStart), PullStoppedAt: aws.Time(pull),
		Containers: []types.ContainerStateChange{{
			ContainerName: aws.String("app"), Status: aws.String("RUNNING"), RuntimeId: aws.String("ctr"),
			NetworkBindings: []types.NetworkBinding{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(32768), Protocol: types.TransportProtocolTcp}},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	ack, err := c.SubmitContainerStateChange(ctx, &ecs.SubmitContainerStateChangeInput{Task: aws.String(arn), ContainerName: aws.String("app"), Status: aws.String("RUNNING")})
	if err != nil || aws.ToString(ack.Acknowledgment) != "ACK" {
		t.Fatalf("SubmitContainerStateChange: %v %+v", err, ack)
	}
	desc, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{arn, "0000"}, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	got := desc.Tasks[0]
	if aws.ToString(got.LastStatus) != "RUNNING" || !got.PullStartedAt.Equal(testStart) || !got.PullStoppedAt.Equal(pull) ||
		aws.ToInt32(got.Containers[0].NetworkBindings[0].HostPort) != 32768 || got.Tags == nil ||
		len(desc.Failures) != 1 || aws.ToString(desc.Failures[0].Reason) != "MISSING" {
		t.Errorf("described: %+v, failures %+v", got, desc.Failures)
	}
	// The tasks-running waiter ends at once for a RUNNING task, and fails
	// for a MISSING one.
	w := ecs.NewTasksRunningWaiter(c)
	if err := w.Wait(ctx, &ecs.DescribeTasksInput{Tasks: []string{arn}}, time.Minute); err != nil {
		t.Errorf("tasks-running waiter: %v", err)
	}
	if err := w.Wait(ctx, &ecs.DescribeTasksInput{Tasks: []string{"0000"}}, time.Minute); err == nil {
		t.Error("tasks-running waiter succeeded for a missing task")
	}

	var arns []string
	p := ecs.NewListTasksPaginator(c, &ecs.ListTasksInput{}, func(o *ecs.ListTasksPaginatorOptions) { o.Limit = 2 })
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, out.TaskArns...)
	}
	if len(arns) != 3 {
		t.Errorf("paginated ListTasks: %v", arns)
	}

	stop, err := c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn), Reason: aws.String("done")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(stop.Task.DesiredStatus) != "STOPPED" || aws.ToString(stop.Task.StoppedReason) != "done" || stop.Task.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("StopTask: %+v", stop.Task)
	}
	if _, err := c.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{
		Task: aws.String(arn), Status: aws.String("STOPPED"), ExecutionStoppedAt: aws.Time(testStart.Add(time.Minute)),
		Containers: []types.ContainerStateChange{{ContainerName: aws.String("app"), Status: aws.String("STOPPED"), ExitCode: aws.Int32(0)}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := ecs.NewTasksStoppedWaiter(c).Wait(ctx, &ecs.DescribeTasksInput{Tasks: []string{arn}}, time.Minute); err != nil {
		t.Errorf("tasks-stopped waiter: %v", err)
	}

	insts, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if ci := insts.ContainerInstances[0]; ci.RunningTasksCount != 0 || ci.PendingTasksCount != 2 || !ci.AgentConnected ||
		resource(ci.RemainingResources, "MEMORY") != "3584" {
		t.Errorf("instance: %+v", ci)
	}
	list, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.os-type == linux")})
	if err != nil || len(list.ContainerInstanceArns) != 1 {
		t.Errorf("ListContainerInstances: %v %+v", err, list)
	}
	list, err = c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.os-type =~ lin.*")})
	if err != nil || len(list.ContainerInstanceArns) != 1 {
		t.Errorf("ListContainerInstances =~: %v %+v", err, list)
	}
	_, err = c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.os-type ==")})
	apiErr[*types.InvalidParameterException](t, err, "")
	_, err = c.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(id)})
	apiErr[*types.InvalidParameterException](t, err, "Found running tasks on the instance.")
	attrs, err := c.ListAttributes(ctx, &ecs.ListAttributesInput{TargetType: types.TargetTypeContainerInstance})
	if err != nil || len(attrs.Attributes) != 2 {
		t.Errorf("ListAttributes: %v %+v", err, attrs)
	}
	dpe, err := c.DiscoverPollEndpoint(ctx, &ecs.DiscoverPollEndpointInput{ContainerInstance: aws.String(id)})
	if err != nil || dpe.Endpoint == nil {
		t.Errorf("DiscoverPollEndpoint: %v %+v", err, dpe)
	}
}
