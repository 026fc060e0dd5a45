package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/bench/benchkit"
)

const rolloutService = "rolling"

// rolloutResult is one run of the rollout phase.
type rolloutResult struct {
	done bool // the rollout completed: the figures stand

	create      time.Duration // CreateService until stable (seen by a poll)
	createSrv   time.Duration // the first deployment's createdAt → COMPLETED, server clock
	createCPU   float64       // server CPU s meanwhile
	allNew      time.Duration // UpdateService until the new deployment runs every task
	complete    time.Duration // UpdateService until stable on the new deployment (seen by a poll)
	completeSrv time.Duration // the new deployment's createdAt → COMPLETED, server clock
	serverCPU   float64       // server CPU s from UpdateService until stable
	agentCPU    float64       // simulation CPU s, same time
	minRunning  int           // lowest service runningCount sampled during the rollout
	maxTotal    int           // highest running+pending sampled during the rollout
	polls       int           // DescribeServices calls during the rollout
	pollErrors  int           // of which failed
	serverHWM   int64         // KiB
	agentStats  string
	failedTasks int32 // the new deployment's failedTasks at the end
}

// sample is what one DescribeServices poll of a service saw.
type sample struct {
	at       time.Duration
	running  int
	pending  int
	stable   bool // one COMPLETED deployment, the wanted one, running == desired, nothing pending
	newAll   bool // the wanted deployment runs the desired count
	failed   int32
	describe string // deployments, for the log
	// server is the stable deployment's createdAt → updatedAt: the server's
	// own clock from the deployment's creation to its last rollout state
	// change (COMPLETED), free of the poll interval.
	server time.Duration
}

// observe reads a service as the waits need it; want is the deployment
// that must be the only one ("" accepts any).
func observe(s types.Service, want string) sample {
	sm := sample{running: int(s.RunningCount), pending: int(s.PendingCount)}
	desired := s.DesiredCount
	sm.stable = aws.ToString(s.Status) == "ACTIVE" && len(s.Deployments) == 1 &&
		s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted &&
		(want == "" || aws.ToString(s.Deployments[0].Id) == want) &&
		s.RunningCount == desired && s.PendingCount == 0
	if sm.stable && s.Deployments[0].CreatedAt != nil && s.Deployments[0].UpdatedAt != nil {
		sm.server = s.Deployments[0].UpdatedAt.Sub(*s.Deployments[0].CreatedAt)
	}
	for _, d := range s.Deployments {
		id := aws.ToString(d.Id)
		if id == want {
			sm.newAll = d.RunningCount >= desired
			sm.failed = d.FailedTasks
		}
		sm.describe += fmt.Sprintf(" [%s %s %s run %d pend %d]", shortID(id), aws.ToString(d.Status), d.RolloutState, d.RunningCount, d.PendingCount)
	}
	return sm
}

