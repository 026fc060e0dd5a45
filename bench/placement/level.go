package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/bench/benchkit"
)

// runLevel runs the whole benchmark once at concurrency c on a fresh server
// and simulation, and tears both down.
func runLevel(ctx context.Context, o options, c int) (r result, err error) {
	r.concurrency = c
	tmp, err := os.MkdirTemp("", "berth-placement-")
	if err != nil {
		return r, err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "placement: logs of concurrency %d in %s\n", c, tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	var profile []string
	if o.profileDir != "" {
		profile = []string{
			"-cpuprofile", filepath.Join(o.profileDir, fmt.Sprintf("cpu-c%d.pprof", c)),
			"-heapprofile", filepath.Join(o.profileDir, fmt.Sprintf("heap-c%d.pprof", c)),
			"-metrics", filepath.Join(o.profileDir, fmt.Sprintf("etcd-c%d.txt", c))}
	}
	fleet, err := benchkit.StartFleet(ctx, o.berth, tmp, profile,
		benchkit.Simulation{Instances: o.instances, CPU: o.instanceCPU, Memory: o.instanceMemory}, o.verbose)
	if err != nil {
		return r, err
	}
	// The simulation is thrown away with the server (2×N deregistration
	// calls spared); the server shuts down gracefully.
	defer fleet.Stop()
	srv, agent := fleet.Server, fleet.Agent

	client := newClient(fleet.Endpoint, fleet.Credentials, c+16)
	arns, err := waitInstances(ctx, client, o.instances, agent)
	if err != nil {
		return r, err
	}
	r.instancesUp = time.Since(agent.Started)
	benchkit.Logf(o.verbose, "%d instances connected in %v", len(arns), r.instancesUp.Round(time.Millisecond))

	family := "placement-bench"
	if _, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("registry.local/app:1"), Essential: aws.Bool(true),
			Cpu: int32(o.taskCPU), Memory: aws.Int32(int32(o.taskMemory)),
		}},
	}); err != nil {
		return r, fmt.Errorf("register task definition: %w", err)
	}
	if r.rssBefore, err = benchkit.ProcStatusKiB(srv.Pid(), "VmRSS"); err != nil {
		return r, err
	}
	cpu0, err := benchkit.CPUSeconds(srv.Pid())
	if err != nil {
		return r, err
	}
	if o.profileDir != "" {
		_ = srv.Signal(syscall.SIGUSR1) // start the CPU profile
	}

	// Memory samples and the RUNNING poll run alongside the calls.
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var peakRSS atomic.Int64
	wg.Go(func() {
		for sampleCtx.Err() == nil {
			if v, err := benchkit.ProcStatusKiB(srv.Pid(), "VmRSS"); err == nil && v > peakRSS.Load() {
				peakRSS.Store(v)
			}
			select {
			case <-sampleCtx.Done():
			case <-time.After(o.poll):
			}
		}
	})

	start := time.Now()
	calls := fire(ctx, client, o, family, c)
	r.commit = time.Since(start)
	r.calls = calls
	cpu1, _ := benchkit.CPUSeconds(srv.Pid())
	r.serverCPU = cpu1 - cpu0
	if o.profileDir != "" {
		_ = srv.Signal(syscall.SIGUSR2) // stop it, write the heap profile
	}
	benchkit.Logf(o.verbose, "calls returned after %v: %d tasks placed", r.commit.Round(time.Millisecond), calls.placed)

	_ = benchkit.DescribeInstances(ctx, client, arns, func(ci types.ContainerInstance) { r.runningAtCommit += int(ci.RunningTasksCount) })
	running, last, err := waitRunning(ctx, client, arns, calls.placed, o.poll)
	r.running, r.runningAt, r.runningDone = running, last.Sub(start), err == nil
	stopSampling()
	wg.Wait()
	r.peakRSS = peakRSS.Load()
	if hwm, err := benchkit.ProcStatusKiB(srv.Pid(), "VmHWM"); err == nil {
		r.hwm = hwm
	}
	if v, err := benchkit.ProcStatusKiB(agent.Pid(), "VmHWM"); err == nil {
		r.agentHWM = v
	}
	r.agentStats = benchkit.LastStats(agent.Log)
	return r, err
}

