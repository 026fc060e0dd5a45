package scheduler

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func inst(name string, cpu, mem int64, ports ...int32) Instance {
	return Instance{
		ARN:            "arn:" + name,
		Name:           name,
		Status:         StatusActive,
		AgentConnected: true,
		Registered:     Resources{CPU: cpu, Memory: mem, Ports: ports},
		Remaining:      Resources{CPU: cpu, Memory: mem, Ports: slices.Clone(ports)},
	}
}

func cloneSnapshot(s []Instance) []Instance {
	if s == nil {
		return nil
	}
	out := make([]Instance, len(s))
	for i := range s {
		out[i] = s[i]
		out[i].Remaining = cloneResources(s[i].Remaining)
	}
	return out
}

// az returns inst in an Availability Zone with an instance type.
func az(in Instance, zone, typ string) Instance {
	in.Attributes = append(in.Attributes, Attribute{"ecs.availability-zone", zone}, Attribute{"ecs.instance-type", typ})
	return in
}

func withGroups(in Instance, groups map[string]int) Instance {
	in.Groups = groups
	return in
}

func strategy(t types.PlacementStrategyType, field string) types.PlacementStrategy {
	s := types.PlacementStrategy{Type: t}
	if field != "" {
		s.Field = aws.String(field)
	}
	return s
}

func memberOf(expr string) types.PlacementConstraint {
	return types.PlacementConstraint{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String(expr)}
}

var (
	binpackMemory  = strategy(types.PlacementStrategyTypeBinpack, "memory")
	binpackCPU     = strategy(types.PlacementStrategyTypeBinpack, "cpu")
	spreadAZ       = strategy(types.PlacementStrategyTypeSpread, "attribute:ecs.availability-zone")
	spreadInstance = strategy(types.PlacementStrategyTypeSpread, "instanceId")
	spreadHost     = strategy(types.PlacementStrategyTypeSpread, "host")
	random         = strategy(types.PlacementStrategyTypeRandom, "")
	distinct       = types.PlacementConstraint{Type: types.PlacementConstraintTypeDistinctInstance}
)

// failure is the part of a Failure the tables compare.
type failure struct{ Reason, Detail string }

func project(fs []Failure) []failure {
	var out []failure
	for _, f := range fs {
		out = append(out, failure{f.Reason, f.Detail})
	}
	return out
}

