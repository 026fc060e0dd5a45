package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/server"
)

// ServeOptions is how a program's measuring parent follows the profiles.
type ServeOptions struct {
	// Announce prints "profile N written" on stdout once CPU profile N is
	// closed, for a parent that waits for it (bench/registry), instead of
	// logging each start and stop at warn level.
	Announce bool
}

// Serve runs the control plane as `berth server` does (same server.Start),
// with profiling driven by signals from the measuring parent: SIGUSR1
// starts a CPU profile, SIGUSR2 stops it and writes a heap profile. args
// are the `PROGRAM serve` subcommand's flags.
func Serve(args []string, o ServeOptions) error {
	cfg := config.Defaults()
	f := flag.NewFlagSet("serve", flag.ContinueOnError)
	p := profiler{announce: o.Announce, out: os.Stdout}
	f.StringVar(&p.cpuPath, "cpuprofile", "", "CPU profile files (between SIGUSR1 and SIGUSR2); a %d is replaced by the profile's number, from 1")
	f.StringVar(&p.heapPath, "heapprofile", "", "heap profile file (written on SIGUSR2); a %d is replaced by the number of the last CPU profile")
	f.StringVar(&p.metricsPath, "metrics", "", "file to append the embedded etcd's transaction and put counters to on SIGUSR1 and SIGUSR2")
	f.StringVar(&cfg.DataDir, "data-dir", "", "data directory")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "API listener")
	f.StringVar(&cfg.LogLevel, "log-level", "warn", "log level")
	if err := f.Parse(args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return err
	}
	p.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Subscribed before the server is announced, so that no signal of the
	// parent can arrive unhandled (SIGUSR1's default action kills).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	srv, err := server.Start(ctx, cfg, p.log)
	if err != nil {
		return err
	}
	fmt.Printf("berth is up: account %s, region %s, API %s\n%s\n", srv.Account().ID, srv.Account().Region, srv.Endpoint(),
		account.PasteLines(srv.Files(), srv.Endpoint()))

	profDone := make(chan error, 1)
	go func() { // owned by Serve: ends with ctx, Serve waits for it
		profDone <- p.run(ctx, sigs)
	}()
	err = srv.Run(ctx)
	stop()
	return errors.Join(err, <-profDone)
}

// profiler takes the profiles Serve's flags ask for.
type profiler struct {
	cpuPath, heapPath, metricsPath string
	announce                       bool
	out                            io.Writer // for the announcements
	log                            *slog.Logger
}

// run starts and stops the CPU profile on the parent's signals until ctx
// ends.
func (p profiler) run(ctx context.Context, sigs <-chan os.Signal) error {
	var cpu *os.File
	n := 0 // profiles started: a %d in a file name is replaced by it
	defer func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sigs:
			if err := appendCounters(p.metricsPath, s.String()); err != nil {
				return err
			}
			switch {
			case s == syscall.SIGUSR1 && cpu == nil && p.cpuPath != "":
				n++
				f, err := os.Create(numbered(p.cpuPath, n))
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					return err
				}
				cpu = f
				if !p.announce {
					p.log.Warn("CPU profile started", "file", p.cpuPath)
				}
			case s == syscall.SIGUSR2:
				stopped := cpu != nil
				if stopped {
					pprof.StopCPUProfile()
					if err := cpu.Close(); err != nil {
						return err
					}
					cpu = nil
				}
				if p.heapPath != "" {
					if err := writeHeap(numbered(p.heapPath, n)); err != nil {
						return err
					}
				}
				switch {
				case !p.announce:
					p.log.Warn("CPU profile stopped, heap profile written", "file", p.heapPath)
				case stopped:
					fmt.Fprintf(p.out, "profile %d written\n", n)
				}
			}
		}
	}
}

// numbered replaces a %d in path's file name with n.
func numbered(path string, n int) string {
	dir, file := filepath.Split(path)
	return dir + strings.Replace(file, "%d", strconv.Itoa(n), 1)
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // the heap profile shows live objects as of the last GC
	return errors.Join(pprof.WriteHeapProfile(f), f.Close())
}

// appendCounters appends the process's etcd MVCC and raft proposal
// counters and gauges to path under a heading. Every write transaction is a
// proposal whether its compare succeeds or not, and only a successful one
// moves the revision: proposals applied minus revisions is the number of
// transactions that lost a compare-and-swap.
func appendCounters(path, heading string) error {
	if path == "" {
		return nil
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "# %s\n", heading)
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "etcd_mvcc_") || strings.HasPrefix(n, "etcd_debugging_mvcc_") || strings.HasPrefix(n, "etcd_server_proposals") {
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue() // one of them is nil: 0
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				fmt.Fprintf(f, "%s{%s} %.0f\n", n, strings.Join(ls, ","), v)
			}
		}
	}
	return f.Close()
}