func newClient(endpoint string, creds aws.CredentialsProvider, conns int) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  creds,
		// Every error is counted, none hidden behind the SDK's back-off.
		RetryMaxAttempts: 1,
		HTTPClient: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute,
		}},
	})
}

// waitInstances waits until want instances are ACTIVE with their agent
// connected and returns their ARNs.
func waitInstances(ctx context.Context, c *ecs.Client, want int, agent *benchkit.Proc) ([]string, error) {
	for {
		arns, connected, err := benchkit.ConnectedInstances(ctx, c, want)
		if err == nil && connected >= want {
			return arns, nil
		}
		if agent.Exited() {
			b, _ := os.ReadFile(agent.Log)
			return nil, fmt.Errorf("the simulation exited (%v):\n%s", agent.Err(), benchkit.Tail(b, 40))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %d connected instances: %w (last error %v)", want, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitRunning polls the instances' runningTasksCount until it adds up to
// want; it returns the last sum and when it was read.
func waitRunning(ctx context.Context, c *ecs.Client, arns []string, want int, every time.Duration) (int, time.Time, error) {
	for {
		sum := 0
		err := benchkit.DescribeInstances(ctx, c, arns, func(ci types.ContainerInstance) { sum += int(ci.RunningTasksCount) })
		at := time.Now()
		if err == nil && sum >= want {
			return sum, at, nil
		}
		select {
		case <-ctx.Done():
			return sum, at, fmt.Errorf("waiting for %d RUNNING (last sum %d, last error %v): %w", want, sum, err, ctx.Err())
		case <-time.After(every):
		}
	}
}

// callStats is what the RunTask calls of one level did.
type callStats struct {
	returned    int            // calls that returned, with or without error
	placed      int            // tasks in the calls' answers
	failures    map[string]int // failure reasons, counted per call
	errors      map[string]int // errors by code, counted per attempt
	retried     int            // attempts repeated after an error
	failedCalls int            // calls whose last attempt ended in an error
	latencies   []time.Duration
}

// fire sends o.calls RunTask calls, c at a time. A call that ends in an
// error is repeated (at most twice, at once) with its clientToken, so a
// retry never places twice.
func fire(ctx context.Context, client *ecs.Client, o options, family string, c int) callStats {
	var mu sync.Mutex
	st := callStats{failures: map[string]int{}, errors: map[string]int{}}
	var next atomic.Int64
	strategy := strategyOf(o.strategy)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(o.calls) {
					return
				}
				in := &ecs.RunTaskInput{
					Cluster: aws.String(benchkit.Cluster), TaskDefinition: aws.String(family), Count: aws.Int32(int32(o.count)),
					ClientToken: aws.String(fmt.Sprintf("placement-%d", i)), PlacementStrategy: strategy,
				}
				t0 := time.Now()
				var out *ecs.RunTaskOutput
				var err error
				var errs []string
				for attempt := 0; attempt < 3; attempt++ {
					if out, err = client.RunTask(ctx, in); err == nil || ctx.Err() != nil {
						break
					}
					errs = append(errs, errorCode(err))
				}
				d := time.Since(t0)
				mu.Lock()
				st.returned++
				st.latencies = append(st.latencies, d)
				for _, e := range errs {
					st.errors[e]++
				}
				st.retried += len(errs) + boolInt(err == nil) - 1
				if err != nil {
					st.failedCalls++
				} else {
					st.placed += len(out.Tasks)
					seen := map[string]bool{}
					for _, f := range out.Failures {
						if r := aws.ToString(f.Reason); !seen[r] {
							seen[r] = true
							st.failures[r]++
						}
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return st
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func strategyOf(name string) []types.PlacementStrategy {
	switch name {
	case "binpack-memory":
		return []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}
	case "spread-instance":
		return []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("instanceId")}}
	}
	return nil
}

// errorCode names an API error by its code, anything else by its text.
func errorCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 120 {
			return ae.ErrorCode() + " (" + msg[i+2:] + ")"
		}
		return ae.ErrorCode()
	}
	return err.Error()
}
