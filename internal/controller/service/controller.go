// Package service is the service scheduler: a level-driven reconciler that
// keeps each ECS service's desired count of tasks running, rolls new
// deployments out within minimumHealthyPercent and maximumPercent, trips
// the deployment circuit breaker (and rolls back), throttles tasks that
// keep failing to start, runs DAEMON services on every instance, and
// writes the service events in ECS's words.
//
// Each reconcile reads one service, the tasks it started (the service →
// task index) and the cluster's instances, decides with a pure function
// (decide, plan.go), launches and stops tasks through a Launcher, and
// writes the service record with a compare-and-swap on the revision it
// read. Nothing depends on having seen an event: a watch only says which
// services to look at again, and a periodic resync looks at all of them.
// docs/architecture/service-deployment.md describes the loop and the
// deployment state machine.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/controller/workqueue"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// Launcher starts and stops a service's tasks and lists them (ecsapi's
// ServiceTasks in production: placement and commit as RunTask does).
type Launcher interface {
	Launch(ctx context.Context, l domain.ServiceLaunch) (domain.ServiceLaunchResult, error)
	Stop(ctx context.Context, cluster, taskID, reason string) error
	Tasks(ctx context.Context, cluster, service string) ([]*domain.TaskRecord, error)
	// Unfit returns the ids of the cluster's instances that do not meet
	// the memberOf constraints given (nil: none given).
	Unfit(ctx context.Context, cluster string, constraints []types.PlacementConstraint) (map[string]bool, error)
}

// Defaults.
const (
	DefaultWorkers = 4
	// DefaultResync is how often every service is reconciled even when
	// nothing about it changed.
	DefaultResync = 5 * time.Minute
	// placementRetry is when a service that could not place a task looks
	// again even without a change of its cluster's instances.
	placementRetry = time.Minute
)

// Config configures a Controller.
type Config struct {
	// Store is read (in production the watch-fed cache) and written.
	Store    store.Store
	Launcher Launcher
	Clock    clock.Clock   // nil means the wall clock
	Workers  int           // 0 means DefaultWorkers
	Resync   time.Duration // 0 means DefaultResync
	Logger   *slog.Logger  // nil discards
}

// Controller is the service scheduler.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// services: cluster → service names, from the watch (which services a
	// change of a cluster's instances concerns).
	services map[string]map[string]bool
	// owners: task key → service key, from the service → task index.
	owners map[string]string
	// instStatus: container-instance key → status, from the watch. Only
	// an instance that appears, goes or changes status concerns every
	// service of its cluster; its other changes (resources debited and
	// credited by every task) concern only the services in capacity.
	instStatus map[string]string
	// capacity: service keys that wait for room (a launch could not place
	// everything, or a DAEMON service), by cluster.
	capacity map[string]map[string]bool
	// refused: per DAEMON service key, the instances placement refused its
	// task on, with the instance's mod revision and the service's
	// generation then; an instance counts again once either changed.
	refused map[string]map[string]refusal
	// instCache: instance key → its id and status at a mod revision.
	instCache map[string]instEntry
	// checkedCache: task definition key → has an essential health check.
	checkedCache map[string]bool
}

type refusal struct{ instanceRev, generation int64 }

func (c *Controller) refuse(key, instance string, rev, generation int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.refused[key]
	if m == nil {
		m = map[string]refusal{}
		c.refused[key] = m
	}
	m[instance] = refusal{instanceRev: rev, generation: generation}
}

// refusedInstances are the instances still refusing a DAEMON service's
// task: neither the instance nor the service changed since.
func (c *Controller) refusedInstances(key string, revs map[string]int64, generation int64) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for id, r := range c.refused[key] {
		if rev, ok := revs[id]; ok && rev == r.instanceRev && generation == r.generation {
			out[id] = true
		} else {
			delete(c.refused[key], id)
		}
	}
	return out
}

