package ecs

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestEverySDKSettingHasADefault(t *testing.T) {
	for _, n := range types.SettingName("").Values() {
		spec, ok := settingDefaults[n]
		if !ok {
			t.Errorf("setting %s has no spec", n)
			continue
		}
		if DefaultAccountSettingValue(n) == "" {
			t.Errorf("setting %s has no default", n)
		}
		found := false
		for _, v := range spec.values {
			found = found || v == spec.def
		}
		if !found {
			t.Errorf("default %q of %s is not one of its values %v", spec.def, n, spec.values)
		}
	}
}

func TestValidateAccountSetting(t *testing.T) {
	tests := []struct {
		name    types.SettingName
		value   string
		forRoot bool
		ok      bool
	}{
		{types.SettingNameContainerInsights, "enhanced", false, true},
		{types.SettingNameContainerInsights, "on", false, false},
		{types.SettingNameServiceLongArnFormat, "enabled", false, true},
		{types.SettingNameTagResourceAuthorization, "off", false, true},
		{types.SettingNameTagResourceAuthorization, "disabled", false, false},
		{types.SettingNameFargateTaskRetirementWaitPeriod, "14", true, true},
		{types.SettingNameFargateTaskRetirementWaitPeriod, "14", false, false},
		{types.SettingNameFargateTaskRetirementWaitPeriod, "3", true, false},
		{types.SettingNameGuardDutyActivate, "enabled", true, false},
		{types.SettingNameDefaultLogDriverMode, "blocking", false, true},
		{"containerLongArnFormat", "enabled", false, false},
		{"", "enabled", false, false},
	}
	for _, tt := range tests {
		if err := ValidateAccountSetting(tt.name, tt.value, tt.forRoot); (err == nil) != tt.ok {
			t.Errorf("ValidateAccountSetting(%s, %s, %v) = %v, want ok=%v", tt.name, tt.value, tt.forRoot, err, tt.ok)
		}
	}
	if RootARN("us-east-1", "123456789012") != "arn:aws:iam::123456789012:root" {
		t.Error(RootARN("us-east-1", "123456789012"))
	}
}
