package taskreaper

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

var start = time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)

func putJSON(t *testing.T, st store.Store, key string, v any) {
	t.Helper()
	op, err := store.PutJSON(key, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Txn(context.Background(), nil, []store.Op{op}); err != nil {
		t.Fatal(err)
	}
}

func task(id, last string, stoppedAt *time.Time) domain.TaskRecord {
	t := domain.TaskRecord{ID: id, Cluster: "prod", InstanceID: "inst"}
	t.Task.LastStatus = aws.String(last)
	t.Task.StoppedAt = stoppedAt
	return t
}

func exists(t *testing.T, st store.Store, key string) bool {
	t.Helper()
	_, err := st.Get(context.Background(), key)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// seed writes records at start: a task stopped then (expires with the
// retention), one stopped 50 minutes later, a running one, an instance
// deregistered at start, an active one, a token that expires at start+2h,
// and a record that is not JSON.
func seed(t *testing.T, st store.Store) {
	t.Helper()
	putJSON(t, st, domain.TaskKey("prod", "old"), task("old", domain.TaskStatusStopped, aws.Time(start)))
	putJSON(t, st, domain.InstanceTaskKey("prod", "inst", "old"), struct{}{})
	putJSON(t, st, domain.TaskKey("prod", "recent"), task("recent", domain.TaskStatusStopped, aws.Time(start.Add(50*time.Minute))))
	putJSON(t, st, domain.TaskKey("prod", "running"), task("running", domain.TaskStatusRunning, nil))
	putJSON(t, st, domain.ContainerInstanceKey("prod", "gone"), domain.ContainerInstance{ID: "gone", Status: domain.InstanceStatusInactive, DeregisteredAt: aws.Time(start)})
	putJSON(t, st, domain.ContainerInstanceKey("prod", "live"), domain.ContainerInstance{ID: "live", Status: domain.InstanceStatusActive})
	putJSON(t, st, domain.ClientTokenKey("RunTask", "tok"), domain.ClientTokenRecord{ExpiresAt: start.Add(2 * time.Hour)})
	if _, err := st.Txn(context.Background(), nil, []store.Op{store.Put(domain.TaskKey("prod", "junk"), []byte("{"))}); err != nil {
		t.Fatal(err)
	}
}

func TestSweep(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	seed(t, st)
	fc := clock.NewFake(start.Add(30 * time.Minute))
	r := New(Config{Store: st, Clock: fc, Retention: time.Hour})
	ctx := context.Background()

	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep within the retention: %d, %v", n, err)
	}
	fc.Set(start.Add(time.Hour + time.Second))
	if n, err := r.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("sweep after an hour: %d, %v", n, err)
	}
	for key, want := range map[string]bool{
		domain.TaskKey("prod", "old"):                    false,
		domain.InstanceTaskKey("prod", "inst", "old"):    false,
		domain.TaskKey("prod", "recent"):                 true,
		domain.TaskKey("prod", "running"):                true,
		domain.TaskKey("prod", "junk"):                   true,
		domain.ContainerInstanceKey("prod", "gone"):      false,
		domain.ContainerInstanceKey("prod", "live"):      true,
		domain.ClientTokenKey("RunTask", "tok"):          true,
		domain.ContainerInstanceKey("prod", "not there"): false,
	} {
		if got := exists(t, st, key); got != want {
			t.Errorf("%s exists = %v, want %v", key, got, want)
		}
	}
	fc.Set(start.Add(2 * time.Hour))
	if n, err := r.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("sweep after two hours: %d, %v", n, err)
	}
	if exists(t, st, domain.TaskKey("prod", "recent")) || exists(t, st, domain.ClientTokenKey("RunTask", "tok")) {
		t.Error("the later stopped task or the expired token is still there")
	}
	if !exists(t, st, domain.TaskKey("prod", "running")) {
		t.Error("a running task was removed")
	}
}

// racingStore changes a key between the reaper's List and its delete.
type racingStore struct {
	store.Store
	once sync.Once
	key  string
	t    *testing.T
}

func (s *racingStore) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	s.once.Do(func() {
		rec := task("old", domain.TaskStatusStopped, aws.Time(start))
		rec.Task.Version = 9
		putJSON(s.t, s.Store, s.key, rec)
	})
	return s.Store.Txn(ctx, conds, ops)
}

func TestSweepSkipsChangedRecords(t *testing.T) {
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	key := domain.TaskKey("prod", "old")
	putJSON(t, mem, key, task("old", domain.TaskStatusStopped, aws.Time(start)))
	st := &racingStore{Store: mem, key: key, t: t}
	r := New(Config{Store: st, Clock: clock.NewFake(start.Add(2 * time.Hour))})
	if n, err := r.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if !exists(t, mem, key) {
		t.Fatal("a record changed since it was listed was deleted")
	}
	if n, err := r.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("next sweep: %d, %v", n, err)
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	seed(t, st)
	r := New(Config{Store: st, Clock: clock.NewFake(start.Add(3 * time.Hour)), Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for exists(t, st, domain.TaskKey("prod", "recent")) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep")
		}
		runtime.Gosched()
	}
	// A record stopped later is swept by a later tick.
	putJSON(t, st, domain.TaskKey("prod", "later"), task("later", domain.TaskStatusStopped, aws.Time(start)))
	for exists(t, st, domain.TaskKey("prod", "later")) {
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
	r := New(Config{Store: memstore.New()})
	if r.retention != DefaultRetention || r.interval != DefaultInterval || r.clock == nil || r.log == nil {
		t.Errorf("defaults: %+v", r)
	}
}

// A service's task takes its service → task index key with it; a running
// task of the service keeps its own.
func TestSweepRemovesServiceTaskIndex(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	for _, tc := range []struct {
		id, last string
		at       *time.Time
	}{{"old", domain.TaskStatusStopped, aws.Time(start)}, {"live", domain.TaskStatusRunning, nil}} {
		rec := task(tc.id, tc.last, tc.at)
		rec.Task.Group = aws.String("service:api")
		putJSON(t, st, domain.TaskKey("prod", tc.id), rec)
		putJSON(t, st, domain.ServiceTaskKey("prod", "api", tc.id), struct{}{})
	}
	r := New(Config{Store: st, Clock: clock.NewFake(start.Add(2 * time.Hour))})
	if n, err := r.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if exists(t, st, domain.ServiceTaskKey("prod", "api", "old")) || exists(t, st, domain.TaskKey("prod", "old")) {
		t.Error("the reaped task's record or index key is still there")
	}
	if !exists(t, st, domain.ServiceTaskKey("prod", "api", "live")) {
		t.Error("a running task's index key was removed")
	}
}
