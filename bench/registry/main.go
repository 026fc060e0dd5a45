// Command registry measures berth's registry end to end (issue 6,
// docs/benchmarks.md "Registry"): a real `berth server` (embedded etcd, the
// registry under /v2/ on the API listener, plain HTTP on 127.0.0.1),
// repositories created and a token fetched with the aws-sdk-go-v2 ECR
// client, images pushed and pulled with go-containerregistry. Run it
// through bench/registry.sh, which builds berth and this program.
//
// Each run starts a fresh server on a fresh data directory and measures:
//
//   - throughput: -rounds times, an image of -layers layers of -layer-mib
//     MiB of incompressible bytes (fresh bytes each round, so nothing is
//     already stored) is pushed (remote.Write) and then pulled (remote.Image,
//     the config, every layer's Compressed() read to the end), and the same
//     layer bytes are copied from file to file in the filesystem of the data
//     directory: the peers the registry is compared with in the same round
//     (filecopy.go: one untimed copy, then copy_file_range + fsync,
//     read/write + fsync, read/write alone, read/write + SHA-256 + fsync). The filesystem is synced
//     (syncfs) before every timed operation, outside its time.
//   - latency: an image of -small-layers layers totalling -small-mib MiB is
//     pushed once; then -latency-rounds rounds (after one unmeasured) of
//     -concurrency pulls started together, each with its own connections,
//     timed from its first request to the last byte of its last layer.
//
// Every run and wait is bounded by -timeout. With -profile DIR the server
// is this program itself (`registry serve`, the same server.Start as
// `berth server`), which writes a CPU profile of each measured push, pull
// and latency round set into DIR (index.txt says which is which).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/berth-dev/berth/bench/benchkit"
)

type options struct {
	berth         string
	runs          int
	rounds        int
	layers        int
	layerMiB      int
	jobs          int
	concurrency   int
	smallMiB      int
	smallLayers   int
	latencyRounds int
	timeout       time.Duration
	profileDir    string
	keep          bool
	verbose       bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := benchkit.Serve(os.Args[2:], benchkit.ServeOptions{Announce: true}); err != nil {
			fmt.Fprintln(os.Stderr, "registry serve:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.berth, "berth", "", "berth binary (required unless -profile)")
	flag.IntVar(&o.runs, "runs", 3, "runs, each on a fresh server and data directory")
	flag.IntVar(&o.rounds, "rounds", 5, "throughput rounds (push, pull, file copies) per run")
	flag.IntVar(&o.layers, "layers", 4, "layers of the big image")
	flag.IntVar(&o.layerMiB, "layer-mib", 50, "MiB of each layer of the big image")
	flag.IntVar(&o.jobs, "jobs", 4, "layers pushed (remote.WithJobs) and pulled at once by one client")
	flag.IntVar(&o.concurrency, "concurrency", 20, "latency: pulls at once")
	flag.IntVar(&o.smallMiB, "small-mib", 10, "latency: MiB of the small image's layers in all")
	flag.IntVar(&o.smallLayers, "small-layers", 2, "latency: layers of the small image")
	flag.IntVar(&o.latencyRounds, "latency-rounds", 10, "latency: measured rounds of concurrent pulls per run (after one unmeasured)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound of each run")
	flag.StringVar(&o.profileDir, "profile", "", "run the server in-process in a child of this program and write CPU profiles of the measured phases here")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directories (logs, data)")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.Parse()
	err := o.check()
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry: FAILED:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.berth == "" && o.profileDir == "":
		return errors.New("-berth is required")
	case o.runs < 1 || o.rounds < 1 || o.layers < 1 || o.layerMiB < 1 || o.jobs < 1:
		return errors.New("-runs, -rounds, -layers, -layer-mib and -jobs must be positive")
	case o.concurrency < 1 || o.smallMiB < 1 || o.smallLayers < 1 || o.latencyRounds < 1:
		return errors.New("-concurrency, -small-mib, -small-layers and -latency-rounds must be positive")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	case o.runs*o.rounds > 50 || o.layers*o.layerMiB > 4096 || o.concurrency > 200 || o.latencyRounds > 100:
		// Bounds: disk (every round stores its image until the run ends),
		// memory (the image is held by the client) and time.
		return errors.New("at most 50 rounds in all, 4 GiB an image, 200 concurrent pulls, 100 latency rounds")
	}
	return nil
}

func run(o options) error {
	fmt.Printf("registry: image %d × %d MiB, %d rounds a run, %d jobs; latency %d × %d MiB image, %d concurrent pulls × %d rounds; %d cores, %s\n",
		o.layers, o.layerMiB, o.rounds, o.jobs, o.smallLayers, o.smallMiB, o.concurrency, o.latencyRounds, runtime.NumCPU(),
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	var results []runResult
	var errs []error
	for i := 1; i <= o.runs; i++ {
		r, err := runOnce(o, i)
		if r.done {
			r.print(os.Stdout, o, i)
			results = append(results, r)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "registry: run %d: FAILED: %v\n", i, err)
			errs = append(errs, fmt.Errorf("run %d: %w", i, err))
		}
	}
	if len(results) > 0 {
		printSummary(os.Stdout, o, results)
	}
	return errors.Join(errs...)
}
