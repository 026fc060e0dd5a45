package benchkit

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestNumbered(t *testing.T) {
	for _, tc := range []struct {
		path string
		n    int
		want string
	}{
		{"/p/cpu-steady1-%d.pprof", 2, "/p/cpu-steady1-2.pprof"},
		{"/p/cpu.pprof", 2, "/p/cpu.pprof"},
		{"cpu-%d-%d.pprof", 3, "cpu-3-%d.pprof"},
		{"/p%d/cpu-c16.pprof", 1, "/p%d/cpu-c16.pprof"}, // only the file name is numbered
		{"", 1, ""},
	} {
		if got := numbered(tc.path, tc.n); got != tc.want {
			t.Errorf("numbered(%q, %d) = %q, want %q", tc.path, tc.n, got, tc.want)
		}
	}
}

// TestProfiler drives the signal loop as the parents do: each signal is
// sent on an unbuffered channel and followed by SIGHUP, which the loop
// ignores, so the one before it has been handled when the send returns.
func TestProfiler(t *testing.T) {
	for _, tc := range []struct {
		name     string
		announce bool
		heap     bool
		sigs     []os.Signal
		files    []string // written, relative to the directory
		out      string   // announced
		logged   []string
	}{
		{
			name: "announced", announce: true,
			sigs:  []os.Signal{syscall.SIGUSR2, syscall.SIGUSR1, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGUSR1, syscall.SIGUSR2},
			files: []string{"cpu-1.pprof", "cpu-2.pprof"},
			out:   "profile 1 written\nprofile 2 written\n",
		},
		{
			name: "logged, with heap profiles", heap: true,
			sigs:   []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2},
			files:  []string{"cpu-1.pprof", "heap-1.pprof", "etcd.txt"},
			logged: []string{"CPU profile started", "CPU profile stopped, heap profile written"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, log bytes.Buffer
			p := profiler{cpuPath: filepath.Join(dir, "cpu-%d.pprof"), announce: tc.announce, out: &out,
				log: slog.New(slog.NewTextHandler(&log, nil))}
			if tc.heap {
				p.heapPath, p.metricsPath = filepath.Join(dir, "heap-%d.pprof"), filepath.Join(dir, "etcd.txt")
			}
			ctx, cancel := context.WithCancel(context.Background())
			sigs := make(chan os.Signal)
			done := make(chan error, 1)
			go func() { done <- p.run(ctx, sigs) }() // owned by the test, which waits for it
			for _, s := range tc.sigs {
				sigs <- s
				sigs <- syscall.SIGHUP
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			var got []string
			es, _ := os.ReadDir(dir)
			for _, e := range es {
				got = append(got, e.Name())
			}
			if strings.Join(got, " ") != strings.Join(slices.Sorted(slices.Values(tc.files)), " ") {
				t.Errorf("files %v, want %v", got, tc.files)
			}
			if out.String() != tc.out {
				t.Errorf("announced %q, want %q", out.String(), tc.out)
			}
			for _, l := range tc.logged {
				if !strings.Contains(log.String(), l) {
					t.Errorf("log %q lacks %q", log.String(), l)
				}
			}
			if tc.heap {
				b, _ := os.ReadFile(p.metricsPath)
				if !strings.Contains(string(b), "# "+syscall.SIGUSR1.String()+"\n") {
					t.Errorf("counters %q lack the SIGUSR1 heading", b)
				}
			}
			if len(tc.logged) == 0 && log.Len() > 0 {
				t.Errorf("logged %q", log.String())
			}
		})
	}
}
