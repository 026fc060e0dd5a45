package scheduler

import (
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"testing/quick"

	"github.com/google/go-cmp/cmp"
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

func TestPlace(t *testing.T) {
	drained := inst("i-d", 4096, 4096)
	drained.Status = StatusDraining
	offline := inst("i-o", 4096, 4096)
	offline.AgentConnected = false
	udp := inst("i-u", 4096, 4096)
	udp.Remaining.PortsUDP = []int32{53}

	tests := []struct {
		name     string
		snapshot []Instance
		demand   Demand
		count    int
		want     []string // instance names, in placement order
		failures []Failure
	}{
		{"first fit", []Instance{inst("i-1", 1024, 1024), inst("i-2", 1024, 1024)},
			Demand{CPU: 512, Memory: 512}, 3, []string{"i-1", "i-1", "i-2"}, nil},
		{"spills over on memory", []Instance{inst("i-1", 4096, 600), inst("i-2", 4096, 600)},
			Demand{Memory: 512}, 3, []string{"i-1", "i-2"}, []Failure{
				{"arn:i-1", ReasonMemory, "i-1: memory 512 needed, 88 free"},
				{"arn:i-2", ReasonMemory, "i-2: memory 512 needed, 88 free"},
			}},
		{"cpu", []Instance{inst("i-1", 256, 4096)}, Demand{CPU: 512}, 1, nil,
			[]Failure{{"arn:i-1", ReasonCPU, "i-1: cpu 512 needed, 256 free"}}},
		{"reserved port", []Instance{inst("i-1", 4096, 4096, 22, 80)}, Demand{Ports: []int32{80}}, 1, nil,
			[]Failure{{"arn:i-1", ReasonPorts, "i-1: port 80/tcp in use"}}},
		{"static port once per instance", []Instance{inst("i-1", 4096, 4096), inst("i-2", 4096, 4096)},
			Demand{Ports: []int32{8080}}, 3, []string{"i-1", "i-2"}, []Failure{
				{"arn:i-1", ReasonPorts, "i-1: port 8080/tcp in use"},
				{"arn:i-2", ReasonPorts, "i-2: port 8080/tcp in use"},
			}},
		{"udp", []Instance{udp}, Demand{PortsUDP: []int32{53}}, 1, nil,
			[]Failure{{"arn:i-u", ReasonPortsUDP, "i-u: port 53/udp in use"}}},
		{"tcp and udp ports are separate", []Instance{udp}, Demand{Ports: []int32{53}}, 1, []string{"i-u"}, nil},
		{"draining and disconnected instances take nothing", []Instance{drained, offline, inst("i-3", 1024, 1024)},
			Demand{Memory: 1024}, 2, []string{"i-3"}, []Failure{
				{"arn:i-d", ReasonDraining, "i-d: instance is DRAINING"},
				{"arn:i-o", ReasonAgent, "i-o: agent is not connected"},
				{"arn:i-3", ReasonMemory, "i-3: memory 1024 needed, 0 free"},
			}},
		{"no instances", nil, Demand{}, 1, nil, nil},
		{"zero demand fits anywhere", []Instance{inst("i-1", 0, 0)}, Demand{}, 2, []string{"i-1", "i-1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneSnapshot(tt.snapshot)
			ps, fs := Place(tt.snapshot, tt.demand, tt.count, Options{})
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
			if diff := cmp.Diff(tt.failures, fs); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if !reflect.DeepEqual(before, tt.snapshot) {
				t.Error("Place modified the snapshot")
			}
		})
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

func TestCheckOrder(t *testing.T) {
	i := inst("i-1", 0, 0, 80)
	i.AgentConnected = false
	if f := Check(&i, Demand{CPU: 1, Memory: 1, Ports: []int32{80}}); f == nil || f.Reason != ReasonAgent {
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

// TestNeverOverCommits is the property: whatever the snapshot and demand,
// the tasks Place puts on an instance fit its remaining CPU and memory, and
// their static ports neither clash with each other nor with ports in use.
func TestNeverOverCommits(t *testing.T) {
	prop := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		snapshot := make([]Instance, r.Intn(6))
		for i := range snapshot {
			var ports []int32
			for range r.Intn(3) {
				ports = append(ports, int32(8000+r.Intn(5)))
			}
			snapshot[i] = inst(string(rune('a'+i)), int64(r.Intn(4096)), int64(r.Intn(4096)), ports...)
			snapshot[i].AgentConnected = r.Intn(5) > 0
			if r.Intn(6) == 0 {
				snapshot[i].Status = StatusDraining
			}
		}
		d := Demand{CPU: int64(r.Intn(1024)), Memory: int64(r.Intn(1024)), Group: "g"}
		for range r.Intn(2) {
			d.Ports = append(d.Ports, int32(8000+r.Intn(5)))
		}
		count := 1 + r.Intn(10)
		ps, fs := Place(snapshot, d, count, Options{})
		if len(ps) < count && len(fs) == 0 && len(snapshot) > 0 {
			t.Logf("seed %d: %d of %d placed without failures", seed, len(ps), count)
			return false
		}
		per := map[int]int{}
		for _, p := range ps {
			per[p.Instance]++
		}
		for i, n := range per {
			in := snapshot[i]
			if in.Status != StatusActive || !in.AgentConnected {
				t.Logf("seed %d: placed on ineligible %+v", seed, in)
				return false
			}
			if int64(n)*d.CPU > in.Remaining.CPU || int64(n)*d.Memory > in.Remaining.Memory {
				t.Logf("seed %d: %d tasks of %+v over-commit %+v", seed, n, d, in.Remaining)
				return false
			}
			if len(d.Ports) > 0 {
				if n > 1 {
					t.Logf("seed %d: static port placed %d times on one instance", seed, n)
					return false
				}
				for _, p := range d.Ports {
					if slices.Contains(in.Remaining.Ports, p) {
						t.Logf("seed %d: port %d already in use", seed, p)
						return false
					}
				}
			}
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkPlaceFirstFit(b *testing.B) {
	snapshot := make([]Instance, 1000)
	for i := range snapshot {
		snapshot[i] = inst("i", 4096, 8192, 22)
	}
	d := Demand{CPU: 256, Memory: 512, Group: "g"}
	b.ReportAllocs()
	for b.Loop() {
		Place(snapshot, d, 10, Options{})
	}
}
