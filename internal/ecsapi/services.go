package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store"
)

// ListServices' page sizes: 10 by default, at most 100 (ECS API reference).
var servicesListLimits = pageLimits{def: 10, max: 100}

func (h *handlers) serviceARN(cluster, name string) string {
	return arn.Service(h.region, h.account, cluster, name)
}

func serviceNotFound() error {
	return errdefs.WithReason(errdefs.ErrNotFound, domain.ErrServiceNotFound, "Service not found.")
}

func serviceNotActive() error {
	return errdefs.WithReason(errdefs.ErrFailedPrecondition, domain.ErrServiceNotActive, "Service was not ACTIVE.")
}

// serviceRef resolves a service parameter (a name or a long ARN) in a
// cluster to a name; ok is false when it cannot name a service there.
func (h *handlers) serviceRef(cluster, ref string) (string, bool) {
	if arn.IsARN(ref) {
		r, err := arn.Parse(ref)
		if err != nil || r.Type != arn.TypeService || !r.In(h.region, h.account) || r.Cluster != cluster {
			return "", false
		}
		ref = r.Name
	}
	return ref, domain.ValidServiceName(ref)
}

// serviceRefARN is the ARN a service reference stands for.
func (h *handlers) serviceRefARN(cluster, ref string) string {
	if arn.IsARN(ref) {
		return ref
	}
	return h.serviceARN(cluster, ref)
}

// serviceCluster is the cluster of a service parameter: the cluster
// parameter when given, else the cluster a service ARN names, else the
// default cluster.
func (h *handlers) serviceCluster(cluster *string, ref string) (string, error) {
	return h.refCluster(cluster, ref, arn.TypeService)
}

// serviceTasks lists the task records of a service: the service → task
// index (written with each task at placement, deleted with it by the task
// reaper) and each task's record, through the memo (shared, read-only).
// STOPPED tasks are included while their records exist.
func (h *handlers) serviceTasks(ctx context.Context, cluster, service string) ([]*domain.TaskRecord, error) {
	kvs, _, err := h.store.List(ctx, domain.ServiceTasksPrefix(cluster, service))
	if err != nil {
		return nil, storeError(err)
	}
	out := make([]*domain.TaskRecord, 0, len(kvs))
	for _, kv := range kvs {
		_, _, id, ok := domain.ParseServiceTaskKey(kv.Key)
		if !ok {
			continue
		}
		t, _, err := h.tasks.Get(ctx, h.store, domain.TaskKey(cluster, id))
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, storeError(err)
		}
		out = append(out, &t)
	}
	return out, nil
}

// renderService is a service as the API shows it, with its counts.
func (h *handlers) renderService(ctx context.Context, rec *domain.ServiceRecord, withTags bool) (*types.Service, error) {
	tasks, err := h.serviceTasks(ctx, rec.Cluster, rec.Name)
	if err != nil {
		return nil, err
	}
	s := rec.ToAPI(tasks, withTags)
	return &s, nil
}

// serviceFeatures are the parts of a service berth does not implement yet;
// each is refused rather than ignored.
type serviceFeatures struct {
	loadBalancers   []types.LoadBalancer
	registries      []types.ServiceRegistry
	connect         *types.ServiceConnectConfiguration
	volumes         []types.ServiceVolumeConfiguration
	lattice         []types.VpcLatticeConfiguration
	gateways        []types.GatewayConnector
	monitoring      *types.MonitoringConfiguration
	network         *types.NetworkConfiguration
	platformVersion *string
	role            *string
}

