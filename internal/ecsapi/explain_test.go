package ecsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store/memstore"
)

// explainCluster registers three instances in cluster "prod" and the task
// definitions web (256 CPU, 512 MiB), big (8192 MiB) and port (host port
// 80); it returns the instances' ids: a (za, t3.small, 2048/4096), b (zb,
// m5.large, 2048/1024), c (zc, t3.medium, 1024/2048), registered in that
// order.
func explainCluster(t *testing.T) (*env, *Explainer, [3]string) {
	e := newEnv(t)
	e.createCluster("prod")
	var ids [3]string
	for i, spec := range []struct {
		zone, typ   string
		cpu, memory int32
	}{{"za", "t3.small", 2048, 4096}, {"zb", "m5.large", 2048, 1024}, {"zc", "t3.medium", 1024, 2048}} {
		ids[i] = e.registerInstance("prod", spec.cpu, spec.memory, attr("ecs.availability-zone", spec.zone), attr("ecs.instance-type", spec.typ))
		e.clock.Advance(1e9) // registration order is the tie-break order
	}
	e.registerTD("web", 256, 512, 0)
	e.registerTD("big", 0, 8192, 0)
	e.registerTD("port", 0, 64, 80)
	return e, &Explainer{h: e.h}, ids
}

func strategy(typ types.PlacementStrategyType, field string) types.PlacementStrategy {
	s := types.PlacementStrategy{Type: typ}
	if field != "" {
		s.Field = aws.String(field)
	}
	return s
}

func memberOf(expr string) types.PlacementConstraint {
	return types.PlacementConstraint{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String(expr)}
}

var distinct = types.PlacementConstraint{Type: types.PlacementConstraintTypeDistinctInstance}

