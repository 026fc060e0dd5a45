package iam

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestBuiltinAuthorize(t *testing.T) {
	const acct = "123456789012"
	b := Builtin{AdminARN: "arn:aws:iam::" + acct + ":user/admin", InstanceARNPrefix: InstanceARNPrefix(acct)}
	admin := Principal{AccountID: acct, ARN: b.AdminARN}
	inst := Principal{AccountID: acct, ARN: "arn:aws:iam::" + acct + ":user/berth/instances/i-0123456789abcdef"}
	other := Principal{AccountID: acct, ARN: "arn:aws:iam::" + acct + ":user/alice"}
	nested := Principal{AccountID: acct, ARN: "arn:aws:iam::" + acct + ":user/berth/instances/x/i-1"}
	bare := Principal{AccountID: acct, ARN: InstanceARNPrefix(acct)}
	foreign := Principal{AccountID: "210987654321", ARN: "arn:aws:iam::210987654321:user/berth/instances/i-1"}
	clusterARN := "arn:aws:ecs:us-east-1:" + acct + ":cluster/default"
	tag := WithCreateAction(context.Background(), "RegisterContainerInstance")

	tests := []struct {
		name     string
		ctx      context.Context
		p        Principal
		action   string
		resource string
		allow    bool
	}{
		{"admin anything", nil, admin, "ecs:DeleteCluster", clusterARN, true},
		{"admin berth action", nil, admin, ActionCreateJoinToken, "*", true},
		{"admin iam", nil, admin, "iam:CreateUser", "*", true},
		{"instance CreateCluster", nil, inst, "ecs:CreateCluster", clusterARN, true},
		{"instance RegisterContainerInstance", nil, inst, "ecs:RegisterContainerInstance", clusterARN, true},
		{"instance DeregisterContainerInstance", nil, inst, "ecs:DeregisterContainerInstance", clusterARN, true},
		{"instance DiscoverPollEndpoint", nil, inst, "ecs:DiscoverPollEndpoint", "*", true},
		{"instance Poll", nil, inst, "ecs:Poll", "*", true},
		{"instance StartTelemetrySession", nil, inst, "ecs:StartTelemetrySession", "*", true},
		{"instance UpdateContainerInstancesState", nil, inst, "ecs:UpdateContainerInstancesState", clusterARN, true},
		{"instance SubmitTaskStateChange", nil, inst, "ecs:SubmitTaskStateChange", clusterARN, true},
		{"instance SubmitContainerStateChange", nil, inst, "ecs:SubmitContainerStateChange", clusterARN, true},
		{"instance SubmitAttachmentStateChanges", nil, inst, "ecs:SubmitAttachmentStateChanges", clusterARN, true},
		{"action case-insensitive", nil, inst, "ECS:submittaskstatechange", clusterARN, true},
		{"instance ecr token", nil, inst, "ecr:GetAuthorizationToken", "*", true},
		{"instance ecr layers", nil, inst, "ecr:BatchCheckLayerAvailability", "*", true},
		{"instance ecr download", nil, inst, "ecr:GetDownloadUrlForLayer", "*", true},
		{"instance ecr image", nil, inst, "ecr:BatchGetImage", "*", true},
		{"instance logs stream", nil, inst, "logs:CreateLogStream", "*", true},
		{"instance logs events", nil, inst, "logs:PutLogEvents", "*", true},
		{"instance ec2 tags", nil, inst, "ec2:DescribeTags", "*", true},
		{"instance tag on register", tag, inst, "ecs:TagResource", clusterARN, true},
		{"instance tag on create cluster", WithCreateAction(context.Background(), "CreateCluster"), inst, "ecs:TagResource", clusterARN, true},
		{"instance tag on run task", WithCreateAction(context.Background(), "RunTask"), inst, "ecs:TagResource", clusterARN, false},
		{"instance tag existing resource", nil, inst, "ecs:TagResource", clusterARN, false},
		{"instance list tags of task", nil, inst, "ecs:ListTagsForResource", "arn:aws:ecs:us-east-1:" + acct + ":task/default/0123", true},
		{"instance list tags of instance", nil, inst, "ecs:ListTagsForResource", "arn:aws:ecs:us-east-1:" + acct + ":container-instance/default/0123", true},
		{"instance list tags of cluster", nil, inst, "ecs:ListTagsForResource", clusterARN, false},
		{"instance DeleteCluster", nil, inst, "ecs:DeleteCluster", clusterARN, false},
		{"instance RegisterTaskDefinition", nil, inst, "ecs:RegisterTaskDefinition", "*", false},
		{"instance RunTask", nil, inst, "ecs:RunTask", clusterARN, false},
		{"instance DescribeClusters", nil, inst, "ecs:DescribeClusters", clusterARN, false},
		{"instance Submit prefix only", nil, inst, "ecs:Submi", "*", false},
		{"instance join token", nil, inst, ActionCreateJoinToken, "*", false},
		{"instance ecr push", nil, inst, "ecr:PutImage", "*", false},
		{"instance logs group", nil, inst, "logs:CreateLogGroup", "*", false},
		{"nested path is not an instance", nil, nested, "ecs:Poll", "*", false},
		{"prefix alone is not an instance", nil, bare, "ecs:Poll", "*", false},
		{"other account's instance", nil, foreign, "ecs:Poll", "*", false},
		{"other user", nil, other, "ecs:CreateCluster", clusterARN, false},
		{"anonymous", nil, Principal{}, "ecs:CreateCluster", clusterARN, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			err := b.Authorize(ctx, tt.p, tt.action, tt.resource)
			if tt.allow {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrAccessDenied) {
				t.Fatalf("got %v, want access denied", err)
			}
			want := "User: " + tt.p.ARN + " is not authorized to perform: " + tt.action + " on resource: " + tt.resource
			if !strings.HasPrefix(errdefs.Message(err, ""), want) {
				t.Fatalf("message %q, want prefix %q", errdefs.Message(err, ""), want)
			}
		})
	}
}

func TestBuiltinWithoutInstancePrefix(t *testing.T) {
	b := Builtin{AdminARN: "arn:aws:iam::123456789012:user/admin"}
	p := Principal{ARN: "arn:aws:iam::123456789012:user/berth/instances/i-1"}
	if err := b.Authorize(context.Background(), p, "ecs:Poll", "*"); !errors.Is(err, errdefs.ErrAccessDenied) {
		t.Fatalf("instance allowed without a prefix: %v", err)
	}
	// An empty admin ARN must not make the anonymous principal the admin.
	if err := (Builtin{}).Authorize(context.Background(), Principal{}, "ecs:Poll", "*"); !errors.Is(err, errdefs.ErrAccessDenied) {
		t.Fatalf("anonymous allowed: %v", err)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"", "", true},
		{"", "a", false},
		{"ecs:submit*", "ecs:submittaskstatechange", true},
		{"ecs:submit*", "ecs:submi", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"arn:aws:ecs:*:*:task/*/*", "arn:aws:ecs:us-east-1:1:task/c/t", true},
		{"arn:aws:ecs:*:*:task/*/*", "arn:aws:ecs:us-east-1:1:task/t", false},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"a*", "b", false},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 60), false},
	}
	for _, tt := range tests {
		if got := match(tt.pat, tt.s); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}
