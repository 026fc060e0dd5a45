package simulate

import (
	"log/slog"
	"math"
	"sync/atomic"
	"time"
)

// counters are the simulation's figures, updated without locks.
type counters struct {
	syncs, reports, retries, dropped, started, stopped, channelErrors atomic.Uint64
	running                                                           atomic.Int64
	startLatency                                                      histogram
}

// Stats are a simulation's figures at one moment.
type Stats struct {
	Instances int // registered
	Connected int // with the agent channel open
	// Running is how many tasks were reported RUNNING and not yet STOPPED.
	Running int64
	// Started and Stopped count RUNNING and STOPPED reports the server
	// accepted.
	Started, Stopped uint64
	// Syncs counts Syncs received and acknowledged on all channels.
	Syncs uint64
	// Reports counts accepted SubmitTaskStateChange calls; Retries failed
	// calls that were tried again (5xx, throttling, network); Dropped
	// reports the server refused for good.
	Reports, Retries, Dropped uint64
	// ChannelErrors counts channel connections that failed or ended.
	ChannelErrors uint64
	// StartP50 and StartP99 are quantiles of the time from a task's
	// arrival on the channel to the server's acceptance of its RUNNING
	// report (upper bucket bounds, within 19%).
	StartP50, StartP99 time.Duration
}

// LogValue renders the figures as one log group.
func (st Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("instances", st.Instances), slog.Int("connected", st.Connected),
		slog.Int64("running", st.Running), slog.Uint64("started", st.Started), slog.Uint64("stopped", st.Stopped),
		slog.Uint64("syncs", st.Syncs), slog.Uint64("reports", st.Reports), slog.Uint64("retries", st.Retries),
		slog.Uint64("dropped", st.Dropped), slog.Uint64("channel_errors", st.ChannelErrors),
		slog.Duration("start_p50", st.StartP50), slog.Duration("start_p99", st.StartP99),
	)
}

// Stats returns the current figures.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	insts := s.insts
	s.mu.Unlock()
	st := Stats{
		Instances: len(insts),
		Running:   s.stats.running.Load(), Started: s.stats.started.Load(), Stopped: s.stats.stopped.Load(),
		Syncs: s.stats.syncs.Load(), Reports: s.stats.reports.Load(), Retries: s.stats.retries.Load(),
		Dropped: s.stats.dropped.Load(), ChannelErrors: s.stats.channelErrors.Load(),
		StartP50: s.stats.startLatency.quantile(0.5), StartP99: s.stats.startLatency.quantile(0.99),
	}
	for _, in := range insts {
		if in.acs.Connected() {
			st.Connected++
		}
	}
	return st
}

// histogram counts durations in buckets growing by 2^(1/4) (about 19%)
// from 1 ms: bucket i holds (bound(i-1), bound(i)].
type histogram struct {
	buckets [histBuckets]atomic.Uint64
}

const histBuckets = 96 // up to 2^(95/4) ms, about 4.6 hours

func bound(i int) time.Duration {
	return time.Duration(math.Pow(2, float64(i)/4) * float64(time.Millisecond))
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	if ms := float64(d) / float64(time.Millisecond); ms > 1 {
		i = int(math.Ceil(4 * math.Log2(ms)))
	}
	h.buckets[min(max(i, 0), histBuckets-1)].Add(1)
}

// quantile is the upper bound of the bucket holding the q-quantile, or 0
// with no observations.
func (h *histogram) quantile(q float64) time.Duration {
	var counts [histBuckets]uint64
	var total uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		if seen += c; seen >= max(rank, 1) {
			return bound(i)
		}
	}
	return bound(histBuckets - 1)
}