// TestExplainPlacementMatchesRunTask explains a RunTask, checks that
// nothing was committed, then runs the same RunTask: the tasks land where
// the explanation said, and the failures are the same, word for word.
func TestExplainPlacementMatchesRunTask(t *testing.T) {
	for _, tc := range []struct {
		name        string
		td          string
		count       int32
		strategies  []types.PlacementStrategy
		constraints []types.PlacementConstraint
		// placed and excluded are per instance (0 a, 1 b, 2 c): tasks
		// taken, and "rule: detail" of the verdict ("" for none).
		placed   [3]int
		excluded [3]string
	}{
		{
			name: "spread over zones then binpack", td: "web", count: 3,
			strategies: []types.PlacementStrategy{strategy("spread", "attribute:ecs.availability-zone"), strategy("binpack", "memory")},
			placed:     [3]int{1, 1, 1},
		},
		{
			name: "binpack memory fills the fullest first", td: "web", count: 4,
			strategies: []types.PlacementStrategy{strategy("binpack", "memory")},
			placed:     [3]int{0, 2, 2},
			excluded:   [3]string{"", "memory: memory 512 needed, 0 free", ""},
		},
		{
			name: "memberOf by instance type", td: "web", count: 2,
			strategies:  []types.PlacementStrategy{strategy("spread", "instanceId")},
			constraints: []types.PlacementConstraint{memberOf("attribute:ecs.instance-type =~ t3.*")},
			placed:      [3]int{1, 0, 1},
			excluded:    [3]string{"", "memberOf: attribute:ecs.instance-type !~ t3.* (is m5.large)", ""},
		},
		{
			name: "distinctInstance", td: "web", count: 4,
			strategies:  []types.PlacementStrategy{strategy("binpack", "cpu")},
			constraints: []types.PlacementConstraint{distinct},
			placed:      [3]int{1, 1, 1},
			excluded: [3]string{"distinctInstance: distinctInstance: a task of group family:web runs here",
				"distinctInstance: distinctInstance: a task of group family:web runs here",
				"distinctInstance: distinctInstance: a task of group family:web runs here"},
		},
		{
			name: "impossible memory", td: "big", count: 1,
			strategies: []types.PlacementStrategy{strategy("binpack", "cpu")},
			excluded: [3]string{"memory: memory 8192 needed, 4096 free", "memory: memory 8192 needed, 1024 free",
				"memory: memory 8192 needed, 2048 free"},
		},
		{
			name: "static port", td: "port", count: 5,
			strategies: []types.PlacementStrategy{strategy("spread", "attribute:ecs.availability-zone")},
			placed:     [3]int{1, 1, 1},
			excluded:   [3]string{"ports: port 80/tcp in use", "ports: port 80/tcp in use", "ports: port 80/tcp in use"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, x, ids := explainCluster(t)
			in := &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String(tc.td), Count: aws.Int32(tc.count),
				PlacementStrategy: tc.strategies, PlacementConstraints: tc.constraints}
			before := e.describeInstance("prod", ids[0])
			got, err := x.ExplainPlacement(e.ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("prod")})) != 0 {
				t.Fatal("explaining placed tasks")
			}
			if after := e.describeInstance("prod", ids[0]); after.Version != before.Version {
				t.Fatalf("explaining changed the instance: version %d → %d", before.Version, after.Version)
			}
			if len(got.Instances) != 3 {
				t.Fatalf("verdicts: %+v", got.Instances)
			}
			for i, v := range got.Instances {
				if v.ContainerInstanceID != ids[i] || v.ContainerInstanceArn != instanceARN("prod", ids[i]) {
					t.Fatalf("verdict %d is of %s, want %s (oldest first)", i, v.ContainerInstanceID, ids[i])
				}
				why := ""
				if v.Excluded != nil {
					why = v.Excluded.Rule + ": " + v.Excluded.Detail
				}
				if v.Placed != tc.placed[i] || why != tc.excluded[i] {
					t.Errorf("instance %d: placed %d, excluded %q; want %d, %q", i, v.Placed, why, tc.placed[i], tc.excluded[i])
				}
			}

			run := must(t, e.h.RunTask)(e.ctx, in)
			var ranOn, explained []string
			for _, task := range run.Tasks {
				ranOn = append(ranOn, instanceID(aws.ToString(task.ContainerInstanceArn)))
			}
			for _, p := range got.Placements {
				explained = append(explained, p.ContainerInstanceID)
			}
			if fmt.Sprint(ranOn) != fmt.Sprint(explained) {
				t.Errorf("RunTask placed on %v, explained %v", ranOn, explained)
			}
			var runFails, explainedFails []string
			for _, f := range run.Failures {
				runFails = append(runFails, aws.ToString(f.Arn)+" "+aws.ToString(f.Reason)+" "+aws.ToString(f.Detail))
			}
			for _, f := range got.Failures {
				explainedFails = append(explainedFails, f.Arn+" "+f.Reason+" "+f.Detail)
			}
			if strings.Join(runFails, "\n") != strings.Join(explainedFails, "\n") {
				t.Errorf("RunTask failures\n%s\nexplained\n%s", strings.Join(runFails, "\n"), strings.Join(explainedFails, "\n"))
			}
			if len(got.Placements) < int(tc.count) && len(got.Failures) != 3 {
				t.Errorf("%d of %d placed, failures %+v", len(got.Placements), tc.count, got.Failures)
			}
		})
	}
}

