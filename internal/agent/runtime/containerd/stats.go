package containerd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	containerd "github.com/containerd/containerd/v2/client"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Stats implements runtime.Runtime: the task's cgroup metrics (v1 or v2,
// converted to nanoseconds), the host's CPU time from /proc/stat and the
// interface counters of the container's network namespace, read through
// /proc/<pid>/net/dev (which shows that process's namespace, no setns).
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	c, err := r.load(ctx, id)
	if err != nil {
		return runtime.Stats{}, err
	}
	notRunning := errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q is not running", id))
	t, err := task(ctx, c)
	if err != nil {
		return runtime.Stats{}, err
	}
	if t == nil {
		return runtime.Stats{}, notRunning
	}
	if st, err := t.Status(ctx); cerrdefs.IsNotFound(err) {
		return runtime.Stats{}, notRunning
	} else if err != nil {
		return runtime.Stats{}, wrap(err, "container "+id)
	} else if st.Status != containerd.Running && st.Status != containerd.Paused {
		return runtime.Stats{}, notRunning
	}
	m, err := t.Metrics(ctx)
	if cerrdefs.IsNotFound(err) {
		return runtime.Stats{}, notRunning
	} else if err != nil {
		return runtime.Stats{}, wrap(err, fmt.Sprintf("reading the metrics of container %q", id))
	}
	if m == nil || m.Data == nil {
		return runtime.Stats{}, errdefs.New(errdefs.ErrInternal, fmt.Sprintf("container %q: containerd returned no metrics", id))
	}
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return runtime.Stats{}, &errdefs.Error{Kind: errdefs.ErrInternal, Message: fmt.Sprintf("decoding the metrics of container %q", id), Cause: err}
	}
	var s runtime.Stats
	switch v := data.(type) {
	case *v1stats.Metrics:
		s = fromCgroup1(v)
	case *v2stats.Metrics:
		s = fromCgroup2(v)
	default:
		return runtime.Stats{}, errdefs.New(errdefs.ErrInternal, fmt.Sprintf("container %q: unknown metrics type %T", id, data))
	}
	s.Read = time.Now().UTC()
	if ts := m.GetTimestamp(); ts.IsValid() {
		s.Read = ts.AsTime().UTC()
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		s.CPU.SystemNs, s.CPU.OnlineCPUs, _ = parseProcStat(bytes.NewReader(b))
	}
	if host, err := hostMemory(); err == nil && host > 0 && (s.Memory.Limit == 0 || s.Memory.Limit > host) {
		s.Memory.Limit = host
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return runtime.Stats{}, wrap(err, "loading the spec of container "+id)
	}
	if ownNetNS(spec) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", t.Pid()))
		if err != nil {
			// The process is gone: the container exited meanwhile.
			return runtime.Stats{}, notRunning
		}
		defer f.Close()
		if s.Networks, err = parseNetDev(f); err != nil {
			return runtime.Stats{}, &errdefs.Error{Kind: errdefs.ErrInternal, Message: fmt.Sprintf("reading the network counters of container %q", id), Cause: err}
		}
	}
	return s, nil
}

// ownNetNS reports whether the spec gives the container a network namespace
// (new or joined) rather than the host's.
func ownNetNS(spec *specs.Spec) bool {
	if spec == nil || spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return true
		}
	}
	return false
}

func fromCgroup1(m *v1stats.Metrics) runtime.Stats {
	var s runtime.Stats
	if u := m.GetCPU().GetUsage(); u != nil {
		s.CPU.TotalNs, s.CPU.UserNs, s.CPU.KernelNs = u.Total, u.User, u.Kernel
		if len(u.PerCPU) > 0 {
			s.CPU.PerCPUNs = append([]uint64(nil), u.PerCPU...)
		}
	}
	if th := m.GetCPU().GetThrottling(); th != nil {
		s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledTimeNs = th.Periods, th.ThrottledPeriods, th.ThrottledTime
	}
	if mem := m.GetMemory(); mem != nil {
		if u := mem.GetUsage(); u != nil {
			s.Memory.Usage, s.Memory.MaxUsage, s.Memory.Limit, s.Memory.Failcnt = u.Usage, u.Max, u.Limit, u.Failcnt
		}
		// Docker's key names for cgroup v1's memory.stat.
		s.Memory.Stats = map[string]uint64{
			"cache": mem.Cache, "rss": mem.RSS, "rss_huge": mem.RSSHuge, "mapped_file": mem.MappedFile,
			"dirty": mem.Dirty, "writeback": mem.Writeback, "pgpgin": mem.PgPgIn, "pgpgout": mem.PgPgOut,
			"pgfault": mem.PgFault, "pgmajfault": mem.PgMajFault, "inactive_anon": mem.InactiveAnon,
			"active_anon": mem.ActiveAnon, "inactive_file": mem.InactiveFile, "active_file": mem.ActiveFile,
			"unevictable": mem.Unevictable, "hierarchical_memory_limit": mem.HierarchicalMemoryLimit,
			"hierarchical_memsw_limit": mem.HierarchicalSwapLimit,
			// The same, counting descendant cgroups.
			"total_cache": mem.TotalCache, "total_rss": mem.TotalRSS, "total_rss_huge": mem.TotalRSSHuge,
			"total_mapped_file": mem.TotalMappedFile, "total_dirty": mem.TotalDirty,
			"total_writeback": mem.TotalWriteback, "total_pgpgin": mem.TotalPgPgIn,
			"total_pgpgout": mem.TotalPgPgOut, "total_pgfault": mem.TotalPgFault,
			"total_pgmajfault": mem.TotalPgMajFault, "total_inactive_anon": mem.TotalInactiveAnon,
			"total_active_anon": mem.TotalActiveAnon, "total_inactive_file": mem.TotalInactiveFile,
			"total_active_file": mem.TotalActiveFile, "total_unevictable": mem.TotalUnevictable,
		}
	}
	if p := m.GetPids(); p != nil {
		s.Pids = runtime.PidsStats{Current: p.Current, Limit: p.Limit}
	}
	return s
}

