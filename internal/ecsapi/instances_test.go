package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
)

// instanceInput is a registration as berth's agent sends it.
func instanceInput(cluster string, cpu, memory int32, attrs ...types.Attribute) *ecs.RegisterContainerInstanceInput {
	return &ecs.RegisterContainerInstanceInput{
		Cluster: aws.String(cluster),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: cpu},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: memory},
			{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22", "2375", "2376", "51678", "51679"}},
			{Name: aws.String("PORTS_UDP"), Type: aws.String("STRINGSET"), StringSetValue: []string{}},
		},
		Attributes:  attrs,
		VersionInfo: &types.VersionInfo{AgentVersion: aws.String("0.1.0"), AgentHash: aws.String("abc"), DockerVersion: aws.String("containerd 1.6.20")},
	}
}

func attr(name, value string) types.Attribute {
	a := types.Attribute{Name: aws.String(name)}
	if value != "" {
		a.Value = aws.String(value)
	}
	return a
}

// registerInstance registers an instance and connects its agent; it
// returns the instance's id.
func (e *env) registerInstance(cluster string, cpu, memory int32, attrs ...types.Attribute) string {
	e.t.Helper()
	out := must(e.t, e.h.RegisterContainerInstance)(e.ctx, instanceInput(cluster, cpu, memory, attrs...))
	id := instanceID(aws.ToString(out.ContainerInstance.ContainerInstanceArn))
	e.setConnected(cluster, id, true)
	return id
}

func (e *env) setConnected(cluster, id string, connected bool) {
	e.t.Helper()
	inst := Instances{Store: e.store, Clock: e.clock, Region: testRegion, AccountID: testAccount}
	if err := inst.SetAgentConnected(context.Background(), cluster, id, connected); err != nil {
		e.t.Fatal(err)
	}
}

func instanceID(a string) string { return a[strings.LastIndex(a, "/")+1:] }

func (e *env) describeInstance(cluster, id string, include ...types.ContainerInstanceField) types.ContainerInstance {
	e.t.Helper()
	out := must(e.t, e.h.DescribeContainerInstances)(e.ctx, &ecs.DescribeContainerInstancesInput{
		Cluster: aws.String(cluster), ContainerInstances: []string{id}, Include: include,
	})
	if len(out.ContainerInstances) != 1 {
		e.t.Fatalf("describe %s: %+v", id, out.Failures)
	}
	return out.ContainerInstances[0]
}

// resource returns an instance's resource by name as "n" or a port list.
func resource(rs []types.Resource, name string) string {
	for _, r := range rs {
		if aws.ToString(r.Name) == name {
			if aws.ToString(r.Type) == "STRINGSET" {
				return strings.Join(r.StringSetValue, ",")
			}
			return fmt.Sprint(r.IntegerValue)
		}
	}
	return "absent"
}

