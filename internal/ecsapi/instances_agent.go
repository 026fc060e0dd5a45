package ecsapi

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

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
// the rest of the ECS API: resolving the instance an agent names and
// recording whether its agent is connected. Tasks assigned to an instance
// are found under domain.InstanceTasksPrefix (an index written in the same
// transactions as the tasks), their records at domain.TaskKey.
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
