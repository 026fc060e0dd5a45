package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/bench/benchkit"
)

// latencyRounds pushes the small image once, then runs one unmeasured and
// -latency-rounds measured rounds of -concurrency pulls started together,
// each a separate client (its own connections, its own /v2/ challenge and
// login, as separate nodes pulling one image would be).
func latencyRounds(ctx context.Context, e *env, r *runResult, run int) error {
	o := e.o
	layer := (int64(o.smallMiB) << 20) / int64(o.smallLayers) / 512 * 512
	img, err := newBenchImage(o.smallLayers, layer)
	if err != nil {
		return err
	}
	r.smallBytes = img.layerBytes()
	ref, err := e.ref("bench/small:v1")
	if err != nil {
		return err
	}
	tr := newTransport()
	err = remote.Write(ref, img.img, e.remoteOptions(ctx, tr)...)
	tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}

	var s0 float64
	var t0 time.Time
	for i := 0; i <= o.latencyRounds; i++ {
		if i == 1 { // round 0 warms up
			s0 = e.serverCPU()
			e.profileStart()
			t0 = time.Now()
		}
		lat, err := concurrentPulls(ctx, e, o.concurrency, r.smallBytes)
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if i > 0 {
			r.latency = append(r.latency, lat)
			benchkit.Logf(o.verbose, "latency round %d: p50 %v p95 %v", i, percentile(lat, 50).Round(time.Millisecond), percentile(lat, 95).Round(time.Millisecond))
		}
	}
	r.latWall = time.Since(t0)
	r.latSrvCPU = e.serverCPU() - s0
	return e.profileStop(ctx, fmt.Sprintf("%d rounds of %d concurrent pulls, run %d", o.latencyRounds, o.concurrency, run))
}

// concurrentPulls starts n pulls of bench/small:v1 at once and returns
// each one's duration.
func concurrentPulls(ctx context.Context, e *env, n int, want int64) ([]time.Duration, error) {
	ref, err := e.ref("bench/small:v1")
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // owned by concurrentPulls, which waits for it
			defer wg.Done()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			<-start
			t0 := time.Now()
			got, err := pull(ctx, e, ref, tr)
			lat[i] = time.Since(t0)
			if err == nil && got != want {
				err = fmt.Errorf("%d layer bytes, want %d", got, want)
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	return lat, errors.Join(errs...)
}