// TestExplainPlacementDescribesTheCall checks the parts of the answer that
// restate the call: demand, group, effective strategies (RunTask's random
// default), constraints (the call's, then the task definition's) and the
// spread attributes of each instance; and that the answer round-trips
// through JSON.
func TestExplainPlacementDescribesTheCall(t *testing.T) {
	e, x, _ := explainCluster(t)
	must(t, e.h.RegisterTaskDefinition)(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("pinned"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx"), Cpu: 128, MemoryReservation: aws.Int32(100), Memory: aws.Int32(300),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(53), HostPort: aws.Int32(53), Protocol: types.TransportProtocolUdp}}}},
		PlacementConstraints: []types.TaskDefinitionPlacementConstraint{{Type: types.TaskDefinitionPlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone != zc")}},
	})
	got, err := x.ExplainPlacement(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("pinned"), Group: aws.String("batch"),
		PlacementConstraints: []types.PlacementConstraint{memberOf("attribute:ecs.instance-type =~ t3.*")}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Cluster != "prod" || got.Group != "batch" || got.Count != 1 || got.TaskDefinitionArn != tdARN("pinned:1") {
		t.Errorf("call: %+v", got)
	}
	if d := got.Demand; d.CPU != 128 || d.Memory != 100 || len(d.Ports) != 0 || fmt.Sprint(d.PortsUDP) != "[53]" {
		t.Errorf("demand %+v", d)
	}
	if !got.Random || len(got.Strategies) != 1 || got.Strategies[0].Type != "random" {
		t.Errorf("strategies %+v, random %v", got.Strategies, got.Random)
	}
	want := []ExplainedConstraint{{"memberOf", "attribute:ecs.instance-type =~ t3.*"}, {"memberOf", "attribute:ecs.availability-zone != zc"}}
	if fmt.Sprint(got.Constraints) != fmt.Sprint(want) {
		t.Errorf("constraints %+v, want %+v", got.Constraints, want)
	}
	// Only a (t3, za) satisfies both: the task goes there.
	if len(got.Placements) != 1 || got.Placements[0].ContainerInstanceID != got.Instances[0].ContainerInstanceID {
		t.Errorf("placements %+v", got.Placements)
	}
	if c := got.Instances[2].Excluded; c == nil || c.Constraint != "attribute:ecs.availability-zone != zc" || c.Clause != "attribute:ecs.availability-zone == zc (is zc)" {
		t.Errorf("c excluded by %+v", c)
	}

	got, err = x.ExplainPlacement(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"),
		PlacementStrategy: []types.PlacementStrategy{strategy("spread", "attribute:ecs.availability-zone"), strategy("spread", "attribute:rack")}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Random || got.Instances[1].Attributes["ecs.availability-zone"] != "zb" || len(got.Instances[1].Attributes) != 1 {
		t.Errorf("random %v, attributes %v", got.Random, got.Instances[1].Attributes)
	}
	if r := got.Instances[0].Remaining; r.CPU != 2048 || r.Memory != 4096 || !strings.Contains(fmt.Sprint(r.Ports), "22") {
		t.Errorf("remaining %+v", r)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back PlacementExplanation
	if err := json.Unmarshal(b, &back); err != nil || fmt.Sprint(back) != fmt.Sprint(*got) {
		t.Errorf("JSON round trip: %v\n%+v\n%+v", err, back, *got)
	}
	for _, member := range []string{`"containerInstances"`, `"placementStrategy"`, `"failures":[]`, `"remainingResources"`} {
		if !strings.Contains(string(b), member) {
			t.Errorf("JSON lacks %s: %s", member, b)
		}
	}
}

// TestExplainPlacementRefusesAsRunTask sends requests that RunTask refuses:
// ExplainPlacement refuses each with the same exception and message, since
// both run the same validation and authorization.
func TestExplainPlacementRefusesAsRunTask(t *testing.T) {
	e, x, _ := explainCluster(t)
	e.createCluster("empty")
	long := strings.Repeat("a", scheduler.MaxExpressionLength+1)
	for _, tc := range []struct {
		name     string
		in       ecs.RunTaskInput
		asBob    bool
		wantCode string
	}{
		{"no task definition", ecs.RunTaskInput{Cluster: aws.String("prod")}, false, "ClientException"},
		{"unknown task definition", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("nope")}, false, "ClientException"},
		{"unknown cluster", ecs.RunTaskInput{Cluster: aws.String("nope"), TaskDefinition: aws.String("web")}, false, "ClusterNotFoundException"},
		{"no instances", ecs.RunTaskInput{Cluster: aws.String("empty"), TaskDefinition: aws.String("web")}, false, "InvalidParameterException"},
		{"count 0", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), Count: aws.Int32(0)}, false, "InvalidParameterException"},
		{"count 11", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), Count: aws.Int32(11)}, false, "InvalidParameterException"},
		{"fargate", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), LaunchType: types.LaunchTypeFargate}, false, "InvalidParameterException"},
		{"bad strategy", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"),
			PlacementStrategy: []types.PlacementStrategy{strategy("binpack", "disk")}}, false, "InvalidParameterException"},
		{"bad expression", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"),
			PlacementConstraints: []types.PlacementConstraint{memberOf("attribute:a likes b")}}, false, "InvalidParameterException"},
		{"long expression", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"),
			PlacementConstraints: []types.PlacementConstraint{memberOf(long)}}, false, "InvalidParameterException"},
		{"distinctInstance with expression", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"),
			PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeDistinctInstance, Expression: aws.String("x")}}}, false, "InvalidParameterException"},
		{"group too long", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), Group: aws.String(strings.Repeat("g", 256))}, false, "InvalidParameterException"},
		{"not allowed", ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web")}, true, "AccessDeniedException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := e.ctx
			if tc.asBob {
				ctx = asPrincipal("arn:aws:iam::123456789012:user/bob")
			}
			in := tc.in
			_, xerr := x.ExplainPlacement(ctx, &in)
			in = tc.in
			_, rerr := e.h.RunTask(ctx, &in)
			if code(xerr) != tc.wantCode || code(rerr) != tc.wantCode || message(xerr) != message(rerr) {
				t.Errorf("explain: %s %q; RunTask: %s %q; want %s from both", code(xerr), message(xerr), code(rerr), message(rerr), tc.wantCode)
			}
		})
	}
}

