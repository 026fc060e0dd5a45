// Package taskreaper removes what ECS stops showing after a while: tasks
// STOPPED for longer than the retention (ECS keeps stopped tasks visible for
// at least an hour), container instances deregistered for longer than the
// retention, and expired RunTask clientToken records.
//
// It is level-driven: each sweep lists the records (through a store.Reader,
// in production the watch-fed cache) and deletes those past their time,
// each with a compare-and-swap on the mod revision it read, so a record that
// changed meanwhile is left for the next sweep. A sweep that fails is
// retried at the next interval; nothing depends on having seen an event.
// Several servers may run it at once: deletes are idempotent.
package taskreaper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/controller/periodic"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// Defaults.
const (
	DefaultRetention = time.Hour
	DefaultInterval  = time.Minute
)

// Config configures a Reaper.
type Config struct {
	// Store is listed and written; in production the cached store, so that
	// sweeps list from the watch-fed cache and write to etcd.
	Store     store.Store
	Clock     clock.Clock   // nil means the wall clock
	Retention time.Duration // 0 means DefaultRetention
	Interval  time.Duration // 0 means DefaultInterval
	Logger    *slog.Logger  // nil discards
}

// Reaper sweeps stopped tasks, deregistered instances and expired client
// tokens.
type Reaper struct {
	st        store.Store
	clock     clock.Clock
	retention time.Duration
	interval  time.Duration
	log       *slog.Logger
}

// New returns a Reaper.
func New(cfg Config) *Reaper {
	r := &Reaper{st: cfg.Store, clock: cfg.Clock, retention: cfg.Retention, interval: cfg.Interval, log: cfg.Logger}
	if r.clock == nil {
		r.clock = clock.Real{}
	}
	if r.retention <= 0 {
		r.retention = DefaultRetention
	}
	if r.interval <= 0 {
		r.interval = DefaultInterval
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return r
}

// Run sweeps at once and then every interval until ctx ends; it returns
// nil then. A failed sweep is logged and retried at the next interval.
func (r *Reaper) Run(ctx context.Context) error {
	periodic.Run(ctx, r.interval, r.log, "task reaper sweep", slog.LevelDebug, r.Sweep)
	return nil
}

// Sweep deletes every record past its time once and returns how many it
// deleted. Records that changed since they were listed are skipped.
func (r *Reaper) Sweep(ctx context.Context) (int, error) {
	cutoff := r.clock.Now().Add(-r.retention)
	now := r.clock.Now()
	total := 0
	var errs []error
	for _, s := range []struct {
		prefix  string
		expired func(store.KV) ([]store.Op, bool, error)
	}{
		{domain.AllTasksPrefix, func(kv store.KV) ([]store.Op, bool, error) { return stoppedTask(kv, cutoff) }},
		{domain.AllContainerInstancesPrefix, func(kv store.KV) ([]store.Op, bool, error) { return inactiveInstance(kv, cutoff) }},
		{domain.ClientTokensPrefix, func(kv store.KV) ([]store.Op, bool, error) { return expiredToken(kv, now) }},
	} {
		n, err := r.sweepPrefix(ctx, s.prefix, s.expired)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// sweepPrefix deletes the records under prefix that expired says are past
// their time, each with the extra ops expired returns, in its own
// compare-and-swap transaction.
func (r *Reaper) sweepPrefix(ctx context.Context, prefix string, expired func(store.KV) ([]store.Op, bool, error)) (int, error) {
	kvs, _, err := r.st.List(ctx, prefix)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	n := 0
	for _, kv := range kvs {
		extra, ok, err := expired(kv)
		if err != nil {
			r.log.Warn("task reaper skips an undecodable record", "key", kv.Key, "err", err)
			continue
		}
		if !ok {
			continue
		}
		_, err = r.st.Txn(ctx, []store.Cond{{Key: kv.Key, ModRevision: kv.ModRevision}}, append([]store.Op{store.Delete(kv.Key)}, extra...))
		switch {
		case err == nil:
			n++
		case errors.Is(err, errdefs.ErrConflict):
			// Changed since listed: the next sweep looks again.
		default:
			return n, fmt.Errorf("delete %s: %w", kv.Key, err)
		}
	}
	return n, nil
}

// stoppedTask: a task STOPPED before cutoff. Its instance index key is
// normally gone already (removed when it stopped); deleting it again is
// harmless. A service's task takes its service → task index key with it.
func stoppedTask(kv store.KV, cutoff time.Time) ([]store.Op, bool, error) {
	var t domain.TaskRecord
	if err := json.Unmarshal(kv.Value, &t); err != nil {
		return nil, false, err
	}
	if aws.ToString(t.Task.LastStatus) != domain.TaskStatusStopped || t.Task.StoppedAt == nil || !t.Task.StoppedAt.Before(cutoff) {
		return nil, false, nil
	}
	var extra []store.Op
	if t.InstanceID != "" {
		extra = append(extra, store.Delete(domain.InstanceTaskKey(t.Cluster, t.InstanceID, t.ID)))
	}
	if svc := domain.ServiceOfTask(aws.ToString(t.Task.Group)); svc != "" {
		// The service → task index lists the task while its record
		// exists; they go together.
		extra = append(extra, store.Delete(domain.ServiceTaskKey(t.Cluster, svc, t.ID)))
	}
	return extra, true, nil
}

// inactiveInstance: an instance deregistered before cutoff.
func inactiveInstance(kv store.KV, cutoff time.Time) ([]store.Op, bool, error) {
	var ci domain.ContainerInstance
	if err := json.Unmarshal(kv.Value, &ci); err != nil {
		return nil, false, err
	}
	ok := ci.Status == domain.InstanceStatusInactive && ci.DeregisteredAt != nil && ci.DeregisteredAt.Before(cutoff)
	return nil, ok, nil
}

// expiredToken: a clientToken record past its expiry.
func expiredToken(kv store.KV, now time.Time) ([]store.Op, bool, error) {
	var tok domain.ClientTokenRecord
	if err := json.Unmarshal(kv.Value, &tok); err != nil {
		return nil, false, err
	}
	return nil, !now.Before(tok.ExpiresAt), nil
}
