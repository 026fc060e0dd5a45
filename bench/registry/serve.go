package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/server"
)

// serve runs the control plane as `berth server` does (same server.Start),
// with CPU profiles driven by signals from the measuring parent: SIGUSR1
// starts one, SIGUSR2 stops it. (After bench/services' serve.)
func serve(args []string) error {
	cfg := config.Defaults()
	f := flag.NewFlagSet("serve", flag.ContinueOnError)
	cpuPath := f.String("cpuprofile", "", "CPU profile files (between SIGUSR1 and SIGUSR2); a %d is replaced by the profile's number, from 1")
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
	// Subscribed before the server is announced, so that no signal of the
	// parent can arrive unhandled (SIGUSR1's default action kills).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Printf("berth is up: account %s, region %s, API %s\n%s\n", srv.Account().ID, srv.Account().Region, srv.Endpoint(),
		account.PasteLines(srv.Files(), srv.Endpoint()))

	profDone := make(chan error, 1)
	go func() { // owned by serve: ends with ctx, serve waits for it
		profDone <- profile(ctx, sigs, *cpuPath)
	}()
	err = srv.Run(ctx)
	stop()
	return errors.Join(err, <-profDone)
}

// profile starts and stops the CPU profile on the parent's signals until
// ctx ends. Each stop prints "profile N written" for the parent to wait on.
func profile(ctx context.Context, sigs <-chan os.Signal, cpuPath string) error {
	var cpu *os.File
	n := 0
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
			switch {
			case s == syscall.SIGUSR1 && cpu == nil && cpuPath != "":
				n++
				f, err := os.Create(strings.Replace(cpuPath, "%d", strconv.Itoa(n), 1))
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					return err
				}
				cpu = f
			case s == syscall.SIGUSR2 && cpu != nil:
				pprof.StopCPUProfile()
				if err := cpu.Close(); err != nil {
					return err
				}
				cpu = nil
				fmt.Printf("profile %d written\n", n)
			}
		}
	}
}
