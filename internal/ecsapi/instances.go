package ecsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/store"
)

// Limits of the container-instance actions.
const (
	maxDescribeInstances = 100
	maxUpdateInstances   = 10
	// deregisterBatch bounds the tasks one forced-deregistration
	// transaction stops (each costs a put and a delete; etcd allows 128
	// operations per transaction).
	deregisterBatch = 40
)

// newID returns a fresh task or container-instance id: 32 hexadecimal
// characters, as ECS's long-format ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// newUUID returns a random (version 4) UUID, for container ARNs.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (h *handlers) instanceARN(cluster, id string) string {
	return arn.ContainerInstance(h.region, h.account, cluster, id)
}

// instanceRef resolves a container instance parameter (an id or an ARN) in
// a cluster to an id; ok is false when it cannot name an instance there.
func (h *handlers) instanceRef(cluster, ref string) (string, bool) {
	return resolveRef(h.region, h.account, arn.TypeContainerInstance, cluster, ref)
}

func resolveRef(region, account, typ, cluster, ref string) (string, bool) {
	if arn.IsARN(ref) {
		r, err := arn.Parse(ref)
		if err != nil || r.Type != typ || !r.In(region, account) || r.Cluster != cluster {
			return "", false
		}
		ref = r.Name
	}
	if !domain.ValidInstanceID(ref) {
		return "", false
	}
	return ref, true
}

// instanceRefARN is the ARN an instance reference stands for: itself when
// it is an ARN, else the ARN of that id in the cluster.
func (h *handlers) instanceRefARN(cluster, ref string) string {
	if arn.IsARN(ref) {
		return ref
	}
	return h.instanceARN(cluster, ref)
}

func instanceNotFound() error {
	return domain.InvalidParameter("The referenced container instance was not found.")
}

// existingCluster resolves a cluster parameter to a cluster that must
// exist, in any status (for read actions).
func (h *handlers) existingCluster(ctx context.Context, ref *string) (string, error) {
	name, err := h.clusterRef(ref)
	if err != nil {
		return "", err
	}
	_, _, err = h.clusters.Get(ctx, h.store, domain.ClusterKey(name))
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", clusterNotFound()
	}
	if err != nil {
		return "", storeError(err)
	}
	return name, nil
}

// validateAttributes checks attributes sent at registration or with
// PutAttributes.
func validateAttributes(attrs []types.Attribute) error {
	for _, a := range attrs {
		if err := domain.ValidateAttribute(a); err != nil {
			return err
		}
	}
	return nil
}

// RegisterContainerInstance registers (or re-registers) the machine an agent
// runs on. The cluster must exist and be ACTIVE: berth's agent, like ECS's,
// creates it first when it is missing. Every attribute sent is echoed back
// (the ECS agent checks). A containerInstanceArn of a known, not
// deregistered instance of this cluster re-registers it under the same id:
// its registered resources, attributes (merged by name), version info and
// tags are updated and its tasks and status kept. Anything else registers a
// new instance: ACTIVE, agentConnected false until the agent channel
// connects, remaining resources equal to the registered ones.
func (h *handlers) RegisterContainerInstance(ctx context.Context, in *ecs.RegisterContainerInstanceInput) (*ecs.RegisterContainerInstanceOutput, error) {
	if err := h.authorize(ctx, "RegisterContainerInstance", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		if err := h.authorize(ctx, "TagResource", anyResource); err != nil {
			return nil, err
		}
	}
	cluster, err := h.clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	registered, other, err := domain.ParseTotalResources(in.TotalResources)
	if err != nil {
		return nil, err
	}
	if err := validateAttributes(in.Attributes); err != nil {
		return nil, err
	}
	if err := domain.CheckCustomAttributeLimit(domain.MergeAttributes(nil, in.Attributes)); err != nil {
		return nil, err
	}
	if err := domain.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	reuse := ""
	if ref := aws.ToString(in.ContainerInstanceArn); ref != "" {
		reuse, _ = h.instanceRef(cluster, ref)
	}

	var out domain.ContainerInstance
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		_, crev, err := h.activeCluster(ctx, cluster)
		if err != nil {
			return nil, nil, err
		}
		now := h.now()
		var ci domain.ContainerInstance
		var rev int64
		found := false
		if reuse != "" {
			ci, rev, found, err = get[domain.ContainerInstance](ctx, h.store, domain.ContainerInstanceKey(cluster, reuse))
			if err != nil {
				return nil, nil, err
			}
			found = found && ci.Status != domain.InstanceStatusInactive
		}
		if found {
			ci.Registered, ci.OtherResources = registered, other
			ci.Attributes = domain.MergeAttributes(ci.Attributes, in.Attributes)
			if err := domain.CheckCustomAttributeLimit(ci.Attributes); err != nil {
				return nil, nil, err
			}
			if in.VersionInfo != nil {
				ci.VersionInfo = in.VersionInfo
			}
			if ci.Tags, err = domain.MergeTags(ci.Tags, in.Tags); err != nil {
				return nil, nil, err
			}
			ci.Touch(now)
		} else {
			rev = 0
			ci = domain.ContainerInstance{
				ID:             newID(),
				Cluster:        cluster,
				Status:         domain.InstanceStatusActive,
				AgentChangedAt: now,
				Registered:     registered,
				OtherResources: other,
				Attributes:     domain.MergeAttributes(nil, in.Attributes),
				VersionInfo:    in.VersionInfo,
				Tags:           in.Tags,
				RegisteredAt:   now,
				UpdatedAt:      now,
				Version:        1,
			}
		}
		key := domain.ContainerInstanceKey(cluster, ci.ID)
		op, err := put(key, ci)
		if err != nil {
			return nil, nil, err
		}
		out = ci
		return []store.Cond{{Key: key, ModRevision: rev}, {Key: domain.ClusterKey(cluster), ModRevision: crev}}, []store.Op{op}, nil
	})
	if err != nil {
		return nil, err
	}
	// A re-registered instance keeps its tasks.
	counts, err := h.instanceTaskCounts(ctx, cluster, out.ID)
	if err != nil {
		return nil, err
	}
	ci := out.ToAPI(h.region, h.account, domain.InstanceView{Tags: true}, counts)
	return &ecs.RegisterContainerInstanceOutput{ContainerInstance: &ci}, nil
}

