package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/account"
)

const cluster = "bench"

var upLine = regexp.MustCompile(`(?m)^berth is up: .* API (http[^ ,\n]*)`)

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
	data := filepath.Join(tmp, "data")
	var srv, agent *proc
	defer func() {
		// The simulation is thrown away with the server: a kill spares the
		// 2×N deregistration calls. The server shuts down gracefully.
		agent.stop(syscall.SIGKILL, 5*time.Second)
		srv.stop(syscall.SIGTERM, 20*time.Second)
	}()

	argv := []string{o.berth, "server"}
	if o.profileDir != "" {
		self, err := os.Executable()
		if err != nil {
			return r, err
		}
		argv = []string{self, "serve",
			"-cpuprofile", filepath.Join(o.profileDir, fmt.Sprintf("cpu-c%d.pprof", c)),
			"-heapprofile", filepath.Join(o.profileDir, fmt.Sprintf("heap-c%d.pprof", c)),
			"-metrics", filepath.Join(o.profileDir, fmt.Sprintf("etcd-c%d.txt", c))}
	}
	argv = append(argv, "--data-dir", data, "--listen", "127.0.0.1:0", "--log-level", "warn")
	if srv, err = startProc("server", filepath.Join(tmp, "server.log"), nil, argv...); err != nil {
		return r, err
	}
	endpoint, err := srv.waitLine(ctx, upLine)
	if err != nil {
		return r, err
	}
	logf(o, "server up at %s (pid %d)", endpoint, srv.pid())

	token, err := createToken(ctx, o.berth, data, endpoint)
	if err != nil {
		return r, err
	}
	cfgPath := filepath.Join(tmp, "ecs.config")
	if err := os.WriteFile(cfgPath, nil, 0o600); err != nil {
		return r, err
	}
	t0 := time.Now()
	agent, err = startProc("agent", filepath.Join(tmp, "agent.log"), []string{"ECS_DATADIR=" + filepath.Join(tmp, "agent")},
		o.berth, "agent", "--server", endpoint, "--token", token, "--config", cfgPath, "--log-level", "info",
		"--simulated", fmt.Sprint(o.instances), "--simulated-cpu", fmt.Sprint(o.instanceCPU),
		"--simulated-memory", fmt.Sprint(o.instanceMemory))
	if err != nil {
		return r, err
	}

	id, secret, err := account.ReadCredentials(filepath.Join(data, "credentials"))
	if err != nil {
		return r, err
	}
	client := newClient(endpoint, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, c+16)
	arns, err := waitInstances(ctx, client, o.instances, agent)
	if err != nil {
		return r, err
	}
	r.instancesUp = time.Since(t0)
	logf(o, "%d instances connected in %v", len(arns), r.instancesUp.Round(time.Millisecond))

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
	if r.rssBefore, err = procStatusKiB(srv.pid(), "VmRSS"); err != nil {
		return r, err
	}
	cpu0, err := cpuSeconds(srv.pid())
	if err != nil {
		return r, err
	}
	if o.profileDir != "" {
		_ = srv.cmd.Process.Signal(syscall.SIGUSR1) // start the CPU profile
	}

	// Memory samples and the RUNNING poll run alongside the calls.
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var peakRSS atomic.Int64
	wg.Go(func() {
		for sampleCtx.Err() == nil {
			if v, err := procStatusKiB(srv.pid(), "VmRSS"); err == nil && v > peakRSS.Load() {
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
	cpu1, _ := cpuSeconds(srv.pid())
	r.serverCPU = cpu1 - cpu0
	if o.profileDir != "" {
		_ = srv.cmd.Process.Signal(syscall.SIGUSR2) // stop it, write the heap profile
	}
	logf(o, "calls returned after %v: %d tasks placed", r.commit.Round(time.Millisecond), calls.placed)

	_ = describeInstances(ctx, client, arns, func(ci types.ContainerInstance) { r.runningAtCommit += int(ci.RunningTasksCount) })
	running, last, err := waitRunning(ctx, client, arns, calls.placed, o.poll)
	r.running, r.runningAt, r.runningDone = running, last.Sub(start), err == nil
	stopSampling()
	wg.Wait()
	r.peakRSS = peakRSS.Load()
	if hwm, err := procStatusKiB(srv.pid(), "VmHWM"); err == nil {
		r.hwm = hwm
	}
	if v, err := procStatusKiB(agent.pid(), "VmHWM"); err == nil {
		r.agentHWM = v
	}
	r.agentStats = lastStats(agent.log)
	return r, err
}

func logf(o options, format string, args ...any) {
	if o.verbose {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

func createToken(ctx context.Context, berth, data, endpoint string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := execOutput(ctx, berth, "token", "create", "--cluster", cluster, "--data-dir", data, "--endpoint", endpoint)
	if err != nil {
		return "", fmt.Errorf("berth token create: %w", err)
	}
	return strings.TrimSpace(out), nil
}

func newClient(endpoint string, creds aws.Credentials, conns int) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		// Every error is counted, none hidden behind the SDK's back-off.
		RetryMaxAttempts: 1,
		HTTPClient: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute,
		}},
	})
}

// waitInstances waits until want instances are ACTIVE with their agent
// connected and returns their ARNs.
func waitInstances(ctx context.Context, c *ecs.Client, want int, agent *proc) ([]string, error) {
	for {
		arns, err := listInstances(ctx, c)
		if err == nil && len(arns) >= want {
			connected := 0
			err = describeInstances(ctx, c, arns, func(ci types.ContainerInstance) {
				if ci.AgentConnected && aws.ToString(ci.Status) == "ACTIVE" {
					connected++
				}
			})
			if err == nil && connected >= want {
				return arns, nil
			}
		}
		if agent.exited() {
			b, _ := os.ReadFile(agent.log)
			return nil, fmt.Errorf("the simulation exited (%v):\n%s", agent.err, tail(b, 40))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %d connected instances: %w (last error %v)", want, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func listInstances(ctx context.Context, c *ecs.Client) ([]string, error) {
	var arns []string
	p := ecs.NewListContainerInstancesPaginator(c, &ecs.ListContainerInstancesInput{
		Cluster: aws.String(cluster), MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		arns = append(arns, page.ContainerInstanceArns...)
	}
	return arns, nil
}

// describeInstances describes arns, 100 at a time.
func describeInstances(ctx context.Context, c *ecs.Client, arns []string, each func(types.ContainerInstance)) error {
	for i := 0; i < len(arns); i += 100 {
		out, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{
			Cluster: aws.String(cluster), ContainerInstances: arns[i:min(i+100, len(arns))],
		})
		if err != nil {
			return err
		}
		for _, ci := range out.ContainerInstances {
			each(ci)
		}
	}
	return nil
}

// waitRunning polls the instances' runningTasksCount until it adds up to
// want; it returns the last sum and when it was read.
func waitRunning(ctx context.Context, c *ecs.Client, arns []string, want int, every time.Duration) (int, time.Time, error) {
	for {
		sum := 0
		err := describeInstances(ctx, c, arns, func(ci types.ContainerInstance) { sum += int(ci.RunningTasksCount) })
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
					Cluster: aws.String(cluster), TaskDefinition: aws.String(family), Count: aws.Int32(int32(o.count)),
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
