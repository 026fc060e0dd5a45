package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

func serviceARN(cluster, name string) string {
	return "arn:aws:ecs:us-east-1:123456789012:service/" + cluster + "/" + name
}

var deploymentID = regexp.MustCompile(`^ecs-svc/\d{19}$`)

// serviceInput is a REPLICA service of family with desired tasks.
func serviceInput(cluster, name, family string, desired int32) *ecs.CreateServiceInput {
	return &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(name),
		TaskDefinition: aws.String(family), DesiredCount: aws.Int32(desired),
	}
}

func (e *env) createService(in *ecs.CreateServiceInput) *types.Service {
	e.t.Helper()
	return must(e.t, e.h.CreateService)(e.ctx, in).Service
}

func (e *env) describeService(cluster, name string, include ...types.ServiceField) types.Service {
	e.t.Helper()
	out := must(e.t, e.h.DescribeServices)(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}, Include: include})
	if len(out.Services) != 1 {
		e.t.Fatalf("describe service %s: %+v", name, out.Failures)
	}
	return out.Services[0]
}

func (e *env) serviceTasks() *ServiceTasks {
	return NewServiceTasks(testConfig(e.store, e.clock))
}

// setServiceStatus stands in for the service controller, which marks a
// DRAINING service INACTIVE once its tasks stopped.
func (e *env) setServiceStatus(cluster, name, status string) {
	e.t.Helper()
	key := domain.ServiceKey(cluster, name)
	rec, err := decodeKey[domain.ServiceRecord](e.store, key)
	if err != nil {
		e.t.Fatal(err)
	}
	rec.Service.Status = aws.String(status)
	op, err := put(key, rec)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.Txn(context.Background(), nil, []store.Op{op}); err != nil {
		e.t.Fatal(err)
	}
}

