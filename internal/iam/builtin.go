package iam

import (
	"context"
	"slices"
	"strings"
)

// InstancePath is the IAM path of the users berth creates for joined agents
// (container instances): arn:aws:iam::<account>:user/berth/instances/<name>.
const InstancePath = "/berth/instances/"

// InstanceARNPrefix returns the ARN prefix of the instance users of an
// account: every principal whose ARN starts with it is an agent.
func InstanceARNPrefix(accountID string) string {
	return "arn:aws:iam::" + accountID + ":user" + InstancePath
}

// ActionCreateJoinToken is berth's own action for minting join tokens
// (POST /agent/v1/tokens). No built-in identity but the admin has it.
const ActionCreateJoinToken = "berth:CreateJoinToken"

// Builtin authorizes with the identities berth creates itself, until full
// IAM policy evaluation replaces it behind the same interface:
//   - the principal whose ARN is AdminARN may do everything;
//   - a principal whose ARN is InstanceARNPrefix followed by a user name (no
//     further path) may do what AWS's managed policy
//     AmazonEC2ContainerServiceforEC2Role (v10) allows, see InstancePolicy;
//   - everyone else nothing.
//
// An empty InstanceARNPrefix disables the instance role.
type Builtin struct {
	AdminARN          string
	InstanceARNPrefix string
}

var _ Authorizer = Builtin{}

// Authorize implements Authorizer.
func (b Builtin) Authorize(ctx context.Context, p Principal, action, resource string) error {
	switch {
	case p.ARN == "":
	case p.ARN == b.AdminARN:
		return nil
	case b.isInstance(p.ARN):
		if InstancePolicy.Allows(ctx, action, resource) {
			return nil
		}
	}
	return AccessDenied(p, action, resource)
}

func (b Builtin) isInstance(principalARN string) bool {
	if b.InstanceARNPrefix == "" {
		return false
	}
	name, ok := strings.CutPrefix(principalARN, b.InstanceARNPrefix)
	return ok && name != "" && !strings.Contains(name, "/")
}

// Statement is one Allow statement of a built-in policy: Actions and
// Resources are IAM patterns ('*' any run of characters, '?' one
// character; actions compare case-insensitively, resources exactly), and
// Condition, when set, must hold for the request in ctx.
type Statement struct {
	Actions   []string
	Resources []string
	Condition func(ctx context.Context) bool
}

// Policy is a list of Allow statements: a request is allowed when one
// statement matches its action and resource and its condition holds. It
// has no Deny: the built-in policies need none.
type Policy []Statement

// Allows reports whether some statement of the policy allows action on
// resource.
func (pol Policy) Allows(ctx context.Context, action, resource string) bool {
	for _, s := range pol {
		if !slices.ContainsFunc(s.Actions, func(pat string) bool { return match(strings.ToLower(pat), strings.ToLower(action)) }) {
			continue
		}
		if !slices.ContainsFunc(s.Resources, func(pat string) bool { return match(pat, resource) }) {
			continue
		}
		if s.Condition == nil || s.Condition(ctx) {
			return true
		}
	}
	return false
}

// InstancePolicy is the policy of instance users: AWS's managed policy
// AmazonEC2ContainerServiceforEC2Role, version v10 (2026-02-12), statement
// for statement. The ecs:CreateAction condition of its tagging statement is
// read from the context (WithCreateAction); the API layer sets it when it
// authorizes tags passed to a create action.
var InstancePolicy = Policy{
	{
		Actions: []string{
			"ec2:DescribeTags",
			"ecs:CreateCluster",
			"ecs:DeregisterContainerInstance",
			"ecs:DiscoverPollEndpoint",
			"ecs:Poll",
			"ecs:RegisterContainerInstance",
			"ecs:StartTelemetrySession",
			"ecs:UpdateContainerInstancesState",
			"ecs:Submit*",
			"ecr:GetAuthorizationToken",
			"ecr:BatchCheckLayerAvailability",
			"ecr:GetDownloadUrlForLayer",
			"ecr:BatchGetImage",
			"logs:CreateLogStream",
			"logs:PutLogEvents",
		},
		Resources: []string{"*"},
	},
	{
		Actions:   []string{"ecs:TagResource"},
		Resources: []string{"*"},
		Condition: func(ctx context.Context) bool {
			a := CreateAction(ctx)
			return a == "CreateCluster" || a == "RegisterContainerInstance"
		},
	},
	{
		Actions:   []string{"ecs:ListTagsForResource"},
		Resources: []string{"arn:aws:ecs:*:*:task/*/*", "arn:aws:ecs:*:*:container-instance/*/*"},
	},
}

type ctxKey int

const createActionKey ctxKey = iota

// WithCreateAction returns ctx carrying the condition key ecs:CreateAction:
// the name of the ECS action (e.g. "RegisterContainerInstance") whose tags
// are being authorized as ecs:TagResource.
func WithCreateAction(ctx context.Context, action string) context.Context {
	return context.WithValue(ctx, createActionKey, action)
}

// CreateAction returns the ecs:CreateAction carried by ctx, or "".
func CreateAction(ctx context.Context) string {
	a, _ := ctx.Value(createActionKey).(string)
	return a
}

// match reports whether s matches the IAM wildcard pattern pat ('*' any
// run of characters, '?' exactly one). Iterative with one backtrack point,
// so it is linear-ish and cannot blow up on many stars.
func match(pat, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pat) && (pat[p] == '?' || pat[p] == s[i]):
			p++
			i++
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}
