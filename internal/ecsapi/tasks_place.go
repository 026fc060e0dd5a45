package ecsapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store"
)

// Placement commit bounds.
const (
	// maxPlacementAttempts bounds the compare-and-swap retries of one
	// RunTask or StartTask: every placement on an instance writes its
	// record, so concurrent placements onto the same instances conflict and
	// retry on a fresh snapshot. More attempts than other writes get, since
	// a storm of RunTasks contends for the same few records.
	maxPlacementAttempts = 64
	// clientTokenTTL is how long a RunTask clientToken is remembered.
	clientTokenTTL = 24 * time.Hour
)

// placeInput is one RunTask or StartTask, validated.
type placeInput struct {
	cluster    string
	td         *types.TaskDefinition // shared, read-only
	overrides  *types.TaskOverride
	demand     domain.Resources
	count      int
	launchType types.LaunchType
	group      string
	startedBy  string
	tags       []types.Tag
	execute    bool
	opts       scheduler.Options
	// targets are StartTask's container instance references; nil for
	// RunTask, which places on any instance of the cluster.
	targets []string
	// service, for a service's tasks (ServiceTasks.Launch), is the
	// service's name: each task gets its service → task index key. only,
	// when set, is the one instance (id) to place on, with the strategies
	// and constraints applied as anywhere else (a DAEMON service's task).
	service, only string
	// tokenKey and tokenHash identify RunTask's clientToken and request.
	tokenKey, tokenHash string
}

// placeResult is what RunTask and StartTask return.
type placeResult struct {
	tasks    []domain.TaskRecord
	failures []types.Failure
	// closest, for a service's tasks that could not all be placed, names
	// the closest matching instance in the words of ECS's service event.
	closest string
}

func (r placeResult) render() ([]types.Task, []types.Failure) {
	tasks := make([]types.Task, 0, len(r.tasks))
	for i := range r.tasks {
		tasks = append(tasks, r.tasks[i].ToAPI(true))
	}
	failures := r.failures
	if failures == nil {
		failures = []types.Failure{}
	}
	return tasks, failures
}

func noInstances() error {
	return domain.InvalidParameter("No Container Instances were found in your cluster.")
}

