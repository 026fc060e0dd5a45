package ecs

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
)

// DefaultClusterName is the cluster ECS assumes when a request names none.
const DefaultClusterName = "default"

// Cluster statuses. ECS also has PROVISIONING, DEPROVISIONING and FAILED for
// clusters whose capacity providers are being set up; berth's clusters have
// no such phase.
const (
	ClusterStatusActive   = "ACTIVE"
	ClusterStatusInactive = "INACTIVE"
)

// Fargate's built-in capacity providers, the only ones berth knows until
// CreateCapacityProvider exists.
const (
	CapacityProviderFargate     = "FARGATE"
	CapacityProviderFargateSpot = "FARGATE_SPOT"
)

// Cluster is the value stored at ClusterKey. A deleted cluster keeps its
// record with status INACTIVE, so DescribeClusters still shows it, as ECS
// does; creating it again turns the same record ACTIVE.
type Cluster struct {
	Name                            string                               `json:"name"`
	Status                          string                               `json:"status"`
	Settings                        []types.ClusterSetting               `json:"settings,omitempty"`
	Configuration                   *types.ClusterConfiguration          `json:"configuration,omitempty"`
	ServiceConnectDefaults          *types.ClusterServiceConnectDefaults `json:"serviceConnectDefaults,omitempty"`
	CapacityProviders               []string                             `json:"capacityProviders,omitempty"`
	DefaultCapacityProviderStrategy []types.CapacityProviderStrategyItem `json:"defaultCapacityProviderStrategy,omitempty"`
	Tags                            []types.Tag                          `json:"tags,omitempty"`
	CreatedAt                       time.Time                            `json:"createdAt"`
	UpdatedAt                       time.Time                            `json:"updatedAt"`
}

// Active reports whether the cluster has not been deleted.
func (c *Cluster) Active() bool { return c.Status == ClusterStatusActive }

// ClusterView says which optional parts of a cluster to show: DescribeClusters'
// include parameter (ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS, TAGS).
type ClusterView struct {
	Attachments    bool
	Configurations bool
	Settings       bool
	Statistics     bool
	Tags           bool
}

// ClusterViewOf reads DescribeClusters' include list; an unknown value is
// InvalidParameterException, as in ECS.
func ClusterViewOf(include []types.ClusterField) (ClusterView, error) {
	var v ClusterView
	for _, f := range include {
		switch f {
		case types.ClusterFieldAttachments:
			v.Attachments = true
		case types.ClusterFieldConfigurations:
			v.Configurations = true
		case types.ClusterFieldSettings:
			v.Settings = true
		case types.ClusterFieldStatistics:
			v.Statistics = true
		case types.ClusterFieldTags:
			v.Tags = true
		default:
			return v, InvalidParameter("include should be one of [ATTACHMENTS,CONFIGURATIONS,SETTINGS,STATISTICS,TAGS]")
		}
	}
	return v, nil
}

// FullClusterView is what CreateCluster, UpdateCluster and
// UpdateClusterSettings return: configuration, settings and tags; their
// statistics list is empty, as ECS's own examples show.
var FullClusterView = ClusterView{Configurations: true, Settings: true, Tags: true}

// ClusterStatisticNames are the keys of DescribeClusters' statistics, in the
// order ECS documents them.
var ClusterStatisticNames = []string{
	"runningEC2TasksCount",
	"runningFargateTasksCount",
	"pendingEC2TasksCount",
	"pendingFargateTasksCount",
	"activeEC2ServiceCount",
	"activeFargateServiceCount",
	"drainingEC2ServiceCount",
	"drainingFargateServiceCount",
}

// ClusterCounts are a cluster's live figures, counted from its records.
type ClusterCounts struct {
	// Instances are the ACTIVE and DRAINING container instances.
	Instances int32
	Tasks     TaskCounts
	// ActiveServices and DrainingServices count services by status.
	ActiveServices, DrainingServices int32
}

// ApplyCounts sets out's counts, and its statistics when they are shown.
// All of berth's tasks and services are EC2/EXTERNAL ones.
func (n ClusterCounts) ApplyCounts(out *types.Cluster) {
	out.RegisteredContainerInstancesCount = n.Instances
	out.RunningTasksCount = n.Tasks.Running
	out.PendingTasksCount = n.Tasks.Pending
	out.ActiveServicesCount = n.ActiveServices
	values := map[string]int32{
		"runningEC2TasksCount":    n.Tasks.Running,
		"pendingEC2TasksCount":    n.Tasks.Pending,
		"activeEC2ServiceCount":   n.ActiveServices,
		"drainingEC2ServiceCount": n.DrainingServices,
	}
	for i, kv := range out.Statistics {
		out.Statistics[i].Value = aws.String(strconv.Itoa(int(values[aws.ToString(kv.Name)])))
	}
}