func instanceARN(cluster, id string) string {
	return "arn:aws:ecs:us-east-1:123456789012:container-instance/" + cluster + "/" + id
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRegisterContainerInstance(t *testing.T) {
	e := newEnv(t)
	_, err := e.h.RegisterContainerInstance(e.ctx, instanceInput("", 2048, 3900))
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")

	e.createCluster("default")
	in := instanceInput("", 2048, 3900, attr("ecs.os-type", "linux"), attr("ecs.capability.external", ""), attr("stack", "prod"))
	in.Tags = []types.Tag{tag("team", "infra")}
	in.InstanceIdentityDocument = aws.String("ignored")
	ci := must(t, e.h.RegisterContainerInstance)(e.ctx, in).ContainerInstance
	id := instanceID(aws.ToString(ci.ContainerInstanceArn))
	if !hex32.MatchString(id) || aws.ToString(ci.ContainerInstanceArn) != instanceARN("default", id) {
		t.Errorf("ARN %s", aws.ToString(ci.ContainerInstanceArn))
	}
	if aws.ToString(ci.Status) != "ACTIVE" || ci.AgentConnected || ci.Version != 1 || ci.RunningTasksCount != 0 ||
		!ci.RegisteredAt.Equal(testStart) || aws.ToString(ci.VersionInfo.AgentVersion) != "0.1.0" || tagMap(ci.Tags)["team"] != "infra" {
		t.Errorf("registered instance: %+v", ci)
	}
	for _, name := range []string{"CPU", "MEMORY", "PORTS", "PORTS_UDP"} {
		if r, rem := resource(ci.RegisteredResources, name), resource(ci.RemainingResources, name); r != rem || r == "absent" {
			t.Errorf("%s registered %s, remaining %s", name, r, rem)
		}
	}
	if resource(ci.RegisteredResources, "CPU") != "2048" || resource(ci.RegisteredResources, "PORTS") != "22,2375,2376,51678,51679" {
		t.Errorf("resources: %+v", ci.RegisteredResources)
	}
	// Every attribute sent comes back, and nothing is added.
	if len(ci.Attributes) != 3 || aws.ToString(ci.Attributes[1].Name) != "ecs.capability.external" || ci.Attributes[1].Value != nil {
		t.Errorf("attributes: %+v", ci.Attributes)
	}

	// Re-registration with the ARN keeps the id, merges attributes, takes
	// the new resources.
	e.clock.Advance(60e9)
	again := instanceInput("default", 4096, 7800, attr("stack", "staging"), attr("ecs.cpu-architecture", "x86_64"))
	again.ContainerInstanceArn = ci.ContainerInstanceArn
	re := must(t, e.h.RegisterContainerInstance)(e.ctx, again).ContainerInstance
	if aws.ToString(re.ContainerInstanceArn) != aws.ToString(ci.ContainerInstanceArn) || re.Version != 2 ||
		!re.RegisteredAt.Equal(testStart) || resource(re.RegisteredResources, "CPU") != "4096" {
		t.Errorf("re-registration: %+v", re)
	}
	got := map[string]string{}
	for _, a := range re.Attributes {
		got[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	if len(got) != 4 || got["stack"] != "staging" || got["ecs.os-type"] != "linux" {
		t.Errorf("merged attributes: %v", got)
	}
	// An ARN berth does not know registers a new instance.
	other := instanceInput("default", 1024, 1024)
	other.ContainerInstanceArn = aws.String(instanceARN("default", "ffffffffffffffffffffffffffffffff"))
	if n := must(t, e.h.RegisterContainerInstance)(e.ctx, other).ContainerInstance; aws.ToString(n.ContainerInstanceArn) == aws.ToString(other.ContainerInstanceArn) {
		t.Error("an unknown ARN was taken as given")
	}
}

func TestRegisterContainerInstanceValidation(t *testing.T) {
	e := newEnv(t)
	e.createCluster("default")
	var many []types.Attribute
	for i := range 11 {
		many = append(many, attr(fmt.Sprintf("custom-%d", i), "v"))
	}
	tests := []struct {
		name string
		in   *ecs.RegisterContainerInstanceInput
		code string
	}{
		{"negative memory", instanceInput("default", 1024, -1), "InvalidParameterException"},
		{"bad attribute name", instanceInput("default", 1024, 1024, attr("has space", "")), "InvalidParameterException"},
		{"bad attribute value", instanceInput("default", 1024, 1024, attr("a", " x")), "InvalidParameterException"},
		{"eleven custom attributes", instanceInput("default", 1024, 1024, many...), "AttributeLimitExceededException"},
		{"unknown cluster", instanceInput("nope", 1024, 1024), "ClusterNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.h.RegisterContainerInstance(e.ctx, tt.in)
			wantErr(t, err, tt.code, "")
		})
	}
	bad := instanceInput("default", 1024, 1024)
	bad.TotalResources[2].StringSetValue = []string{"http"}
	_, err := e.h.RegisterContainerInstance(e.ctx, bad)
	wantErr(t, err, "InvalidParameterException", `Invalid port "http" in resource PORTS.`)
	list := must(t, e.h.ListContainerInstances)(e.ctx, &ecs.ListContainerInstancesInput{})
	if len(list.ContainerInstanceArns) != 0 {
		t.Errorf("rejected registrations left instances: %v", list.ContainerInstanceArns)
	}
}

func TestDescribeContainerInstances(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	id := e.registerInstance("prod", 1024, 2048)
	out := must(t, e.h.DescribeContainerInstances)(e.ctx, &ecs.DescribeContainerInstancesInput{
		Cluster:            aws.String("prod"),
		ContainerInstances: []string{id, instanceARN("prod", id), "0000", instanceARN("other", id), "bad id!"},
		Include:            []types.ContainerInstanceField{types.ContainerInstanceFieldTags, types.ContainerInstanceFieldContainerInstanceHealth},
	})
	if len(out.ContainerInstances) != 2 || len(out.Failures) != 3 {
		t.Fatalf("describe: %d instances, failures %+v", len(out.ContainerInstances), out.Failures)
	}
	ci := out.ContainerInstances[0]
	if !ci.AgentConnected || ci.Version != 2 || ci.Tags == nil || ci.HealthStatus.OverallStatus != types.InstanceHealthCheckStateOk {
		t.Errorf("instance: %+v", ci)
	}
	wantFail := []string{instanceARN("prod", "0000"), instanceARN("other", id), instanceARN("prod", "bad id!")}
	for i, f := range out.Failures {
		if aws.ToString(f.Reason) != "MISSING" || aws.ToString(f.Arn) != wantFail[i] {
			t.Errorf("failure %d: %+v", i, f)
		}
	}
	_, err := e.h.DescribeContainerInstances(e.ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("prod")})
	wantErr(t, err, "InvalidParameterException", "Container instance cannot be empty.")
	_, err = e.h.DescribeContainerInstances(e.ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("nope"), ContainerInstances: []string{id}})
	wantErr(t, err, "ClusterNotFoundException", "")
	_, err = e.h.DescribeContainerInstances(e.ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("prod"), ContainerInstances: make([]string, 101)})
	wantErr(t, err, "InvalidParameterException", "containerInstances can have at most 100 items.")
	_, err = e.h.DescribeContainerInstances(e.ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("prod"), ContainerInstances: []string{id}, Include: []types.ContainerInstanceField{"X"}})
	wantErr(t, err, "InvalidParameterException", "")
}

