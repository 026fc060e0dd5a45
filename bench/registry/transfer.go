package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/bench/benchkit"
)

// roundResult is one throughput round: a push, a pull and the file copies
// of the same bytes.
type roundResult struct {
	bytes      int64 // layer bytes of the image
	push, pull time.Duration
	copies     [numCopyKinds]time.Duration
	copySyncs  [numCopyKinds]time.Duration // the fsync part of each copy
	// CPU seconds of the server and of this program (the client) during
	// the push and the pull.
	pushSrvCPU, pushCliCPU float64
	pullSrvCPU, pullCliCPU float64
}

// runResult is one run on one fresh server.
type runResult struct {
	done   bool
	rounds []roundResult
	// latency holds the measured rounds of concurrent pulls, each pull's
	// time from its first request to the last byte of its last layer.
	latency    [][]time.Duration
	latWall    time.Duration // the measured latency rounds, first start to last end
	latSrvCPU  float64       // server CPU s over them
	smallBytes int64
	stored     int64 // bytes under DATA/registry at the end of the run
}

// runOnce measures one run on a fresh server.
func runOnce(o options, run int) (r runResult, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	e, err := startEnv(ctx, o, fmt.Sprintf("run%d", run))
	if err != nil {
		return r, err
	}
	defer e.close()
	for _, repo := range []string{"bench/big", "bench/small"} {
		if err := e.createRepository(ctx, repo); err != nil {
			return r, err
		}
	}
	// The copies run beside the data directory: the same filesystem.
	copyDir := filepath.Join(e.tmp, "copy")
	if err := os.Mkdir(copyDir, 0o700); err != nil {
		return r, err
	}

	for i := 1; i <= o.rounds; i++ {
		rr, err := throughputRound(ctx, e, copyDir, fmt.Sprintf("bench/big:r%d", i), fmt.Sprintf("run %d round %d", run, i))
		if err != nil {
			return r, fmt.Errorf("round %d: %w", i, err)
		}
		r.rounds = append(r.rounds, rr)
		benchkit.Logf(o.verbose, "round %d: push %.0f MiB/s, pull %.0f MiB/s, copy %.0f MiB/s", i,
			mibps(rr.bytes, rr.push), mibps(rr.bytes, rr.pull), mibps(rr.bytes, rr.copies[copyKernel]))
	}

	if err := latencyRounds(ctx, e, &r, run); err != nil {
		return r, fmt.Errorf("latency: %w", err)
	}
	r.stored = e.registryBytes()
	r.done = true
	return r, nil
}

// throughputRound builds a fresh image, copies its bytes file to file,
// pushes it to ref and pulls it back.
func throughputRound(ctx context.Context, e *env, copyDir, repoTag, what string) (rr roundResult, err error) {
	img, err := newBenchImage(e.o.layers, int64(e.o.layerMiB)<<20)
	if err != nil {
		return rr, err
	}
	rr.bytes = img.layerBytes()
	if rr.copies, rr.copySyncs, err = copyRound(copyDir, img.layers); err != nil {
		return rr, err
	}
	ref, err := e.ref(repoTag)
	if err != nil {
		return rr, err
	}

	runtime.GC() // the client's garbage from building the image is not the push's
	if err := syncFS(e.data); err != nil {
		return rr, err
	}
	tr := newTransport()
	s0, c0 := e.serverCPU(), selfCPU()
	e.profileStart()
	t0 := time.Now()
	err = remote.Write(ref, img.img, e.remoteOptions(ctx, tr)...)
	rr.push = time.Since(t0)
	rr.pushSrvCPU, rr.pushCliCPU = e.serverCPU()-s0, selfCPU()-c0
	tr.CloseIdleConnections()
	if err != nil {
		return rr, fmt.Errorf("push: %w", err)
	}
	if err := e.profileStop(ctx, "push, "+what); err != nil {
		return rr, err
	}

	runtime.GC()
	if err := syncFS(e.data); err != nil {
		return rr, err
	}
	tr = newTransport() // another client, as a node pulling would be
	s0, c0 = e.serverCPU(), selfCPU()
	e.profileStart()
	t0 = time.Now()
	n, err := pull(ctx, e, ref, tr)
	rr.pull = time.Since(t0)
	rr.pullSrvCPU, rr.pullCliCPU = e.serverCPU()-s0, selfCPU()-c0
	tr.CloseIdleConnections()
	if err != nil {
		return rr, fmt.Errorf("pull: %w", err)
	}
	if err := e.profileStop(ctx, "pull, "+what); err != nil {
		return rr, err
	}
	if n != rr.bytes {
		return rr, fmt.Errorf("pull: %d layer bytes, want %d", n, rr.bytes)
	}
	return rr, nil
}

// pull fetches ref's manifest and config and reads every layer's blob to
// the end, -jobs layers at once; go-containerregistry verifies each blob's
// digest as it reads. It returns the layer bytes read.
func pull(ctx context.Context, e *env, ref name.Reference, tr http.RoundTripper) (int64, error) {
	img, err := remote.Image(ref, e.remoteOptions(ctx, tr)...)
	if err != nil {
		return 0, err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return 0, err
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	return readLayers(layers, e.o.jobs)
}

// readLayers reads every layer's compressed blob to the end, jobs at once.
func readLayers(layers []v1.Layer, jobs int) (int64, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		errs  []error
		sem   = make(chan struct{}, jobs)
	)
	for _, l := range layers {
		wg.Add(1)
		sem <- struct{}{}
		go func() { // owned by readLayers, which waits for it
			defer wg.Done()
			defer func() { <-sem }()
			n, err := readLayer(l)
			mu.Lock()
			total += n
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

func readLayer(l v1.Layer) (int64, error) {
	rc, err := l.Compressed()
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, rc)
	return n, errors.Join(err, rc.Close())
}
