package ecsapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	smithy "github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
)

// testKeys is the access-key store of the SDK tests: each principal signs
// with an access key named after it.
type testKeys map[string]string // access key id → principal ARN

func (k testKeys) LookupAccessKey(_ context.Context, id string) (string, iam.Principal, error) {
	arn, ok := k[id]
	if !ok {
		return "", iam.Principal{}, errdefs.New(errdefs.ErrUnauthenticated, "unknown access key")
	}
	return "secret-" + id, iam.Principal{AccountID: testAccount, ARN: arn, AccessKeyID: id}, nil
}

// sdkClient is the AWS SDK's own ECS client, signing as principalARN,
// talking to the ECS API of e through the real router (SigV4 included).
func (e *env) sdkClient(principalARN string) *ecs.Client {
	e.t.Helper()
	svc := New(testConfig(e.store, e.clock))
	id := fmt.Sprintf("AKID%X", sha256.Sum256([]byte(principalARN)))[:20]
	rt := &awsapi.Router{
		Verifier: &sigv4.Verifier{Creds: testKeys{id: principalARN}, Region: testRegion},
		JSON:     []*awsjson.Service{svc},
	}
	if err := rt.Validate(); err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	e.t.Cleanup(srv.Close)
	return ecs.New(ecs.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: "secret-" + id}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

// apiErr checks that err is the modelled exception T with message msg.
func apiErr[T interface {
	error
	ErrorCode() string
	ErrorMessage() string
}](t *testing.T, err error, msg string) {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		var ae smithy.APIError
		errors.As(err, &ae)
		t.Fatalf("error %v is not a %T (code %v)", err, target, ae)
	}
	if msg != "" && target.ErrorMessage() != msg {
		t.Fatalf("%s message %q, want %q", target.ErrorCode(), target.ErrorMessage(), msg)
	}
}

func TestSDKClusters(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()

	// The waiters' view of an unknown cluster: a MISSING failure.
	desc, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Failures) != 1 || aws.ToString(desc.Failures[0].Reason) != "MISSING" ||
		aws.ToString(desc.Failures[0].Arn) != clusterARN("default") {
		t.Errorf("DescribeClusters with no clusters: %+v", desc.Failures)
	}

	created, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod"), Tags: []types.Tag{tag("env", "prod")}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(created.Cluster.ClusterArn) != clusterARN("prod") || aws.ToString(created.Cluster.Status) != "ACTIVE" ||
		tagMap(created.Cluster.Tags)["env"] != "prod" || len(created.Cluster.Statistics) != 0 {
		t.Errorf("CreateCluster: %+v", created.Cluster)
	}
	for _, n := range []string{"c1", "c2", "c3", "c4"} {
		if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}

	var arns []string
	p := ecs.NewListClustersPaginator(c, &ecs.ListClustersInput{}, func(o *ecs.ListClustersPaginatorOptions) { o.Limit = 2 })
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		arns = append(arns, out.ClusterArns...)
	}
	want := []string{clusterARN("c1"), clusterARN("c2"), clusterARN("c3"), clusterARN("c4"), clusterARN("prod")}
	if diff := cmp.Diff(want, arns); diff != "" || pages != 3 {
		t.Errorf("ListClusters paginator, %d pages (-want +got):\n%s", pages, diff)
	}

	upd, err := c.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{
		Cluster:  aws.String("prod"),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enhanced")}},
	})
	if err != nil || aws.ToString(upd.Cluster.Settings[0].Value) != "enhanced" {
		t.Fatalf("UpdateClusterSettings: %v %+v", err, upd)
	}
	up2, err := c.UpdateCluster(ctx, &ecs.UpdateClusterInput{
		Cluster: aws.String("prod"),
		Configuration: &types.ClusterConfiguration{ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{
			Logging: types.ExecuteCommandLoggingDefault,
		}},
	})
	if err != nil || up2.Cluster.Configuration.ExecuteCommandConfiguration.Logging != types.ExecuteCommandLoggingDefault {
		t.Fatalf("UpdateCluster: %v %+v", err, up2)
	}

	full, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{
		Clusters: []string{clusterARN("prod"), "nope"},
		Include:  []types.ClusterField{types.ClusterFieldTags, types.ClusterFieldSettings, types.ClusterFieldConfigurations},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Clusters) != 1 || tagMap(full.Clusters[0].Tags)["env"] != "prod" || len(full.Clusters[0].Settings) != 1 ||
		full.Clusters[0].Configuration == nil || len(full.Failures) != 1 || aws.ToString(full.Failures[0].Reason) != "MISSING" {
		t.Errorf("DescribeClusters: %+v", full)
	}

	e.putRaw(domain.ServiceKey("prod", "api"))
	_, err = c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("prod")})
	apiErr[*types.ClusterContainsServicesException](t, err, "The Cluster cannot be deleted while Services are active.")
	e.putRaw(domain.TaskKey("c1", "t"))
	_, err = c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("c1")})
	apiErr[*types.ClusterContainsTasksException](t, err, "The Cluster cannot be deleted while Tasks are active.")
	e.putRaw(domain.ContainerInstanceKey("c2", "i"))
	_, err = c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("c2")})
	apiErr[*types.ClusterContainsContainerInstancesException](t, err, "The Cluster cannot be deleted while Container Instances are active.")

	del, err := c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("c3")})
	if err != nil || aws.ToString(del.Cluster.Status) != "INACTIVE" {
		t.Fatalf("DeleteCluster: %v %+v", err, del)
	}
	_, err = c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("c3")})
	apiErr[*types.ClusterNotFoundException](t, err, "Cluster not found.")
	_, err = c.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("c3")})
	apiErr[*types.ClusterNotFoundException](t, err, "Cluster not found.")
	_, err = c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("no spaces")})
	apiErr[*types.InvalidParameterException](t, err, "")
	_, err = c.ListClusters(ctx, &ecs.ListClustersInput{NextToken: aws.String("garbage!")})
	apiErr[*types.InvalidParameterException](t, err, "Invalid nextToken.")
}