// launch starts n tasks of a service's PRIMARY deployment through the
// launcher, as the controller does.
func (e *env) launch(cluster, name string, n int) domain.ServiceLaunchResult {
	e.t.Helper()
	rec, err := decodeKey[domain.ServiceRecord](e.store, domain.ServiceKey(cluster, name))
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.serviceTasks().Launch(context.Background(), domain.ServiceLaunch{
		Cluster: cluster, Service: name, DeploymentID: rec.Primary().ID(),
		TaskDefinitionARN: aws.ToString(rec.Service.TaskDefinition), Count: n,
		LaunchType: rec.Service.LaunchType, PlacementStrategy: rec.Service.PlacementStrategy,
		PlacementConstraints: rec.Service.PlacementConstraints,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func TestCreateServiceDefaults(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	e.registerTD("web", 256, 512, 0)
	s := e.createService(serviceInput("prod", "api", "web:1", 3))
	if aws.ToString(s.ServiceArn) != serviceARN("prod", "api") || aws.ToString(s.ServiceName) != "api" ||
		aws.ToString(s.ClusterArn) != clusterARN("prod") || aws.ToString(s.Status) != "ACTIVE" ||
		aws.ToString(s.TaskDefinition) != tdARN("web:1") || s.DesiredCount != 3 || s.RunningCount != 0 || s.PendingCount != 0 ||
		s.LaunchType != types.LaunchTypeEc2 || s.SchedulingStrategy != types.SchedulingStrategyReplica ||
		s.PropagateTags != types.PropagateTagsNone || aws.ToString(s.CreatedBy) != adminARN || !s.CreatedAt.Equal(testStart) ||
		aws.ToInt32(s.HealthCheckGracePeriodSeconds) != 0 || s.AvailabilityZoneRebalancing != types.AvailabilityZoneRebalancingEnabled ||
		s.DeploymentController == nil || s.DeploymentController.Type != types.DeploymentControllerTypeEcs ||
		s.Events == nil || len(s.Events) != 0 || s.PlacementStrategy == nil || s.PlacementConstraints == nil || s.LoadBalancers == nil {
		t.Errorf("created: %+v", s)
	}
	dc := s.DeploymentConfiguration
	if dc == nil || aws.ToInt32(dc.MinimumHealthyPercent) != 100 || aws.ToInt32(dc.MaximumPercent) != 200 ||
		dc.DeploymentCircuitBreaker == nil || dc.DeploymentCircuitBreaker.Enable || dc.DeploymentCircuitBreaker.Rollback || dc.Strategy != types.DeploymentStrategyRolling {
		t.Errorf("deploymentConfiguration: %+v", dc)
	}
	if len(s.Deployments) != 1 {
		t.Fatalf("deployments: %+v", s.Deployments)
	}
	d := s.Deployments[0]
	if !deploymentID.MatchString(aws.ToString(d.Id)) || aws.ToString(d.Status) != "PRIMARY" || d.DesiredCount != 3 ||
		aws.ToString(d.TaskDefinition) != tdARN("web:1") || d.LaunchType != types.LaunchTypeEc2 ||
		d.RolloutState != types.DeploymentRolloutStateInProgress ||
		aws.ToString(d.RolloutStateReason) != "ECS deployment "+aws.ToString(d.Id)+" in progress." || !d.CreatedAt.Equal(testStart) {
		t.Errorf("deployment: %+v", d)
	}
	// A family resolves to its newest ACTIVE revision; the circuit
	// breaker is recorded on the deployment.
	in := serviceInput("prod", "api2", "web", 1)
	in.DeploymentConfiguration = &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	s = e.createService(in)
	if aws.ToString(s.TaskDefinition) != tdARN("web:2") {
		t.Errorf("family resolved to %s", aws.ToString(s.TaskDefinition))
	}
	rec, err := decodeKey[domain.ServiceRecord](e.store, domain.ServiceKey("prod", "api2"))
	if err != nil || !rec.Deployments[0].Breaker || rec.Generation != 1 || rec.Deployments[0].Revision != 2 {
		t.Errorf("record: %v %+v", err, rec)
	}
	// DAEMON: no desired count (the controller counts the instances),
	// 0/100, no AZ rebalancing.
	in = serviceInput("prod", "agent", "web", 0)
	in.DesiredCount, in.SchedulingStrategy = nil, types.SchedulingStrategyDaemon
	s = e.createService(in)
	if s.DesiredCount != 0 || aws.ToInt32(s.DeploymentConfiguration.MinimumHealthyPercent) != 0 ||
		aws.ToInt32(s.DeploymentConfiguration.MaximumPercent) != 100 || s.AvailabilityZoneRebalancing != types.AvailabilityZoneRebalancingDisabled {
		t.Errorf("daemon: %+v", s)
	}
}

func TestCreateServiceValidation(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	must(t, e.h.RegisterTaskDefinition)(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("vpc"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx"), Memory: aws.Int32(64)}},
	})
	e.registerTD("gone", 256, 512, 0)
	e.deregister("gone:1")
	const ipe = "InvalidParameterException"
	tests := []struct {
		name      string
		mod       func(*ecs.CreateServiceInput)
		code, msg string
	}{
		{"bad name", func(in *ecs.CreateServiceInput) { in.ServiceName = aws.String("a b") }, ipe, "Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."},
		{"unknown cluster", func(in *ecs.CreateServiceInput) { in.Cluster = aws.String("nope") }, "ClusterNotFoundException", "Cluster not found."},
		{"no task definition", func(in *ecs.CreateServiceInput) { in.TaskDefinition = nil }, ipe, "taskDefinition is required for services with the ECS deployment controller."},
		{"unknown task definition", func(in *ecs.CreateServiceInput) { in.TaskDefinition = aws.String("nope") }, "ClientException", "Unable to describe task definition."},
		{"inactive task definition", func(in *ecs.CreateServiceInput) { in.TaskDefinition = aws.String("gone:1") }, ipe, "TaskDefinition is inactive"},
		{"awsvpc", func(in *ecs.CreateServiceInput) { in.TaskDefinition = aws.String("vpc") }, ipe, "The awsvpc network mode is not supported by berth yet for EC2 and EXTERNAL tasks; use bridge, host or none."},
		{"network configuration", func(in *ecs.CreateServiceInput) {
			in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}}
		}, ipe, "The awsvpc network mode is not supported by berth yet for EC2 and EXTERNAL tasks; use bridge, host or none."},
		{"no desired count", func(in *ecs.CreateServiceInput) { in.DesiredCount = nil }, ipe, "desiredCount is required for services with the REPLICA scheduling strategy."},
		{"negative desired count", func(in *ecs.CreateServiceInput) { in.DesiredCount = aws.Int32(-1) }, ipe, "desiredCount must be at least 0."},
		{"daemon desired count", func(in *ecs.CreateServiceInput) { in.SchedulingStrategy = types.SchedulingStrategyDaemon }, ipe,
			"The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again"},
		{"daemon strategy", func(in *ecs.CreateServiceInput) {
			in.SchedulingStrategy, in.DesiredCount = types.SchedulingStrategyDaemon, nil
			in.PlacementStrategy = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}
		}, ipe, "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again"},
		{"daemon max percent", func(in *ecs.CreateServiceInput) {
			in.SchedulingStrategy, in.DesiredCount = types.SchedulingStrategyDaemon, nil
			in.DeploymentConfiguration = &types.DeploymentConfiguration{MaximumPercent: aws.Int32(200)}
		}, ipe, "The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment configuration. Change the maximumPercent value to 100, and try again"},
		{"bad scheduling strategy", func(in *ecs.CreateServiceInput) { in.SchedulingStrategy = "X" }, ipe, "Invalid schedulingStrategy X. Valid values are REPLICA and DAEMON."},
		{"fargate", func(in *ecs.CreateServiceInput) { in.LaunchType = types.LaunchTypeFargate }, ipe, "The FARGATE launch type is not supported by berth yet; use launchType EC2 or EXTERNAL."},
		{"capacity providers", func(in *ecs.CreateServiceInput) {
			in.CapacityProviderStrategy = []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE")}}
		}, ipe, "Capacity provider strategies are not supported by berth yet; use launchType EC2 or EXTERNAL."},
		{"platform version", func(in *ecs.CreateServiceInput) { in.PlatformVersion = aws.String("LATEST") }, ipe, "The platform version must be null when specifying an EC2 launch type."},
		{"code deploy", func(in *ecs.CreateServiceInput) {
			in.DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}
		}, ipe, "The CODE_DEPLOY deployment controller is not supported by berth yet; use the ECS deployment controller."},
		{"load balancers", func(in *ecs.CreateServiceInput) {
			in.LoadBalancers = []types.LoadBalancer{{TargetGroupArn: aws.String("tg")}}
		}, ipe, "Load balancers are not supported by berth yet."},
		{"service registries", func(in *ecs.CreateServiceInput) {
			in.ServiceRegistries = []types.ServiceRegistry{{RegistryArn: aws.String("r")}}
		}, ipe, "Service discovery (serviceRegistries) is not supported by berth yet."},
		{"service connect", func(in *ecs.CreateServiceInput) {
			in.ServiceConnectConfiguration = &types.ServiceConnectConfiguration{Enabled: true}
		}, ipe, "Service Connect is not supported by berth yet."},
		{"volumes", func(in *ecs.CreateServiceInput) {
			in.VolumeConfigurations = []types.ServiceVolumeConfiguration{{Name: aws.String("v")}}
		}, ipe, "Volume configurations (Amazon EBS volumes) are not supported by berth yet."},
		{"role", func(in *ecs.CreateServiceInput) { in.Role = aws.String("ecsServiceRole") }, ipe, "The role parameter is only valid with load balancers, which berth does not support yet."},
		{"too many strategies", func(in *ecs.CreateServiceInput) {
			in.PlacementStrategy = make([]types.PlacementStrategy, 6)
			for i := range in.PlacementStrategy {
				in.PlacementStrategy[i] = types.PlacementStrategy{Type: types.PlacementStrategyTypeRandom}
			}
		}, ipe, "You can specify at most 5 placement strategies."},
		{"bad binpack", func(in *ecs.CreateServiceInput) {
			in.PlacementStrategy = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("disk")}}
		}, ipe, `Invalid field "disk" for the binpack placement strategy. Valid values are cpu and memory.`},
		{"too many constraints", func(in *ecs.CreateServiceInput) {
			in.PlacementConstraints = make([]types.PlacementConstraint, 11)
			for i := range in.PlacementConstraints {
				in.PlacementConstraints[i] = types.PlacementConstraint{Type: types.PlacementConstraintTypeDistinctInstance}
			}
		}, ipe, "You can specify at most 10 placement constraints, including those of the task definition."},
		{"min percent", func(in *ecs.CreateServiceInput) {
			in.DeploymentConfiguration = &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(120)}
		}, ipe, "minimumHealthyPercent must be between 0 and 100."},
		{"grace period", func(in *ecs.CreateServiceInput) { in.HealthCheckGracePeriodSeconds = aws.Int32(-5) }, ipe, "healthCheckGracePeriodSeconds must be between 0 and 2147483647."},
		{"propagate tags", func(in *ecs.CreateServiceInput) { in.PropagateTags = "ALL" }, ipe, "Invalid propagateTags ALL. Valid values are TASK_DEFINITION, SERVICE and NONE."},
		{"reserved tag", func(in *ecs.CreateServiceInput) { in.Tags = []types.Tag{tag("aws:x", "y")} }, ipe, "Tag keys and values cannot start with the reserved prefix 'aws:'."},
		{"client token", func(in *ecs.CreateServiceInput) { in.ClientToken = aws.String("has space") }, ipe, "clientToken can be up to 36 ASCII characters in the range 33-126."},
	}
	for _, tt := range tests {
		in := serviceInput("prod", "api", "web", 1)
		tt.mod(in)
		_, err := e.h.CreateService(e.ctx, in)
		if err == nil {
			t.Errorf("%s: created", tt.name)
			continue
		}
		if code(err) != tt.code || message(err) != tt.msg {
			t.Errorf("%s: %s %q, want %s %q", tt.name, code(err), message(err), tt.code, tt.msg)
		}
	}
	if kvs, _, _ := e.store.List(context.Background(), domain.AllServicesPrefix); len(kvs) != 0 {
		t.Errorf("refused requests stored %d services", len(kvs))
	}
}

