package ecsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/store"
)

// acknowledgment is what the state-change actions answer.
const acknowledgment = "ACK"

// epochTime decodes a timestamp of an awsJson request: epoch seconds as a
// number (what the SDKs send), or a string holding such a number or an
// RFC 3339 time.
type epochTime struct{ time.Time }

func (t *epochTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return &json.UnmarshalTypeError{Value: "timestamp " + strconv.Quote(s), Type: reflect.TypeFor[time.Time]()}
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC().Truncate(time.Millisecond)
	return nil
}

func (t *epochTime) ptr() *time.Time {
	if t == nil {
		return nil
	}
	return aws.Time(t.Time)
}

// submitTaskStateChangeRequest is SubmitTaskStateChange's input with its
// timestamps read as epoch seconds: encoding/json, which decodes awsJson
// request bodies, cannot read a number into a time.Time. The tagged fields
// shadow the SDK input's fields of the same wire name.
type submitTaskStateChangeRequest struct {
	ecs.SubmitTaskStateChangeInput
	PullStartedAtEpoch      *epochTime `json:"pullStartedAt"`
	PullStoppedAtEpoch      *epochTime `json:"pullStoppedAt"`
	ExecutionStoppedAtEpoch *epochTime `json:"executionStoppedAt"`
}

// SubmitTaskStateChange records an agent's report of a task's state
// (PENDING, RUNNING or STOPPED, with its containers' states). berth derives
// the lifecycle ECS shows from it (docs/architecture/task-lifecycle.md);
// reaching STOPPED credits the task's resources back to its instance and
// removes it from the instance's index, in the same transaction. Other
// changes write the task record only.
func (h *handlers) SubmitTaskStateChange(ctx context.Context, in *submitTaskStateChangeRequest) (*ecs.SubmitTaskStateChangeOutput, error) {
	r := domain.TaskReport{
		Status:             aws.ToString(in.Status),
		Reason:             aws.ToString(in.Reason),
		PullStartedAt:      in.PullStartedAtEpoch.ptr(),
		PullStoppedAt:      in.PullStoppedAtEpoch.ptr(),
		ExecutionStoppedAt: in.ExecutionStoppedAtEpoch.ptr(),
	}
	for _, c := range in.Containers {
		r.Containers = append(r.Containers, domain.ContainerReport{
			Name:            aws.ToString(c.ContainerName),
			Status:          aws.ToString(c.Status),
			ExitCode:        c.ExitCode,
			Reason:          aws.ToString(c.Reason),
			RuntimeID:       aws.ToString(c.RuntimeId),
			ImageDigest:     aws.ToString(c.ImageDigest),
			NetworkBindings: c.NetworkBindings,
		})
	}
	if err := h.report(ctx, "SubmitTaskStateChange", in.Cluster, aws.ToString(in.Task), r); err != nil {
		return nil, err
	}
	return &ecs.SubmitTaskStateChangeOutput{Acknowledgment: aws.String(acknowledgment)}, nil
}

// SubmitContainerStateChange records an agent's report of one container's
// state; it changes the task's containers, not the task's own status.
func (h *handlers) SubmitContainerStateChange(ctx context.Context, in *ecs.SubmitContainerStateChangeInput) (*ecs.SubmitContainerStateChangeOutput, error) {
	name := aws.ToString(in.ContainerName)
	if name == "" {
		if err := h.authorize(ctx, "SubmitContainerStateChange", h.clusterResource(in.Cluster)); err != nil {
			return nil, err
		}
		return nil, domain.InvalidParameter("containerName is required.")
	}
	r := domain.TaskReport{Containers: []domain.ContainerReport{{
		Name:            name,
		Status:          aws.ToString(in.Status),
		ExitCode:        in.ExitCode,
		Reason:          aws.ToString(in.Reason),
		RuntimeID:       aws.ToString(in.RuntimeId),
		NetworkBindings: in.NetworkBindings,
	}}}
	if err := h.report(ctx, "SubmitContainerStateChange", in.Cluster, aws.ToString(in.Task), r); err != nil {
		return nil, err
	}
	return &ecs.SubmitContainerStateChangeOutput{Acknowledgment: aws.String(acknowledgment)}, nil
}

// report applies an agent's report to a task; when the task stopped, in
// one transaction with the instance record (the credit of its resources)
// and the deletion of its index key.
func (h *handlers) report(ctx context.Context, action string, clusterRef *string, ref string, r domain.TaskReport) error {
	if err := h.authorize(ctx, action, h.clusterResource(clusterRef)); err != nil {
		return err
	}
	cluster, err := h.taskCluster(clusterRef, ref)
	if err != nil {
		return err
	}
	if ref == "" {
		return domain.InvalidParameter("task is required.")
	}
	if r.Status != "" && !domain.ValidReportStatus(r.Status) {
		return domain.InvalidParameter("Invalid status " + r.Status + ". Valid values are PENDING, RUNNING and STOPPED.")
	}
	id, ok := h.taskRef(cluster, ref)
	if !ok {
		return taskNotFound()
	}
	return h.applyReport(ctx, cluster, id, func(*domain.TaskRecord) (domain.TaskReport, error) { return r, nil }, taskNotFound())
}

// errSkipReport, returned by an applyReport build function, leaves the
// task as it is without an error.
var errSkipReport = errors.New("report skipped")

// applyReport applies the report that build makes of the task's current
// record (so that a caller can check the record first: the agent channel
// accepts health only for its own instance's tasks). A missing task is
// the error missing (nil: ignored). Authorization is the caller's.
func (h *handlers) applyReport(ctx context.Context, cluster, id string, build func(*domain.TaskRecord) (domain.TaskReport, error), missing error) error {
	key := domain.TaskKey(cluster, id)
	synced := false
	err := h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		t, rev, found, err := getSynced[domain.TaskRecord](ctx, h.store, key, &synced)
		if err != nil {
			return nil, nil, err
		}
		if !found {
			if missing == nil {
				return nil, nil, nil
			}
			return nil, nil, missing
		}
		r, err := build(&t)
		if err != nil {
			return nil, nil, err
		}
		now := h.now()
		from := t.Phase()
		changed, err := t.Apply(r, now)
		if err != nil || !changed {
			return nil, nil, err
		}
		var conds []store.Cond
		var ops []store.Op
		if from != domain.PhaseStopped && t.Phase() == domain.PhaseStopped && t.InstanceID != "" {
			// Only a stop changes the instance (its resources come back):
			// a start changes no record but the task's, so that reports
			// do not conflict with placements on the same instance.
			if !t.Released {
				ikey := domain.ContainerInstanceKey(cluster, t.InstanceID)
				ci, irev, found, err := get[domain.ContainerInstance](ctx, h.store, ikey)
				if err != nil {
					return nil, nil, err
				}
				if found {
					ci.Release(t.Reserved, aws.ToString(t.Task.Group))
					ci.Touch(now)
					op, err := put(ikey, ci)
					if err != nil {
						return nil, nil, err
					}
					conds = append(conds, store.Cond{Key: ikey, ModRevision: irev})
					ops = append(ops, op)
				}
			}
			t.Released = true
			ops = append(ops, store.Delete(domain.InstanceTaskKey(cluster, t.InstanceID, id)))
		}
		op, err := put(key, t)
		if err != nil {
			return nil, nil, err
		}
		return append(conds, store.Cond{Key: key, ModRevision: rev}), append(ops, op), nil
	})
	if errors.Is(err, errSkipReport) {
		return nil
	}
	return err
}
