package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agentproto"
)

// connect records a registered instance and starts its channel, owned by
// the simulator.
func (s *Simulator) connect(in *instance, base acsclient.Config) error {
	c := base
	c.ContainerInstance = in.arn
	c.Handler = func(_ context.Context, tasks []agentproto.Task, full bool) error {
		s.stats.syncs.Add(1)
		in.apply(tasks, full, time.Now())
		s.enqueue(in)
		return nil
	}
	c.OnConnect = func(ctx context.Context) {
		for _, h := range in.runningHealth() {
			if in.acs.SendHealth(ctx, h) != nil {
				return
			}
		}
	}
	c.OnError = func(err error) {
		s.stats.channelErrors.Add(1)
		s.cfg.Logger.Debug("simulated instance: agent channel down", "index", in.index, "error", err)
	}
	if s.cfg.ChannelOptions != nil {
		s.cfg.ChannelOptions(&c)
	}
	client, err := acsclient.New(c)
	if err != nil {
		return err
	}
	in.acs = client
	s.mu.Lock()
	s.insts = append(s.insts, in)
	s.mu.Unlock()
	s.wg.Go(func() { _ = client.Run(s.ctx) })
	return nil
}

// enqueue puts an instance with reports to send on the work queue unless
// it is there or held by a worker already: so each instance's reports are
// sent one at a time, in order, and the queue (as long as the number of
// instances) never blocks.
func (s *Simulator) enqueue(in *instance) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.queued && len(in.dirty) > 0 {
		in.queued = true
		s.queue <- in
	}
}

// work sends reports until the simulation stops. Instances take turns: one
// report per turn, so a busy instance does not starve the others.
func (s *Simulator) work() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case in := <-s.queue:
			s.step(in)
		}
	}
}

// step sends an instance's next report.
func (s *Simulator) step(in *instance) {
	in.mu.Lock()
	t, st, ok := in.pick()
	if !ok {
		in.queued = false
		in.mu.Unlock()
		return
	}
	req := in.report(t, st, time.Now())
	in.mu.Unlock()

	err := retry(s.ctx, &s.stats, func() error {
		_, err := s.api.SubmitTaskStateChange(s.ctx, req)
		if err != nil && taskNotFound(err) && time.Since(t.assignedAt) < notFoundGrace {
			return errRetry{err} // the server's API may not see a task its channel just sent
		}
		return err
	})
	if s.ctx.Err() != nil {
		return // stopping: the instance stays queued, nothing runs it again
	}
	dropped := err != nil
	if dropped {
		// The server will never take it (an unknown or already stopped
		// task): the real agent drops such a report and goes on.
		s.stats.dropped.Add(1)
		s.cfg.Logger.Debug("simulated instance: report refused; dropped", "index", in.index, "task", t.arn, "status", st, "error", err)
	} else {
		s.stats.reports.Add(1)
	}
	now := time.Now()
	in.mu.Lock()
	more := in.done(t, st, now)
	var health agentproto.Health
	sendHealth := false
	switch {
	case dropped:
	case st == statusRunning:
		t.counted = true
		s.stats.started.Add(1)
		s.stats.running.Add(1)
		s.stats.startLatency.observe(now.Sub(t.assignedAt))
		health, sendHealth = t.health()
	case st == statusStopped:
		s.stats.stopped.Add(1)
	}
	if t.reported == statusStopped && t.counted {
		t.counted = false
		s.stats.running.Add(-1)
	}
	if more {
		s.queue <- in
	} else {
		in.queued = false
	}
	in.mu.Unlock()
	if sendHealth {
		// Not queued while the channel is down: OnConnect sends it again.
		_ = in.acs.SendHealth(s.ctx, health)
	}
}

// retry calls f until it succeeds, fails for good, or ctx ends, waiting
// with capped, jittered exponential back-off between attempts.
func retry(ctx context.Context, c *counters, f func() error) error {
	wait := minBackoff
	for {
		err := f()
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return err
		}
		c.retries.Add(1)
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}

// notFoundGrace is how long after a task's arrival a "task not found"
// answer is retried: the channel can deliver a task before the API's
// watch-fed cache has it.
const notFoundGrace = 5 * time.Second

// errRetry marks an error to retry whatever its kind.
type errRetry struct{ error }

func (e errRetry) Unwrap() error { return e.error }

// taskNotFound reports ECS's answer for an unknown task.
func taskNotFound(err error) bool {
	var inv *types.InvalidParameterException
	return errors.As(err, &inv) && strings.Contains(inv.ErrorMessage(), "task was not found")
}

// retryable reports whether a failed call may succeed later: the server
// was unreachable, failed (5xx) or throttled (429, or ECS's
// ThrottlingException, which berth sends as 400).
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.As(err, new(errRetry)) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded", "ServerException", "ServiceUnavailableException", "InternalFailure":
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429
	}
	return api == nil // no answer at all: the network
}

// each runs f for every item, at most workers at a time, and returns
// how many failed and the first error. With failFast the first failure
// cancels the calls not yet done.
func each[T any](ctx context.Context, workers int, items []T, failFast bool, f func(context.Context, T) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
		first  error
	)
	sem := make(chan struct{}, workers)
	started := 0
	for _, in := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, in); err != nil {
				mu.Lock()
				failed++
				if first == nil {
					first = err
				}
				mu.Unlock()
				if failFast {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	failed += len(items) - started
	if first == nil && failed > 0 {
		first = ctx.Err()
	}
	return failed, first
}

// Run logs the figures every StatsInterval until ctx ends, then stops the
// simulation and deregisters its instances (Close) within
// DeregisterTimeout.
func (s *Simulator) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if s.cfg.StatsInterval > 0 {
		t := time.NewTicker(s.cfg.StatsInterval)
		defer t.Stop()
		tick = t.C
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-s.ctx.Done():
			break loop
		case <-tick:
			s.cfg.Logger.Info("simulation", "stats", s.Stats())
		}
	}
	s.cfg.Logger.Info("simulation stopping: deregistering its instances", "stats", s.Stats())
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DeregisterTimeout)
	defer cancel()
	if err := s.Close(dctx); err != nil {
		return err
	}
	s.cfg.Logger.Info("simulation stopped: every instance deregistered", "instances", len(s.Instances()))
	return nil
}

// Close stops the channels and workers, waits for them, then deregisters
// every instance with force (their tasks turn STOPPED) within ctx. It is
// idempotent.
func (s *Simulator) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		arns := s.registered
		s.mu.Unlock()
		failed, err := each(ctx, s.cfg.Workers, arns, false, func(ctx context.Context, arn string) error {
			return retry(ctx, &s.stats, func() error {
				_, err := s.api.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{
					Cluster: aws.String(s.cluster), ContainerInstance: aws.String(arn), Force: aws.Bool(true),
				})
				var inv *types.InvalidParameterException // ECS's answer for a gone instance
				if errors.As(err, &inv) && strings.Contains(inv.ErrorMessage(), "not found") {
					return nil
				}
				return err
			})
		})
		if err != nil {
			s.closeErr = fmt.Errorf("simulate: %d of %d instances not deregistered (deregister them with 'aws ecs deregister-container-instance --force'): %w", failed, len(arns), err)
		}
	})
	return s.closeErr
}

// Instances are the ARNs of the registered instances, in order of
// registration.
func (s *Simulator) Instances() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.insts))
	for i, in := range s.insts {
		out[i] = in.arn
	}
	return out
}

// Cluster is the cluster the instances registered in.
func (s *Simulator) Cluster() string { return s.cluster }
