package ecs

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/errdefs"
)

// wantMsg fails unless err is an invalid-argument error with message msg
// ("" wants no error).
func wantMsg(t *testing.T, name string, err error, msg string) {
	t.Helper()
	if msg == "" {
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: no error, want %q", name, msg)
		return
	}
	if got := errdefs.Message(err, ""); got != msg || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("%s: error %q (%v), want invalid argument %q", name, got, err, msg)
	}
}

func TestServiceValidationTexts(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		name string
		err  error
		msg  string
	}{
		{"name ok", ValidateServiceName("web_1-a"), ""},
		{"name 255", ValidateServiceName(long[:255]), ""},
		{"name 256", ValidateServiceName(long), "Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."},
		{"name empty", ValidateServiceName(""), "Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."},
		{"name slash", ValidateServiceName("a/b"), "Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."},
		{"token ok", ValidateServiceClientToken(strings.Repeat("!", 36)), ""},
		{"token long", ValidateServiceClientToken(strings.Repeat("x", 37)), "clientToken can be up to 36 ASCII characters in the range 33-126."},
		{"token space", ValidateServiceClientToken("a b"), "clientToken can be up to 36 ASCII characters in the range 33-126."},
		{"desired replica missing", ValidateServiceDesiredCount(nil, false, true), "desiredCount is required for services with the REPLICA scheduling strategy."},
		{"desired replica update", ValidateServiceDesiredCount(nil, false, false), ""},
		{"desired negative", ValidateServiceDesiredCount(aws.Int32(-1), false, false), "desiredCount must be at least 0."},
		{"desired daemon", ValidateServiceDesiredCount(aws.Int32(0), true, true), "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again"},
		{"desired daemon absent", ValidateServiceDesiredCount(nil, true, true), ""},
		{"daemon strategy", ValidateDaemonPlacement(true, []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}), "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again"},
		{"daemon no strategy", ValidateDaemonPlacement(true, []types.PlacementStrategy{}), ""},
		{"replica strategy", ValidateDaemonPlacement(false, []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}), ""},
		{"controller nil", ValidateDeploymentController(nil), ""},
		{"controller ECS", ValidateDeploymentController(&types.DeploymentController{Type: types.DeploymentControllerTypeEcs}), ""},
		{"controller CODE_DEPLOY", ValidateDeploymentController(&types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}), "The CODE_DEPLOY deployment controller is not supported by berth yet; use the ECS deployment controller."},
		{"controller EXTERNAL", ValidateDeploymentController(&types.DeploymentController{Type: types.DeploymentControllerTypeExternal}), "The EXTERNAL deployment controller is not supported by berth yet; use the ECS deployment controller."},
		{"controller bad", ValidateDeploymentController(&types.DeploymentController{Type: "X"}), "Invalid deploymentController type X. Valid values are ECS, CODE_DEPLOY and EXTERNAL."},
		{"grace ok", ValidateHealthCheckGracePeriod(aws.Int32(MaxHealthCheckGracePeriod)), ""},
		{"grace negative", ValidateHealthCheckGracePeriod(aws.Int32(-1)), "healthCheckGracePeriodSeconds must be between 0 and 2147483647."},
	}
	for _, tt := range tests {
		wantMsg(t, tt.name, tt.err, tt.msg)
	}
}

func TestServiceEnums(t *testing.T) {
	if s, err := SchedulingStrategyOf(""); err != nil || s != types.SchedulingStrategyReplica {
		t.Errorf("default scheduling strategy: %v %v", s, err)
	}
	_, err := SchedulingStrategyOf("BOTH")
	wantMsg(t, "scheduling", err, "Invalid schedulingStrategy BOTH. Valid values are REPLICA and DAEMON.")
	if p, err := PropagateTagsOf(""); err != nil || p != types.PropagateTagsNone {
		t.Errorf("default propagateTags: %v %v", p, err)
	}
	_, err = PropagateTagsOf("ALL")
	wantMsg(t, "propagate", err, "Invalid propagateTags ALL. Valid values are TASK_DEFINITION, SERVICE and NONE.")
	if v, err := AvailabilityZoneRebalancingOf("", types.AvailabilityZoneRebalancingEnabled); err != nil || v != types.AvailabilityZoneRebalancingEnabled {
		t.Errorf("default AZ rebalancing: %v %v", v, err)
	}
	_, err = AvailabilityZoneRebalancingOf("ON", "")
	wantMsg(t, "az", err, "Invalid availabilityZoneRebalancing ON. Valid values are ENABLED and DISABLED.")
}

