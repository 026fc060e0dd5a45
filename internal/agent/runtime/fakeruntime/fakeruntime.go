// Package fakeruntime is an in-memory runtime.Runtime for fast agent tests.
// It passes the same conformance suite (runtime/runtimetest) as the
// containerd runtime.
//
// Containers "run" as goroutines that imitate the probe test program
// (internal/testimage/probe): the process arguments (image entrypoint and
// command, combined as Docker does) name a verb. argv[0] may be the program
// ("/probe exit 3", as in the real image) or the verb itself ("exit 3", a
// fake-only shorthand). The vocabulary:
//
//	exit N [DELAY]        exits with N after DELAY
//	sleep [DURATION]      runs until stopped (or DURATION)
//	serve [-port N]       runs until stopped; with NetNSHost it really
//	                      answers HTTP on the port, as the probe does
//	sigterm-exit N        runs; the stop signal makes it exit N
//	ignore-sigterm        runs; only SIGKILL (exit 137) ends it
//	alloc MiB             OOM-killed (exit 137, OOMKilled) when MiB ≥ the
//	                      memory limit; otherwise runs until stopped
//	print TEXT...         writes "stdout: TEXT" and "stderr: TEXT" lines
//	info                  writes uid=, gid=, cwd=, hostname=, nofile-hard=,
//	                      capeff=, nonewprivs=, seccomp=, args= and env lines
//	                      computed from the spec, as the probe prints them
//	touch PATH            exits 1 on a read-only rootfs or mount, or when a
//	                      non-root user writes outside /tmp, /var/tmp, /dev,
//	                      /run and writable mounts; else records the file
//	cat PATH              prints a bind-mounted host file; "" for touched,
//	                      image or masked paths; a placeholder line for other
//	                      /proc files; exits 1 for anything else
//	healthcheck PATH|URL  exits 0 if PATH exists (image, touched or mounted
//	                      file) or, for a URL, if the container runs serve
//	anything else         exits 2 ("probe: unknown verb")
//
// SIGTERM and SIGINT end every verb with exit 0, except sigterm-exit and
// ignore-sigterm; SIGKILL ends everything with 137. Output goes to the
// spec's LogPath, as the real runtime's shim writes it.
//
// Images come from Import (docker-archive tarballs), WithImage (already
// local), WithRemoteImage (pullable without a network) or a real registry
// pull of the manifest and config over HTTP(S) with go-containerregistry;
// WithAnyImage makes every unknown reference pullable as a probe image.
//
// Several Runtime values can share one fake machine (NewClient), which is how
// tests imitate an agent restart. Specs records every created container's
// spec for assertions.
package fakeruntime

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testimage/probehttp"
)

// Option configures a new fake machine.
type Option func(*machine)

// WithImage makes ref a local image with configuration c.
func WithImage(ref string, c runtime.ImageConfig) Option {
	return func(m *machine) {
		if img, err := synthImage(ref, c); err == nil {
			m.images[img.ref] = img
		}
	}
}

// WithRemoteImage makes ref pullable (by EnsureImage) without a network.
func WithRemoteImage(ref string, c runtime.ImageConfig) Option {
	return func(m *machine) {
		if img, err := synthImage(ref, c); err == nil {
			m.remote[img.ref] = img
		}
	}
}

// WithAnyImage makes every reference not otherwise known pullable, as an
// image with the probe's configuration (ProbeConfig).
func WithAnyImage() Option {
	return func(m *machine) { m.anyImage = true }
}

// ProbeConfig is the configuration of testimage.Build's probe image.
var ProbeConfig = runtime.ImageConfig{
	Entrypoint: []string{"/probe"},
	Cmd:        []string{"serve", "-port", "8080"},
	Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
}

// probeFiles are the paths of the probe image's layer.
var probeFiles = []string{"/", "/probe", "/bin", "/dev", "/etc", "/etc/passwd", "/etc/group", "/home",
	"/home/nobody", "/proc", "/run", "/sys", "/tmp", "/var", "/var/tmp"}

