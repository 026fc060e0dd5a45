package ecsapi

import (
	"context"
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// maxDescribeClusters is DescribeClusters' limit on names per request.
const maxDescribeClusters = 100

func clusterNotFound() error {
	return errdefs.WithReason(errdefs.ErrNotFound, domain.ErrClusterNotFound, "Cluster not found.")
}

// clusterRef resolves a cluster parameter (name or ARN; empty means the
// default cluster) to a cluster name. A reference that cannot name one of
// this account's clusters is a ClusterNotFoundException.
func (h *handlers) clusterRef(ref *string) (string, error) {
	r := aws.ToString(ref)
	if r == "" {
		return domain.DefaultClusterName, nil
	}
	name, ok := arn.ClusterName(r, h.region, h.account)
	if !ok || domain.ValidateClusterName(name) != nil {
		return "", clusterNotFound()
	}
	return name, nil
}

func (h *handlers) clusterARN(name string) string { return arn.Cluster(h.region, h.account, name) }

// activeCluster reads a cluster that must exist and be ACTIVE.
func (h *handlers) activeCluster(ctx context.Context, name string) (domain.Cluster, int64, error) {
	c, rev, found, err := get[domain.Cluster](ctx, h.store, domain.ClusterKey(name))
	if err != nil {
		return c, 0, err
	}
	if !found || !c.Active() {
		return c, 0, clusterNotFound()
	}
	return c, rev, nil
}

// CreateCluster creates a cluster, or returns it unchanged when an ACTIVE
// cluster of that name exists (CreateCluster is idempotent in ECS). An
// INACTIVE (deleted) cluster of that name is created afresh.
func (h *handlers) CreateCluster(ctx context.Context, in *ecs.CreateClusterInput) (*ecs.CreateClusterOutput, error) {
	name := aws.ToString(in.ClusterName)
	if name == "" {
		name = domain.DefaultClusterName
	}
	clusterARN := h.clusterARN(name)
	if err := h.authorize(ctx, "CreateCluster", clusterARN); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		// Tagging on create needs ecs:TagResource too
		// (tagResourceAuthorization is on).
		if err := h.authorize(ctx, "TagResource", clusterARN); err != nil {
			return nil, err
		}
	}
	if err := domain.ValidateClusterName(name); err != nil {
		return nil, err
	}
	if err := domain.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	if err := domain.ValidateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	if err := domain.ValidateClusterConfiguration(in.Configuration); err != nil {
		return nil, err
	}
	if err := domain.ValidateCapacityProviders(in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	settings := domain.MergeClusterSettings(nil, in.Settings)
	if !slices.ContainsFunc(settings, func(s types.ClusterSetting) bool {
		return s.Name == types.ClusterSettingNameContainerInsights
	}) {
		// A cluster created without the setting takes the caller's
		// effective containerInsights account setting.
		v, err := h.effectiveSetting(ctx, caller(ctx).ARN, types.SettingNameContainerInsights)
		if err != nil {
			return nil, err
		}
		settings = append(settings, types.ClusterSetting{Name: types.ClusterSettingNameContainerInsights, Value: aws.String(v.Value)})
	}

	var out domain.Cluster
	key := domain.ClusterKey(name)
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		cur, rev, found, err := get[domain.Cluster](ctx, h.store, key)
		if err != nil {
			return nil, nil, err
		}
		if found && cur.Active() {
			out = cur
			return nil, nil, nil
		}
		now := h.now()
		out = domain.Cluster{
			Name:                            name,
			Status:                          domain.ClusterStatusActive,
			Settings:                        settings,
			Configuration:                   in.Configuration,
			ServiceConnectDefaults:          serviceConnectDefaults(in.ServiceConnectDefaults),
			CapacityProviders:               in.CapacityProviders,
			DefaultCapacityProviderStrategy: in.DefaultCapacityProviderStrategy,
			Tags:                            in.Tags,
			CreatedAt:                       now,
			UpdatedAt:                       now,
		}
		op, err := put(key, out)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{op}, nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.CreateClusterOutput{Cluster: out.ToAPI(h.region, h.account, domain.FullClusterView)}, nil
}

// serviceConnectDefaults records the namespace as given: berth has no
// Cloud Map to resolve a name to its ARN. An empty namespace removes the
// default.
func serviceConnectDefaults(req *types.ClusterServiceConnectDefaultsRequest) *types.ClusterServiceConnectDefaults {
	if req == nil || aws.ToString(req.Namespace) == "" {
		return nil
	}
	return &types.ClusterServiceConnectDefaults{Namespace: aws.String(*req.Namespace)}
}

// DescribeClusters describes clusters by name or ARN (the default cluster
// when none is named). Unknown clusters are failures with reason MISSING,
// never an error; deleted clusters are described with status INACTIVE.
func (h *handlers) DescribeClusters(ctx context.Context, in *ecs.DescribeClustersInput) (*ecs.DescribeClustersOutput, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{domain.DefaultClusterName}
	}
	if len(refs) > maxDescribeClusters {
		return nil, domain.InvalidParameter("clusters can have at most 100 items.")
	}
	for _, ref := range refs {
		if err := h.authorize(ctx, "DescribeClusters", h.refARN(ref)); err != nil {
			return nil, err
		}
	}
	view, err := domain.ClusterViewOf(in.Include)
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		if ref == "" {
			return nil, domain.InvalidParameter("Clusters can not be blank.")
		}
	}
	out := &ecs.DescribeClustersOutput{Clusters: []types.Cluster{}, Failures: []types.Failure{}}
	for _, ref := range refs {
		name, ok := arn.ClusterName(ref, h.region, h.account)
		var c domain.Cluster
		found := false
		if ok && domain.ValidateClusterName(name) == nil {
			var err error
			c, _, err = h.clusters.Get(ctx, h.store, domain.ClusterKey(name))
			switch {
			case err == nil:
				found = true
			case !errors.Is(err, errdefs.ErrNotFound):
				return nil, storeError(err)
			}
		}
		if !found {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(h.refARN(ref)), Reason: aws.String("MISSING")})
			continue
		}
		rendered := c.ToAPI(h.region, h.account, view)
		counts, err := h.clusterCounts(ctx, name)
		if err != nil {
			return nil, err
		}
		counts.ApplyCounts(rendered)
		out.Clusters = append(out.Clusters, *rendered)
	}
	return out, nil
}

