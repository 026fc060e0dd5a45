package ecs

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestValidateClusterName(t *testing.T) {
	for name, ok := range map[string]bool{
		"default":                 true,
		"My_Cluster-2":            true,
		strings.Repeat("a", 255):  true,
		strings.Repeat("a", 256):  false,
		"":                        false,
		"with space":              false,
		"slash/inside":            false,
		"dot.name":                false,
		"arn:aws:ecs:x:1:cluster": false,
	} {
		if err := ValidateClusterName(name); (err == nil) != ok {
			t.Errorf("ValidateClusterName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func setting(v string) types.ClusterSetting {
	return types.ClusterSetting{Name: types.ClusterSettingNameContainerInsights, Value: aws.String(v)}
}

func TestValidateClusterSettings(t *testing.T) {
	for _, v := range []string{"enabled", "disabled", "enhanced"} {
		if err := ValidateClusterSettings([]types.ClusterSetting{setting(v)}); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	if err := ValidateClusterSettings([]types.ClusterSetting{setting("on")}); err == nil {
		t.Error("value on accepted")
	}
	if err := ValidateClusterSettings([]types.ClusterSetting{{Name: "other", Value: aws.String("enabled")}}); err == nil {
		t.Error("unknown name accepted")
	}
}

func TestMergeClusterSettings(t *testing.T) {
	got := MergeClusterSettings([]types.ClusterSetting{setting("disabled")}, []types.ClusterSetting{setting("enhanced")})
	if diff := cmp.Diff([]types.ClusterSetting{setting("enhanced")}, got, cmpopts.IgnoreUnexported(types.ClusterSetting{})); diff != "" {
		t.Error(diff)
	}
}

func TestValidateCapacityProviders(t *testing.T) {
	item := func(p string, weight, base int32) types.CapacityProviderStrategyItem {
		return types.CapacityProviderStrategyItem{CapacityProvider: aws.String(p), Weight: weight, Base: base}
	}
	both := []string{CapacityProviderFargate, CapacityProviderFargateSpot}
	tests := []struct {
		name      string
		providers []string
		strategy  []types.CapacityProviderStrategyItem
		ok        bool
	}{
		{"none", nil, nil, true},
		{"fargate", both, []types.CapacityProviderStrategyItem{item("FARGATE", 1, 1), item("FARGATE_SPOT", 4, 0)}, true},
		{"unknown provider", []string{"mine"}, nil, false},
		{"not associated", []string{"FARGATE"}, []types.CapacityProviderStrategyItem{item("FARGATE_SPOT", 1, 0)}, false},
		{"weight", both, []types.CapacityProviderStrategyItem{item("FARGATE", 1001, 0)}, false},
		{"base", both, []types.CapacityProviderStrategyItem{item("FARGATE", 1, 100001)}, false},
		{"two bases", both, []types.CapacityProviderStrategyItem{item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 1)}, false},
	}
	for _, tt := range tests {
		if err := ValidateCapacityProviders(tt.providers, tt.strategy); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestValidateClusterConfiguration(t *testing.T) {
	cfg := func(l types.ExecuteCommandLogging, withLog bool) *types.ClusterConfiguration {
		c := &types.ClusterConfiguration{ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{Logging: l}}
		if withLog {
			c.ExecuteCommandConfiguration.LogConfiguration = &types.ExecuteCommandLogConfiguration{CloudWatchLogGroupName: aws.String("g")}
		}
		return c
	}
	for _, tt := range []struct {
		cfg *types.ClusterConfiguration
		ok  bool
	}{
		{nil, true},
		{cfg(types.ExecuteCommandLoggingDefault, false), true},
		{cfg(types.ExecuteCommandLoggingOverride, true), true},
		{cfg(types.ExecuteCommandLoggingOverride, false), false},
		{cfg("LOUD", false), false},
	} {
		if err := ValidateClusterConfiguration(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%+v: %v, want ok=%v", tt.cfg, err, tt.ok)
		}
	}
}

func TestClusterToAPI(t *testing.T) {
	c := &Cluster{
		Name:     "prod",
		Status:   ClusterStatusActive,
		Settings: []types.ClusterSetting{setting("enabled")},
		Tags:     []types.Tag{tag("env", "prod")},
		Configuration: &types.ClusterConfiguration{
			ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{Logging: types.ExecuteCommandLoggingDefault},
		},
	}
	plain := c.ToAPI("us-east-1", "123456789012", ClusterView{})
	if got := aws.ToString(plain.ClusterArn); got != "arn:aws:ecs:us-east-1:123456789012:cluster/prod" {
		t.Errorf("arn %s", got)
	}
	if plain.Settings != nil || plain.Configuration != nil || len(plain.Tags) != 0 || len(plain.Statistics) != 0 || plain.Attachments != nil {
		t.Errorf("plain view shows optional parts: %+v", plain)
	}
	if plain.Tags == nil || plain.Statistics == nil || plain.CapacityProviders == nil || plain.DefaultCapacityProviderStrategy == nil {
		t.Errorf("plain view omits lists ECS always returns: %+v", plain)
	}
	full := c.ToAPI("us-east-1", "123456789012", ClusterView{Attachments: true, Configurations: true, Settings: true, Statistics: true, Tags: true})
	if len(full.Settings) != 1 || len(full.Tags) != 1 || full.Configuration == nil || len(full.Statistics) != len(ClusterStatisticNames) || full.Attachments == nil {
		t.Errorf("full view: %+v", full)
	}
	if v, err := ClusterViewOf([]types.ClusterField{types.ClusterFieldTags, types.ClusterFieldStatistics}); err != nil || v != (ClusterView{Tags: true, Statistics: true}) {
		t.Errorf("ClusterViewOf = %+v, %v", v, err)
	}
	if _, err := ClusterViewOf([]types.ClusterField{"BOGUS"}); err == nil || err.Error() != "include should be one of [ATTACHMENTS,CONFIGURATIONS,SETTINGS,STATISTICS,TAGS]" {
		t.Errorf("unknown include: %v", err)
	}
}