// Runtime is one client of a fake machine.
type Runtime struct {
	m      *machine
	closed chan struct{}
	once   sync.Once
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a client of a new, empty fake machine.
func New(opts ...Option) *Runtime {
	m := &machine{
		images:     map[string]*image{},
		remote:     map[string]*image{},
		pulls:      map[string]int{},
		containers: map[string]*container{},
		nextPid:    100,
	}
	for _, o := range opts {
		o(m)
	}
	return m.client()
}

// NewClient returns another client of the same machine, as a restarted
// agent would connect: it sees every container r's machine holds.
func (r *Runtime) NewClient() *Runtime { return r.m.client() }

// Specs returns the spec of every container created on the machine (also
// removed ones), by ID.
func (r *Runtime) Specs() map[string]runtime.ContainerSpec {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	out := make(map[string]runtime.ContainerSpec, len(r.m.specs))
	for _, s := range r.m.specs {
		out[s.ID] = s
	}
	return out
}

// Pulls returns how many times ref (normalised) was pulled from a registry.
func (r *Runtime) Pulls(ref string) int {
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		return 0
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.m.pulls[n]
}

// machine is the shared state of a fake host.
type machine struct {
	mu         sync.Mutex
	images     map[string]*image
	remote     map[string]*image
	anyImage   bool
	pulls      map[string]int
	containers map[string]*container
	specs      []runtime.ContainerSpec
	nextPid    int
}

func (m *machine) client() *Runtime {
	return &Runtime{m: m, closed: make(chan struct{})}
}

type image struct {
	ref    string
	digest string
	config runtime.ImageConfig
	files  map[string]bool
}

func (i *image) public(cached bool) runtime.Image {
	return runtime.Image{Ref: i.ref, Digest: i.digest, Config: cloneConfig(i.config), Cached: cached}
}

func synthImage(ref string, c runtime.ImageConfig) (*image, error) {
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s %q", n, c)))
	files := map[string]bool{}
	for _, f := range probeFiles {
		files[f] = true
	}
	return &image{ref: n, digest: "sha256:" + hex.EncodeToString(sum[:]), config: cloneConfig(c), files: files}, nil
}

func cloneConfig(c runtime.ImageConfig) runtime.ImageConfig {
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Cmd = slices.Clone(c.Cmd)
	c.Env = slices.Clone(c.Env)
	if c.Labels != nil {
		l := make(map[string]string, len(c.Labels))
		for k, v := range c.Labels {
			l[k] = v
		}
		c.Labels = l
	}
	return c
}

// container is one fake container; fields after mu-guarded ones are
// immutable after Create.
type container struct {
	spec      runtime.ContainerSpec
	img       *image
	argv      []string
	createdAt time.Time

	// Guarded by machine.mu.
	state   runtime.State
	pid     int
	exit    runtime.Exit
	files   map[string]bool
	signals chan syscall.Signal // to the running process
	done    chan struct{}       // closed at exit
	removed chan struct{}       // closed by Remove
	samples uint64              // Stats calls while running
}

func (r *Runtime) check(ctx context.Context) error {
	select {
	case <-r.closed:
		return errdefs.New(errdefs.ErrFailedPrecondition, "runtime client is closed")
	default:
	}
	return ctx.Err()
}

// EnsureImage implements runtime.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, opts runtime.PullOptions) (runtime.Image, error) {
	if err := r.check(ctx); err != nil {
		return runtime.Image{}, err
	}
	n, err := runtime.NormalizeRef(ref)
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
	r.m.mu.Lock()
	local := r.m.images[n]
	remoteImg := r.m.remote[n]
	anyImage := r.m.anyImage
	r.m.mu.Unlock()

	if local != nil && (behavior == runtime.PullOnce || behavior == runtime.PullPreferCached) {
		return local.public(true), nil
	}
	var pulled *image
	switch {
	case remoteImg != nil:
		pulled = remoteImg
	default:
		pulled, err = pull(ctx, n, opts)
		if err != nil && anyImage && local == nil {
			pulled, err = synthImage(n, ProbeConfig)
		}
	}
	if err != nil {
		if behavior == runtime.PullDefault && local != nil {
			return local.public(true), nil
		}
		return runtime.Image{}, err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.m.images[n] = pulled
	r.m.pulls[n]++
	return pulled.public(false), nil
}

// pull fetches ref's manifest and config from its registry.
func pull(ctx context.Context, ref string, opts runtime.PullOptions) (*image, error) {
	host := runtime.RefHost(ref)
	var nopts []name.Option
	if opts.PlainHTTP(host) {
		nopts = append(nopts, name.Insecure)
	}
	nref, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("image reference %q: %v", ref, err))
	}
	auth := authn.Anonymous
	if opts.Auth != nil {
		user, secret, err := opts.Auth(host)
		if err != nil {
			return nil, &errdefs.Error{Kind: errdefs.ErrUnauthenticated, Message: "registry credentials for " + host, Cause: err}
		}
		if user != "" {
			auth = &authn.Basic{Username: user, Password: secret}
		}
	}
	desc, err := remote.Get(nref, remote.WithContext(ctx), remote.WithAuth(auth),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
	if err != nil {
		return nil, pullError(ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, pullError(ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, pullError(ref, err)
	}
	out, err := synthImage(ref, imageConfig(cf))
	if err != nil {
		return nil, err
	}
	out.digest = desc.Digest.String()
	return out, nil
}

func pullError(ref string, err error) error {
	kind := errdefs.ErrUnavailable
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			kind = errdefs.ErrNotFound
		case http.StatusUnauthorized:
			kind = errdefs.ErrUnauthenticated
		case http.StatusForbidden:
			kind = errdefs.ErrAccessDenied
		}
	}
	return &errdefs.Error{Kind: kind, Message: "pulling image " + ref, Cause: err}
}