// DeregisterContainerInstance marks an instance INACTIVE. Without force, an
// instance that still has tasks (not STOPPED) is refused with ECS's text.
// With force, those tasks are marked STOPPED ("Container instance
// deregistration forced by user"): ECS no longer tracks them, and their
// resources are credited back. Many tasks are stopped in several
// transactions of up to deregisterBatch tasks; the instance turns INACTIVE
// in the last one.
func (h *handlers) DeregisterContainerInstance(ctx context.Context, in *ecs.DeregisterContainerInstanceInput) (*ecs.DeregisterContainerInstanceOutput, error) {
	if err := h.authorize(ctx, "DeregisterContainerInstance", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	cluster, err := h.clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	ref := aws.ToString(in.ContainerInstance)
	if ref == "" {
		return nil, domain.InvalidParameter("containerInstance is required.")
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	id, ok := h.instanceRef(cluster, ref)
	if !ok {
		return nil, instanceNotFound()
	}
	force := aws.ToBool(in.Force)
	key := domain.ContainerInstanceKey(cluster, id)
	var out domain.ContainerInstance
	for done := false; !done; {
		err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
			ci, rev, found, err := get[domain.ContainerInstance](ctx, h.store, key)
			if err != nil {
				return nil, nil, err
			}
			if !found || ci.Status == domain.InstanceStatusInactive {
				return nil, nil, instanceNotFound()
			}
			idx, _, err := h.store.List(ctx, domain.InstanceTasksPrefix(cluster, id))
			if err != nil {
				return nil, nil, storeError(err)
			}
			if len(idx) > 0 && !force {
				return nil, nil, domain.InvalidParameter("Found running tasks on the instance.")
			}
			now := h.now()
			var conds []store.Cond
			var ops []store.Op
			for _, kv := range idx[:min(len(idx), deregisterBatch)] {
				ops = append(ops, store.Delete(kv.Key))
				_, _, taskID, ok := domain.ParseInstanceTaskKey(kv.Key)
				if !ok {
					continue
				}
				tkey := domain.TaskKey(cluster, taskID)
				t, trev, found, err := get[domain.TaskRecord](ctx, h.store, tkey)
				if err != nil {
					return nil, nil, err
				}
				if !found {
					continue
				}
				t.ForceStop(domain.StoppedReasonForcedDeregistered, now)
				if !t.Released {
					ci.Release(t.Reserved, aws.ToString(t.Task.Group))
					t.Released = true
				}
				op, err := put(tkey, t)
				if err != nil {
					return nil, nil, err
				}
				conds = append(conds, store.Cond{Key: tkey, ModRevision: trev})
				ops = append(ops, op)
			}
			done = len(idx) <= deregisterBatch
			if done {
				ci.Status = domain.InstanceStatusInactive
				if ci.AgentConnected {
					ci.AgentConnected = false
					ci.AgentChangedAt = now
				}
				ci.DeregisteredAt = aws.Time(now)
			}
			ci.Touch(now)
			op, err := put(key, ci)
			if err != nil {
				return nil, nil, err
			}
			out = ci
			return append(conds, store.Cond{Key: key, ModRevision: rev}), append(ops, op), nil
		})
		if err != nil {
			return nil, err
		}
	}
	// INACTIVE: no task is counted on it any more.
	ci := out.ToAPI(h.region, h.account, domain.InstanceView{}, domain.TaskCounts{})
	return &ecs.DeregisterContainerInstanceOutput{ContainerInstance: &ci}, nil
}

