package ecsapi

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsarn "github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/store"
)

func (h *handlers) rootARN() string { return domain.RootARN(h.region, h.account) }

// effectiveSetting is the value of a setting for a principal: its own,
// else the account default (the root principal's), else ECS's default,
// which is reported as the root's.
func (h *handlers) effectiveSetting(ctx context.Context, principalARN string, name types.SettingName) (domain.AccountSetting, error) {
	for _, p := range []string{principalARN, h.rootARN()} {
		if p == "" {
			continue
		}
		s, _, found, err := get[domain.AccountSetting](ctx, h.store, domain.AccountSettingKey(p, name))
		if err != nil || found {
			return s, err
		}
	}
	return domain.AccountSetting{Name: name, Value: domain.DefaultAccountSettingValue(name), PrincipalARN: h.rootARN()}, nil
}

// settingPrincipal resolves the principalArn parameter: the caller when
// absent; otherwise an IAM user, role or root ARN of this account.
func (h *handlers) settingPrincipal(ctx context.Context, p *string) (string, error) {
	s := aws.ToString(p)
	if s == "" {
		s = caller(ctx).ARN
		if s == "" {
			return "", domain.InvalidParameter("principalArn is required.")
		}
		return s, nil
	}
	a, err := awsarn.Parse(s)
	if err != nil || a.Service != "iam" || a.AccountID != h.account ||
		(a.Resource != "root" && !hasAnyPrefix(a.Resource, "user/", "role/")) {
		return "", domain.InvalidParameter("Invalid principalArn " + s + ". Specify the ARN of an IAM user, an IAM role or the root user of this account.")
	}
	return s, nil
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return len(s) > len(p) && s[:len(p)] == p })
}

// putSetting stores one principal's value of a setting. The last writer
// wins; there is nothing to compare against.
func (h *handlers) putSetting(ctx context.Context, principalARN string, name types.SettingName, value string) (domain.AccountSetting, error) {
	if err := domain.ValidateAccountSetting(name, value, principalARN == h.rootARN()); err != nil {
		return domain.AccountSetting{}, err
	}
	s := domain.AccountSetting{Name: name, Value: value, PrincipalARN: principalARN, UpdatedAt: h.now()}
	op, err := put(domain.AccountSettingKey(principalARN, name), s)
	if err != nil {
		return s, err
	}
	if _, err := h.store.Txn(ctx, nil, []store.Op{op}); err != nil {
		return s, storeError(err)
	}
	return s, nil
}

// PutAccountSetting sets an account setting for the caller, or for the
// principal named by principalArn (the root principal's value is the
// account default).
func (h *handlers) PutAccountSetting(ctx context.Context, in *ecs.PutAccountSettingInput) (*ecs.PutAccountSettingOutput, error) {
	if err := h.authorize(ctx, "PutAccountSetting", anyResource); err != nil {
		return nil, err
	}
	principal, err := h.settingPrincipal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	s, err := h.putSetting(ctx, principal, in.Name, aws.ToString(in.Value))
	if err != nil {
		return nil, err
	}
	api := s.ToAPI()
	return &ecs.PutAccountSettingOutput{Setting: &api}, nil
}

// PutAccountSettingDefault sets an account setting for every principal of
// the account that has not set its own.
func (h *handlers) PutAccountSettingDefault(ctx context.Context, in *ecs.PutAccountSettingDefaultInput) (*ecs.PutAccountSettingDefaultOutput, error) {
	if err := h.authorize(ctx, "PutAccountSettingDefault", anyResource); err != nil {
		return nil, err
	}
	s, err := h.putSetting(ctx, h.rootARN(), in.Name, aws.ToString(in.Value))
	if err != nil {
		return nil, err
	}
	api := s.ToAPI()
	return &ecs.PutAccountSettingDefaultOutput{Setting: &api}, nil
}

// ListAccountSettings lists the settings a principal (the caller by
// default) has set itself or, with effectiveSettings, the value in effect
// for every setting: its own, else the account default, else ECS's.
// Results are sorted by setting name.
func (h *handlers) ListAccountSettings(ctx context.Context, in *ecs.ListAccountSettingsInput) (*ecs.ListAccountSettingsOutput, error) {
	if err := h.authorize(ctx, "ListAccountSettings", anyResource); err != nil {
		return nil, err
	}
	principal, err := h.settingPrincipal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	if in.Value != nil && in.Name == "" {
		return nil, domain.InvalidParameter("You must also specify an account setting name to filter by value.")
	}
	names := domain.AccountSettingNames()
	if in.Name != "" {
		if err := domain.ValidateAccountSettingName(in.Name); err != nil {
			return nil, err
		}
		names = []types.SettingName{in.Name}
	}
	var settings []domain.AccountSetting
	for _, n := range names {
		var s domain.AccountSetting
		found := true
		if in.EffectiveSettings {
			s, err = h.effectiveSetting(ctx, principal, n)
		} else {
			s, _, found, err = get[domain.AccountSetting](ctx, h.store, domain.AccountSettingKey(principal, n))
		}
		if err != nil {
			return nil, err
		}
		if !found || (in.Value != nil && s.Value != *in.Value) {
			continue
		}
		settings = append(settings, s)
	}
	var maxResults *int32
	if in.MaxResults != 0 {
		maxResults = aws.Int32(in.MaxResults)
	}
	page, next, err := paginate(settings, func(s domain.AccountSetting) string { return string(s.Name) }, false, maxResults, in.NextToken, accountSettingsLimits)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListAccountSettingsOutput{Settings: []types.Setting{}, NextToken: next}
	for _, s := range page {
		out.Settings = append(out.Settings, s.ToAPI())
	}
	return out, nil
}