func imageConfig(cf *v1.ConfigFile) runtime.ImageConfig {
	c := cf.Config
	return runtime.ImageConfig{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, User: c.User,
		WorkingDir: c.WorkingDir, StopSignal: c.StopSignal, Labels: c.Labels,
	}
}

// Import implements runtime.Runtime for docker-archive tarballs.
func (r *Runtime) Import(ctx context.Context, tarPath string) ([]runtime.Image, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	imgs, err := readArchive(tarPath)
	if err != nil {
		return nil, err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	out := make([]runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		r.m.images[img.ref] = img
		out = append(out, img.public(false))
	}
	return out, nil
}

// readArchive decodes a docker-archive tarball: manifest.json, each image's
// config and the file names of its layers.
func readArchive(tarPath string) (imgs []*image, err error) {
	// go-containerregistry trusts the archive's structure; turn any panic
	// on a malformed one into an error.
	defer func() {
		if p := recover(); p != nil {
			imgs, err = nil, errdefs.InvalidArgument(fmt.Sprintf("image archive %s: malformed (%v)", tarPath, p))
		}
	}()
	bad := func(err error) error {
		return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Message: "image archive " + tarPath + ": not a readable docker-archive", Cause: err}
	}
	opener := func() (io.ReadCloser, error) { return os.Open(tarPath) }
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound("image archive " + tarPath + " not found")
		}
		return nil, bad(err)
	}
	for _, d := range manifest {
		for _, tagName := range d.RepoTags {
			tag, err := name.NewTag(tagName)
			if err != nil {
				return nil, bad(err)
			}
			img, err := tarball.Image(opener, &tag)
			if err != nil {
				return nil, bad(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, bad(err)
			}
			digest, err := img.Digest()
			if err != nil {
				return nil, bad(err)
			}
			files, err := layerFiles(img)
			if err != nil {
				return nil, bad(err)
			}
			ref, err := runtime.NormalizeRef(tagName)
			if err != nil {
				return nil, bad(err)
			}
			imgs = append(imgs, &image{ref: ref, digest: digest.String(), config: imageConfig(cf), files: files})
		}
	}
	if len(imgs) == 0 {
		return nil, errdefs.InvalidArgument("image archive " + tarPath + " holds no tagged image")
	}
	return imgs, nil
}

func layerFiles(img v1.Image) (map[string]bool, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	files := map[string]bool{"/": true}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			files[path.Clean("/"+h.Name)] = true
		}
		rc.Close()
	}
	return files, nil
}

// RemoveImage implements runtime.Runtime.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		return err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if r.m.images[n] == nil {
		return errdefs.NotFound(fmt.Sprintf("image %s is not present locally", n))
	}
	for _, c := range r.m.containers {
		if c.img.ref == n {
			return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("image %s is used by container %q", n, c.spec.ID))
		}
	}
	delete(r.m.images, n)
	return nil
}

// Create implements runtime.Runtime.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	ref, _ := runtime.NormalizeRef(spec.Image)
	spec = cloneSpec(spec)
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if _, ok := r.m.containers[spec.ID]; ok {
		return errdefs.AlreadyExists(fmt.Sprintf("container %q already exists", spec.ID))
	}
	img := r.m.images[ref]
	if img == nil {
		return errdefs.NotFound(fmt.Sprintf("image %s is not present locally", ref))
	}
	argv := runtime.Args(img.config, spec.Entrypoint, spec.Command)
	if len(argv) == 0 {
		return errdefs.InvalidArgument(fmt.Sprintf("container %q: no command (neither the image nor the spec has one)", spec.ID))
	}
	if _, _, err := resolveUser(userOf(spec, img)); err != nil {
		return err
	}
	r.m.containers[spec.ID] = &container{
		spec: spec, img: img, argv: argv, createdAt: time.Now(),
		state: runtime.StateCreated, files: map[string]bool{},
		done: make(chan struct{}), removed: make(chan struct{}),
	}
	r.m.specs = append(r.m.specs, spec)
	return nil
}

