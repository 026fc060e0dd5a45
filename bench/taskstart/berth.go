package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/agent/node"
	"github.com/berth-dev/berth/internal/agent/runtime/containerd"
)

// startTimeout bounds one task's way to RUNNING, and a round's cleanup.
const startTimeout = 2 * time.Minute

// berthStarter drives a running berth through its ECS API.
type berthStarter struct {
	o       options
	client  *ecs.Client
	poll    *poller
	agentRT *containerd.Runtime // the agent's namespace, or nil
	retries atomic.Int64        // API calls the SDK repeated
	tokens  atomic.Int64        // RunTask clientToken sequence
}

func newBerthStarter(o options, agentRT *containerd.Runtime) (*berthStarter, error) {
	id, secret, err := account.ReadCredentials(filepath.Join(o.dataDir, "credentials"))
	if err != nil {
		return nil, err
	}
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	b := &berthStarter{o: o, agentRT: agentRT}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 16
	client := ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(o.endpoint),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		Retryer:      b.retryer(),
		HTTPClient:   &http.Client{Transport: node.BufferBodies(transport)},
	})
	b.client = client
	b.poll = startPoller(client, o.cluster, o.poll, o.verbose)
	return b, nil
}

func (b *berthStarter) close() { b.poll.stop() }

// retryer retries what the SDK deems retryable, at once: the SDK's back-off
// (up to seconds) would land in the measured time. RunTask carries a
// clientToken, so a retry never starts a second task.
func (b *berthStarter) retryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 3
		so.RateLimiter = ratelimit.None
		so.Backoff = retry.BackoffDelayerFunc(func(attempt int, err error) (time.Duration, error) {
			b.retries.Add(1)
			if b.o.verbose {
				fmt.Fprintf(os.Stderr, "%s retrying at once: %v\n", time.Now().Format("15:04:05.000"), err)
			}
			return 0, nil
		})
	})
}

// forNetwork registers the probe's task definition in network mode nm.
func (b *berthStarter) forNetwork(ctx context.Context, nm string) (*berthNetStarter, error) {
	family := "taskstart-" + nm
	_, err := b.client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(family),
		NetworkMode: types.NetworkMode(nm),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(b.o.image), Command: []string{"sleep"},
			Memory: aws.Int32(32), Essential: aws.Bool(true),
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("registering %s: %w", family, err)
	}
	return &berthNetStarter{b: b, network: nm, family: family}, nil
}

// berthNetStarter runs the task definition of one network mode.
type berthNetStarter struct {
	b       *berthStarter
	network string
	family  string

	mu         sync.Mutex
	arns       []string        // started by the last round
	serverSide []time.Duration // startedAt − createdAt of the measured tasks
}

func (s *berthNetStarter) name() string { return "berth RunTask → RUNNING, " + s.network }

// runTasks calls RunTask for count tasks and returns their ARNs.
func (s *berthNetStarter) runTasks(ctx context.Context, count int) ([]string, error) {
	out, err := s.b.client.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(s.b.o.cluster), TaskDefinition: aws.String(s.family),
		Count: aws.Int32(int32(count)), LaunchType: types.LaunchTypeEc2, StartedBy: aws.String("taskstart"),
		ClientToken: aws.String(fmt.Sprintf("taskstart-%d-%d", os.Getpid(), s.b.tokens.Add(1))),
	})
	if err != nil {
		return nil, err
	}
	var arns []string
	for _, t := range out.Tasks {
		arns = append(arns, aws.ToString(t.TaskArn))
	}
	s.mu.Lock()
	s.arns = append(s.arns, arns...)
	s.mu.Unlock()
	if len(out.Failures) > 0 {
		f := out.Failures[0]
		return arns, fmt.Errorf("RunTask failure: %s %s", aws.ToString(f.Reason), aws.ToString(f.Detail))
	}
	if len(arns) != count {
		return arns, fmt.Errorf("RunTask returned %d tasks, want %d", len(arns), count)
	}
	return arns, nil
}

func (s *berthNetStarter) start(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	t0 := time.Now()
	arns, err := s.runTasks(ctx, 1)
	if err != nil {
		return 0, err
	}
	if s.b.o.verbose {
		fmt.Fprintf(os.Stderr, "%s RunTask in %v\n", time.Now().Format("15:04:05.000"), time.Since(t0).Round(time.Millisecond))
	}
	res, err := s.b.poll.wait(ctx, arns[0])
	if err != nil {
		return 0, err
	}
	if created, started := res.task.CreatedAt, res.task.StartedAt; created != nil && started != nil {
		s.mu.Lock()
		s.serverSide = append(s.serverSide, started.Sub(*created))
		s.mu.Unlock()
	}
	return res.seenAt.Sub(t0), nil
}

func (s *berthNetStarter) round(ctx context.Context, k int, concurrent bool) ([]time.Duration, error) {
	return runRound(ctx, k, concurrent, s.start)
}

// cleanup stops the round's tasks and waits until berth reports them
// STOPPED.
func (s *berthNetStarter) cleanup(ctx context.Context) error {
	s.mu.Lock()
	arns := s.arns
	s.arns = nil
	s.mu.Unlock()
	if err := stopTasks(ctx, s.b.client, s.b.o.cluster, arns); err != nil {
		return err
	}
	return s.b.waitCleanedUp(ctx)
}

