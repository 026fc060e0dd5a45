// Package runtimetest is the conformance suite for runtime.Runtime. Every
// implementation runs it: the containerd runtime against a real daemon and
// the fake in memory, so what agent tests learn from the fake holds for the
// real thing.
//
// The suite runs the probe image (internal/testimage) and drives it through
// its arguments; the fake imitates the same vocabulary. Each subtest runs in
// parallel with its own containers (unique IDs) and removes them at the end.
package runtimetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testimage"
)

// ImageRef is the probe image the suite imports. Its registry (port 1 on
// loopback) refuses connections, so pulls of it fail at once and only a
// local copy can satisfy it.
const ImageRef = "127.0.0.1:1/berth-runtimetest/probe:v1"

// Options adjust the suite to an implementation.
type Options struct {
	// SkipPull leaves out the tests that pull from a registry the test
	// process serves on loopback (for a runtime that cannot reach it).
	SkipPull bool
}

// Run runs the suite. newRuntime returns a new client of the one machine
// under test each time it is called (the restart test calls it twice); the
// suite closes what it gets.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime, opts Options) {
	s := &suite{newRuntime: newRuntime, opts: opts, run: randomID()}
	s.tar = testimage.Build(t, ImageRef)
	rt := newRuntime(t)
	imgs, err := rt.Import(context.Background(), s.tar)
	rt.Close()
	if err != nil {
		t.Fatalf("Import(%s): %v", s.tar, err)
	}
	for _, img := range imgs {
		if img.Ref == ImageRef {
			s.image = img
		}
	}
	if s.image.Ref == "" {
		t.Fatalf("Import returned %+v, want an image %s", imgs, ImageRef)
	}

	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *harness)
	}{
		{"Images", s.testImages},
		{"Pull", s.testPull},
		{"ExitCode", s.testExitCode},
		{"CreateErrors", s.testCreateErrors},
		{"UnknownContainer", s.testUnknownContainer},
		{"StartFailure", s.testStartFailure},
		{"StopGraceful", s.testStopGraceful},
		{"StopKillsAfterTimeout", s.testStopKills},
		{"StopNotRunning", s.testStopNotRunning},
		{"OOM", s.testOOM},
		{"Exec", s.testExec},
		{"Stats", s.testStats},
		{"ProcessDefaults", s.testProcessDefaults},
		{"ProcessConfig", s.testProcessConfig},
		{"Capabilities", s.testCapabilities},
		{"EntrypointAndCommand", s.testEntrypoint},
		{"Filesystem", s.testFilesystem},
		{"HostNetwork", s.testHostNetwork},
		{"List", s.testList},
		{"Remove", s.testRemove},
		{"Concurrent", s.testConcurrent},
		{"Adoption", s.testAdoption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, s.harness(t))
		})
	}
}

type suite struct {
	newRuntime func(t *testing.T) runtime.Runtime
	opts       Options
	run        string // unique per Run, in labels and IDs
	tar        string
	image      runtime.Image
	seq        atomic.Int64
}

// harness is one subtest's runtime, log directory and containers.
type harness struct {
	s      *suite
	t      *testing.T
	rt     runtime.Runtime
	ctx    context.Context
	logDir string
	mu     sync.Mutex
	ids    []string
}

const (
	waitFor = 30 * time.Second // upper bound for anything that should happen
	cleanup = time.Millisecond // stop timeout when cleaning up
)

func (s *suite) harness(t *testing.T) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	h := &harness{s: s, t: t, rt: s.newRuntime(t), ctx: ctx, logDir: t.TempDir()}
	t.Cleanup(func() {
		defer cancel()
		defer h.rt.Close()
		// A fresh client: the test may have closed its own.
		rt := s.newRuntime(t)
		defer rt.Close()
		h.mu.Lock()
		ids := slices.Clone(h.ids)
		h.mu.Unlock()
		for _, id := range ids {
			if err := rt.Stop(ctx, id, cleanup); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("cleanup: Stop(%s): %v", id, err)
			}
			if err := rt.Remove(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("cleanup: Remove(%s): %v", id, err)
			}
		}
	})
	return h
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// id returns a fresh container ID.
func (h *harness) id() string {
	return fmt.Sprintf("rtt-%s-%d", h.s.run, h.s.seq.Add(1))
}

// spec returns a spec for the probe image with a fresh ID and a log file.
func (h *harness) spec(command ...string) runtime.ContainerSpec {
	id := h.id()
	return runtime.ContainerSpec{
		ID:      id,
		Image:   ImageRef,
		Command: command,
		LogPath: filepath.Join(h.logDir, id+".log"),
		Labels:  map[string]string{"berth.test/run": h.s.run},
	}
}

func (h *harness) create(spec runtime.ContainerSpec) string {
	h.t.Helper()
	h.mu.Lock()
	h.ids = append(h.ids, spec.ID)
	h.mu.Unlock()
	if err := h.rt.Create(h.ctx, spec); err != nil {
		h.t.Fatalf("Create(%s): %v", spec.ID, err)
	}
	return spec.ID
}

func (h *harness) start(spec runtime.ContainerSpec) string {
	h.t.Helper()
	id := h.create(spec)
	if err := h.rt.Start(h.ctx, id); err != nil {
		h.t.Fatalf("Start(%s): %v", id, err)
	}
	return id
}

// wait returns the container's exit, failing the test after waitFor.
func (h *harness) wait(rt runtime.Runtime, id string) runtime.Exit {
	h.t.Helper()
	ch, err := rt.Wait(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Wait(%s): %v", id, err)
	}
	return h.recv(ch, id)
}

