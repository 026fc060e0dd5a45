// Package leader elects one of several servers sharing a store to run a
// controller that must not run twice at once (the service scheduler would
// start tasks twice). The lease is one record in the store: the leader
// rewrites it every TTL/3 with a compare-and-swap; a contender takes it
// over only after seeing its revision unchanged for a whole TTL on its
// own clock, so no two clocks are compared. A leader that cannot renew
// for TTL/2 stops its controller before a contender may take over.
package leader

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// KeyPrefix holds one lease record per elected controller.
const KeyPrefix = "/v1/leases/"

// DefaultTTL is how long a silent leader keeps its lease.
const DefaultTTL = 15 * time.Second

// Lease is the record under KeyPrefix+name.
type Lease struct {
	Holder    string    `json:"holder"`
	RenewedAt time.Time `json:"renewedAt"` // informational: never compared across servers
}

// Config configures an election.
type Config struct {
	Store store.Store
	// Name names the lease (e.g. "service-controller").
	Name string
	// ID identifies this contender; unique per process.
	ID     string
	TTL    time.Duration // 0 means DefaultTTL
	Clock  clock.Clock   // nil means the wall clock
	Logger *slog.Logger  // nil discards
}

// Run campaigns until ctx ends; while this contender holds the lease, fn
// runs with a context that is cancelled when the lease is lost. Run returns
// after fn has returned.
func Run(ctx context.Context, cfg Config, fn func(ctx context.Context)) {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &election{cfg: cfg, key: KeyPrefix + cfg.Name}
	for ctx.Err() == nil {
		rev, ok := e.acquire(ctx)
		if !ok {
			if !clock.Sleep(ctx, cfg.TTL/3) {
				return
			}
			continue
		}
		cfg.Logger.Info("leader: lease acquired", "lease", cfg.Name, "id", cfg.ID)
		e.lead(ctx, rev, fn)
		cfg.Logger.Info("leader: lease given up", "lease", cfg.Name, "id", cfg.ID)
	}
}

type election struct {
	cfg Config
	key string
	// seenRev and seenAt: the lease revision last observed and when (this
	// contender's clock) it was first observed.
	seenRev int64
	seenAt  time.Time
}

// acquire takes the lease if it is free, ours, or stale.
func (e *election) acquire(ctx context.Context) (int64, bool) {
	if err := store.Sync(ctx, e.cfg.Store); err != nil {
		return 0, false
	}
	now := e.cfg.Clock.Now()
	kv, err := e.cfg.Store.Get(ctx, e.key)
	var rev int64
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
	case err != nil:
		return 0, false
	default:
		rev = kv.ModRevision
		var l Lease
		mine := json.Unmarshal(kv.Value, &l) == nil && l.Holder == e.cfg.ID
		if rev != e.seenRev {
			e.seenRev, e.seenAt = rev, now
		}
		if !mine && now.Sub(e.seenAt) < e.cfg.TTL {
			return 0, false
		}
	}
	newRev, err := e.write(ctx, rev)
	if err != nil {
		return 0, false
	}
	return newRev, true
}

func (e *election) write(ctx context.Context, rev int64) (int64, error) {
	op, err := store.PutJSON(e.key, Lease{Holder: e.cfg.ID, RenewedAt: e.cfg.Clock.Now()})
	if err != nil {
		return 0, err
	}
	return e.cfg.Store.Txn(ctx, []store.Cond{{Key: e.key, ModRevision: rev}}, []store.Op{op})
}

// lead runs fn while renewing the lease; it returns once the lease is lost
// (or ctx ended) and fn has returned.
func (e *election) lead(ctx context.Context, rev int64, fn func(context.Context)) {
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { fn(lctx) })
	renewed := e.cfg.Clock.Now()
	for {
		if !clock.Sleep(lctx, e.cfg.TTL/3) {
			return
		}
		newRev, err := e.write(lctx, rev)
		switch {
		case err == nil:
			rev, renewed = newRev, e.cfg.Clock.Now()
		case errors.Is(err, errdefs.ErrConflict):
			return // taken over
		case e.cfg.Clock.Now().Sub(renewed) >= e.cfg.TTL/2:
			e.cfg.Logger.Warn("leader: cannot renew the lease", "lease", e.cfg.Name, "error", err)
			return
		}
	}
}