// place places and commits tasks. One attempt reads a snapshot of the
// cluster's instances, places with the scheduler, and writes, in one
// transaction: the new task records (each must not exist), their index
// keys, every instance record it debited (compare-and-swap on its mod
// revision), the clientToken record, and a condition on the cluster record
// (so that a concurrent DeleteCluster and this placement cannot both
// succeed). A conflict means another request changed one of those records:
// the attempt is repeated on a fresh snapshot, so an instance is never
// over-committed.
func (h *handlers) place(ctx context.Context, in placeInput) (placeResult, error) {
	leave, err := h.placeGates.enter(ctx, in.cluster, h.snaps.width(in.cluster))
	if err != nil {
		return placeResult{}, err
	}
	defer leave()
	var res placeResult
	err = h.commitN(ctx, maxPlacementAttempts, func() ([]store.Cond, []store.Op, error) {
		res = placeResult{}
		_, crev, err := h.activeCluster(ctx, in.cluster)
		if err != nil {
			return nil, nil, err
		}
		conds := []store.Cond{{Key: domain.ClusterKey(in.cluster), ModRevision: crev}}
		var ops []store.Op
		tokenRev := int64(0)
		if in.tokenKey != "" {
			tok, rev, found, err := get[domain.ClientTokenRecord](ctx, h.store, in.tokenKey)
			if err != nil {
				return nil, nil, err
			}
			if found && h.now().Before(tok.ExpiresAt) {
				if tok.RequestHash != in.tokenHash || tok.Cluster != in.cluster {
					return nil, nil, domain.InvalidParameter("The clientToken was already used with different parameters.")
				}
				res, err = h.replay(ctx, tok)
				return nil, nil, err
			}
			tokenRev = rev // an expired token is overwritten
		}

		snap, err := h.instanceSnapshot(ctx, in.cluster)
		if err != nil {
			return nil, nil, err
		}
		placements, fails, closest, err := h.plan(ctx, in, snap)
		if err != nil {
			return nil, nil, err
		}
		res.failures, res.closest = fails, closest

		now := h.now()
		changed := map[int]*domain.ContainerInstance{}
		for _, p := range placements {
			ci := changed[p.Instance]
			if ci == nil {
				c := cloneInstance(*snap.all[p.Instance].ci)
				ci = &c
				changed[p.Instance] = ci
			}
			id := newID()
			cids := make([]string, len(in.td.ContainerDefinitions))
			for i := range cids {
				cids[i] = newUUID()
			}
			t := domain.NewTask(domain.NewTaskInput{
				Region: h.region, Account: h.account, Cluster: in.cluster,
				ID: id, InstanceID: ci.ID, ContainerIDs: cids,
				TaskDefinition: in.td, Overrides: in.overrides, LaunchType: in.launchType,
				Group: in.group, StartedBy: in.startedBy, Tags: in.tags, EnableExecute: in.execute,
				Reserved: in.demand, Now: now,
			})
			ci.Reserve(in.demand, in.group)
			key := domain.TaskKey(in.cluster, id)
			op, err := put(key, t)
			if err != nil {
				return nil, nil, err
			}
			conds = append(conds, store.Cond{Key: key, ModRevision: 0})
			ops = append(ops, op, store.Put(domain.InstanceTaskKey(in.cluster, ci.ID, id), []byte{}))
			if in.service != "" {
				ops = append(ops, store.Put(domain.ServiceTaskKey(in.cluster, in.service, id), []byte{}))
			}
			res.tasks = append(res.tasks, t)
		}
		for i, ci := range changed {
			ci.Touch(now)
			key := domain.ContainerInstanceKey(in.cluster, ci.ID)
			op, err := put(key, ci)
			if err != nil {
				return nil, nil, err
			}
			conds = append(conds, store.Cond{Key: key, ModRevision: snap.all[i].rev})
			ops = append(ops, op)
		}
		if in.tokenKey != "" {
			tok := domain.ClientTokenRecord{
				RequestHash: in.tokenHash, Cluster: in.cluster, Failures: res.failures,
				CreatedAt: now, ExpiresAt: now.Add(clientTokenTTL),
			}
			for _, t := range res.tasks {
				tok.TaskIDs = append(tok.TaskIDs, t.ID)
			}
			op, err := put(in.tokenKey, tok)
			if err != nil {
				return nil, nil, err
			}
			conds = append(conds, store.Cond{Key: in.tokenKey, ModRevision: tokenRev})
			ops = append(ops, op)
		}
		return conds, ops, nil
	})
	return res, err
}

// placementsInFlight bounds the placements of one cluster that a server
// runs at once. Placements in flight together read the same free capacity,
// and all but the first to commit on a shared instance lose their
// compare-and-swap and place again; unbounded, at 32–64 calls in flight,
// those repeats cost more than the overlap gained. One at a time would
// leave the cores and etcd's batching idle while each transaction commits.
// 8 placed 30,000 tasks on 1,000 instances as fast as unbounded at 32
// calls in flight, faster at 64, with a third of the p99 latency
// (docs/benchmarks.md, "Placement end to end").
const placementsInFlight = 8

// clusterGates bounds each cluster's placements in flight in this server
// (placementsInFlight, or fewer: the width a burst's first placement
// gives). Correctness does not rest on it: the transaction's conditions
// still guard every instance against other servers and other writers.
type clusterGates struct {
	mu    sync.Mutex
	gates map[string]*clusterGate
}

type clusterGate struct {
	sem   chan struct{} // one token per placement in flight
	users int           // holders and waiters; the gate is dropped at 0
}