func (h *harness) recv(ch <-chan runtime.Exit, id string) runtime.Exit {
	h.t.Helper()
	select {
	case ex, ok := <-ch:
		if !ok {
			h.t.Fatalf("Wait(%s): channel closed without an exit", id)
		}
		return ex
	case <-time.After(waitFor):
		h.t.Fatalf("Wait(%s): no exit within %v", id, waitFor)
	}
	return runtime.Exit{}
}

// runToExit runs a container and returns its exit and log.
func (h *harness) runToExit(spec runtime.ContainerSpec) (runtime.Exit, string) {
	h.t.Helper()
	id := h.create(spec)
	ch, err := h.rt.Wait(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Wait(%s): %v", id, err)
	}
	if err := h.rt.Start(h.ctx, id); err != nil {
		h.t.Fatalf("Start(%s): %v", id, err)
	}
	ex := h.recv(ch, id)
	return ex, h.readLog(spec.LogPath)
}

func (h *harness) readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Fatal(err)
	}
	return string(b)
}

// waitLog polls the log until it contains want.
func (h *harness) waitLog(path, want string) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if strings.Contains(h.readLog(path), want) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("log %s lacks %q after %v; it holds:\n%s", path, want, waitFor, h.readLog(path))
		}
		<-time.After(20 * time.Millisecond)
	}
}

func (h *harness) inspect(rt runtime.Runtime, id string) runtime.ContainerStatus {
	h.t.Helper()
	st, err := rt.Inspect(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Inspect(%s): %v", id, err)
	}
	return st
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want kind %v", what, err, kind)
	}
}

// lines returns the log's lines as a set.
func lines(log string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(log, "\n") {
		out[strings.TrimRight(l, "\r")] = true
	}
	return out
}

// wantLines polls the log at path until it holds every wanted line. The
// shim copies stdout and stderr on their own, so an exit can be seen before
// the last line of one stream reaches the file.
func (h *harness) wantLines(path string, want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		log := h.readLog(path)
		got := lines(log)
		var missing []string
		for _, w := range want {
			if !got[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Errorf("log lacks lines %q after %v; it holds:\n%s", missing, waitFor, log)
			return
		}
		<-time.After(20 * time.Millisecond)
	}
}

func (s *suite) testImages(t *testing.T, h *harness) {
	img := s.image
	if !strings.HasPrefix(img.Digest, "sha256:") {
		t.Errorf("imported digest %q", img.Digest)
	}
	if diff := cmp.Diff([]string{testimage.ProbePath}, img.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint: %s", diff)
	}
	if diff := cmp.Diff([]string{"serve", "-port", "8080"}, img.Config.Cmd); diff != "" {
		t.Errorf("cmd: %s", diff)
	}
	for _, b := range []runtime.PullBehavior{runtime.PullPreferCached, runtime.PullOnce, runtime.PullDefault} {
		got, err := h.rt.EnsureImage(h.ctx, ImageRef, runtime.PullOptions{Behavior: b})
		if err != nil {
			t.Errorf("EnsureImage(%s) of a local image whose registry is down: %v", b, err)
			continue
		}
		if !got.Cached || got.Digest != img.Digest || got.Ref != ImageRef {
			t.Errorf("EnsureImage(%s) = %+v, want the cached %s %s", b, got, ImageRef, img.Digest)
		}
	}
	if _, err := h.rt.EnsureImage(h.ctx, ImageRef, runtime.PullOptions{Behavior: runtime.PullAlways}); err == nil {
		t.Error("EnsureImage(always) succeeded although the registry is down")
	}
	absent := "127.0.0.1:1/berth-runtimetest/absent:v1"
	if _, err := h.rt.EnsureImage(h.ctx, absent, runtime.PullOptions{Behavior: runtime.PullPreferCached}); err == nil {
		t.Error("EnsureImage of an image neither local nor pullable succeeded")
	}
	_, err := h.rt.EnsureImage(h.ctx, "Bad/Reference", runtime.PullOptions{})
	wantKind(t, "EnsureImage(bad reference)", err, errdefs.ErrInvalidArgument)
	_, err = h.rt.EnsureImage(h.ctx, ImageRef, runtime.PullOptions{Behavior: "sometimes"})
	wantKind(t, "EnsureImage(bad behaviour)", err, errdefs.ErrInvalidArgument)

	// Importing again is idempotent.
	imgs, err := h.rt.Import(h.ctx, s.tar)
	if err != nil || len(imgs) != 1 || imgs[0].Digest != img.Digest {
		t.Errorf("second Import = %+v, %v", imgs, err)
	}
	_, err = h.rt.Import(h.ctx, filepath.Join(t.TempDir(), "missing.tar"))
	wantKind(t, "Import(missing file)", err, errdefs.ErrNotFound)
	garbage := filepath.Join(t.TempDir(), "garbage.tar")
	if err := os.WriteFile(garbage, []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.Import(h.ctx, garbage); err == nil {
		t.Error("Import(garbage) succeeded")
	}
}

// testPull pulls from a registry with basic auth served on loopback.
func (s *suite) testPull(t *testing.T, h *harness) {
	if s.opts.SkipPull {
		t.Skip("Options.SkipPull")
	}
	const user, secret = "AWS", "s3cret"
	var manifestGets atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != secret {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth-runtimetest"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		if strings.Contains(r.URL.Path, "/manifests/") && r.Method != http.MethodPut {
			manifestGets.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/berth-runtimetest/pulled:v1"

	img, err := tarball.ImageFromPath(s.tar, nil)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: user, Password: secret})); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	auth := func(secret string) func(string) (string, string, error) {
		return func(h string) (string, string, error) {
			if h != host {
				return "", "", fmt.Errorf("credentials asked for %q, want %q", h, host)
			}
			return user, secret, nil
		}
	}
	opts := runtime.PullOptions{Behavior: runtime.PullAlways, Auth: auth("wrong"), PlainHTTPHosts: []string{host}}
	if _, err := h.rt.EnsureImage(h.ctx, ref, opts); err == nil {
		t.Error("pull with wrong credentials succeeded")
	}
	opts.Auth = auth(secret)
	before := manifestGets.Load()
	got, err := h.rt.EnsureImage(h.ctx, ref, opts)
	if err != nil {
		t.Fatalf("EnsureImage(%s, always): %v", ref, err)
	}
	if got.Ref != ref || got.Digest != want.String() || got.Cached {
		t.Errorf("EnsureImage = %+v, want %s at %s, not cached", got, ref, want)
	}
	if manifestGets.Load() == before {
		t.Error("always: no manifest request reached the registry")
	}
	before = manifestGets.Load()
	got, err = h.rt.EnsureImage(h.ctx, ref, runtime.PullOptions{Behavior: runtime.PullPreferCached})
	if err != nil || !got.Cached || got.Digest != want.String() {
		t.Errorf("EnsureImage(prefer-cached) = %+v, %v; want the cached image", got, err)
	}
	if n := manifestGets.Load() - before; n != 0 {
		t.Errorf("prefer-cached with a local copy made %d manifest requests", n)
	}
	_, err = h.rt.EnsureImage(h.ctx, host+"/berth-runtimetest/pulled:absent", opts)
	wantKind(t, "EnsureImage(absent tag)", err, errdefs.ErrNotFound)

	// The pulled image runs.
	spec := h.spec("exit", "0")
	spec.Image = ref
	if ex, log := h.runToExit(spec); ex.Code != 0 {
		t.Errorf("container from the pulled image exited %d; log:\n%s", ex.Code, log)
	}
	st := h.inspect(h.rt, spec.ID)
	if st.Image != ref || st.ImageDigest != want.String() {
		t.Errorf("Inspect image = %s %s, want %s %s", st.Image, st.ImageDigest, ref, want)
	}

	wantKind(t, "RemoveImage of an image in use", h.rt.RemoveImage(h.ctx, ref), errdefs.ErrFailedPrecondition)
	if err := h.rt.Remove(h.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.RemoveImage(h.ctx, ref); err != nil {
		t.Fatalf("RemoveImage: %v", err)
	}
	wantKind(t, "second RemoveImage", h.rt.RemoveImage(h.ctx, ref), errdefs.ErrNotFound)
	spec = h.spec("exit", "0")
	spec.Image = ref
	wantKind(t, "Create from a removed image", h.rt.Create(h.ctx, spec), errdefs.ErrNotFound)
}