// DescribeContainerInstances describes up to 100 instances by id or ARN.
// Unknown ones are failures with reason MISSING; deregistered ones are
// shown INACTIVE until the reaper removes them.
func (h *handlers) DescribeContainerInstances(ctx context.Context, in *ecs.DescribeContainerInstancesInput) (*ecs.DescribeContainerInstancesOutput, error) {
	cluster, err := h.clusterAndRefs(ctx, "DescribeContainerInstances", in.Cluster, in.ContainerInstances, h.instanceRefARN, refLimits{"Container instance cannot be empty.", "containerInstances", maxDescribeInstances})
	if err != nil {
		return nil, err
	}
	view, err := domain.InstanceViewOf(in.Include)
	if err != nil {
		return nil, err
	}
	if _, err := h.existingCluster(ctx, aws.String(cluster)); err != nil {
		return nil, err
	}
	out := &ecs.DescribeContainerInstancesOutput{ContainerInstances: []types.ContainerInstance{}, Failures: []types.Failure{}}
	for _, ref := range in.ContainerInstances {
		ci, found, err := h.lookupInstance(ctx, cluster, ref)
		if err != nil {
			return nil, err
		}
		if !found {
			out.Failures = append(out.Failures, missing(h.instanceRefARN(cluster, ref)))
			continue
		}
		counts, err := h.instanceTaskCounts(ctx, cluster, ci.ID)
		if err != nil {
			return nil, err
		}
		out.ContainerInstances = append(out.ContainerInstances, ci.ToAPI(h.region, h.account, view, counts))
	}
	return out, nil
}

func missing(arn string) types.Failure {
	return types.Failure{Arn: aws.String(arn), Reason: aws.String(scheduler.ReasonMissing)}
}

// lookupInstance reads an instance by reference through the memo: the
// value is shared and read-only.
func (h *handlers) lookupInstance(ctx context.Context, cluster, ref string) (domain.ContainerInstance, bool, error) {
	id, ok := h.instanceRef(cluster, ref)
	if !ok {
		return domain.ContainerInstance{}, false, nil
	}
	ci, _, err := h.instances.Get(ctx, h.store, domain.ContainerInstanceKey(cluster, id))
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return ci, false, nil
	case err != nil:
		return ci, false, storeError(err)
	}
	return ci, true, nil
}

// listInstances reads every instance of a cluster through the memo (shared,
// read-only values), in key order.
func (h *handlers) listInstances(ctx context.Context, cluster string) ([]keyed[domain.ContainerInstance], error) {
	return listView(ctx, h.store, domain.ContainerInstancesPrefix(cluster), &h.instances)
}

// instanceStatuses are the status values ListContainerInstances accepts.
var instanceStatuses = types.ContainerInstanceStatus("").Values()