func cloneSpec(s runtime.ContainerSpec) runtime.ContainerSpec {
	if s.Labels != nil {
		l := make(map[string]string, len(s.Labels))
		for k, v := range s.Labels {
			l[k] = v
		}
		s.Labels = l
	}
	s.Env = slices.Clone(s.Env)
	s.Entrypoint = slices.Clone(s.Entrypoint)
	s.Command = slices.Clone(s.Command)
	s.Ulimits = slices.Clone(s.Ulimits)
	s.CapAdd = slices.Clone(s.CapAdd)
	s.CapDrop = slices.Clone(s.CapDrop)
	s.Mounts = slices.Clone(s.Mounts)
	return s
}

func (r *Runtime) get(id string) (*container, error) {
	c := r.m.containers[id]
	if c == nil {
		return nil, errdefs.NotFound(fmt.Sprintf("container %q not found", id))
	}
	return c, nil
}

// Start implements runtime.Runtime.
func (r *Runtime) Start(ctx context.Context, id string) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if c.state != runtime.StateCreated {
		return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q is %s; only a created container can start", id, c.state))
	}
	if _, _, ok := verbOf(c.argv, c.img); !ok {
		return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q: exec %q: no such file or directory", id, c.argv[0]))
	}
	if c.spec.LogPath != "" {
		if err := os.MkdirAll(path.Dir(c.spec.LogPath), 0o755); err != nil {
			return errdefs.Internal(err)
		}
	}
	r.m.nextPid++
	c.pid = r.m.nextPid
	c.state = runtime.StateRunning
	c.signals = make(chan syscall.Signal, 8)
	go r.m.run(c)
	return nil
}

// Wait implements runtime.Runtime.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan runtime.Exit, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	r.m.mu.Lock()
	c, err := r.get(id)
	r.m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ch := make(chan runtime.Exit, 1)
	go func() {
		defer close(ch)
		select {
		case <-c.done:
			r.m.mu.Lock()
			ex := c.exit
			r.m.mu.Unlock()
			ch <- ex
		case <-c.removed:
		case <-ctx.Done():
		case <-r.closed:
		}
	}()
	return ch, nil
}

// Stop implements runtime.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	r.m.mu.Lock()
	c, err := r.get(id)
	if err != nil {
		r.m.mu.Unlock()
		return err
	}
	running := c.state == runtime.StateRunning
	r.m.mu.Unlock()
	if !running {
		return nil
	}
	if timeout <= 0 {
		timeout = c.spec.StopTimeout
	}
	if timeout <= 0 {
		timeout = runtime.DefaultStopTimeout
	}
	sig := syscall.SIGTERM
	for _, s := range []string{c.spec.StopSignal, c.img.config.StopSignal} {
		if s == "" {
			continue
		}
		if p, err := runtime.ParseSignal(s); err == nil {
			sig = p
			break
		}
	}
	r.signal(c, sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.signal(c, syscall.SIGKILL)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runtime) signal(c *container, sig syscall.Signal) {
	select {
	case c.signals <- sig:
	case <-c.done:
	}
}

// Exec implements runtime.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, argv []string, timeout time.Duration) (int, error) {
	if err := r.check(ctx); err != nil {
		return -1, err
	}
	if len(argv) == 0 {
		return -1, errdefs.InvalidArgument("exec: empty command")
	}
	r.m.mu.Lock()
	c, err := r.get(id)
	if err == nil && c.state != runtime.StateRunning {
		err = errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q is %s, not running", id, c.state))
	}
	r.m.mu.Unlock()
	if err != nil {
		return -1, err
	}
	verb, args, ok := verbOf(argv, c.img)
	if !ok {
		return -1, errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("exec %q in container %q: no such file or directory", argv[0], id))
	}
	if timeout <= 0 {
		timeout = runtime.DefaultStopTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, blocks, delay := r.m.oneShot(c, verb, args, io.Discard)
	if !blocks && delay == 0 {
		return code, nil
	}
	var wait <-chan time.Time
	if !blocks {
		t := time.NewTimer(delay)
		defer t.Stop()
		wait = t.C
	}
	select {
	case <-wait:
		return code, nil
	case <-c.done: // exec processes die with their container
		return 137, nil
	case <-ctx.Done():
		return -1, fmt.Errorf("exec %q in container %q: %w", strings.Join(argv, " "), id, ctx.Err())
	}
}

