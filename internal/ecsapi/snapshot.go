package ecsapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store"
)

// instSnapshot is a cluster's container instances as one listing of the
// store showed them: each record decoded and converted for the scheduler
// once per mod revision, and reused by every later snapshot in which its
// mod revision is unchanged. A snapshot and everything it points to are
// shared between requests and read-only (scheduler.Place does not modify
// its snapshot; what it debits it copies first).
type instSnapshot struct {
	// all is every instance of the cluster, in key order.
	all []*instEntry
	// live is placement's view of the instances that are not INACTIVE,
	// oldest registration first (ties by id): the order first-fit and
	// ties follow.
	live []scheduler.Instance
	// order maps an index of live to its index in all; pos is the inverse
	// (-1 for an INACTIVE instance).
	order, pos []int
}

// instEntry is one instance record at one mod revision.
type instEntry struct {
	key string
	rev int64
	ci  *domain.ContainerInstance
	// si is what placement and the query language see of ci; its
	// RunningTasksCount is 0 (see withRunningCounts).
	si scheduler.Instance
}

// snapCache keeps each cluster's last instance snapshot, so that an
// attempt converts only the instances that changed since.
type snapCache struct {
	mu       sync.Mutex
	clusters map[string]cachedSnapshot
}

type cachedSnapshot struct {
	s   *instSnapshot
	rev int64 // the store revision of the listing
}

// width is how many placements of cluster should be in flight at once: one
// per instance that can take tasks, at most placementsInFlight (the
// default too, before the cluster's first snapshot). Concurrent placements
// on the same instance all but one lose their compare-and-swap and place
// again after a back-off; a cluster of one instance places fastest one at
// a time, each attempt reading the commit before it (a Txn returns once
// the cache shows it).
func (c *snapCache) width(cluster string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ok := c.clusters[cluster]
	if !ok {
		return placementsInFlight
	}
	return min(max(len(cs.s.live), 1), placementsInFlight)
}

// instanceSnapshot lists a cluster's instances and returns their snapshot.
func (h *handlers) instanceSnapshot(ctx context.Context, cluster string) (*instSnapshot, error) {
	kvs, rev, err := h.store.List(ctx, domain.ContainerInstancesPrefix(cluster))
	if err != nil {
		return nil, storeError(err)
	}
	c := &h.snaps
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.clusters[cluster]
	s, err := buildSnapshot(prev.s, kvs, func(id string) string { return h.instanceARN(cluster, id) })
	if err != nil {
		return nil, err
	}
	switch {
	case len(kvs) == 0:
		delete(c.clusters, cluster) // nothing to reuse; forget deleted clusters
	case s != prev.s && rev >= prev.rev:
		// A listing older than the cached one (a request that listed
		// before another built) does not replace it.
		if c.clusters == nil {
			c.clusters = map[string]cachedSnapshot{}
		}
		c.clusters[cluster] = cachedSnapshot{s: s, rev: rev}
	}
	return s, nil
}

// buildSnapshot returns the snapshot of kvs (a listing, in key order),
// reusing what prev (nil: none) converted: prev itself when nothing
// changed, and prev's order when the same instances are listed and none
// changed registration time or turned INACTIVE.
func buildSnapshot(prev *instSnapshot, kvs []store.KV, arnOf func(id string) string) (*instSnapshot, error) {
	var old []*instEntry
	if prev != nil {
		old = prev.all
	}
	s := &instSnapshot{all: make([]*instEntry, len(kvs))}
	same := prev != nil && len(old) == len(kvs) // every entry reused
	sameOrder := same                           // the same keys, in the same live order
	j := 0                                      // merge position in old (both in key order)
	for i, kv := range kvs {
		for j < len(old) && old[j].key < kv.Key {
			j++
		}
		if j < len(old) && old[j].key == kv.Key && old[j].rev == kv.ModRevision {
			s.all[i] = old[j]
			sameOrder = sameOrder && i == j
			continue
		}
		same = false
		e, err := newEntry(kv, arnOf)
		if err != nil {
			return nil, err
		}
		s.all[i] = e
		if sameOrder {
			// The same key at the same place: the order holds if what it
			// is sorted by did not change.
			o := old[i]
			sameOrder = o.key == kv.Key && o.ci.RegisteredAt.Equal(e.ci.RegisteredAt) &&
				(o.ci.Status == domain.InstanceStatusInactive) == (e.ci.Status == domain.InstanceStatusInactive)
		}
	}
	if same {
		return prev, nil
	}
	if sameOrder {
		s.order, s.pos = prev.order, prev.pos
		s.live = slices.Clone(prev.live)
		for i, e := range s.all {
			if e != old[i] && s.pos[i] >= 0 {
				s.live[s.pos[i]] = e.si
			}
		}
		return s, nil
	}
	s.pos = make([]int, len(s.all))
	for i, e := range s.all {
		s.pos[i] = -1
		if e.ci.Status != domain.InstanceStatusInactive {
			s.order = append(s.order, i)
		}
	}
	slices.SortStableFunc(s.order, func(a, b int) int {
		x, y := s.all[a].ci, s.all[b].ci
		return cmp.Or(x.RegisteredAt.Compare(y.RegisteredAt), cmp.Compare(x.ID, y.ID))
	})
	s.live = make([]scheduler.Instance, len(s.order))
	for k, i := range s.order {
		s.pos[i] = k
		s.live[k] = s.all[i].si
	}
	return s, nil
}