func (s *suite) testExitCode(t *testing.T, h *harness) {
	spec := h.spec("exit", "3")
	spec.Labels["k"] = "v"
	before := time.Now().Add(-time.Second)
	id := h.create(spec)
	st := h.inspect(h.rt, id)
	wantStatus := runtime.ContainerStatus{
		ID: id, Image: ImageRef, ImageDigest: s.image.Digest, Labels: spec.Labels,
		State: runtime.StateCreated, LogPath: spec.LogPath,
	}
	if diff := cmp.Diff(wantStatus, st, ignoreTimes); diff != "" {
		t.Errorf("Inspect after Create (-want +got):\n%s", diff)
	}
	if st.CreatedAt.Before(before) || st.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt %v, want about now", st.CreatedAt)
	}
	ch, err := h.rt.Wait(h.ctx, id) // before Start
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Start(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	ex := h.recv(ch, id)
	if ex.Code != 3 || ex.OOMKilled || ex.ExitedAt.Before(before) || ex.ExitedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("exit = %+v, want code 3 about now", ex)
	}
	if _, ok := <-ch; ok {
		t.Error("Wait's channel yielded a second value")
	}
	st = h.inspect(h.rt, id)
	if st.State != runtime.StateStopped || st.ExitCode != 3 || st.OOMKilled || st.Pid != 0 ||
		!st.ExitedAt.Equal(ex.ExitedAt) && st.ExitedAt.Sub(ex.ExitedAt).Abs() > time.Millisecond {
		t.Errorf("Inspect after exit = %+v, want stopped with code 3 at %v", st, ex.ExitedAt)
	}
	if again := h.wait(h.rt, id); again.Code != 3 {
		t.Errorf("Wait after the exit = %+v, want code 3", again)
	}
	wantKind(t, "Start of a stopped container", h.rt.Start(h.ctx, id), errdefs.ErrFailedPrecondition)

	// A running container has a pid.
	id = h.start(h.spec("sleep"))
	h.waitLog(filepath.Join(h.logDir, id+".log"), "ready")
	if st := h.inspect(h.rt, id); st.State != runtime.StateRunning || st.Pid <= 0 {
		t.Errorf("Inspect of a running container = %+v", st)
	}
	wantKind(t, "Start of a running container", h.rt.Start(h.ctx, id), errdefs.ErrFailedPrecondition)
}

var ignoreTimes = cmp.FilterPath(func(p cmp.Path) bool {
	f := p.Last().String()
	return f == ".CreatedAt" || f == ".ExitedAt"
}, cmp.Ignore())