// Inspect implements runtime.Runtime.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	if err := r.check(ctx); err != nil {
		return runtime.ContainerStatus{}, err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	return c.status(), nil
}

func (c *container) status() runtime.ContainerStatus {
	s := runtime.ContainerStatus{
		ID: c.spec.ID, Image: c.img.ref, ImageDigest: c.img.digest, State: c.state,
		CreatedAt: c.createdAt, LogPath: c.spec.LogPath, Labels: map[string]string{},
	}
	for k, v := range c.spec.Labels {
		s.Labels[k] = v
	}
	switch c.state {
	case runtime.StateRunning:
		s.Pid = c.pid
	case runtime.StateStopped:
		s.ExitCode, s.ExitedAt, s.OOMKilled = c.exit.Code, c.exit.ExitedAt, c.exit.OOMKilled
	}
	return s
}

// Fake machine figures for Stats.
const (
	FakeHostMemory = 4 << 30 // bytes; the memory limit of an unlimited container
	FakeOnlineCPUs = 2
	fakeBaseMemory = 2 << 20 // bytes a container uses before it allocates
)

// Stats implements runtime.Runtime with deterministic figures: the n-th
// sample of a container reports n×10ms of CPU (a quarter user, the rest
// kernel) against n×1s of host CPU per online CPU, 2 MiB of memory plus
// what an "alloc" verb allocated, one process, and, in a network
// namespace of its own from the agent (NetNSPath set), an "eth0" whose
// counters grow by 1000 bytes / 10 packets per sample.
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	if err := r.check(ctx); err != nil {
		return runtime.Stats{}, err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return runtime.Stats{}, err
	}
	if c.state != runtime.StateRunning {
		return runtime.Stats{}, errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q is %s, not running", id, c.state))
	}
	c.samples++
	n := c.samples
	usage := uint64(fakeBaseMemory)
	if verb, args, _ := verbOf(c.argv, c.img); verb == "alloc" && len(args) == 1 {
		if mib, err := strconv.ParseUint(args[0], 10, 32); err == nil {
			usage += mib << 20
		}
	}
	limit := uint64(FakeHostMemory)
	if c.spec.MemoryLimitMiB > 0 {
		limit = uint64(c.spec.MemoryLimitMiB) << 20
	}
	total := n * uint64(10*time.Millisecond)
	s := runtime.Stats{
		Read: time.Now().UTC(),
		CPU: runtime.CPUStats{
			TotalNs: total, UserNs: total / 4, KernelNs: total - total/4,
			PerCPUNs: []uint64{total / 2, total - total/2},
			SystemNs: n * uint64(time.Second) * FakeOnlineCPUs, OnlineCPUs: FakeOnlineCPUs,
		},
		Memory: runtime.MemoryStats{
			Usage: usage, MaxUsage: usage, Limit: limit,
			Stats: map[string]uint64{"cache": 0, "rss": usage, "inactive_file": 0, "total_inactive_file": 0},
		},
		Pids: runtime.PidsStats{Current: 1, Limit: uint64(c.spec.PidsLimit)},
	}
	switch c.spec.NetNSPath {
	case runtime.NetNSHost:
	case "":
		s.Networks = map[string]runtime.NetworkStats{} // loopback only
	default:
		s.Networks = map[string]runtime.NetworkStats{"eth0": {
			RxBytes: n * 1000, RxPackets: n * 10, TxBytes: n * 500, TxPackets: n * 5,
		}}
	}
	return s, nil
}

// List implements runtime.Runtime.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerStatus, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	var out []runtime.ContainerStatus
	for _, c := range r.m.containers {
		match := true
		for k, v := range labels {
			if got, ok := c.spec.Labels[k]; !ok || got != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, c.status())
		}
	}
	slices.SortFunc(out, func(a, b runtime.ContainerStatus) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Remove implements runtime.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if c.state == runtime.StateRunning {
		return errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container %q is running; stop it first", id))
	}
	delete(r.m.containers, id)
	close(c.removed)
	return nil
}

// Close implements runtime.Runtime; containers keep running.
func (r *Runtime) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