func TestListAndUpdateContainerInstances(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	a := e.registerInstance("prod", 1024, 1024, attr("ecs.instance-type", "t3.small"), attr("zone", "a"))
	b := e.registerInstance("prod", 1024, 1024, attr("ecs.instance-type", "t3.large"))
	c := e.registerInstance("prod", 1024, 1024)
	list := func(in *ecs.ListContainerInstancesInput) []string {
		t.Helper()
		in.Cluster = aws.String("prod")
		var ids []string
		for _, a := range must(t, e.h.ListContainerInstances)(e.ctx, in).ContainerInstanceArns {
			ids = append(ids, instanceID(a))
		}
		return ids
	}
	if got := list(&ecs.ListContainerInstancesInput{}); len(got) != 3 {
		t.Errorf("list: %v", got)
	}
	if got := list(&ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.instance-type == t3.small")}); len(got) != 1 || got[0] != a {
		t.Errorf("filter ==: %v", got)
	}
	if got := list(&ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.instance-type exists and not attribute:zone exists")}); len(got) != 1 || got[0] != b {
		t.Errorf("filter exists/not: %v", got)
	}
	if got := list(&ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.instance-type in [t3.small, t2.micro]")}); len(got) != 1 || got[0] != a {
		t.Errorf("filter in: %v", got)
	}
	if got := list(&ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.instance-type =~ .*large")}); len(got) != 1 || got[0] != b {
		t.Errorf("filter =~: %v", got)
	}
	_, err := e.h.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("prod"), Filter: aws.String("attribute:zone ==")})
	wantErr(t, err, "InvalidParameterException", "")

	upd := must(t, e.h.UpdateContainerInstancesState)(e.ctx, &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String("prod"), ContainerInstances: []string{c, instanceARN("prod", a), "ffff"}, Status: types.ContainerInstanceStatusDraining,
	})
	if len(upd.ContainerInstances) != 2 || aws.ToString(upd.ContainerInstances[0].Status) != "DRAINING" ||
		len(upd.Failures) != 1 || aws.ToString(upd.Failures[0].Reason) != "MISSING" {
		t.Errorf("update: %+v", upd)
	}
	if got := list(&ecs.ListContainerInstancesInput{Status: types.ContainerInstanceStatusDraining}); len(got) != 2 {
		t.Errorf("DRAINING: %v", got)
	}
	if got := list(&ecs.ListContainerInstancesInput{Status: types.ContainerInstanceStatusActive}); len(got) != 1 || got[0] != b {
		t.Errorf("ACTIVE: %v", got)
	}
	if got := list(&ecs.ListContainerInstancesInput{Status: types.ContainerInstanceStatusRegistering}); len(got) != 0 {
		t.Errorf("REGISTERING: %v", got)
	}
	_, err = e.h.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("prod"), Status: "SLEEPING"})
	wantErr(t, err, "InvalidParameterException", "")
	_, err = e.h.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("prod"), ContainerInstances: []string{a}, Status: "INACTIVE"})
	wantErr(t, err, "InvalidParameterException", "Invalid status INACTIVE. Valid values are ACTIVE and DRAINING.")

	// Pages of one, no repeats.
	var seen []string
	var tok *string
	for {
		out := must(t, e.h.ListContainerInstances)(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("prod"), MaxResults: aws.Int32(1), NextToken: tok})
		seen = append(seen, out.ContainerInstanceArns...)
		if tok = out.NextToken; tok == nil {
			break
		}
	}
	if len(seen) != 3 {
		t.Errorf("paged: %v", seen)
	}
}