func shortID(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// runRollout runs the rollout phase once on a fresh server.
func runRollout(o options, run int) (r rolloutResult, err error) {
	ctx := context.Background()
	e, err := startEnv(ctx, o, fmt.Sprintf("rollout%d", run))
	if err != nil {
		return r, err
	}
	defer e.close()
	c := e.client
	family := "rolling-bench"
	td1, err := registerTaskDefinition(ctx, c, o, family, "registry.local/app:1")
	if err != nil {
		return r, err
	}
	td2, err := registerTaskDefinition(ctx, c, o, family, "registry.local/app:2")
	if err != nil {
		return r, err
	}

	cpu0, _, err := e.cpu()
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	out, err := c.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(benchkit.Cluster), ServiceName: aws.String(rolloutService), TaskDefinition: aws.String(td1),
		DesiredCount: aws.Int32(int32(o.tasks)), ClientToken: aws.String("rolling-create"),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			MinimumHealthyPercent: aws.Int32(int32(o.minPercent)), MaximumPercent: aws.Int32(int32(o.maxPercent)),
		},
	})
	if err != nil {
		return r, fmt.Errorf("create service: %w", err)
	}
	first := aws.ToString(out.Service.Deployments[0].Id)
	created, err := e.waitService(ctx, first, t0, nil)
	if err != nil {
		return r, fmt.Errorf("initial deployment of %d tasks: %w", o.tasks, err)
	}
	r.create, r.createSrv = time.Since(t0), created.server
	cpu1, _, _ := e.cpu()
	r.createCPU = cpu1 - cpu0
	benchkit.Logf(o.verbose, "service of %d tasks stable after %v", o.tasks, r.create.Round(time.Millisecond))

	e.profileStart()
	srv0, agent0, err := e.cpu()
	if err != nil {
		return r, err
	}
	t0 = time.Now()
	up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster: aws.String(benchkit.Cluster), Service: aws.String(rolloutService), TaskDefinition: aws.String(td2),
	})
	if err != nil {
		return r, fmt.Errorf("update service: %w", err)
	}
	var primary string
	for _, d := range up.Service.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			primary = aws.ToString(d.Id)
		}
	}
	r.minRunning, r.maxTotal = o.tasks, 0
	calls0, errs0 := e.calls.Load(), e.callErrors.Load()
	last, err := e.waitService(ctx, primary, t0, func(sm sample) {
		r.minRunning = min(r.minRunning, sm.running)
		r.maxTotal = max(r.maxTotal, sm.running+sm.pending)
		if sm.newAll && r.allNew == 0 {
			r.allNew = sm.at
		}
	})
	r.complete = time.Since(t0)
	srv1, agent1, _ := e.cpu()
	e.profileStop()
	r.serverCPU, r.agentCPU = srv1-srv0, agent1-agent0
	r.polls, r.pollErrors = int(e.calls.Load()-calls0), int(e.callErrors.Load()-errs0)
	if err != nil {
		return r, fmt.Errorf("rollout to %s: %w", td2, err)
	}
	r.done = true
	r.failedTasks = last.failed
	r.completeSrv = last.server
	if r.allNew == 0 {
		r.allNew = r.complete
	}
	r.serverHWM, _ = benchkit.ProcStatusKiB(e.Server.Pid(), "VmHWM")
	r.agentStats = benchkit.LastStats(e.Agent.Log)
	benchkit.Logf(o.verbose, "rollout COMPLETED after %v", r.complete.Round(time.Millisecond))
	return r, nil
}

// waitService polls the rollout service every -poll until it is stable on
// deployment want, calling each (if any) with every successful sample.
func (e *env) waitService(ctx context.Context, want string, t0 time.Time, each func(sample)) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	var last sample
	var lastErr error
	next := time.Now()
	lastLog := time.Now()
	for {
		e.calls.Add(1)
		out, err := e.client.DescribeServices(ctx, &ecs.DescribeServicesInput{
			Cluster: aws.String(benchkit.Cluster), Services: []string{rolloutService},
		})
		lastErr = err
		if err != nil {
			e.callErrors.Add(1)
		}
		if err == nil && len(out.Services) == 1 {
			last = observe(out.Services[0], want)
			last.at = time.Since(t0)
			if each != nil {
				each(last)
			}
			if last.stable {
				return last, nil
			}
			if time.Since(lastLog) >= 5*time.Second {
				lastLog = time.Now()
				benchkit.Logf(e.o.verbose, "%v: running %d pending %d%s", last.at.Round(time.Second), last.running, last.pending, last.describe)
			}
		}
		if err := e.alive(); err != nil {
			return last, err
		}
		next = next.Add(e.o.poll)
		if !pause(ctx, time.Until(next)) {
			return last, deadline(fmt.Sprintf("after %v waiting for service %s to be stable on deployment %s", e.o.timeout, rolloutService, want),
				fmt.Sprintf("running %d pending %d, deployments%s", last.running, last.pending, last.describe), lastErr)
		}
	}
}