func (f serviceFeatures) check(lt types.LaunchType) error {
	switch {
	case len(f.loadBalancers) > 0:
		return domain.InvalidParameter("Load balancers are not supported by berth yet.")
	case len(f.registries) > 0:
		return domain.InvalidParameter("Service discovery (serviceRegistries) is not supported by berth yet.")
	case f.connect != nil && f.connect.Enabled:
		return domain.InvalidParameter("Service Connect is not supported by berth yet.")
	case len(f.volumes) > 0:
		return domain.InvalidParameter("Volume configurations (Amazon EBS volumes) are not supported by berth yet.")
	case len(f.lattice) > 0:
		return domain.InvalidParameter("VPC Lattice configurations are not supported by berth yet.")
	case len(f.gateways) > 0:
		return domain.InvalidParameter("Gateway connectors are not supported by berth yet.")
	case f.monitoring != nil:
		return domain.InvalidParameter("Service monitoring configurations are not supported by berth yet.")
	case f.role != nil && *f.role != "":
		return domain.InvalidParameter("The role parameter is only valid with load balancers, which berth does not support yet.")
	case f.network != nil && f.network.AwsvpcConfiguration != nil:
		return domain.InvalidParameter("The awsvpc network mode is not supported by berth yet for EC2 and EXTERNAL tasks; use bridge, host or none.")
	case aws.ToString(f.platformVersion) != "":
		if lt == "" {
			lt = types.LaunchTypeEc2
		}
		return domain.InvalidParameter("The platform version must be null when specifying an " + string(lt) + " launch type.")
	}
	return nil
}

// serviceTaskDefinition resolves a service's taskDefinition parameter to an
// ACTIVE revision, refusing what berth cannot run for a service (awsvpc).
func (h *handlers) serviceTaskDefinition(ctx context.Context, ref string) (*domain.TaskDefinitionRecord, error) {
	r, err := h.parseTaskDefRef(ref)
	if err != nil {
		return nil, err
	}
	rec, _, err := h.findTaskDefinition(ctx, r, h.taskDefs.Decode)
	if err != nil {
		return nil, err
	}
	if rec.TaskDefinition.Status != types.TaskDefinitionStatusActive {
		return nil, domain.InvalidParameter("TaskDefinition is inactive")
	}
	if rec.TaskDefinition.NetworkMode == types.NetworkModeAwsvpc {
		return nil, domain.InvalidParameter("The awsvpc network mode is not supported by berth yet for EC2 and EXTERNAL tasks; use bridge, host or none.")
	}
	return &rec, nil
}

// validatePlacement checks a service's strategies and constraints as
// RunTask checks them, with the task definition's constraints counted.
func validatePlacement(strategies []types.PlacementStrategy, constraints []types.PlacementConstraint, td *types.TaskDefinition) error {
	opts := scheduler.Options{Strategies: strategies, Constraints: slices.Clone(constraints)}
	for _, c := range td.PlacementConstraints {
		opts.Constraints = append(opts.Constraints, types.PlacementConstraint{Type: types.PlacementConstraintType(c.Type), Expression: c.Expression})
	}
	return scheduler.ValidateOptions(opts)
}

// nonNilSlice returns s, or an empty slice when s is nil: DescribeServices
// shows empty lists, not absent members.
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CreateService creates a service: the record with ECS's defaults filled
// in and its first deployment (PRIMARY, IN_PROGRESS); the service
// controller then starts its tasks. A clientToken with the same parameters
// returns the service it created; reusing the name of an ACTIVE or
// DRAINING service otherwise is "Creation of service was not idempotent.";
// an INACTIVE service's name can be reused.
func (h *handlers) CreateService(ctx context.Context, in *ecs.CreateServiceInput) (*ecs.CreateServiceOutput, error) {
	name := aws.ToString(in.ServiceName)
	cluster, cerr := h.clusterRef(in.Cluster)
	resource := anyResource
	if cerr == nil && name != "" {
		resource = h.serviceARN(cluster, name)
	}
	if err := h.authorize(ctx, "CreateService", resource); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		// Tagging on create needs ecs:TagResource too.
		if err := h.authorize(ctx, "TagResource", resource); err != nil {
			return nil, err
		}
	}
	if cerr != nil {
		return nil, cerr
	}
	rec, err := h.newService(ctx, in, cluster)
	if err != nil {
		return nil, err
	}
	req := *in
	req.ClientToken, req.Cluster = nil, aws.String(cluster)
	if rec.RequestHash, err = requestHash(&req); err != nil {
		return nil, err
	}
	rec.ClientToken = aws.ToString(in.ClientToken)

	key := domain.ServiceKey(cluster, name)
	var out domain.ServiceRecord
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		_, crev, err := h.activeCluster(ctx, cluster)
		if err != nil {
			return nil, nil, err
		}
		cur, rev, found, err := get[domain.ServiceRecord](ctx, h.store, key)
		if err != nil {
			return nil, nil, err
		}
		if found && cur.Status() != domain.ServiceStatusInactive {
			if cur.Status() == domain.ServiceStatusActive && cur.RequestHash == rec.RequestHash && cur.ClientToken == rec.ClientToken {
				out = cur
				return nil, nil, nil
			}
			return nil, nil, domain.InvalidParameter("Creation of service was not idempotent.")
		}
		now := h.now()
		out = rec
		out.Service.CreatedAt = aws.Time(now)
		out.Deployments = []domain.DeploymentRecord{rec.Deployments[0]}
		out.Deployments[0].Deployment.CreatedAt = aws.Time(now)
		out.Deployments[0].Deployment.UpdatedAt = aws.Time(now)
		out.UpdatedAt = now
		op, err := put(key, out)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: domain.ClusterKey(cluster), ModRevision: crev}, {Key: key, ModRevision: rev}}, []store.Op{op}, nil
	})
	if err != nil {
		return nil, err
	}
	svc, err := h.renderService(ctx, &out, len(out.Service.Tags) > 0)
	if err != nil {
		return nil, err
	}
	return &ecs.CreateServiceOutput{Service: svc}, nil
}

