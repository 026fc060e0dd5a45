package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// summary is the distribution of one subject's latencies.
type summary struct {
	n                      int
	p50, p90, p99, maximum time.Duration
}

// percentile is the nearest-rank percentile of sorted (p in 0..1].
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func summarize(d []time.Duration) summary {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return summary{}
	}
	return summary{n: len(s), p50: percentile(s, .50), p90: percentile(s, .90), p99: percentile(s, .99), maximum: s[len(s)-1]}
}

type row struct {
	shape, subject string
	sum            summary
	aux            bool // a second view of another row's starts: no ratio
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// printLatency prints a Markdown table, then the p50 ratio of each subject
// to the raw start (rawName) of the same shape.
func printLatency(w io.Writer, rows []row, rawName string) {
	fmt.Fprintln(w, "| shape | start | n | p50 ms | p90 ms | p99 ms | max ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		if r.sum.n == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s |\n", r.shape, r.subject, r.sum.n, ms(r.sum.p50), ms(r.sum.p90), ms(r.sum.p99), ms(r.sum.maximum))
	}
	fmt.Fprintln(w)
	raw := map[string]summary{}
	for _, r := range rows {
		if r.subject == rawName {
			raw[r.shape] = r.sum
		}
	}
	for _, r := range rows {
		base, ok := raw[r.shape]
		if r.subject == rawName || r.aux || !ok || base.p50 == 0 || r.sum.n == 0 {
			continue
		}
		fmt.Fprintf(w, "p50 ratio, %s: %s / %s = %.2f\n", r.shape, r.subject, rawName, float64(r.sum.p50)/float64(base.p50))
	}
}

// pidLabel names a process whose memory is reported.
type pidLabel struct {
	label string
	pid   int
}

// parsePIDLabels parses "label=pid,label=pid".
func parsePIDLabels(s string) ([]pidLabel, error) {
	var out []pidLabel
	for _, f := range splitList(s) {
		label, p, ok := strings.Cut(f, "=")
		pid, err := strconv.Atoi(p)
		if !ok || label == "" || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-rss %q: want label=pid", f)
		}
		out = append(out, pidLabel{label: label, pid: pid})
	}
	return out, nil
}

// memory is what /proc/PID/status says about a process's memory, in KiB.
type memory struct {
	rss, hwm int64 // VmRSS, VmHWM
}

// parseStatus reads VmRSS and VmHWM from /proc/PID/status text.
func parseStatus(r io.Reader) (memory, error) {
	var m memory
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "VmRSS" && key != "VmHWM" {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("%s: unexpected value %q", key, val)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return m, fmt.Errorf("%s: unexpected value %q", key, val)
		}
		if key == "VmRSS" {
			m.rss = n
		} else {
			m.hwm = n
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if found != 2 {
		return m, fmt.Errorf("no VmRSS and VmHWM lines")
	}
	return m, nil
}

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	m, err := parseStatus(f)
	if err != nil {
		return m, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return m, nil
}

func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }
