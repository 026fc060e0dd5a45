package benchkit

import (
	"bufio"
	"context"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
		{in: "42 (berth server) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0", want: 3},
		{in: "42 (a) b) R 1 2 3 4 5 6 7 8 9 10 7 3 0", want: 0.1},
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

// FuzzParseStatCPU: /proc/PID/stat is read as the kernel wrote it; any
// text gives a non-negative time or an error, never a panic.
func FuzzParseStatCPU(f *testing.F) {
	f.Add("123 (berth) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0")
	f.Add("42 (berth server) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0")
	f.Add(")")
	f.Add("1 ()) R")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseStatCPU(s); err == nil && v < 0 && !strings.Contains(s, "-") {
			t.Fatalf("negative CPU time %v from %q", v, s)
		}
	})
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{in: "a\nb\nc\n", n: 2, want: "b\nc"},
		{in: "a\nb", n: 5, want: "a\nb"},
		{in: "", n: 3, want: ""},
	} {
		if got := Tail([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestProc runs real children: a line is found in the log, an exit is
// reported with the log's tail, and Stop ends a process that ignores
// nothing.
func TestProc(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p, err := StartProc("sleeper", dir+"/sleeper.log", []string{"BENCHKIT_TEST=42"}, "sh", "-c", `echo "up $BENCHKIT_TEST"; exec sleep 60`)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.WaitLine(ctx, regexp.MustCompile(`up (\d+)`)); err != nil || got != "42" {
		t.Errorf("WaitLine = %q, %v; want 42", got, err)
	}
	if p.Exited() || p.Err() != nil || p.Started.IsZero() {
		t.Errorf("running: exited %v, err %v, started %v", p.Exited(), p.Err(), p.Started)
	}
	p.Stop(syscall.SIGTERM, 10*time.Second)
	if !p.Exited() || p.Err() == nil {
		t.Errorf("stopped: exited %v, err %v", p.Exited(), p.Err())
	}

	q, err := StartProc("quitter", dir+"/quitter.log", nil, "sh", "-c", "echo last words; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.WaitLine(ctx, regexp.MustCompile(`never (printed)`))
	if err == nil || !strings.Contains(err.Error(), "quitter exited") || !strings.Contains(err.Error(), "last words") {
		t.Errorf("WaitLine on an exited process: %v", err)
	}
	var nilProc *Proc
	nilProc.Stop(syscall.SIGTERM, time.Second) // nothing to stop, no panic
}