// New returns a controller; Run starts it.
func New(cfg Config) *Controller {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Controller{
		cfg: cfg, log: log, services: map[string]map[string]bool{}, owners: map[string]string{},
		instStatus: map[string]string{}, capacity: map[string]map[string]bool{}, refused: map[string]map[string]refusal{},
		instCache: map[string]instEntry{}, checkedCache: map[string]bool{},
	}
}

// Run reconciles services until ctx ends, then waits for its goroutines.
func (c *Controller) Run(ctx context.Context) {
	q := workqueue.New()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer q.ShutDown()
	for range c.cfg.Workers {
		wg.Go(func() { c.work(ctx, q) })
	}
	wg.Go(func() { q.RunTimers(ctx) })
	c.follow(ctx, q)
}

// work takes services off the queue and reconciles them; one service is
// never reconciled by two workers at once (the queue's promise).
func (c *Controller) work(ctx context.Context, q *workqueue.Queue) {
	for {
		key, ok := q.Get()
		if !ok {
			return
		}
		cluster, name, _ := domain.ParseServiceKey(key)
		after, err := c.Reconcile(ctx, cluster, name)
		switch {
		case ctx.Err() != nil:
			q.Done(key)
			return
		case err != nil:
			c.log.Warn("service reconcile failed", "cluster", cluster, "service", name, "error", err)
			q.Done(key)
			q.Retry(key)
			continue
		}
		q.Done(key)
		q.Forget(key)
		if after > 0 {
			q.AddAfter(key, after)
		}
	}
}

// follow lists the services and the index, queues every service, and then
// follows changes: a service's record or one of its tasks changed → that
// service; an instance of a cluster changed → the cluster's services. A
// watch that breaks is reopened after listing again; a resync queues
// every service periodically.
func (c *Controller) follow(ctx context.Context, q *workqueue.Queue) {
	failures := 0
	for {
		if failures > 0 && !clock.Sleep(ctx, backoff(failures)) {
			return
		}
		rev, err := c.load(ctx, q)
		if err == nil {
			wctx, cancel := context.WithCancel(ctx)
			ch := c.cfg.Store.Watch(wctx, domain.KeyRoot, rev)
			resync := time.NewTicker(c.cfg.Resync)
			err = c.watch(wctx, q, ch, resync.C)
			resync.Stop()
			cancel()
			failures = 0
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		c.log.Info("service controller: watch ended, listing again", "error", err)
	}
}

func backoff(failures int) time.Duration {
	return min(30*time.Second, 250*time.Millisecond<<min(failures, 7))
}

// load lists the services and the service → task index and queues every
// service; it returns the revision to watch from.
func (c *Controller) load(ctx context.Context, q *workqueue.Queue) (int64, error) {
	svcs, rev, err := c.cfg.Store.List(ctx, domain.AllServicesPrefix)
	if err != nil {
		return 0, err
	}
	idx, irev, err := c.cfg.Store.List(ctx, domain.ServiceTasksRootPrefix)
	if err != nil {
		return 0, err
	}
	insts, crev, err := c.cfg.Store.List(ctx, domain.AllContainerInstancesPrefix)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.services = map[string]map[string]bool{}
	c.owners = map[string]string{}
	c.instStatus = map[string]string{}
	for _, kv := range insts {
		var ci struct{ Status string }
		if json.Unmarshal(kv.Value, &ci) == nil {
			c.instStatus[kv.Key] = ci.Status
		}
	}
	for _, kv := range svcs {
		if cluster, name, ok := domain.ParseServiceKey(kv.Key); ok {
			c.addServiceLocked(cluster, name)
		}
	}
	for _, kv := range idx {
		if cluster, svc, task, ok := domain.ParseServiceTaskKey(kv.Key); ok {
			c.owners[domain.TaskKey(cluster, task)] = domain.ServiceKey(cluster, svc)
		}
	}
	c.mu.Unlock()
	for _, kv := range svcs {
		q.Add(kv.Key)
	}
	// Watch from the older listing: changes between the two are seen
	// twice, which is harmless.
	return min(rev, irev, crev), nil
}

func (c *Controller) addServiceLocked(cluster, name string) {
	m := c.services[cluster]
	if m == nil {
		m = map[string]bool{}
		c.services[cluster] = m
	}
	m[name] = true
}

// watch routes changes to the queue until the watch ends.
func (c *Controller) watch(ctx context.Context, q *workqueue.Queue, ch <-chan store.WatchResponse, resync <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-resync:
			// Spread over the interval: all at once, a resync of
			// hundreds of services takes both cores for seconds.
			c.mu.Lock()
			for cluster, names := range c.services {
				for name := range names {
					q.AddAfter(domain.ServiceKey(cluster, name), mathrand.N(c.cfg.Resync))
				}
			}
			c.mu.Unlock()
		case resp, ok := <-ch:
			if !ok {
				return errors.New("watch closed")
			}
			if resp.Err != nil {
				return resp.Err
			}
			for _, ev := range resp.Events {
				c.route(q, ev)
			}
		}
	}
}