// enter waits for a place among cluster's placements in flight, or fails
// when ctx ends first; leave gives the place up. width (at least 1) sizes
// the gate when this placement opens it; a gate lasts while it has
// holders or waiters, so a burst keeps the width its first placement saw.
func (l *clusterGates) enter(ctx context.Context, cluster string, width int) (leave func(), err error) {
	l.mu.Lock()
	if l.gates == nil {
		l.gates = map[string]*clusterGate{}
	}
	g := l.gates[cluster]
	if g == nil {
		g = &clusterGate{sem: make(chan struct{}, max(width, 1))}
		l.gates[cluster] = g
	}
	g.users++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if g.users--; g.users == 0 {
			delete(l.gates, cluster)
		}
		l.mu.Unlock()
	}
	select {
	case g.sem <- struct{}{}:
		return func() { <-g.sem; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// plan places the tasks of in on a snapshot of the cluster's instances
// and returns placements as indexes into snap.all, the failures and, for a
// service's tasks, the closest matching instance (closestInstance).
func (h *handlers) plan(ctx context.Context, in placeInput, snap *instSnapshot) ([]scheduler.Placement, []types.Failure, string, error) {
	if in.targets == nil {
		if in.service != "" && len(snap.live) == 0 {
			return nil, nil, "", errNoLiveInstances
		}
		// RunTask: the strategies and constraints over the live instances,
		// oldest first (the order ties are broken in).
		live, demand, err := h.runInstances(ctx, in, snap)
		if err != nil {
			return nil, nil, "", err
		}
		order := snap.order
		if in.only != "" {
			k := slices.IndexFunc(live, func(si scheduler.Instance) bool { return si.Name == in.only })
			if k < 0 {
				return nil, []types.Failure{missing(h.instanceARN(in.cluster, in.only))}, "", nil
			}
			live, order = live[k:k+1], order[k:k+1]
		}
		opts := in.opts
		opts.Seed = rand.Uint64() // a fresh draw per attempt: retries after a conflict choose anew
		ps, fs := scheduler.Place(live, demand, in.count, opts)
		for j := range ps {
			ps[j].Instance = order[ps[j].Instance]
		}
		closest := ""
		if in.service != "" {
			closest = closestInstance(fs)
		}
		return ps, failures(fs), closest, nil
	}
	// StartTask: one task on each named instance that can take it.
	demand := schedDemand(in)
	byID := make(map[string]int, len(snap.all))
	for i, e := range snap.all {
		byID[e.ci.ID] = i
	}
	taken := map[int]scheduler.Instance{} // instances debited so far, copied
	var ps []scheduler.Placement
	var fs []types.Failure
	for _, ref := range in.targets {
		id, ok := h.instanceRef(in.cluster, ref)
		i, found := byID[id]
		if !ok || !found {
			fs = append(fs, missing(h.instanceRefARN(in.cluster, ref)))
			continue
		}
		si, seen := taken[i]
		if !seen {
			si = snap.all[i].si
		}
		if f := scheduler.Check(&si, demand); f != nil {
			fs = append(fs, failures([]scheduler.Failure{*f})...)
			continue
		}
		taken[i] = scheduler.Take(si, demand)
		ps = append(ps, scheduler.Placement{Instance: i, InstanceARN: si.ARN})
	}
	return ps, fs, "", nil
}

// failures turns the scheduler's failures into ECS's, without repeats.
func failures(fs []scheduler.Failure) []types.Failure {
	out := make([]types.Failure, 0, len(fs))
	seen := map[[2]string]bool{}
	for _, f := range fs {
		k := [2]string{f.InstanceARN, f.Reason}
		if seen[k] {
			continue
		}
		seen[k] = true
		tf := types.Failure{Reason: aws.String(f.Reason), Detail: aws.String(f.Detail)}
		if f.InstanceARN != "" {
			tf.Arn = aws.String(f.InstanceARN)
		}
		out = append(out, tf)
	}
	return out
}

// replay answers a RunTask whose clientToken was seen: the same tasks, as
// they are now (tasks already removed by the reaper are left out), and the
// same failures.
func (h *handlers) replay(ctx context.Context, tok domain.ClientTokenRecord) (placeResult, error) {
	res := placeResult{failures: tok.Failures}
	for _, id := range tok.TaskIDs {
		t, _, err := h.tasks.Get(ctx, h.store, domain.TaskKey(tok.Cluster, id))
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, storeError(err)
		}
		res.tasks = append(res.tasks, t)
	}
	return res, nil
}

// requestHash identifies a request's parameters for idempotency: the SHA-256
// of its JSON without the token.
func requestHash(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", errdefs.Internal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