func TestCreateServiceIdempotency(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	in := serviceInput("prod", "api", "web", 2)
	in.ClientToken = aws.String("tok-1")
	first := e.createService(in)
	e.clock.Advance(time.Second)
	again := e.createService(in)
	if aws.ToString(again.Deployments[0].Id) != aws.ToString(first.Deployments[0].Id) || !again.CreatedAt.Equal(*first.CreatedAt) {
		t.Errorf("the same request created anew: %+v", again)
	}
	// The cluster given as an ARN is the same request.
	byARN := *in
	byARN.Cluster = aws.String(clusterARN("prod"))
	e.createService(&byARN)

	notIdempotent := func(name string, in *ecs.CreateServiceInput) {
		t.Helper()
		_, err := e.h.CreateService(e.ctx, in)
		wantErr(t, err, "InvalidParameterException", "Creation of service was not idempotent.")
	}
	changed := *in
	changed.DesiredCount = aws.Int32(3)
	notIdempotent("other parameters", &changed)
	otherToken := *in
	otherToken.ClientToken = aws.String("tok-2")
	notIdempotent("other token", &otherToken)

	// DRAINING still holds the name; INACTIVE frees it.
	must(t, e.h.DeleteService)(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), Force: aws.Bool(true)})
	notIdempotent("draining", in)
	e.setServiceStatus("prod", "api", domain.ServiceStatusInactive)
	fresh := e.createService(&changed)
	if aws.ToString(fresh.Status) != "ACTIVE" || fresh.DesiredCount != 3 || aws.ToString(fresh.Deployments[0].Id) == aws.ToString(first.Deployments[0].Id) {
		t.Errorf("recreated: %+v", fresh)
	}
}

