package fakeruntime_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/runtime/fakeruntime"
	"github.com/berth-dev/berth/internal/agent/runtime/runtimetest"
)

func TestConformance(t *testing.T) {
	machine := fakeruntime.New()
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return machine.NewClient() }, runtimetest.Options{})
}

func TestFakeHelpers(t *testing.T) {
	ctx := context.Background()
	rt := fakeruntime.New(
		fakeruntime.WithImage("local/app:v1", runtime.ImageConfig{Cmd: []string{"exit", "3"}}),
		fakeruntime.WithRemoteImage("remote/app:v1", fakeruntime.ProbeConfig),
	)
	defer rt.Close()

	// A local image runs with the verb shorthand as its command.
	spec := runtime.ContainerSpec{ID: "c1", Image: "local/app:v1", Labels: map[string]string{"a": "b"}}
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	ch, err := rt.Wait(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if ex := <-ch; ex.Code != 3 {
		t.Errorf("exit %d, want 3", ex.Code)
	}
	got := rt.Specs()["c1"]
	if got.Image != "local/app:v1" || got.Labels["a"] != "b" {
		t.Errorf("Specs recorded %+v", got)
	}

	// A remote image is pulled without a network, and counted.
	img, err := rt.EnsureImage(ctx, "remote/app:v1", runtime.PullOptions{})
	if err != nil || img.Cached || img.Ref != "docker.io/remote/app:v1" {
		t.Fatalf("EnsureImage(remote) = %+v, %v", img, err)
	}
	if _, err := rt.EnsureImage(ctx, "remote/app:v1", runtime.PullOptions{Behavior: runtime.PullOnce}); err != nil {
		t.Fatal(err)
	}
	if n := rt.Pulls("remote/app:v1"); n != 1 {
		t.Errorf("Pulls = %d, want 1 (once uses the local copy)", n)
	}

	// WithAnyImage: every reference pulls as the probe.
	anyRT := fakeruntime.New(fakeruntime.WithAnyImage())
	defer anyRT.Close()
	img, err = anyRT.EnsureImage(ctx, "127.0.0.1:1/whatever:v9", runtime.PullOptions{Behavior: runtime.PullAlways})
	if err != nil || img.Config.Entrypoint[0] != "/probe" {
		t.Fatalf("EnsureImage with WithAnyImage = %+v, %v", img, err)
	}
}

// FuzzImport feeds arbitrary bytes to the fake's image-archive decoder: it
// must return images or an error, never panic.
func FuzzImport(f *testing.F) {
	f.Add([]byte("not a tarball"))
	f.Add([]byte{})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: 2})
	_, _ = tw.Write([]byte("[]"))
	_ = tw.Close()
	f.Add(buf.Bytes())
	buf.Reset()
	tw = tar.NewWriter(&buf)
	m := `[{"Config":"c.json","RepoTags":["x/y:z"],"Layers":["l.tar"]}]`
	_ = tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(m))})
	_, _ = tw.Write([]byte(m))
	_ = tw.WriteHeader(&tar.Header{Name: "c.json", Mode: 0o644, Size: 2})
	_, _ = tw.Write([]byte("{}"))
	_ = tw.Close()
	f.Add(buf.Bytes())
	rt := fakeruntime.New()
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		imgs, err := rt.Import(context.Background(), p)
		if err == nil && len(imgs) == 0 {
			t.Error("Import succeeded without images")
		}
	})
}