// waitCleanedUp waits until the agent has removed every container of its
// namespace (it runs with a short ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION),
// so that no cleanup, which also releases the task's network, runs during
// the next measured round.
func (b *berthStarter) waitCleanedUp(ctx context.Context) error {
	if b.agentRT == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		list, err := b.agentRT.List(ctx, nil)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the agent did not remove %d stopped containers (is ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION short?): %w", len(list), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func stopTasks(ctx context.Context, client *ecs.Client, cluster string, arns []string) error {
	if len(arns) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	errs := make([]error, len(arns))
	var wg sync.WaitGroup
	for i, arn := range arns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = client.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arn), Reason: aws.String("taskstart cleanup")})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for {
		out, err := client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
		if err != nil {
			return err
		}
		left := 0
		for _, t := range out.Tasks {
			if aws.ToString(t.LastStatus) != "STOPPED" {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks not STOPPED: %w", left, len(arns), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// taskResult is what the poller saw of a task that reached RUNNING.
type taskResult struct {
	seenAt time.Time // when the DescribeTasks answer showing RUNNING arrived
	task   types.Task
	err    error
}

// poller describes every watched task each interval with one DescribeTasks
// call (up to 100 tasks), so concurrent starts cost no more polling than one.
type poller struct {
	client   *ecs.Client
	cluster  string
	interval time.Duration
	verbose  bool

	mu      sync.Mutex
	pending map[string]chan taskResult // by task ARN
	wake    chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

func startPoller(client *ecs.Client, cluster string, interval time.Duration, verbose bool) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{client: client, cluster: cluster, interval: interval, verbose: verbose,
		pending: map[string]chan taskResult{}, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go p.loop(ctx)
	return p
}

// stop ends the loop and waits for it.
func (p *poller) stop() {
	p.cancel()
	<-p.done
}

// wait returns once the task is RUNNING; a task that stops first is an
// error.
func (p *poller) wait(ctx context.Context, arn string) (taskResult, error) {
	ch := make(chan taskResult, 1)
	p.mu.Lock()
	p.pending[arn] = ch
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	select {
	case r := <-ch:
		return r, r.err
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.pending, arn)
		p.mu.Unlock()
		return taskResult{}, fmt.Errorf("task %s not RUNNING: %w", arn, ctx.Err())
	}
}

func (p *poller) loop(ctx context.Context) {
	defer close(p.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var arns []string
		for arn := range p.pending {
			if len(arns) < 100 {
				arns = append(arns, arn)
			}
		}
		p.mu.Unlock()
		if len(arns) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		sent := time.Now()
		out, err := p.client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(p.cluster), Tasks: arns})
		seen := time.Now()
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "taskstart: DescribeTasks:", err)
		}
		if out != nil {
			if p.verbose {
				statuses := map[string]int{}
				for _, t := range out.Tasks {
					statuses[aws.ToString(t.LastStatus)]++
				}
				fmt.Fprintf(os.Stderr, "%s DescribeTasks %d tasks in %v: %v\n", seen.Format("15:04:05.000"), len(arns), seen.Sub(sent).Round(time.Millisecond), statuses)
			}
			p.deliver(seen, out.Tasks)
		}
		timer.Reset(max(0, p.interval-time.Since(sent)))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func (p *poller) deliver(seen time.Time, tasks []types.Task) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range tasks {
		arn := aws.ToString(t.TaskArn)
		ch, ok := p.pending[arn]
		if !ok {
			continue
		}
		switch aws.ToString(t.LastStatus) {
		case "RUNNING":
			ch <- taskResult{seenAt: seen, task: t}
		case "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED":
			ch <- taskResult{err: fmt.Errorf("task %s is %s before RUNNING: %s %s", arn, aws.ToString(t.LastStatus), t.StopCode, aws.ToString(t.StoppedReason))}
		default:
			continue
		}
		delete(p.pending, arn)
	}
}

// residentMemory starts o.rssTasks tasks, and reports the resident memory
// of the -rss processes before and while they run.
func residentMemory(ctx context.Context, o options, b *berthStarter) error {
	if len(o.rssPIDs) == 0 {
		return nil
	}
	read := func() ([]memory, error) {
		var out []memory
		for _, p := range o.rssPIDs {
			m, err := readMemory(p.pid)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	before, err := read()
	if err != nil {
		return err
	}
	var loaded []memory
	if b != nil && o.rssTasks > 0 {
		nm := "bridge"
		if len(o.networks) > 0 {
			nm = o.networks[0]
		}
		s, err := b.forNetwork(ctx, nm)
		if err != nil {
			return err
		}
		err = func() error {
			wctx, cancel := context.WithTimeout(ctx, startTimeout)
			defer cancel()
			for left := o.rssTasks; left > 0; left -= 10 {
				arns, err := s.runTasks(wctx, min(left, 10))
				if err != nil {
					return err
				}
				for _, arn := range arns {
					if _, err := b.poll.wait(wctx, arn); err != nil {
						return err
					}
				}
			}
			// Let the agent settle (health and stats loops, GC) before reading.
			select {
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
			loaded, err = read()
			return err
		}()
		if cerr := s.cleanup(ctx); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%d running tasks: %w", o.rssTasks, err)
		}
	}
	fmt.Println()
	fmt.Printf("| process | VmRSS before MiB | VmRSS with %d running tasks MiB | VmHWM (peak) MiB |\n", o.rssTasks)
	fmt.Println("|---|---|---|---|")
	for i, p := range o.rssPIDs {
		with, peak := "-", mib(before[i].hwm)
		if loaded != nil {
			with, peak = mib(loaded[i].rss), mib(loaded[i].hwm)
		}
		fmt.Printf("| %s | %s | %s | %s |\n", p.label, mib(before[i].rss), with, peak)
	}
	return nil
}