func TestUpdateServiceDeployments(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	e.registerTD("web", 256, 512, 0)
	e.createService(serviceInput("prod", "api", "web:1", 2))
	update := func(in *ecs.UpdateServiceInput) *types.Service {
		t.Helper()
		in.Cluster, in.Service = aws.String("prod"), aws.String("api")
		e.clock.Advance(time.Second)
		return must(t, e.h.UpdateService)(e.ctx, in).Service
	}
	generation := func() int64 {
		rec, err := decodeKey[domain.ServiceRecord](e.store, domain.ServiceKey("prod", "api"))
		if err != nil {
			t.Fatal(err)
		}
		return rec.Generation
	}
	deployments := func(s *types.Service) string {
		var out []string
		for _, d := range s.Deployments {
			out = append(out, fmt.Sprintf("%s:%s:%d", aws.ToString(d.Status), instanceID(aws.ToString(d.TaskDefinition)), d.DesiredCount))
		}
		return fmt.Sprint(out)
	}

	// Scaling: the service and its PRIMARY deployment, no new deployment.
	s := update(&ecs.UpdateServiceInput{DesiredCount: aws.Int32(5)})
	if got := deployments(s); got != "[PRIMARY:web:1:5]" || s.DesiredCount != 5 || generation() != 2 {
		t.Errorf("scaled: %s desired %d generation %d", got, s.DesiredCount, generation())
	}
	// Nothing to change: nothing written.
	update(&ecs.UpdateServiceInput{DesiredCount: aws.Int32(5), TaskDefinition: aws.String("web:1")})
	if generation() != 2 {
		t.Errorf("an update without change counted: generation %d", generation())
	}
	// In place: deployment configuration, grace period, execute command.
	s = update(&ecs.UpdateServiceInput{
		DeploymentConfiguration:       &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50)},
		HealthCheckGracePeriodSeconds: aws.Int32(30), EnableExecuteCommand: aws.Bool(true),
	})
	if got := deployments(s); got != "[PRIMARY:web:1:5]" || aws.ToInt32(s.DeploymentConfiguration.MinimumHealthyPercent) != 50 ||
		aws.ToInt32(s.DeploymentConfiguration.MaximumPercent) != 200 || aws.ToInt32(s.HealthCheckGracePeriodSeconds) != 30 || !s.EnableExecuteCommand {
		t.Errorf("in place: %s %+v", got, s)
	}
	// A new revision: a new PRIMARY, the old one ACTIVE.
	s = update(&ecs.UpdateServiceInput{TaskDefinition: aws.String("web")})
	if got := deployments(s); got != "[PRIMARY:web:2:5 ACTIVE:web:1:5]" || aws.ToString(s.TaskDefinition) != tdARN("web:2") {
		t.Errorf("new revision: %s", got)
	}
	if !deploymentID.MatchString(aws.ToString(s.Deployments[0].Id)) || s.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress {
		t.Errorf("new deployment: %+v", s.Deployments[0])
	}
	// Scaling together with a new deployment: the new one takes the count.
	s = update(&ecs.UpdateServiceInput{ForceNewDeployment: true, DesiredCount: aws.Int32(4)})
	if got := deployments(s); got != "[PRIMARY:web:2:4 ACTIVE:web:2:5 ACTIVE:web:1:5]" {
		t.Errorf("forced: %s", got)
	}
	// New placement: a new deployment; the same placement again: none.
	spread := []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("instanceId")}}
	s = update(&ecs.UpdateServiceInput{PlacementStrategy: spread})
	if len(s.Deployments) != 4 || len(s.PlacementStrategy) != 1 {
		t.Errorf("placement: %s %+v", deployments(s), s.PlacementStrategy)
	}
	s = update(&ecs.UpdateServiceInput{PlacementStrategy: spread, PlacementConstraints: []types.PlacementConstraint{}})
	if len(s.Deployments) != 4 {
		t.Errorf("the same placement redeployed: %s", deployments(s))
	}
	// Tags the tasks are started with: a new deployment.
	s = update(&ecs.UpdateServiceInput{PropagateTags: types.PropagateTagsService})
	if len(s.Deployments) != 5 || s.PropagateTags != types.PropagateTagsService {
		t.Errorf("propagateTags: %s", deployments(s))
	}
	// The circuit breaker switched on applies to the next deployment.
	update(&ecs.UpdateServiceInput{DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true}}})
	update(&ecs.UpdateServiceInput{ForceNewDeployment: true})
	rec, err := decodeKey[domain.ServiceRecord](e.store, domain.ServiceKey("prod", "api"))
	if err != nil || !rec.Deployments[0].Breaker || rec.Deployments[1].Breaker {
		t.Errorf("breaker: %v %+v", err, rec.Deployments)
	}
	if !rec.UpdatedAt.Equal(e.clock.Now().Truncate(1e6)) {
		t.Errorf("updatedAt %v, now %v", rec.UpdatedAt, e.clock.Now())
	}
}

func TestUpdateServiceErrors(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	e.createService(serviceInput("prod", "api", "web", 1))
	in := serviceInput("prod", "agent", "web", 0)
	in.DesiredCount, in.SchedulingStrategy = nil, types.SchedulingStrategyDaemon
	e.createService(in)
	e.createService(serviceInput("prod", "old", "web", 0))
	must(t, e.h.DeleteService)(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String("old")})
	const ipe = "InvalidParameterException"
	tests := []struct {
		name      string
		in        ecs.UpdateServiceInput
		code, msg string
	}{
		{"unknown", ecs.UpdateServiceInput{Service: aws.String("nope")}, "ServiceNotFoundException", "Service not found."},
		{"bad name", ecs.UpdateServiceInput{Service: aws.String("a/b")}, "ServiceNotFoundException", "Service not found."},
		{"other cluster's ARN", ecs.UpdateServiceInput{Service: aws.String(serviceARN("dev", "api"))}, "ServiceNotFoundException", "Service not found."},
		{"unknown cluster", ecs.UpdateServiceInput{Cluster: aws.String("nope"), Service: aws.String("api")}, "ClusterNotFoundException", "Cluster not found."},
		{"draining", ecs.UpdateServiceInput{Service: aws.String("old"), DesiredCount: aws.Int32(1)}, "ServiceNotActiveException", "Service was not ACTIVE."},
		{"daemon desired", ecs.UpdateServiceInput{Service: aws.String("agent"), DesiredCount: aws.Int32(1)}, ipe,
			"The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again"},
		{"daemon strategy", ecs.UpdateServiceInput{Service: aws.String("agent"), PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}}, ipe,
			"The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again"},
		{"daemon max", ecs.UpdateServiceInput{Service: aws.String("agent"), DeploymentConfiguration: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(150)}}, ipe,
			"The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment configuration. Change the maximumPercent value to 100, and try again"},
		{"unknown task definition", ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String("nope")}, "ClientException", "Unable to describe task definition."},
		{"load balancers", ecs.UpdateServiceInput{Service: aws.String("api"), LoadBalancers: []types.LoadBalancer{{}}}, ipe, "Load balancers are not supported by berth yet."},
		{"external controller", ecs.UpdateServiceInput{Service: aws.String("api"), DeploymentController: &types.DeploymentController{Type: types.DeploymentControllerTypeExternal}}, ipe,
			"The EXTERNAL deployment controller is not supported by berth yet; use the ECS deployment controller."},
		{"bad constraint", ecs.UpdateServiceInput{Service: aws.String("api"), PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf}}}, ipe,
			"A memberOf placement constraint requires an expression."},
	}
	for _, tt := range tests {
		in := tt.in
		if in.Cluster == nil {
			in.Cluster = aws.String("prod")
		}
		_, err := e.h.UpdateService(e.ctx, &in)
		if code(err) != tt.code || message(err) != tt.msg {
			t.Errorf("%s: %s %q, want %s %q", tt.name, code(err), message(err), tt.code, tt.msg)
		}
	}
	// A service ARN names its cluster when the cluster is omitted.
	out := must(t, e.h.UpdateService)(e.ctx, &ecs.UpdateServiceInput{Service: aws.String(serviceARN("prod", "api")), DesiredCount: aws.Int32(2)})
	if out.Service.DesiredCount != 2 {
		t.Errorf("by ARN: %+v", out.Service)
	}
}

