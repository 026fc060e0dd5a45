package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
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

// serve runs the control plane as `berth server` does (same server.Start),
// with profiling driven by signals from the measuring parent: SIGUSR1
// starts a CPU profile, SIGUSR2 stops it and writes a heap profile. (A
// copy of bench/placement's, with numbered profiles.)
func serve(args []string) error {
	cfg := config.Defaults()
	f := flag.NewFlagSet("serve", flag.ContinueOnError)
	cpuPath := f.String("cpuprofile", "", "CPU profile file (between SIGUSR1 and SIGUSR2)")
	heapPath := f.String("heapprofile", "", "heap profile file (written on SIGUSR2)")
	metricsPath := f.String("metrics", "", "file to append the embedded etcd's transaction and put counters to on SIGUSR1 and SIGUSR2")
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Printf("berth is up: account %s, region %s, API %s\n%s\n", srv.Account().ID, srv.Account().Region, srv.Endpoint(),
		account.PasteLines(srv.Files(), srv.Endpoint()))

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	profDone := make(chan error, 1)
	go func() { // owned by serve: ends with ctx, serve waits for it
		profDone <- profile(ctx, sigs, *cpuPath, *heapPath, *metricsPath, log)
	}()
	err = srv.Run(ctx)
	stop()
	return errors.Join(err, <-profDone)
}

// profile starts and stops the CPU profile on the parent's signals until
// ctx ends.
func profile(ctx context.Context, sigs <-chan os.Signal, cpuPath, heapPath, metricsPath string, log *slog.Logger) error {
	var cpu *os.File
	n := 0 // profiles started: a %d in a path is replaced by it
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
			if err := appendCounters(metricsPath, s.String()); err != nil {
				return err
			}
			switch {
			case s == syscall.SIGUSR1 && cpu == nil && cpuPath != "":
				n++
				f, err := os.Create(numbered(cpuPath, n))
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					return err
				}
				cpu = f
				log.Warn("CPU profile started", "file", cpuPath)
			case s == syscall.SIGUSR2:
				if cpu != nil {
					pprof.StopCPUProfile()
					if err := cpu.Close(); err != nil {
						return err
					}
					cpu = nil
				}
				if heapPath != "" {
					if err := writeHeap(numbered(heapPath, n)); err != nil {
						return err
					}
				}
				log.Warn("CPU profile stopped, heap profile written", "file", heapPath)
			}
		}
	}
}

// numbered replaces a %d in path with n.
func numbered(path string, n int) string {
	return strings.Replace(path, "%d", strconv.Itoa(n), 1)
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