// refARN is the ARN a cluster reference stands for: itself when it is an
// ARN, else the ARN of the cluster of that name here.
func (h *handlers) refARN(ref string) string {
	if arn.IsARN(ref) {
		return ref
	}
	return h.clusterARN(ref)
}

// clusterResource is the IAM resource of a cluster parameter.
func (h *handlers) clusterResource(ref *string) string {
	if aws.ToString(ref) == "" {
		return anyResource
	}
	return h.refARN(*ref)
}

// ListClusters lists the ARNs of ACTIVE clusters, sorted.
func (h *handlers) ListClusters(ctx context.Context, in *ecs.ListClustersInput) (*ecs.ListClustersOutput, error) {
	if err := h.authorize(ctx, "ListClusters", anyResource); err != nil {
		return nil, err
	}
	clusters, err := listView(ctx, h.store, domain.ClustersPrefix, &h.clusters)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range clusters {
		if c.Value.Active() {
			names = append(names, c.Value.Name)
		}
	}
	slices.Sort(names)
	page, next, err := paginate(names, func(s string) string { return s }, false, in.MaxResults, in.NextToken, listLimits)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListClustersOutput{ClusterArns: []string{}, NextToken: next}
	for _, n := range page {
		out.ClusterArns = append(out.ClusterArns, h.clusterARN(n))
	}
	return out, nil
}

// updateCluster applies change to an ACTIVE cluster in one
// compare-and-swap transaction and returns the result. An error from change
// aborts the update.
func (h *handlers) updateCluster(ctx context.Context, name string, change func(*domain.Cluster) error) (domain.Cluster, error) {
	var out domain.Cluster
	key := domain.ClusterKey(name)
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		c, rev, err := h.activeCluster(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		if err := change(&c); err != nil {
			return nil, nil, err
		}
		c.UpdatedAt = h.now()
		op, err := put(key, c)
		if err != nil {
			return nil, nil, err
		}
		out = c
		return []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{op}, nil
	})
	return out, err
}