func TestDeleteServiceRules(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	e.createService(serviceInput("prod", "api", "web", 2))
	e.createService(serviceInput("prod", "idle", "web", 0))
	in := serviceInput("prod", "agent", "web", 0)
	in.DesiredCount, in.SchedulingStrategy = nil, types.SchedulingStrategyDaemon
	e.createService(in)
	del := func(name string, force *bool) (*ecs.DeleteServiceOutput, error) {
		return e.h.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String(name), Force: force})
	}

	_, err := del("api", nil)
	wantErr(t, err, "InvalidParameterException", "The service cannot be stopped while it is scaled above 0.")
	_, err = del("api", aws.Bool(false))
	wantErr(t, err, "InvalidParameterException", "The service cannot be stopped while it is scaled above 0.")
	_, err = del("nope", nil)
	wantErr(t, err, "ServiceNotFoundException", "Service not found.")

	out, err := del("api", aws.Bool(true))
	if err != nil || aws.ToString(out.Service.Status) != "DRAINING" || out.Service.DesiredCount != 0 || out.Service.Deployments[0].DesiredCount != 0 {
		t.Fatalf("forced delete: %v %+v", err, out)
	}
	out, err = del("idle", nil)
	if err != nil || aws.ToString(out.Service.Status) != "DRAINING" {
		t.Errorf("delete at 0: %v %+v", err, out)
	}
	// A DAEMON service has no desired count to scale down.
	out, err = del("agent", nil)
	if err != nil || aws.ToString(out.Service.Status) != "DRAINING" {
		t.Errorf("delete daemon: %v %+v", err, out)
	}
	// Deleting again returns the service as it is.
	out, err = del("api", nil)
	if err != nil || aws.ToString(out.Service.Status) != "DRAINING" {
		t.Errorf("delete draining: %v %+v", err, out)
	}
	e.setServiceStatus("prod", "api", domain.ServiceStatusInactive)
	out, err = del("api", aws.Bool(true))
	if err != nil || aws.ToString(out.Service.Status) != "INACTIVE" {
		t.Errorf("delete inactive: %v %+v", err, out)
	}
	// DRAINING and INACTIVE services are still described, not listed.
	d := must(t, e.h.DescribeServices)(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api", "idle"}})
	if len(d.Services) != 2 || aws.ToString(d.Services[0].Status) != "INACTIVE" || aws.ToString(d.Services[1].Status) != "DRAINING" {
		t.Errorf("described: %+v", d)
	}
	if l := must(t, e.h.ListServices)(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("prod")}); len(l.ServiceArns) != 0 {
		t.Errorf("listed: %v", l.ServiceArns)
	}
}

func TestDescribeServices(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	inst := e.registerInstance("prod", 2048, 4096)
	e.registerTD("web", 256, 512, 0)
	in := serviceInput("prod", "api", "web", 2)
	in.Tags = []types.Tag{tag("team", "a")}
	e.createService(in)
	res := e.launch("prod", "api", 2)
	if len(res.Tasks) != 2 {
		t.Fatalf("launch: %+v", res)
	}
	e.submit("prod", res.Tasks[0].ID, "RUNNING")
	if res.Tasks[0].InstanceID != inst {
		t.Errorf("placed on %s, want %s", res.Tasks[0].InstanceID, inst)
	}

	out := must(t, e.h.DescribeServices)(e.ctx, &ecs.DescribeServicesInput{
		Cluster:  aws.String("prod"),
		Services: []string{"api", serviceARN("prod", "nope"), "bad name", serviceARN("dev", "api")},
		Include:  []types.ServiceField{types.ServiceFieldTags},
	})
	if len(out.Services) != 1 || len(out.Failures) != 3 {
		t.Fatalf("describe: %+v", out)
	}
	s := out.Services[0]
	if s.RunningCount != 1 || s.PendingCount != 1 || s.Deployments[0].RunningCount != 1 || s.Deployments[0].PendingCount != 1 ||
		tagMap(s.Tags)["team"] != "a" {
		t.Errorf("counts and tags: %+v", s)
	}
	for i, want := range []string{serviceARN("prod", "nope"), serviceARN("prod", "bad name"), serviceARN("dev", "api")} {
		if f := out.Failures[i]; aws.ToString(f.Arn) != want || aws.ToString(f.Reason) != "MISSING" {
			t.Errorf("failure %d: %+v", i, f)
		}
	}
	if s := e.describeService("prod", "api"); s.Tags != nil {
		t.Errorf("tags without include: %+v", s.Tags)
	}
	// A stopped task counts no more.
	must(t, e.h.StopTask)(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("prod"), Task: aws.String(res.Tasks[1].ID)})
	if s := e.describeService("prod", "api"); s.RunningCount != 1 || s.PendingCount != 0 {
		t.Errorf("after stop: running %d pending %d", s.RunningCount, s.PendingCount)
	}

	const ipe = "InvalidParameterException"
	for _, tt := range []struct {
		in        ecs.DescribeServicesInput
		code, msg string
	}{
		{ecs.DescribeServicesInput{Cluster: aws.String("prod")}, ipe, "Services cannot be empty."},
		{ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: make([]string, 11)}, ipe, "services can have at most 10 items."},
		{ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}, Include: []types.ServiceField{"EVENTS"}}, ipe, "include should be one of [TAGS]"},
		{ecs.DescribeServicesInput{Cluster: aws.String("nope"), Services: []string{"api"}}, "ClusterNotFoundException", "Cluster not found."},
	} {
		_, err := e.h.DescribeServices(e.ctx, &tt.in)
		wantErr(t, err, tt.code, tt.msg)
	}
}