// newService validates a CreateService request and builds its record, with
// its first deployment; timestamps are filled in at commit.
func (h *handlers) newService(ctx context.Context, in *ecs.CreateServiceInput, cluster string) (domain.ServiceRecord, error) {
	var none domain.ServiceRecord
	name := aws.ToString(in.ServiceName)
	if err := domain.ValidateServiceName(name); err != nil {
		return none, err
	}
	if err := domain.ValidateServiceClientToken(aws.ToString(in.ClientToken)); err != nil {
		return none, err
	}
	features := serviceFeatures{
		loadBalancers: in.LoadBalancers, registries: in.ServiceRegistries, connect: in.ServiceConnectConfiguration,
		volumes: in.VolumeConfigurations, lattice: in.VpcLatticeConfigurations, gateways: in.GatewayConnectors,
		monitoring: in.Monitoring, network: in.NetworkConfiguration, platformVersion: in.PlatformVersion, role: in.Role,
	}
	if err := features.check(in.LaunchType); err != nil {
		return none, err
	}
	if err := domain.ValidateDeploymentController(in.DeploymentController); err != nil {
		return none, err
	}
	sched, err := domain.SchedulingStrategyOf(in.SchedulingStrategy)
	if err != nil {
		return none, err
	}
	daemon := sched == types.SchedulingStrategyDaemon
	if err := domain.ValidateServiceDesiredCount(in.DesiredCount, daemon, true); err != nil {
		return none, err
	}
	if err := domain.ValidateDaemonPlacement(daemon, in.PlacementStrategy); err != nil {
		return none, err
	}
	if aws.ToString(in.TaskDefinition) == "" {
		return none, domain.InvalidParameter("taskDefinition is required for services with the ECS deployment controller.")
	}
	tdRec, err := h.serviceTaskDefinition(ctx, aws.ToString(in.TaskDefinition))
	if err != nil {
		return none, err
	}
	td := &tdRec.TaskDefinition
	lt, err := runLaunchType(in.LaunchType, in.CapacityProviderStrategy, td)
	if err != nil {
		return none, err
	}
	dc, err := domain.MergeDeploymentConfiguration(nil, in.DeploymentConfiguration, daemon)
	if err != nil {
		return none, err
	}
	if err := validatePlacement(in.PlacementStrategy, in.PlacementConstraints, td); err != nil {
		return none, err
	}
	if err := domain.ValidateHealthCheckGracePeriod(in.HealthCheckGracePeriodSeconds); err != nil {
		return none, err
	}
	propagate, err := domain.PropagateTagsOf(in.PropagateTags)
	if err != nil {
		return none, err
	}
	azDefault := types.AvailabilityZoneRebalancingEnabled
	if daemon {
		azDefault = types.AvailabilityZoneRebalancingDisabled
	}
	az, err := domain.AvailabilityZoneRebalancingOf(in.AvailabilityZoneRebalancing, azDefault)
	if err != nil {
		return none, err
	}
	if err := domain.ValidateTags(in.Tags); err != nil {
		return none, err
	}
	desired := aws.ToInt32(in.DesiredCount) // DAEMON: 0 until the controller counts the instances
	grace := aws.Int32(0)
	if in.HealthCheckGracePeriodSeconds != nil {
		grace = aws.Int32(*in.HealthCheckGracePeriodSeconds)
	}
	svc := types.Service{
		ServiceArn:                    aws.String(h.serviceARN(cluster, name)),
		ServiceName:                   aws.String(name),
		ClusterArn:                    aws.String(h.clusterARN(cluster)),
		Status:                        aws.String(domain.ServiceStatusActive),
		TaskDefinition:                td.TaskDefinitionArn,
		DesiredCount:                  desired,
		LaunchType:                    lt,
		DeploymentConfiguration:       dc,
		DeploymentController:          &types.DeploymentController{Type: types.DeploymentControllerTypeEcs},
		SchedulingStrategy:            sched,
		PlacementConstraints:          nonNilSlice(slices.Clone(in.PlacementConstraints)),
		PlacementStrategy:             nonNilSlice(slices.Clone(in.PlacementStrategy)),
		LoadBalancers:                 []types.LoadBalancer{},
		ServiceRegistries:             []types.ServiceRegistry{},
		HealthCheckGracePeriodSeconds: grace,
		PropagateTags:                 propagate,
		EnableECSManagedTags:          in.EnableECSManagedTags,
		EnableExecuteCommand:          in.EnableExecuteCommand,
		AvailabilityZoneRebalancing:   az,
		CreatedBy:                     aws.String(caller(ctx).ARN),
		Events:                        []types.ServiceEvent{},
		Tags:                          slices.Clone(in.Tags),
	}
	rec := domain.ServiceRecord{Service: svc, Name: name, Cluster: cluster, Generation: 1}
	breaker := dc.DeploymentCircuitBreaker != nil && dc.DeploymentCircuitBreaker.Enable
	rec.Deployments = []domain.DeploymentRecord{domain.NewDeployment(domain.NewDeploymentInput{
		TaskDefinition: td, DesiredCount: desired, LaunchType: lt, Breaker: breaker, Now: h.now(),
	})}
	return rec, nil
}