func (c *Controller) route(q *workqueue.Queue, ev store.Event) {
	key := ev.KV.Key
	c.mu.Lock()
	defer c.mu.Unlock()
	if cluster, name, ok := domain.ParseServiceKey(key); ok {
		if ev.Type == store.EventDelete {
			delete(c.services[cluster], name)
			delete(c.capacity[cluster], key)
			return
		}
		c.addServiceLocked(cluster, name)
		q.Add(key)
		return
	}
	if cluster, svc, task, ok := domain.ParseServiceTaskKey(key); ok {
		tk := domain.TaskKey(cluster, task)
		if ev.Type == store.EventDelete {
			delete(c.owners, tk)
			return
		}
		c.owners[tk] = domain.ServiceKey(cluster, svc)
		return
	}
	if strings.HasPrefix(key, domain.AllTasksPrefix) {
		if owner, ok := c.owners[key]; ok {
			q.Add(owner)
		}
		return
	}
	if rest, ok := strings.CutPrefix(key, domain.AllContainerInstancesPrefix); ok {
		cluster, _, _ := strings.Cut(rest, "/")
		status := ""
		if ev.Type != store.EventDelete {
			var ci struct{ Status string }
			if json.Unmarshal(ev.KV.Value, &ci) != nil {
				ci.Status = "?"
			}
			status = ci.Status
		}
		old, known := c.instStatus[key]
		if status == "" {
			delete(c.instStatus, key)
			delete(c.instCache, key)
		} else {
			c.instStatus[key] = status
		}
		if !known || old != status {
			for name := range c.services[cluster] {
				q.Add(domain.ServiceKey(cluster, name))
			}
			return
		}
		for svcKey := range c.capacity[cluster] {
			q.Add(svcKey)
		}
	}
}

// setCapacityWaiter notes whether a service waits for room in its cluster.
func (c *Controller) setCapacityWaiter(cluster, key string, waiting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.capacity[cluster]
	if !waiting {
		delete(m, key)
		return
	}
	if m == nil {
		m = map[string]bool{}
		c.capacity[cluster] = m
	}
	m[key] = true
}

