package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/bench/benchkit"
)

// result is one concurrency level's figures.
type result struct {
	concurrency     int
	instancesUp     time.Duration // agent start until every instance is connected
	calls           callStats
	commit          time.Duration // first call sent until the last returned
	running         int           // sum of runningTasksCount at the end
	runningDone     bool          // whether running reached the tasks placed
	runningAtCommit int           // sum of runningTasksCount when the calls had returned
	runningAt       time.Duration // first call sent until the sum reached the tasks placed
	serverCPU       float64       // server CPU seconds during the calls
	rssBefore       int64         // KiB, before the calls
	peakRSS         int64         // KiB, highest sample during the run
	hwm             int64         // KiB, the server's VmHWM at the end
	agentHWM        int64         // KiB, the simulation's VmHWM
	agentStats      string        // the simulation's last stats line
}

func (r result) throughput() float64 {
	if r.commit <= 0 {
		return 0
	}
	return float64(r.calls.placed) / r.commit.Seconds()
}

func (r result) print(w io.Writer) {
	c := r.calls
	fmt.Fprintf(w, "\n== concurrency %d\n", r.concurrency)
	fmt.Fprintf(w, "instances connected after %v\n", r.instancesUp.Round(time.Millisecond))
	fmt.Fprintf(w, "commit: %d calls returned in %v, %d tasks placed, %.0f tasks/s; %d calls failed, %d attempts retried\n",
		c.returned, r.commit.Round(time.Millisecond), c.placed, r.throughput(), c.failedCalls, c.retried)
	fmt.Fprintf(w, "RunTask latency: p50 %v, p90 %v, p99 %v, max %v\n",
		pct(c.latencies, 0.50), pct(c.latencies, 0.90), pct(c.latencies, 0.99), pct(c.latencies, 1))
	if len(c.failures) > 0 {
		fmt.Fprintf(w, "calls with failures: %s\n", counts(c.failures))
	}
	if len(c.errors) > 0 {
		fmt.Fprintf(w, "errors (per attempt): %s\n", counts(c.errors))
	}
	fmt.Fprintf(w, "RUNNING when the calls had returned: %d\n", r.runningAtCommit)
	if r.runningDone {
		fmt.Fprintf(w, "all RUNNING (%d) after %v from the first call\n", r.running, r.runningAt.Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "NOT all RUNNING: %d of %d after %v from the first call (gave up)\n", r.running, r.calls.placed, r.runningAt.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "server: %.1f CPU s during the calls; RSS %s before, peak sample %s, VmHWM %s; simulation VmHWM %s\n",
		r.serverCPU, benchkit.MiB(r.rssBefore), benchkit.MiB(r.peakRSS), benchkit.MiB(r.hwm), benchkit.MiB(r.agentHWM))
	if r.agentStats != "" {
		fmt.Fprintf(w, "simulation: %s\n", r.agentStats)
	}
}

func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "\n| concurrency | commit | tasks placed | tasks/s | p50 | p99 | failed calls | retried | all RUNNING | server VmHWM |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		c := r.calls
		fmt.Fprintf(w, "| %d | %.1f s | %d | %.0f | %v | %v | %d | %d | %s | %s |\n", r.concurrency,
			r.commit.Seconds(), c.placed, r.throughput(), pct(c.latencies, 0.5), pct(c.latencies, 0.99),
			c.failedCalls, c.retried, runningCell(r), benchkit.MiB(r.hwm))
	}
}

// pct is the p-quantile of ds (nearest rank), rounded for display.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)].Round(100 * time.Microsecond)
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func runningCell(r result) string {
	if r.runningDone {
		return fmt.Sprintf("%.1f s", r.runningAt.Seconds())
	}
	return fmt.Sprintf("> %.0f s (%d of %d)", r.runningAt.Seconds(), r.running, r.calls.placed)
}
