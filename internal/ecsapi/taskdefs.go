package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// maxDeleteTaskDefinitions is DeleteTaskDefinitions' limit per request.
const maxDeleteTaskDefinitions = 10

// Failure reasons of DeleteTaskDefinitions, as ECS words them.
const (
	reasonInvalidIdentifier = "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."
	reasonDoesNotExist      = "The specified task definition does not exist. Specify a valid account, family, revision and try again."
	reasonStillActive       = "The specified task definition is still in ACTIVE status. Please deregister the target and try again."
)

// taskDefinitionNotFound is ECS's answer for a task definition it cannot
// find.
func taskDefinitionNotFound() error {
	return domain.ClientError("Unable to describe task definition.")
}

func (h *handlers) taskDefinitionARN(family string, revision int32) string {
	return arn.TaskDefinition(h.region, h.account, family, revision)
}

// taskDefRef is a parsed taskDefinition parameter.
type taskDefRef struct {
	family   string
	revision int32 // 0: the newest ACTIVE revision
}

// parseTaskDefRef reads a taskDefinition parameter. An ARN of another
// region or account names nothing here: not found.
func (h *handlers) parseTaskDefRef(ref string) (taskDefRef, error) {
	if ref == "" {
		return taskDefRef{}, domain.ClientError("taskDefinition is required.")
	}
	family, rev, isARN, err := domain.ParseTaskDefinitionRef(ref)
	if err != nil {
		return taskDefRef{}, err
	}
	if isARN {
		r, err := arn.Parse(ref)
		if err != nil || !r.In(h.region, h.account) {
			return taskDefRef{}, taskDefinitionNotFound()
		}
	}
	return taskDefRef{family: family, revision: rev}, nil
}

// findTaskDefinition reads the task definition a reference names: a given
// revision in any status, or the newest ACTIVE revision of a family. dec
// decodes records: decode for a record the caller will change,
// h.taskDefs.Decode (shared, read-only values) for describing.
func (h *handlers) findTaskDefinition(ctx context.Context, ref taskDefRef, dec func(store.KV) (domain.TaskDefinitionRecord, error)) (domain.TaskDefinitionRecord, int64, error) {
	var none domain.TaskDefinitionRecord
	if ref.revision != 0 {
		kv, err := h.store.Get(ctx, domain.TaskDefinitionKey(ref.family, ref.revision))
		if errors.Is(err, errdefs.ErrNotFound) {
			return none, 0, taskDefinitionNotFound()
		}
		if err != nil {
			return none, 0, storeError(err)
		}
		rec, err := dec(kv)
		return rec, kv.ModRevision, err
	}
	kvs, _, err := h.store.List(ctx, domain.TaskDefinitionFamilyPrefix(ref.family))
	if err != nil {
		return none, 0, storeError(err)
	}
	// Keys sort by revision, so the newest is last; decode only as far back
	// as the newest ACTIVE one.
	for i := len(kvs) - 1; i >= 0; i-- {
		rec, err := dec(kvs[i])
		if err != nil {
			return rec, 0, err
		}
		if rec.TaskDefinition.Status == types.TaskDefinitionStatusActive {
			return rec, kvs[i].ModRevision, nil
		}
	}
	return none, 0, taskDefinitionNotFound()
}