// UpdateCluster changes a cluster's settings (by name), execute-command
// configuration (replaced when given) and Service Connect default
// namespace (replaced when given; empty removes it).
func (h *handlers) UpdateCluster(ctx context.Context, in *ecs.UpdateClusterInput) (*ecs.UpdateClusterOutput, error) {
	if err := h.authorize(ctx, "UpdateCluster", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	name, err := h.requiredClusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := domain.ValidateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	if err := domain.ValidateClusterConfiguration(in.Configuration); err != nil {
		return nil, err
	}
	c, err := h.updateCluster(ctx, name, func(c *domain.Cluster) error {
		c.Settings = domain.MergeClusterSettings(c.Settings, in.Settings)
		if in.Configuration != nil {
			c.Configuration = in.Configuration
		}
		if in.ServiceConnectDefaults != nil {
			c.ServiceConnectDefaults = serviceConnectDefaults(in.ServiceConnectDefaults)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.UpdateClusterOutput{Cluster: c.ToAPI(h.region, h.account, domain.FullClusterView)}, nil
}

// UpdateClusterSettings changes a cluster's settings, by name.
func (h *handlers) UpdateClusterSettings(ctx context.Context, in *ecs.UpdateClusterSettingsInput) (*ecs.UpdateClusterSettingsOutput, error) {
	if err := h.authorize(ctx, "UpdateClusterSettings", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	name, err := h.requiredClusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	if len(in.Settings) == 0 {
		return nil, domain.InvalidParameter("settings must not be empty.")
	}
	if err := domain.ValidateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	c, err := h.updateCluster(ctx, name, func(c *domain.Cluster) error {
		c.Settings = domain.MergeClusterSettings(c.Settings, in.Settings)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.UpdateClusterSettingsOutput{Cluster: c.ToAPI(h.region, h.account, domain.FullClusterView)}, nil
}

// requiredClusterRef resolves a cluster parameter the action requires.
func (h *handlers) requiredClusterRef(ref *string) (string, error) {
	if aws.ToString(ref) == "" {
		return "", domain.InvalidParameter("cluster is required.")
	}
	return h.clusterRef(ref)
}

// clusterContents are the resources that keep a cluster from being deleted,
// checked in this order. live says whether a stored record still counts:
// STOPPED tasks and INACTIVE instances stay describable for a while but no
// longer keep a cluster alive, nor do INACTIVE (deleted) services.
var clusterContents = []struct {
	prefix func(cluster string) string
	reason error
	noun   string
	live   func(store.KV) (bool, error)
}{
	{domain.ServicesPrefix, domain.ErrClusterContainsServices, "Services", func(kv store.KV) (bool, error) {
		s, err := decode[domain.ServiceRecord](kv)
		return s.Status() != domain.ServiceStatusInactive, err
	}},
	{domain.ContainerInstancesPrefix, domain.ErrClusterContainsContainerInstances, "Container Instances", func(kv store.KV) (bool, error) {
		ci, err := decode[domain.ContainerInstance](kv)
		return ci.Status != domain.InstanceStatusInactive, err
	}},
	{domain.TasksPrefix, domain.ErrClusterContainsTasks, "Tasks", func(kv store.KV) (bool, error) {
		t, err := decode[domain.TaskRecord](kv)
		return aws.ToString(t.Task.LastStatus) != domain.TaskStatusStopped, err
	}},
}

// DeleteCluster marks an empty cluster INACTIVE. Its record stays, so
// DescribeClusters still shows it; ListClusters no longer does.
func (h *handlers) DeleteCluster(ctx context.Context, in *ecs.DeleteClusterInput) (*ecs.DeleteClusterOutput, error) {
	if err := h.authorize(ctx, "DeleteCluster", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	name, err := h.requiredClusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	out, err := h.updateCluster(ctx, name, func(c *domain.Cluster) error {
		// Resources created concurrently with the delete are not seen here;
		// the actions that create them will compare-and-swap on the cluster
		// record, which this delete changes, so one of the two fails.
		for _, cc := range clusterContents {
			kvs, _, err := h.store.List(ctx, cc.prefix(name))
			if err != nil {
				return storeError(err)
			}
			for _, kv := range kvs {
				live, err := cc.live(kv)
				if err != nil {
					return err
				}
				if live {
					return errdefs.WithReason(errdefs.ErrFailedPrecondition, cc.reason,
						"The Cluster cannot be deleted while "+cc.noun+" are active.")
				}
			}
		}
		c.Status = domain.ClusterStatusInactive
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.DeleteClusterOutput{Cluster: out.ToAPI(h.region, h.account, domain.ClusterView{})}, nil
}

// clusterCounts counts a cluster's instances (ACTIVE and DRAINING), tasks
// not yet STOPPED (through the instance → task index) and services by
// status.
func (h *handlers) clusterCounts(ctx context.Context, cluster string) (domain.ClusterCounts, error) {
	var n domain.ClusterCounts
	insts, _, err := h.store.List(ctx, domain.ContainerInstancesPrefix(cluster))
	if err != nil {
		return n, storeError(err)
	}
	for _, kv := range insts {
		ci, _, err := h.instances.Get(ctx, h.store, kv.Key)
		if err != nil {
			continue // deleted since the listing
		}
		if ci.Status != domain.InstanceStatusInactive {
			n.Instances++
		}
	}
	perInstance, err := h.clusterTaskCounts(ctx, cluster)
	if err != nil {
		return n, err
	}
	for _, c := range perInstance {
		n.Tasks.Running += c.Running
		n.Tasks.Pending += c.Pending
	}
	svcs, _, err := h.store.List(ctx, domain.ServicesPrefix(cluster))
	if err != nil {
		return n, storeError(err)
	}
	for _, kv := range svcs {
		s, _, err := h.services.Get(ctx, h.store, kv.Key)
		if err != nil {
			continue
		}
		switch s.Status() {
		case domain.ServiceStatusActive:
			n.ActiveServices++
		case domain.ServiceStatusDraining:
			n.DrainingServices++
		}
	}
	return n, nil
}
