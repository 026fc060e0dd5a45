package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// blobsOf returns the digests of an image's config, layers and manifest.
func blobsOf(t *testing.T, img v1.Image) []string {
	t.Helper()
	var out []string
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, cfg.String(), mustDigest(t, img).String())
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}

func (e *env) blobOnDisk(d string) bool {
	_, err := os.Stat(filepath.Join(e.root, filepath.FromSlash(blobDataPath(digest.Digest(d)))))
	return err == nil
}

// pullAll pulls an image and reads every layer, which go-containerregistry
// verifies against its digest.
func (e *env) pullAll(ref string) error {
	img, err := remote.Image(e.ref(ref), e.remoteAuth())
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestCollectRemovesOnlyUnreferencedOldBlobs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keep, gone := mustImage(t, 1024, 2), mustImage(t, 1024, 2)
	if err := e.push("team/app:keep", keep); err != nil {
		t.Fatal(err)
	}
	if err := e.push("other:gone", gone); err != nil {
		t.Fatal(err)
	}
	// An untagged image stays: ECR lists it, lifecycle policies expire it.
	untagged := mustImage(t, 512, 1)
	if err := e.push("team/app@"+mustDigest(t, untagged).String(), untagged); err != nil {
		t.Fatal(err)
	}
	orphan, err := random.Layer(700, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(e.ref("other:x").Context(), orphan, e.remoteAuth()); err != nil {
		t.Fatal(err)
	}
	orphanDigest, _ := orphan.Digest()
	if _, err := e.reg.DeleteImage(ctx, "other", ImageRef{Tag: "gone"}); err != nil {
		t.Fatal(err)
	}
	doomed := append(blobsOf(t, gone), orphanDigest.String())

	st, err := e.reg.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Deleted != 0 || st.Spared != len(doomed) {
		t.Fatalf("young blobs: %+v, want all %d spared", st, len(doomed))
	}

	e.clock.Advance(DefaultGCGracePeriod + time.Hour)
	st, err = e.reg.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Deleted != len(doomed) || st.Spared != 0 {
		t.Fatalf("old blobs: %+v, want %d deleted", st, len(doomed))
	}
	for _, d := range doomed {
		if e.blobOnDisk(d) {
			t.Errorf("unreferenced blob %s survived", d)
		}
	}
	for _, d := range append(blobsOf(t, keep), blobsOf(t, untagged)...) {
		if !e.blobOnDisk(d) {
			t.Errorf("referenced blob %s was removed", d)
		}
	}
	if err := e.pullAll("team/app:keep"); err != nil {
		t.Fatalf("kept image: %v", err)
	}
	if err := e.pullAll("team/app@" + mustDigest(t, untagged).String()); err != nil {
		t.Fatalf("untagged image: %v", err)
	}
	// The layer links went with the blobs: the repository no longer has them.
	if resp := e.request("HEAD", "/v2/other/blobs/"+orphanDigest.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("orphan still available: %d", resp.StatusCode)
	}
	// And a push of the deleted image works again.
	if err := e.push("other:gone", gone); err != nil {
		t.Fatalf("re-push: %v", err)
	}
	if err := e.pullAll("other:gone"); err != nil {
		t.Fatal(err)
	}
}

func TestCollectPurgesStaleUploads(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UploadMaxAge = time.Hour })
	loc := e.startUpload(t)
	st, err := e.reg.Collect(context.Background())
	if err != nil || st.UploadsPurged != 0 {
		t.Fatalf("fresh upload: %+v %v", st, err)
	}
	if resp := e.request("GET", loc, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("fresh upload gone: %d", resp.StatusCode)
	}
	// startedat is written from the wall clock; the collector judges by its
	// own clock.
	e.clock.Advance(2 * time.Hour)
	st, err = e.reg.Collect(context.Background())
	if err != nil || st.UploadsPurged != 1 {
		t.Fatalf("stale upload: %+v %v", st, err)
	}
	if resp := e.request("GET", loc, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("stale upload still there: %d", resp.StatusCode)
	}
}

// TestCollectWhilePushing runs collections back to back while images are
// pushed, with the collector's clock past the grace period so that every
// blob on disk looks old to it: only the record of blobs in use keeps
// the pushes whole. One push reuses the blobs of a deleted image, which
// the client finds present (HEAD) and does not upload again.
func TestCollectWhilePushing(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reused := mustImage(t, 2048, 3)
	if err := e.push("team/app:old", reused); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.DeleteImage(ctx, "team/app", ImageRef{Tag: "old"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(DefaultGCGracePeriod + time.Hour)

	var runs atomic.Int64
	var wg sync.WaitGroup
	collectErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := e.reg.Collect(ctx); err != nil && ctx.Err() == nil {
				collectErr <- err
				return
			}
			runs.Add(1)
		}
	}()

	var pushed []string
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; len(pushed) < 6 || runs.Load() < 5; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("pushed %d images while %d collections ran", len(pushed), runs.Load())
		}
		ref := fmt.Sprintf("team/app:p%d", i)
		img := reused
		if i > 0 {
			img = mustImage(t, 4096, 3)
		}
		if err := e.push(ref, img); err != nil {
			t.Fatalf("push %s during collection: %v", ref, err)
		}
		pushed = append(pushed, ref)
	}
	cancel()
	wg.Wait()
	select {
	case err := <-collectErr:
		t.Fatalf("collect: %v", err)
	default:
	}
	// One more collection after the pushes: everything pushed is referenced.
	if _, err := e.reg.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ref := range pushed {
		if err := e.pullAll(ref); err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
	}
}

func TestCollector(t *testing.T) {
	e := newEnv(t)
	if _, err := e.reg.StartCollector(context.Background(), 0); err == nil {
		t.Fatal("zero interval accepted")
	}
	orphan, _ := random.Layer(300, types.DockerLayer)
	if err := remote.WriteLayer(e.ref("other:x").Context(), orphan, e.remoteAuth()); err != nil {
		t.Fatal(err)
	}
	d, _ := orphan.Digest()
	e.clock.Advance(DefaultGCGracePeriod + time.Hour)
	c, err := e.reg.StartCollector(context.Background(), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.blobOnDisk(d.String()) {
		if time.Now().After(deadline) {
			t.Fatal("the scheduled collector never removed the orphan")
		}
		<-time.After(5 * time.Millisecond) // between polls
	}
	c.Stop()
	c.Stop() // idempotent
	if err := e.reg.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.StartCollector(context.Background(), time.Second); err == nil {
		t.Fatal("collector started on a closed registry")
	}
}