// Reconcile brings one service closer to its desired state and returns
// when it should be looked at again without a change (0: only on change).
func (c *Controller) Reconcile(ctx context.Context, cluster, name string) (time.Duration, error) {
	// The cache must hold this controller's own last writes (the tasks it
	// launched), or it would launch them again.
	if err := store.Sync(ctx, c.cfg.Store); err != nil {
		return 0, err
	}
	key := domain.ServiceKey(cluster, name)
	kv, err := c.cfg.Store.Get(ctx, key)
	if errors.Is(err, errdefs.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var rec domain.ServiceRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return 0, errdefs.Internal(fmt.Errorf("decode service %s: %w", key, err))
	}
	if rec.Status() == domain.ServiceStatusInactive || rec.Primary() == nil {
		return 0, nil
	}
	v, err := c.view(ctx, rec)
	if err != nil {
		return 0, err
	}
	p := decide(v)
	now := v.now

	var launchErr error
	capacityShort := false
	for _, l := range p.launches {
		res, err := c.cfg.Launcher.Launch(ctx, c.launchRequest(&p.rec, l))
		if err != nil {
			launchErr = errors.Join(launchErr, err)
			continue
		}
		if len(res.Tasks) > 0 {
			ids := make([]string, len(res.Tasks))
			for i := range res.Tasks {
				ids[i] = res.Tasks[i].ID
			}
			p.rec.AddEvent("started", newEventID(), domain.EventStarted(name, ids), now)
			p.rec.ForgetEvent("place")
		}
		if len(res.Tasks) < l.count {
			capacityShort = true
		}
		if len(res.Failures) > 0 && len(res.Tasks) == 0 {
			if l.instance != "" {
				// A DAEMON instance that cannot take the task does not
				// count toward the desired count until it changes: decide
				// again at once without it.
				c.refuse(key, l.instance, v.instanceRevs[l.instance], p.rec.Generation)
				p.wake(now)
				continue
			}
			p.rec.AddEvent("place", newEventID(), domain.EventUnableToPlace(name, res.Closest), now)
			p.wake(now.Add(placementRetry))
		}
	}
	c.setCapacityWaiter(cluster, key, p.rec.IsDaemon() || capacityShort)
	var stopped []string
	var stopErr error
	for _, s := range p.stops {
		if err := c.cfg.Launcher.Stop(ctx, cluster, s.taskID, s.reason); err != nil {
			stopErr = errors.Join(stopErr, err)
			continue
		}
		if s.running {
			stopped = append(stopped, s.taskID)
		}
	}
	if len(stopped) > 0 {
		p.rec.AddEvent("stopped", newEventID(), domain.EventStopped(name, stopped), now)
	}

	if err := c.write(ctx, key, kv.ModRevision, rec, p.rec, now); err != nil {
		return 0, err
	}
	if err := errors.Join(launchErr, stopErr); err != nil {
		return 0, err
	}
	if !p.wakeAt.IsZero() {
		return max(p.wakeAt.Sub(c.cfg.Clock.Now()), time.Millisecond), nil
	}
	return 0, nil
}

// view reads what decide needs.
func (c *Controller) view(ctx context.Context, rec domain.ServiceRecord) (view, error) {
	v := view{rec: rec, instances: map[string]*domain.ContainerInstance{}, instanceRevs: map[string]int64{}, checked: map[string]bool{}}
	tasks, err := c.cfg.Launcher.Tasks(ctx, rec.Cluster, rec.Name)
	if err != nil {
		return v, err
	}
	v.tasks = tasks
	kvs, _, err := c.cfg.Store.List(ctx, domain.ContainerInstancesPrefix(rec.Cluster))
	if err != nil {
		return v, err
	}
	for _, kv := range kvs {
		ci, err := c.instance(kv)
		if err != nil {
			return v, err
		}
		if ci.Status != domain.InstanceStatusInactive {
			v.instances[ci.ID] = ci
			v.instanceRevs[ci.ID] = kv.ModRevision
		}
	}
	if rec.IsDaemon() && len(rec.Service.PlacementConstraints) > 0 {
		if v.unfit, err = c.cfg.Launcher.Unfit(ctx, rec.Cluster, rec.Service.PlacementConstraints); err != nil {
			return v, err
		}
	}
	v.refused = c.refusedInstances(domain.ServiceKey(rec.Cluster, rec.Name), v.instanceRevs, rec.Generation)
	for _, d := range rec.Deployments {
		checked, err := c.healthChecked(ctx, d.Family, d.Revision)
		if err != nil {
			return v, err
		}
		v.checked[d.ID()] = checked
	}
	v.now = c.cfg.Clock.Now()
	return v, nil
}

// instance is the part of an instance record decide reads (id, status),
// decoded once per mod revision: every reconcile reads every instance of
// its cluster, and decoding whole records dominated the scheduler's CPU
// (docs/benchmarks.md, "Services").
func (c *Controller) instance(kv store.KV) (*domain.ContainerInstance, error) {
	c.mu.Lock()
	e, ok := c.instCache[kv.Key]
	c.mu.Unlock()
	if ok && e.rev == kv.ModRevision {
		return e.ci, nil
	}
	var head struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(kv.Value, &head); err != nil {
		return nil, errdefs.Internal(fmt.Errorf("decode %s: %w", kv.Key, err))
	}
	ci := &domain.ContainerInstance{ID: head.ID, Status: head.Status}
	c.mu.Lock()
	c.instCache[kv.Key] = instEntry{rev: kv.ModRevision, ci: ci}
	c.mu.Unlock()
	return ci, nil
}