// ToAPI renders the cluster as ECS returns it. Counts are zero until
// services, tasks and container instances exist. Lists that ECS always
// returns (statistics, tags, capacityProviders,
// defaultCapacityProviderStrategy) are empty rather than absent when not
// asked for or empty.
func (c *Cluster) ToAPI(region, account string, view ClusterView) *types.Cluster {
	out := &types.Cluster{
		ClusterArn:                      aws.String(arn.Cluster(region, account, c.Name)),
		ClusterName:                     aws.String(c.Name),
		Status:                          aws.String(c.Status),
		CapacityProviders:               nonNil(c.CapacityProviders),
		DefaultCapacityProviderStrategy: nonNil(c.DefaultCapacityProviderStrategy),
		ServiceConnectDefaults:          c.ServiceConnectDefaults,
		Statistics:                      []types.KeyValuePair{},
		Tags:                            []types.Tag{},
	}
	if view.Statistics {
		for _, name := range ClusterStatisticNames {
			out.Statistics = append(out.Statistics, types.KeyValuePair{Name: aws.String(name), Value: aws.String("0")})
		}
	}
	if view.Tags {
		out.Tags = nonNil(slices.Clone(c.Tags))
	}
	if view.Settings {
		out.Settings = nonNil(slices.Clone(c.Settings))
	}
	if view.Configurations && c.Configuration != nil {
		out.Configuration = c.Configuration
	}
	if view.Attachments {
		out.Attachments = []types.Attachment{}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

var clusterNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// ValidateClusterName checks a cluster name for CreateCluster.
func ValidateClusterName(name string) error {
	if !clusterNamePattern.MatchString(name) {
		return InvalidParameter("Invalid cluster name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.")
	}
	return nil
}

// ValidateClusterSettings checks cluster settings: the only name is
// containerInsights, with the values enabled, disabled and enhanced.
func ValidateClusterSettings(settings []types.ClusterSetting) error {
	for _, s := range settings {
		if s.Name != types.ClusterSettingNameContainerInsights {
			return InvalidParameter("Invalid cluster setting name: " + string(s.Name) + ". The only valid setting name is containerInsights.")
		}
		v := aws.ToString(s.Value)
		if !slices.Contains(containerInsightsValues, v) {
			return InvalidParameter("Invalid value for containerInsights: " + v + ". Valid values are " + strings.Join(containerInsightsValues, ", ") + ".")
		}
	}
	return nil
}

var containerInsightsValues = []string{"enabled", "disabled", "enhanced"}

// MergeClusterSettings returns old with each setting of update replacing the
// one of the same name (ECS updates settings by name; it never removes one).
func MergeClusterSettings(old, update []types.ClusterSetting) []types.ClusterSetting {
	out := slices.Clone(old)
	for _, u := range update {
		i := slices.IndexFunc(out, func(s types.ClusterSetting) bool { return s.Name == u.Name })
		if i >= 0 {
			out[i] = u
		} else {
			out = append(out, u)
		}
	}
	return out
}

// ValidateClusterConfiguration checks the execute-command logging mode, the
// one enumerated field of a cluster configuration.
func ValidateClusterConfiguration(cfg *types.ClusterConfiguration) error {
	if cfg == nil || cfg.ExecuteCommandConfiguration == nil {
		return nil
	}
	ecc := cfg.ExecuteCommandConfiguration
	if ecc.Logging != "" && !slices.Contains(types.ExecuteCommandLogging("").Values(), ecc.Logging) {
		return InvalidParameter("Invalid value for executeCommandConfiguration.logging: " + string(ecc.Logging) + ".")
	}
	if ecc.Logging == types.ExecuteCommandLoggingOverride && ecc.LogConfiguration == nil {
		return InvalidParameter("The logConfiguration is required when logging is set to OVERRIDE.")
	}
	return nil
}

// Capacity provider strategy limits from the ECS API reference.
const (
	maxStrategyWeight = 1000
	maxStrategyBase   = 100000
)

// ValidateCapacityProviders checks a cluster's capacity providers and its
// default strategy. Until CreateCapacityProvider exists, the only providers
// are Fargate's built-in FARGATE and FARGATE_SPOT.
func ValidateCapacityProviders(providers []string, strategy []types.CapacityProviderStrategyItem) error {
	for _, p := range providers {
		if p != CapacityProviderFargate && p != CapacityProviderFargateSpot {
			return InvalidParameter("The specified capacity provider " + p + " does not exist. Specify a valid capacity provider and try again.")
		}
	}
	withBase := 0
	for _, item := range strategy {
		name := aws.ToString(item.CapacityProvider)
		if !slices.Contains(providers, name) {
			return InvalidParameter("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.")
		}
		if item.Weight < 0 || item.Weight > maxStrategyWeight {
			return InvalidParameter("The capacity provider strategy weight must be between 0 and 1000.")
		}
		if item.Base < 0 || item.Base > maxStrategyBase {
			return InvalidParameter("The capacity provider strategy base must be between 0 and 100000.")
		}
		if item.Base > 0 {
			withBase++
		}
	}
	if withBase > 1 {
		return InvalidParameter("Only one capacity provider in a capacity provider strategy can have a base defined.")
	}
	return nil
}