func TestDeregisterContainerInstance(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	id := e.registerInstance("prod", 4096, 4096)
	e.registerTD("web", 256, 512, 8080)
	run := e.runTask("prod", "web", 2)
	if len(run.Tasks) != 1 || len(run.Failures) != 1 {
		t.Fatalf("run: %d tasks, failures %+v", len(run.Tasks), run.Failures)
	}
	_, err := e.h.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("prod"), ContainerInstance: aws.String(id)})
	wantErr(t, err, "InvalidParameterException", "Found running tasks on the instance.")

	out := must(t, e.h.DeregisterContainerInstance)(e.ctx, &ecs.DeregisterContainerInstanceInput{
		Cluster: aws.String("prod"), ContainerInstance: aws.String(instanceARN("prod", id)), Force: aws.Bool(true),
	}).ContainerInstance
	if aws.ToString(out.Status) != "INACTIVE" || out.AgentConnected || out.PendingTasksCount != 0 ||
		resource(out.RemainingResources, "MEMORY") != "4096" || resource(out.RemainingResources, "PORTS") != "22,2375,2376,51678,51679" {
		t.Errorf("deregistered: %+v", out)
	}
	task := e.describeTask("prod", aws.ToString(run.Tasks[0].TaskArn))
	if aws.ToString(task.LastStatus) != "STOPPED" || aws.ToString(task.StoppedReason) != "Container instance deregistration forced by user" {
		t.Errorf("orphaned task: %+v", task)
	}
	if kvs, _, _ := e.store.List(context.Background(), domain.InstanceTasksPrefix("prod", id)); len(kvs) != 0 {
		t.Errorf("index keys left: %d", len(kvs))
	}
	if got := e.describeInstance("prod", id); aws.ToString(got.Status) != "INACTIVE" {
		t.Errorf("describe after deregistration: %s", aws.ToString(got.Status))
	}
	list := must(t, e.h.ListContainerInstances)(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("prod")})
	if len(list.ContainerInstanceArns) != 0 {
		t.Errorf("list %v", list.ContainerInstanceArns)
	}
	// INACTIVE is not a status ListContainerInstances filters on (the model's enum lacks it).
	_, err = e.h.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("prod"), Status: "INACTIVE"})
	wantErr(t, err, "InvalidParameterException", "Invalid status INACTIVE. Valid values are ACTIVE, DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED.")
	_, err = e.h.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("prod"), ContainerInstance: aws.String(id)})
	wantErr(t, err, "InvalidParameterException", "The referenced container instance was not found.")
	// A deregistered instance cannot be connected again.
	err = Instances{Store: e.store, Clock: e.clock, Region: testRegion, AccountID: testAccount}.SetAgentConnected(context.Background(), "prod", id, true)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("connecting an INACTIVE instance: %v", err)
	}
}