func TestListServices(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	var want []string
	for i := range 12 {
		name := fmt.Sprintf("svc-%02d", i)
		in := serviceInput("prod", name, "web", 0)
		if i%4 == 3 {
			in.LaunchType = types.LaunchTypeExternal
		}
		e.createService(in)
		want = append(want, serviceARN("prod", name))
	}
	in := serviceInput("prod", "zz-daemon", "web", 0)
	in.DesiredCount, in.SchedulingStrategy = nil, types.SchedulingStrategyDaemon
	e.createService(in)
	want = append(want, serviceARN("prod", "zz-daemon"))
	e.createService(serviceInput("prod", "zz-gone", "web", 0))
	must(t, e.h.DeleteService)(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String("zz-gone")})

	// The default page is 10.
	first := must(t, e.h.ListServices)(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("prod")})
	if len(first.ServiceArns) != 10 || first.NextToken == nil {
		t.Fatalf("first page: %+v", first)
	}
	rest := must(t, e.h.ListServices)(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("prod"), NextToken: first.NextToken, MaxResults: aws.Int32(100)})
	if got := append(first.ServiceArns, rest.ServiceArns...); !slices.Equal(got, want) || rest.NextToken != nil {
		t.Errorf("listed %v, want %v", got, want)
	}
	count := func(in ecs.ListServicesInput) int {
		t.Helper()
		in.Cluster = aws.String("prod")
		return len(must(t, e.h.ListServices)(e.ctx, &in).ServiceArns)
	}
	if n := count(ecs.ListServicesInput{LaunchType: types.LaunchTypeExternal, MaxResults: aws.Int32(100)}); n != 3 {
		t.Errorf("EXTERNAL: %d", n)
	}
	if n := count(ecs.ListServicesInput{SchedulingStrategy: types.SchedulingStrategyDaemon}); n != 1 {
		t.Errorf("DAEMON: %d", n)
	}
	if n := count(ecs.ListServicesInput{ResourceManagementType: types.ResourceManagementTypeEcs}); n != 0 {
		t.Errorf("ECS-managed: %d", n)
	}
	const ipe = "InvalidParameterException"
	for _, tt := range []struct {
		in        ecs.ListServicesInput
		code, msg string
	}{
		{ecs.ListServicesInput{MaxResults: aws.Int32(101)}, ipe, "maxResults must be between 1 and 100."},
		{ecs.ListServicesInput{MaxResults: aws.Int32(0)}, ipe, "maxResults must be between 1 and 100."},
		{ecs.ListServicesInput{NextToken: aws.String("!!")}, ipe, "Invalid nextToken."},
		{ecs.ListServicesInput{LaunchType: "X"}, ipe, "Invalid launchType X."},
		{ecs.ListServicesInput{SchedulingStrategy: "X"}, ipe, "Invalid schedulingStrategy X. Valid values are REPLICA and DAEMON."},
	} {
		in := tt.in
		in.Cluster = aws.String("prod")
		_, err := e.h.ListServices(e.ctx, &in)
		wantErr(t, err, tt.code, tt.msg)
	}
	_, err := e.h.ListServices(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("nope")})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")
}

func TestDeleteClusterWithServices(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	e.createService(serviceInput("prod", "api", "web", 0))
	deleteCluster := func() error {
		_, err := e.h.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod")})
		return err
	}
	wantErr(t, deleteCluster(), "ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
	must(t, e.h.DeleteService)(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String("api")})
	wantErr(t, deleteCluster(), "ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
	e.setServiceStatus("prod", "api", domain.ServiceStatusInactive)
	if err := deleteCluster(); err != nil {
		t.Fatalf("delete with an INACTIVE service: %v", err)
	}
	// The deleted cluster's services are still described.
	if s := e.describeService("prod", "api"); aws.ToString(s.Status) != "INACTIVE" {
		t.Errorf("described: %+v", s)
	}
	_, err := e.h.CreateService(e.ctx, serviceInput("prod", "api", "web", 0))
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")
}

func TestServiceTags(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 0)
	in := serviceInput("prod", "api", "web", 0)
	in.Tags = []types.Tag{tag("a", "1")}
	if s := e.createService(in); tagMap(s.Tags)["a"] != "1" {
		t.Errorf("created with tags: %+v", s.Tags)
	}
	a := serviceARN("prod", "api")
	must(t, e.h.TagResource)(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(a), Tags: []types.Tag{tag("b", "2")}})
	must(t, e.h.UntagResource)(e.ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(a), TagKeys: []string{"a"}})
	if got := e.tags(a); len(got) != 1 || got["b"] != "2" {
		t.Errorf("tags: %v", got)
	}
	if s := e.describeService("prod", "api", types.ServiceFieldTags); len(s.Tags) != 1 {
		t.Errorf("described tags: %+v", s.Tags)
	}
	must(t, e.h.DeleteService)(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("prod"), Service: aws.String("api")})
	e.setServiceStatus("prod", "api", domain.ServiceStatusInactive)
	for _, ref := range []string{a, serviceARN("prod", "nope"), serviceARN("prod", "bad name")} {
		_, err := e.h.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(ref)})
		wantErr(t, err, "ResourceNotFoundException", "The specified resource could not be found.")
	}
}

