// Command taskstart measures how long berth takes to start a task with a
// cached image, side by side with a raw containerd start of the same image
// in the same run, and the resident memory of the berth processes with
// running tasks. Run it through bench/taskstart.sh, which builds berth,
// starts `berth up`, and tears everything down afterwards.
//
// Raw start: the berth runtime package (containerd's Go client) creates and
// starts a container of the probe image (command "sleep", 32 MiB limit, its
// own network namespace with loopback only); the time runs from Create until
// Start has returned (runc has started the process). With -ctr the same is
// also measured with `ctr run -d`.
//
// berth start: the time from the RunTask call until DescribeTasks first
// shows lastStatus RUNNING. One poller describes every pending task each
// -poll interval, so the figure is an upper bound by up to one interval plus
// one DescribeTasks round trip. The server-side startedAt − createdAt of the
// same tasks is reported too.
//
// Shapes: -n starts one after another, and -n starts in rounds of -c at
// once. Work runs in rounds of -c containers or tasks, stopped and removed
// after each round (outside the measured time), so at most -c run at once;
// raw and berth rounds alternate so that drift of the machine affects both.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

type options struct {
	containerdAddress string
	rawNamespace      string
	agentNamespace    string
	probe             string
	image             string
	endpoint          string
	dataDir           string
	cluster           string
	n, c              int
	networks          []string
	poll              time.Duration
	rssTasks          int
	rssPIDs           []pidLabel
	phases            map[string]bool
	withCtr           bool
	cleanupOnly       bool
	verbose           bool
}

func main() {
	var o options
	var networks, rss, phases string
	flag.StringVar(&o.containerdAddress, "containerd-address", "/run/containerd/containerd.sock", "containerd's socket")
	flag.StringVar(&o.rawNamespace, "raw-namespace", "berth-bench", "containerd namespace of the raw starts (emptied afterwards)")
	flag.StringVar(&o.agentNamespace, "agent-namespace", "", "containerd namespace of berth's agent, to import the image into (\"\" = none)")
	flag.StringVar(&o.probe, "probe", "", "path of the compiled probe (go build ./internal/testimage/probe); required unless -cleanup")
	flag.StringVar(&o.image, "image", "berth.bench/taskstart/probe:1", "reference of the probe image")
	flag.StringVar(&o.endpoint, "endpoint", "", "berth API URL (\"\" = no berth measurements)")
	flag.StringVar(&o.dataDir, "data-dir", "", "berth's data dir (DATA/credentials)")
	flag.StringVar(&o.cluster, "cluster", "default", "cluster of the agent")
	flag.IntVar(&o.n, "n", 100, "starts per shape")
	flag.IntVar(&o.c, "c", 10, "concurrency of the concurrent shape, and the round size")
	flag.StringVar(&networks, "network", "bridge,host", "berth network modes to measure, comma-separated (bridge, host, none)")
	flag.DurationVar(&o.poll, "poll", 10*time.Millisecond, "DescribeTasks polling interval")
	flag.IntVar(&o.rssTasks, "rss-tasks", 20, "running tasks while the resident memory is read")
	flag.StringVar(&rss, "rss", "", "processes whose VmRSS to report: label=pid,label=pid")
	flag.StringVar(&phases, "phases", "latency,rss", "what to run: latency, rss")
	flag.BoolVar(&o.withCtr, "ctr", false, "also measure `ctr run -d` as a raw start")
	flag.BoolVar(&o.verbose, "v", false, "log every RunTask and DescribeTasks call to stderr")
	flag.BoolVar(&o.cleanupOnly, "cleanup", false, "only remove the containers and the image from -raw-namespace and -agent-namespace")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	flag.Parse()

	o.networks = splitList(networks)
	o.phases = map[string]bool{}
	for _, p := range splitList(phases) {
		o.phases[p] = true
	}
	var err error
	if o.rssPIDs, err = parsePIDLabels(rss); err != nil {
		fail(err)
	}
	if o.n < 1 || o.c < 1 || o.c > 10 {
		fail(fmt.Errorf("-n must be ≥ 1 and -c 1..10 (RunTask starts at most 10 at once); got -n %d -c %d", o.n, o.c))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "taskstart:", err)
	os.Exit(1)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, o options) error {
	raw, err := newRawStarter(ctx, o)
	if err != nil {
		return err
	}
	defer raw.close()
	if o.cleanupOnly {
		return raw.cleanupAll(ctx)
	}
	if o.probe == "" {
		return fmt.Errorf("-probe is required")
	}
	if err := raw.importImage(ctx); err != nil {
		return err
	}
	var b *berthStarter
	if o.endpoint != "" {
		if b, err = newBerthStarter(o, raw.agent); err != nil {
			return err
		}
		defer b.close()
	}

	if o.phases["latency"] {
		if err := latency(ctx, o, raw, b); err != nil {
			return err
		}
	}
	if o.phases["rss"] {
		if err := residentMemory(ctx, o, b); err != nil {
			return err
		}
	}
	return nil
}

