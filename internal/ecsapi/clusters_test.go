package ecsapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/store"
)

var ignoreSerde = cmpopts.IgnoreUnexported(types.Cluster{}, types.ClusterSetting{}, types.Tag{},
	types.KeyValuePair{}, types.Failure{}, types.Setting{}, types.ClusterServiceConnectDefaults{},
	types.ClusterConfiguration{}, types.ExecuteCommandConfiguration{}, types.CapacityProviderStrategyItem{})

func TestCreateClusterDefaults(t *testing.T) {
	e := newEnv(t)
	got := must(t, e.h.CreateCluster)(e.ctx, &ecs.CreateClusterInput{}).Cluster
	want := &types.Cluster{
		ClusterArn:                      aws.String(clusterARN("default")),
		ClusterName:                     aws.String("default"),
		Status:                          aws.String("ACTIVE"),
		Settings:                        []types.ClusterSetting{{Name: "containerInsights", Value: aws.String("disabled")}},
		Statistics:                      []types.KeyValuePair{},
		Tags:                            []types.Tag{},
		CapacityProviders:               []string{},
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{},
	}
	if diff := cmp.Diff(want, got, ignoreSerde); diff != "" {
		t.Errorf("CreateCluster (-want +got):\n%s", diff)
	}
	// Statistics only on DescribeClusters with include STATISTICS.
	desc := must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{Include: []types.ClusterField{types.ClusterFieldStatistics}}).Clusters[0]
	if len(desc.Statistics) != len(domain.ClusterStatisticNames) {
		t.Errorf("describe with STATISTICS: %+v", desc.Statistics)
	}
}

func TestCreateClusterIsIdempotent(t *testing.T) {
	e := newEnv(t)
	first := e.createCluster("prod", tag("env", "prod"))
	second := e.createCluster("prod", tag("env", "other"))
	if diff := cmp.Diff(first, second, ignoreSerde); diff != "" {
		t.Errorf("second CreateCluster changed the cluster (-first +second):\n%s", diff)
	}
	list := must(t, e.h.ListClusters)(e.ctx, &ecs.ListClustersInput{})
	if len(list.ClusterArns) != 1 {
		t.Errorf("ListClusters = %v", list.ClusterArns)
	}
}

func TestCreateClusterValidation(t *testing.T) {
	tests := []struct {
		name string
		in   ecs.CreateClusterInput
		msg  string
	}{
		{"bad name", ecs.CreateClusterInput{ClusterName: aws.String("bad name")},
			"Invalid cluster name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."},
		{"long name", ecs.CreateClusterInput{ClusterName: aws.String(strings.Repeat("a", 256))}, ""},
		{"bad setting", ecs.CreateClusterInput{Settings: []types.ClusterSetting{{Name: "containerInsights", Value: aws.String("yes")}}}, ""},
		{"reserved tag", ecs.CreateClusterInput{Tags: []types.Tag{tag("aws:x", "v")}}, ""},
		{"unknown capacity provider", ecs.CreateClusterInput{CapacityProviders: []string{"mine"}}, ""},
		{"strategy not associated", ecs.CreateClusterInput{
			CapacityProviders:               []string{"FARGATE"},
			DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}},
		}, ""},
		{"override logging without config", ecs.CreateClusterInput{Configuration: &types.ClusterConfiguration{
			ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{Logging: types.ExecuteCommandLoggingOverride},
		}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.h.CreateCluster(e.ctx, &tt.in)
			wantErr(t, err, "InvalidParameterException", tt.msg)
			list := must(t, e.h.ListClusters)(e.ctx, &ecs.ListClustersInput{})
			if len(list.ClusterArns) != 0 {
				t.Errorf("a rejected CreateCluster created %v", list.ClusterArns)
			}
		})
	}
}

