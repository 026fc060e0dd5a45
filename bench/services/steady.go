package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/bench/benchkit"
	"github.com/berth-dev/berth/internal/controller/service"
)

// steadyResult is one run of the steady phase.
type steadyResult struct {
	done bool // the window was measured

	baseline windowCPU // no service yet

	createCalls time.Duration // first CreateService sent until the last returned
	stable      time.Duration // first CreateService sent until every service was seen stable
	createCPU   float64       // server CPU s from the first CreateService until stable
	polls       int           // DescribeServices calls while waiting
	pollErrors  int

	window               windowCPU     // every service stable, nothing happening
	windowFrom, windowTo time.Duration // window bounds since the server came up
	resyncs              int           // controller resyncs (every service reconciled) that fell in the window
	unstableAfter        int           // services not stable when checked after the window
	serverRSS            int64         // KiB after the window
	agentStats           string
}

func pct(cpu float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return 100 * cpu / d.Seconds()
}

// runSteady runs the steady phase once on a fresh server.
func runSteady(o options, run int) (r steadyResult, err error) {
	ctx := context.Background()
	e, err := startEnv(ctx, o, fmt.Sprintf("steady%d", run))
	if err != nil {
		return r, err
	}
	defer e.close()
	c := e.client

	if o.baseline > 0 {
		pause(ctx, o.settle)
		benchkit.Logf(o.verbose, "baseline window of %v, no service", o.baseline)
		if r.baseline, err = e.window(ctx, o.baseline); err != nil {
			return r, err
		}
	}

	td, err := registerTaskDefinition(ctx, c, o, "steady-bench", "registry.local/steady:1")
	if err != nil {
		return r, err
	}
	names := make([]string, o.services)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%04d", i)
	}
	cpu0, _, err := e.cpu()
	if err != nil {
		return r, err
	}
	e.profileStart()
	t0 := time.Now()
	if err := e.createServices(ctx, names, td); err != nil {
		return r, err
	}
	r.createCalls = time.Since(t0)
	benchkit.Logf(o.verbose, "%d CreateService calls returned after %v", len(names), r.createCalls.Round(time.Millisecond))
	calls0, errs0 := e.calls.Load(), e.callErrors.Load()
	if err := e.waitStable(ctx, names); err != nil {
		return r, err
	}
	r.stable = time.Since(t0)
	cpu1, _, _ := e.cpu()
	e.profileStop()
	r.createCPU = cpu1 - cpu0
	r.polls, r.pollErrors = int(e.calls.Load()-calls0), int(e.callErrors.Load()-errs0)
	benchkit.Logf(o.verbose, "%d services stable after %v (%d DescribeServices calls)", len(names), r.stable.Round(time.Millisecond), r.polls)

	pause(ctx, o.settle)
	from := time.Since(e.Up)
	benchkit.Logf(o.verbose, "window of %v, %d services stable, no calls", o.window, len(names))
	if r.window, err = e.window(ctx, o.window); err != nil {
		return r, err
	}
	r.windowFrom, r.windowTo = from, from+r.window.took
	r.resyncs = resyncsIn(r.windowFrom, r.windowTo, service.DefaultResync)
	r.done = true
	r.serverRSS, _ = benchkit.ProcStatusKiB(e.Server.Pid(), "VmRSS")
	r.agentStats = benchkit.LastStats(e.Agent.Log)

	unstable, err := e.unstable(ctx, names)
	if err != nil {
		return r, fmt.Errorf("checking the services after the window: %w", err)
	}
	r.unstableAfter = len(unstable)
	return r, nil
}