func TestSDKTaskDefinitions(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()

	reg, err := c.RegisterTaskDefinition(ctx, taskDefInput("web", tag("team", "a")))
	if err != nil {
		t.Fatal(err)
	}
	td := reg.TaskDefinition
	if td.Revision != 1 || aws.ToString(td.TaskDefinitionArn) != tdARN("web:1") || td.Status != types.TaskDefinitionStatusActive ||
		!aws.ToTime(td.RegisteredAt).Equal(testStart) || aws.ToString(td.RegisteredBy) != adminARN ||
		aws.ToString(td.ContainerDefinitions[0].Image) != "nginx:1.27" || tagMap(reg.Tags)["team"] != "a" {
		t.Errorf("RegisterTaskDefinition: %+v tags %v", td, reg.Tags)
	}
	for _, f := range []string{"web", "web", "api", "batch"} {
		if _, err := c.RegisterTaskDefinition(ctx, taskDefInput(f)); err != nil {
			t.Fatal(err)
		}
	}

	d, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("web"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil || d.TaskDefinition.Revision != 3 || d.Tags == nil {
		t.Fatalf("DescribeTaskDefinition web: %v %+v", err, d)
	}
	_, err = c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("nope")})
	apiErr[*types.ClientException](t, err, "Unable to describe task definition.")

	e.clock.Advance(time.Second)
	dereg, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:1")})
	if err != nil || dereg.TaskDefinition.Status != types.TaskDefinitionStatusInactive ||
		!aws.ToTime(dereg.TaskDefinition.DeregisteredAt).Equal(testStart.Add(time.Second)) {
		t.Fatalf("DeregisterTaskDefinition: %v %+v", err, dereg)
	}
	_, err = c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web")})
	apiErr[*types.ClientException](t, err, "Revision is missing.")

	var arns []string
	lp := ecs.NewListTaskDefinitionsPaginator(c, &ecs.ListTaskDefinitionsInput{Sort: types.SortOrderDesc},
		func(o *ecs.ListTaskDefinitionsPaginatorOptions) { o.Limit = 2 })
	for lp.HasMorePages() {
		out, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, out.TaskDefinitionArns...)
	}
	if diff := cmp.Diff([]string{tdARN("web:3"), tdARN("web:2"), tdARN("batch:1"), tdARN("api:1")}, arns); diff != "" {
		t.Errorf("ListTaskDefinitions DESC (-want +got):\n%s", diff)
	}

	var fams []string
	fp := ecs.NewListTaskDefinitionFamiliesPaginator(c, &ecs.ListTaskDefinitionFamiliesInput{},
		func(o *ecs.ListTaskDefinitionFamiliesPaginatorOptions) { o.Limit = 1 })
	for fp.HasMorePages() {
		out, err := fp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fams = append(fams, out.Families...)
	}
	if diff := cmp.Diff([]string{"api", "batch", "web"}, fams); diff != "" {
		t.Errorf("ListTaskDefinitionFamilies (-want +got):\n%s", diff)
	}

	del, err := c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web:1", "web:2"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.TaskDefinitions) != 1 || del.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress ||
		del.TaskDefinitions[0].DeleteRequestedAt == nil || len(del.Failures) != 1 ||
		aws.ToString(del.Failures[0].Reason) != reasonStillActive {
		t.Errorf("DeleteTaskDefinitions: %+v", del)
	}
	_, err = c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{}})
	apiErr[*types.InvalidParameterException](t, err, "")
}

