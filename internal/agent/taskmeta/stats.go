package taskmeta

import (
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/agent/runtime"
)

// StatsResponse is what /stats returns for one container: Docker's
// StatsJSON (moby api/types/container.StatsResponse) plus ECS's
// network_rate_stats. A container without stats is written as {} (a nil
// StatsJSON), as ECS writes it in /task/stats.
type StatsResponse struct {
	*StatsJSON
	NetworkRateStats *NetworkRateStats `json:"network_rate_stats,omitempty"`
}

// NetworkRateStats are ECS's byte rates over the interval between two
// samples, all interfaces summed.
type NetworkRateStats struct {
	RxBytesPerSec float32 `json:"rx_bytes_per_sec"`
	TxBytesPerSec float32 `json:"tx_bytes_per_sec"`
}

// StatsJSON is Docker's stats shape, field for field.
type StatsJSON struct {
	Read         time.Time               `json:"read"`
	PreRead      time.Time               `json:"preread"`
	PidsStats    PidsStats               `json:"pids_stats,omitempty"`
	BlkioStats   BlkioStats              `json:"blkio_stats,omitempty"`
	NumProcs     uint32                  `json:"num_procs"`
	StorageStats StorageStats            `json:"storage_stats,omitempty"`
	CPUStats     CPUStats                `json:"cpu_stats,omitempty"`
	PreCPUStats  CPUStats                `json:"precpu_stats,omitempty"`
	MemoryStats  MemoryStats             `json:"memory_stats,omitempty"`
	Name         string                  `json:"name,omitempty"`
	ID           string                  `json:"id,omitempty"`
	Networks     map[string]NetworkStats `json:"networks,omitempty"`
}

// PidsStats is Docker's pids_stats.
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioStats is Docker's blkio_stats; berth does not collect block I/O,
// so every list is null (as Docker writes it on hosts without the data).
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioStatEntry `json:"io_service_bytes_recursive"`
	IoServicedRecursive     []BlkioStatEntry `json:"io_serviced_recursive"`
	IoQueuedRecursive       []BlkioStatEntry `json:"io_queue_recursive"`
	IoServiceTimeRecursive  []BlkioStatEntry `json:"io_service_time_recursive"`
	IoWaitTimeRecursive     []BlkioStatEntry `json:"io_wait_time_recursive"`
	IoMergedRecursive       []BlkioStatEntry `json:"io_merged_recursive"`
	IoTimeRecursive         []BlkioStatEntry `json:"io_time_recursive"`
	SectorsRecursive        []BlkioStatEntry `json:"sectors_recursive"`
}

// BlkioStatEntry is one block I/O counter.
type BlkioStatEntry struct {
	Major uint64 `json:"major"`
	Minor uint64 `json:"minor"`
	Op    string `json:"op"`
	Value uint64 `json:"value"`
}

// StorageStats is Docker's Windows-only storage_stats, always {} here.
type StorageStats struct {
	ReadCountNormalized  uint64 `json:"read_count_normalized,omitempty"`
	ReadSizeBytes        uint64 `json:"read_size_bytes,omitempty"`
	WriteCountNormalized uint64 `json:"write_count_normalized,omitempty"`
	WriteSizeBytes       uint64 `json:"write_size_bytes,omitempty"`
}

// CPUStats is Docker's cpu_stats / precpu_stats.
type CPUStats struct {
	CPUUsage       CPUUsage       `json:"cpu_usage"`
	SystemUsage    uint64         `json:"system_cpu_usage,omitempty"`
	OnlineCPUs     uint32         `json:"online_cpus,omitempty"`
	ThrottlingData ThrottlingData `json:"throttling_data,omitempty"`
}

// CPUUsage is cumulative CPU time in nanoseconds.
type CPUUsage struct {
	TotalUsage        uint64   `json:"total_usage"`
	PercpuUsage       []uint64 `json:"percpu_usage,omitempty"`
	UsageInKernelmode uint64   `json:"usage_in_kernelmode"`
	UsageInUsermode   uint64   `json:"usage_in_usermode"`
}

// ThrottlingData is CFS throttling.
type ThrottlingData struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_time"`
}

// MemoryStats is Docker's memory_stats (Linux fields).
type MemoryStats struct {
	Usage    uint64            `json:"usage,omitempty"`
	MaxUsage uint64            `json:"max_usage,omitempty"`
	Stats    map[string]uint64 `json:"stats,omitempty"`
	Failcnt  uint64            `json:"failcnt,omitempty"`
	Limit    uint64            `json:"limit,omitempty"`
}