func TestMergeDeploymentConfiguration(t *testing.T) {
	breaker := &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}
	tests := []struct {
		name       string
		cur, given *types.DeploymentConfiguration
		daemon     bool
		min, max   int32
		breaker    bool
		msg        string
	}{
		{name: "replica defaults", min: 100, max: 200},
		{name: "daemon defaults", daemon: true, min: 0, max: 100},
		{name: "given", given: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150), DeploymentCircuitBreaker: breaker}, min: 50, max: 150, breaker: true},
		{name: "merged over current", cur: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150), DeploymentCircuitBreaker: breaker},
			given: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(300)}, min: 50, max: 300, breaker: true},
		{name: "min 0 max 100", given: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(0), MaximumPercent: aws.Int32(100)}, min: 0, max: 100},
		{name: "min too high", given: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(101)}, msg: "minimumHealthyPercent must be between 0 and 100."},
		{name: "min negative", given: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(-1)}, msg: "minimumHealthyPercent must be between 0 and 100."},
		{name: "max too low", given: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(99)}, msg: "maximumPercent must be at least 100."},
		{name: "daemon max 200", daemon: true, given: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(200)},
			msg: "The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment configuration. Change the maximumPercent value to 100, and try again"},
		{name: "daemon min 50", daemon: true, given: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50)}, min: 50, max: 100},
		{name: "blue green", given: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen}, msg: "The BLUE_GREEN deployment strategy is not supported by berth yet; use ROLLING."},
		{name: "bad strategy", given: &types.DeploymentConfiguration{Strategy: "FAST"}, msg: "Invalid deployment strategy FAST. Valid values are ROLLING, BLUE_GREEN, LINEAR and CANARY."},
		{name: "alarms", given: &types.DeploymentConfiguration{Alarms: &types.DeploymentAlarms{Enable: true, AlarmNames: []string{"a"}}},
			msg: "Deployment alarms are not supported by berth yet: berth has no CloudWatch alarms. Use the deployment circuit breaker."},
		{name: "alarms off", given: &types.DeploymentConfiguration{Alarms: &types.DeploymentAlarms{}}, min: 100, max: 200},
		{name: "hooks", given: &types.DeploymentConfiguration{LifecycleHooks: []types.DeploymentLifecycleHook{}},
			msg: "Deployment lifecycle hooks, canary, linear and early success configurations are not supported by berth yet; berth deploys with the ROLLING strategy."},
		{name: "bake time", given: &types.DeploymentConfiguration{BakeTimeInMinutes: aws.Int32(1441)}, msg: "bakeTimeInMinutes must be between 0 and 1440."},
		{name: "threshold type", given: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, ThresholdConfiguration: &types.ThresholdConfiguration{Type: "X", Value: 1}}},
			msg: "Invalid thresholdConfiguration type X. Valid values are COUNT, BOUNDED_PERCENT and UNBOUNDED_PERCENT."},
		{name: "threshold value", given: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, ThresholdConfiguration: &types.ThresholdConfiguration{Type: types.ThresholdTypeCount}}},
			msg: "thresholdConfiguration value must be at least 1."},
	}
	for _, tt := range tests {
		got, err := MergeDeploymentConfiguration(tt.cur, tt.given, tt.daemon)
		wantMsg(t, tt.name, err, tt.msg)
		if err != nil || tt.msg != "" {
			continue
		}
		if aws.ToInt32(got.MinimumHealthyPercent) != tt.min || aws.ToInt32(got.MaximumPercent) != tt.max ||
			got.DeploymentCircuitBreaker == nil || got.DeploymentCircuitBreaker.Enable != tt.breaker || got.Strategy != types.DeploymentStrategyRolling {
			t.Errorf("%s: %+v", tt.name, got)
		}
		if tt.cur != nil && got == tt.cur {
			t.Errorf("%s: the current configuration was returned, not a copy", tt.name)
		}
	}
	// The current configuration is not changed by a merge.
	cur := DefaultDeploymentConfiguration(false)
	if _, err := MergeDeploymentConfiguration(cur, &types.DeploymentConfiguration{MaximumPercent: aws.Int32(400)}, false); err != nil || *cur.MaximumPercent != 200 {
		t.Errorf("merge changed its input: %v %d", err, *cur.MaximumPercent)
	}
}
