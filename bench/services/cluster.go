package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/bench/benchkit"
	"github.com/berth-dev/berth/internal/agent/node"
)

// env is one fresh server with its simulation and a client.
type env struct {
	o               options
	tmp             string
	*benchkit.Fleet // the server and the simulation
	client          *ecs.Client
	profiling       bool

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
	var profile []string
	if o.profileDir != "" {
		e.profiling = true
		profile = []string{
			"-cpuprofile", filepath.Join(o.profileDir, "cpu-"+name+"-%d.pprof"),
			"-heapprofile", filepath.Join(o.profileDir, "heap-"+name+"-%d.pprof"),
			"-metrics", filepath.Join(o.profileDir, "etcd-"+name+".txt")}
	}
	if e.Fleet, err = benchkit.StartFleet(ctx, o.berth, e.tmp, profile,
		benchkit.Simulation{Instances: o.instances, CPU: o.instanceCPU, Memory: o.instanceMemory}, o.verbose); err != nil {
		return e, err
	}
	e.client = newClient(e.Endpoint, e.Credentials)
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := e.waitInstances(wctx); err != nil {
		return e, err
	}
	benchkit.Logf(o.verbose, "%d instances connected", o.instances)
	return e, nil
}

// close tears the simulation and the server down and removes the
// temporary directory unless -keep.
func (e *env) close() {
	e.Fleet.Stop()
	if !e.o.keep {
		os.RemoveAll(e.tmp)
	}
}

// cpu is the CPU seconds the server and the simulation have used so far.
func (e *env) cpu() (srv, agent float64, err error) {
	if srv, err = benchkit.CPUSeconds(e.Server.Pid()); err != nil {
		return 0, 0, err
	}
	agent, err = benchkit.CPUSeconds(e.Agent.Pid())
	return srv, agent, err
}

// profileStart and profileStop bracket a CPU profile of the in-process
// server (-profile); without it they do nothing.
func (e *env) profileStart() {
	if e.profiling {
		_ = e.Server.Signal(syscall.SIGUSR1)
	}
}

func (e *env) profileStop() {
	if e.profiling {
		_ = e.Server.Signal(syscall.SIGUSR2)
	}
}

// alive fails when the server or the simulation has exited.
func (e *env) alive() error {
	for _, p := range []*benchkit.Proc{e.Server, e.Agent} {
		if p.Exited() {
			b, _ := os.ReadFile(p.Log)
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, p.Err(), benchkit.Tail(b, 40))
		}
	}
	return nil
}

// newClient is an ECS client with the SDK's standard retries (every call
// here is idempotent: polls, and creates with a clientToken) over a
// transport that hands each request a copy of its body
// (aws/aws-sdk-go-v2#2737, see node.BufferBodies).
func newClient(endpoint string, creds aws.CredentialsProvider) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  creds,
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
		arns, connected, err := benchkit.ConnectedInstances(ctx, e.client, want)
		if err == nil && connected >= want {
			return nil
		}
		if len(arns) >= want {
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
