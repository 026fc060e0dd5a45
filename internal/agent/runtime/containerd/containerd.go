// Package containerd implements the agent's runtime.Runtime on containerd,
// through containerd's v2 Go client, against daemons from 1.6 on. It is the
// only berth package that imports containerd.
//
// What it relies on, and why (see docs/architecture/agent-runtime.md):
//   - Only APIs a 1.6 daemon serves: Pull and Import run client-side over
//     the content, image, snapshot and diff services; no Transfer service,
//     no Sandbox API, no introspection calls.
//   - The OCI spec is built client-side, so the security defaults come from
//     this package, not the daemon's version.
//   - Logs go to a file the shim writes (cio.LogFile), and everything a
//     later agent needs (log path, stop signal and timeout, image digest,
//     exit status, OOM) is kept in container labels, so a restarted agent
//     adopts running containers and learns how stopped ones ended.
//   - An exit is recorded (labels) and only then the task deleted, which
//     lets the shim go; the container keeps its writable layer until Remove.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Defaults for Options.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "berth"
	DefaultSnapshotter = "overlayfs"
	DefaultRuntime     = "io.containerd.runc.v2"
)

// Options configure a Runtime. Zero fields take the defaults above.
type Options struct {
	Address     string // containerd's socket (the agent's --containerd-address)
	Namespace   string // containerd namespace holding berth's images and containers
	Snapshotter string
	Runtime     string // containerd runtime (shim) name
	// SystemdCgroup makes runc manage cgroups through systemd (the usual
	// choice on cgroup v2 hosts booted with systemd). Containers are then
	// placed in "<CgroupParent or system.slice>:berth:<id>".
	SystemdCgroup bool
}

// Internal container labels (runtime.InternalLabelPrefix).
const (
	labelLogPath     = runtime.InternalLabelPrefix + "log-path"
	labelStopSignal  = runtime.InternalLabelPrefix + "stop-signal"
	labelStopTimeout = runtime.InternalLabelPrefix + "stop-timeout"
	labelImageDigest = runtime.InternalLabelPrefix + "image-digest"
	labelExitCode    = runtime.InternalLabelPrefix + "exit-code"
	labelExitedAt    = runtime.InternalLabelPrefix + "exited-at"
	labelOOMKilled   = runtime.InternalLabelPrefix + "oom-killed"
)

// Runtime is a runtime.Runtime on containerd.
type Runtime struct {
	client *containerd.Client
	opts   Options

	// bg outlives calls: exit watchers run on it; Close cancels it.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	monitors map[string]*monitor // by container ID; guarded by mu
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to containerd and checks that it answers.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Address == "" {
		opts.Address = DefaultAddress
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Snapshotter == "" {
		opts.Snapshotter = DefaultSnapshotter
	}
	if opts.Runtime == "" {
		opts.Runtime = DefaultRuntime
	}
	client, err := containerd.New(opts.Address,
		containerd.WithDefaultNamespace(opts.Namespace),
		containerd.WithDefaultRuntime(opts.Runtime),
		containerd.WithDefaultPlatform(platforms.Default()),
		containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, wrap(err, "connecting to containerd at "+opts.Address)
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := client.Version(vctx); err != nil {
		client.Close()
		return nil, &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "containerd at " + opts.Address + " does not answer", Cause: err}
	}
	bg, bgCancel := context.WithCancel(context.Background())
	return &Runtime{
		client: client, opts: opts, bg: bg, cancel: bgCancel,
		monitors: map[string]*monitor{},
	}, nil
}

// Close stops watching exits and closes the connection; containers keep
// running. Pending Wait channels close without a value.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for id, m := range r.monitors {
		m.closeSubs()
		delete(r.monitors, id)
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return r.client.Close()
}

func (r *Runtime) checkOpen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errdefs.New(errdefs.ErrFailedPrecondition, "containerd runtime is closed")
	}
	return nil
}

// EnsureImage implements runtime.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, opts runtime.PullOptions) (runtime.Image, error) {
	if err := r.checkOpen(); err != nil {
		return runtime.Image{}, err
	}
	ref, err := runtime.NormalizeRef(ref)
	if err != nil {
		return runtime.Image{}, err
	}
	behavior := opts.Behavior
	if behavior == "" {
		behavior = runtime.PullDefault
	}
	if _, err := runtime.ParsePullBehavior(string(behavior)); err != nil {
		return runtime.Image{}, err
	}
	local, err := r.client.GetImage(ctx, ref)
	if err != nil && !cerrdefs.IsNotFound(err) {
		return runtime.Image{}, wrap(err, "looking up image "+ref)
	}
	useLocal := func() (runtime.Image, error) {
		if err := r.unpack(ctx, local); err != nil {
			return runtime.Image{}, err
		}
		return r.describe(ctx, local, true)
	}
	if local != nil && (behavior == runtime.PullOnce || behavior == runtime.PullPreferCached) {
		return useLocal()
	}
	img, err := r.pull(ctx, ref, opts)
	if err != nil {
		if behavior == runtime.PullDefault && local != nil {
			return useLocal()
		}
		return runtime.Image{}, err
	}
	return r.describe(ctx, img, false)
}

