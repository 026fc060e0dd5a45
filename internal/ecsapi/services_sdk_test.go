package ecsapi

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
)

// TestSDKServices drives the service actions through the AWS SDK's own
// client and the real router: create (idempotent with a clientToken),
// describe with MISSING failures and tags, the services-stable and
// services-inactive waiters, update (scaling, a new deployment, clearing
// placement with an empty list), list with the paginator and filters,
// tagging, delete with and without force, and DeleteCluster once the
// services are INACTIVE.
func TestSDKServices(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()

	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	e.registerInstance("prod", 4096, 8192)
	for range 2 {
		if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family:               aws.String("web"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx"), Memory: aws.Int32(256)}},
		}); err != nil {
			t.Fatal(err)
		}
	}

	_, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("nope"), ServiceName: aws.String("api"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1)})
	apiErr[*types.ClusterNotFoundException](t, err, "Cluster not found.")
	in := &ecs.CreateServiceInput{
		Cluster: aws.String("prod"), ServiceName: aws.String("api"), TaskDefinition: aws.String("web:1"),
		DesiredCount: aws.Int32(2), ClientToken: aws.String("create-api"), Tags: []types.Tag{tag("team", "a")},
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}},
		DeploymentConfiguration: &types.DeploymentConfiguration{
			MinimumHealthyPercent: aws.Int32(50), DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	}
	created, err := c.CreateService(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	s := created.Service
	if aws.ToString(s.ServiceArn) != serviceARN("prod", "api") || aws.ToString(s.Status) != "ACTIVE" || s.DesiredCount != 2 ||
		!s.CreatedAt.Equal(testStart) || len(s.Deployments) != 1 || !s.Deployments[0].CreatedAt.Equal(testStart) ||
		s.DeploymentConfiguration == nil || !s.DeploymentConfiguration.DeploymentCircuitBreaker.Rollback ||
		aws.ToInt32(s.DeploymentConfiguration.MaximumPercent) != 200 || tagMap(s.Tags)["team"] != "a" {
		t.Errorf("CreateService over the wire: %+v", s)
	}
	again, err := c.CreateService(ctx, in)
	if err != nil || aws.ToString(again.Service.Deployments[0].Id) != aws.ToString(s.Deployments[0].Id) {
		t.Errorf("idempotent CreateService: %v %+v", err, again)
	}
	changed := *in
	changed.DesiredCount = aws.Int32(3)
	_, err = c.CreateService(ctx, &changed)
	apiErr[*types.InvalidParameterException](t, err, "Creation of service was not idempotent.")

	// The waiters' view: MISSING ends services-stable as a failure.
	desc, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api", "nope"}, Include: []types.ServiceField{types.ServiceFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Services) != 1 || len(desc.Failures) != 1 || aws.ToString(desc.Failures[0].Reason) != "MISSING" ||
		aws.ToString(desc.Failures[0].Arn) != serviceARN("prod", "nope") || len(desc.Services[0].Tags) != 1 {
		t.Errorf("DescribeServices: %+v", desc)
	}
	stable := ecs.NewServicesStableWaiter(c)
	if err := stable.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"nope"}}, time.Minute); err == nil {
		t.Error("services-stable succeeded for a missing service")
	}

	// The controller's part, by hand: two tasks of the deployment, running.
	res := e.launch("prod", "api", 2)
	if len(res.Tasks) != 2 {
		t.Fatalf("launch: %+v", res)
	}
	for _, task := range res.Tasks {
		if _, err := c.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{
			Cluster: aws.String("prod"), Task: aws.String(task.ID), Status: aws.String("RUNNING"),
			Containers: []types.ContainerStateChange{{ContainerName: aws.String("app"), Status: aws.String("RUNNING")}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stable.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}}, time.Minute); err != nil {
		t.Errorf("services-stable: %v", err)
	}
	listed, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("api")})
	if err != nil || len(listed.TaskArns) != 2 {
		t.Errorf("ListTasks by service: %v %+v", err, listed)
	}

	// Update: scaling keeps the deployment; a new revision adds one; an
	// empty strategy list clears the strategies.
	up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), DesiredCount: aws.Int32(3)})
	if err != nil || len(up.Service.Deployments) != 1 || up.Service.Deployments[0].DesiredCount != 3 || up.Service.RunningCount != 2 {
		t.Errorf("scale: %v %+v", err, up)
	}
	up, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster: aws.String("prod"), Service: aws.String(serviceARN("prod", "api")), TaskDefinition: aws.String("web"),
		PlacementStrategy: []types.PlacementStrategy{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := up.Service.Deployments; len(d) != 2 || aws.ToString(d[0].Status) != "PRIMARY" || aws.ToString(d[1].Status) != "ACTIVE" ||
		aws.ToString(d[0].TaskDefinition) != tdARN("web:2") || d[0].RunningCount != 0 || d[1].RunningCount != 2 ||
		len(up.Service.PlacementStrategy) != 0 {
		t.Errorf("new deployment: %+v", up.Service)
	}
	_, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("nope"), DesiredCount: aws.Int32(1)})
	apiErr[*types.ServiceNotFoundException](t, err, "Service not found.")

	// More services, for the paginator and the filters.
	for _, name := range []string{"b", "c"} {
		if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String(name), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(0), LaunchType: types.LaunchTypeExternal}); err != nil {
			t.Fatal(err)
		}
	}
	var arns []string
	p := ecs.NewListServicesPaginator(c, &ecs.ListServicesInput{Cluster: aws.String("prod")}, func(o *ecs.ListServicesPaginatorOptions) { o.Limit = 1 })
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, out.ServiceArns...)
	}
	if len(arns) != 3 || arns[0] != serviceARN("prod", "api") {
		t.Errorf("paginated ListServices: %v", arns)
	}
	ext, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("prod"), LaunchType: types.LaunchTypeExternal})
	if err != nil || len(ext.ServiceArns) != 2 {
		t.Errorf("ListServices EXTERNAL: %v %+v", err, ext)
	}

	// Tags on a service ARN.
	if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(serviceARN("prod", "b")), Tags: []types.Tag{tag("x", "1")}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(serviceARN("prod", "b"))})
	if err != nil || len(tags.Tags) != 1 {
		t.Errorf("ListTagsForResource: %v %+v", err, tags)
	}
	if _, err := c.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(serviceARN("prod", "b")), TagKeys: []string{"x"}}); err != nil {
		t.Fatal(err)
	}

	// Delete: refused while scaled up, DRAINING with force; then the
	// waiters: services-stable fails on DRAINING, services-inactive
	// succeeds once the controller marked it INACTIVE.
	_, err = c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String("api")})
	apiErr[*types.InvalidParameterException](t, err, "The service cannot be stopped while it is scaled above 0.")
	del, err := c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), Force: aws.Bool(true)})
	if err != nil || aws.ToString(del.Service.Status) != "DRAINING" || del.Service.DesiredCount != 0 {
		t.Fatalf("DeleteService: %v %+v", err, del)
	}
	_, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), DesiredCount: aws.Int32(1)})
	apiErr[*types.ServiceNotActiveException](t, err, "Service was not ACTIVE.")
	if err := stable.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}}, time.Minute); err == nil {
		t.Error("services-stable succeeded for a DRAINING service")
	}
	e.setServiceStatus("prod", "api", domain.ServiceStatusInactive)
	if err := ecs.NewServicesInactiveWaiter(c).Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}}, time.Minute); err != nil {
		t.Errorf("services-inactive: %v", err)
	}

	// A cluster is deleted once its services are INACTIVE.
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("dev")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("dev"), ServiceName: aws.String("api"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("dev")})
	apiErr[*types.ClusterContainsServicesException](t, err, "The Cluster cannot be deleted while Services are active.")
	if _, err := c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("dev"), Service: aws.String("api")}); err != nil {
		t.Fatal(err)
	}
	e.setServiceStatus("dev", "api", domain.ServiceStatusInactive)
	if _, err := c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("dev")}); err != nil {
		t.Errorf("DeleteCluster with an INACTIVE service: %v", err)
	}
}
