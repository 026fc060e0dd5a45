// Command placement measures placement end to end: RunTask calls through the
// API, committed into embedded etcd, onto simulated container instances that
// take the tasks over the agent channel and report them RUNNING. Run it
// through bench/placement.sh, which builds berth and this program.
//
// For each concurrency level it starts a fresh `berth server` (temporary
// data dir, embedded etcd, a free loopback port), creates a join token,
// starts `berth agent --simulated N` and waits until all N instances are
// ACTIVE and connected. Then it registers a task definition and fires
// -calls RunTask calls of -count tasks each, at most -c at a time, and
// measures the time until every call has returned (the commit time), the
// tasks placed, failures and errors, the calls' latencies, and the time
// until the instances' runningTasksCount adds up to the tasks placed. The
// server's resident memory is sampled throughout; its peak is the kernel's
// VmHWM. Everything is torn down after each level.
//
// With -profile DIR the server is this program itself (`placement serve`,
// the same server.Start as `berth server`), which writes a CPU profile of
// the RunTask phase and a heap profile at its end into DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/bench/benchkit"
)

type options struct {
	berth          string
	instances      int
	calls          int
	count          int
	levels         []int
	taskCPU        int
	taskMemory     int
	instanceCPU    int
	instanceMemory int
	strategy       string
	profileDir     string
	timeout        time.Duration
	poll           time.Duration
	keep           bool
	verbose        bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := benchkit.Serve(os.Args[2:], benchkit.ServeOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "placement serve:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var levels string
	flag.StringVar(&o.berth, "berth", "", "berth binary (required)")
	flag.IntVar(&o.instances, "instances", 1000, "simulated container instances")
	flag.IntVar(&o.calls, "calls", 3000, "RunTask calls")
	flag.IntVar(&o.count, "count", 10, "tasks per RunTask call")
	flag.StringVar(&levels, "c", "16,32,64", "concurrency levels (RunTask calls in flight), comma-separated; a fresh server for each")
	flag.IntVar(&o.taskCPU, "task-cpu", 32, "CPU units of the task definition")
	flag.IntVar(&o.taskMemory, "task-memory", 64, "memory (MiB, hard limit) of the task definition")
	flag.IntVar(&o.instanceCPU, "instance-cpu", 2048, "CPU units of each simulated instance")
	flag.IntVar(&o.instanceMemory, "instance-memory", 4096, "memory (MiB) of each simulated instance")
	flag.StringVar(&o.strategy, "strategy", "", "placement strategy of the calls: \"\" (RunTask's default, random), binpack-memory, spread-instance")
	flag.StringVar(&o.profileDir, "profile", "", "run the server in-process in a child of this program and write cpu-C.pprof and heap-C.pprof here")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a level after this long")
	flag.DurationVar(&o.poll, "poll", 250*time.Millisecond, "interval of the RUNNING poll and the memory samples")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directories (logs) of each level")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.Parse()
	var err error
	if o.levels, err = parseLevels(levels); err == nil && o.berth == "" {
		err = errors.New("-berth is required")
	}
	if err == nil && (o.instances < 1 || o.calls < 1 || o.count < 1 || o.count > 10) {
		err = errors.New("-instances and -calls must be positive, -count 1 to 10")
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "placement:", err)
		os.Exit(1)
	}
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("-c: %q is not a concurrency from 1 to 1024", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-c: no concurrency level")
	}
	return out, nil
}

func run(o options) error {
	fmt.Printf("placement: %d RunTask(count=%d) onto %d simulated instances (%d CPU / %d MiB each), task %d CPU / %d MiB, strategy %s, %d cores, %s\n",
		o.calls, o.count, o.instances, o.instanceCPU, o.instanceMemory, o.taskCPU, o.taskMemory,
		orDefault(o.strategy, "default (random)"), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	var results []result
	var errs []error
	for _, c := range o.levels {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		r, err := runLevel(ctx, o, c)
		cancel()
		if r.commit > 0 { // the calls ran: their figures stand even if the RUNNING wait gave up
			r.print(os.Stdout)
			results = append(results, r)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "placement: concurrency %d: %v\n", c, err)
			errs = append(errs, fmt.Errorf("concurrency %d: %w", c, err))
		}
	}
	if len(results) > 1 {
		printTable(os.Stdout, results)
	}
	return errors.Join(errs...)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