func TestServiceTasksLaunch(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	ids := []string{e.registerInstance("prod", 4096, 8192), e.registerInstance("prod", 4096, 8192)}
	e.registerTD("web", 256, 512, 0)
	in := serviceInput("prod", "api", "web", 12)
	in.PropagateTags = types.PropagateTagsTaskDefinition
	in.EnableExecuteCommand = true
	s := e.createService(in)
	dep := aws.ToString(s.Deployments[0].Id)
	st := e.serviceTasks()
	ctx := context.Background()

	// 12 tasks: more than one batch of 10.
	res, err := st.Launch(ctx, domain.ServiceLaunch{
		Cluster: "prod", Service: "api", DeploymentID: dep, TaskDefinitionARN: tdARN("web:1"), Count: 12,
		Tags: []types.Tag{tag("aws:ecs:serviceName", "api"), tag("from", "launch")}, EnableExecute: true,
	})
	if err != nil || len(res.Tasks) != 12 || len(res.Failures) != 0 || res.Closest != "" {
		t.Fatalf("launch: %v %+v", err, res)
	}
	perInstance := map[string]int{}
	for _, tr := range res.Tasks {
		task := e.describeTask("prod", tr.ID)
		if aws.ToString(task.Group) != "service:api" || aws.ToString(task.StartedBy) != dep || task.LaunchType != types.LaunchTypeEc2 ||
			!task.EnableExecuteCommand || tagMap(task.Tags)["from"] != "launch" || tagMap(task.Tags)["aws:ecs:serviceName"] != "api" || len(task.Tags) != 2 {
			t.Errorf("task: %+v", task)
		}
		if _, err := e.store.Get(ctx, domain.ServiceTaskKey("prod", "api", tr.ID)); err != nil {
			t.Errorf("index key of %s: %v", tr.ID, err)
		}
		perInstance[tr.InstanceID]++
	}
	// Without strategies, the service default spreads across Availability
	// Zones; the instances have none, so it spreads nothing and the tasks
	// fill instances in order.
	if perInstance[ids[0]]+perInstance[ids[1]] != 12 {
		t.Errorf("placed: %v", perInstance)
	}
	tasks, err := st.Tasks(ctx, "prod", "api")
	if err != nil || len(tasks) != 12 {
		t.Fatalf("Tasks: %v %d", err, len(tasks))
	}
	// RunTask's tasks of the same group are not the service's.
	must(t, e.h.RunTask)(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), Group: aws.String("service:api")})
	if tasks, _ := st.Tasks(ctx, "prod", "api"); len(tasks) != 12 {
		t.Errorf("Tasks after RunTask: %d", len(tasks))
	}
	if s := e.describeService("prod", "api"); s.PendingCount != 12 || s.Deployments[0].PendingCount != 12 {
		t.Errorf("counts: %d %+v", s.PendingCount, s.Deployments[0])
	}

	// On one instance only (a DAEMON service's launch).
	res, err = st.Launch(ctx, domain.ServiceLaunch{
		Cluster: "prod", Service: "api", DeploymentID: dep, TaskDefinitionARN: tdARN("web:1"), Count: 1, Instance: ids[1],
	})
	if err != nil || len(res.Tasks) != 1 || res.Tasks[0].InstanceID != ids[1] {
		t.Fatalf("launch on %s: %v %+v", ids[1], err, res)
	}
	res, err = st.Launch(ctx, domain.ServiceLaunch{
		Cluster: "prod", Service: "api", DeploymentID: dep, TaskDefinitionARN: tdARN("web:1"), Count: 1, Instance: "0123456789abcdef0123456789abcdef",
	})
	if err != nil || len(res.Tasks) != 0 || len(res.Failures) != 1 || aws.ToString(res.Failures[0].Reason) != "MISSING" {
		t.Errorf("launch on an unknown instance: %v %+v", err, res)
	}
	// Constraints hold on the named instance too.
	res, err = st.Launch(ctx, domain.ServiceLaunch{
		Cluster: "prod", Service: "api", DeploymentID: dep, TaskDefinitionARN: tdARN("web:1"), Count: 1, Instance: ids[0],
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:stack == prod")}},
	})
	if err != nil || len(res.Tasks) != 0 || len(res.Failures) != 1 ||
		res.Closest != "The closest matching container-instance "+ids[0]+" does not meet the placement constraints of your task." {
		t.Errorf("launch against a constraint: %v %+v", err, res)
	}
	// Tags of a task definition are propagated when the service says so.
	res, err = st.Launch(ctx, domain.ServiceLaunch{
		Cluster: "prod", Service: "api", DeploymentID: dep, TaskDefinitionARN: tdARN("web:1"), Count: 1,
	})
	if err != nil || len(res.Tasks) != 1 {
		t.Fatalf("launch: %v %+v", err, res)
	}
	if task := e.describeTask("prod", res.Tasks[0].ID); tagMap(task.Tags)["from"] != "td" {
		t.Errorf("task definition tags: %+v", task.Tags)
	}

	// Stop: ServiceSchedulerInitiated with the reason; again: nothing.
	victim := tasks[0].ID
	if err := st.Stop(ctx, "prod", victim, "Scaling activity initiated by (deployment "+dep+")"); err != nil {
		t.Fatal(err)
	}
	task := e.describeTask("prod", victim)
	if task.StopCode != types.TaskStopCodeServiceSchedulerInitiated || aws.ToString(task.DesiredStatus) != "STOPPED" ||
		aws.ToString(task.StoppedReason) != "Scaling activity initiated by (deployment "+dep+")" {
		t.Errorf("stopped: %+v", task)
	}
	if err := st.Stop(ctx, "prod", victim, "again"); err != nil {
		t.Fatal(err)
	}
	if task := e.describeTask("prod", victim); aws.ToString(task.StoppedReason) != "Scaling activity initiated by (deployment "+dep+")" {
		t.Errorf("stopped twice: %+v", task)
	}
	if err := st.Stop(ctx, "prod", "0123456789abcdef0123456789abcdef", "gone"); err != nil {
		t.Errorf("stop of an unknown task: %v", err)
	}
}