// RegisterTaskDefinition registers a new revision of a family: one more than
// the highest revision the family ever had, so numbers are never reused.
// The revision and the family record are written in one transaction.
func (h *handlers) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput) (*ecs.RegisterTaskDefinitionOutput, error) {
	if err := h.authorize(ctx, "RegisterTaskDefinition", anyResource); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		if err := h.authorize(ctx, "TagResource", anyResource); err != nil {
			return nil, err
		}
	}
	// ECS caps a task definition at 64 KiB of JSON. berth measures the
	// request re-encoded without tags (close to, not byte-equal with, the
	// wire form ECS measures).
	sized := *in
	sized.Tags = nil
	if b, err := json.Marshal(&sized); err != nil {
		return nil, errdefs.Internal(err)
	} else if err := domain.CheckTaskDefinitionSize(len(b)); err != nil {
		return nil, err
	}
	td := types.TaskDefinition{
		ContainerDefinitions:    in.ContainerDefinitions,
		Cpu:                     in.Cpu,
		EnableFaultInjection:    in.EnableFaultInjection,
		EphemeralStorage:        in.EphemeralStorage,
		ExecutionRoleArn:        in.ExecutionRoleArn,
		Family:                  in.Family,
		InferenceAccelerators:   in.InferenceAccelerators,
		IpcMode:                 in.IpcMode,
		Memory:                  in.Memory,
		NetworkMode:             in.NetworkMode,
		PidMode:                 in.PidMode,
		PlacementConstraints:    in.PlacementConstraints,
		ProxyConfiguration:      in.ProxyConfiguration,
		RequiresCompatibilities: in.RequiresCompatibilities,
		RuntimePlatform:         in.RuntimePlatform,
		TaskRoleArn:             in.TaskRoleArn,
		Volumes:                 in.Volumes,
	}
	if err := domain.PrepareTaskDefinition(&td, domain.PrepareOptions{RegistryHosts: h.registryHosts}); err != nil {
		return nil, err
	}
	if err := domain.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	family := aws.ToString(td.Family)
	registeredBy := caller(ctx).ARN
	famKey := domain.TaskDefinitionFamilyKey(family)

	var out domain.TaskDefinitionRecord
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		fam, famRev, _, err := get[domain.TaskDefinitionFamily](ctx, h.store, famKey)
		if err != nil {
			return nil, nil, err
		}
		if fam.LastRevision >= domain.MaxTaskDefinitionRevisions {
			return nil, nil, errdefs.New(errdefs.ErrLimitExceeded, fmt.Sprintf(
				"Family %s has reached the limit of %d revisions.", family, domain.MaxTaskDefinitionRevisions))
		}
		fam.Family = family
		fam.LastRevision++
		fam.Revisions++
		fam.ActiveRevisions++

		rec := domain.TaskDefinitionRecord{TaskDefinition: td, Tags: in.Tags}
		rec.TaskDefinition.Revision = fam.LastRevision
		rec.TaskDefinition.TaskDefinitionArn = aws.String(h.taskDefinitionARN(family, fam.LastRevision))
		rec.TaskDefinition.RegisteredAt = aws.Time(h.now())
		if registeredBy != "" {
			rec.TaskDefinition.RegisteredBy = aws.String(registeredBy)
		}
		tdKey := domain.TaskDefinitionKey(family, fam.LastRevision)
		tdOp, err := put(tdKey, rec)
		if err != nil {
			return nil, nil, err
		}
		famOp, err := put(famKey, fam)
		if err != nil {
			return nil, nil, err
		}
		out = rec
		return []store.Cond{{Key: famKey, ModRevision: famRev}, {Key: tdKey, ModRevision: 0}},
			[]store.Op{tdOp, famOp}, nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.RegisterTaskDefinitionOutput{TaskDefinition: &out.TaskDefinition, Tags: out.Tags}, nil
}

// DescribeTaskDefinition describes a family's newest ACTIVE revision, or a
// given revision (family:revision or ARN) in any status.
func (h *handlers) DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput) (*ecs.DescribeTaskDefinitionOutput, error) {
	if err := h.authorize(ctx, "DescribeTaskDefinition", anyResource); err != nil {
		return nil, err
	}
	ref, err := h.parseTaskDefRef(aws.ToString(in.TaskDefinition))
	if err != nil {
		return nil, err
	}
	rec, _, err := h.findTaskDefinition(ctx, ref, h.taskDefs.Decode)
	if err != nil {
		return nil, err
	}
	out := &ecs.DescribeTaskDefinitionOutput{TaskDefinition: &rec.TaskDefinition}
	withTags, err := includeTags(in.Include, types.TaskDefinitionFieldTags)
	if err != nil {
		return nil, err
	}
	if withTags {
		out.Tags = rec.Tags
		if out.Tags == nil {
			out.Tags = []types.Tag{}
		}
	}
	return out, nil
}

// tdSortKey orders task definitions by family name, then numerically by
// revision. NUL sorts before every character a family may contain, so a
// family sorts before the families it is a prefix of.
func tdSortKey(family string, revision int32) string {
	return fmt.Sprintf("%s\x00%010d", family, revision)
}

// ListTaskDefinitions lists task definition ARNs of one status (ACTIVE by
// default), optionally of one family (familyPrefix is a full family name,
// as in ECS), by family then revision, ascending by default.
func (h *handlers) ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput) (*ecs.ListTaskDefinitionsOutput, error) {
	if err := h.authorize(ctx, "ListTaskDefinitions", anyResource); err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = types.TaskDefinitionStatusActive
	}
	if !slices.Contains(status.Values(), status) {
		return nil, domain.InvalidParameter("Invalid status " + string(status) + ". Valid values are ACTIVE, INACTIVE and DELETE_IN_PROGRESS.")
	}
	desc, err := sortDescending(in.Sort)
	if err != nil {
		return nil, err
	}
	prefix := domain.TaskDefinitionsPrefix
	if f := aws.ToString(in.FamilyPrefix); f != "" {
		if strings.Contains(f, "/") {
			return &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: []string{}}, nil
		}
		prefix = domain.TaskDefinitionFamilyPrefix(f)
	}
	recs, err := listView(ctx, h.store, prefix, &h.taskDefs)
	if err != nil {
		return nil, err
	}
	type item struct{ key, arn string }
	var items []item
	for _, r := range recs {
		td := r.Value.TaskDefinition
		if td.Status != status {
			continue
		}
		family := aws.ToString(td.Family)
		items = append(items, item{tdSortKey(family, td.Revision), h.taskDefinitionARN(family, td.Revision)})
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.key, b.key) })
	if desc {
		slices.Reverse(items)
	}
	page, next, err := paginate(items, func(i item) string { return i.key }, desc, in.MaxResults, in.NextToken, listLimits)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: []string{}, NextToken: next}
	for _, i := range page {
		out.TaskDefinitionArns = append(out.TaskDefinitionArns, i.arn)
	}
	return out, nil
}