// verbOf splits argv into the probe verb and its arguments. argv[0] is
// either a verb (the fake's shorthand) or a program in the image.
func verbOf(argv []string, img *image) (verb string, args []string, ok bool) {
	if len(argv) == 0 {
		return "", nil, false
	}
	if verbs[argv[0]] {
		return argv[0], argv[1:], true
	}
	prog := argv[0]
	if !strings.HasPrefix(prog, "/") {
		prog = "/bin/" + prog // the probe image's PATH holds nothing else
	}
	if !img.files[path.Clean(prog)] {
		return "", nil, false
	}
	if len(argv) == 1 {
		return "sleep", nil, true // the probe with no arguments sleeps
	}
	return argv[1], argv[2:], true
}

var verbs = map[string]bool{
	"exit": true, "sleep": true, "serve": true, "sigterm-exit": true, "ignore-sigterm": true,
	"alloc": true, "print": true, "info": true, "touch": true, "cat": true, "healthcheck": true,
}

// run is the container's "process".
func (m *machine) run(c *container) {
	var log io.Writer = io.Discard
	if c.spec.LogPath != "" {
		if f, err := os.OpenFile(c.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err == nil {
			defer f.Close()
			log = f
		}
	}
	verb, args, _ := verbOf(c.argv, c.img)
	code, oom := m.behave(c, verb, args, log)
	m.mu.Lock()
	c.state = runtime.StateStopped
	c.pid = 0
	c.exit = runtime.Exit{Code: code, ExitedAt: time.Now(), OOMKilled: oom}
	close(c.done)
	m.mu.Unlock()
}

// behave runs verb until it ends and returns the exit code.
func (m *machine) behave(c *container, verb string, args []string, log io.Writer) (code int, oom bool) {
	onStop, ignoreStop := 0, false
	switch verb {
	case "sigterm-exit":
		if len(args) == 1 {
			if n, err := strconv.Atoi(args[0]); err == nil {
				onStop = n
			}
		}
	case "ignore-sigterm":
		ignoreStop = true
	case "alloc":
		if len(args) == 1 {
			mib, err := strconv.Atoi(args[0])
			if err == nil && mib >= 0 && c.spec.MemoryLimitMiB > 0 && int64(mib) >= c.spec.MemoryLimitMiB {
				return 137, true
			}
		}
	}
	var exitReq <-chan int
	if verb == "serve" && c.spec.NetNSPath == runtime.NetNSHost {
		srv, ch, err := m.serve(c, args)
		if err != nil {
			fmt.Fprintln(log, "serve:", err)
			return 1, false
		}
		defer func() {
			// Gracefully, so the /exit response reaches its client.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
		exitReq = ch
	}
	code, blocks, delay := m.oneShot(c, verb, args, log)
	if !blocks && delay == 0 {
		return code, false
	}
	var timer <-chan time.Time
	if !blocks {
		t := time.NewTimer(delay)
		defer t.Stop()
		timer = t.C
	}
	for {
		select {
		case <-timer:
			return code, false
		case code := <-exitReq:
			return code, false
		case sig := <-c.signals:
			switch {
			case sig == syscall.SIGKILL:
				return 137, false
			case sig == syscall.SIGTERM || sig == syscall.SIGINT:
				if !ignoreStop {
					return onStop, false
				}
			default:
				// The Go runtime of the real probe exits 2 on other
				// terminating signals it does not handle.
				return 2, false
			}
		}
	}
}

// serve answers HTTP on the host's network as the probe's serve verb does;
// the fake can do so only with NetNSHost (it has no network namespaces).
func (m *machine) serve(c *container, args []string) (*http.Server, <-chan int, error) {
	l, err := net.Listen("tcp", ":"+probehttp.Port(args))
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	exit := make(chan int, 1)
	mux := probehttp.Handler(host, func() []string {
		_, env := m.identity(c)
		return env
	}, exit)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, exit, nil
}

// oneShot performs verb's immediate effects and says how it ends: with code
// at once, after delay, or (blocks) only by a signal.
func (m *machine) oneShot(c *container, verb string, args []string, out io.Writer) (code int, blocks bool, delay time.Duration) {
	usage := func(s string) (int, bool, time.Duration) {
		fmt.Fprintln(out, "usage: probe "+s)
		return 2, false, 0
	}
	switch verb {
	case "exit":
		if len(args) == 0 {
			return usage("exit N [DELAY]")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return usage("exit N [DELAY]")
		}
		if len(args) > 1 {
			d, err := time.ParseDuration(args[1])
			if err != nil {
				return usage("exit N [DELAY]")
			}
			return n, false, d
		}
		return n, false, 0
	case "sleep":
		fmt.Fprintln(out, "ready")
		if len(args) > 0 {
			d, err := time.ParseDuration(args[0])
			if err != nil {
				return usage("sleep [DURATION]")
			}
			if d > 0 {
				return 0, false, d
			}
		}
		return 0, true, 0
	case "serve":
		port := "8080"
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-port" {
				port = args[i+1]
			}
		}
		fmt.Fprintln(out, "ready: listening on :"+port)
		return 0, true, 0
	case "sigterm-exit":
		if len(args) != 1 {
			return usage("sigterm-exit N")
		}
		if _, err := strconv.Atoi(args[0]); err != nil {
			return usage("sigterm-exit N")
		}
		fmt.Fprintln(out, "ready")
		return 0, true, 0
	case "ignore-sigterm":
		fmt.Fprintln(out, "ready")
		return 0, true, 0
	case "alloc":
		if len(args) != 1 {
			return usage("alloc MiB")
		}
		mib, err := strconv.Atoi(args[0])
		if err != nil || mib < 0 {
			return usage("alloc MiB")
		}
		fmt.Fprintf(out, "allocated %d MiB\nready\n", mib)
		return 0, true, 0
	case "print":
		for _, a := range args {
			fmt.Fprintln(out, "stdout: "+a)
			fmt.Fprintln(out, "stderr: "+a)
		}
		return 0, false, 0
	case "info":
		m.info(c, args, out)
		return 0, false, 0
	case "touch":
		if len(args) != 1 {
			return usage("touch PATH")
		}
		if err := m.touch(c, args[0]); err != nil {
			fmt.Fprintln(out, "touch:", err)
			return 1, false, 0
		}
		return 0, false, 0
	case "cat":
		if len(args) != 1 {
			return usage("cat PATH")
		}
		b, err := m.cat(c, args[0])
		if err != nil {
			fmt.Fprintln(out, "cat:", err)
			return 1, false, 0
		}
		out.Write(b)
		return 0, false, 0
	case "healthcheck":
		if len(args) != 1 {
			return usage("healthcheck URL|PATH")
		}
		if strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://") {
			if v, _, _ := verbOf(c.argv, c.img); v == "serve" {
				return 0, false, 0
			}
			return 1, false, 0
		}
		if m.exists(c, args[0]) {
			return 0, false, 0
		}
		return 1, false, 0
	}
	fmt.Fprintf(out, "probe: unknown verb %q\n", verb)
	return 2, false, 0
}

