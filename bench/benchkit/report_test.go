package benchkit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		vs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.vs...)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.vs, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.vs[i] {
				t.Errorf("Median sorted its argument %v in place", tc.vs)
			}
		}
	}
}

func TestMiB(t *testing.T) {
	for _, tc := range []struct {
		kib  int64
		want string
	}{
		{0, "0 MiB"},
		{511, "0 MiB"},
		{512, "1 MiB"},
		{123456, "121 MiB"},
	} {
		if got := MiB(tc.kib); got != tc.want {
			t.Errorf("MiB(%d) = %q, want %q", tc.kib, got, tc.want)
		}
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
	if got, want := LastStats(path), "instances=10 running=7"; got != want {
		t.Errorf("LastStats = %q, want %q", got, want)
	}
	if got := LastStats(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("LastStats of a missing file = %q", got)
	}
}
