package ecs

import (
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Service limits (ECS API reference; docs/services.md for berth's choices
// where ECS documents none).
const (
	// MaxDescribeServices is DescribeServices' limit on names per call.
	MaxDescribeServices = 10
	// MaxServiceClientToken is CreateService's clientToken limit: up to 36
	// ASCII characters from 33 to 126.
	MaxServiceClientToken = 36
	// MaxHealthCheckGracePeriod is healthCheckGracePeriodSeconds' maximum.
	MaxHealthCheckGracePeriod = 2147483647
)

// Messages ECS gives for DAEMON services, word for word (they end without a
// full stop in ECS's answers).
const (
	msgDaemonDesiredCount = "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again"
	msgDaemonStrategies   = "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again"
	msgDaemonMaxPercent   = "The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment configuration. Change the maximumPercent value to 100, and try again"
)

// serviceNamePattern: up to 255 letters, digits, hyphens and underscores,
// as for clusters.
var serviceNamePattern = clusterNamePattern

// ValidateServiceName checks a CreateService serviceName.
func ValidateServiceName(name string) error {
	if !serviceNamePattern.MatchString(name) {
		return InvalidParameter("Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.")
	}
	return nil
}

// ValidServiceName says whether name can name a service (a reference that
// cannot is a service ECS does not know).
func ValidServiceName(name string) bool { return serviceNamePattern.MatchString(name) }

// ValidateServiceClientToken checks CreateService's clientToken.
func ValidateServiceClientToken(tok string) error {
	ok := len(tok) <= MaxServiceClientToken
	for i := 0; ok && i < len(tok); i++ {
		ok = tok[i] >= 33 && tok[i] <= 126
	}
	if !ok {
		return InvalidParameter(fmt.Sprintf("clientToken can be up to %d ASCII characters in the range 33-126.", MaxServiceClientToken))
	}
	return nil
}

// SchedulingStrategyOf validates a schedulingStrategy; empty is REPLICA.
func SchedulingStrategyOf(s types.SchedulingStrategy) (types.SchedulingStrategy, error) {
	switch s {
	case "":
		return types.SchedulingStrategyReplica, nil
	case types.SchedulingStrategyReplica, types.SchedulingStrategyDaemon:
		return s, nil
	}
	return "", InvalidParameter("Invalid schedulingStrategy " + string(s) + ". Valid values are REPLICA and DAEMON.")
}

// ValidateServiceDesiredCount checks a desiredCount given to CreateService
// (required for REPLICA, refused for DAEMON) or UpdateService (optional;
// refused for DAEMON).
func ValidateServiceDesiredCount(desired *int32, daemon, required bool) error {
	switch {
	case daemon && desired != nil:
		return InvalidParameter(msgDaemonDesiredCount)
	case daemon:
		return nil
	case desired == nil && required:
		return InvalidParameter("desiredCount is required for services with the REPLICA scheduling strategy.")
	case desired != nil && *desired < 0:
		return InvalidParameter("desiredCount must be at least 0.")
	}
	return nil
}

// ValidateDaemonPlacement refuses placement strategies for a DAEMON
// service (constraints are allowed).
func ValidateDaemonPlacement(daemon bool, strategies []types.PlacementStrategy) error {
	if daemon && len(strategies) > 0 {
		return InvalidParameter(msgDaemonStrategies)
	}
	return nil
}

// ValidateDeploymentController accepts the ECS (rolling) controller only;
// nil is ECS.
func ValidateDeploymentController(dc *types.DeploymentController) error {
	if dc == nil {
		return nil
	}
	switch dc.Type {
	case types.DeploymentControllerTypeEcs:
		return nil
	case types.DeploymentControllerTypeCodeDeploy, types.DeploymentControllerTypeExternal:
		return InvalidParameter("The " + string(dc.Type) + " deployment controller is not supported by berth yet; use the ECS deployment controller.")
	}
	return InvalidParameter("Invalid deploymentController type " + string(dc.Type) + ". Valid values are ECS, CODE_DEPLOY and EXTERNAL.")
}

// PropagateTagsOf validates a service's propagateTags; empty is NONE.
func PropagateTagsOf(p types.PropagateTags) (types.PropagateTags, error) {
	switch p {
	case "":
		return types.PropagateTagsNone, nil
	case types.PropagateTagsNone, types.PropagateTagsService, types.PropagateTagsTaskDefinition:
		return p, nil
	}
	return "", InvalidParameter("Invalid propagateTags " + string(p) + ". Valid values are TASK_DEFINITION, SERVICE and NONE.")
}

// ValidateHealthCheckGracePeriod checks healthCheckGracePeriodSeconds
// (0–2,147,483,647; an int32 cannot exceed the maximum).
func ValidateHealthCheckGracePeriod(p *int32) error {
	if p != nil && *p < 0 {
		return InvalidParameter(fmt.Sprintf("healthCheckGracePeriodSeconds must be between 0 and %d.", MaxHealthCheckGracePeriod))
	}
	return nil
}

// AvailabilityZoneRebalancingOf validates availabilityZoneRebalancing.
// Empty is def: ENABLED for a new REPLICA service (ECS's create default),
// DISABLED for a DAEMON one, the current value on update.
func AvailabilityZoneRebalancingOf(v, def types.AvailabilityZoneRebalancing) (types.AvailabilityZoneRebalancing, error) {
	switch v {
	case "":
		return def, nil
	case types.AvailabilityZoneRebalancingEnabled, types.AvailabilityZoneRebalancingDisabled:
		return v, nil
	}
	return "", InvalidParameter("Invalid availabilityZoneRebalancing " + string(v) + ". Valid values are ENABLED and DISABLED.")
}

// DefaultDeploymentConfiguration is the deploymentConfiguration ECS shows
// for a service created without one.
func DefaultDeploymentConfiguration(daemon bool) *types.DeploymentConfiguration {
	minPct, maxPct := int32(DefaultReplicaMinimumHealthyPercent), int32(DefaultReplicaMaximumPercent)
	if daemon {
		minPct, maxPct = DefaultDaemonMinimumHealthyPercent, DefaultDaemonMaximumPercent
	}
	return &types.DeploymentConfiguration{
		DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: false, Rollback: false},
		MaximumPercent:           aws.Int32(maxPct),
		MinimumHealthyPercent:    aws.Int32(minPct),
		Strategy:                 types.DeploymentStrategyRolling,
	}
}

// MergeDeploymentConfiguration returns cur (nil: the defaults) with the
// members in given replaced, validated: minimumHealthyPercent 0–100,
// maximumPercent at least 100 (exactly 100 for DAEMON), the ROLLING
// strategy only, no CloudWatch alarms enabled, a valid circuit-breaker
// threshold. The result is a fresh value; cur is not changed.
func MergeDeploymentConfiguration(cur, given *types.DeploymentConfiguration, daemon bool) (*types.DeploymentConfiguration, error) {
	out := DefaultDeploymentConfiguration(daemon)
	if cur != nil {
		c := *cur
		out = &c
	}
	if given != nil {
		if given.MinimumHealthyPercent != nil {
			out.MinimumHealthyPercent = aws.Int32(*given.MinimumHealthyPercent)
		}
		if given.MaximumPercent != nil {
			out.MaximumPercent = aws.Int32(*given.MaximumPercent)
		}
		if given.DeploymentCircuitBreaker != nil {
			b := *given.DeploymentCircuitBreaker
			out.DeploymentCircuitBreaker = &b
		}
		if given.Alarms != nil {
			a := *given.Alarms
			a.AlarmNames = slices.Clone(a.AlarmNames)
			out.Alarms = &a
		}
		if given.Strategy != "" {
			out.Strategy = given.Strategy
		}
		if given.BakeTimeInMinutes != nil {
			out.BakeTimeInMinutes = aws.Int32(*given.BakeTimeInMinutes)
		}
		if given.LifecycleHooks != nil || given.CanaryConfiguration != nil || given.LinearConfiguration != nil || given.EarlySuccessCriteria != nil {
			return nil, InvalidParameter("Deployment lifecycle hooks, canary, linear and early success configurations are not supported by berth yet; berth deploys with the ROLLING strategy.")
		}
	}
	if out.Strategy == "" {
		out.Strategy = types.DeploymentStrategyRolling
	}
	if err := validateDeploymentConfiguration(out, daemon); err != nil {
		return nil, err
	}
	return out, nil
}

func validateDeploymentConfiguration(dc *types.DeploymentConfiguration, daemon bool) error {
	minPct, maxPct := aws.ToInt32(dc.MinimumHealthyPercent), aws.ToInt32(dc.MaximumPercent)
	if minPct < 0 || minPct > 100 {
		return InvalidParameter("minimumHealthyPercent must be between 0 and 100.")
	}
	if daemon && maxPct > 100 {
		return InvalidParameter(msgDaemonMaxPercent)
	}
	if maxPct < 100 {
		return InvalidParameter("maximumPercent must be at least 100.")
	}
	switch dc.Strategy {
	case "", types.DeploymentStrategyRolling:
	case types.DeploymentStrategyBlueGreen, types.DeploymentStrategyLinear, types.DeploymentStrategyCanary:
		return InvalidParameter("The " + string(dc.Strategy) + " deployment strategy is not supported by berth yet; use ROLLING.")
	default:
		return InvalidParameter("Invalid deployment strategy " + string(dc.Strategy) + ". Valid values are ROLLING, BLUE_GREEN, LINEAR and CANARY.")
	}
	if b := aws.ToInt32(dc.BakeTimeInMinutes); b < 0 || b > 1440 {
		return InvalidParameter("bakeTimeInMinutes must be between 0 and 1440.")
	}
	if dc.Alarms != nil && dc.Alarms.Enable {
		return InvalidParameter("Deployment alarms are not supported by berth yet: berth has no CloudWatch alarms. Use the deployment circuit breaker.")
	}
	if b := dc.DeploymentCircuitBreaker; b != nil && b.ThresholdConfiguration != nil {
		t := b.ThresholdConfiguration
		switch t.Type {
		case types.ThresholdTypeCount, types.ThresholdTypeBoundedPercent, types.ThresholdTypeUnboundedPercent:
		default:
			return InvalidParameter("Invalid thresholdConfiguration type " + string(t.Type) + ". Valid values are COUNT, BOUNDED_PERCENT and UNBOUNDED_PERCENT.")
		}
		if t.Value < 1 {
			return InvalidParameter("thresholdConfiguration value must be at least 1.")
		}
	}
	return nil
}
