package ecsapi

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

func (e *env) tags(resourceARN string) map[string]string {
	e.t.Helper()
	return tagMap(must(e.t, e.h.ListTagsForResource)(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(resourceARN)}).Tags)
}

func TestTagsRoundTrip(t *testing.T) {
	for _, resource := range []struct {
		name   string
		create func(e *env) string
	}{
		{"cluster", func(e *env) string { e.createCluster("prod", tag("a", "1")); return clusterARN("prod") }},
		{"task definition", func(e *env) string { e.register("web", tag("a", "1")); return tdARN("web:1") }},
	} {
		t.Run(resource.name, func(t *testing.T) {
			e := newEnv(t)
			arn := resource.create(e)
			if diff := cmp.Diff(map[string]string{"a": "1"}, e.tags(arn)); diff != "" {
				t.Errorf("tags on create (-want +got):\n%s", diff)
			}
			must(t, e.h.TagResource)(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{tag("a", "2"), tag("b", "")}})
			if diff := cmp.Diff(map[string]string{"a": "2", "b": ""}, e.tags(arn)); diff != "" {
				t.Errorf("after TagResource (-want +got):\n%s", diff)
			}
			must(t, e.h.UntagResource)(e.ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"a", "absent"}})
			if diff := cmp.Diff(map[string]string{"b": ""}, e.tags(arn)); diff != "" {
				t.Errorf("after UntagResource (-want +got):\n%s", diff)
			}

			var fifty []types.Tag
			for i := range 49 {
				fifty = append(fifty, tag(fmt.Sprint("k", i), "v"))
			}
			must(t, e.h.TagResource)(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: fifty})
			_, err := e.h.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{tag("one-more", "v")}})
			wantErr(t, err, "InvalidParameterException", "")
			_, err = e.h.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{tag("aws:x", "v")}})
			wantErr(t, err, "InvalidParameterException", "")
			_, err = e.h.UntagResource(e.ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"aws:x"}})
			wantErr(t, err, "InvalidParameterException", "")
			if n := len(e.tags(arn)); n != 50 {
				t.Errorf("%d tags after rejected changes, want 50", n)
			}
		})
	}
}

func TestTagResourceErrors(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	e.createCluster("old")
	must(t, e.h.DeleteCluster)(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("old")})
	tests := []struct {
		arn, code, msg string
	}{
		{"", "InvalidParameterException", ""},
		{"prod", "InvalidParameterException", "The ARN provided is invalid."},
		{"arn:aws:ecr:us-east-1:123456789012:repository/x", "InvalidParameterException", "The ARN provided is invalid."},
		{"arn:aws:ecs:us-east-1:123456789012:service/api", "InvalidParameterException", "The ARN provided is invalid."},
		{clusterARN("nope"), "ClusterNotFoundException", "Cluster not found."},
		{"arn:aws:ecs:us-west-2:123456789012:cluster/prod", "ClusterNotFoundException", "Cluster not found."},
		{clusterARN("old"), "InvalidParameterException", "The specified cluster is inactive. Specify an active cluster and try again."},
		{tdARN("web:1"), "ClientException", "Unable to describe task definition."},
		{"arn:aws:ecs:us-east-1:123456789012:service/prod/api", "ResourceNotFoundException", "The specified resource could not be found."},
	}
	for _, tt := range tests {
		_, err := e.h.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(tt.arn)})
		wantErr(t, err, tt.code, tt.msg)
		_, err = e.h.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(tt.arn), Tags: []types.Tag{tag("k", "v")}})
		wantErr(t, err, tt.code, tt.msg)
		_, err = e.h.UntagResource(e.ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(tt.arn), TagKeys: []string{"k"}})
		wantErr(t, err, tt.code, tt.msg)
	}
}