func TestSDKTagsAndSettings(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(ctx, taskDefInput("web")); err != nil {
		t.Fatal(err)
	}
	for _, arn := range []string{clusterARN("prod"), tdARN("web:1")} {
		if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{tag("a", "1"), tag("b", "2")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
		out, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]string{"b": "2"}, tagMap(out.Tags)); diff != "" {
			t.Errorf("%s tags (-want +got):\n%s", arn, diff)
		}
	}
	_, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(clusterARN("nope"))})
	apiErr[*types.ClusterNotFoundException](t, err, "Cluster not found.")
	_, err = c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String("not-an-arn"), Tags: []types.Tag{tag("a", "1")}})
	apiErr[*types.InvalidParameterException](t, err, "The ARN provided is invalid.")

	put, err := c.PutAccountSetting(ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("enabled")})
	if err != nil || aws.ToString(put.Setting.PrincipalArn) != adminARN {
		t.Fatalf("PutAccountSetting: %v %+v", err, put)
	}
	if _, err := c.PutAccountSettingDefault(ctx, &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameTagResourceAuthorization, Value: aws.String("off")}); err != nil {
		t.Fatal(err)
	}
	values := map[types.SettingName]string{}
	sp := ecs.NewListAccountSettingsPaginator(c, &ecs.ListAccountSettingsInput{EffectiveSettings: true},
		func(o *ecs.ListAccountSettingsPaginatorOptions) { o.Limit = 4 })
	for sp.HasMorePages() {
		out, err := sp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range out.Settings {
			values[s.Name] = aws.ToString(s.Value)
		}
	}
	if len(values) != len(types.SettingName("").Values()) || values[types.SettingNameContainerInsights] != "enabled" ||
		values[types.SettingNameTagResourceAuthorization] != "off" || values[types.SettingNameServiceLongArnFormat] != "enabled" {
		t.Errorf("effective settings: %v", values)
	}
	_, err = c.PutAccountSetting(ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("maybe")})
	apiErr[*types.InvalidParameterException](t, err, "")
}

func TestSDKAccessDenied(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient("arn:aws:iam::123456789012:user/mallory")
	_, err := c.CreateCluster(context.Background(), &ecs.CreateClusterInput{ClusterName: aws.String("x")})
	apiErr[*types.AccessDeniedException](t, err,
		"User: arn:aws:iam::123456789012:user/mallory is not authorized to perform: ecs:CreateCluster on resource: "+clusterARN("x")+
			" because no identity-based policy allows the ecs:CreateCluster action")
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Errorf("AccessDeniedException status: %v", err)
	}
}