func sortDescending(o types.SortOrder) (bool, error) {
	switch o {
	case "", types.SortOrderAsc:
		return false, nil
	case types.SortOrderDesc:
		return true, nil
	default:
		return false, domain.InvalidParameter("Invalid sort " + string(o) + ". Valid values are ASC and DESC.")
	}
}

// ListTaskDefinitionFamilies lists family names that start with
// familyPrefix. By default (ALL) every family that still has a revision is
// listed; ACTIVE keeps those with an ACTIVE revision, INACTIVE those
// without one.
func (h *handlers) ListTaskDefinitionFamilies(ctx context.Context, in *ecs.ListTaskDefinitionFamiliesInput) (*ecs.ListTaskDefinitionFamiliesOutput, error) {
	if err := h.authorize(ctx, "ListTaskDefinitionFamilies", anyResource); err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = types.TaskDefinitionFamilyStatusAll
	}
	if !slices.Contains(status.Values(), status) {
		return nil, domain.InvalidParameter("Invalid status " + string(status) + ". Valid values are ACTIVE, INACTIVE and ALL.")
	}
	fams, err := list[domain.TaskDefinitionFamily](ctx, h.store, domain.TaskDefinitionFamiliesPrefix+aws.ToString(in.FamilyPrefix))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range fams {
		v := f.Value
		if v.Revisions == 0 {
			continue
		}
		switch status {
		case types.TaskDefinitionFamilyStatusActive:
			if v.ActiveRevisions == 0 {
				continue
			}
		case types.TaskDefinitionFamilyStatusInactive:
			if v.ActiveRevisions > 0 {
				continue
			}
		}
		names = append(names, v.Family)
	}
	slices.Sort(names)
	page, next, err := paginate(names, func(s string) string { return s }, false, in.MaxResults, in.NextToken, listLimits)
	if err != nil {
		return nil, err
	}
	return &ecs.ListTaskDefinitionFamiliesOutput{Families: append([]string{}, page...), NextToken: next}, nil
}

// DeregisterTaskDefinition marks one revision INACTIVE. A revision is
// required; deregistering an INACTIVE revision returns it unchanged.
func (h *handlers) DeregisterTaskDefinition(ctx context.Context, in *ecs.DeregisterTaskDefinitionInput) (*ecs.DeregisterTaskDefinitionOutput, error) {
	if err := h.authorize(ctx, "DeregisterTaskDefinition", anyResource); err != nil {
		return nil, err
	}
	ref, err := h.parseTaskDefRef(aws.ToString(in.TaskDefinition))
	if err != nil {
		return nil, err
	}
	if ref.revision == 0 {
		return nil, domain.ClientError("Revision is missing.")
	}
	tdKey := domain.TaskDefinitionKey(ref.family, ref.revision)
	famKey := domain.TaskDefinitionFamilyKey(ref.family)
	var out domain.TaskDefinitionRecord
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		rec, rev, err := h.findTaskDefinition(ctx, ref, decode[domain.TaskDefinitionRecord])
		if err != nil {
			return nil, nil, err
		}
		out = rec
		if rec.TaskDefinition.Status != types.TaskDefinitionStatusActive {
			return nil, nil, nil
		}
		fam, famRev, _, err := get[domain.TaskDefinitionFamily](ctx, h.store, famKey)
		if err != nil {
			return nil, nil, err
		}
		fam.Family = ref.family
		fam.ActiveRevisions = max(fam.ActiveRevisions-1, 0)
		rec.TaskDefinition.Status = types.TaskDefinitionStatusInactive
		rec.TaskDefinition.DeregisteredAt = aws.Time(h.now())
		tdOp, err := put(tdKey, rec)
		if err != nil {
			return nil, nil, err
		}
		famOp, err := put(famKey, fam)
		if err != nil {
			return nil, nil, err
		}
		out = rec
		return []store.Cond{{Key: tdKey, ModRevision: rev}, {Key: famKey, ModRevision: famRev}},
			[]store.Op{tdOp, famOp}, nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.DeregisterTaskDefinitionOutput{TaskDefinition: &out.TaskDefinition}, nil
}