func (s *suite) testCreateErrors(t *testing.T, h *harness) {
	spec := h.spec("exit", "0")
	h.create(spec)
	wantKind(t, "Create of a duplicate ID", h.rt.Create(h.ctx, spec), errdefs.ErrAlreadyExists)

	bad := h.spec("exit", "0")
	bad.ID = "bad id!"
	wantKind(t, "Create with a bad ID", h.rt.Create(h.ctx, bad), errdefs.ErrInvalidArgument)
	bad = h.spec("exit", "0")
	bad.Labels[runtime.InternalLabelPrefix+"x"] = "y"
	wantKind(t, "Create with a reserved label", h.rt.Create(h.ctx, bad), errdefs.ErrInvalidArgument)
	bad = h.spec("exit", "0")
	bad.Mounts = []runtime.Mount{{Source: "relative", Destination: "/x"}}
	wantKind(t, "Create with a relative mount", h.rt.Create(h.ctx, bad), errdefs.ErrInvalidArgument)
	bad = h.spec("exit", "0")
	bad.Ulimits = []runtime.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}
	wantKind(t, "Create with soft > hard", h.rt.Create(h.ctx, bad), errdefs.ErrInvalidArgument)

	missing := h.spec("exit", "0")
	missing.Image = "127.0.0.1:1/berth-runtimetest/absent:v1"
	wantKind(t, "Create from an absent image", h.rt.Create(h.ctx, missing), errdefs.ErrNotFound)
	if _, err := h.rt.Inspect(h.ctx, missing.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a failed Create left container %s behind (Inspect: %v)", missing.ID, err)
	}
}

func (s *suite) testUnknownContainer(t *testing.T, h *harness) {
	id := h.id()
	_, err := h.rt.Inspect(h.ctx, id)
	wantKind(t, "Inspect", err, errdefs.ErrNotFound)
	wantKind(t, "Start", h.rt.Start(h.ctx, id), errdefs.ErrNotFound)
	wantKind(t, "Stop", h.rt.Stop(h.ctx, id, time.Second), errdefs.ErrNotFound)
	_, err = h.rt.Wait(h.ctx, id)
	wantKind(t, "Wait", err, errdefs.ErrNotFound)
	_, err = h.rt.Exec(h.ctx, id, []string{"/probe", "exit", "0"}, time.Second)
	wantKind(t, "Exec", err, errdefs.ErrNotFound)
	_, err = h.rt.Stats(h.ctx, id)
	wantKind(t, "Stats", err, errdefs.ErrNotFound)
	wantKind(t, "Remove", h.rt.Remove(h.ctx, id), errdefs.ErrNotFound)
}

func (s *suite) testStartFailure(t *testing.T, h *harness) {
	spec := h.spec()
	spec.Entrypoint = []string{"/nonexistent"}
	id := h.create(spec)
	if err := h.rt.Start(h.ctx, id); err == nil {
		t.Fatal("Start of a container whose program does not exist succeeded")
	}
	if st := h.inspect(h.rt, id); st.State == runtime.StateRunning {
		t.Errorf("after a failed Start the container is %s", st.State)
	}
	if err := h.rt.Remove(h.ctx, id); err != nil {
		t.Errorf("Remove after a failed Start: %v", err)
	}
}

