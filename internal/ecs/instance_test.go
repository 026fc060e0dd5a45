package ecs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func res(name, typ string, i int32, set ...string) types.Resource {
	return types.Resource{Name: aws.String(name), Type: aws.String(typ), IntegerValue: i, StringSetValue: set}
}

func TestParseTotalResources(t *testing.T) {
	gpu := types.Resource{Name: aws.String("GPU"), Type: aws.String("STRINGSET"), StringSetValue: []string{"0"}}
	r, other, err := ParseTotalResources([]types.Resource{
		res("CPU", "INTEGER", 2048),
		res("MEMORY", "INTEGER", 3900),
		res("PORTS", "STRINGSET", 0, "22", "2375", "2376", "51678", "51679", "22"),
		res("PORTS_UDP", "STRINGSET", 0),
		gpu,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Resources{CPU: 2048, Memory: 3900, Ports: []int32{22, 2375, 2376, 51678, 51679}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	if len(other) != 1 || aws.ToString(other[0].Name) != "GPU" {
		t.Errorf("other = %+v", other)
	}
	long := types.Resource{Name: aws.String("MEMORY"), Type: aws.String("LONG"), LongValue: 1024}
	if r, _, err := ParseTotalResources([]types.Resource{long}); err != nil || r.Memory != 1024 {
		t.Errorf("LONG memory: %+v %v", r, err)
	}

	for name, bad := range map[string][]types.Resource{
		"negative cpu":   {res("CPU", "INTEGER", -1)},
		"port range":     {res("PORTS", "STRINGSET", 0, "70000")},
		"port not int":   {res("PORTS", "STRINGSET", 0, "ssh")},
		"ports type":     {res("PORTS", "INTEGER", 22)},
		"duplicate":      {res("CPU", "INTEGER", 1), res("CPU", "INTEGER", 2)},
		"no name":        {{Type: aws.String("INTEGER")}},
		"fractional":     {{Name: aws.String("CPU"), Type: aws.String("DOUBLE"), DoubleValue: 1.5}},
		"unknown type":   {res("CPU", "BLOB", 1)},
		"long too large": {{Name: aws.String("CPU"), Type: aws.String("LONG"), LongValue: 1 << 40}},
	} {
		if _, _, err := ParseTotalResources(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestInstanceAccounting(t *testing.T) {
	ci := ContainerInstance{Registered: Resources{CPU: 1024, Memory: 2048, Ports: []int32{22}}}
	ci.Reserve(Resources{CPU: 256, Memory: 512, Ports: []int32{8080}}, "family:web")
	ci.Reserve(Resources{CPU: 256, Memory: 512, Ports: []int32{80}, PortsUDP: []int32{53}}, "family:web")
	rem := ci.Remaining()
	want := Resources{CPU: 512, Memory: 1024, Ports: []int32{22, 80, 8080}, PortsUDP: []int32{53}}
	if diff := cmp.Diff(want, rem); diff != "" {
		t.Errorf("remaining (-want +got):\n%s", diff)
	}
	if ci.Groups["family:web"] != 2 {
		t.Errorf("counts: %+v", ci)
	}
	ci.Release(Resources{CPU: 256, Memory: 512, Ports: []int32{8080}}, "family:web")
	if rem := ci.Remaining(); rem.CPU != 768 || rem.Memory != 1536 || !cmp.Equal(rem.Ports, []int32{22, 80}) {
		t.Errorf("after release: %+v", rem)
	}
	if ci.Groups["family:web"] != 1 {
		t.Errorf("after stop: %+v", ci)
	}
	ci.Release(Resources{CPU: 256, Memory: 512, Ports: []int32{80}, PortsUDP: []int32{53}}, "family:web")
	if len(ci.Groups) != 0 || ci.Used.Ports != nil || ci.Used.PortsUDP != nil || !ci.Used.IsZero() {
		t.Errorf("all released: %+v", ci)
	}
	// Never below zero, even if a re-registration shrank the instance.
	ci.Registered.CPU = 0
	ci.Used.CPU = 10
	if ci.Remaining().CPU != 0 {
		t.Errorf("remaining cpu %d", ci.Remaining().CPU)
	}
}

func TestInstanceToAPI(t *testing.T) {
	ci := ContainerInstance{
		ID: "0123456789abcdef0123456789abcdef", Cluster: "prod", Status: InstanceStatusActive,
		Registered: Resources{CPU: 2048, Memory: 1024, Ports: []int32{22}},
		Attributes: []types.Attribute{{Name: aws.String("ecs.os-type"), Value: aws.String("linux"), TargetId: aws.String("x")}},
		Tags:       []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
		Version:    3,
	}
	got := ci.ToAPI("us-east-1", "123456789012", InstanceView{}, TaskCounts{Pending: 2, Running: 5})
	if got.PendingTasksCount != 2 || got.RunningTasksCount != 5 {
		t.Errorf("task counts: pending %d, running %d", got.PendingTasksCount, got.RunningTasksCount)
	}
	if aws.ToString(got.ContainerInstanceArn) != "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/0123456789abcdef0123456789abcdef" {
		t.Errorf("arn %s", aws.ToString(got.ContainerInstanceArn))
	}
	if got.Tags != nil || got.HealthStatus != nil || got.VersionInfo == nil || got.Attachments == nil {
		t.Errorf("default view: %+v", got)
	}
	if got.Attributes[0].TargetId != nil {
		t.Errorf("attributes carry name and value only: %+v", got.Attributes[0])
	}
	names := []string{}
	for _, r := range got.RegisteredResources {
		names = append(names, aws.ToString(r.Name)+"/"+aws.ToString(r.Type))
	}
	if want := "CPU/INTEGER MEMORY/INTEGER PORTS/STRINGSET PORTS_UDP/STRINGSET"; strings.Join(names, " ") != want {
		t.Errorf("resources %v", names)
	}
	if got.RegisteredResources[3].StringSetValue == nil {
		t.Error("an empty port set must render as []")
	}
	full := ci.ToAPI("us-east-1", "123456789012", InstanceView{Tags: true, Health: true}, TaskCounts{})
	if len(full.Tags) != 1 || full.HealthStatus == nil || full.HealthStatus.OverallStatus != types.InstanceHealthCheckStateInsufficientData {
		t.Errorf("full view: %+v", full)
	}
	if _, err := InstanceViewOf([]types.ContainerInstanceField{"NOPE"}); err == nil {
		t.Error("unknown include accepted")
	}
}

func TestValidateAttribute(t *testing.T) {
	ok := []types.Attribute{
		{Name: aws.String("stack")},
		{Name: aws.String("com.amazonaws.ecs.capability.docker-remote-api.1.17")},
		{Name: aws.String("a/b\\c_d-e.f"), Value: aws.String("x y@z:1/2\\3")},
		{Name: aws.String(strings.Repeat("n", 128)), Value: aws.String(strings.Repeat("v", 128))},
	}
	for _, a := range ok {
		if err := ValidateAttribute(a); err != nil {
			t.Errorf("%+v: %v", a, err)
		}
	}
	bad := []types.Attribute{
		{},
		{Name: aws.String("")},
		{Name: aws.String("has space")},
		{Name: aws.String("colon:x")},
		{Name: aws.String(strings.Repeat("n", 129))},
		{Name: aws.String("n"), Value: aws.String("")},
		{Name: aws.String("n"), Value: aws.String(" lead")},
		{Name: aws.String("n"), Value: aws.String("trail ")},
		{Name: aws.String("n"), Value: aws.String("a#b")},
		{Name: aws.String("n"), Value: aws.String(strings.Repeat("v", 129))},
	}
	for _, a := range bad {
		if err := ValidateAttribute(a); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v accepted (%v)", a, err)
		}
	}
}

func TestAttributesMergeAndLimit(t *testing.T) {
	attr := func(n, v string) types.Attribute { return types.Attribute{Name: aws.String(n), Value: aws.String(v)} }
	merged := MergeAttributes([]types.Attribute{attr("a", "1"), attr("b", "2")}, []types.Attribute{attr("b", "3"), attr("c", "4")})
	if len(merged) != 3 || aws.ToString(merged[1].Value) != "3" {
		t.Errorf("merge: %+v", merged)
	}
	if left := RemoveAttributes(merged, []string{"a", "zz"}); len(left) != 2 || aws.ToString(left[0].Name) != "b" {
		t.Errorf("remove: %+v", left)
	}
	var attrs []types.Attribute
	for i := range 10 {
		attrs = append(attrs, attr(string(rune('a'+i)), "v"))
	}
	attrs = append(attrs, attr("ecs.os-type", "linux"), attr("com.amazonaws.ecs.capability.x", "y"))
	if err := CheckCustomAttributeLimit(attrs); err != nil {
		t.Errorf("10 custom + built-ins: %v", err)
	}
	err := CheckCustomAttributeLimit(append(attrs, attr("k", "v")))
	if !errors.Is(err, ErrAttributeLimitExceeded) || !errors.Is(err, errdefs.ErrLimitExceeded) {
		t.Errorf("11 custom: %v", err)
	}
}

// Records written before the counts moved out of the instance record still
// decode, and their stale counts are not carried into what is written back.
func TestInstanceRecordWithOldCounts(t *testing.T) {
	old := `{"id":"0123456789abcdef0123456789abcdef","cluster":"prod","status":"ACTIVE",` +
		`"registered":{"cpu":1024,"memory":2048},"used":{"cpu":256,"memory":512},` +
		`"runningTasks":3,"pendingTasks":1,"groups":{"family:web":4},"version":7}`
	var ci ContainerInstance
	if err := json.Unmarshal([]byte(old), &ci); err != nil {
		t.Fatal(err)
	}
	if ci.ID != "0123456789abcdef0123456789abcdef" || ci.Used.CPU != 256 || ci.Groups["family:web"] != 4 || ci.Version != 7 {
		t.Errorf("decoded %+v", ci)
	}
	b, err := json.Marshal(ci)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "runningTasks") || strings.Contains(s, "pendingTasks") {
		t.Errorf("written back with counts: %s", s)
	}
}

func TestTaskCounts(t *testing.T) {
	var n TaskCounts
	for _, p := range []TaskPhase{PhasePending, PhaseRunning, PhaseRunning, PhaseStopped, PhasePending, PhaseRunning} {
		n.Add(p)
	}
	if n != (TaskCounts{Pending: 2, Running: 3}) {
		t.Errorf("counts %+v", n)
	}
}