func TestCreateClusterRecordsEverything(t *testing.T) {
	e := newEnv(t)
	cfg := &types.ClusterConfiguration{ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{Logging: types.ExecuteCommandLoggingDefault}}
	strategy := []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1, Base: 2}}
	got := must(t, e.h.CreateCluster)(e.ctx, &ecs.CreateClusterInput{
		ClusterName:                     aws.String("full"),
		Settings:                        []types.ClusterSetting{{Name: "containerInsights", Value: aws.String("enhanced")}},
		Configuration:                   cfg,
		CapacityProviders:               []string{"FARGATE", "FARGATE_SPOT"},
		DefaultCapacityProviderStrategy: strategy,
		ServiceConnectDefaults:          &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("local")},
		Tags:                            []types.Tag{tag("a", "1")},
	}).Cluster
	desc := must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{
		Clusters: []string{"full"},
		Include:  []types.ClusterField{types.ClusterFieldSettings, types.ClusterFieldConfigurations, types.ClusterFieldTags},
	}).Clusters[0]
	if diff := cmp.Diff(got, &desc, ignoreSerde); diff != "" {
		t.Errorf("Describe with every include differs from Create (-create +describe):\n%s", diff)
	}
	if aws.ToString(desc.Settings[0].Value) != "enhanced" || desc.Configuration == nil ||
		len(desc.CapacityProviders) != 2 || len(desc.DefaultCapacityProviderStrategy) != 1 ||
		aws.ToString(desc.ServiceConnectDefaults.Namespace) != "local" || tagMap(desc.Tags)["a"] != "1" {
		t.Errorf("cluster not recorded: %+v", desc)
	}
}

func TestCreateClusterTakesContainerInsightsFromAccountSetting(t *testing.T) {
	e := newEnv(t)
	must(t, e.h.PutAccountSettingDefault)(e.ctx, &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameContainerInsights, Value: aws.String("enabled")})
	c := e.createCluster("a")
	if v := aws.ToString(c.Settings[0].Value); v != "enabled" {
		t.Errorf("containerInsights = %s, want the account default enabled", v)
	}
	must(t, e.h.PutAccountSetting)(e.ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("enhanced")})
	c = e.createCluster("b")
	if v := aws.ToString(c.Settings[0].Value); v != "enhanced" {
		t.Errorf("containerInsights = %s, want the caller's own enhanced", v)
	}
}

func TestDescribeClusters(t *testing.T) {
	e := newEnv(t)
	// No clusters at all: the default cluster is missing.
	out := must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{})
	wantFailures := []types.Failure{{Arn: aws.String(clusterARN("default")), Reason: aws.String("MISSING")}}
	if diff := cmp.Diff(wantFailures, out.Failures, ignoreSerde); diff != "" || len(out.Clusters) != 0 {
		t.Errorf("DescribeClusters() with no clusters: clusters %v, failures diff:\n%s", out.Clusters, diff)
	}

	e.createCluster("default")
	e.createCluster("prod", tag("env", "prod"))
	otherRegion := "arn:aws:ecs:us-west-2:123456789012:cluster/prod"
	out = must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{
		Clusters: []string{"prod", clusterARN("default"), "nope", otherRegion, "bad/name"},
	})
	var names []string
	for _, c := range out.Clusters {
		names = append(names, aws.ToString(c.ClusterName))
		if c.Settings != nil || len(c.Tags) != 0 || len(c.Statistics) != 0 {
			t.Errorf("optional parts shown without include: %+v", c)
		}
	}
	if diff := cmp.Diff([]string{"prod", "default"}, names); diff != "" {
		t.Errorf("described clusters (-want +got):\n%s", diff)
	}
	wantFailures = []types.Failure{
		{Arn: aws.String(clusterARN("nope")), Reason: aws.String("MISSING")},
		{Arn: aws.String(otherRegion), Reason: aws.String("MISSING")},
		{Arn: aws.String(clusterARN("bad/name")), Reason: aws.String("MISSING")},
	}
	if diff := cmp.Diff(wantFailures, out.Failures, ignoreSerde); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}

	out = must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{
		Clusters: []string{"prod"}, Include: []types.ClusterField{types.ClusterFieldTags},
	})
	if got := tagMap(out.Clusters[0].Tags); got["env"] != "prod" || out.Clusters[0].Settings != nil {
		t.Errorf("include TAGS: %+v", out.Clusters[0])
	}
	out = must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{
		Clusters: []string{"prod"}, Include: []types.ClusterField{types.ClusterFieldStatistics, types.ClusterFieldSettings},
	})
	if c := out.Clusters[0]; len(c.Statistics) != 8 || len(c.Settings) != 1 || len(c.Tags) != 0 {
		t.Errorf("include STATISTICS, SETTINGS: %+v", c)
	}

	var many []string
	for i := range 101 {
		many = append(many, fmt.Sprint("c", i))
	}
	_, err := e.h.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: many})
	wantErr(t, err, "InvalidParameterException", "")
}