func (s *suite) testStopGraceful(t *testing.T, h *harness) {
	for _, tc := range []struct {
		command []string
		code    int
	}{
		{[]string{"sleep"}, 0},
		{[]string{"serve", "-port", "8080"}, 0},
		{[]string{"sigterm-exit", "42"}, 42},
	} {
		spec := h.spec(tc.command...)
		id := h.start(spec)
		h.waitLog(spec.LogPath, "ready")
		ch, err := h.rt.Wait(h.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if err := h.rt.Stop(h.ctx, id, 20*time.Second); err != nil {
			t.Fatalf("Stop(%v): %v", tc.command, err)
		}
		if d := time.Since(began); d > 10*time.Second {
			t.Errorf("Stop(%v) took %v although SIGTERM ends it", tc.command, d)
		}
		// Stop returns once the container has exited.
		if st := h.inspect(h.rt, id); st.State != runtime.StateStopped || st.ExitCode != tc.code {
			t.Errorf("%v: Inspect right after Stop = %+v, want stopped with %d", tc.command, st, tc.code)
		}
		if ex := h.recv(ch, id); ex.Code != tc.code || ex.OOMKilled {
			t.Errorf("%v: exit %+v, want %d", tc.command, ex, tc.code)
		}
	}
}

func (s *suite) testStopKills(t *testing.T, h *harness) {
	const grace = 700 * time.Millisecond
	for _, viaSpec := range []bool{false, true} {
		spec := h.spec("ignore-sigterm")
		timeout := grace
		if viaSpec {
			spec.StopTimeout, timeout = grace, 0
		}
		id := h.start(spec)
		h.waitLog(spec.LogPath, "ready")
		began := time.Now()
		if err := h.rt.Stop(h.ctx, id, timeout); err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		if took < grace-50*time.Millisecond || took > grace+15*time.Second {
			t.Errorf("StopTimeout via spec=%v: Stop took %v, want about %v", viaSpec, took, grace)
		}
		if ex := h.wait(h.rt, id); ex.Code != 137 || ex.OOMKilled {
			t.Errorf("exit after SIGKILL = %+v, want 137", ex)
		}
	}
}

func (s *suite) testStopNotRunning(t *testing.T, h *harness) {
	id := h.create(h.spec("sleep"))
	if err := h.rt.Stop(h.ctx, id, time.Second); err != nil {
		t.Errorf("Stop of a created container: %v", err)
	}
	if st := h.inspect(h.rt, id); st.State != runtime.StateCreated {
		t.Errorf("after Stop a never-started container is %s, want created", st.State)
	}
	// A waiter on a container removed before it ran sees the channel close.
	ch, err := h.rt.Wait(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Remove(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case ex, ok := <-ch:
		if ok {
			t.Errorf("Wait on a removed, never-started container yielded %+v", ex)
		}
	case <-time.After(waitFor):
		t.Error("Wait's channel stayed open after Remove")
	}

	spec := h.spec("exit", "5")
	ex, _ := h.runToExit(spec)
	if err := h.rt.Stop(h.ctx, spec.ID, time.Second); err != nil {
		t.Errorf("Stop of an exited container: %v", err)
	}
	if st := h.inspect(h.rt, spec.ID); st.State != runtime.StateStopped || st.ExitCode != ex.Code {
		t.Errorf("after Stop of an exited container: %+v", st)
	}
}

func (s *suite) testOOM(t *testing.T, h *harness) {
	spec := h.spec("alloc", "128")
	spec.MemoryLimitMiB = 16
	ex, log := h.runToExit(spec)
	if ex.Code != 137 || !ex.OOMKilled {
		t.Errorf("exit over the memory limit = %+v, want 137 OOM-killed; log:\n%s", ex, log)
	}
	if st := h.inspect(h.rt, spec.ID); !st.OOMKilled || st.ExitCode != 137 {
		t.Errorf("Inspect = %+v, want OOMKilled", st)
	}

	spec = h.spec("alloc", "4")
	spec.MemoryLimitMiB = 64
	spec.MemoryReservationMiB = 32
	id := h.start(spec)
	h.waitLog(spec.LogPath, "allocated 4 MiB")
	if err := h.rt.Stop(h.ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if ex := h.wait(h.rt, id); ex.OOMKilled || ex.Code != 0 {
		t.Errorf("exit under the memory limit = %+v, want 0 without OOM", ex)
	}
}

func (s *suite) testExec(t *testing.T, h *harness) {
	spec := h.spec("sleep")
	id := h.start(spec)
	h.waitLog(spec.LogPath, "ready")
	for _, tc := range []struct {
		argv []string
		code int
	}{
		{[]string{"/probe", "exit", "0"}, 0},
		{[]string{"/probe", "exit", "5"}, 5},
		{[]string{"/probe", "healthcheck", "/tmp/healthy"}, 1},
		{[]string{"/probe", "touch", "/tmp/healthy"}, 0},
		{[]string{"/probe", "healthcheck", "/tmp/healthy"}, 0},
		{[]string{"/probe", "exit", "0", "50ms"}, 0},
	} {
		code, err := h.rt.Exec(h.ctx, id, tc.argv, 20*time.Second)
		if err != nil || code != tc.code {
			t.Errorf("Exec(%v) = %d, %v; want %d", tc.argv, code, err, tc.code)
		}
	}
	began := time.Now()
	_, err := h.rt.Exec(h.ctx, id, []string{"/probe", "sleep"}, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec past its timeout: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("Exec with a 300ms timeout took %v", d)
	}
	if _, err := h.rt.Exec(h.ctx, id, []string{"/nonexistent"}, 5*time.Second); err == nil {
		t.Error("Exec of a missing program succeeded")
	}
	// The container is unaffected.
	if st := h.inspect(h.rt, id); st.State != runtime.StateRunning {
		t.Errorf("after Exec the container is %s", st.State)
	}
	_, err = h.rt.Exec(h.ctx, id, nil, time.Second)
	wantKind(t, "Exec of an empty command", err, errdefs.ErrInvalidArgument)

	created := h.create(h.spec("sleep"))
	_, err = h.rt.Exec(h.ctx, created, []string{"/probe", "exit", "0"}, time.Second)
	wantKind(t, "Exec in a created container", err, errdefs.ErrFailedPrecondition)
	stopped := h.spec("exit", "0")
	h.runToExit(stopped)
	_, err = h.rt.Exec(h.ctx, stopped.ID, []string{"/probe", "exit", "0"}, time.Second)
	wantKind(t, "Exec in a stopped container", err, errdefs.ErrFailedPrecondition)
}

func (s *suite) testStats(t *testing.T, h *harness) {
	const mib = 1 << 20
	limited := h.spec("alloc", "8")
	limited.MemoryLimitMiB = 64
	limited.PidsLimit = 50
	unlimited := h.spec("sleep")
	unlimited.NetNSPath = runtime.NetNSHost
	h.start(limited)
	h.start(unlimited)
	h.waitLog(limited.LogPath, "allocated 8 MiB")
	h.waitLog(unlimited.LogPath, "ready")

	sample := func(id string) runtime.Stats {
		t.Helper()
		st, err := h.rt.Stats(h.ctx, id)
		if err != nil {
			t.Fatalf("Stats(%s): %v", id, err)
		}
		return st
	}
	first := sample(limited.ID)
	t.Logf("first sample: %+v", first)
	if first.Read.IsZero() || time.Since(first.Read) > time.Minute || time.Until(first.Read) > time.Minute {
		t.Errorf("Read = %v, want about now", first.Read)
	}
	if got, want := first.Memory.Limit, uint64(limited.MemoryLimitMiB)*mib; got != want {
		t.Errorf("memory limit = %d, want the spec's %d", got, want)
	}
	if first.Memory.Usage < 8*mib || first.Memory.Usage > first.Memory.Limit {
		t.Errorf("memory usage = %d after allocating 8 MiB under a %d limit", first.Memory.Usage, first.Memory.Limit)
	}
	if first.Pids.Current < 1 || first.Pids.Limit != uint64(limited.PidsLimit) {
		t.Errorf("pids = %+v, want current ≥ 1, limit %d", first.Pids, limited.PidsLimit)
	}
	if first.CPU.OnlineCPUs < 1 || first.CPU.SystemNs == 0 {
		t.Errorf("host CPU = %d online, %d ns, want both > 0", first.CPU.OnlineCPUs, first.CPU.SystemNs)
	}
	if first.CPU.UserNs+first.CPU.KernelNs > first.CPU.TotalNs+uint64(time.Second) {
		t.Errorf("CPU user %d + kernel %d ns far exceed the total %d", first.CPU.UserNs, first.CPU.KernelNs, first.CPU.TotalNs)
	}
	// A container in a namespace of its own with no network ("none")
	// reports no interface: loopback is left out.
	if first.Networks == nil || len(first.Networks) != 0 {
		t.Errorf("networks of a container with loopback only = %v, want empty", first.Networks)
	}
	second := sample(limited.ID)
	if second.CPU.TotalNs < first.CPU.TotalNs || second.CPU.SystemNs < first.CPU.SystemNs || second.Read.Before(first.Read) {
		t.Errorf("counters went backwards: %+v then %+v", first.CPU, second.CPU)
	}

	host := sample(unlimited.ID)
	if host.Memory.Limit == 0 || host.Memory.Limit == ^uint64(0) || host.Memory.Limit < 64*mib {
		t.Errorf("memory limit without a limit = %d, want the host's memory", host.Memory.Limit)
	}
	if host.Networks != nil {
		t.Errorf("networks with the host network = %v, want nil (they are the host's)", host.Networks)
	}

	created := h.create(h.spec("sleep"))
	_, err := h.rt.Stats(h.ctx, created)
	wantKind(t, "Stats of a created container", err, errdefs.ErrFailedPrecondition)
	if err := h.rt.Stop(h.ctx, limited.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_, err = h.rt.Stats(h.ctx, limited.ID)
	wantKind(t, "Stats of a stopped container", err, errdefs.ErrFailedPrecondition)
}

func (s *suite) testProcessDefaults(t *testing.T, h *harness) {
	spec := h.spec("info")
	ex, log := h.runToExit(spec)
	if ex.Code != 0 {
		t.Fatalf("info exited %d; log:\n%s", ex.Code, log)
	}
	h.wantLines(spec.LogPath,
		"uid=0", "gid=0", "cwd=/",
		"hostname="+runtime.DefaultHostname(spec.ID),
		fmt.Sprintf("nofile-hard=%d", runtime.DefaultNofileLimit()),
		fmt.Sprintf("capeff=%016x", runtime.CapabilityMask(runtime.DefaultCapabilities)),
		"nonewprivs=1", "seccomp=2",
		"env PATH=/usr/local/bin:/usr/bin:/bin", "env HOME=/root",
	)
}

func (s *suite) testProcessConfig(t *testing.T, h *harness) {
	spec := h.spec("info", "x", "y")
	spec.Env = []string{"A=1", "B=two words", "PATH=/bin"}
	spec.User = "nobody"
	spec.WorkingDir = "/tmp"
	spec.Hostname = "probe-host"
	spec.Ulimits = []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}
	spec.CPUShares = 512
	spec.PidsLimit = 64
	spec.AllowNewPrivileges = true
	ex, log := h.runToExit(spec)
	if ex.Code != 0 {
		t.Fatalf("info exited %d; log:\n%s", ex.Code, log)
	}
	h.wantLines(spec.LogPath,
		"uid=65534", "gid=65534", "cwd=/tmp", "hostname=probe-host", "nofile-hard=2048",
		"capeff=0000000000000000", // a non-root user keeps no effective capabilities
		"nonewprivs=0", "seccomp=2", "args=x y",
		"env A=1", "env B=two words", "env PATH=/bin", "env HOME=/home/nobody",
	)

	spec = h.spec("info")
	spec.User = "65534:0"
	spec.Privileged = true
	ex, log = h.runToExit(spec)
	if ex.Code != 0 {
		t.Fatalf("info exited %d; log:\n%s", ex.Code, log)
	}
	h.wantLines(spec.LogPath, "uid=65534", "gid=0", "seccomp=0")
}

func (s *suite) testCapabilities(t *testing.T, h *harness) {
	for _, tc := range []struct {
		add, drop []string
	}{
		{add: []string{"NET_ADMIN"}, drop: []string{"NET_RAW", "CAP_MKNOD"}},
		{add: []string{"CAP_SYS_PTRACE"}, drop: []string{"ALL"}},
	} {
		spec := h.spec("info")
		spec.CapAdd, spec.CapDrop = tc.add, tc.drop
		ex, log := h.runToExit(spec)
		if ex.Code != 0 {
			t.Fatalf("info exited %d; log:\n%s", ex.Code, log)
		}
		caps, err := runtime.EffectiveCapabilities(tc.add, tc.drop)
		if err != nil {
			t.Fatal(err)
		}
		h.wantLines(spec.LogPath, fmt.Sprintf("capeff=%016x", runtime.CapabilityMask(caps)))
	}
}

func (s *suite) testEntrypoint(t *testing.T, h *harness) {
	// A spec entrypoint drops the image's command.
	spec := h.spec()
	spec.Entrypoint = []string{"/probe", "print", "from-entrypoint"}
	ex, log := h.runToExit(spec)
	if ex.Code != 0 {
		t.Errorf("exit %d; log:\n%s", ex.Code, log)
	}
	h.wantLines(spec.LogPath, "stdout: from-entrypoint", "stderr: from-entrypoint")
	if strings.Contains(log, "serve") || strings.Contains(log, "8080") {
		t.Errorf("the image's command leaked into the arguments:\n%s", log)
	}
	// A spec command follows the image's entrypoint.
	spec = h.spec("print", "a", "b")
	ex, log = h.runToExit(spec)
	if ex.Code != 0 {
		t.Errorf("exit %d; log:\n%s", ex.Code, log)
	}
	h.wantLines(spec.LogPath, "stdout: a", "stderr: a", "stdout: b", "stderr: b")
	// No command: the image's (serve).
	spec = h.spec()
	id := h.start(spec)
	h.waitLog(spec.LogPath, "ready: listening on :8080")
	if err := h.rt.Stop(h.ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) testFilesystem(t *testing.T, h *harness) {
	run := func(spec runtime.ContainerSpec) (int, string) {
		t.Helper()
		ex, log := h.runToExit(spec)
		return ex.Code, log
	}
	spec := h.spec("touch", "/written")
	if code, log := run(spec); code != 0 {
		t.Errorf("touch on a writable rootfs exited %d; log:\n%s", code, log)
	}
	spec = h.spec("touch", "/written")
	spec.ReadonlyRootfs = true
	if code, _ := run(spec); code != 1 {
		t.Errorf("touch on a read-only rootfs exited %d, want 1", code)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("hi from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec = h.spec("touch", "/data/new")
	spec.ReadonlyRootfs = true
	spec.Mounts = []runtime.Mount{{Source: dir, Destination: "/data"}}
	if code, log := run(spec); code != 0 {
		t.Errorf("touch in a writable mount on a read-only rootfs exited %d; log:\n%s", code, log)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err != nil {
		t.Errorf("the file written into the mount is not on the host: %v", err)
	}
	spec = h.spec("touch", "/data/other")
	spec.Mounts = []runtime.Mount{{Source: dir, Destination: "/data", ReadOnly: true}}
	if code, _ := run(spec); code != 1 {
		t.Errorf("touch in a read-only mount exited %d, want 1", code)
	}
	spec = h.spec("cat", "/data/hello")
	spec.Mounts = []runtime.Mount{{Source: dir, Destination: "/data", ReadOnly: true}}
	if code, log := run(spec); code != 0 || !strings.Contains(log, "hi from the host") {
		t.Errorf("cat of a mounted file: exit %d, log:\n%s", code, log)
	}

	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("10.9.8.7 special-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec = h.spec("cat", "/etc/hosts")
	spec.HostsFile = hosts
	if code, log := run(spec); code != 0 || !strings.Contains(log, "special-host") {
		t.Errorf("cat /etc/hosts with HostsFile: exit %d, log:\n%s", code, log)
	}

	// Masked paths read empty, unlike their unmasked neighbours.
	for _, p := range []string{"/proc/interrupts", "/proc/keys", "/proc/timer_list"} {
		spec = h.spec("cat", p)
		if code, log := run(spec); code != 0 || log != "" {
			t.Errorf("cat %s (masked): exit %d, log %q; want 0 and nothing", p, code, log)
		}
	}
	spec = h.spec("cat", "/proc/version")
	if code, log := run(spec); code != 0 || log == "" {
		t.Errorf("cat /proc/version (not masked): exit %d, log %q; want 0 and content", code, log)
	}
}

// testHostNetwork serves HTTP on the host's network, the one mode in which
// a container is reachable without the network package.
func (s *suite) testHostNetwork(t *testing.T, h *harness) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	spec := h.spec("serve", "-port", port)
	spec.NetNSPath = runtime.NetNSHost
	spec.Env = []string{"GREETING=hi"}
	id := h.create(spec)
	ch, err := h.rt.Wait(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Start(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	h.waitLog(spec.LogPath, "ready")
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://127.0.0.1:" + port + path)
		if err != nil {
			st, _ := h.rt.Inspect(h.ctx, id)
			t.Fatalf("GET %s: %v; container %+v, log:\n%s", path, err, st, h.readLog(spec.LogPath))
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	host, _ := os.Hostname()
	if body := get("/"); body != "hello from "+host+"\n" {
		t.Errorf("GET / = %q, want the host's hostname %q", body, host)
	}
	if body := get("/env"); !strings.Contains(body, "GREETING=hi") {
		t.Errorf("GET /env = %q", body)
	}
	// The process may exit before its answer is out; only the exit counts.
	if resp, err := http.Get("http://127.0.0.1:" + port + "/exit?code=7"); err == nil {
		resp.Body.Close()
	}
	if ex := h.recv(ch, id); ex.Code != 7 {
		t.Errorf("exit after /exit?code=7 = %+v", ex)
	}
}

func (s *suite) testList(t *testing.T, h *harness) {
	group := randomID()
	var want []string
	for _, role := range []string{"a", "b", "b"} {
		spec := h.spec("sleep")
		spec.Labels = map[string]string{"berth.test/group": group, "role": role, "task-arn": "arn:aws:ecs:us-east-1:000000000000:task/c/" + group}
		h.create(spec)
		want = append(want, spec.ID)
	}
	started := want[0]
	if err := h.rt.Start(h.ctx, started); err != nil {
		t.Fatal(err)
	}
	ids := func(labels map[string]string) []string {
		t.Helper()
		got, err := h.rt.List(h.ctx, labels)
		if err != nil {
			t.Fatalf("List(%v): %v", labels, err)
		}
		var out []string
		for _, st := range got {
			out = append(out, st.ID)
			if st.Labels["berth.test/group"] != group || len(st.Labels) != 3 {
				t.Errorf("List: labels of %s = %v, want exactly the spec's", st.ID, st.Labels)
			}
		}
		return out
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, ids(map[string]string{"berth.test/group": group})); diff != "" {
		t.Errorf("List by group (-want +got):\n%s", diff)
	}
	if got := ids(map[string]string{"berth.test/group": group, "role": "b"}); len(got) != 2 {
		t.Errorf("List by group and role b = %v, want 2", got)
	}
	arn := "arn:aws:ecs:us-east-1:000000000000:task/c/" + group
	if got := ids(map[string]string{"task-arn": arn, "role": "a"}); len(got) != 1 {
		t.Errorf("List by a label holding ':' and '/' = %v, want 1", got)
	}
	if got := ids(map[string]string{"berth.test/group": "none-" + group}); len(got) != 0 {
		t.Errorf("List by an unused label = %v", got)
	}
	all, err := h.rt.List(h.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, st := range all {
		if st.Labels["berth.test/group"] == group {
			n++
			if st.ID == started && st.State != runtime.StateRunning {
				t.Errorf("List: started container %s is %s", st.ID, st.State)
			}
		}
	}
	if n != 3 {
		t.Errorf("List(nil) holds %d of the group's 3 containers", n)
	}
}

func (s *suite) testRemove(t *testing.T, h *harness) {
	spec := h.spec("sleep")
	id := h.start(spec)
	h.waitLog(spec.LogPath, "ready")
	wantKind(t, "Remove of a running container", h.rt.Remove(h.ctx, id), errdefs.ErrFailedPrecondition)
	if err := h.rt.Stop(h.ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Remove(h.ctx, id); err != nil {
		t.Fatalf("Remove of a stopped container: %v", err)
	}
	_, err := h.rt.Inspect(h.ctx, id)
	wantKind(t, "Inspect after Remove", err, errdefs.ErrNotFound)
	wantKind(t, "second Remove", h.rt.Remove(h.ctx, id), errdefs.ErrNotFound)
	if _, err := os.Stat(spec.LogPath); err != nil {
		t.Errorf("Remove deleted the log file: %v", err)
	}
	got, err := h.rt.List(h.ctx, map[string]string{"berth.test/run": s.run})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range got {
		if st.ID == id {
			t.Error("List still shows the removed container")
		}
	}
	// The ID can be used again.
	spec.LogPath = filepath.Join(h.logDir, "again.log")
	if ex, log := h.runToExit(withCommand(spec, "exit", "4")); ex.Code != 4 {
		t.Errorf("reused ID exited %d; log:\n%s", ex.Code, log)
	}
}

func withCommand(s runtime.ContainerSpec, command ...string) runtime.ContainerSpec {
	s.Command = command
	return s
}

func (s *suite) testConcurrent(t *testing.T, h *harness) {
	const n = 6
	var wg sync.WaitGroup
	codes := make([]int, n)
	specs := make([]runtime.ContainerSpec, n)
	for i := range specs {
		specs[i] = h.spec("exit", fmt.Sprint(i+10))
		h.mu.Lock()
		h.ids = append(h.ids, specs[i].ID)
		h.mu.Unlock()
	}
	errs := make(chan error, n)
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = -1
			if err := h.rt.Create(h.ctx, specs[i]); err != nil {
				errs <- err
				return
			}
			ch, err := h.rt.Wait(h.ctx, specs[i].ID)
			if err != nil {
				errs <- err
				return
			}
			if err := h.rt.Start(h.ctx, specs[i].ID); err != nil {
				errs <- err
				return
			}
			select {
			case ex, ok := <-ch:
				if ok {
					codes[i] = ex.Code
				}
			case <-time.After(waitFor):
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range codes {
		if c != i+10 {
			t.Errorf("container %d exited %d, want %d", i, c, i+10)
		}
	}
}

// testAdoption imitates an agent restart: a second client sees, waits for
// and stops what the first created, including a container that exited while
// no client was watching.
func (s *suite) testAdoption(t *testing.T, h *harness) {
	first := s.newRuntime(t)
	sleeper := h.spec("sleep")
	stopper := h.spec("sigterm-exit", "7")
	quitter := h.spec("exit", "4", "300ms")
	for _, spec := range []runtime.ContainerSpec{sleeper, stopper, quitter} {
		h.mu.Lock()
		h.ids = append(h.ids, spec.ID)
		h.mu.Unlock()
		if err := first.Create(h.ctx, spec); err != nil {
			t.Fatal(err)
		}
		if err := first.Start(h.ctx, spec.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.waitLog(sleeper.LogPath, "ready")
	h.waitLog(stopper.LogPath, "ready")
	orphaned, err := first.Wait(h.ctx, sleeper.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case ex, ok := <-orphaned:
		if ok {
			t.Errorf("a Wait of a closed client yielded %+v", ex)
		}
	case <-time.After(waitFor):
		t.Error("a Wait of a closed client stayed open")
	}
	second := s.newRuntime(t)
	defer second.Close()
	// Let the quitter exit while no client waits for it; Inspect only looks.
	deadline := time.Now().Add(waitFor)
	for h.inspect(second, quitter.ID).State != runtime.StateStopped {
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not exit within %v", quitter.ID, waitFor)
		}
		<-time.After(20 * time.Millisecond)
	}
	st, err := second.Inspect(h.ctx, sleeper.ID)
	if err != nil || st.State != runtime.StateRunning || st.Pid <= 0 {
		t.Errorf("Inspect of an adopted running container = %+v, %v", st, err)
	}
	if ex := h.wait(second, quitter.ID); ex.Code != 4 {
		t.Errorf("adopted container that exited unobserved: %+v, want code 4", ex)
	}
	if st := h.inspect(second, quitter.ID); st.State != runtime.StateStopped || st.ExitCode != 4 {
		t.Errorf("Inspect of it = %+v", st)
	}
	got, err := second.List(h.ctx, map[string]string{"berth.test/run": s.run})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, st := range got {
		if st.ID == sleeper.ID || st.ID == stopper.ID || st.ID == quitter.ID {
			seen++
		}
	}
	if seen != 3 {
		t.Errorf("the second client lists %d of the 3 containers", seen)
	}
	if err := second.Stop(h.ctx, stopper.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if ex := h.wait(second, stopper.ID); ex.Code != 7 {
		t.Errorf("adopted container stopped with %+v, want 7", ex)
	}
	ch, err := second.Wait(h.ctx, sleeper.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Stop(h.ctx, sleeper.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if ex := h.recv(ch, sleeper.ID); ex.Code != 0 {
		t.Errorf("adopted sleeper exited %+v, want 0", ex)
	}
}
