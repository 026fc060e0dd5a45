package taskrunner

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Reporter sends state changes to the control plane (the ECS API's
// SubmitTaskStateChange and SubmitContainerStateChange). An error is
// retried with back-off, except one of kind errdefs.ErrInvalidArgument or
// errdefs.ErrNotFound, which the server will never accept (an unknown task,
// say): such a report is dropped. The implementation maps the API's
// exceptions to those kinds.
type Reporter interface {
	SubmitTaskStateChange(ctx context.Context, in *ecs.SubmitTaskStateChangeInput) error
	SubmitContainerStateChange(ctx context.Context, in *ecs.SubmitContainerStateChangeInput) error
}

// HealthReporter sends container health to the control plane (the agent
// channel's Health message). It should not block for long: health is sent
// again on every change and by Engine.ResendHealth after a reconnect, so
// an implementation may drop a message it cannot send.
type HealthReporter interface {
	ReportHealth(ctx context.Context, h agentproto.Health) error
}

// permanent reports whether the server will never take the report.
func permanent(err error) bool {
	return errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrNotFound)
}

// report is one queued state change.
type report struct {
	task      *ecs.SubmitTaskStateChangeInput
	container *ecs.SubmitContainerStateChangeInput
	// acked, if set, is closed once the report was accepted (or dropped as
	// permanently refused).
	acked chan struct{}
}

// reportQueue sends one task's reports in order, each retried until it is
// accepted or the queue's context ends.
type reportQueue struct {
	rep      Reporter
	log      *slog.Logger
	min, max time.Duration

	mu     sync.Mutex
	items  []report
	notify chan struct{}
}

func newReportQueue(rep Reporter, log *slog.Logger, minBackoff, maxBackoff time.Duration) *reportQueue {
	return &reportQueue{rep: rep, log: log, min: minBackoff, max: maxBackoff, notify: make(chan struct{}, 1)}
}

func (q *reportQueue) push(r report) {
	q.mu.Lock()
	q.items = append(q.items, r)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *reportQueue) pop() (report, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return report{}, false
	}
	r := q.items[0]
	q.items = q.items[1:]
	return r, true
}

// run sends until ctx ends; what is left unsent then is derived again from
// the task's state by the next agent run.
func (q *reportQueue) run(ctx context.Context) {
	for {
		r, ok := q.pop()
		if !ok {
			select {
			case <-q.notify:
				continue
			case <-ctx.Done():
				return
			}
		}
		if !q.send(ctx, r) {
			return
		}
		if r.acked != nil {
			close(r.acked)
		}
	}
}

// send delivers one report; false means ctx ended first.
func (q *reportQueue) send(ctx context.Context, r report) bool {
	backoff := q.min
	for attempt := 1; ; attempt++ {
		var err error
		if r.task != nil {
			err = q.rep.SubmitTaskStateChange(ctx, r.task)
		} else {
			err = q.rep.SubmitContainerStateChange(ctx, r.container)
		}
		switch {
		case err == nil:
			return true
		case ctx.Err() != nil:
			return false
		case permanent(err):
			q.log.Warn("state report refused by the server; dropped", "error", err)
			return true
		}
		q.log.Debug("state report failed; retrying", "attempt", attempt, "in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, q.max)
	}
}
