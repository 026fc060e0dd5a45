package ecs

import (
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
)

// AccountSetting is the value stored at AccountSettingKey: one principal's
// value of one ECS account setting. The account default
// (PutAccountSettingDefault) is the setting of the account's root principal,
// as in ECS.
type AccountSetting struct {
	Name         types.SettingName `json:"name"`
	Value        string            `json:"value"`
	PrincipalARN string            `json:"principalArn"`
	UpdatedAt    time.Time         `json:"updatedAt"`
}

// ToAPI renders the setting as ListAccountSettings and PutAccountSetting*
// return it. Settings that AWS manages (guardDutyActivate) have type
// aws_managed; all others are user settings.
func (s AccountSetting) ToAPI() types.Setting {
	typ := types.SettingTypeUser
	if settingDefaults[s.Name].awsManaged {
		typ = types.SettingTypeAwsManaged
	}
	return types.Setting{
		Name:         s.Name,
		Value:        aws.String(s.Value),
		PrincipalArn: aws.String(s.PrincipalARN),
		Type:         typ,
	}
}

// RootARN is the ARN of an account's root principal, which holds the
// account-wide defaults.
func RootARN(region, account string) string {
	return "arn:" + arn.Partition(region) + ":iam::" + account + ":root"
}

// settingSpec describes one account setting: its accepted values, ECS's
// default when nobody set it, and who may change it.
type settingSpec struct {
	values []string
	def    string
	// awsManaged settings are read-only (GuardDuty sets guardDutyActivate).
	awsManaged bool
	// rootOnly settings may only be set for the root principal.
	rootOnly bool
}

var (
	onOff           = []string{"enabled", "disabled"}
	settingDefaults = map[types.SettingName]settingSpec{
		// The long-ARN opt-in period ended in 2021: every account has them.
		types.SettingNameServiceLongArnFormat:           {values: onOff, def: "enabled"},
		types.SettingNameTaskLongArnFormat:              {values: onOff, def: "enabled"},
		types.SettingNameContainerInstanceLongArnFormat: {values: onOff, def: "enabled"},
		types.SettingNameAwsvpcTrunking:                 {values: onOff, def: "disabled"},
		types.SettingNameContainerInsights:              {values: containerInsightsValues, def: "disabled"},
		types.SettingNameFargateFipsMode:                {values: onOff, def: "disabled"},
		// Tagging authorization has been on for every account since 2024.
		types.SettingNameTagResourceAuthorization: {values: []string{"on", "off"}, def: "on"},
		// AWS's documented default wait is 7 days.
		types.SettingNameFargateTaskRetirementWaitPeriod: {values: []string{"0", "7", "14"}, def: "7", rootOnly: true},
		types.SettingNameGuardDutyActivate:               {values: onOff, def: "disabled", awsManaged: true},
		// ECS changed the default to non-blocking on 2025-06-25.
		types.SettingNameDefaultLogDriverMode: {values: []string{"blocking", "non-blocking"}, def: "non-blocking"},
		types.SettingNameFargateEventWindows:  {values: onOff, def: "disabled"},
	}
)

// AccountSettingNames lists every account setting name the SDK knows,
// sorted.
func AccountSettingNames() []types.SettingName {
	names := slices.Clone(types.SettingName("").Values())
	slices.Sort(names)
	return names
}

func settingSpecOf(name types.SettingName) (settingSpec, error) {
	spec, ok := settingDefaults[name]
	if !ok || !slices.Contains(types.SettingName("").Values(), name) {
		names := make([]string, 0, len(settingDefaults))
		for _, n := range AccountSettingNames() {
			names = append(names, string(n))
		}
		return settingSpec{}, InvalidParameter("Invalid account setting name " + string(name) + ". It should be one of [" + strings.Join(names, ",") + "].")
	}
	return spec, nil
}

// ValidateAccountSettingName checks that name is an ECS account setting.
func ValidateAccountSettingName(name types.SettingName) error {
	_, err := settingSpecOf(name)
	return err
}

// ValidateAccountSetting checks a PutAccountSetting(Default) request:
// a known, user-managed setting and one of its values. forRoot says whether
// the setting is being set for the root principal (the account default).
func ValidateAccountSetting(name types.SettingName, value string, forRoot bool) error {
	spec, err := settingSpecOf(name)
	if err != nil {
		return err
	}
	if spec.awsManaged {
		return InvalidParameter("The " + string(name) + " account setting is managed by AWS and cannot be changed.")
	}
	if spec.rootOnly && !forRoot {
		return InvalidParameter("The " + string(name) + " account setting can only be set for the root user. Use PutAccountSettingDefault.")
	}
	if !slices.Contains(spec.values, value) {
		return InvalidParameter("Invalid value " + value + " for account setting " + string(name) + ". Valid values are " + strings.Join(spec.values, ", ") + ".")
	}
	return nil
}

// DefaultAccountSettingValue is ECS's value of a setting that neither the
// principal nor the account has set.
func DefaultAccountSettingValue(name types.SettingName) string {
	return settingDefaults[name].def
}