func TestServiceTasksLaunchFailures(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.registerTD("web", 256, 512, 8080)
	e.registerTD("big", 256, 8192, 0)
	e.registerTD("hungry", 8192, 256, 0)
	st := e.serviceTasks()
	ctx := context.Background()
	launch := func(td string, n int) domain.ServiceLaunchResult {
		t.Helper()
		res, err := st.Launch(ctx, domain.ServiceLaunch{Cluster: "prod", Service: "api", DeploymentID: "ecs-svc/1234567890123456789", TaskDefinitionARN: tdARN(td), Count: n})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// No instance at all: a failure, not an error.
	res := launch("web:1", 1)
	if len(res.Tasks) != 0 || len(res.Failures) != 1 || res.Closest != "Reason: No Container Instances were found in your cluster." {
		t.Errorf("no instances: %+v", res)
	}
	id := e.registerInstance("prod", 1024, 2048)
	prefix := "The closest matching container-instance " + id
	res = launch("web:1", 2) // one host port 8080: one task fits
	if len(res.Tasks) != 1 || len(res.Failures) != 1 || res.Closest != prefix+" is already using a port required by your task." {
		t.Errorf("ports: %+v", res)
	}
	if res := launch("big:1", 1); res.Closest != prefix+" has insufficient memory available." {
		t.Errorf("memory: %+v", res)
	}
	if res := launch("hungry:1", 1); res.Closest != prefix+" has insufficient CPU units available." {
		t.Errorf("cpu: %+v", res)
	}
	e.setConnected("prod", id, false)
	if res := launch("big:1", 1); res.Closest != prefix+` encountered error "AGENT".` {
		t.Errorf("agent: %+v", res)
	}
	_, err := st.Launch(ctx, domain.ServiceLaunch{Cluster: "prod", Service: "api", TaskDefinitionARN: tdARN("nope:1"), Count: 1})
	wantErr(t, err, "ClientException", "Unable to describe task definition.")
	if res, err := st.Launch(ctx, domain.ServiceLaunch{Cluster: "prod", Service: "api", TaskDefinitionARN: tdARN("web:1")}); err != nil || len(res.Tasks) != 0 {
		t.Errorf("count 0: %v %+v", err, res)
	}
}

func TestClosestInstance(t *testing.T) {
	arnOf := func(id string) string { return "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/" + id }
	f := func(id, rule string) scheduler.Failure { return scheduler.Failure{InstanceARN: arnOf(id), Rule: rule} }
	tests := []struct {
		fs   []scheduler.Failure
		want string
	}{
		{nil, ""},
		{[]scheduler.Failure{f("a", scheduler.RuleStatus)}, ""},
		{[]scheduler.Failure{f("a", scheduler.RuleAgent), f("b", scheduler.RuleCPU)}, "The closest matching container-instance b has insufficient CPU units available."},
		{[]scheduler.Failure{f("a", scheduler.RuleMemory), f("b", scheduler.RuleCPU)}, "The closest matching container-instance a has insufficient memory available."},
		{[]scheduler.Failure{f("a", scheduler.RuleMemory), f("b", scheduler.RulePortsUDP)}, "The closest matching container-instance b is already using a port required by your task."},
		{[]scheduler.Failure{f("a", scheduler.RuleAttribute), f("b", scheduler.RulePorts)}, "The closest matching container-instance a is missing an attribute required by your task."},
		{[]scheduler.Failure{f("a", scheduler.RuleAttribute), f("b", scheduler.RuleDistinctInstance)}, "The closest matching container-instance b does not meet the placement constraints of your task."},
		{[]scheduler.Failure{f("a", scheduler.RuleMemory), f("b", scheduler.RuleMemory)}, "The closest matching container-instance a has insufficient memory available."},
	}
	for i, tt := range tests {
		if got := closestInstance(tt.fs); got != tt.want {
			t.Errorf("%d: %q, want %q", i, got, tt.want)
		}
	}
}

// The service → task index is written with the task and holds only the
// service's tasks: a store without it (a task record alone) lists nothing.
func TestServiceTasksIgnoresDanglingIndex(t *testing.T) {
	e := newEnv(t)
	e.putRaw(domain.ServiceTaskKey("prod", "api", "0123456789abcdef0123456789abcdef"))
	tasks, err := e.serviceTasks().Tasks(context.Background(), "prod", "api")
	if err != nil || len(tasks) != 0 {
		t.Errorf("dangling index: %v %d", err, len(tasks))
	}
}

// FuzzServiceActions sends arbitrary bodies to the service actions over a
// store with a cluster, an instance, a task definition and a service: each
// must answer 200 or a client error, never panic or fail with a fault.
func FuzzServiceActions(f *testing.F) {
	for op, body := range map[string]string{
		"CreateService":    `{"cluster":"a","serviceName":"s2","taskDefinition":"f","desiredCount":1,"clientToken":"t","deploymentConfiguration":{"minimumHealthyPercent":50,"deploymentCircuitBreaker":{"enable":true,"rollback":true}},"placementStrategy":[{"type":"spread","field":"instanceId"}],"tags":[{"key":"k","value":"v"}]}`,
		"UpdateService":    `{"cluster":"a","service":"s","desiredCount":2,"taskDefinition":"f:1","forceNewDeployment":true,"placementConstraints":[{"type":"distinctInstance"}]}`,
		"DeleteService":    `{"cluster":"a","service":"arn:aws:ecs:us-east-1:123456789012:service/a/s","force":true}`,
		"DescribeServices": `{"cluster":"a","services":["s","x"],"include":["TAGS"]}`,
		"ListServices":     `{"cluster":"a","launchType":"EC2","schedulingStrategy":"REPLICA","maxResults":1,"nextToken":"MTpz"}`,
	} {
		f.Add(op, body)
	}
	f.Add("CreateService", `{"cluster":"a","serviceName":"d","taskDefinition":"f","schedulingStrategy":"DAEMON","deploymentConfiguration":{"maximumPercent":100}}`)
	f.Add("TagResource", `{"resourceArn":"arn:aws:ecs:us-east-1:123456789012:service/a/s","tags":[{"key":"x","value":"y"}]}`)

	st := memstore.New()
	f.Cleanup(func() { _ = st.Close() })
	fc := clock.NewFake(testStart)
	svc := New(testConfig(st, fc))
	ctx := asPrincipal(adminARN)
	seedFuzzStore(f, st, fc)
	if _, err := newTestHandlers(st, fc).CreateService(ctx, serviceInput("a", "s", "f", 1)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, body string) {
		op, ok := svc.Operation(name)
		if !ok {
			return
		}
		rec := httptest.NewRecorder()
		err := svc.Handle(ctx, rec, op, []byte(body))
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s (%v)", name, body, rec.Code, rec.Body, err)
		}
		if err != nil && errors.Is(err, errdefs.ErrInternal) {
			t.Fatalf("%s %s: internal error %v", name, body, err)
		}
	})
}