func TestListClustersPagination(t *testing.T) {
	e := newEnv(t)
	names := []string{"e", "a", "d", "b", "c", "gone"}
	for _, n := range names {
		e.createCluster(n)
	}
	must(t, e.h.DeleteCluster)(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("gone")})

	var got []string
	var tok *string
	pages := 0
	for {
		out := must(t, e.h.ListClusters)(e.ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(2), NextToken: tok})
		pages++
		got = append(got, out.ClusterArns...)
		if out.NextToken == nil {
			break
		}
		tok = out.NextToken
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	want := []string{clusterARN("a"), clusterARN("b"), clusterARN("c"), clusterARN("d"), clusterARN("e")}
	if diff := cmp.Diff(want, got); diff != "" || pages != 3 {
		t.Errorf("ListClusters over %d pages (-want +got):\n%s", pages, diff)
	}

	for _, n := range []int32{0, -1, 101} {
		_, err := e.h.ListClusters(e.ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(n)})
		wantErr(t, err, "InvalidParameterException", "maxResults must be between 1 and 100.")
	}
	for _, bad := range []string{"%%%", "Zm9v" /* "foo" without the version */} {
		_, err := e.h.ListClusters(e.ctx, &ecs.ListClustersInput{NextToken: aws.String(bad)})
		wantErr(t, err, "InvalidParameterException", "Invalid nextToken.")
	}
}

func TestUpdateCluster(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	cfg := &types.ClusterConfiguration{ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{Logging: types.ExecuteCommandLoggingNone}}
	out := must(t, e.h.UpdateCluster)(e.ctx, &ecs.UpdateClusterInput{
		Cluster:                aws.String(clusterARN("prod")),
		Settings:               []types.ClusterSetting{{Name: "containerInsights", Value: aws.String("enhanced")}},
		Configuration:          cfg,
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("ns")},
	}).Cluster
	if len(out.Settings) != 1 || aws.ToString(out.Settings[0].Value) != "enhanced" ||
		out.Configuration.ExecuteCommandConfiguration.Logging != types.ExecuteCommandLoggingNone ||
		aws.ToString(out.ServiceConnectDefaults.Namespace) != "ns" {
		t.Errorf("UpdateCluster: %+v", out)
	}
	// Leaving parts out keeps them; an empty namespace removes the default.
	out = must(t, e.h.UpdateCluster)(e.ctx, &ecs.UpdateClusterInput{
		Cluster:                aws.String("prod"),
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("")},
	}).Cluster
	if out.ServiceConnectDefaults != nil || out.Configuration == nil || aws.ToString(out.Settings[0].Value) != "enhanced" {
		t.Errorf("partial UpdateCluster: %+v", out)
	}

	set := must(t, e.h.UpdateClusterSettings)(e.ctx, &ecs.UpdateClusterSettingsInput{
		Cluster:  aws.String("prod"),
		Settings: []types.ClusterSetting{{Name: "containerInsights", Value: aws.String("disabled")}},
	}).Cluster
	if len(set.Settings) != 1 || aws.ToString(set.Settings[0].Value) != "disabled" {
		t.Errorf("UpdateClusterSettings: %+v", set.Settings)
	}

	_, err := e.h.UpdateClusterSettings(e.ctx, &ecs.UpdateClusterSettingsInput{Cluster: aws.String("prod")})
	wantErr(t, err, "InvalidParameterException", "")
	_, err = e.h.UpdateCluster(e.ctx, &ecs.UpdateClusterInput{Cluster: aws.String("nope")})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")
	_, err = e.h.UpdateCluster(e.ctx, &ecs.UpdateClusterInput{Cluster: aws.String("arn:aws:ecs:eu-west-1:123456789012:cluster/prod")})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")
	_, err = e.h.UpdateCluster(e.ctx, &ecs.UpdateClusterInput{})
	wantErr(t, err, "InvalidParameterException", "")

	must(t, e.h.DeleteCluster)(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod")})
	_, err = e.h.UpdateClusterSettings(e.ctx, &ecs.UpdateClusterSettingsInput{
		Cluster:  aws.String("prod"),
		Settings: []types.ClusterSetting{{Name: "containerInsights", Value: aws.String("disabled")}},
	})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")
}

func TestDeleteCluster(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod", tag("env", "prod"))
	out := must(t, e.h.DeleteCluster)(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod")}).Cluster
	if aws.ToString(out.Status) != "INACTIVE" || aws.ToString(out.ClusterArn) != clusterARN("prod") {
		t.Errorf("DeleteCluster returned %+v", out)
	}
	_, err := e.h.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod")})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")
	_, err = e.h.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("never")})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")

	// Describe still shows it, INACTIVE; List does not.
	desc := must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{"prod"}})
	if len(desc.Clusters) != 1 || aws.ToString(desc.Clusters[0].Status) != "INACTIVE" {
		t.Errorf("Describe after delete: %+v", desc)
	}
	if l := must(t, e.h.ListClusters)(e.ctx, &ecs.ListClustersInput{}); len(l.ClusterArns) != 0 {
		t.Errorf("List after delete: %v", l.ClusterArns)
	}

	// Creating it again makes a fresh ACTIVE cluster.
	again := e.createCluster("prod", tag("env", "new"))
	if aws.ToString(again.Status) != "ACTIVE" || tagMap(again.Tags)["env"] != "new" {
		t.Errorf("re-created cluster: %+v", again)
	}
}