type instEntry struct {
	rev int64
	ci  *domain.ContainerInstance // shared, read-only
}

// healthChecked says whether an essential container of a task definition
// has a health check; revisions never change their containers, so the
// answer is kept.
func (c *Controller) healthChecked(ctx context.Context, family string, revision int32) (bool, error) {
	key := domain.TaskDefinitionKey(family, revision)
	c.mu.Lock()
	checked, ok := c.checkedCache[key]
	c.mu.Unlock()
	if ok {
		return checked, nil
	}
	checked, err := c.readHealthChecked(ctx, key)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.checkedCache[key] = checked
	c.mu.Unlock()
	return checked, nil
}

func (c *Controller) readHealthChecked(ctx context.Context, key string) (bool, error) {
	kv, err := c.cfg.Store.Get(ctx, key)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var td domain.TaskDefinitionRecord
	if err := json.Unmarshal(kv.Value, &td); err != nil {
		return false, errdefs.Internal(fmt.Errorf("decode %s: %w", kv.Key, err))
	}
	for _, cd := range td.TaskDefinition.ContainerDefinitions {
		if (cd.Essential == nil || *cd.Essential) && cd.HealthCheck != nil {
			return true, nil
		}
	}
	return false, nil
}

// launchRequest is the ServiceLaunch of one planned launch.
func (c *Controller) launchRequest(rec *domain.ServiceRecord, l launch) domain.ServiceLaunch {
	d := rec.Deployment(l.deployment)
	return domain.ServiceLaunch{
		Cluster: rec.Cluster, Service: rec.Name, DeploymentID: l.deployment,
		TaskDefinitionARN:    aws.ToString(d.Deployment.TaskDefinition),
		Count:                l.count,
		LaunchType:           d.Deployment.LaunchType,
		PlacementStrategy:    rec.Service.PlacementStrategy,
		PlacementConstraints: rec.Service.PlacementConstraints,
		Tags:                 launchTags(rec),
		EnableExecute:        rec.Service.EnableExecuteCommand,
		Instance:             l.instance,
	}
}

// launchTags are the tags a service's tasks get: the service's own with
// propagateTags SERVICE, and with enableECSManagedTags the
// aws:ecs:serviceName and aws:ecs:clusterName tags. TASK_DEFINITION tags
// are added by the launcher, which reads the task definition.
func launchTags(rec *domain.ServiceRecord) []types.Tag {
	var tags []types.Tag
	if rec.Service.PropagateTags == "SERVICE" {
		tags = append(tags, rec.Service.Tags...)
	}
	if rec.Service.EnableECSManagedTags {
		tags = append(tags,
			types.Tag{Key: aws.String("aws:ecs:serviceName"), Value: aws.String(rec.Name)},
			types.Tag{Key: aws.String("aws:ecs:clusterName"), Value: aws.String(rec.Cluster)})
	}
	return tags
}

// write stores the decided record when it differs from the one read.
func (c *Controller) write(ctx context.Context, key string, rev int64, before, after domain.ServiceRecord, now time.Time) error {
	a, err := json.Marshal(before)
	if err != nil {
		return errdefs.Internal(err)
	}
	after.UpdatedAt = before.UpdatedAt
	b, err := json.Marshal(after)
	if err != nil {
		return errdefs.Internal(err)
	}
	if string(a) == string(b) {
		return nil
	}
	after.UpdatedAt = now
	op, err := store.PutJSON(key, after)
	if err != nil {
		return errdefs.Internal(err)
	}
	_, err = c.cfg.Store.Txn(ctx, []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{op})
	return err
}

// newEventID is a service event id (a UUID, as ECS's are).
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
