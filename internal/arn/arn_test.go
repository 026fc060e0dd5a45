package arn

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	region  = "us-east-1"
	account = "123456789012"
)

func TestBuilders(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{Cluster(region, account, "default"), "arn:aws:ecs:us-east-1:123456789012:cluster/default"},
		{TaskDefinition(region, account, "web", 12), "arn:aws:ecs:us-east-1:123456789012:task-definition/web:12"},
		{Service(region, account, "prod", "api"), "arn:aws:ecs:us-east-1:123456789012:service/prod/api"},
		{Task(region, account, "prod", "0123456789abcdef0123456789abcdef"), "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"},
		{ContainerInstance(region, account, "prod", "abc"), "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/abc"},
		{CapacityProvider(region, account, "FARGATE"), "arn:aws:ecs:us-east-1:123456789012:capacity-provider/FARGATE"},
		{Cluster("cn-north-1", account, "c"), "arn:aws-cn:ecs:cn-north-1:123456789012:cluster/c"},
		{Cluster("us-gov-west-1", account, "c"), "arn:aws-us-gov:ecs:us-gov-west-1:123456789012:cluster/c"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Resource
	}{
		{"arn:aws:ecs:us-east-1:123456789012:cluster/default",
			Resource{Partition: "aws", Region: region, AccountID: account, Type: TypeCluster, Name: "default"}},
		{"arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
			Resource{Partition: "aws", Region: region, AccountID: account, Type: TypeTaskDefinition, Name: "web", Revision: 7}},
		{"arn:aws:ecs:us-east-1:123456789012:service/prod/api",
			Resource{Partition: "aws", Region: region, AccountID: account, Type: TypeService, Cluster: "prod", Name: "api"}},
		{"arn:aws:ecs:us-east-1:123456789012:task/prod/abc",
			Resource{Partition: "aws", Region: region, AccountID: account, Type: TypeTask, Cluster: "prod", Name: "abc"}},
		{"arn:aws:ecs:us-east-1:123456789012:container-instance/prod/abc",
			Resource{Partition: "aws", Region: region, AccountID: account, Type: TypeContainerInstance, Cluster: "prod", Name: "abc"}},
		{"arn:aws:ecs:us-east-1:123456789012:capacity-provider/FARGATE",
			Resource{Partition: "aws", Region: region, AccountID: account, Type: TypeCapacityProvider, Name: "FARGATE"}},
		{"arn:aws:ecs:us-east-1:123456789012:task-set/prod/api/ecs-svc/1234",
			Resource{Partition: "aws", Region: region, AccountID: account, Type: TypeTaskSet, Cluster: "prod", Service: "api", Name: "ecs-svc/1234"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("String() = %q, want %q", s, tt.in)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"default",
		"arn:aws:ecs",
		"arn:aws:ecr:us-east-1:123456789012:repository/x",
		"arn:aws:ecs:us-east-1:123456789012:cluster",
		"arn:aws:ecs:us-east-1:123456789012:cluster/",
		"arn:aws:ecs:us-east-1:123456789012:cluster/a/b",
		"arn:aws:ecs::123456789012:cluster/a",
		"arn:aws:ecs:us-east-1::cluster/a",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:0",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:01",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:x",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:99999999999",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/:1",
		"arn:aws:ecs:us-east-1:123456789012:service/api", // short format
		"arn:aws:ecs:us-east-1:123456789012:task/abc",    // short format
		"arn:aws:ecs:us-east-1:123456789012:task//abc",
		"arn:aws:ecs:us-east-1:123456789012:task-set/prod/api",
		"arn:aws:ecs:us-east-1:123456789012:widget/x",
	} {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error", in)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Parse(%q) error %v is not ErrInvalidArgument", in, err)
		}
		if msg := errdefs.Message(err, ""); msg != "The ARN provided is invalid." {
			t.Errorf("Parse(%q) message %q", in, msg)
		}
	}
}

func TestClusterName(t *testing.T) {
	tests := []struct {
		ref    string
		want   string
		wantOK bool
	}{
		{"default", "default", true},
		{"arn:aws:ecs:us-east-1:123456789012:cluster/prod", "prod", true},
		{"arn:aws:ecs:us-west-2:123456789012:cluster/prod", "", false},    // other region
		{"arn:aws:ecs:us-east-1:210987654321:cluster/prod", "", false},    // other account
		{"arn:aws-cn:ecs:us-east-1:123456789012:cluster/prod", "", false}, // wrong partition
		{"arn:aws:ecs:us-east-1:123456789012:service/prod/api", "", false},
		{"arn:aws:ecs:us-east-1:123456789012:cluster", "", false},
	}
	for _, tt := range tests {
		got, ok := ClusterName(tt.ref, region, account)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ClusterName(%q) = %q, %v; want %q, %v", tt.ref, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// formats back to the same string.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"arn:aws:ecs:us-east-1:123456789012:cluster/default",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
		"arn:aws:ecs:us-east-1:123456789012:service/prod/api",
		"arn:aws:ecs:us-east-1:123456789012:task-set/prod/api/ecs-svc/1234",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:01",
		"arn:aws:ecs:::",
		"arn:",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if got := r.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
	})
}