func TestDeregisterManyTasks(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	id := e.registerInstance("prod", 100000, 100000)
	e.registerTD("small", 0, 16, 0)
	for range 9 {
		if out := e.runTask("prod", "small", 10); len(out.Tasks) != 10 {
			t.Fatalf("run: %+v", out.Failures)
		}
	}
	out := must(t, e.h.DeregisterContainerInstance)(e.ctx, &ecs.DeregisterContainerInstanceInput{
		Cluster: aws.String("prod"), ContainerInstance: aws.String(id), Force: aws.Bool(true),
	}).ContainerInstance
	if aws.ToString(out.Status) != "INACTIVE" || resource(out.RemainingResources, "MEMORY") != "100000" || out.PendingTasksCount != 0 {
		t.Errorf("after forced deregistration of 90 tasks: %+v", out)
	}
	stopped := must(t, e.h.ListTasks)(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), DesiredStatus: types.DesiredStatusStopped, MaxResults: aws.Int32(100)})
	if len(stopped.TaskArns) != 90 {
		t.Errorf("%d stopped tasks", len(stopped.TaskArns))
	}
}

func TestAttributes(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	a := e.registerInstance("prod", 1024, 1024, attr("ecs.os-type", "linux"))
	b := e.registerInstance("prod", 1024, 1024)
	target := func(at types.Attribute, id string) types.Attribute {
		at.TargetId = aws.String(id)
		at.TargetType = types.TargetTypeContainerInstance
		return at
	}
	put := must(t, e.h.PutAttributes)(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String("prod"), Attributes: []types.Attribute{
		target(attr("stack", "prod"), a),
		{Name: aws.String("gpu"), TargetId: aws.String(instanceARN("prod", b))},
	}})
	if len(put.Attributes) != 2 {
		t.Errorf("put: %+v", put.Attributes)
	}
	list := func(in *ecs.ListAttributesInput) []string {
		t.Helper()
		in.Cluster, in.TargetType = aws.String("prod"), types.TargetTypeContainerInstance
		var out []string
		for _, at := range must(t, e.h.ListAttributes)(e.ctx, in).Attributes {
			if at.TargetType != types.TargetTypeContainerInstance {
				t.Errorf("targetType %q", at.TargetType)
			}
			out = append(out, instanceID(aws.ToString(at.TargetId))[:4]+":"+aws.ToString(at.Name)+"="+aws.ToString(at.Value))
		}
		return out
	}
	if got := list(&ecs.ListAttributesInput{}); len(got) != 3 {
		t.Errorf("all: %v", got)
	}
	if got := list(&ecs.ListAttributesInput{AttributeName: aws.String("stack"), AttributeValue: aws.String("prod")}); len(got) != 1 || !strings.HasPrefix(got[0], a[:4]) {
		t.Errorf("by name and value: %v", got)
	}
	if got := list(&ecs.ListAttributesInput{AttributeName: aws.String("stack"), AttributeValue: aws.String("dev")}); len(got) != 0 {
		t.Errorf("by other value: %v", got)
	}
	must(t, e.h.DeleteAttributes)(e.ctx, &ecs.DeleteAttributesInput{Cluster: aws.String("prod"), Attributes: []types.Attribute{target(attr("stack", ""), a), target(attr("absent", ""), a)}})
	if got := list(&ecs.ListAttributesInput{AttributeName: aws.String("stack")}); len(got) != 0 {
		t.Errorf("after delete: %v", got)
	}

	var ten []types.Attribute
	for i := range 10 {
		ten = append(ten, target(attr(fmt.Sprintf("c%d", i), "v"), a))
	}
	must(t, e.h.PutAttributes)(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String("prod"), Attributes: ten})
	_, err := e.h.PutAttributes(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String("prod"), Attributes: []types.Attribute{target(attr("c10", "v"), a)}})
	wantErr(t, err, "AttributeLimitExceededException", "")
	// Replacing a value is not a new attribute.
	must(t, e.h.PutAttributes)(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String("prod"), Attributes: []types.Attribute{target(attr("c0", "w"), a)}})

	tests := []struct {
		name  string
		attrs []types.Attribute
		code  string
	}{
		{"no attributes", nil, "InvalidParameterException"},
		{"eleven in one call", append(ten, ten[0]), "InvalidParameterException"},
		{"unknown target", []types.Attribute{target(attr("x", ""), "ffff")}, "TargetNotFoundException"},
		{"no target", []types.Attribute{attr("x", "")}, "InvalidParameterException"},
		{"wrong target type", []types.Attribute{{Name: aws.String("x"), TargetId: aws.String(a), TargetType: "service"}}, "InvalidParameterException"},
		{"bad name", []types.Attribute{target(attr("a b", ""), a)}, "InvalidParameterException"},
	}
	for _, tt := range tests {
		_, err := e.h.PutAttributes(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String("prod"), Attributes: tt.attrs})
		if code(err) != tt.code {
			t.Errorf("%s: %v (%s), want %s", tt.name, err, code(err), tt.code)
		}
	}
	_, err = e.h.ListAttributes(e.ctx, &ecs.ListAttributesInput{Cluster: aws.String("prod")})
	wantErr(t, err, "InvalidParameterException", "targetType is required.")
	_, err = e.h.ListAttributes(e.ctx, &ecs.ListAttributesInput{Cluster: aws.String("prod"), TargetType: types.TargetTypeContainerInstance, AttributeValue: aws.String("v")})
	wantErr(t, err, "InvalidParameterException", "")
}

