package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/berth-dev/berth/bench/benchkit"
)

func (r rolloutResult) print(w io.Writer, run int) {
	fmt.Fprintf(w, "\n== rollout, run %d\n", run)
	fmt.Fprintf(w, "create: stable after %v (deployment createdAt → COMPLETED %v), server %.1f CPU s\n",
		r.create.Round(time.Millisecond), r.createSrv.Round(time.Millisecond), r.createCPU)
	fmt.Fprintf(w, "update: every task on the new deployment after %v, COMPLETED (one deployment, all running) seen after %v (deployment createdAt → COMPLETED %v)\n",
		r.allNew.Round(time.Millisecond), r.complete.Round(time.Millisecond), r.completeSrv.Round(time.Millisecond))
	fmt.Fprintf(w, "CPU during the rollout: server %.2f s (%.0f %% of a core), simulation %.2f s\n",
		r.serverCPU, pct(r.serverCPU, r.complete), r.agentCPU)
	fmt.Fprintf(w, "sampled: runningCount ≥ %d, running+pending ≤ %d; new deployment failedTasks %d\n", r.minRunning, r.maxTotal, r.failedTasks)
	fmt.Fprintf(w, "polls: %d DescribeServices (1 service each), %d failed; server VmHWM %s\n", r.polls, r.pollErrors, benchkit.MiB(r.serverHWM))
	if r.agentStats != "" {
		fmt.Fprintf(w, "simulation: %s\n", r.agentStats)
	}
}

func (r steadyResult) print(w io.Writer, run int) {
	fmt.Fprintf(w, "\n== steady, run %d\n", run)
	if r.baseline.took > 0 {
		fmt.Fprintf(w, "baseline (no service): %s\n", r.baseline)
	}
	fmt.Fprintf(w, "create: calls returned after %v, every service stable after %v, server %.1f CPU s; %d DescribeServices calls, %d failed\n",
		r.createCalls.Round(time.Millisecond), r.stable.Round(time.Millisecond), r.createCPU, r.polls, r.pollErrors)
	fmt.Fprintf(w, "steady window (%v–%v after the server came up, %d controller resyncs in it): %s\n",
		r.windowFrom.Round(time.Second), r.windowTo.Round(time.Second), r.resyncs, r.window)
	fmt.Fprintf(w, "after the window: %d services not stable; server VmRSS %s\n", r.unstableAfter, benchkit.MiB(r.serverRSS))
	if r.agentStats != "" {
		fmt.Fprintf(w, "simulation: %s\n", r.agentStats)
	}
}

func (w windowCPU) String() string {
	return fmt.Sprintf("%v, server %.2f CPU s = %.2f %% of a core (busiest second %.0f %%, %v after the server came up), simulation %.2f s = %.2f %%",
		w.took.Round(time.Millisecond), w.server, pct(w.server, w.took), 100*w.peak, w.peakAt.Round(time.Second), w.agent, pct(w.agent, w.took))
}

func printRolloutTable(w io.Writer, o options, rs []rolloutResult) {
	fmt.Fprintf(w, "\nrollout of %d tasks (%d/%d) on %d instances, %d run(s), median [range]:\n", o.tasks, o.minPercent, o.maxPercent, o.instances, len(rs))
	row := rowOf(w, rs)
	fmt.Fprintln(w, "| figure | value |\n|---|---|")
	row("create → stable (poll)", func(r rolloutResult) float64 { return r.create.Seconds() }, " s")
	row("create: deployment createdAt → COMPLETED (server clock)", func(r rolloutResult) float64 { return r.createSrv.Seconds() }, " s")
	row("update → every task on the new deployment (poll)", func(r rolloutResult) float64 { return r.allNew.Seconds() }, " s")
	row("update → COMPLETED, one deployment (poll)", func(r rolloutResult) float64 { return r.complete.Seconds() }, " s")
	row("update: deployment createdAt → COMPLETED (server clock)", func(r rolloutResult) float64 { return r.completeSrv.Seconds() }, " s")
	row("server CPU during the rollout", func(r rolloutResult) float64 { return r.serverCPU }, " s")
	row("simulation CPU during the rollout", func(r rolloutResult) float64 { return r.agentCPU }, " s")
	row("lowest runningCount sampled", func(r rolloutResult) float64 { return float64(r.minRunning) }, "")
	row("highest running+pending sampled", func(r rolloutResult) float64 { return float64(r.maxTotal) }, "")
}

func printSteadyTable(w io.Writer, o options, rs []steadyResult) {
	fmt.Fprintf(w, "\n%d services × %d tasks on %d instances, %d run(s), median [range]:\n", o.services, o.perService, o.instances, len(rs))
	row := rowOf(w, rs)
	fmt.Fprintln(w, "| figure | value |\n|---|---|")
	if o.baseline > 0 {
		row("server CPU, no service (% of a core)", func(r steadyResult) float64 { return pct(r.baseline.server, r.baseline.took) }, " %")
		row("simulation CPU, no service (% of a core)", func(r steadyResult) float64 { return pct(r.baseline.agent, r.baseline.took) }, " %")
	}
	row("create → all stable", func(r steadyResult) float64 { return r.stable.Seconds() }, " s")
	row("server CPU, steady (% of a core)", func(r steadyResult) float64 { return pct(r.window.server, r.window.took) }, " %")
	row("server CPU, busiest second of the window (% of a core)", func(r steadyResult) float64 { return 100 * r.window.peak }, " %")
	row("simulation CPU, steady (% of a core)", func(r steadyResult) float64 { return pct(r.window.agent, r.window.took) }, " %")
}

// rowOf returns a printer of one table row: a figure of each of rs,
// summarised.
func rowOf[R any](w io.Writer, rs []R) func(name string, f func(R) float64, unit string) {
	return func(name string, f func(R) float64, unit string) {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		fmt.Fprintf(w, "| %s | %s |\n", name, summary(vs, unit))
	}
}

// summary is "median [min–max] unit" of vs (the median of an even count is
// the mean of the middle two).
func summary(vs []float64, unit string) string {
	if len(vs) == 0 {
		return "–"
	}
	out := fmt.Sprintf("%s%s", num(benchkit.Median(vs)), unit)
	if len(vs) > 1 {
		out += fmt.Sprintf(" [%s–%s]", num(slices.Min(vs)), num(slices.Max(vs)))
	}
	return out
}

func num(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}
