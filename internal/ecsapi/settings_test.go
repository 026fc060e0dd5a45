package ecsapi

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	domain "github.com/berth-dev/berth/internal/ecs"
)

// settingsOf lists every page of ListAccountSettings as name=value@principal.
func (e *env) settingsOf(in ecs.ListAccountSettingsInput) []string {
	e.t.Helper()
	var all []string
	for range 100 {
		out := must(e.t, e.h.ListAccountSettings)(e.ctx, &in)
		for _, s := range out.Settings {
			all = append(all, string(s.Name)+"="+aws.ToString(s.Value)+"@"+aws.ToString(s.PrincipalArn))
		}
		if out.NextToken == nil {
			return all
		}
		in.NextToken = out.NextToken
	}
	e.t.Fatal("pagination does not end")
	return nil
}

func TestAccountSettings(t *testing.T) {
	e := newEnv(t)
	if got := e.settingsOf(ecs.ListAccountSettingsInput{}); len(got) != 0 {
		t.Errorf("own settings before any were set: %v", got)
	}

	// Effective settings before anything is set: ECS's defaults, as the
	// root's, every name, sorted, across pages of the default size 10.
	var want []string
	for _, n := range domain.AccountSettingNames() {
		want = append(want, string(n)+"="+domain.DefaultAccountSettingValue(n)+"@"+rootARN)
	}
	if diff := cmp.Diff(want, e.settingsOf(ecs.ListAccountSettingsInput{EffectiveSettings: true})); diff != "" {
		t.Errorf("effective defaults (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, e.settingsOf(ecs.ListAccountSettingsInput{EffectiveSettings: true, MaxResults: 3})); diff != "" {
		t.Errorf("effective defaults in pages of 3 (-want +got):\n%s", diff)
	}

	put := must(t, e.h.PutAccountSetting)(e.ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("enhanced")})
	if s := put.Setting; s.Name != types.SettingNameContainerInsights || aws.ToString(s.Value) != "enhanced" ||
		aws.ToString(s.PrincipalArn) != adminARN || s.Type != types.SettingTypeUser {
		t.Errorf("PutAccountSetting = %+v", s)
	}
	def := must(t, e.h.PutAccountSettingDefault)(e.ctx, &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled")})
	if aws.ToString(def.Setting.PrincipalArn) != rootARN {
		t.Errorf("PutAccountSettingDefault = %+v", def.Setting)
	}
	bob := "arn:aws:iam::123456789012:user/bob"
	must(t, e.h.PutAccountSetting)(e.ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("disabled"), PrincipalArn: aws.String(bob)})

	tests := []struct {
		name string
		in   ecs.ListAccountSettingsInput
		want []string
	}{
		{"own", ecs.ListAccountSettingsInput{}, []string{"containerInsights=enhanced@" + adminARN}},
		{"bob's own", ecs.ListAccountSettingsInput{PrincipalArn: aws.String(bob)}, []string{"awsvpcTrunking=disabled@" + bob}},
		{"root's own", ecs.ListAccountSettingsInput{PrincipalArn: aws.String(rootARN)}, []string{"awsvpcTrunking=enabled@" + rootARN}},
		{"effective by name", ecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameAwsvpcTrunking},
			[]string{"awsvpcTrunking=enabled@" + rootARN}},
		{"bob's effective by name", ecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameAwsvpcTrunking, PrincipalArn: aws.String(bob)},
			[]string{"awsvpcTrunking=disabled@" + bob}},
		{"effective own", ecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameContainerInsights},
			[]string{"containerInsights=enhanced@" + adminARN}},
		{"value filter", ecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameContainerInsights, Value: aws.String("disabled")}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, e.settingsOf(tt.in)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	errs := []struct {
		name string
		call func() error
		msg  string
	}{
		{"unknown name", func() error {
			_, err := e.h.PutAccountSetting(e.ctx, &ecs.PutAccountSettingInput{Name: "containerLongArnFormat", Value: aws.String("enabled")})
			return err
		}, ""},
		{"bad value", func() error {
			_, err := e.h.PutAccountSetting(e.ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("on")})
			return err
		}, ""},
		{"aws managed", func() error {
			_, err := e.h.PutAccountSettingDefault(e.ctx, &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameGuardDutyActivate, Value: aws.String("enabled")})
			return err
		}, ""},
		{"root only", func() error {
			_, err := e.h.PutAccountSetting(e.ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameFargateTaskRetirementWaitPeriod, Value: aws.String("14")})
			return err
		}, ""},
		{"other account's principal", func() error {
			_, err := e.h.PutAccountSetting(e.ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("enabled"),
				PrincipalArn: aws.String("arn:aws:iam::999999999999:user/x")})
			return err
		}, ""},
		{"value filter without name", func() error {
			_, err := e.h.ListAccountSettings(e.ctx, &ecs.ListAccountSettingsInput{Value: aws.String("enabled")})
			return err
		}, ""},
		{"list unknown name", func() error {
			_, err := e.h.ListAccountSettings(e.ctx, &ecs.ListAccountSettingsInput{Name: "nope"})
			return err
		}, ""},
		{"page too large", func() error {
			_, err := e.h.ListAccountSettings(e.ctx, &ecs.ListAccountSettingsInput{MaxResults: 11})
			return err
		}, "maxResults must be between 1 and 10."},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.call(), "InvalidParameterException", tt.msg) })
	}
	must(t, e.h.PutAccountSettingDefault)(e.ctx, &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameFargateTaskRetirementWaitPeriod, Value: aws.String("14")})
}