func TestDiscoverPollEndpoint(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig(e.store, e.clock)
	cfg.Endpoint = "http://127.0.0.1:7400"
	h := newHandlers(cfg)
	out := must(t, h.DiscoverPollEndpoint)(e.ctx, &ecs.DiscoverPollEndpointInput{ContainerInstance: aws.String("x")})
	if aws.ToString(out.Endpoint) != cfg.Endpoint || aws.ToString(out.TelemetryEndpoint) != cfg.Endpoint || aws.ToString(out.ServiceConnectEndpoint) != cfg.Endpoint {
		t.Errorf("%+v", out)
	}
}

func TestInstancesForTheChannel(t *testing.T) {
	e := newEnv(t)
	e.createCluster("prod")
	ci := must(t, e.h.RegisterContainerInstance)(e.ctx, instanceInput("prod", 1024, 1024)).ContainerInstance
	id := instanceID(aws.ToString(ci.ContainerInstanceArn))
	inst := Instances{Store: e.store, Clock: e.clock, Region: testRegion, AccountID: testAccount}
	ctx := context.Background()
	got, err := inst.Resolve(ctx, "arn:aws:ecs:us-east-1:123456789012:cluster/prod", aws.ToString(ci.ContainerInstanceArn))
	if err != nil || got.ID != id {
		t.Fatalf("Resolve: %+v %v", got, err)
	}
	for _, bad := range [][2]string{{"prod", "ffff"}, {"nope", id}, {"prod", instanceARN("other", id)}} {
		if _, err := inst.Resolve(ctx, bad[0], bad[1]); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Resolve(%q, %q): %v", bad[0], bad[1], err)
		}
	}
	e.clock.Advance(5e9)
	if err := inst.SetAgentConnected(ctx, "prod", id, true); err != nil {
		t.Fatal(err)
	}
	if err := inst.SetAgentConnected(ctx, "prod", id, true); err != nil {
		t.Fatal(err)
	}
	d := e.describeInstance("prod", id, types.ContainerInstanceFieldContainerInstanceHealth)
	if !d.AgentConnected || d.Version != 2 || !d.HealthStatus.Details[0].LastStatusChange.Equal(testStart.Add(5e9)) {
		t.Errorf("connected: %+v", d)
	}
	if err := inst.SetAgentConnected(ctx, "prod", id, false); err != nil {
		t.Fatal(err)
	}
	if d := e.describeInstance("prod", id); d.AgentConnected || d.Version != 3 {
		t.Errorf("disconnected: %+v", d)
	}
	if err := inst.SetAgentConnected(ctx, "prod", "ffff", true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown instance: %v", err)
	}
}
