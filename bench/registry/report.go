package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/bench/benchkit"
)

// mibps is the throughput of n bytes in d, in MiB/s.
func mibps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / (1 << 20) / d.Seconds()
}

// percentile is the nearest-rank p-th percentile of ds (0 when empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// summary is "median [min–max]" of vs with format f.
func summary(vs []float64, f string) string {
	if len(vs) == 0 {
		return "–"
	}
	out := fmt.Sprintf(f, benchkit.Median(vs))
	if len(vs) > 1 {
		out += fmt.Sprintf(" ["+f+"–"+f+"]", slices.Min(vs), slices.Max(vs))
	}
	return out
}

// column is one figure of a throughput round.
type column struct {
	name string
	f    string
	v    func(roundResult) float64
}

var columns = []column{
	{"push MiB/s", "%.0f", func(r roundResult) float64 { return mibps(r.bytes, r.push) }},
	{"pull MiB/s", "%.0f", func(r roundResult) float64 { return mibps(r.bytes, r.pull) }},
	{copyKernel.String() + " MiB/s", "%.0f", func(r roundResult) float64 { return mibps(r.bytes, r.copies[copyKernel]) }},
	{copyUser.String() + " MiB/s", "%.0f", func(r roundResult) float64 { return mibps(r.bytes, r.copies[copyUser]) }},
	{copyUserNoSync.String() + " MiB/s", "%.0f", func(r roundResult) float64 { return mibps(r.bytes, r.copies[copyUserNoSync]) }},
	{copyUserHash.String() + " MiB/s", "%.0f", func(r roundResult) float64 { return mibps(r.bytes, r.copies[copyUserHash]) }},
	{"copy_file_range copy: fsync ms", "%.0f", func(r roundResult) float64 { return ms(r.copySyncs[copyKernel]) }},
	{"read/write copy: fsync ms", "%.0f", func(r roundResult) float64 { return ms(r.copySyncs[copyUser]) }},
	{"push / copy_file_range copy", "%.2f×", func(r roundResult) float64 { return r.copies[copyKernel].Seconds() / r.push.Seconds() }},
	{"pull / copy_file_range copy", "%.2f×", func(r roundResult) float64 { return r.copies[copyKernel].Seconds() / r.pull.Seconds() }},
	{"push / read-write copy", "%.2f×", func(r roundResult) float64 { return r.copies[copyUser].Seconds() / r.push.Seconds() }},
	{"pull / read-write copy", "%.2f×", func(r roundResult) float64 { return r.copies[copyUser].Seconds() / r.pull.Seconds() }},
	{"push / hashing copy", "%.2f×", func(r roundResult) float64 { return r.copies[copyUserHash].Seconds() / r.push.Seconds() }},
	{"pull / hashing copy", "%.2f×", func(r roundResult) float64 { return r.copies[copyUserHash].Seconds() / r.pull.Seconds() }},
	{"push: server CPU s", "%.2f", func(r roundResult) float64 { return r.pushSrvCPU }},
	{"push: client CPU s", "%.2f", func(r roundResult) float64 { return r.pushCliCPU }},
	{"pull: server CPU s", "%.2f", func(r roundResult) float64 { return r.pullSrvCPU }},
	{"pull: client CPU s", "%.2f", func(r roundResult) float64 { return r.pullCliCPU }},
}

func (r runResult) print(w io.Writer, o options, run int) {
	fmt.Fprintf(w, "\n== run %d\n", run)
	fmt.Fprintf(w, "| figure |%s\n|---|%s\n", roundHeads(len(r.rounds)), strings.Repeat("---|", len(r.rounds)))
	for _, c := range columns {
		fmt.Fprintf(w, "| %s |", c.name)
		for _, rr := range r.rounds {
			fmt.Fprintf(w, " "+c.f+" |", c.v(rr))
		}
		fmt.Fprintln(w)
	}
	var all []time.Duration
	var p50s, p95s []float64
	for _, lat := range r.latency {
		all = append(all, lat...)
		p50s = append(p50s, ms(percentile(lat, 50)))
		p95s = append(p95s, ms(percentile(lat, 95)))
	}
	fmt.Fprintf(w, "latency, %d rounds of %d concurrent pulls of %.1f MiB: per round p50 %s ms, p95 %s ms; all %d pulls p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		len(r.latency), o.concurrency, float64(r.smallBytes)/(1<<20), summary(p50s, "%.0f"), summary(p95s, "%.0f"),
		len(all), ms(percentile(all, 50)), ms(percentile(all, 95)), ms(percentile(all, 99)), ms(percentile(all, 100)))
	if n := len(all); n > 0 {
		fmt.Fprintf(w, "latency rounds: %v in all, server %.2f CPU s (%.1f ms a pull, %.0f %% of a core)\n",
			r.latWall.Round(time.Millisecond), r.latSrvCPU, 1000*r.latSrvCPU/float64(n), 100*r.latSrvCPU/r.latWall.Seconds())
	}
	fmt.Fprintf(w, "stored under DATA/registry at the end: %.0f MiB\n", float64(r.stored)/(1<<20))
}

func roundHeads(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " round %d |", i)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printSummary prints, for each figure, the median over every round of
// every run with its range, and each run's median; then the latency
// figures by run.
func printSummary(w io.Writer, o options, rs []runResult) {
	fmt.Fprintf(w, "\n== summary: %d run(s) × %d round(s); median [range] over all rounds, then each run's median\n", len(rs), o.rounds)
	fmt.Fprintln(w, "| figure | all rounds | by run |\n|---|---|---|")
	for _, c := range columns {
		var all []float64
		var byRun []string
		for _, r := range rs {
			var vs []float64
			for _, rr := range r.rounds {
				vs = append(vs, c.v(rr))
			}
			all = append(all, vs...)
			byRun = append(byRun, fmt.Sprintf(c.f, benchkit.Median(vs)))
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", c.name, summary(all, c.f), strings.Join(byRun, " / "))
	}
	var p50, p95, p99 []float64
	var b50, b95 []string
	for _, r := range rs {
		var rp50, rp95 []float64
		var all []time.Duration
		for _, lat := range r.latency {
			rp50 = append(rp50, ms(percentile(lat, 50)))
			rp95 = append(rp95, ms(percentile(lat, 95)))
			all = append(all, lat...)
		}
		p50 = append(p50, benchkit.Median(rp50))
		p95 = append(p95, benchkit.Median(rp95))
		p99 = append(p99, ms(percentile(all, 99)))
		b50 = append(b50, fmt.Sprintf("%.0f", benchkit.Median(rp50)))
		b95 = append(b95, fmt.Sprintf("%.0f", benchkit.Median(rp95)))
	}
	fmt.Fprintf(w, "\n%d concurrent pulls (%d rounds a run): p50 %s ms (runs %s), p95 %s ms (runs %s), p99 of each run's pulls %s ms\n",
		o.concurrency, o.latencyRounds, summary(p50, "%.0f"), strings.Join(b50, " / "), summary(p95, "%.0f"), strings.Join(b95, " / "), summary(p99, "%.0f"))
}
