package scheduler

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// benchCluster is n instances of 4 vCPU and 16 GiB like a fleet of
// m5.xlarge and t3.xlarge (four in five t3) over three Availability Zones,
// with the attributes a real agent registers.
func benchCluster(n int) []Instance {
	snap := make([]Instance, n)
	for i := range snap {
		typ := "t3.xlarge"
		if i%5 == 4 {
			typ = "m5.xlarge"
		}
		in := inst(fmt.Sprintf("i-%05d", i), 4096, 16384, 22, 2375, 2376, 51678, 51679)
		in.Attributes = []Attribute{
			{"ecs.ami-id", "ami-0123456789abcdef0"},
			{"ecs.availability-zone", "us-east-1" + string(rune('a'+i%3))},
			{"ecs.instance-type", typ},
			{"ecs.os-type", "linux"},
			{"ecs.os-family", "LINUX"},
			{"ecs.cpu-architecture", "x86_64"},
			{"ecs.capability.execution-role-awslogs", ""},
			{"ecs.capability.container-health-check", ""},
			{"ecs.capability.task-cpu-mem-limit", ""},
			{"stack", "prod"},
		}
		in.Groups = map[string]int{"family:other": 1}
		in.RunningTasksCount = 1
		snap[i] = in
	}
	return snap
}

// placeAll places total tasks, count per call, each call on the snapshot
// as the previous calls left it (as RunTask commits would), and returns
// how many were placed.
func placeAll(b *testing.B, snap []Instance, d Demand, opts Options, total, count int) int {
	placed := 0
	for placed < total {
		ps, _ := Place(snap, d, count, opts)
		if len(ps) == 0 {
			b.Fatalf("only %d of %d placed", placed, total)
		}
		for _, p := range ps {
			snap[p.Instance] = Take(snap[p.Instance], d)
		}
		placed += len(ps)
		opts.Seed++
	}
	return placed
}

// BenchmarkPlace100k is the target: 100,000 tasks onto 5,000
// instances with binpack(memory) and one memberOf constraint, RunTask's
// count of 10 per call; also at 500 and 20,000 instances (tasks scale
// with instances: 20 per instance).
func BenchmarkPlace100k(b *testing.B) {
	opts := Options{
		Strategies:  []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}},
		Constraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.instance-type =~ t3.*")}},
	}
	d := Demand{CPU: 128, Memory: 512, Group: "family:web"}
	for _, n := range []int{500, 5000, 20000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			total := min(20*n, 100000)
			base := benchCluster(n)
			var placed int
			for b.Loop() {
				b.StopTimer()
				snap := cloneSnapshot(base)
				b.StartTimer()
				placed += placeAll(b, snap, d, opts, total, 10)
			}
			b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
		})
	}
}

// BenchmarkPlaceStrategies: one RunTask of count 10 on 5,000 instances
// with each strategy.
func BenchmarkPlaceStrategies(b *testing.B) {
	for _, tc := range []struct {
		name string
		s    []types.PlacementStrategy
	}{
		{"random", nil},
		{"binpack-cpu", []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("cpu")}}},
		{"spread-az-binpack-memory", []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}, {Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}},
		{"spread-instance", []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("instanceId")}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			snap := benchCluster(5000)
			d := Demand{CPU: 128, Memory: 512, Group: "family:web"}
			opts := Options{Strategies: tc.s}
			b.ReportAllocs()
			for b.Loop() {
				Place(snap, d, 10, opts)
			}
			b.ReportMetric(10*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
		})
	}
}
