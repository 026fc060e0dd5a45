package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, .5, 0},
		{"one", []time.Duration{7}, .99, 7},
		{"p50 of 100 is the 50th", hundred, .50, 50 * time.Millisecond},
		{"p90 of 100 is the 90th", hundred, .90, 90 * time.Millisecond},
		{"p99 of 100 is the 99th", hundred, .99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 1, 100 * time.Millisecond},
		{"p50 of 3 is the middle", []time.Duration{1, 2, 3}, .5, 2},
		{"p50 of 4 is the lower middle", []time.Duration{1, 2, 3, 4}, .5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeSortsACopy(t *testing.T) {
	in := []time.Duration{3, 1, 2}
	s := summarize(in)
	if s.n != 3 || s.p50 != 2 || s.maximum != 3 {
		t.Errorf("summary = %+v", s)
	}
	if in[0] != 3 {
		t.Errorf("summarize sorted its input: %v", in)
	}
}

func TestPrintLatencyRatios(t *testing.T) {
	raw := "raw"
	rows := []row{
		{shape: "seq", subject: raw, sum: summary{n: 10, p50: 100 * time.Millisecond}},
		{shape: "seq", subject: "berth", sum: summary{n: 10, p50: 150 * time.Millisecond}},
		{shape: "conc", subject: "berth", sum: summary{n: 10, p50: 150 * time.Millisecond}},             // no raw row: no ratio
		{shape: "seq", subject: "empty", sum: summary{}},                                                // no samples: neither row nor ratio
		{shape: "seq", subject: "aux view", sum: summary{n: 10, p50: 90 * time.Millisecond}, aux: true}, // row, no ratio
	}
	var buf bytes.Buffer
	printLatency(&buf, rows, raw)
	out := buf.String()
	for _, want := range []string{"| seq | raw | 10 | 100.0 |", "| seq | berth | 10 | 150.0 |", "| seq | aux view | 10 | 90.0 |", "p50 ratio, seq: berth / raw = 1.50"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"conc: berth", "empty", "aux view / raw"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
}

func TestParsePIDLabels(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []pidLabel
		wantErr bool
	}{
		{"", nil, false},
		{"berth up=12", []pidLabel{{"berth up", 12}}, false},
		{"server=1, agent=2", []pidLabel{{"server", 1}, {"agent", 2}}, false},
		{"agent", nil, true},
		{"=3", nil, true},
		{"agent=x", nil, true},
		{"agent=0", nil, true},
	} {
		got, err := parsePIDLabels(tc.in)
		if (err != nil) != tc.wantErr || len(got) != len(tc.want) {
			t.Errorf("parsePIDLabels(%q) = %v, %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("parsePIDLabels(%q)[%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

const statusSample = `Name:	berth
State:	S (sleeping)
VmPeak:	 1848380 kB
VmHWM:	   40960 kB
VmRSS:	   36188 kB
Threads:	12
`

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    memory
		wantErr bool
	}{
		{"proc status", statusSample, memory{rss: 36188, hwm: 40960}, false},
		{"missing VmHWM", "VmRSS:\t 1 kB\n", memory{}, true},
		{"kernel thread (no Vm lines)", "Name:\tkthreadd\n", memory{}, true},
		{"other unit", "VmRSS:\t 1 MB\nVmHWM:\t 1 kB\n", memory{}, true},
		{"negative", "VmRSS:\t -1 kB\nVmHWM:\t 1 kB\n", memory{}, true},
		{"not a number", "VmRSS:\t x kB\nVmHWM:\t 1 kB\n", memory{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatus(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr || !tc.wantErr && got != tc.want {
				t.Errorf("parseStatus = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add(statusSample)
	f.Add("VmRSS: 1 kB\nVmHWM: 2 kB")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseStatus(strings.NewReader(s))
		if err == nil && (m.rss < 0 || m.hwm < 0) {
			t.Errorf("negative memory %+v from %q", m, s)
		}
	})
}
