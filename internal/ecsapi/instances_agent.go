package ecsapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// DiscoverPollEndpoint tells an agent where to open its channel: the
// server's advertised URL (Config.Endpoint), for the poll, telemetry and
// Service Connect endpoints alike.
func (h *handlers) DiscoverPollEndpoint(ctx context.Context, in *ecs.DiscoverPollEndpointInput) (*ecs.DiscoverPollEndpointOutput, error) {
	if err := h.authorize(ctx, "DiscoverPollEndpoint", anyResource); err != nil {
		return nil, err
	}
	return &ecs.DiscoverPollEndpointOutput{
		Endpoint:               aws.String(h.endpoint),
		TelemetryEndpoint:      aws.String(h.endpoint),
		ServiceConnectEndpoint: aws.String(h.endpoint),
	}, nil
}

// Instances is what the agent channel needs of container instances, without
// the rest of the ECS API: resolving the instance an agent names, recording
// whether its agent is connected, reading the tasks assigned to it (the
// index under domain.InstanceTasksPrefix, written in the same transactions
// as the tasks) with their task definitions, and applying the container
// health its agent reports.
type Instances struct {
	Store     store.Store
	Clock     clock.Clock // nil means the wall clock
	Region    string
	AccountID string
}

func (i Instances) handlers() *handlers {
	return newHandlers(Config{Store: i.Store, Clock: i.Clock, Region: i.Region, AccountID: i.AccountID})
}

// Resolve reads the instance that a channel request names: a cluster name
// or ARN (empty: default) and an instance id or ARN. An unknown cluster or
// instance is an error of kind errdefs.ErrNotFound; a deregistered instance
// is returned with status INACTIVE (the channel refuses it).
func (i Instances) Resolve(ctx context.Context, clusterRef, instanceRef string) (domain.ContainerInstance, error) {
	h := i.handlers()
	cluster, err := h.clusterRef(aws.String(clusterRef))
	if err != nil {
		return domain.ContainerInstance{}, err
	}
	id, ok := h.instanceRef(cluster, instanceRef)
	if !ok {
		return domain.ContainerInstance{}, errdefs.NotFound(fmt.Sprintf("container instance %q not found in cluster %s", instanceRef, cluster))
	}
	ci, _, found, err := get[domain.ContainerInstance](ctx, h.store, domain.ContainerInstanceKey(cluster, id))
	if err != nil {
		return ci, err
	}
	if !found {
		return ci, errdefs.NotFound(fmt.Sprintf("container instance %s not found in cluster %s", id, cluster))
	}
	return ci, nil
}

// SetAgentConnected records whether the agent of an instance is connected
// (compare-and-swap on the instance record, retried on conflict). Setting
// the value the instance already has changes nothing. An unknown instance
// is errdefs.ErrNotFound; connecting a deregistered (INACTIVE) instance is
// errdefs.ErrFailedPrecondition.
func (i Instances) SetAgentConnected(ctx context.Context, cluster, instanceID string, connected bool) error {
	h := i.handlers()
	key := domain.ContainerInstanceKey(cluster, instanceID)
	return h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		ci, rev, found, err := get[domain.ContainerInstance](ctx, h.store, key)
		if err != nil {
			return nil, nil, err
		}
		if !found {
			return nil, nil, errdefs.NotFound(fmt.Sprintf("container instance %s not found in cluster %s", instanceID, cluster))
		}
		if connected && ci.Status == domain.InstanceStatusInactive {
			return nil, nil, errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container instance %s is INACTIVE", instanceID))
		}
		if ci.AgentConnected == connected {
			return nil, nil, nil
		}
		now := h.now()
		ci.AgentConnected = connected
		ci.AgentChangedAt = now
		ci.Touch(now)
		op, err := put(key, ci)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{op}, nil
	})
}

// AssignedTask is a task assigned to a container instance, as the agent
// channel sends it.
type AssignedTask struct {
	Record domain.TaskRecord
	// ModRevision is the store revision of the record as read.
	ModRevision int64
	// TaskDefinition is the revision Record.Family:Record.Revision names;
	// zero when it is no longer stored.
	TaskDefinition types.TaskDefinition
}

// AssignedTasks reads the tasks assigned to an instance and not yet STOPPED
// (the index under domain.InstanceTasksPrefix), with their task
// definitions, and the revision the index was read at: a watch from that
// revision misses no later change. The records themselves may be newer
// than that revision, never older.
func (i Instances) AssignedTasks(ctx context.Context, cluster, instanceID string) ([]AssignedTask, int64, error) {
	h := i.handlers()
	kvs, rev, err := h.store.List(ctx, domain.InstanceTasksPrefix(cluster, instanceID))
	if err != nil {
		return nil, 0, storeError(err)
	}
	defs := map[string]types.TaskDefinition{}
	out := make([]AssignedTask, 0, len(kvs))
	for _, kv := range kvs {
		_, _, taskID, ok := domain.ParseInstanceTaskKey(kv.Key)
		if !ok {
			continue
		}
		t, trev, found, err := get[domain.TaskRecord](ctx, h.store, domain.TaskKey(cluster, taskID))
		if err != nil {
			return nil, 0, err
		}
		if !found {
			continue // reaped between the two reads
		}
		k := domain.TaskDefinitionKey(t.Family, t.Revision)
		td, seen := defs[k]
		if !seen {
			if td, err = i.TaskDefinition(ctx, t.Family, t.Revision); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return nil, 0, err
			}
			defs[k] = td
		}
		out = append(out, AssignedTask{Record: t, ModRevision: trev, TaskDefinition: td})
	}
	return out, rev, nil
}

// TaskDefinition reads one revision of a family; a revision no longer
// stored is errdefs.ErrNotFound.
func (i Instances) TaskDefinition(ctx context.Context, family string, revision int32) (types.TaskDefinition, error) {
	rec, _, found, err := get[domain.TaskDefinitionRecord](ctx, i.Store, domain.TaskDefinitionKey(family, revision))
	switch {
	case err != nil:
		return types.TaskDefinition{}, err
	case !found:
		return types.TaskDefinition{}, errdefs.NotFound(fmt.Sprintf("task definition %s:%d not found", family, revision))
	}
	return rec.TaskDefinition, nil
}

// ReportHealth records the container health that the agent of instanceID
// reports over the channel (container name → HEALTHY, UNHEALTHY or
// UNKNOWN) and derives the task's healthStatus, in a compare-and-swap on
// the task record. The caller has authenticated the agent as that
// instance's. A task that is unknown, STOPPED or assigned to another
// instance is left alone, as are container names the task does not have:
// health is sent again on every change, so nothing is lost by ignoring a
// stale message.
func (i Instances) ReportHealth(ctx context.Context, cluster, instanceID, taskRef string, containers map[string]types.HealthStatus) error {
	h := i.handlers()
	id, ok := h.taskRef(cluster, taskRef)
	if !ok {
		return nil
	}
	return h.applyReport(ctx, cluster, id, func(t *domain.TaskRecord) (domain.TaskReport, error) {
		if t.InstanceID != instanceID {
			return domain.TaskReport{}, errSkipReport
		}
		var r domain.TaskReport
		for _, c := range t.Task.Containers {
			if st, ok := containers[aws.ToString(c.Name)]; ok {
				r.Containers = append(r.Containers, domain.ContainerReport{Name: aws.ToString(c.Name), HealthStatus: st})
			}
		}
		if len(r.Containers) == 0 {
			return r, errSkipReport
		}
		return r, nil
	}, nil)
}
