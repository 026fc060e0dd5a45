package containerd

import (
	"strings"
	"testing"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/agent/runtime"
)

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0: 1296       16    1    2    0     0          0         0      656        8    3    4    0     0       0          0
eth1:5 6 7 8 0 0 0 0 9 10 11 12 0 0 0 0
`

func TestParseNetDev(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]runtime.NetworkStats
		wantErr bool
	}{
		{"interfaces without loopback", netDev, map[string]runtime.NetworkStats{
			"eth0": {RxBytes: 1296, RxPackets: 16, RxErrors: 1, RxDropped: 2, TxBytes: 656, TxPackets: 8, TxErrors: 3, TxDropped: 4},
			"eth1": {RxBytes: 5, RxPackets: 6, RxErrors: 7, RxDropped: 8, TxBytes: 9, TxPackets: 10, TxErrors: 11, TxDropped: 12},
		}, false},
		{"headers only", strings.Join(strings.Split(netDev, "\n")[:2], "\n"), map[string]runtime.NetworkStats{}, false},
		{"short line", "eth0: 1 2 3\n", nil, true},
		{"not a number", "eth0: 1 2 3 4 5 6 7 8 x 10 11 12\n", nil, true},
		{"no name", ": 1 2 3 4 5 6 7 8 9 10 11 12\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNetDev(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	const stat = `cpu  100 1 50 1000 9 2 3 7 0 0
cpu0 50 1 25 500 4 1 1 3 0 0
cpu1 50 0 25 500 5 1 2 4 0 0
intr 12345
ctxt 999
`
	for _, tc := range []struct {
		name       string
		in         string
		wantNs     uint64
		wantOnline uint32
		wantErr    bool
	}{
		// user+nice+system+idle+iowait+irq+softirq = 1165 ticks; steal is not counted.
		{"two cpus", stat, 1165 * uint64(10*time.Millisecond), 2, false},
		{"no cpu line", "intr 1\n", 0, 0, true},
		{"short cpu line", "cpu 1 2 3\n", 0, 0, true},
		{"bad number", "cpu 1 2 3 4 5 6 x\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, online, err := parseProcStat(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if ns != tc.wantNs || online != tc.wantOnline {
				t.Errorf("= %d ns, %d online; want %d, %d", ns, online, tc.wantNs, tc.wantOnline)
			}
		})
	}
}

func TestFromCgroup(t *testing.T) {
	v1 := fromCgroup1(&v1stats.Metrics{
		CPU: &v1stats.CPUStat{
			Usage:      &v1stats.CPUUsage{Total: 3000, Kernel: 1000, User: 2000, PerCPU: []uint64{1000, 2000}},
			Throttling: &v1stats.Throttle{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 500},
		},
		Memory: &v1stats.MemoryStat{
			Cache: 7, TotalInactiveFile: 5,
			Usage: &v1stats.MemoryEntry{Usage: 100, Max: 150, Limit: 1 << 20, Failcnt: 3},
		},
		Pids: &v1stats.PidsStat{Current: 4, Limit: 50},
	})
	wantV1 := runtime.Stats{
		CPU: runtime.CPUStats{TotalNs: 3000, UserNs: 2000, KernelNs: 1000, PerCPUNs: []uint64{1000, 2000},
			Periods: 10, ThrottledPeriods: 2, ThrottledTimeNs: 500},
		Memory: runtime.MemoryStats{Usage: 100, MaxUsage: 150, Limit: 1 << 20, Failcnt: 3},
		Pids:   runtime.PidsStats{Current: 4, Limit: 50},
	}
	if v1.Memory.Stats["cache"] != 7 || v1.Memory.Stats["total_inactive_file"] != 5 {
		t.Errorf("v1 memory stats = %v, want cache 7 and total_inactive_file 5", v1.Memory.Stats)
	}
	v1.Memory.Stats = nil
	if diff := cmp.Diff(wantV1, v1); diff != "" {
		t.Errorf("cgroup v1 (-want +got):\n%s", diff)
	}

	// v2 reports microseconds.
	v2 := fromCgroup2(&v2stats.Metrics{
		CPU:          &v2stats.CPUStat{UsageUsec: 3, UserUsec: 2, SystemUsec: 1, NrPeriods: 10, NrThrottled: 2, ThrottledUsec: 5},
		Memory:       &v2stats.MemoryStat{Usage: 100, MaxUsage: 150, UsageLimit: 1 << 20, InactiveFile: 9, Anon: 4},
		MemoryEvents: &v2stats.MemoryEvents{Max: 6},
		Pids:         &v2stats.PidsStat{Current: 4, Limit: 50},
	})
	wantV2 := runtime.Stats{
		CPU: runtime.CPUStats{TotalNs: 3000, UserNs: 2000, KernelNs: 1000,
			Periods: 10, ThrottledPeriods: 2, ThrottledTimeNs: 5000},
		Memory: runtime.MemoryStats{Usage: 100, MaxUsage: 150, Limit: 1 << 20, Failcnt: 6},
		Pids:   runtime.PidsStats{Current: 4, Limit: 50},
	}
	if v2.Memory.Stats["inactive_file"] != 9 || v2.Memory.Stats["anon"] != 4 {
		t.Errorf("v2 memory stats = %v, want inactive_file 9 and anon 4", v2.Memory.Stats)
	}
	v2.Memory.Stats = nil
	if diff := cmp.Diff(wantV2, v2); diff != "" {
		t.Errorf("cgroup v2 (-want +got):\n%s", diff)
	}

	// Missing sections leave zeros rather than panicking.
	if got := fromCgroup1(&v1stats.Metrics{}); got.CPU.TotalNs != 0 || got.Memory.Stats != nil {
		t.Errorf("empty v1 metrics = %+v", got)
	}
	if got := fromCgroup2(&v2stats.Metrics{}); got.CPU.TotalNs != 0 || got.Memory.Stats != nil {
		t.Errorf("empty v2 metrics = %+v", got)
	}
}

func TestOwnNetNS(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec *specs.Spec
		want bool
	}{
		{"nil", nil, false},
		{"no linux section", &specs.Spec{}, false},
		{"host", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}}, false},
		{"new", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}}}, true},
		{"joined", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/run/netns/x"}}}}, true},
	} {
		if got := ownNetNS(tc.spec); got != tc.want {
			t.Errorf("%s: ownNetNS = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzParseNetDev(f *testing.F) {
	f.Add(netDev)
	f.Add("eth0: 1 2 3\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseNetDev(strings.NewReader(in))
		if err != nil {
			return
		}
		if _, ok := got["lo"]; ok {
			t.Errorf("loopback reported: %v", got)
		}
	})
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("cpu  100 1 50 1000 9 2 3 7 0 0\ncpu0 1 1 1 1 1 1 1\n")
	f.Add("cpu 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		ns, online, err := parseProcStat(strings.NewReader(in))
		if err != nil && (ns != 0 || online != 0) {
			t.Errorf("error %v with results %d, %d", err, ns, online)
		}
	})
}
