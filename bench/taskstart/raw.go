package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/runtime/containerd"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testimage"
)

// benchLabel marks the raw containers this program creates.
const benchLabel = "berth.bench"

// rawStarter starts containers through berth's containerd runtime, with
// none of the agent around it.
type rawStarter struct {
	o     options
	rt    *containerd.Runtime // in o.rawNamespace
	agent *containerd.Runtime // in o.agentNamespace, or nil

	mu  sync.Mutex // guards seq and ids: rounds start from several goroutines
	seq int
	ids []string // started by the last round
}

func newRawStarter(ctx context.Context, o options) (*rawStarter, error) {
	rt, err := containerd.New(ctx, containerd.Options{Address: o.containerdAddress, Namespace: o.rawNamespace})
	if err != nil {
		return nil, err
	}
	r := &rawStarter{o: o, rt: rt}
	if o.agentNamespace != "" {
		if r.agent, err = containerd.New(ctx, containerd.Options{Address: o.containerdAddress, Namespace: o.agentNamespace}); err != nil {
			rt.Close()
			return nil, err
		}
	}
	return r, nil
}

func (r *rawStarter) close() {
	r.rt.Close()
	if r.agent != nil {
		r.agent.Close()
	}
}

func (r *rawStarter) name() string { return "raw containerd (Go client)" }

// importImage packs the probe into an image and imports it into the raw
// namespace and the agent's.
func (r *rawStarter) importImage(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "taskstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img, err := testimage.Image(r.o.probe, testimage.Spec{Ref: r.o.image, Cmd: []string{"sleep"}})
	if err != nil {
		return err
	}
	tar := filepath.Join(dir, "probe.tar")
	if err := testimage.Write(tar, r.o.image, img); err != nil {
		return err
	}
	for _, rt := range []*containerd.Runtime{r.rt, r.agent} {
		if rt == nil {
			continue
		}
		if _, err := rt.Import(ctx, tar); err != nil {
			return fmt.Errorf("importing the probe image: %w", err)
		}
	}
	return nil
}

// nextID hands out a container ID; track adds it to the round's list.
func (r *rawStarter) nextID(track bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	id := fmt.Sprintf("taskstart-%d-%d", os.Getpid(), r.seq)
	if track {
		r.ids = append(r.ids, id)
	}
	return id
}

func (r *rawStarter) start(ctx context.Context, id string) (time.Duration, error) {
	t0 := time.Now()
	if err := r.rt.Create(ctx, runtime.ContainerSpec{
		ID: id, Image: r.o.image, Command: []string{"sleep"}, MemoryLimitMiB: 32,
		Labels: map[string]string{benchLabel: "1"},
	}); err != nil {
		return 0, err
	}
	if err := r.rt.Start(ctx, id); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	// Not timed: check that it does run.
	st, err := r.rt.Inspect(ctx, id)
	if err != nil {
		return 0, err
	}
	if st.State != runtime.StateRunning {
		return 0, fmt.Errorf("container %s is %s after Start", id, st.State)
	}
	return d, nil
}

func (r *rawStarter) round(ctx context.Context, k int, concurrent bool) ([]time.Duration, error) {
	return runRound(ctx, k, concurrent, func(ctx context.Context) (time.Duration, error) {
		return r.start(ctx, r.nextID(true))
	})
}

func (r *rawStarter) cleanup(ctx context.Context) error {
	r.mu.Lock()
	ids := r.ids
	r.ids = nil
	r.mu.Unlock()
	return removeAll(ctx, r.rt, ids)
}

// removeAll stops and removes the containers, concurrently.
func removeAll(ctx context.Context, rt *containerd.Runtime, ids []string) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rt.Stop(ctx, id, 5*time.Second); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				errs[i] = err
				return
			}
			if err := rt.Remove(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cleanupAll removes every container and the probe image from the raw and
// agent namespaces (the script's teardown, after berth has stopped).
func (r *rawStarter) cleanupAll(ctx context.Context) error {
	var errs []error
	for _, rt := range []*containerd.Runtime{r.rt, r.agent} {
		if rt == nil {
			continue
		}
		list, err := rt.List(ctx, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids := make([]string, len(list))
		for i, c := range list {
			ids[i] = c.ID
		}
		if err := removeAll(ctx, rt, ids); err != nil {
			errs = append(errs, err)
		}
		if err := rt.RemoveImage(ctx, r.o.image); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, err)
		}
		fmt.Fprintf(os.Stderr, "taskstart: removed %d containers\n", len(ids))
	}
	return errors.Join(errs...)
}

// runRound runs k starts, all at once or one after another.
func runRound(ctx context.Context, k int, concurrent bool, start func(context.Context) (time.Duration, error)) ([]time.Duration, error) {
	out := make([]time.Duration, k)
	errs := make([]error, k)
	if !concurrent {
		for i := range k {
			if out[i], errs[i] = start(ctx); errs[i] != nil {
				break
			}
		}
		return out, errors.Join(errs...)
	}
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = start(ctx)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// ctrStarter starts containers with `ctr run -d`, the command-line peer of
// the raw start (it pays for starting the ctr process too).
type ctrStarter struct {
	raw *rawStarter
	ids []string
}

func (c *ctrStarter) name() string { return "raw containerd (ctr run -d)" }

func (c *ctrStarter) round(ctx context.Context, k int, concurrent bool) ([]time.Duration, error) {
	var mu sync.Mutex
	return runRound(ctx, k, concurrent, func(ctx context.Context) (time.Duration, error) {
		id := c.raw.nextID(false)
		mu.Lock()
		c.ids = append(c.ids, id)
		mu.Unlock()
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, "ctr", "--address", c.raw.o.containerdAddress, "-n", c.raw.o.rawNamespace,
			"run", "-d", "--memory-limit", strconv.Itoa(32<<20), "--label", benchLabel+"=1",
			c.raw.o.image, id, testimage.ProbePath, "sleep")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("ctr run: %v: %s", err, stderr.String())
		}
		return time.Since(t0), nil
	})
}

func (c *ctrStarter) cleanup(ctx context.Context) error {
	ids := c.ids
	c.ids = nil
	return removeAll(ctx, c.raw.rt, ids)
}
