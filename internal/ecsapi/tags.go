package ecsapi

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// tagged is a taggable resource as read from the store: its tags, and how
// to write it back with other tags.
type tagged struct {
	key    string
	modRev int64
	tags   []types.Tag
	with   func(tags []types.Tag) (store.Op, error)
}

// loadTagged reads the resource an ARN names. Clusters, task definitions
// and services are taggable so far; the other ECS resource types do not
// exist in berth yet, so their ARNs name nothing.
func (h *handlers) loadTagged(ctx context.Context, resourceARN string) (*tagged, error) {
	if resourceARN == "" {
		return nil, domain.InvalidParameter("resourceArn is required.")
	}
	r, err := arn.Parse(resourceARN)
	if err != nil {
		return nil, err
	}
	here := r.In(h.region, h.account)
	switch r.Type {
	case arn.TypeCluster:
		if !here || domain.ValidateClusterName(r.Name) != nil {
			return nil, clusterNotFound()
		}
		key := domain.ClusterKey(r.Name)
		c, rev, found, err := get[domain.Cluster](ctx, h.store, key)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, clusterNotFound()
		}
		if !c.Active() {
			// Terraform's ECS tag code relies on these exact words.
			return nil, domain.InvalidParameter("The specified cluster is inactive. Specify an active cluster and try again.")
		}
		return &tagged{key: key, modRev: rev, tags: c.Tags, with: func(tags []types.Tag) (store.Op, error) {
			c.Tags = tags
			c.UpdatedAt = h.now()
			return put(key, c)
		}}, nil
	case arn.TypeTaskDefinition:
		if !here {
			return nil, taskDefinitionNotFound()
		}
		key := domain.TaskDefinitionKey(r.Name, r.Revision)
		rec, rev, found, err := get[domain.TaskDefinitionRecord](ctx, h.store, key)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, taskDefinitionNotFound()
		}
		return &tagged{key: key, modRev: rev, tags: rec.Tags, with: func(tags []types.Tag) (store.Op, error) {
			rec.Tags = tags
			return put(key, rec)
		}}, nil
	case arn.TypeService:
		// An unknown or deleted (INACTIVE: ECS deletes a service's tags
		// with it) service is a resource that cannot be found.
		if !here || !domain.ValidServiceName(r.Name) || domain.ValidateClusterName(r.Cluster) != nil {
			return nil, resourceNotFound()
		}
		key := domain.ServiceKey(r.Cluster, r.Name)
		svc, rev, found, err := get[domain.ServiceRecord](ctx, h.store, key)
		if err != nil {
			return nil, err
		}
		if !found || svc.Status() == domain.ServiceStatusInactive {
			return nil, resourceNotFound()
		}
		return &tagged{key: key, modRev: rev, tags: svc.Service.Tags, with: func(tags []types.Tag) (store.Op, error) {
			svc.Service.Tags = tags
			return put(key, svc)
		}}, nil
	default:
		return nil, resourceNotFound()
	}
}

func resourceNotFound() error {
	return errdefs.WithReason(errdefs.ErrNotFound, domain.ErrResourceNotFound, "The specified resource could not be found.")
}

// retag replaces a resource's tags with change(tags) in one
// compare-and-swap transaction.
func (h *handlers) retag(ctx context.Context, resourceARN string, change func([]types.Tag) ([]types.Tag, error)) error {
	return h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		t, err := h.loadTagged(ctx, resourceARN)
		if err != nil {
			return nil, nil, err
		}
		tags, err := change(t.tags)
		if err != nil {
			return nil, nil, err
		}
		op, err := t.with(tags)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: t.key, ModRevision: t.modRev}}, []store.Op{op}, nil
	})
}

// TagResource adds tags to a resource, replacing the values of keys it
// already has.
func (h *handlers) TagResource(ctx context.Context, in *ecs.TagResourceInput) (*ecs.TagResourceOutput, error) {
	resourceARN := aws.ToString(in.ResourceArn)
	if err := h.authorize(ctx, "TagResource", resourceARN); err != nil {
		return nil, err
	}
	if err := domain.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	err := h.retag(ctx, resourceARN, func(tags []types.Tag) ([]types.Tag, error) {
		return domain.MergeTags(tags, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return &ecs.TagResourceOutput{}, nil
}

// UntagResource removes tags by key; absent keys are ignored.
func (h *handlers) UntagResource(ctx context.Context, in *ecs.UntagResourceInput) (*ecs.UntagResourceOutput, error) {
	resourceARN := aws.ToString(in.ResourceArn)
	if err := h.authorize(ctx, "UntagResource", resourceARN); err != nil {
		return nil, err
	}
	err := h.retag(ctx, resourceARN, func(tags []types.Tag) ([]types.Tag, error) {
		return domain.RemoveTags(tags, in.TagKeys)
	})
	if err != nil {
		return nil, err
	}
	return &ecs.UntagResourceOutput{}, nil
}

// ListTagsForResource lists a resource's tags.
func (h *handlers) ListTagsForResource(ctx context.Context, in *ecs.ListTagsForResourceInput) (*ecs.ListTagsForResourceOutput, error) {
	resourceARN := aws.ToString(in.ResourceArn)
	if err := h.authorize(ctx, "ListTagsForResource", resourceARN); err != nil {
		return nil, err
	}
	t, err := h.loadTagged(ctx, resourceARN)
	if err != nil {
		return nil, err
	}
	tags := t.tags
	if tags == nil {
		tags = []types.Tag{}
	}
	return &ecs.ListTagsForResourceOutput{Tags: tags}, nil
}
