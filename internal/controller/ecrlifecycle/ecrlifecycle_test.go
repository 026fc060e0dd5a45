package ecrlifecycle

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

// The registry is what production hands the sweeper.
var _ Images = (*registry.Registry)(nil)

var start = time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)

// fakeImages is an in-memory image store.
type fakeImages struct {
	mu       sync.Mutex
	repos    map[string][]ecr.Image
	deleted  []string
	failList string // a repository whose listing fails
}

func (f *fakeImages) ListImages(_ context.Context, repo string) ([]ecr.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if repo == f.failList {
		return nil, errdefs.Internal(errors.New("disk trouble"))
	}
	return slices.Clone(f.repos[repo]), nil
}

func (f *fakeImages) DeleteImage(_ context.Context, repo string, ref ecr.ImageRef) (ecr.ImageRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	imgs := f.repos[repo]
	i := slices.IndexFunc(imgs, func(img ecr.Image) bool { return img.Digest == ref.Digest })
	if i < 0 {
		return ecr.ImageRef{}, ecr.ImageNotFound(ref.Digest, repo, "123456789012")
	}
	f.repos[repo] = slices.Delete(imgs, i, i+1)
	f.deleted = append(f.deleted, repo+"@"+ref.Digest)
	return ref, nil
}

func (f *fakeImages) has(repo, digest string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.repos[repo], func(img ecr.Image) bool { return img.Digest == digest })
}

func (f *fakeImages) add(repo string, img ecr.Image) {
	f.mu.Lock()
	f.repos[repo] = append(f.repos[repo], img)
	f.mu.Unlock()
}

func image(digest string, pushed time.Time, tags ...string) ecr.Image {
	return ecr.Image{Digest: digest, Tags: tags, PushedAt: pushed}
}

func putRepo(t *testing.T, st store.Store, name, policy string) {
	t.Helper()
	r := ecr.NewRepository("us-east-1", "123456789012", "registry.test", name, start)
	r.LifecyclePolicy = policy
	op, err := store.PutJSON(ecr.RepositoryKey(name), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Txn(context.Background(), nil, []store.Op{op}); err != nil {
		t.Fatal(err)
	}
}

const (
	// untaggedAfterTwoDays expires untagged images pushed more than two
	// days ago.
	untaggedAfterTwoDays = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":2},"action":{"type":"expire"}}]}`
	// keepOne keeps the newest image.
	keepOne = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
)

func TestSweep(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	putRepo(t, st, "team/aging", untaggedAfterTwoDays)
	putRepo(t, st, "team/counted", keepOne)
	putRepo(t, st, "no-policy", "")
	imgs := &fakeImages{repos: map[string][]ecr.Image{
		"team/aging":   {image("sha256:u-old", start), image("sha256:u-new", start.Add(36*time.Hour)), image("sha256:t-old", start, "v1")},
		"team/counted": {image("sha256:c1", start, "a"), image("sha256:c2", start.Add(time.Hour)), image("sha256:c3", start.Add(2*time.Hour), "b")},
		"no-policy":    {image("sha256:n1", start)},
	}}
	fc := clock.NewFake(start.Add(24 * time.Hour))
	s := New(Config{Store: st, Images: imgs, Clock: fc})
	ctx := context.Background()

	// A day in: only the count rule has work.
	if n, err := s.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("first sweep: %d, %v", n, err)
	}
	for _, d := range []string{"sha256:c1", "sha256:c2"} {
		if imgs.has("team/counted", d) {
			t.Errorf("%s kept", d)
		}
	}
	if !imgs.has("team/counted", "sha256:c3") || !imgs.has("team/aging", "sha256:u-old") {
		t.Error("an image within its policy was deleted")
	}
	// Nothing more to do at the same time: sweeps are idempotent.
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("repeated sweep: %d, %v", n, err)
	}
	// Past two days the old untagged image goes; the tagged one and the
	// younger untagged one stay, and so does every image without a policy.
	fc.Set(start.Add(48*time.Hour + time.Second))
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after two days: %d, %v", n, err)
	}
	if imgs.has("team/aging", "sha256:u-old") || !imgs.has("team/aging", "sha256:u-new") || !imgs.has("team/aging", "sha256:t-old") || !imgs.has("no-policy", "sha256:n1") {
		t.Errorf("after two days: %+v", imgs.repos)
	}
	fc.Set(start.Add(36*time.Hour + 49*time.Hour))
	if n, err := s.Sweep(ctx); err != nil || n != 1 || imgs.has("team/aging", "sha256:u-new") {
		t.Fatalf("sweep after the younger one's two days: %d, %v", n, err)
	}
}

func TestSweepGoesOnPastFailures(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	putRepo(t, st, "broken", keepOne)
	putRepo(t, st, "fine", keepOne)
	if _, err := st.Txn(context.Background(), nil, []store.Op{store.Put(ecr.RepositoryKey("junk"), []byte("{"))}); err != nil {
		t.Fatal(err)
	}
	imgs := &fakeImages{failList: "broken", repos: map[string][]ecr.Image{
		"fine": {image("sha256:f1", start), image("sha256:f2", start.Add(time.Hour))},
	}}
	s := New(Config{Store: st, Images: imgs, Clock: clock.NewFake(start)})
	n, err := s.Sweep(context.Background())
	if n != 1 || imgs.has("fine", "sha256:f1") {
		t.Errorf("the healthy repository was not swept: %d", n)
	}
	if err == nil {
		t.Error("the failures were not reported")
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	putRepo(t, st, "app", keepOne)
	imgs := &fakeImages{repos: map[string][]ecr.Image{"app": {image("sha256:a1", start), image("sha256:a2", start.Add(time.Hour))}}}
	s := New(Config{Store: st, Images: imgs, Clock: clock.NewFake(start.Add(time.Hour)), Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for imgs.has("app", "sha256:a1") {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep")
		}
		runtime.Gosched()
	}
	// A newer image pushed later expires the older one at a later tick.
	imgs.add("app", image("sha256:a3", start.Add(2*time.Hour)))
	for imgs.has("app", "sha256:a2") {
		if time.Now().After(deadline) {
			t.Fatal("Run swept only once")
		}
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestDefaults(t *testing.T) {
	s := New(Config{Store: memstore.New(), Images: &fakeImages{}})
	if s.interval != DefaultInterval || s.clock == nil || s.log == nil {
		t.Errorf("defaults: %+v", s)
	}
}
