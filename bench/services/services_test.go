package main

import (
	"bufio"
	"os"
	"path/filepath"
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

func TestNumbered(t *testing.T) {
	if got := numbered("/p/cpu-steady1-%d.pprof", 2); got != "/p/cpu-steady1-2.pprof" {
		t.Errorf("numbered = %q", got)
	}
	if got := numbered("/p/cpu.pprof", 2); got != "/p/cpu.pprof" {
		t.Errorf("numbered without %%d = %q", got)
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

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		err  bool
	}{
		{in: "123 (berth) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0", want: 4},
		{in: "123 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", want: 0.03},
		{in: "123 (berth) S 1 2", err: true},
		{in: "no parenthesis", err: true},
	} {
		got, err := parseStatCPU(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add("123 (berth) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0")
	f.Add(")")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseStatCPU(s); err == nil && v < 0 && !strings.Contains(s, "-") {
			t.Fatalf("negative CPU time %v from %q", v, s)
		}
	})
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tberth\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n"
	got, err := parseStatusKiB(bufio.NewScanner(strings.NewReader(status)), "VmRSS")
	if err != nil || got != 65432 {
		t.Errorf("VmRSS = %d, %v", got, err)
	}
	if _, err := parseStatusKiB(bufio.NewScanner(strings.NewReader(status)), "VmSwap"); err == nil {
		t.Error("a missing field was found")
	}
}

func TestLastStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	log := "time=1 level=INFO msg=simulation stats.instances=10 stats.running=1\n" +
		"time=3 level=INFO msg=simulation stats.instances=10 stats.running=7\n"
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := lastStats(path), "instances=10 running=7"; got != want {
		t.Errorf("lastStats = %q, want %q", got, want)
	}
}

func TestUpLine(t *testing.T) {
	m := upLine.FindStringSubmatch("berth is up: account 000000000000, region us-east-1, API http://127.0.0.1:4567\nPaste")
	if m == nil || m[1] != "http://127.0.0.1:4567" {
		t.Errorf("upLine matched %q", m)
	}
}