// TestNewExplainer checks the exported constructor serves over a store.
func TestNewExplainer(t *testing.T) {
	e, _, _ := explainCluster(t)
	x := NewExplainer(testConfig(e.store, e.clock))
	got, err := x.ExplainPlacement(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("big")})
	if err != nil || len(got.Placements) != 0 || len(got.Failures) != 3 || got.Failures[0].Reason != scheduler.ReasonMemory {
		t.Fatalf("%+v, %v", got, err)
	}
}

// FuzzExplainPlacement sends arbitrary RunTask bodies, as the endpoint
// decodes them, to ExplainPlacement: each is explained or refused with a
// client exception, never a panic or a server fault, and nothing is placed.
func FuzzExplainPlacement(f *testing.F) {
	for _, s := range []string{
		`{"cluster":"prod","taskDefinition":"web","count":3,"placementStrategy":[{"type":"spread","field":"attribute:ecs.availability-zone"}]}`,
		`{"taskDefinition":"big","placementConstraints":[{"type":"memberOf","expression":"attribute:ecs.instance-type =~ t3.* and not(task:group == x)"}]}`,
		`{"cluster":"prod","taskDefinition":"port","count":10,"placementConstraints":[{"type":"distinctInstance"}],"group":"g"}`,
		`{"cluster":"prod","taskDefinition":"web","overrides":{"cpu":"4096","containerOverrides":[{"name":"app","memory":9000}]}}`,
		`{"cluster":"prod","taskDefinition":"web","launchType":"EXTERNAL","placementStrategy":[{"type":"binpack"}]}`,
		`{}`,
	} {
		f.Add(s)
	}
	mem := memstore.New()
	f.Cleanup(func() { _ = mem.Close() })
	fc := clock.NewFake(testStart)
	h := newTestHandlers(mem, fc)
	ctx := asPrincipal(adminARN)
	if _, err := h.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		f.Fatal(err)
	}
	for _, family := range []struct {
		name        string
		cpu, memory int32
		port        int32
	}{{"web", 256, 512, 0}, {"big", 0, 8192, 0}, {"port", 0, 64, 80}} {
		c := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx"), Cpu: family.cpu, Memory: aws.Int32(family.memory)}
		if family.port > 0 {
			c.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(family.port)}}
		}
		if _, err := h.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family.name), ContainerDefinitions: []types.ContainerDefinition{c}}); err != nil {
			f.Fatal(err)
		}
	}
	for _, z := range []string{"za", "zb"} {
		out, err := h.RegisterContainerInstance(ctx, instanceInput("prod", 2048, 4096, attr("ecs.availability-zone", z), attr("ecs.instance-type", "t3.small")))
		if err != nil {
			f.Fatal(err)
		}
		if err := (Instances{Store: mem, Clock: fc, Region: testRegion, AccountID: testAccount}).SetAgentConnected(context.Background(), "prod", instanceID(aws.ToString(out.ContainerInstance.ContainerInstanceArn)), true); err != nil {
			f.Fatal(err)
		}
	}
	x := &Explainer{h: h}
	f.Fuzz(func(t *testing.T, body string) {
		var in ecs.RunTaskInput
		if json.Unmarshal([]byte(body), &in) != nil {
			return // the endpoint answers SerializationException
		}
		got, err := x.ExplainPlacement(ctx, &in)
		if err != nil {
			if e := MapError(err); e.HTTPStatus >= 500 {
				t.Fatalf("%s: %v (%s)", body, err, e.Code)
			}
			return
		}
		if len(got.Placements) > got.Count || len(got.Instances) != 2 || len(got.Placements) < got.Count && len(got.Failures) == 0 {
			t.Fatalf("%s: %+v", body, got)
		}
		placed := 0
		for _, v := range got.Instances {
			placed += v.Placed
		}
		if placed != len(got.Placements) {
			t.Fatalf("%s: verdicts place %d, placements %d", body, placed, len(got.Placements))
		}
		if tasks, _ := list[domain.TaskRecord](context.Background(), mem, domain.TasksPrefix("prod")); len(tasks) != 0 {
			t.Fatalf("%s: explaining placed %d tasks", body, len(tasks))
		}
	})
}