func TestDeleteClusterRefusesWhileNotEmpty(t *testing.T) {
	tests := []struct {
		key  func(cluster string) string
		code string
		msg  string
	}{
		{func(c string) string { return domain.ServiceKey(c, "api") }, "ClusterContainsServicesException",
			"The Cluster cannot be deleted while Services are active."},
		{func(c string) string { return domain.ContainerInstanceKey(c, "i1") }, "ClusterContainsContainerInstancesException",
			"The Cluster cannot be deleted while Container Instances are active."},
		{func(c string) string { return domain.TaskKey(c, "t1") }, "ClusterContainsTasksException",
			"The Cluster cannot be deleted while Tasks are active."},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			e := newEnv(t)
			e.createCluster("prod")
			e.createCluster("prod-2")
			e.putRaw(tt.key("prod"))
			_, err := e.h.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod")})
			wantErr(t, err, tt.code, tt.msg)
			// A neighbour whose name extends this one is not affected.
			must(t, e.h.DeleteCluster)(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod-2")})
			if l := must(t, e.h.ListClusters)(e.ctx, &ecs.ListClustersInput{}); len(l.ClusterArns) != 1 {
				t.Errorf("clusters after refused delete: %v", l.ClusterArns)
			}
		})
	}
}

// Stopped tasks and INACTIVE instances stay describable for a while but do
// not keep a cluster from being deleted.
func TestDeleteClusterIgnoresStoppedTasksAndInactiveInstances(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	put := func(key string, v any) {
		op, err := store.PutJSON(key, v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Txn(e.ctx, nil, []store.Op{op}); err != nil {
			t.Fatal(err)
		}
	}
	put(domain.TaskKey("prod", "t1"), domain.TaskRecord{Task: types.Task{LastStatus: aws.String(domain.TaskStatusStopped)}})
	put(domain.ContainerInstanceKey("prod", "i1"), domain.ContainerInstance{Status: domain.InstanceStatusInactive})
	must(t, e.h.DeleteCluster)(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod")})
}

// TestDescribeClustersCounts: the counts and statistics of DescribeClusters
// come from the cluster's instances, tasks and services.
func TestDescribeClustersCounts(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	e.registerInstance("default", 4096, 8192)
	drained := e.registerInstance("default", 4096, 8192)
	must(t, e.h.UpdateContainerInstancesState)(e.ctx, &ecs.UpdateContainerInstancesStateInput{
		ContainerInstances: []string{drained}, Status: types.ContainerInstanceStatusDraining,
	})
	e.registerTD("web", 128, 128, 0)
	run := e.runTask("default", "web", 3)
	e.submit("default", aws.ToString(run.Tasks[0].TaskArn), "RUNNING")
	e.createService(serviceInput("default", "a", "web", 0))
	e.createService(serviceInput("default", "b", "web", 0))
	must(t, e.h.DeleteService)(e.ctx, &ecs.DeleteServiceInput{Service: aws.String("b")})

	out := must(t, e.h.DescribeClusters)(e.ctx, &ecs.DescribeClustersInput{Include: []types.ClusterField{types.ClusterFieldStatistics}})
	c := out.Clusters[0]
	if c.RegisteredContainerInstancesCount != 2 || c.RunningTasksCount != 1 || c.PendingTasksCount != 2 || c.ActiveServicesCount != 1 {
		t.Errorf("counts: instances %d running %d pending %d services %d; want 2 1 2 1",
			c.RegisteredContainerInstancesCount, c.RunningTasksCount, c.PendingTasksCount, c.ActiveServicesCount)
	}
	stats := map[string]string{}
	for _, kv := range c.Statistics {
		stats[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	want := map[string]string{"runningEC2TasksCount": "1", "pendingEC2TasksCount": "2", "activeEC2ServiceCount": "1", "drainingEC2ServiceCount": "1", "runningFargateTasksCount": "0"}
	for k, v := range want {
		if stats[k] != v {
			t.Errorf("statistic %s = %q, want %q", k, stats[k], v)
		}
	}
}
