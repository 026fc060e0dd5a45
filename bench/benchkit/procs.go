package benchkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a child process whose output goes to a log file.
type Proc struct {
	Name    string
	Log     string    // the file its stdout and stderr go to
	Started time.Time // when StartProc began to start it
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// StartProc starts argv with env added to this process's environment, its
// output going to logPath.
func StartProc(name, logPath string, env []string, argv ...string) (*Proc, error) {
	started := time.Now()
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, Started: started, cmd: cmd, done: make(chan struct{})}
	go func() { // owned by p: ends when the process does, Stop waits for it
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited tells whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended (nil while it runs).
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop sends sig, waits up to grace, then kills the process and waits. A
// nil p is stopped already.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// WaitLine returns the first submatch of re in the process's log, waiting
// until ctx ends or the process exits.
func (p *Proc) WaitLine(ctx context.Context, re *regexp.Regexp) (string, error) {
	for {
		if b, err := os.ReadFile(p.Log); err == nil {
			if m := re.FindSubmatch(b); m != nil {
				return string(m[1]), nil
			}
		}
		if p.Exited() {
			b, _ := os.ReadFile(p.Log)
			return "", fmt.Errorf("%s exited (%v) before printing /%s/:\n%s", p.Name, p.err, re, Tail(b, 40))
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(p.Log)
			return "", fmt.Errorf("%s: no /%s/ in time:\n%s", p.Name, re, Tail(b, 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Tail returns the last n lines of b.
func Tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ProcStatusKiB reads a "Field:   123 kB" line (VmRSS, VmHWM) of
// /proc/PID/status.
func ProcStatusKiB(pid int, field string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseStatusKiB(bufio.NewScanner(f), field)
}

func parseStatusKiB(sc *bufio.Scanner, field string) (int64, error) {
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		return strconv.ParseInt(v, 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no " + field + " in /proc status")
}

// CPUSeconds is the user+system CPU time the process has used so far.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15, in clock ticks of
// 1/100 s on Linux) from /proc/PID/stat; the command name, which may hold
// spaces, ends at the last ')'.
func parseStatCPU(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(u+st) / 100, nil
}