// ListContainerInstances lists instance ARNs of a cluster, by id. Without
// status every instance but INACTIVE ones is listed. filter is a cluster
// query language expression (see scheduler.ParseExpression for what berth
// evaluates so far; anything else is InvalidParameterException).
func (h *handlers) ListContainerInstances(ctx context.Context, in *ecs.ListContainerInstancesInput) (*ecs.ListContainerInstancesOutput, error) {
	if err := h.authorize(ctx, "ListContainerInstances", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	cluster, err := h.clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	if in.Status != "" && !slices.Contains(instanceStatuses, in.Status) {
		return nil, domain.InvalidParameter("Invalid status " + string(in.Status) + ". Valid values are " + enumList(instanceStatuses) + ".")
	}
	var expr *scheduler.Expression
	if f := aws.ToString(in.Filter); f != "" {
		if expr, err = scheduler.ParseExpression(f); err != nil {
			return nil, err
		}
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	snap, err := h.instanceSnapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	var counts map[string]domain.TaskCounts
	if expr != nil && strings.Contains(expr.String(), "runningTasksCount") {
		if counts, err = h.clusterTaskCounts(ctx, cluster); err != nil {
			return nil, err
		}
	}
	var ids []string
	for _, e := range snap.all {
		ci := e.ci
		switch {
		case in.Status == "" && ci.Status == domain.InstanceStatusInactive:
			continue
		case in.Status != "" && string(in.Status) != ci.Status:
			continue
		}
		if expr != nil {
			si := e.si // a copy: the entry is shared
			si.RunningTasksCount = int(counts[ci.ID].Running)
			if !expr.Match(&si) {
				continue
			}
		}
		ids = append(ids, ci.ID)
	}
	page, next, err := paginate(ids, func(s string) string { return s }, false, in.MaxResults, in.NextToken, listLimits)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListContainerInstancesOutput{ContainerInstanceArns: []string{}, NextToken: next}
	for _, id := range page {
		out.ContainerInstanceArns = append(out.ContainerInstanceArns, h.instanceARN(cluster, id))
	}
	return out, nil
}

func enumList[T ~string](values []T) string {
	s := ""
	for i, v := range values {
		if i > 0 {
			s += ", "
		}
		s += string(v)
	}
	return s
}

func agentVersion(ci *domain.ContainerInstance) *string {
	if ci.VersionInfo == nil {
		return nil
	}
	return ci.VersionInfo.AgentVersion
}

// cloneInstance returns a copy of a shared (memo) record that may be
// changed: the slices and maps that Reserve and Release change are copied.
func cloneInstance(ci domain.ContainerInstance) domain.ContainerInstance {
	ci.Used.Ports = slices.Clone(ci.Used.Ports)
	ci.Used.PortsUDP = slices.Clone(ci.Used.PortsUDP)
	ci.Groups = maps.Clone(ci.Groups)
	ci.Attributes = slices.Clone(ci.Attributes)
	ci.Tags = slices.Clone(ci.Tags)
	return ci
}

// UpdateContainerInstancesState sets up to 10 instances ACTIVE or DRAINING
// in one transaction. Unknown instances are failures with reason MISSING,
// deregistered ones with reason INACTIVE (berth's choice; ECS documents
// none). Setting the status an instance already has changes nothing.
func (h *handlers) UpdateContainerInstancesState(ctx context.Context, in *ecs.UpdateContainerInstancesStateInput) (*ecs.UpdateContainerInstancesStateOutput, error) {
	cluster, err := h.clusterAndRefs(ctx, "UpdateContainerInstancesState", in.Cluster, in.ContainerInstances, h.instanceRefARN, refLimits{"Container instance cannot be empty.", "containerInstances", maxUpdateInstances})
	if err != nil {
		return nil, err
	}
	status := string(in.Status)
	if status != domain.InstanceStatusActive && status != domain.InstanceStatusDraining {
		return nil, domain.InvalidParameter("Invalid status " + status + ". Valid values are ACTIVE and DRAINING.")
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	var out *ecs.UpdateContainerInstancesStateOutput
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		out = &ecs.UpdateContainerInstancesStateOutput{ContainerInstances: []types.ContainerInstance{}, Failures: []types.Failure{}}
		var conds []store.Cond
		var ops []store.Op
		seen := map[string]bool{}
		now := h.now()
		for _, ref := range in.ContainerInstances {
			id, ok := h.instanceRef(cluster, ref)
			if !ok {
				out.Failures = append(out.Failures, missing(h.instanceRefARN(cluster, ref)))
				continue
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			key := domain.ContainerInstanceKey(cluster, id)
			ci, rev, found, err := get[domain.ContainerInstance](ctx, h.store, key)
			if err != nil {
				return nil, nil, err
			}
			switch {
			case !found:
				out.Failures = append(out.Failures, missing(h.instanceARN(cluster, id)))
				continue
			case ci.Status == domain.InstanceStatusInactive:
				out.Failures = append(out.Failures, types.Failure{Arn: aws.String(h.instanceARN(cluster, id)), Reason: aws.String(scheduler.ReasonInactive)})
				continue
			}
			if ci.Status != status {
				ci.Status = status
				ci.Touch(now)
				op, err := put(key, ci)
				if err != nil {
					return nil, nil, err
				}
				conds = append(conds, store.Cond{Key: key, ModRevision: rev})
				ops = append(ops, op)
			}
			counts, err := h.instanceTaskCounts(ctx, cluster, id)
			if err != nil {
				return nil, nil, err
			}
			out.ContainerInstances = append(out.ContainerInstances, ci.ToAPI(h.region, h.account, domain.InstanceView{}, counts))
		}
		return conds, ops, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
