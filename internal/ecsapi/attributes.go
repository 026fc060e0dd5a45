package ecsapi

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// attributeTarget resolves an attribute's target: container instances are
// the only target type; targetId is an instance id (with targetType) or
// ARN.
func (h *handlers) attributeTarget(cluster string, a types.Attribute) (string, error) {
	if a.TargetType != "" && a.TargetType != types.TargetTypeContainerInstance {
		return "", domain.InvalidParameter("Invalid targetType " + string(a.TargetType) + ". The only valid value is container-instance.")
	}
	ref := aws.ToString(a.TargetId)
	if ref == "" {
		return "", domain.InvalidParameter("targetId is required for attribute " + aws.ToString(a.Name) + ".")
	}
	id, ok := h.instanceRef(cluster, ref)
	if !ok {
		return "", targetNotFound(ref)
	}
	return id, nil
}

func targetNotFound(ref string) error {
	return errdefs.WithReason(errdefs.ErrNotFound, domain.ErrTargetNotFound,
		"The specified target wasn't found. Target: "+ref+". You can view your available container instances with ListContainerInstances.")
}

// changeAttributes applies change to the attributes of every instance the
// attributes name, in one transaction, and returns the attributes as given.
func (h *handlers) changeAttributes(ctx context.Context, action string, clusterRef *string, attrs []types.Attribute,
	validate func(types.Attribute) error, change func(existing, mine []types.Attribute) ([]types.Attribute, error)) ([]types.Attribute, error) {
	cluster, err := h.clusterRef(clusterRef)
	if err != nil {
		if aerr := h.authorize(ctx, action, anyResource); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if len(attrs) == 0 {
		if err := h.authorize(ctx, action, anyResource); err != nil {
			return nil, err
		}
	}
	for _, a := range attrs {
		resource := anyResource
		if ref := aws.ToString(a.TargetId); ref != "" {
			resource = h.instanceRefARN(cluster, ref)
		}
		if err := h.authorize(ctx, action, resource); err != nil {
			return nil, err
		}
	}
	if len(attrs) == 0 {
		return nil, domain.InvalidParameter("attributes must contain at least one attribute.")
	}
	if len(attrs) > domain.MaxAttributesPerCall {
		return nil, domain.InvalidParameter(fmt.Sprintf("attributes can have at most %d items.", domain.MaxAttributesPerCall))
	}
	byTarget := map[string][]types.Attribute{}
	var order []string
	for _, a := range attrs {
		if err := validate(a); err != nil {
			return nil, err
		}
		id, err := h.attributeTarget(cluster, a)
		if err != nil {
			return nil, err
		}
		if _, ok := byTarget[id]; !ok {
			order = append(order, id)
		}
		byTarget[id] = append(byTarget[id], a)
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		var conds []store.Cond
		var ops []store.Op
		now := h.now()
		for _, id := range order {
			key := domain.ContainerInstanceKey(cluster, id)
			ci, rev, found, err := get[domain.ContainerInstance](ctx, h.store, key)
			if err != nil {
				return nil, nil, err
			}
			if !found || ci.Status == domain.InstanceStatusInactive {
				return nil, nil, targetNotFound(aws.ToString(byTarget[id][0].TargetId))
			}
			if ci.Attributes, err = change(ci.Attributes, byTarget[id]); err != nil {
				return nil, nil, err
			}
			ci.Touch(now)
			op, err := put(key, ci)
			if err != nil {
				return nil, nil, err
			}
			conds = append(conds, store.Cond{Key: key, ModRevision: rev})
			ops = append(ops, op)
		}
		return conds, ops, nil
	})
	if err != nil {
		return nil, err
	}
	return attrs, nil
}

// PutAttributes creates or updates attributes of container instances. An
// instance may have at most 10 custom attributes (those outside ECS's
// ecs.* and com.amazonaws.ecs.* names): more is
// AttributeLimitExceededException, and nothing is written.
func (h *handlers) PutAttributes(ctx context.Context, in *ecs.PutAttributesInput) (*ecs.PutAttributesOutput, error) {
	attrs, err := h.changeAttributes(ctx, "PutAttributes", in.Cluster, in.Attributes, domain.ValidateAttribute,
		func(existing, mine []types.Attribute) ([]types.Attribute, error) {
			merged := domain.MergeAttributes(existing, mine)
			return merged, domain.CheckCustomAttributeLimit(merged)
		})
	if err != nil {
		return nil, err
	}
	return &ecs.PutAttributesOutput{Attributes: attrs}, nil
}

// DeleteAttributes removes attributes (by name; a value is ignored) from
// container instances. Removing an attribute an instance does not have is
// not an error.
func (h *handlers) DeleteAttributes(ctx context.Context, in *ecs.DeleteAttributesInput) (*ecs.DeleteAttributesOutput, error) {
	attrs, err := h.changeAttributes(ctx, "DeleteAttributes", in.Cluster, in.Attributes,
		func(a types.Attribute) error { return domain.ValidateAttribute(types.Attribute{Name: a.Name}) },
		func(existing, mine []types.Attribute) ([]types.Attribute, error) {
			var names []string
			for _, a := range mine {
				names = append(names, aws.ToString(a.Name))
			}
			return domain.RemoveAttributes(existing, names), nil
		})
	if err != nil {
		return nil, err
	}
	return &ecs.DeleteAttributesOutput{Attributes: attrs}, nil
}

// ListAttributes lists the attributes of a cluster's container instances
// (not deregistered ones), each with its instance's ARN as targetId,
// optionally only those of one name (and value), sorted by instance ARN and
// then name.
func (h *handlers) ListAttributes(ctx context.Context, in *ecs.ListAttributesInput) (*ecs.ListAttributesOutput, error) {
	if err := h.authorize(ctx, "ListAttributes", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	cluster, err := h.clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	switch in.TargetType {
	case types.TargetTypeContainerInstance:
	case "":
		return nil, domain.InvalidParameter("targetType is required.")
	default:
		return nil, domain.InvalidParameter("Invalid targetType " + string(in.TargetType) + ". The only valid value is container-instance.")
	}
	name, value := aws.ToString(in.AttributeName), in.AttributeValue
	if value != nil && name == "" {
		return nil, domain.InvalidParameter("attributeName must be specified when attributeValue is specified.")
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	insts, err := h.listInstances(ctx, cluster)
	if err != nil {
		return nil, err
	}
	type item struct {
		key  string
		attr types.Attribute
	}
	var items []item
	for _, k := range insts {
		ci := &k.Value
		if ci.Status == domain.InstanceStatusInactive {
			continue
		}
		target := h.instanceARN(cluster, ci.ID)
		for _, a := range ci.Attributes {
			an := aws.ToString(a.Name)
			if name != "" && an != name || value != nil && aws.ToString(a.Value) != *value {
				continue
			}
			items = append(items, item{key: target + "\x00" + an, attr: types.Attribute{
				Name: a.Name, Value: a.Value, TargetType: types.TargetTypeContainerInstance, TargetId: aws.String(target),
			}})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.key, b.key) })
	page, next, err := paginate(items, func(i item) string { return i.key }, false, in.MaxResults, in.NextToken, listLimits)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListAttributesOutput{Attributes: []types.Attribute{}, NextToken: next}
	for _, i := range page {
		out.Attributes = append(out.Attributes, i.attr)
	}
	return out, nil
}