// servicePrologue authorizes action on the service a request names and
// resolves it to a cluster and a name. A reference that cannot name a
// service is ServiceNotFoundException.
func (h *handlers) servicePrologue(ctx context.Context, action string, clusterParam, serviceParam *string) (cluster, name string, err error) {
	ref := aws.ToString(serviceParam)
	cluster, cerr := h.serviceCluster(clusterParam, ref)
	resource := anyResource
	if cerr == nil && ref != "" {
		resource = h.serviceRefARN(cluster, ref)
	}
	if err := h.authorize(ctx, action, resource); err != nil {
		return "", "", err
	}
	if cerr != nil {
		return "", "", cerr
	}
	if ref == "" {
		return "", "", domain.InvalidParameter("service is required.")
	}
	name, ok := h.serviceRef(cluster, ref)
	if !ok {
		return "", "", serviceNotFound()
	}
	return cluster, name, nil
}

// changeService applies change to a service in one compare-and-swap
// transaction. A service the cache does not show yet is looked up again
// after a sync before the answer is ServiceNotFoundException. change says
// whether it changed the record; an unchanged record is not written.
func (h *handlers) changeService(ctx context.Context, cluster, name string, change func(*domain.ServiceRecord) (bool, error)) (domain.ServiceRecord, error) {
	key := domain.ServiceKey(cluster, name)
	var out domain.ServiceRecord
	synced := false
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		if _, _, err := h.activeCluster(ctx, cluster); err != nil {
			return nil, nil, err
		}
		rec, rev, found, err := getSynced[domain.ServiceRecord](ctx, h.store, key, &synced)
		if err != nil {
			return nil, nil, err
		}
		if !found {
			return nil, nil, serviceNotFound()
		}
		changed, err := change(&rec)
		if err != nil {
			return nil, nil, err
		}
		out = rec
		if !changed {
			return nil, nil, nil
		}
		now := h.now()
		out.Generation++
		out.UpdatedAt = now
		op, err := put(key, out)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{op}, nil
	})
	return out, err
}