// window measures the CPU seconds the server and the simulation use over
// d, with a CPU profile of the server around it under -profile. It reads
// the server's CPU time once a second too (from /proc, no API call) and
// returns the busiest second.
func (e *env) window(ctx context.Context, d time.Duration) (w windowCPU, err error) {
	e.profileStart()
	defer e.profileStop()
	srv0, agent0, err := e.cpu()
	if err != nil {
		return w, err
	}
	t0 := time.Now()
	end := t0.Add(d)
	prev := srv0
	for next := t0; next.Before(end); {
		if next = next.Add(time.Second); next.After(end) {
			next = end
		}
		if !pause(ctx, time.Until(next)) {
			return w, ctx.Err()
		}
		v, err := benchkit.CPUSeconds(e.Server.Pid())
		if err != nil {
			return w, err
		}
		if v-prev > w.peak {
			w.peak, w.peakAt = v-prev, time.Since(e.Up)
		}
		prev = v
	}
	srv1, agent1, err := e.cpu()
	w.took = time.Since(t0)
	if err != nil {
		return w, err
	}
	w.server, w.agent = srv1-srv0, agent1-agent0
	return w, e.alive()
}

// windowCPU is what a CPU window measured.
type windowCPU struct {
	took          time.Duration
	server, agent float64       // CPU s
	peak          float64       // the server's CPU s in its busiest second
	peakAt        time.Duration // the end of that second, since the server came up
}

// resyncsIn counts the multiples of every (the controller's periodic
// resync, timed from its start, about when the server came up) in
// (from, to].
func resyncsIn(from, to, every time.Duration) int {
	if every <= 0 || to <= from {
		return 0
	}
	return int(to/every) - int(from/every)
}

// createServices creates the services, -create-c calls in flight, each
// with a clientToken so the SDK's retries are idempotent.
func (e *env) createServices(ctx context.Context, names []string, td string) error {
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range e.o.createC {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				_, err := e.client.CreateService(ctx, &ecs.CreateServiceInput{
					Cluster: aws.String(benchkit.Cluster), ServiceName: aws.String(names[i]), TaskDefinition: aws.String(td),
					DesiredCount: aws.Int32(int32(e.o.perService)), ClientToken: aws.String("create-" + names[i]),
				})
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("create service %s: %w", names[i], err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d CreateService calls failed, first: %w", len(errs), len(names), errs[0])
	}
	return nil
}

// waitStable polls, one round every -poll-many, the services not yet seen
// stable, 10 a call; when every one has been, a full round must find them
// all stable at once.
func (e *env) waitStable(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	pending := names
	next := time.Now()
	lastLog := time.Now()
	for {
		var err error
		if pending, err = e.unstable(ctx, pending); err == nil && len(pending) == 0 {
			if pending, err = e.unstable(ctx, names); err == nil && len(pending) == 0 {
				return nil
			}
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			benchkit.Logf(e.o.verbose, "%d of %d services not stable yet", len(pending), len(names))
		}
		if err := e.alive(); err != nil {
			return err
		}
		next = next.Add(e.o.pollMany)
		if !pause(ctx, time.Until(next)) {
			return deadline(fmt.Sprintf("after %v waiting for %d services to be stable", e.o.timeout, len(names)),
				fmt.Sprintf("%d not stable, e.g. %v", len(pending), pending[:min(len(pending), 5)]), err)
		}
	}
}

// unstable describes names, 10 a call, and returns those not stable (one
// COMPLETED deployment, running == desired, nothing pending).
func (e *env) unstable(ctx context.Context, names []string) ([]string, error) {
	var out []string
	for i := 0; i < len(names); i += 10 {
		batch := names[i:min(i+10, len(names))]
		e.calls.Add(1)
		resp, err := e.client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(benchkit.Cluster), Services: batch})
		if err != nil {
			e.callErrors.Add(1)
			return append(out, names[i:]...), err
		}
		seen := map[string]types.Service{}
		for _, s := range resp.Services {
			seen[aws.ToString(s.ServiceName)] = s
		}
		for _, n := range batch {
			if s, ok := seen[n]; !ok || !observe(s, "").stable {
				out = append(out, n)
			}
		}
	}
	return out, nil
}