// fromCgroup2 converts cgroup v2 metrics; v2 counts CPU in microseconds.
func fromCgroup2(m *v2stats.Metrics) runtime.Stats {
	const us = uint64(time.Microsecond)
	var s runtime.Stats
	if c := m.GetCPU(); c != nil {
		s.CPU.TotalNs, s.CPU.UserNs, s.CPU.KernelNs = c.UsageUsec*us, c.UserUsec*us, c.SystemUsec*us
		s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledTimeNs = c.NrPeriods, c.NrThrottled, c.ThrottledUsec*us
	}
	if mem := m.GetMemory(); mem != nil {
		s.Memory.Usage, s.Memory.MaxUsage, s.Memory.Limit = mem.Usage, mem.MaxUsage, mem.UsageLimit
		// Docker's key names for cgroup v2's memory.stat.
		s.Memory.Stats = map[string]uint64{
			"anon": mem.Anon, "file": mem.File, "kernel_stack": mem.KernelStack, "slab": mem.Slab,
			"sock": mem.Sock, "shmem": mem.Shmem, "file_mapped": mem.FileMapped, "file_dirty": mem.FileDirty,
			"file_writeback": mem.FileWriteback, "anon_thp": mem.AnonThp, "inactive_anon": mem.InactiveAnon,
			"active_anon": mem.ActiveAnon, "inactive_file": mem.InactiveFile, "active_file": mem.ActiveFile,
			"unevictable": mem.Unevictable, "slab_reclaimable": mem.SlabReclaimable,
			"slab_unreclaimable": mem.SlabUnreclaimable, "pgfault": mem.Pgfault, "pgmajfault": mem.Pgmajfault,
			"workingset_refault": mem.WorkingsetRefault, "workingset_activate": mem.WorkingsetActivate,
			"workingset_nodereclaim": mem.WorkingsetNodereclaim, "pgrefill": mem.Pgrefill,
			"pgscan": mem.Pgscan, "pgsteal": mem.Pgsteal, "pgactivate": mem.Pgactivate,
			"pgdeactivate": mem.Pgdeactivate, "pglazyfree": mem.Pglazyfree, "pglazyfreed": mem.Pglazyfreed,
			"thp_fault_alloc": mem.ThpFaultAlloc, "thp_collapse_alloc": mem.ThpCollapseAlloc,
		}
	}
	if ev := m.GetMemoryEvents(); ev != nil {
		s.Memory.Failcnt = ev.Max // times memory.max was hit: v2's nearest to failcnt
	}
	if p := m.GetPids(); p != nil {
		s.Pids = runtime.PidsStats{Current: p.Current, Limit: p.Limit}
	}
	return s
}

// clockTicks is USER_HZ, the unit of /proc/stat; 100 on every Linux
// architecture Go supports (Docker assumes the same).
const clockTicks = 100

// parseProcStat returns the host's total CPU time in nanoseconds (the
// "cpu" line's user, nice, system, idle, iowait, irq and softirq, as Docker
// sums them) and the number of online CPUs (the "cpuN" lines).
func parseProcStat(r io.Reader) (systemNs uint64, online uint32, err error) {
	sc := bufio.NewScanner(r)
	found := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") {
			continue
		}
		if fields[0] != "cpu" {
			if _, err := strconv.ParseUint(fields[0][3:], 10, 32); err == nil {
				online++
			}
			continue
		}
		if len(fields) < 8 {
			return 0, 0, fmt.Errorf("/proc/stat: short cpu line %q", sc.Text())
		}
		var ticks uint64
		for _, f := range fields[1:8] {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: cpu line: %w", err)
			}
			ticks += v
		}
		systemNs = ticks * (uint64(time.Second) / clockTicks)
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("/proc/stat: no cpu line")
	}
	return systemNs, online, nil
}

// parseNetDev parses /proc/net/dev (two header lines, then
// "iface: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed
// multicast tx_bytes tx_packets tx_errs tx_drop …"), leaving out loopback.
func parseNetDev(r io.Reader) (map[string]runtime.NetworkStats, error) {
	sc := bufio.NewScanner(r)
	out := map[string]runtime.NetworkStats{}
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue // a header line
		}
		name = strings.TrimSpace(name)
		fields := strings.Fields(rest)
		if name == "" || len(fields) < 12 {
			return nil, fmt.Errorf("net/dev: malformed line %q", sc.Text())
		}
		var v [12]uint64
		for i := range v {
			n, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev: interface %q: %w", name, err)
			}
			v[i] = n
		}
		if name == "lo" {
			continue
		}
		out[name] = runtime.NetworkStats{
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// hostMemory is MemTotal from /proc/meminfo, in bytes.
func hostMemory() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no MemTotal")
}