// NetworkStats are one interface's counters.
type NetworkStats struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

// NewStatsResponse builds the Docker/ECS stats of a container from a
// sample and, when there is one, the sample before it (precpu_stats,
// preread and the network rates; without it they stay zero, as in
// Docker's one-shot stats).
func NewStatsResponse(name, id string, cur runtime.Stats, prev *runtime.Stats) StatsResponse {
	s := &StatsJSON{
		Read:      cur.Read,
		PidsStats: PidsStats{Current: cur.Pids.Current, Limit: cur.Pids.Limit},
		CPUStats:  cpuStats(cur.CPU),
		MemoryStats: MemoryStats{
			Usage: cur.Memory.Usage, MaxUsage: cur.Memory.MaxUsage, Failcnt: cur.Memory.Failcnt,
			Limit: cur.Memory.Limit, Stats: cur.Memory.Stats,
		},
		Name: name,
		ID:   id,
	}
	if len(cur.Networks) > 0 {
		s.Networks = make(map[string]NetworkStats, len(cur.Networks))
		for ifname, n := range cur.Networks {
			s.Networks[ifname] = NetworkStats{
				RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrors: n.RxErrors, RxDropped: n.RxDropped,
				TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDropped: n.TxDropped,
			}
		}
	}
	out := StatsResponse{StatsJSON: s}
	if prev == nil {
		return out
	}
	s.PreRead = prev.Read
	s.PreCPUStats = cpuStats(prev.CPU)
	if dt := cur.Read.Sub(prev.Read).Seconds(); dt > 0 && cur.Networks != nil {
		curRx, curTx := netTotals(cur.Networks)
		prevRx, prevTx := netTotals(prev.Networks)
		out.NetworkRateStats = &NetworkRateStats{
			RxBytesPerSec: rate(curRx, prevRx, dt),
			TxBytesPerSec: rate(curTx, prevTx, dt),
		}
	}
	return out
}

func cpuStats(c runtime.CPUStats) CPUStats {
	return CPUStats{
		CPUUsage: CPUUsage{
			TotalUsage: c.TotalNs, PercpuUsage: c.PerCPUNs,
			UsageInKernelmode: c.KernelNs, UsageInUsermode: c.UserNs,
		},
		SystemUsage: c.SystemNs,
		OnlineCPUs:  c.OnlineCPUs,
		ThrottlingData: ThrottlingData{
			Periods: c.Periods, ThrottledPeriods: c.ThrottledPeriods, ThrottledTime: c.ThrottledTimeNs,
		},
	}
}

func netTotals(ns map[string]runtime.NetworkStats) (rx, tx uint64) {
	for _, n := range ns {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	return rx, tx
}

// rate is 0 when a counter went backwards (an interface went away).
func rate(cur, prev uint64, seconds float64) float32 {
	if cur < prev {
		return 0
	}
	return float32(float64(cur-prev) / seconds)
}

// samples keeps the last sample of each container, for precpu_stats. It
// holds at most max entries, dropping the least recently used.
type samples struct {
	mu  sync.Mutex
	max int
	m   map[string]*sampleEntry
	seq uint64
}

type sampleEntry struct {
	stats runtime.Stats
	used  uint64
}

func newSamples(max int) *samples {
	return &samples{max: max, m: map[string]*sampleEntry{}}
}

// swap stores cur as id's sample and returns the one before, if any and
// older than cur.
func (c *samples) swap(id string, cur runtime.Stats) *runtime.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	e := c.m[id]
	if e == nil {
		if len(c.m) >= c.max {
			c.evictLocked()
		}
		c.m[id] = &sampleEntry{stats: cur, used: c.seq}
		return nil
	}
	prev := e.stats
	e.used = c.seq
	if !cur.Read.After(prev.Read) {
		// Two requests raced, or the clock stepped back: keep the older
		// sample as the base for the next one.
		return nil
	}
	e.stats = cur
	return &prev
}

func (c *samples) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

func (c *samples) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *samples) evictLocked() {
	var oldest string
	var used uint64
	for id, e := range c.m {
		if oldest == "" || e.used < used {
			oldest, used = id, e.used
		}
	}
	delete(c.m, oldest)
}