// starter starts one round of containers or tasks and cleans it up.
type starter interface {
	name() string
	// round starts k at once (concurrent) or one after another, and
	// returns each start's latency.
	round(ctx context.Context, k int, concurrent bool) ([]time.Duration, error)
	// cleanup stops and removes what the last round started.
	cleanup(ctx context.Context) error
}

func latency(ctx context.Context, o options, raw *rawStarter, b *berthStarter) error {
	starters := []starter{raw}
	if o.withCtr {
		starters = append(starters, &ctrStarter{raw: raw})
	}
	if b != nil {
		for _, nm := range o.networks {
			s, err := b.forNetwork(ctx, nm)
			if err != nil {
				return err
			}
			starters = append(starters, s)
		}
	}
	// Warm-up: one of each, unmeasured (first snapshot, first CNI call,
	// cold caches).
	for _, s := range starters {
		if _, err := s.round(ctx, 1, false); err != nil {
			return fmt.Errorf("%s warm-up: %w", s.name(), err)
		}
		if err := s.cleanup(ctx); err != nil {
			return fmt.Errorf("%s warm-up cleanup: %w", s.name(), err)
		}
		if bs, ok := s.(*berthNetStarter); ok {
			bs.serverSide = nil
		}
	}
	var rows []row
	for _, concurrent := range []bool{false, true} {
		shape := fmt.Sprintf("%d sequential", o.n)
		if concurrent {
			shape = fmt.Sprintf("%d at concurrency %d", o.n, o.c)
		}
		lat := make([][]time.Duration, len(starters))
		for done := 0; done < o.n; done += o.c {
			k := min(o.c, o.n-done)
			for i, s := range starters {
				d, err := s.round(ctx, k, concurrent)
				if cerr := s.cleanup(ctx); cerr != nil && err == nil {
					err = fmt.Errorf("cleanup: %w", cerr)
				}
				if err != nil {
					return fmt.Errorf("%s, %s: %w", s.name(), shape, err)
				}
				lat[i] = append(lat[i], d...)
			}
			fmt.Fprintf(os.Stderr, "%s: %d/%d\n", shape, done+k, o.n)
		}
		for i, s := range starters {
			rows = append(rows, row{shape: shape, subject: s.name(), sum: summarize(lat[i])})
			if bs, ok := s.(*berthNetStarter); ok {
				rows = append(rows, row{shape: shape, subject: s.name() + ", server-side startedAt−createdAt", sum: summarize(bs.serverSide), aux: true})
				bs.serverSide = nil
			}
		}
	}
	printLatency(os.Stdout, rows, raw.name())
	if b != nil {
		fmt.Printf("berth API calls the SDK retried (at once, no back-off): %d\n", b.retries.Load())
	}
	return nil
}