// samePlacement says whether two lists hold the same items (nil and empty
// alike).
func samePlacement[T any](a, b []T) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// UpdateService changes an ACTIVE service. desiredCount alone scales the
// service and its PRIMARY deployment; a new task definition,
// forceNewDeployment, new placement strategies or constraints, or a change
// of propagateTags or enableECSManagedTags (what its tasks are started
// with) starts a new deployment; the deployment configuration, health
// check grace period, enableExecuteCommand and Availability Zone
// rebalancing change in place (tasks started later see them).
func (h *handlers) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput) (*ecs.UpdateServiceOutput, error) {
	cluster, name, err := h.servicePrologue(ctx, "UpdateService", in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	features := serviceFeatures{
		loadBalancers: in.LoadBalancers, registries: in.ServiceRegistries, connect: in.ServiceConnectConfiguration,
		volumes: in.VolumeConfigurations, lattice: in.VpcLatticeConfigurations, gateways: in.GatewayConnectors,
		monitoring: in.Monitoring, network: in.NetworkConfiguration, platformVersion: in.PlatformVersion,
	}
	if err := features.check(""); err != nil {
		return nil, err
	}
	if len(in.CapacityProviderStrategy) > 0 {
		return nil, domain.InvalidParameter("Capacity provider strategies are not supported by berth yet; use launchType EC2 or EXTERNAL.")
	}
	if err := domain.ValidateDeploymentController(in.DeploymentController); err != nil {
		return nil, err
	}
	if err := domain.ValidateHealthCheckGracePeriod(in.HealthCheckGracePeriodSeconds); err != nil {
		return nil, err
	}
	if in.PropagateTags != "" {
		if _, err := domain.PropagateTagsOf(in.PropagateTags); err != nil {
			return nil, err
		}
	}
	var newTD *domain.TaskDefinitionRecord
	if ref := aws.ToString(in.TaskDefinition); ref != "" {
		if newTD, err = h.serviceTaskDefinition(ctx, ref); err != nil {
			return nil, err
		}
	}
	out, err := h.changeService(ctx, cluster, name, func(rec *domain.ServiceRecord) (bool, error) {
		if rec.Status() != domain.ServiceStatusActive {
			return false, serviceNotActive()
		}
		return h.applyUpdate(ctx, rec, in, newTD)
	})
	if err != nil {
		return nil, err
	}
	svc, err := h.renderService(ctx, &out, false)
	if err != nil {
		return nil, err
	}
	return &ecs.UpdateServiceOutput{Service: svc}, nil
}

// applyUpdate applies an UpdateService request to an ACTIVE service and
// says whether it changed anything.
func (h *handlers) applyUpdate(ctx context.Context, rec *domain.ServiceRecord, in *ecs.UpdateServiceInput, newTD *domain.TaskDefinitionRecord) (bool, error) {
	before, err := json.Marshal(rec)
	if err != nil {
		return false, errdefs.Internal(err)
	}
	now := h.now()
	daemon := rec.IsDaemon()
	svc := &rec.Service
	if err := domain.ValidateServiceDesiredCount(in.DesiredCount, daemon, false); err != nil {
		return false, err
	}
	if err := domain.ValidateDaemonPlacement(daemon, in.PlacementStrategy); err != nil {
		return false, err
	}
	redeploy := in.ForceNewDeployment

	// The task definition of the next tasks: the new one, or the
	// PRIMARY deployment's.
	primary := rec.Primary()
	td := &types.TaskDefinition{TaskDefinitionArn: svc.TaskDefinition}
	if primary != nil {
		td.Family, td.Revision = aws.String(primary.Family), primary.Revision
	}
	if newTD != nil {
		if !domain.TaskDefinitionSupports(&newTD.TaskDefinition, svc.LaunchType) {
			return false, domain.InvalidParameter("Task definition does not support launch_type " + string(svc.LaunchType) + ".")
		}
		if aws.ToString(newTD.TaskDefinition.TaskDefinitionArn) != aws.ToString(svc.TaskDefinition) {
			redeploy = true
		}
		td = &newTD.TaskDefinition
	}

	if in.DeploymentConfiguration != nil {
		dc, err := domain.MergeDeploymentConfiguration(svc.DeploymentConfiguration, in.DeploymentConfiguration, daemon)
		if err != nil {
			return false, err
		}
		svc.DeploymentConfiguration = dc
	}
	if in.PlacementStrategy != nil || in.PlacementConstraints != nil {
		strategies, constraints := svc.PlacementStrategy, svc.PlacementConstraints
		if in.PlacementStrategy != nil {
			strategies = in.PlacementStrategy
		}
		if in.PlacementConstraints != nil {
			constraints = in.PlacementConstraints
		}
		full := td
		if newTD == nil {
			cur, err := h.taskDefinitionByARN(ctx, aws.ToString(svc.TaskDefinition))
			if err != nil {
				return false, err
			}
			full = &cur.TaskDefinition
		}
		if err := validatePlacement(strategies, constraints, full); err != nil {
			return false, err
		}
		if !samePlacement(strategies, svc.PlacementStrategy) || !samePlacement(constraints, svc.PlacementConstraints) {
			redeploy = true
		}
		svc.PlacementStrategy = nonNilSlice(slices.Clone(strategies))
		svc.PlacementConstraints = nonNilSlice(slices.Clone(constraints))
	}
	if in.HealthCheckGracePeriodSeconds != nil {
		svc.HealthCheckGracePeriodSeconds = aws.Int32(*in.HealthCheckGracePeriodSeconds)
	}
	if in.PropagateTags != "" && in.PropagateTags != svc.PropagateTags {
		svc.PropagateTags = in.PropagateTags
		redeploy = true
	}
	if in.EnableECSManagedTags != nil && *in.EnableECSManagedTags != svc.EnableECSManagedTags {
		svc.EnableECSManagedTags = *in.EnableECSManagedTags
		redeploy = true
	}
	if in.EnableExecuteCommand != nil {
		svc.EnableExecuteCommand = *in.EnableExecuteCommand
	}
	az, err := domain.AvailabilityZoneRebalancingOf(in.AvailabilityZoneRebalancing, svc.AvailabilityZoneRebalancing)
	if err != nil {
		return false, err
	}
	svc.AvailabilityZoneRebalancing = az
	if in.DesiredCount != nil && *in.DesiredCount != svc.DesiredCount {
		svc.DesiredCount = *in.DesiredCount
		if primary != nil && !redeploy {
			// Scaling alone: the PRIMARY deployment scales with the
			// service (a new deployment takes the new count instead).
			primary.Deployment.DesiredCount = svc.DesiredCount
			primary.Deployment.UpdatedAt = aws.Time(now)
		}
	}
	if redeploy {
		rec.StartDeployment(domain.NewDeployment(domain.NewDeploymentInput{
			TaskDefinition: td, DesiredCount: svc.DesiredCount, LaunchType: svc.LaunchType,
			Network: svc.NetworkConfiguration, Breaker: rec.CircuitBreaker() != nil, Now: now,
		}), now)
		return true, nil
	}
	after, err := json.Marshal(rec)
	if err != nil {
		return false, errdefs.Internal(err)
	}
	return string(before) != string(after), nil
}

// taskDefinitionByARN reads a revision by ARN, in any status.
func (h *handlers) taskDefinitionByARN(ctx context.Context, tdARN string) (domain.TaskDefinitionRecord, error) {
	r, err := h.parseTaskDefRef(tdARN)
	if err != nil {
		return domain.TaskDefinitionRecord{}, err
	}
	rec, _, err := h.findTaskDefinition(ctx, r, h.taskDefs.Decode)
	return rec, err
}

// DeleteService deletes an ACTIVE service: it must be scaled to 0 unless
// force is set (which scales it to 0); it becomes DRAINING and the service
// controller stops its tasks and marks it INACTIVE. A DAEMON service needs
// no scaling. Deleting a DRAINING or INACTIVE service returns it as it is,
// as ECS does.
func (h *handlers) DeleteService(ctx context.Context, in *ecs.DeleteServiceInput) (*ecs.DeleteServiceOutput, error) {
	cluster, name, err := h.servicePrologue(ctx, "DeleteService", in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	force := aws.ToBool(in.Force)
	out, err := h.changeService(ctx, cluster, name, func(rec *domain.ServiceRecord) (bool, error) {
		if rec.Status() != domain.ServiceStatusActive {
			return false, nil
		}
		if !rec.IsDaemon() && rec.Service.DesiredCount > 0 && !force {
			return false, domain.InvalidParameter("The service cannot be stopped while it is scaled above 0.")
		}
		now := h.now()
		rec.Service.Status = aws.String(domain.ServiceStatusDraining)
		rec.Service.DesiredCount = 0
		if p := rec.Primary(); p != nil {
			p.Deployment.DesiredCount = 0
			p.Deployment.UpdatedAt = aws.Time(now)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	svc, err := h.renderService(ctx, &out, false)
	if err != nil {
		return nil, err
	}
	return &ecs.DeleteServiceOutput{Service: svc}, nil
}

// DescribeServices describes up to 10 services of a cluster by name or
// ARN, in any status, with counts from their tasks. Unknown ones are
// failures with reason MISSING (the services-stable and services-inactive
// waiters rely on it). include TAGS adds their tags.
func (h *handlers) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput) (*ecs.DescribeServicesOutput, error) {
	cluster, err := h.clusterAndRefs(ctx, "DescribeServices", in.Cluster, in.Services, h.serviceRefARN,
		refLimits{"Services cannot be empty.", "services", domain.MaxDescribeServices})
	if err != nil {
		return nil, err
	}
	withTags, err := includeTags(in.Include, types.ServiceFieldTags)
	if err != nil {
		return nil, err
	}
	if _, err := h.existingCluster(ctx, aws.String(cluster)); err != nil {
		return nil, err
	}
	out := &ecs.DescribeServicesOutput{Services: []types.Service{}, Failures: []types.Failure{}}
	synced := false
	for _, ref := range in.Services {
		name, ok := h.serviceRef(cluster, ref)
		if !ok {
			out.Failures = append(out.Failures, missing(h.serviceRefARN(cluster, ref)))
			continue
		}
		key := domain.ServiceKey(cluster, name)
		rec, _, err := h.services.Get(ctx, h.store, key)
		if errors.Is(err, errdefs.ErrNotFound) && !synced {
			// Created through another server whose write this cache has
			// not applied yet: look again once reads are current.
			synced = true
			if err := store.Sync(ctx, h.store); err != nil {
				return nil, storeError(err)
			}
			rec, _, err = h.services.Get(ctx, h.store, key)
		}
		if errors.Is(err, errdefs.ErrNotFound) {
			out.Failures = append(out.Failures, missing(h.serviceARN(cluster, name)))
			continue
		}
		if err != nil {
			return nil, storeError(err)
		}
		svc, err := h.renderService(ctx, &rec, withTags)
		if err != nil {
			return nil, err
		}
		out.Services = append(out.Services, *svc)
	}
	return out, nil
}

// ListServices lists the ARNs of a cluster's ACTIVE services, by name,
// filtered by launch type, scheduling strategy and resource management
// type (every berth service is CUSTOMER-managed).
func (h *handlers) ListServices(ctx context.Context, in *ecs.ListServicesInput) (*ecs.ListServicesOutput, error) {
	if err := h.authorize(ctx, "ListServices", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	cluster, err := h.clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	if in.LaunchType != "" && !slices.Contains(types.LaunchType("").Values(), in.LaunchType) {
		return nil, domain.InvalidParameter("Invalid launchType " + string(in.LaunchType) + ".")
	}
	if in.SchedulingStrategy != "" {
		if _, err := domain.SchedulingStrategyOf(in.SchedulingStrategy); err != nil {
			return nil, err
		}
	}
	if in.ResourceManagementType != "" && !slices.Contains(types.ResourceManagementType("").Values(), in.ResourceManagementType) {
		return nil, domain.InvalidParameter("Invalid resourceManagementType " + string(in.ResourceManagementType) + ". Valid values are CUSTOMER and ECS.")
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	recs, err := listView(ctx, h.store, domain.ServicesPrefix(cluster), &h.services)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range recs {
		s := &r.Value.Service
		switch {
		case r.Value.Status() != domain.ServiceStatusActive,
			in.LaunchType != "" && s.LaunchType != in.LaunchType,
			in.SchedulingStrategy != "" && s.SchedulingStrategy != in.SchedulingStrategy,
			in.ResourceManagementType == types.ResourceManagementTypeEcs:
			continue
		}
		names = append(names, r.Value.Name)
	}
	page, next, err := paginate(names, func(s string) string { return s }, false, in.MaxResults, in.NextToken, servicesListLimits)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListServicesOutput{ServiceArns: []string{}, NextToken: next}
	for _, n := range page {
		out.ServiceArns = append(out.ServiceArns, h.serviceARN(cluster, n))
	}
	return out, nil
}
