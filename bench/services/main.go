// Command services measures the service scheduler end to end (issue 5,
// docs/benchmarks.md "Services"): a real `berth server` (embedded etcd) and
// `berth agent --simulated N`, driven through the ECS API with the
// aws-sdk-go-v2 client. Run it through bench/services.sh, which builds
// berth and this program.
//
// Two phases, each on a fresh server and simulation:
//
//   - rollout: a service of -tasks tasks is created and waited for (all
//     RUNNING, one COMPLETED deployment); then UpdateService moves it to a
//     new task definition revision, and the program measures the time
//     until the new deployment is COMPLETED, the only one left, with every
//     task running, and the CPU time the server and the simulation used
//     meanwhile (user+sys from /proc/PID/stat).
//   - steady: the server's (and the simulation's) CPU over -baseline with
//     the instances connected and no service, then -services services of
//     -per-service tasks each are created and waited for; after -settle,
//     the CPU over -window with nothing happening and no client calls; then
//     every service is checked to be still stable.
//
// The program polls DescribeServices only while it waits: the rollout
// service once per -poll, the steady phase's services not yet seen stable
// 10 a call in a round every -poll-many. No call is made during a CPU
// window of the steady phase. Every wait has a deadline (-timeout); a passed
// deadline is an error that names the wait.
//
// With -profile DIR the server is this program itself (`services serve`,
// the same server.Start as `berth server`), which writes a CPU profile of
// each measured window and a heap profile at its end into DIR.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/bench/benchkit"
)

type options struct {
	berth          string
	phases         []string
	runs           int
	instances      int
	instanceCPU    int
	instanceMemory int
	taskCPU        int
	taskMemory     int
	health         bool
	tasks          int
	minPercent     int
	maxPercent     int
	services       int
	perService     int
	createC        int
	baseline       time.Duration
	settle         time.Duration
	window         time.Duration
	poll           time.Duration
	pollMany       time.Duration
	timeout        time.Duration
	profileDir     string
	keep           bool
	verbose        bool
}

var allPhases = []string{"rollout", "steady"}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := benchkit.Serve(os.Args[2:], benchkit.ServeOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "services serve:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var phases string
	flag.StringVar(&o.berth, "berth", "", "berth binary (required)")
	flag.StringVar(&phases, "phases", "rollout,steady", "phases to run, comma-separated: rollout, steady")
	flag.IntVar(&o.runs, "runs", 1, "runs of each phase, each on a fresh server")
	flag.IntVar(&o.instances, "instances", 200, "simulated container instances")
	flag.IntVar(&o.instanceCPU, "instance-cpu", 2048, "CPU units of each simulated instance")
	flag.IntVar(&o.instanceMemory, "instance-memory", 4096, "memory (MiB) of each simulated instance")
	flag.IntVar(&o.taskCPU, "task-cpu", 64, "CPU units of the task definition")
	flag.IntVar(&o.taskMemory, "task-memory", 128, "memory (MiB, hard limit) of the task definition")
	flag.BoolVar(&o.health, "health", true, "give the container a health check (the simulation reports it HEALTHY at once); without one a task counts healthy 40 s after RUNNING")
	flag.IntVar(&o.tasks, "tasks", 1000, "rollout: desired count of the service")
	flag.IntVar(&o.minPercent, "min", 100, "rollout: minimumHealthyPercent")
	flag.IntVar(&o.maxPercent, "max", 200, "rollout: maximumPercent")
	flag.IntVar(&o.services, "services", 500, "steady: services")
	flag.IntVar(&o.perService, "per-service", 2, "steady: desired count of each service")
	flag.IntVar(&o.createC, "create-c", 8, "steady: CreateService calls in flight")
	flag.DurationVar(&o.baseline, "baseline", 30*time.Second, "steady: CPU window before any service exists (0: none)")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "steady: wait after every service is stable before the window")
	flag.DurationVar(&o.window, "window", time.Minute, "steady: CPU window with every service stable")
	flag.DurationVar(&o.poll, "poll", time.Second, "rollout: interval of the DescribeServices polls (one service a call)")
	flag.DurationVar(&o.pollMany, "poll-many", 2*time.Second, "steady: interval of the rounds of DescribeServices polls (10 services a call, the services not yet seen stable)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "deadline of each wait (instances, stable, rollout)")
	flag.StringVar(&o.profileDir, "profile", "", "run the server in-process in a child of this program and write CPU profiles of the measured windows and heap profiles here")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directories (logs)")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.Parse()
	var err error
	if o.phases, err = parsePhases(phases); err == nil {
		err = o.check()
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "services: FAILED:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.berth == "":
		return errors.New("-berth is required")
	case o.runs < 1 || o.instances < 1 || o.tasks < 1 || o.services < 1 || o.perService < 1 || o.createC < 1:
		return errors.New("-runs, -instances, -tasks, -services, -per-service and -create-c must be positive")
	case o.poll <= 0 || o.pollMany <= 0 || o.timeout <= 0 || o.window <= 0 || o.baseline < 0 || o.settle < 0:
		return errors.New("-poll, -timeout and -window must be positive, -baseline and -settle not negative")
	case o.minPercent < 0 || o.maxPercent < 100:
		return errors.New("-min must be ≥ 0 and -max ≥ 100")
	}
	return nil
}

func parsePhases(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(allPhases, f) {
			return nil, fmt.Errorf("-phases: unknown phase %q (want %s)", f, strings.Join(allPhases, ", "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-phases: no phase")
	}
	return out, nil
}

func run(o options) error {
	fmt.Printf("services: %d simulated instances (%d CPU / %d MiB), task %d CPU / %d MiB, health check %v, %d cores, %s\n",
		o.instances, o.instanceCPU, o.instanceMemory, o.taskCPU, o.taskMemory, o.health, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	var rollouts []rolloutResult
	var steadies []steadyResult
	var errs []error
	for i := 1; i <= o.runs; i++ {
		for _, ph := range o.phases {
			var err error
			switch ph {
			case "rollout":
				var r rolloutResult
				r, err = runRollout(o, i)
				if r.done {
					r.print(os.Stdout, i)
					rollouts = append(rollouts, r)
				}
			case "steady":
				var r steadyResult
				r, err = runSteady(o, i)
				if r.done {
					r.print(os.Stdout, i)
					steadies = append(steadies, r)
				}
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "services: run %d, %s: FAILED: %v\n", i, ph, err)
				errs = append(errs, fmt.Errorf("run %d, %s: %w", i, ph, err))
			}
		}
	}
	if len(rollouts) > 0 {
		printRolloutTable(os.Stdout, o, rollouts)
	}
	if len(steadies) > 0 {
		printSteadyTable(os.Stdout, o, steadies)
	}
	return errors.Join(errs...)
}
