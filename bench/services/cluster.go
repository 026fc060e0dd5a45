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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/agent/node"
)

const cluster = "bench"

var upLine = regexp.MustCompile(`(?m)^berth is up: .* API (http[^ ,\n]*)`)

// env is one fresh server with its simulation and a client.
type env struct {
	o         options
	tmp       string
	srv       *proc
	agent     *proc
	client    *ecs.Client
	started   time.Time // when the server printed that it is up (its controller starts then)
	profiling bool

	calls, callErrors atomic.Int64 // DescribeServices calls made while waiting, and failed
}

// startEnv starts `berth server` (or `services serve` with -profile) on a
// fresh data directory, a join token and the simulation, and waits until
// every instance is ACTIVE and connected. name tells the profiles apart.
func startEnv(ctx context.Context, o options, name string) (e *env, err error) {
	e = &env{o: o}
	if e.tmp, err = os.MkdirTemp("", "berth-services-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if o.keep {
		fmt.Fprintf(os.Stderr, "services: logs of %s in %s\n", name, e.tmp)
	}
	data := filepath.Join(e.tmp, "data")
	argv := []string{o.berth, "server"}
	if o.profileDir != "" {
		self, err := os.Executable()
		if err != nil {
			return e, err
		}
		e.profiling = true
		argv = []string{self, "serve",
			"-cpuprofile", filepath.Join(o.profileDir, "cpu-"+name+"-%d.pprof"),
			"-heapprofile", filepath.Join(o.profileDir, "heap-"+name+"-%d.pprof"),
			"-metrics", filepath.Join(o.profileDir, "etcd-"+name+".txt")}
	}
	argv = append(argv, "--data-dir", data, "--listen", "127.0.0.1:0", "--log-level", "warn")
	if e.srv, err = startProc("server", filepath.Join(e.tmp, "server.log"), nil, argv...); err != nil {
		return e, err
	}
	endpoint, err := e.srv.waitLine(ctx, upLine)
	if err != nil {
		return e, err
	}
	e.started = time.Now()
	logf(o, "server up at %s (pid %d)", endpoint, e.srv.pid())

	token, err := createToken(ctx, o.berth, data, endpoint)
	if err != nil {
		return e, err
	}
	cfgPath := filepath.Join(e.tmp, "ecs.config")
	if err := os.WriteFile(cfgPath, nil, 0o600); err != nil {
		return e, err
	}
	e.agent, err = startProc("agent", filepath.Join(e.tmp, "agent.log"), []string{"ECS_DATADIR=" + filepath.Join(e.tmp, "agent")},
		o.berth, "agent", "--server", endpoint, "--token", token, "--config", cfgPath, "--log-level", "info",
		"--simulated", fmt.Sprint(o.instances), "--simulated-cpu", fmt.Sprint(o.instanceCPU),
		"--simulated-memory", fmt.Sprint(o.instanceMemory))
	if err != nil {
		return e, err
	}
	id, secret, err := account.ReadCredentials(filepath.Join(data, "credentials"))
	if err != nil {
		return e, err
	}
	e.client = newClient(endpoint, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret})
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := e.waitInstances(wctx); err != nil {
		return e, err
	}
	logf(o, "%d instances connected", o.instances)
	return e, nil
}

// close tears the simulation and the server down and removes the
// temporary directory unless -keep.
func (e *env) close() {
	// The simulation is thrown away with the server: a kill spares the
	// deregistration calls. The server shuts down gracefully.
	e.agent.stop(syscall.SIGKILL, 5*time.Second)
	e.srv.stop(syscall.SIGTERM, 20*time.Second)
	if !e.o.keep {
		os.RemoveAll(e.tmp)
	}
}

// cpu is the CPU seconds the server and the simulation have used so far.
func (e *env) cpu() (srv, agent float64, err error) {
	if srv, err = cpuSeconds(e.srv.pid()); err != nil {
		return 0, 0, err
	}
	agent, err = cpuSeconds(e.agent.pid())
	return srv, agent, err
}

// profileStart and profileStop bracket a CPU profile of the in-process
// server (-profile); without it they do nothing.
func (e *env) profileStart() {
	if e.profiling {
		_ = e.srv.cmd.Process.Signal(syscall.SIGUSR1)
	}
}

func (e *env) profileStop() {
	if e.profiling {
		_ = e.srv.cmd.Process.Signal(syscall.SIGUSR2)
	}
}

// alive fails when the server or the simulation has exited.
func (e *env) alive() error {
	for _, p := range []*proc{e.srv, e.agent} {
		if p.exited() {
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, tail(b, 40))
		}
	}
	return nil
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

// newClient is an ECS client with the SDK's standard retries (every call
// here is idempotent: polls, and creates with a clientToken) over a
// transport that hands each request a copy of its body
// (aws/aws-sdk-go-v2#2737, see node.BufferBodies).
func newClient(endpoint string, creds aws.Credentials) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient: &http.Client{Transport: node.BufferBodies(&http.Transport{
			MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32, IdleConnTimeout: time.Minute,
		})},
	})
}

// waitInstances waits until every instance is ACTIVE with its agent
// connected.
func (e *env) waitInstances(ctx context.Context) error {
	want := e.o.instances
	var last string
	for {
		arns, err := listInstances(ctx, e.client)
		if err == nil && len(arns) >= want {
			connected := 0
			err = describeInstances(ctx, e.client, arns, func(ci types.ContainerInstance) {
				if ci.AgentConnected && aws.ToString(ci.Status) == "ACTIVE" {
					connected++
				}
			})
			if err == nil && connected >= want {
				return nil
			}
			last = fmt.Sprintf("%d of %d connected", connected, want)
		} else {
			last = fmt.Sprintf("%d of %d registered", len(arns), want)
		}
		if err := e.alive(); err != nil {
			return err
		}
		if !pause(ctx, 500*time.Millisecond) {
			return deadline("waiting for the instances to connect", last, err)
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

// pause waits d; false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// deadline is the error of a wait whose deadline passed.
func deadline(what, state string, lastErr error) error {
	msg := "DEADLINE PASSED " + what + ": " + state
	if lastErr != nil && !errors.Is(lastErr, context.DeadlineExceeded) { // not the wait's own deadline
		msg += fmt.Sprintf(" (last error: %v)", lastErr)
	}
	return fmt.Errorf("%s", msg)
}

// registerTaskDefinition registers a revision of family with image; with
// health, its container has a health check, which the simulation reports
// HEALTHY as soon as the task runs.
func registerTaskDefinition(ctx context.Context, c *ecs.Client, o options, family, image string) (string, error) {
	cd := types.ContainerDefinition{
		Name: aws.String("app"), Image: aws.String(image), Essential: aws.Bool(true),
		Cpu: int32(o.taskCPU), Memory: aws.Int32(int32(o.taskMemory)),
	}
	if o.health {
		cd.HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "true"}, Interval: aws.Int32(5), Retries: aws.Int32(3)}
	}
	out, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), ContainerDefinitions: []types.ContainerDefinition{cd},
	})
	if err != nil {
		return "", fmt.Errorf("register task definition %s: %w", family, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}