// DeleteTaskDefinitions deletes up to 10 INACTIVE revisions. Each goes to
// DELETE_IN_PROGRESS and, since no task or service can reference it yet, is
// removed at once; the response shows it DELETE_IN_PROGRESS, as ECS does.
// Revisions that cannot be deleted are failures, not errors.
func (h *handlers) DeleteTaskDefinitions(ctx context.Context, in *ecs.DeleteTaskDefinitionsInput) (*ecs.DeleteTaskDefinitionsOutput, error) {
	if len(in.TaskDefinitions) == 0 {
		if err := h.authorize(ctx, "DeleteTaskDefinitions", anyResource); err != nil {
			return nil, err
		}
		return nil, domain.InvalidParameter("taskDefinitions must contain at least one task definition.")
	}
	// refs[i] is nil for a reference without a revision or unparsable;
	// foreign[i] marks an ARN of another region or account.
	refs := make([]*taskDefRef, len(in.TaskDefinitions))
	foreign := make([]bool, len(in.TaskDefinitions))
	for i, s := range in.TaskDefinitions {
		resource := anyResource
		if family, rev, isARN, err := domain.ParseTaskDefinitionRef(s); err == nil && rev != 0 {
			refs[i] = &taskDefRef{family: family, revision: rev}
			resource = h.taskDefinitionARN(family, rev)
			if isARN {
				r, err := arn.Parse(s)
				foreign[i] = err != nil || !r.In(h.region, h.account)
				resource = s
			}
		}
		if err := h.authorize(ctx, "DeleteTaskDefinitions", resource); err != nil {
			return nil, err
		}
	}
	if len(in.TaskDefinitions) > maxDeleteTaskDefinitions {
		return nil, domain.InvalidParameter(fmt.Sprintf("taskDefinitions can contain at most %d task definitions.", maxDeleteTaskDefinitions))
	}

	var out *ecs.DeleteTaskDefinitionsOutput
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		out = &ecs.DeleteTaskDefinitionsOutput{TaskDefinitions: []types.TaskDefinition{}, Failures: []types.Failure{}}
		var conds []store.Cond
		var ops []store.Op
		type famState struct {
			fam domain.TaskDefinitionFamily
			rev int64
		}
		fams := map[string]*famState{}
		seen := map[string]bool{}
		fail := func(arn, reason string) {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String(reason)})
		}
		now := h.now()
		for i, ref := range refs {
			if ref == nil {
				fail(in.TaskDefinitions[i], reasonInvalidIdentifier)
				continue
			}
			tdARN := h.taskDefinitionARN(ref.family, ref.revision)
			if foreign[i] {
				fail(in.TaskDefinitions[i], reasonDoesNotExist)
				continue
			}
			key := domain.TaskDefinitionKey(ref.family, ref.revision)
			if seen[key] {
				continue
			}
			seen[key] = true
			rec, rev, found, err := get[domain.TaskDefinitionRecord](ctx, h.store, key)
			if err != nil {
				return nil, nil, err
			}
			if !found {
				fail(tdARN, reasonDoesNotExist)
				continue
			}
			switch rec.TaskDefinition.Status {
			case types.TaskDefinitionStatusActive:
				fail(tdARN, reasonStillActive)
				continue
			case types.TaskDefinitionStatusDeleteInProgress:
				out.TaskDefinitions = append(out.TaskDefinitions, rec.TaskDefinition) // already being deleted
				continue
			}
			fs := fams[ref.family]
			if fs == nil {
				fam, famRev, _, err := get[domain.TaskDefinitionFamily](ctx, h.store, domain.TaskDefinitionFamilyKey(ref.family))
				if err != nil {
					return nil, nil, err
				}
				fam.Family = ref.family
				fs = &famState{fam: fam, rev: famRev}
				fams[ref.family] = fs
			}
			fs.fam.Revisions = max(fs.fam.Revisions-1, 0)
			// The record stays, DELETE_IN_PROGRESS, so it can still be
			// described, as in ECS; it no longer counts for its family.
			rec.TaskDefinition.Status = types.TaskDefinitionStatusDeleteInProgress
			rec.TaskDefinition.DeleteRequestedAt = aws.Time(now)
			out.TaskDefinitions = append(out.TaskDefinitions, rec.TaskDefinition)
			op, err := put(key, rec)
			if err != nil {
				return nil, nil, err
			}
			conds = append(conds, store.Cond{Key: key, ModRevision: rev})
			ops = append(ops, op)
		}
		for family, fs := range fams {
			key := domain.TaskDefinitionFamilyKey(family)
			op, err := put(key, fs.fam)
			if err != nil {
				return nil, nil, err
			}
			conds = append(conds, store.Cond{Key: key, ModRevision: fs.rev})
			ops = append(ops, op)
		}
		return conds, ops, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
