package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestParsePhases(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "rollout,steady", want: []string{"rollout", "steady"}},
		{in: " steady , ,steady", want: []string{"steady"}},
		{in: "", err: true},
		{in: "rollout,burst", err: true},
	} {
		got, err := parsePhases(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("parsePhases(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func deployment(id, status string, state types.DeploymentRolloutState, running int32, created, updated time.Time) types.Deployment {
	return types.Deployment{Id: aws.String(id), Status: aws.String(status), RolloutState: state, RunningCount: running,
		CreatedAt: aws.Time(created), UpdatedAt: aws.Time(updated)}
}

func TestObserve(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	done := deployment("ecs-svc/2", "PRIMARY", types.DeploymentRolloutStateCompleted, 4, t0, t0.Add(5*time.Second))
	old := deployment("ecs-svc/1", "ACTIVE", types.DeploymentRolloutStateCompleted, 2, t0.Add(-time.Hour), t0)
	svc := func(running, pending int32, ds ...types.Deployment) types.Service {
		return types.Service{Status: aws.String("ACTIVE"), DesiredCount: 4, RunningCount: running, PendingCount: pending, Deployments: ds}
	}
	inProgress := done
	inProgress.RolloutState = types.DeploymentRolloutStateInProgress
	draining := svc(4, 0, done)
	draining.Status = aws.String("DRAINING")
	for _, tc := range []struct {
		name           string
		s              types.Service
		want           string
		stable, newAll bool
		server         time.Duration
	}{
		{name: "stable on the wanted deployment", s: svc(4, 0, done), want: "ecs-svc/2", stable: true, newAll: true, server: 5 * time.Second},
		{name: "any deployment accepted", s: svc(4, 0, done), stable: true, server: 5 * time.Second},
		{name: "another deployment", s: svc(4, 0, done), want: "ecs-svc/3"},
		{name: "old deployment left", s: svc(6, 0, done, old), want: "ecs-svc/2", newAll: true},
		{name: "in progress", s: svc(4, 0, inProgress), want: "ecs-svc/2", newAll: true},
		{name: "short of desired", s: svc(3, 0, done), want: "ecs-svc/2", newAll: true},
		{name: "pending", s: svc(4, 1, done), want: "ecs-svc/2", newAll: true},
		{name: "not ACTIVE", s: draining, want: "ecs-svc/2", newAll: true},
		{name: "no deployment", s: svc(4, 0)},
	} {
		got := observe(tc.s, tc.want)
		if got.stable != tc.stable || got.newAll != tc.newAll || got.server != tc.server {
			t.Errorf("%s: stable %v newAll %v server %v; want %v %v %v", tc.name, got.stable, got.newAll, got.server, tc.stable, tc.newAll, tc.server)
		}
	}
}

func TestResyncsIn(t *testing.T) {
	m := time.Minute
	for _, tc := range []struct {
		from, to, every time.Duration
		want            int
	}{
		{from: 70 * time.Second, to: 130 * time.Second, every: 5 * m, want: 0},
		{from: 4 * m, to: 5 * m, every: 5 * m, want: 1},
		{from: 5 * m, to: 6 * m, every: 5 * m, want: 0},
		{from: 4 * m, to: 11 * m, every: 5 * m, want: 2},
		{from: 4 * m, to: 3 * m, every: 5 * m, want: 0},
		{from: 0, to: m, every: 0, want: 0},
	} {
		if got := resyncsIn(tc.from, tc.to, tc.every); got != tc.want {
			t.Errorf("resyncsIn(%v, %v, %v) = %d, want %d", tc.from, tc.to, tc.every, got, tc.want)
		}
	}
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		unit string
		want string
	}{
		{in: []float64{3.5, 1.25, 2}, unit: " s", want: "2 s [1.25–3.50]"},
		{in: []float64{4, 1}, unit: " %", want: "2.50 % [1–4]"},
		{in: []float64{12.34}, unit: " s", want: "12.3 s"},
		{in: nil, want: "–"},
	} {
		if got := summary(tc.in, tc.unit); got != tc.want {
			t.Errorf("summary(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPct(t *testing.T) {
	if got := pct(1.5, time.Minute); got != 2.5 {
		t.Errorf("pct(1.5 s, 1 min) = %v, want 2.5", got)
	}
	if got := pct(1, 0); got != 0 {
		t.Errorf("pct over nothing = %v", got)
	}
}

func TestOptionsCheck(t *testing.T) {
	good := options{berth: "b", runs: 1, instances: 1, tasks: 1, services: 1, perService: 1, createC: 1,
		poll: time.Second, pollMany: time.Second, timeout: time.Minute, window: time.Minute, minPercent: 100, maxPercent: 200}
	if err := good.check(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for name, change := range map[string]func(*options){
		"no berth":        func(o *options) { o.berth = "" },
		"no runs":         func(o *options) { o.runs = 0 },
		"no window":       func(o *options) { o.window = 0 },
		"negative settle": func(o *options) { o.settle = -time.Second },
		"max below 100":   func(o *options) { o.maxPercent = 99 },
	} {
		o := good
		change(&o)
		if o.check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRowOf(t *testing.T) {
	var b strings.Builder
	row := rowOf(&b, []rolloutResult{{serverCPU: 1}, {serverCPU: 3}})
	row("server CPU during the rollout", func(r rolloutResult) float64 { return r.serverCPU }, " s")
	if got, want := b.String(), "| server CPU during the rollout | 2 s [1–3] |\n"; got != want {
		t.Errorf("row = %q, want %q", got, want)
	}
}