func newEntry(kv store.KV, arnOf func(id string) string) (*instEntry, error) {
	ci := new(domain.ContainerInstance)
	if err := json.Unmarshal(kv.Value, ci); err != nil {
		return nil, errdefs.Internal(fmt.Errorf("decode %s: %w", kv.Key, err))
	}
	return &instEntry{key: kv.Key, rev: kv.ModRevision, ci: ci, si: schedInstance(ci, arnOf(ci.ID))}, nil
}

// byID returns the entry of instance id, or nil.
func (s *instSnapshot) byID(id string) *instEntry {
	for _, e := range s.all {
		if e.ci.ID == id {
			return e
		}
	}
	return nil
}

// schedInstance is what placement and the query language see of an
// instance, without its running tasks count.
func schedInstance(ci *domain.ContainerInstance, arn string) scheduler.Instance {
	rem := ci.Remaining()
	si := scheduler.Instance{
		ARN:            arn,
		Name:           ci.ID,
		Status:         ci.Status,
		AgentConnected: ci.AgentConnected,
		RegisteredAt:   ci.RegisteredAt,
		Registered:     scheduler.Resources{CPU: ci.Registered.CPU, Memory: ci.Registered.Memory, Ports: ci.Registered.Ports, PortsUDP: ci.Registered.PortsUDP},
		Remaining:      scheduler.Resources{CPU: rem.CPU, Memory: rem.Memory, Ports: rem.Ports, PortsUDP: rem.PortsUDP},
		AgentVersion:   aws.ToString(agentVersion(ci)),
		Attributes:     make([]scheduler.Attribute, len(ci.Attributes)),
		Groups:         make(map[string]int, len(ci.Groups)),
	}
	for i, a := range ci.Attributes {
		si.Attributes[i] = scheduler.Attribute{Name: aws.ToString(a.Name), Value: aws.ToString(a.Value)}
	}
	for g, n := range ci.Groups {
		si.Groups[g] = int(n)
	}
	return si
}

// readsRunningCount reports whether a placement constraint may read
// runningTasksCount (the subject is case-sensitive; a mention elsewhere,
// in a value, only costs the counting).
func readsRunningCount(cs []types.PlacementConstraint) bool {
	for _, c := range cs {
		if strings.Contains(aws.ToString(c.Expression), "runningTasksCount") {
			return true
		}
	}
	return false
}

// withRunningCounts returns a copy of insts with each instance's
// RunningTasksCount set from the cluster's task records.
func (h *handlers) withRunningCounts(ctx context.Context, cluster string, insts []scheduler.Instance) ([]scheduler.Instance, error) {
	counts, err := h.clusterTaskCounts(ctx, cluster)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(insts)
	for i := range out {
		out[i].RunningTasksCount = int(counts[out[i].Name].Running)
	}
	return out, nil
}

// instanceTaskCounts counts an instance's tasks that are not STOPPED by
// phase: its index keys (one per such task) and each task's record.
func (h *handlers) instanceTaskCounts(ctx context.Context, cluster, id string) (domain.TaskCounts, error) {
	var n domain.TaskCounts
	err := h.countTasks(ctx, cluster, domain.InstanceTasksPrefix(cluster, id), func(string) *domain.TaskCounts { return &n })
	return n, err
}

// clusterTaskCounts is instanceTaskCounts for every instance of a cluster,
// by instance id.
func (h *handlers) clusterTaskCounts(ctx context.Context, cluster string) (map[string]domain.TaskCounts, error) {
	counts := map[string]*domain.TaskCounts{}
	err := h.countTasks(ctx, cluster, domain.InstanceTasksClusterPrefix(cluster), func(id string) *domain.TaskCounts {
		n := counts[id]
		if n == nil {
			n = new(domain.TaskCounts)
			counts[id] = n
		}
		return n
	})
	out := make(map[string]domain.TaskCounts, len(counts))
	for id, n := range counts {
		out[id] = *n
	}
	return out, err
}

// countTasks counts the tasks of the index keys under prefix into
// counter(instance id). The index and the task records are written in the
// same transactions, but a cached store may list one a little ahead of
// the other: a task not found is not counted, nor one found STOPPED.
func (h *handlers) countTasks(ctx context.Context, cluster, prefix string, counter func(instanceID string) *domain.TaskCounts) error {
	idx, _, err := h.store.List(ctx, prefix)
	if err != nil {
		return storeError(err)
	}
	for _, kv := range idx {
		_, instID, taskID, ok := domain.ParseInstanceTaskKey(kv.Key)
		if !ok {
			continue
		}
		v, _, err := h.phases.Get(ctx, h.store, domain.TaskKey(cluster, taskID))
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			continue
		case err != nil:
			return storeError(err)
		}
		counter(instID).Add(v.Phase())
	}
	return nil
}
