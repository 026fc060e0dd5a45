package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/arn"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// Limits of the task actions (ECS API reference).
const (
	maxRunCount        = 10
	maxStartInstances  = 10
	maxDescribeTasks   = 100
	maxGroupLength     = 255
	maxReferenceID     = 1024
	maxClientTokenSize = 64
)

// startedByPattern: up to 36 letters, digits, hyphens and underscores.
var startedByPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,36}$`)

func (h *handlers) taskARN(cluster, id string) string {
	return arn.Task(h.region, h.account, cluster, id)
}

// taskRef resolves a task parameter (an id or an ARN) in a cluster to an
// id; ok is false when it cannot name a task there.
func (h *handlers) taskRef(cluster, ref string) (string, bool) {
	return resolveRef(h.region, h.account, arn.TypeTask, cluster, ref)
}

// taskRefARN is the ARN a task reference stands for.
func (h *handlers) taskRefARN(cluster, ref string) string {
	if arn.IsARN(ref) {
		return ref
	}
	return h.taskARN(cluster, ref)
}

// taskCluster is the cluster of a task parameter: the cluster parameter
// when given, else the cluster a task ARN names, else the default cluster.
func (h *handlers) taskCluster(cluster *string, ref string) (string, error) {
	return h.refCluster(cluster, ref, arn.TypeTask)
}

// refCluster is the cluster of a parameter referring to a resource of
// type typ: the cluster parameter when given, else the cluster the
// resource's ARN names, else the default cluster.
func (h *handlers) refCluster(cluster *string, ref string, typ string) (string, error) {
	if aws.ToString(cluster) == "" && arn.IsARN(ref) {
		if r, err := arn.Parse(ref); err == nil && r.Type == typ && r.In(h.region, h.account) {
			return r.Cluster, nil
		}
	}
	return h.clusterRef(cluster)
}

func taskNotFound() error {
	return domain.InvalidParameter("The referenced task was not found.")
}

// taskRun is what RunTask and StartTask share.
type taskRun struct {
	action         string
	taskDefinition *string
	cluster        *string
	overrides      *types.TaskOverride
	group          *string
	startedBy      *string
	tags           []types.Tag
	propagateTags  types.PropagateTags
	referenceID    *string
	execute        bool
	networkConfig  *types.NetworkConfiguration
}

// prepareRun authorizes and validates what RunTask and StartTask share and
// fills in a placeInput. The task definition revision is resolved before
// authorization, as ECS does (the resource is the revision's ARN).
func (h *handlers) prepareRun(ctx context.Context, r taskRun) (placeInput, error) {
	var none placeInput
	ref, tdErr := h.parseTaskDefRef(aws.ToString(r.taskDefinition))
	var rec domain.TaskDefinitionRecord
	if tdErr == nil {
		rec, _, tdErr = h.findTaskDefinition(ctx, ref, h.taskDefs.Decode)
	}
	resource := anyResource
	if tdErr == nil {
		resource = aws.ToString(rec.TaskDefinition.TaskDefinitionArn)
	}
	if err := h.authorize(ctx, r.action, resource); err != nil {
		return none, err
	}
	if tdErr != nil {
		return none, tdErr
	}
	if len(r.tags) > 0 {
		if err := h.authorize(ctx, "TagResource", anyResource); err != nil {
			return none, err
		}
	}
	td := &rec.TaskDefinition
	if err := h.authorizeRoles(ctx, td, r.overrides); err != nil {
		return none, err
	}
	if td.Status != types.TaskDefinitionStatusActive {
		return none, domain.InvalidParameter("TaskDefinition is inactive")
	}
	cluster, err := h.clusterRef(r.cluster)
	if err != nil {
		return none, err
	}
	if err := domain.ValidateTaskOverride(td, r.overrides); err != nil {
		return none, err
	}
	group := aws.ToString(r.group)
	if group == "" {
		group = "family:" + aws.ToString(td.Family)
	} else if n := utf8.RuneCountInString(group); n > maxGroupLength {
		return none, domain.InvalidParameter(fmt.Sprintf("group can be at most %d characters.", maxGroupLength))
	}
	startedBy := aws.ToString(r.startedBy)
	if startedBy != "" && !startedByPattern.MatchString(startedBy) {
		return none, domain.InvalidParameter("startedBy can be up to 36 letters (uppercase and lowercase), numbers, hyphens and underscores.")
	}
	if len(aws.ToString(r.referenceID)) > maxReferenceID {
		return none, domain.InvalidParameter(fmt.Sprintf("referenceId can be at most %d characters.", maxReferenceID))
	}
	tags := r.tags
	switch r.propagateTags {
	case "", types.PropagateTagsNone:
	case types.PropagateTagsTaskDefinition:
		if tags, err = domain.MergeTags(rec.Tags, r.tags); err != nil {
			return none, err
		}
	case types.PropagateTagsService:
		return none, domain.InvalidParameter("propagateTags SERVICE is not valid when running a task. Valid values are TASK_DEFINITION and NONE.")
	default:
		return none, domain.InvalidParameter("Invalid propagateTags " + string(r.propagateTags) + ". Valid values are TASK_DEFINITION, SERVICE and NONE.")
	}
	if err := domain.ValidateTags(tags); err != nil {
		return none, err
	}
	if td.NetworkMode == types.NetworkModeAwsvpc || r.networkConfig != nil && r.networkConfig.AwsvpcConfiguration != nil {
		return none, domain.InvalidParameter("The awsvpc network mode is not supported by berth yet for EC2 and EXTERNAL tasks; use bridge, host or none.")
	}
	return placeInput{
		cluster:   cluster,
		td:        td,
		overrides: r.overrides,
		demand:    domain.TaskResources(td, r.overrides),
		count:     1,
		group:     group,
		startedBy: startedBy,
		tags:      tags,
		execute:   r.execute,
	}, nil
}

// authorizeRoles checks iam:PassRole for the task and execution roles a
// task will run with (the overrides' or the definition's).
func (h *handlers) authorizeRoles(ctx context.Context, td *types.TaskDefinition, ov *types.TaskOverride) error {
	roles := []*string{td.TaskRoleArn, td.ExecutionRoleArn}
	if ov != nil {
		if ov.TaskRoleArn != nil {
			roles[0] = ov.TaskRoleArn
		}
		if ov.ExecutionRoleArn != nil {
			roles[1] = ov.ExecutionRoleArn
		}
	}
	for _, r := range roles {
		if role := aws.ToString(r); role != "" {
			if err := h.authz.Authorize(ctx, caller(ctx), "iam:PassRole", role); err != nil {
				return err
			}
		}
	}
	return nil
}

// RunTask starts count (1–10) tasks of a task definition on the cluster's
// container instances, placed with the call's strategies and constraints
// and the task definition's constraints (docs/placement.md); ExplainPlacement
// shares its validation. Tasks that cannot be placed
// are returned in failures with ECS's reasons, never as an error; a cluster
// without any registered instance is InvalidParameterException, as in ECS.
// A clientToken makes the call idempotent for 24 hours: the same token with
// the same parameters returns the same tasks.
func (h *handlers) RunTask(ctx context.Context, in *ecs.RunTaskInput) (*ecs.RunTaskOutput, error) {
	pin, err := h.prepareRunTask(ctx, in)
	if err != nil {
		return nil, err
	}
	if tok := aws.ToString(in.ClientToken); tok != "" {
		if len(tok) > maxClientTokenSize {
			return nil, domain.InvalidParameter(fmt.Sprintf("clientToken can be at most %d characters.", maxClientTokenSize))
		}
		req := *in
		req.ClientToken = nil
		if pin.tokenHash, err = requestHash(&req); err != nil {
			return nil, err
		}
		pin.tokenKey = domain.ClientTokenKey("RunTask", tok)
	}
	res, err := h.place(ctx, pin)
	if err != nil {
		return nil, err
	}
	tasks, fails := res.render()
	return &ecs.RunTaskOutput{Tasks: tasks, Failures: fails}, nil
}

// runLaunchType is RunTask's launch type: EC2 when none is given; EC2 and
// EXTERNAL both run on berth's container instances. FARGATE and capacity
// provider strategies arrive with the Fargate issue.
func runLaunchType(lt types.LaunchType, strategy []types.CapacityProviderStrategyItem, td *types.TaskDefinition) (types.LaunchType, error) {
	if len(strategy) > 0 {
		if lt != "" {
			return "", domain.InvalidParameter("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
		}
		return "", domain.InvalidParameter("Capacity provider strategies are not supported by berth yet; use launchType EC2 or EXTERNAL.")
	}
	switch lt {
	case "":
		lt = types.LaunchTypeEc2
	case types.LaunchTypeEc2, types.LaunchTypeExternal:
	case types.LaunchTypeFargate:
		return "", domain.InvalidParameter("The FARGATE launch type is not supported by berth yet; use launchType EC2 or EXTERNAL.")
	case types.LaunchTypeManagedInstances:
		return "", domain.InvalidParameter("The MANAGED_INSTANCES launch type is not supported by berth; use launchType EC2 or EXTERNAL.")
	default:
		return "", domain.InvalidParameter("Invalid launchType " + string(lt) + ". Valid values are EC2, FARGATE, EXTERNAL and MANAGED_INSTANCES.")
	}
	if !domain.TaskDefinitionSupports(td, lt) {
		return "", domain.InvalidParameter("Task definition does not support launch_type " + string(lt) + ".")
	}
	return lt, nil
}

// StartTask starts one task of a task definition on each named container
// instance (up to 10). Instances that cannot take it are failures: MISSING
// (unknown), INACTIVE (deregistered), DRAINING, AGENT (disconnected),
// RESOURCE:* (no room). The launch type is EC2.
func (h *handlers) StartTask(ctx context.Context, in *ecs.StartTaskInput) (*ecs.StartTaskOutput, error) {
	pin, err := h.prepareRun(ctx, taskRun{
		action: "StartTask", taskDefinition: in.TaskDefinition, cluster: in.Cluster, overrides: in.Overrides,
		group: in.Group, startedBy: in.StartedBy, tags: in.Tags, propagateTags: in.PropagateTags,
		referenceID: in.ReferenceId, execute: in.EnableExecuteCommand, networkConfig: in.NetworkConfiguration,
	})
	if err != nil {
		return nil, err
	}
	if len(in.ContainerInstances) == 0 {
		return nil, domain.InvalidParameter("Container instance cannot be empty.")
	}
	if len(in.ContainerInstances) > maxStartInstances {
		return nil, domain.InvalidParameter(fmt.Sprintf("containerInstances can have at most %d items.", maxStartInstances))
	}
	if pin.launchType, err = runLaunchType("", nil, pin.td); err != nil {
		return nil, err
	}
	pin.targets = in.ContainerInstances
	pin.count = len(in.ContainerInstances)
	res, err := h.place(ctx, pin)
	if err != nil {
		return nil, err
	}
	tasks, fails := res.render()
	return &ecs.StartTaskOutput{Tasks: tasks, Failures: fails}, nil
}

// StopTask asks a task to stop (a task ARN names its cluster when the
// cluster parameter is omitted): desiredStatus STOPPED, stoppingAt, stopCode
// UserInitiated, stoppedReason the given reason ("Task stopped by user"
// when none), and its tags deleted, as ECS does. The agent stops the
// containers and reports STOPPED. Like ECS, the response shows lastStatus
// as it was when the call arrived; the record has moved on to STOPPING.
// Stopping a task that is already stopping or stopped returns it unchanged.
func (h *handlers) StopTask(ctx context.Context, in *ecs.StopTaskInput) (*ecs.StopTaskOutput, error) {
	ref := aws.ToString(in.Task)
	cluster, cerr := h.taskCluster(in.Cluster, ref)
	resource := anyResource
	if cerr == nil && ref != "" {
		resource = h.taskRefARN(cluster, ref)
	}
	if err := h.authorize(ctx, "StopTask", resource); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	if ref == "" {
		return nil, domain.InvalidParameter("task is required.")
	}
	reason := aws.ToString(in.Reason)
	if utf8.RuneCountInString(reason) > domain.MaxStopReason {
		return nil, domain.InvalidParameter(fmt.Sprintf("reason can be at most %d characters.", domain.MaxStopReason))
	}
	if reason == "" {
		reason = domain.StoppedReasonUser
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	id, ok := h.taskRef(cluster, ref)
	if !ok {
		return nil, taskNotFound()
	}
	key := domain.TaskKey(cluster, id)
	var out domain.TaskRecord
	var prior *string
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		t, rev, found, err := get[domain.TaskRecord](ctx, h.store, key)
		if err != nil {
			return nil, nil, err
		}
		if !found {
			return nil, nil, taskNotFound()
		}
		prior = t.Task.LastStatus
		out = t
		if !t.Stop(types.TaskStopCodeUserInitiated, reason, h.now()) {
			prior = nil
			return nil, nil, nil
		}
		out = t
		op, err := put(key, t)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{op}, nil
	})
	if err != nil {
		return nil, err
	}
	task := out.ToAPI(true)
	if prior != nil {
		task.LastStatus = prior
	}
	return &ecs.StopTaskOutput{Task: &task}, nil
}

// DescribeTasks describes up to 100 tasks of a cluster by id or ARN.
// Unknown ones are failures with reason MISSING (the tasks-running and
// tasks-stopped waiters rely on it). include TAGS adds their tags.
func (h *handlers) DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput) (*ecs.DescribeTasksOutput, error) {
	cluster, err := h.clusterAndRefs(ctx, "DescribeTasks", in.Cluster, in.Tasks, h.taskRefARN, refLimits{"Tasks cannot be empty.", "taskIds", maxDescribeTasks})
	if err != nil {
		return nil, err
	}
	withTags, err := includeTags(in.Include, types.TaskFieldTags)
	if err != nil {
		return nil, err
	}
	if _, err := h.existingCluster(ctx, aws.String(cluster)); err != nil {
		return nil, err
	}
	out := &ecs.DescribeTasksOutput{Tasks: []types.Task{}, Failures: []types.Failure{}}
	for _, ref := range in.Tasks {
		id, ok := h.taskRef(cluster, ref)
		if !ok {
			out.Failures = append(out.Failures, missing(h.taskRefARN(cluster, ref)))
			continue
		}
		t, _, err := h.tasks.Get(ctx, h.store, domain.TaskKey(cluster, id))
		if errors.Is(err, errdefs.ErrNotFound) {
			out.Failures = append(out.Failures, missing(h.taskARN(cluster, id)))
			continue
		}
		if err != nil {
			return nil, storeError(err)
		}
		out.Tasks = append(out.Tasks, t.ToAPI(withTags))
	}
	return out, nil
}

// ListTasks lists task ARNs of a cluster, by task id. desiredStatus
// defaults to RUNNING (tasks whose desired status is RUNNING); STOPPED lists
// stopping and stopped tasks; PENDING lists nothing, as ECS never desires
// it. The other filters (containerInstance, family, startedBy, serviceName,
// launchType) combine with AND.
func (h *handlers) ListTasks(ctx context.Context, in *ecs.ListTasksInput) (*ecs.ListTasksOutput, error) {
	if err := h.authorize(ctx, "ListTasks", h.clusterResource(in.Cluster)); err != nil {
		return nil, err
	}
	cluster, err := h.clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	desired := string(in.DesiredStatus)
	if desired == "" {
		desired = domain.TaskStatusRunning
	}
	if !slices.Contains(types.DesiredStatus("").Values(), types.DesiredStatus(desired)) {
		return nil, domain.InvalidParameter("Invalid desiredStatus " + desired + ". Valid values are RUNNING, PENDING and STOPPED.")
	}
	if in.LaunchType != "" && !slices.Contains(types.LaunchType("").Values(), in.LaunchType) {
		return nil, domain.InvalidParameter("Invalid launchType " + string(in.LaunchType) + ".")
	}
	if _, _, err := h.activeCluster(ctx, cluster); err != nil {
		return nil, err
	}
	instanceID := ""
	if ref := aws.ToString(in.ContainerInstance); ref != "" {
		var ok bool
		if instanceID, ok = h.instanceRef(cluster, ref); !ok {
			return &ecs.ListTasksOutput{TaskArns: []string{}}, nil
		}
	}
	recs, err := listView(ctx, h.store, domain.TasksPrefix(cluster), &h.tasks)
	if err != nil {
		return nil, err
	}
	family, startedBy := aws.ToString(in.Family), aws.ToString(in.StartedBy)
	service := aws.ToString(in.ServiceName)
	var ids []string
	for _, r := range recs {
		t := &r.Value
		switch {
		case aws.ToString(t.Task.DesiredStatus) != desired,
			instanceID != "" && t.InstanceID != instanceID,
			family != "" && t.Family != family,
			startedBy != "" && aws.ToString(t.Task.StartedBy) != startedBy,
			service != "" && aws.ToString(t.Task.Group) != "service:"+service,
			in.LaunchType != "" && t.Task.LaunchType != in.LaunchType,
			aws.ToString(in.DaemonName) != "": // berth has no daemons yet
			continue
		}
		ids = append(ids, t.ID)
	}
	page, next, err := paginate(ids, func(s string) string { return s }, false, in.MaxResults, in.NextToken, listLimits)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListTasksOutput{TaskArns: []string{}, NextToken: next}
	for _, id := range page {
		out.TaskArns = append(out.TaskArns, h.taskARN(cluster, id))
	}
	return out, nil
}
