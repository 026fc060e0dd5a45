package scheduler

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"pgregory.net/rapid"
)

var (
	zones = []string{"a", "b", "c"}
	kinds = []string{"t3.small", "t3.large", "m5.large"}
	// propExprs are memberOf expressions whose value placing a task does
	// not change, so that the property can check them on the snapshot.
	propExprs = []string{
		"attribute:ecs.instance-type =~ t3.*",
		"attribute:ecs.availability-zone in [a, b]",
		"not(attribute:ecs.availability-zone == c) or runningTasksCount < 2",
		"attribute:gpu !exists",
	}
)

func genInstance(t *rapid.T, i int) Instance {
	var ports []int32
	for range rapid.IntRange(0, 2).Draw(t, "nports") {
		ports = append(ports, int32(rapid.IntRange(8000, 8003).Draw(t, "port")))
	}
	in := inst(fmt.Sprintf("i-%d", i), rapid.Int64Range(0, 4096).Draw(t, "cpu"), rapid.Int64Range(0, 4096).Draw(t, "mem"), ports...)
	in.AgentConnected = rapid.IntRange(0, 5).Draw(t, "agent") > 0
	switch rapid.IntRange(0, 8).Draw(t, "status") {
	case 0:
		in.Status = StatusDraining
	case 1:
		in.Status = StatusInactive
	}
	in = az(in, rapid.SampledFrom(zones).Draw(t, "zone"), rapid.SampledFrom(kinds).Draw(t, "type"))
	if rapid.Bool().Draw(t, "gpu") {
		in.Attributes = append(in.Attributes, Attribute{Name: "gpu"})
	}
	in.RunningTasksCount = rapid.IntRange(0, 3).Draw(t, "running")
	in.Groups = map[string]int{"g": rapid.IntRange(0, 1).Draw(t, "group")}
	return in
}

func genStrategies(t *rapid.T) []types.PlacementStrategy {
	all := []types.PlacementStrategy{binpackMemory, binpackCPU, spreadAZ, spreadInstance, spreadHost, random}
	return rapid.SliceOfN(rapid.SampledFrom(all), 0, MaxStrategies).Draw(t, "strategies")
}

// TestPropNeverOverCommits: whatever the snapshot, demand and options,
// the tasks Place puts on an instance fit its remaining CPU and memory,
// their static ports clash neither with each other nor with ports in use,
// every placement honours the constraints, and when a task is left over
// every instance says why.
func TestPropNeverOverCommits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		snap := make([]Instance, rapid.IntRange(0, 8).Draw(t, "instances"))
		for i := range snap {
			snap[i] = genInstance(t, i)
		}
		d := Demand{CPU: rapid.Int64Range(0, 1024).Draw(t, "dcpu"), Memory: rapid.Int64Range(0, 1024).Draw(t, "dmem"), Group: "g"}
		if rapid.Bool().Draw(t, "dport") {
			d.Ports = []int32{int32(rapid.IntRange(8000, 8003).Draw(t, "dport"))}
		}
		if rapid.Bool().Draw(t, "dudp") {
			d.PortsUDP = []int32{53}
		}
		opts := Options{Strategies: genStrategies(t), Seed: rapid.Uint64().Draw(t, "seed")}
		distinctOn := rapid.Bool().Draw(t, "distinct")
		if distinctOn {
			opts.Constraints = append(opts.Constraints, distinct)
		}
		var exprs []*Expression
		for _, s := range rapid.SliceOfNDistinct(rapid.SampledFrom(propExprs), 0, 2, rapid.ID).Draw(t, "exprs") {
			opts.Constraints = append(opts.Constraints, memberOf(s))
			e, err := ParseExpression(s)
			if err != nil {
				t.Fatal(err)
			}
			exprs = append(exprs, e)
		}
		count := rapid.IntRange(1, 12).Draw(t, "count")
		before := cloneSnapshot(snap)

		ps, fs := Place(snap, d, count, opts)

		if !reflect.DeepEqual(before, snap) {
			t.Fatal("Place modified the snapshot")
		}
		again, _ := Place(snap, d, count, opts)
		if !reflect.DeepEqual(ps, again) {
			t.Fatalf("not deterministic: %v, %v", ps, again)
		}
		per := map[int]int{}
		for _, p := range ps {
			per[p.Instance]++
		}
		for i, n := range per {
			in := snap[i]
			if in.Status != StatusActive || !in.AgentConnected {
				t.Fatalf("placed on ineligible %+v", in)
			}
			if int64(n)*d.CPU > in.Remaining.CPU || int64(n)*d.Memory > in.Remaining.Memory {
				t.Fatalf("%d tasks of %+v over-commit %+v", n, d, in.Remaining)
			}
			if len(d.Ports)+len(d.PortsUDP) > 0 && n > 1 {
				t.Fatalf("static port placed %d times on one instance", n)
			}
			for _, p := range d.Ports {
				if slices.Contains(in.Remaining.Ports, p) {
					t.Fatalf("port %d already in use", p)
				}
			}
			if distinctOn && (n > 1 || in.Groups["g"] > 0) {
				t.Fatalf("distinctInstance violated: %d tasks, %d before", n, in.Groups["g"])
			}
			for _, e := range exprs {
				if !e.Match(&in) {
					t.Fatalf("placed on %s outside memberOf(%s)", in.Name, e)
				}
			}
		}
		switch {
		case len(ps) > count:
			t.Fatalf("%d placed of %d", len(ps), count)
		case len(ps) == count && fs != nil:
			t.Fatalf("all placed, yet failures %+v", fs)
		case len(ps) < count && len(fs) != len(snap):
			t.Fatalf("%d of %d placed, %d failures for %d instances", len(ps), count, len(fs), len(snap))
		}
		for j, f := range fs {
			if f.Instance != j || f.InstanceARN != snap[j].ARN || f.Reason == "" || f.Rule == "" {
				t.Fatalf("failure %d: %+v", j, f)
			}
		}
	})
}

