package taskrunner

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/errdefs"
)

// scriptedReporter answers each call with the next error of its script
// (nil after the script ends) and records what it accepted.
type scriptedReporter struct {
	mu       sync.Mutex
	script   []error
	accepted []string
	calls    int
}

func (s *scriptedReporter) next(what string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.script) > 0 {
		err := s.script[0]
		s.script = s.script[1:]
		if err != nil {
			return err
		}
	}
	s.accepted = append(s.accepted, what)
	return nil
}

func (s *scriptedReporter) SubmitTaskStateChange(_ context.Context, in *ecs.SubmitTaskStateChangeInput) error {
	return s.next(aws.ToString(in.Status))
}

func (s *scriptedReporter) SubmitContainerStateChange(_ context.Context, in *ecs.SubmitContainerStateChangeInput) error {
	return s.next("container " + aws.ToString(in.Status))
}

func TestReportQueue(t *testing.T) {
	down := errdefs.New(errdefs.ErrUnavailable, "down")
	tests := []struct {
		name     string
		script   []error
		accepted []string
		calls    int
	}{
		{"all accepted", nil, []string{"PENDING", "container STOPPED", "STOPPED"}, 3},
		{"retried in order", []error{down, down, nil, down}, []string{"PENDING", "container STOPPED", "STOPPED"}, 6},
		{"refused ones dropped", []error{errdefs.InvalidArgument("no"), nil, errdefs.NotFound("no task")}, []string{"container STOPPED"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &scriptedReporter{script: tt.script}
			q := newReportQueue(rep, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Millisecond, 2*time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { q.run(ctx) })
			defer func() { cancel(); wg.Wait() }()
			acked := make(chan struct{})
			q.push(report{task: &ecs.SubmitTaskStateChangeInput{Status: aws.String("PENDING")}})
			q.push(report{container: &ecs.SubmitContainerStateChangeInput{Status: aws.String("STOPPED")}})
			q.push(report{task: &ecs.SubmitTaskStateChangeInput{Status: aws.String("STOPPED")}, acked: acked})
			select {
			case <-acked:
			case <-time.After(10 * time.Second):
				t.Fatal("the last report was never acknowledged")
			}
			rep.mu.Lock()
			defer rep.mu.Unlock()
			if rep.calls != tt.calls || len(rep.accepted) != len(tt.accepted) {
				t.Fatalf("calls %d accepted %v; want %d and %v", rep.calls, rep.accepted, tt.calls, tt.accepted)
			}
			for i := range tt.accepted {
				if rep.accepted[i] != tt.accepted[i] {
					t.Errorf("accepted %v, want %v", rep.accepted, tt.accepted)
				}
			}
		})
	}
}