// mountFor returns the bind mount holding p and p's host path.
func mountFor(c *container, p string) (runtime.Mount, string, bool) {
	mounts := slices.Clone(c.spec.Mounts)
	if c.spec.HostsFile != "" {
		mounts = append(mounts, runtime.Mount{Source: c.spec.HostsFile, Destination: "/etc/hosts"})
	}
	if c.spec.ResolvConfFile != "" {
		mounts = append(mounts, runtime.Mount{Source: c.spec.ResolvConfFile, Destination: "/etc/resolv.conf"})
	}
	// The last, most specific mount wins, as in the kernel's mount table.
	for i := len(mounts) - 1; i >= 0; i-- {
		mt := mounts[i]
		d := path.Clean(mt.Destination)
		if p == d {
			return mt, mt.Source, true
		}
		if rel, ok := strings.CutPrefix(p, d+"/"); ok {
			return mt, path.Join(mt.Source, rel), true
		}
	}
	return runtime.Mount{}, "", false
}

func masked(p string) bool {
	if slices.Contains(runtime.ExtraMaskedPaths, p) {
		return true
	}
	switch p {
	case "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware":
		return true
	}
	return false
}

func (m *machine) touch(c *container, p string) error {
	p = path.Clean("/" + p)
	uid, _, _ := resolveUser(userOf(c.spec, c.img))
	if mt, hostPath, ok := mountFor(c, p); ok {
		if mt.ReadOnly {
			return fmt.Errorf("open %s: read-only file system", p)
		}
		f, err := os.OpenFile(hostPath, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	tmpfs := strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "/run/")
	if c.spec.ReadonlyRootfs && !tmpfs {
		return fmt.Errorf("open %s: read-only file system", p)
	}
	scratch := tmpfs || strings.HasPrefix(p, "/tmp/") || strings.HasPrefix(p, "/var/tmp/")
	if uid != 0 && !scratch {
		return fmt.Errorf("open %s: permission denied", p)
	}
	m.mu.Lock()
	c.files[p] = true
	m.mu.Unlock()
	return nil
}

func (m *machine) cat(c *container, p string) ([]byte, error) {
	p = path.Clean("/" + p)
	if masked(p) {
		return nil, nil
	}
	if _, hostPath, ok := mountFor(c, p); ok {
		return os.ReadFile(hostPath)
	}
	if m.exists(c, p) {
		return nil, nil
	}
	if strings.HasPrefix(p, "/proc/") {
		return []byte("(fake " + p + ")\n"), nil
	}
	return nil, fmt.Errorf("open %s: no such file or directory", p)
}

func (m *machine) exists(c *container, p string) bool {
	p = path.Clean("/" + p)
	if _, hostPath, ok := mountFor(c, p); ok {
		_, err := os.Stat(hostPath)
		return err == nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return c.files[p] || c.img.files[p]
}

func userOf(s runtime.ContainerSpec, img *image) string {
	if s.User != "" {
		return s.User
	}
	return img.config.User
}

// resolveUser resolves a user against the probe image's /etc/passwd and
// /etc/group (root and nobody/nogroup), as containerd's WithUser does.
func resolveUser(u string) (uid, gid int, err error) {
	users := map[string][2]int{"root": {0, 0}, "nobody": {65534, 65534}}
	groups := map[string]int{"root": 0, "nogroup": 65534}
	if u == "" {
		return 0, 0, nil
	}
	userPart, groupPart, hasGroup := strings.Cut(u, ":")
	if n, err := strconv.Atoi(userPart); err == nil {
		uid, gid = n, 0
		for _, ug := range users {
			if ug[0] == n {
				gid = ug[1]
			}
		}
	} else if ug, ok := users[userPart]; ok {
		uid, gid = ug[0], ug[1]
	} else {
		return 0, 0, errdefs.InvalidArgument(fmt.Sprintf("user %q: no such user in the image", userPart))
	}
	if hasGroup {
		if n, err := strconv.Atoi(groupPart); err == nil {
			gid = n
		} else if g, ok := groups[groupPart]; ok {
			gid = g
		} else {
			return 0, 0, errdefs.InvalidArgument(fmt.Sprintf("group %q: no such group in the image", groupPart))
		}
	}
	return uid, gid, nil
}

// info prints what the probe's info verb prints, derived from the spec.
func (m *machine) info(c *container, args []string, out io.Writer) {
	s := c.spec
	uid, gid, _ := resolveUser(userOf(s, c.img))
	cwd := s.WorkingDir
	if cwd == "" {
		cwd = c.img.config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	host := s.Hostname
	if s.NetNSPath == runtime.NetNSHost {
		host, _ = os.Hostname()
	} else if host == "" {
		host = runtime.DefaultHostname(s.ID)
	}
	hard := runtime.DefaultNofileLimit()
	for _, u := range s.Ulimits {
		if u.Name == "nofile" {
			hard = u.Hard
		}
	}
	var capEff uint64
	if uid == 0 {
		caps, _ := runtime.EffectiveCapabilities(s.CapAdd, s.CapDrop)
		if s.Privileged {
			caps = nil
			for _, n := range runtime.Capabilities {
				caps = append(caps, "CAP_"+n)
			}
		}
		capEff = runtime.CapabilityMask(caps)
	}
	nnp, seccomp := 1, 2
	if s.AllowNewPrivileges {
		nnp = 0
	}
	if s.Privileged {
		seccomp = 0
	}
	fmt.Fprintf(out, "uid=%d\ngid=%d\ncwd=%s\nhostname=%s\nnofile-hard=%d\ncapeff=%016x\nnonewprivs=%d\nseccomp=%d\nargs=%s\n",
		uid, gid, cwd, host, hard, capEff, nnp, seccomp, strings.Join(args, " "))
	_, env := m.identity(c)
	for _, e := range env {
		fmt.Fprintln(out, "env "+e)
	}
}

// identity returns the process's uid and its sorted environment: the
// image's merged with the spec's, plus HOME as runc sets it from the user's
// passwd entry.
func (m *machine) identity(c *container) (uid int, env []string) {
	uid, _, _ = resolveUser(userOf(c.spec, c.img))
	env = runtime.MergeEnv(c.img.config.Env, c.spec.Env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		home := "/"
		switch uid {
		case 0:
			home = "/root"
		case 65534:
			home = "/home/nobody"
		}
		env = append(env, "HOME="+home)
	}
	slices.Sort(env)
	return uid, env
}