// TestPropSpreadBalances: spreading tasks over N attribute values with
// room everywhere leaves the values' counts at most one apart, whatever
// strategy follows the spread.
func TestPropSpreadBalances(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		values := rapid.IntRange(1, 5).Draw(t, "values")
		var snap []Instance
		for v := range values {
			for range rapid.IntRange(1, 4).Draw(t, "per value") {
				in := inst(fmt.Sprintf("i-%d", len(snap)), rapid.Int64Range(100000, 200000).Draw(t, "cpu"), rapid.Int64Range(100000, 200000).Draw(t, "mem"))
				in.Attributes = []Attribute{{"rack", fmt.Sprint(v)}}
				snap = append(snap, in)
			}
		}
		perm := rapid.Permutation(snap).Draw(t, "order")
		snap = perm
		chain := append([]types.PlacementStrategy{strategy(types.PlacementStrategyTypeSpread, "attribute:rack")}, genStrategies(t)...)
		opts := Options{Strategies: chain[:min(MaxStrategies, len(chain))]}
		count := rapid.IntRange(1, 60).Draw(t, "count")
		ps, fs := Place(snap, Demand{CPU: 10, Memory: 10, Group: "g"}, count, opts)
		if len(ps) != count || fs != nil {
			t.Fatalf("%d of %d placed: %+v", len(ps), count, fs)
		}
		per := make([]int, values)
		for _, p := range ps {
			v, _ := snap[p.Instance].Attribute("rack")
			var n int
			fmt.Sscan(v, &n)
			per[n]++
		}
		if slices.Max(per)-slices.Min(per) > 1 {
			t.Fatalf("spread %v over %d values", per, values)
		}
	})
}

// TestPropFitsIsCheck: the fast test that Place filters with agrees with
// the failure it explains with.
func TestPropFitsIsCheck(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInstance(t, 0)
		d := Demand{CPU: rapid.Int64Range(0, 4096).Draw(t, "dcpu"), Memory: rapid.Int64Range(0, 4096).Draw(t, "dmem")}
		if rapid.Bool().Draw(t, "dport") {
			d.Ports = []int32{int32(rapid.IntRange(8000, 8003).Draw(t, "dport"))}
		}
		if rapid.Bool().Draw(t, "req") {
			d.RequiresAttributes = []Attribute{{Name: "ecs.instance-type", Value: rapid.SampledFrom(append(kinds, "")).Draw(t, "value")}}
		}
		if fits(&in, &d) != (Check(&in, d) == nil) {
			t.Fatalf("fits %v, Check %+v", fits(&in, &d), Check(&in, d))
		}
	})
}
