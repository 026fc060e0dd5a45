package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLevels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{in: "16,32,64", want: []int{16, 32, 64}},
		{in: " 8 , ,4", want: []int{8, 4}},
		{in: "", err: true},
		{in: "0", err: true},
		{in: "x", err: true},
		{in: "2000", err: true},
	} {
		got, err := parseLevels(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("parseLevels(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tberth\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n"
	for _, tc := range []struct {
		field string
		want  int64
		err   bool
	}{
		{field: "VmHWM", want: 123456},
		{field: "VmRSS", want: 65432},
		{field: "VmSwap", err: true},
	} {
		got, err := parseStatusKiB(bufio.NewScanner(strings.NewReader(status)), tc.field)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d, error %v", tc.field, got, err, tc.want, tc.err)
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
		{in: "1 (x) S 1 2 3 4 5 6 7 8 9 10 u 2 0", err: true},
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

func TestPct(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{0, time.Millisecond},
	} {
		if got := pct(ds, tc.p); got != tc.want {
			t.Errorf("pct(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := pct(nil, 0.5); got != 0 {
		t.Errorf("pct of nothing = %v", got)
	}
}

func TestLastStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	log := "time=1 level=INFO msg=simulation stats.instances=10 stats.running=1\n" +
		"time=2 level=WARN msg=other\n" +
		"time=3 level=INFO msg=simulation stats.instances=10 stats.running=7\n"
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := lastStats(path), "instances=10 running=7"; got != want {
		t.Errorf("lastStats = %q, want %q", got, want)
	}
	if got := lastStats(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("lastStats of a missing file = %q", got)
	}
}

func TestUpLine(t *testing.T) {
	out := "berth is up: account 000000000000, region us-east-1, API http://127.0.0.1:4567\nPaste these lines"
	m := upLine.FindStringSubmatch(out)
	if m == nil || m[1] != "http://127.0.0.1:4567" {
		t.Errorf("upLine matched %q", m)
	}
}