func (r *Runtime) pull(ctx context.Context, ref string, opts runtime.PullOptions) (containerd.Image, error) {
	var authOpts []docker.AuthorizerOpt
	if opts.Auth != nil {
		authOpts = append(authOpts, docker.WithAuthCreds(opts.Auth))
	}
	hostOpts := []docker.RegistryOpt{
		docker.WithAuthorizer(docker.NewDockerAuthorizer(authOpts...)),
		docker.WithPlainHTTP(func(host string) (bool, error) { return opts.PlainHTTP(host), nil }),
	}
	defaults := docker.ConfigureDefaultRegistries(hostOpts...)
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: func(host string) ([]docker.RegistryHost, error) {
			// A registry with its own trust (berth's, pinned by its CA)
			// gets a client that trusts only that; others the system's.
			if opts.TLS != nil {
				if conf := opts.TLS(host); conf != nil {
					client := &http.Client{Transport: &http.Transport{
						Proxy: http.ProxyFromEnvironment, TLSClientConfig: conf, TLSHandshakeTimeout: 10 * time.Second,
					}}
					return docker.ConfigureDefaultRegistries(append(hostOpts, docker.WithClient(client))...)(host)
				}
			}
			return defaults(host)
		},
	})
	img, err := r.client.Pull(ctx, ref,
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.opts.Snapshotter))
	if err != nil {
		return nil, wrap(err, "pulling image "+ref)
	}
	return img, nil
}

func (r *Runtime) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, r.opts.Snapshotter)
	if err != nil {
		return wrap(err, "checking image "+img.Name())
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, r.opts.Snapshotter); err != nil {
		return wrap(err, "unpacking image "+img.Name())
	}
	return nil
}

func (r *Runtime) describe(ctx context.Context, img containerd.Image, cached bool) (runtime.Image, error) {
	cfg, err := imageConfig(ctx, img)
	if err != nil {
		return runtime.Image{}, err
	}
	return runtime.Image{Ref: img.Name(), Digest: img.Target().Digest.String(), Config: cfg, Cached: cached}, nil
}

func imageConfig(ctx context.Context, img containerd.Image) (runtime.ImageConfig, error) {
	spec, err := img.Spec(ctx)
	if err != nil {
		return runtime.ImageConfig{}, wrap(err, "reading the configuration of image "+img.Name())
	}
	c := spec.Config
	return runtime.ImageConfig{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, User: c.User,
		WorkingDir: c.WorkingDir, StopSignal: c.StopSignal, Labels: c.Labels,
	}, nil
}

// Import implements runtime.Runtime; images are unpacked right away.
func (r *Runtime) Import(ctx context.Context, tarPath string) ([]runtime.Image, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	f, err := os.Open(tarPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("image archive " + tarPath + " not found")
	} else if err != nil {
		return nil, errdefs.Internal(err)
	}
	defer f.Close()
	recs, err := r.client.Import(ctx, f)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Message: "importing " + tarPath, Cause: err}
	}
	out := make([]runtime.Image, 0, len(recs))
	for _, rec := range recs {
		if !images.IsManifestType(rec.Target.MediaType) && !images.IsIndexType(rec.Target.MediaType) {
			continue
		}
		img := containerd.NewImage(r.client, rec)
		if err := r.unpack(ctx, img); err != nil {
			return nil, err
		}
		d, err := r.describe(ctx, img, false)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// RemoveImage implements runtime.Runtime.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	ref, err := runtime.NormalizeRef(ref)
	if err != nil {
		return err
	}
	if _, err := r.client.GetImage(ctx, ref); err != nil {
		return wrap(err, "image "+ref)
	}
	cs, err := r.client.ContainerService().List(ctx, "image=="+strconv.Quote(ref))
	if err != nil {
		return wrap(err, "listing containers")
	}
	if len(cs) > 0 {
		return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("image %s is used by container %q", ref, cs[0].ID))
	}
	if err := r.client.ImageService().Delete(ctx, ref); err != nil {
		return wrap(err, "removing image "+ref)
	}
	return nil
}

// wrap converts a containerd error into one of berth's kinds.
func wrap(err error, msg string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", msg, err)
	}
	kind := errdefs.ErrInternal
	switch {
	case cerrdefs.IsNotFound(err):
		kind = errdefs.ErrNotFound
	case cerrdefs.IsAlreadyExists(err):
		kind = errdefs.ErrAlreadyExists
	case cerrdefs.IsInvalidArgument(err):
		kind = errdefs.ErrInvalidArgument
	case cerrdefs.IsFailedPrecondition(err), cerrdefs.IsConflict(err):
		kind = errdefs.ErrFailedPrecondition
	case cerrdefs.IsUnauthorized(err):
		kind = errdefs.ErrUnauthenticated
	case cerrdefs.IsPermissionDenied(err):
		kind = errdefs.ErrAccessDenied
	case cerrdefs.IsUnavailable(err):
		kind = errdefs.ErrUnavailable
	}
	return &errdefs.Error{Kind: kind, Message: msg, Cause: err}
}