func TestPlace(t *testing.T) {
	drained := inst("i-d", 4096, 4096)
	drained.Status = StatusDraining
	offline := inst("i-o", 4096, 4096)
	offline.AgentConnected = false
	udp := inst("i-u", 4096, 4096)
	udp.Remaining.PortsUDP = []int32{53}
	gone := inst("i-g", 4096, 4096)
	gone.Status = StatusInactive
	web := Demand{CPU: 256, Memory: 512, Group: "family:web"}
	two := []Instance{inst("i-1", 4096, 4096), inst("i-2", 4096, 4096)}

	tests := []struct {
		name     string
		snapshot []Instance
		demand   Demand
		count    int
		opts     Options
		want     []string // instance names, in placement order
		failures []failure
	}{
		{"binpack memory fills the fullest instance first",
			[]Instance{inst("i-1", 4096, 4096), inst("i-2", 4096, 1024), inst("i-3", 4096, 2048)}, web, 4,
			Options{Strategies: []types.PlacementStrategy{binpackMemory}}, []string{"i-2", "i-2", "i-3", "i-3"}, nil},
		{"binpack cpu",
			[]Instance{inst("i-1", 4096, 4096), inst("i-2", 1024, 4096), inst("i-3", 512, 4096)}, web, 3,
			Options{Strategies: []types.PlacementStrategy{binpackCPU}}, []string{"i-3", "i-3", "i-2"}, nil},
		{"binpack ties go to the earliest instance", two, web, 2,
			Options{Strategies: []types.PlacementStrategy{binpackMemory}}, []string{"i-1", "i-1"}, nil},
		{"spread instanceId", []Instance{inst("i-1", 4096, 4096), inst("i-2", 4096, 4096), inst("i-3", 4096, 4096)}, web, 6,
			Options{Strategies: []types.PlacementStrategy{spreadInstance}}, []string{"i-1", "i-2", "i-3", "i-1", "i-2", "i-3"}, nil},
		{"spread host is spread instanceId", []Instance{withGroups(inst("i-1", 4096, 4096), map[string]int{"family:web": 2}), inst("i-2", 4096, 4096)}, web, 3,
			Options{Strategies: []types.PlacementStrategy{spreadHost}}, []string{"i-2", "i-2", "i-1"}, nil},
		{"spread counts only the demand's group", []Instance{withGroups(inst("i-1", 4096, 4096), map[string]int{"family:db": 5}), inst("i-2", 4096, 4096)}, web, 2,
			Options{Strategies: []types.PlacementStrategy{spreadInstance}}, []string{"i-1", "i-2"}, nil},
		{"spread across Availability Zones",
			[]Instance{az(inst("i-1", 4096, 4096), "a", "t2.small"), az(inst("i-2", 4096, 4096), "a", "t2.small"), az(inst("i-3", 4096, 4096), "a", "t2.small"), az(inst("i-4", 4096, 4096), "b", "t2.small")},
			web, 4, Options{Strategies: []types.PlacementStrategy{spreadAZ}}, []string{"i-1", "i-4", "i-1", "i-4"}, nil},
		{"spread AZ counts tasks already running in each zone",
			[]Instance{withGroups(az(inst("i-1", 4096, 4096), "a", "t2.small"), map[string]int{"family:web": 2}), az(inst("i-2", 4096, 4096), "b", "t2.small")},
			web, 3, Options{Strategies: []types.PlacementStrategy{spreadAZ}}, []string{"i-2", "i-2", "i-1"}, nil},
		{"spread AZ then binpack memory within each zone (ECS's example)",
			[]Instance{az(inst("i-1", 4096, 4096), "a", "t2.small"), az(inst("i-2", 4096, 2048), "a", "t2.small"), az(inst("i-3", 4096, 8192), "b", "t2.small"), az(inst("i-4", 4096, 1024), "b", "t2.small")},
			web, 4, Options{Strategies: []types.PlacementStrategy{spreadAZ, binpackMemory}}, []string{"i-4", "i-2", "i-4", "i-2"}, nil},
		{"spread AZ then spread instanceId (ECS's example)",
			[]Instance{az(inst("i-1", 4096, 4096), "a", "t2.small"), az(inst("i-2", 4096, 4096), "a", "t2.small"), az(inst("i-3", 4096, 4096), "b", "t2.small")},
			web, 4, Options{Strategies: []types.PlacementStrategy{spreadAZ, spreadInstance}}, []string{"i-1", "i-3", "i-2", "i-3"}, nil},
		{"spread puts instances without the attribute in a zone of their own",
			[]Instance{az(inst("i-1", 4096, 4096), "a", "t2.small"), inst("i-2", 4096, 4096), inst("i-3", 4096, 4096)},
			web, 3, Options{Strategies: []types.PlacementStrategy{spreadAZ}}, []string{"i-1", "i-2", "i-1"}, nil},
		{"binpack, then spread breaks its ties",
			[]Instance{withGroups(inst("i-1", 4096, 2048), map[string]int{"family:web": 1}), inst("i-2", 4096, 2048), inst("i-3", 4096, 1024)},
			web, 1, Options{Strategies: []types.PlacementStrategy{binpackCPU, spreadInstance}}, []string{"i-2"}, nil},
		{"spills over on memory", []Instance{inst("i-1", 4096, 600), inst("i-2", 4096, 600)},
			Demand{Memory: 512}, 3, Options{Strategies: []types.PlacementStrategy{binpackMemory}}, []string{"i-1", "i-2"}, []failure{
				{ReasonMemory, "i-1: memory 512 needed, 88 free"},
				{ReasonMemory, "i-2: memory 512 needed, 88 free"},
			}},
		{"cpu", []Instance{inst("i-1", 256, 4096)}, Demand{CPU: 512}, 1, Options{}, nil,
			[]failure{{ReasonCPU, "i-1: cpu 512 needed, 256 free"}}},
		{"reserved port", []Instance{inst("i-1", 4096, 4096, 22, 80)}, Demand{Ports: []int32{80}}, 1, Options{}, nil,
			[]failure{{ReasonPorts, "i-1: port 80/tcp in use"}}},
		{"static port once per instance", two, Demand{Ports: []int32{8080}}, 3, Options{Strategies: []types.PlacementStrategy{binpackMemory}},
			[]string{"i-1", "i-2"}, []failure{
				{ReasonPorts, "i-1: port 8080/tcp in use"},
				{ReasonPorts, "i-2: port 8080/tcp in use"},
			}},
		{"udp", []Instance{udp}, Demand{PortsUDP: []int32{53}}, 1, Options{}, nil,
			[]failure{{ReasonPortsUDP, "i-u: port 53/udp in use"}}},
		{"tcp and udp ports are separate", []Instance{udp}, Demand{Ports: []int32{53}}, 1, Options{}, []string{"i-u"}, nil},
		{"draining, inactive and disconnected instances take nothing", []Instance{drained, gone, offline, inst("i-3", 1024, 1024)},
			Demand{Memory: 1024}, 2, Options{}, []string{"i-3"}, []failure{
				{ReasonDraining, "i-d: instance is DRAINING"},
				{ReasonInactive, "i-g: instance is INACTIVE"},
				{ReasonAgent, "i-o: agent is not connected"},
				{ReasonMemory, "i-3: memory 1024 needed, 0 free"},
			}},
		{"required attributes", []Instance{az(inst("i-1", 4096, 4096), "a", "t2.small"), inst("i-2", 4096, 4096)},
			Demand{RequiresAttributes: []Attribute{{Name: "ecs.capability.secrets.ssm.environment-variables"}}}, 1, Options{}, nil, []failure{
				{ReasonAttr, "i-1: attribute ecs.capability.secrets.ssm.environment-variables missing"},
				{ReasonAttr, "i-2: attribute ecs.capability.secrets.ssm.environment-variables missing"},
			}},
		{"required attribute with a value", []Instance{az(inst("i-1", 4096, 4096), "a", "t2.small")},
			Demand{RequiresAttributes: []Attribute{{Name: "ecs.instance-type", Value: "t3.large"}}}, 1, Options{}, nil, []failure{
				{ReasonAttr, "i-1: attribute ecs.instance-type is t2.small, not t3.large"},
			}},
		{"distinctInstance", two, web, 3, Options{Strategies: []types.PlacementStrategy{binpackMemory}, Constraints: []types.PlacementConstraint{distinct}}, []string{"i-1", "i-2"}, []failure{
			{ReasonDistinctInstance, "i-1: distinctInstance: a task of group family:web runs here"},
			{ReasonDistinctInstance, "i-2: distinctInstance: a task of group family:web runs here"},
		}},
		{"distinctInstance counts tasks already running", []Instance{withGroups(inst("i-1", 4096, 4096), map[string]int{"family:web": 1})}, web, 1,
			Options{Constraints: []types.PlacementConstraint{distinct}}, nil, []failure{
				{ReasonDistinctInstance, "i-1: distinctInstance: a task of group family:web runs here"},
			}},
		{"memberOf instance type (ECS's example)",
			[]Instance{az(inst("i-1", 4096, 4096), "a", "m5.large"), az(inst("i-2", 4096, 4096), "a", "t2.small")},
			web, 2, Options{Constraints: []types.PlacementConstraint{memberOf("attribute:ecs.instance-type =~ t2.*")}}, []string{"i-2", "i-2"}, nil},
		{"memberOf explains the instances it excludes",
			[]Instance{az(inst("i-1", 4096, 4096), "a", "m5.large"), inst("i-2", 4096, 4096)},
			web, 1, Options{Constraints: []types.PlacementConstraint{memberOf("attribute:ecs.instance-type =~ t2.*")}}, nil, []failure{
				{ReasonMemberOf, "i-1: attribute:ecs.instance-type !~ t2.* (is m5.large)"},
				{ReasonMemberOf, "i-2: attribute:ecs.instance-type !~ t2.* (not set)"},
			}},
		{"resources are checked before constraints",
			[]Instance{az(inst("i-1", 4096, 256), "a", "m5.large")},
			web, 1, Options{Constraints: []types.PlacementConstraint{memberOf("attribute:ecs.instance-type =~ t2.*")}}, nil, []failure{
				{ReasonMemory, "i-1: memory 512 needed, 256 free"},
			}},
		{"every constraint binds (the call's and the task definition's)",
			[]Instance{az(inst("i-1", 4096, 4096), "a", "t2.small"), az(inst("i-2", 4096, 4096), "b", "t2.small"), az(inst("i-3", 4096, 4096), "b", "m5.large")},
			web, 1, Options{Constraints: []types.PlacementConstraint{memberOf("attribute:ecs.availability-zone == b"), memberOf("attribute:ecs.instance-type == t2.small")}}, []string{"i-2"}, nil},
		{"task affinity (ECS's example)",
			[]Instance{inst("i-1", 4096, 4096), withGroups(inst("i-2", 4096, 4096), map[string]int{"service:production": 1})},
			web, 2, Options{Constraints: []types.PlacementConstraint{memberOf("task:group == service:production")}}, []string{"i-2", "i-2"}, nil},
		{"task anti-affinity with its own group acts as distinctInstance",
			[]Instance{inst("i-1", 4096, 4096), inst("i-2", 4096, 4096)},
			web, 3, Options{Strategies: []types.PlacementStrategy{binpackMemory}, Constraints: []types.PlacementConstraint{memberOf("not(task:group == family:web)")}}, []string{"i-1", "i-2"}, []failure{
				{ReasonMemberOf, "i-1: task:group == family:web (groups family:web)"},
				{ReasonMemberOf, "i-2: task:group == family:web (groups family:web)"},
			}},
		{"no instances", nil, Demand{}, 1, Options{}, nil, nil},
		{"zero demand fits anywhere", []Instance{inst("i-1", 0, 0)}, Demand{}, 2, Options{}, []string{"i-1", "i-1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneSnapshot(tt.snapshot)
			ps, fs := Place(tt.snapshot, tt.demand, tt.count, tt.opts)
			var got []string
			for _, p := range ps {
				got = append(got, tt.snapshot[p.Instance].Name)
				if p.InstanceARN != tt.snapshot[p.Instance].ARN {
					t.Errorf("placement ARN %s, instance %s", p.InstanceARN, tt.snapshot[p.Instance].ARN)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("placements (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.failures, project(fs)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			for _, f := range fs {
				if f.InstanceARN != tt.snapshot[f.Instance].ARN {
					t.Errorf("failure %+v: instance %d is %s", f, f.Instance, tt.snapshot[f.Instance].ARN)
				}
			}
			if !reflect.DeepEqual(before, tt.snapshot) {
				t.Error("Place modified the snapshot")
			}
		})
	}
}

func TestFailureData(t *testing.T) {
	snap := []Instance{inst("i-1", 100, 4096), inst("i-2", 4096, 100), inst("i-3", 4096, 4096, 80), az(inst("i-4", 4096, 4096), "a", "m5.large")}
	opts := Options{Constraints: []types.PlacementConstraint{memberOf("attribute:ecs.availability-zone == a and attribute:ecs.instance-type =~ t3.*")}}
	_, fs := Place(snap, Demand{CPU: 200, Memory: 200, Ports: []int32{80}}, 1, opts)
	want := []Failure{
		{InstanceARN: "arn:i-1", Reason: ReasonCPU, Detail: "i-1: cpu 200 needed, 100 free", Instance: 0, Rule: RuleCPU, Needed: 200, Free: 100},
		{InstanceARN: "arn:i-2", Reason: ReasonMemory, Detail: "i-2: memory 200 needed, 100 free", Instance: 1, Rule: RuleMemory, Needed: 200, Free: 100},
		{InstanceARN: "arn:i-3", Reason: ReasonPorts, Detail: "i-3: port 80/tcp in use", Instance: 2, Rule: RulePorts, Port: 80},
		{InstanceARN: "arn:i-4", Reason: ReasonMemberOf, Detail: "i-4: attribute:ecs.instance-type !~ t3.* (is m5.large)", Instance: 3, Rule: RuleMemberOf,
			Constraint: "attribute:ecs.availability-zone == a and attribute:ecs.instance-type =~ t3.*", Clause: "attribute:ecs.instance-type !~ t3.* (is m5.large)"},
	}
	if diff := cmp.Diff(want, fs); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

func TestDecide(t *testing.T) {
	snap := []Instance{inst("i-1", 4096, 1024), inst("i-2", 4096, 4096), az(inst("i-3", 4096, 4096), "a", "m5.large")}
	dec, err := Decide(snap, Demand{Memory: 512, Group: "g"}, 3, Options{
		Strategies:  []types.PlacementStrategy{binpackMemory},
		Constraints: []types.PlacementConstraint{memberOf("attribute:ecs.instance-type !exists")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Placements) != 3 || dec.Failures != nil {
		t.Fatalf("decision: %+v", dec)
	}
	placed := []int{2, 1, 0}
	for i, v := range dec.Verdicts {
		if v.Instance != i || v.Name != snap[i].Name || v.InstanceARN != snap[i].ARN || v.Placed != placed[i] {
			t.Errorf("verdict %d: %+v", i, v)
		}
	}
	if f := dec.Verdicts[0].Failure; f == nil || f.Detail != "i-1: memory 512 needed, 0 free" {
		t.Errorf("a full instance: %+v", f)
	}
	if f := dec.Verdicts[1].Failure; f != nil {
		t.Errorf("an instance with room: %+v", f)
	}
	if f := dec.Verdicts[2].Failure; f == nil || f.Rule != RuleMemberOf || f.Clause != "attribute:ecs.instance-type exists (is m5.large)" {
		t.Errorf("an excluded instance: %+v", f)
	}
	if _, err := Decide(snap, Demand{}, 1, Options{Constraints: []types.PlacementConstraint{memberOf("nonsense")}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("invalid options: %v", err)
	}
	ps, fs := Place(snap, Demand{}, 1, Options{Constraints: []types.PlacementConstraint{memberOf("nonsense")}})
	if len(ps) != 0 || len(fs) != 1 || fs[0].Reason != "INVALID" {
		t.Errorf("Place with invalid options: %+v %+v", ps, fs)
	}
}

func TestRandom(t *testing.T) {
	snap := []Instance{inst("i-1", 4096, 4096), inst("i-2", 4096, 4096), inst("i-3", 4096, 4096), inst("i-4", 4096, 4096)}
	d := Demand{Memory: 1}
	seen := map[int]int{}
	for seed := range uint64(400) {
		ps, _ := Place(snap, d, 1, Options{Seed: seed})
		again, _ := Place(snap, d, 1, Options{Seed: seed, Strategies: []types.PlacementStrategy{random}})
		if !reflect.DeepEqual(ps, again) {
			t.Fatalf("seed %d: the default is not random: %v, %v", seed, ps, again)
		}
		seen[ps[0].Instance]++
	}
	for i := range snap {
		// Each instance gets about 100 of 400; 50 is far out.
		if seen[i] < 50 {
			t.Errorf("random placement: %v", seen)
		}
	}
	// Within a call each task draws again.
	ps, _ := Place(snap, d, 40, Options{Seed: 1})
	per := map[int]bool{}
	for _, p := range ps {
		per[p.Instance] = true
	}
	if len(per) < 3 {
		t.Errorf("40 random tasks landed on %d instances", len(per))
	}
}

func TestCheckOrder(t *testing.T) {
	i := inst("i-1", 0, 0, 80)
	i.AgentConnected = false
	if f := Check(&i, Demand{CPU: 1, Memory: 1, Ports: []int32{80}}); f == nil || f.Reason != ReasonAgent || f.Instance != -1 {
		t.Errorf("a disconnected agent is reported first, got %+v", f)
	}
	i.AgentConnected = true
	if f := Check(&i, Demand{CPU: 1, Memory: 1, Ports: []int32{80}}); f == nil || f.Reason != ReasonCPU {
		t.Errorf("cpu before memory and ports, got %+v", f)
	}
	i.Status = StatusInactive
	if f := Check(&i, Demand{}); f == nil || f.Reason != ReasonInactive {
		t.Errorf("INACTIVE instance: %+v", f)
	}
	ok := inst("i-2", 10, 10)
	if f := Check(&ok, Demand{Ports: []int32{9, 9}}); f == nil || f.Reason != ReasonPorts {
		t.Errorf("a demand listing a port twice cannot be placed: %+v", f)
	}
	if f := Check(&ok, Demand{CPU: 10, Memory: 10}); f != nil {
		t.Errorf("an exact fit: %+v", f)
	}
}

func TestTakeDoesNotShare(t *testing.T) {
	a := inst("i-1", 100, 100, 22)
	a.Groups = map[string]int{"g": 1}
	b := Take(a, Demand{CPU: 10, Memory: 20, Ports: []int32{80}, Group: "g"})
	if a.Remaining.CPU != 100 || len(a.Remaining.Ports) != 1 || a.Groups["g"] != 1 {
		t.Fatalf("Take changed its argument: %+v", a)
	}
	if b.Remaining.CPU != 90 || b.Remaining.Memory != 80 || !slices.Equal(b.Remaining.Ports, []int32{22, 80}) || b.Groups["g"] != 2 {
		t.Fatalf("Take result: %+v", b)
	}
}

func TestValidateOptions(t *testing.T) {
	six := slices.Repeat([]types.PlacementStrategy{random}, 6)
	eleven := slices.Repeat([]types.PlacementConstraint{distinct}, 11)
	tests := []struct {
		name string
		opts Options
		msg  string // "" when valid
	}{
		{"none", Options{}, ""},
		{"every strategy", Options{Strategies: []types.PlacementStrategy{spreadAZ, spreadInstance, spreadHost, binpackMemory, binpackCPU}}, ""},
		{"five", Options{Strategies: slices.Repeat([]types.PlacementStrategy{random}, 5)}, ""},
		{"six", Options{Strategies: six}, "You can specify at most 5 placement strategies."},
		{"binpack field", Options{Strategies: []types.PlacementStrategy{strategy(types.PlacementStrategyTypeBinpack, "disk")}},
			`Invalid field "disk" for the binpack placement strategy. Valid values are cpu and memory.`},
		{"spread field", Options{Strategies: []types.PlacementStrategy{strategy(types.PlacementStrategyTypeSpread, "attribute:")}},
			`Invalid field "attribute:" for the spread placement strategy. Valid values are instanceId, host and attribute:<name>.`},
		{"type", Options{Strategies: []types.PlacementStrategy{strategy("pack", "")}}, `Invalid placement strategy type "pack". Valid values are random, spread and binpack.`},
		{"ten constraints", Options{Constraints: eleven[:10]}, ""},
		{"eleven constraints", Options{Constraints: eleven}, "You can specify at most 10 placement constraints, including those of the task definition."},
		{"distinctInstance with an expression", Options{Constraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeDistinctInstance, Expression: aws.String("")}}},
			"distinctInstance expression should not be specified."},
		{"memberOf without expression", Options{Constraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf}}}, "A memberOf placement constraint requires an expression."},
		{"memberOf too long", Options{Constraints: []types.PlacementConstraint{memberOf(strings.Repeat("a", MaxExpressionLength+1))}},
			"Placement constraint expression is too long. The maximum length is 2000 characters."},
		{"memberOf that does not parse", Options{Constraints: []types.PlacementConstraint{memberOf("attribute:a likes b")}}, `Invalid expression: "likes" is not an operator.`},
		{"constraint type", Options{Constraints: []types.PlacementConstraint{{Type: "sameInstance"}}}, `Invalid placement constraint type "sameInstance". Valid values are distinctInstance and memberOf.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOptions(tt.opts)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("valid options refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || errdefs.Message(err, "") != tt.msg {
				t.Errorf("error %v, want %q", err, tt.msg)
			}
		})
	}
}
