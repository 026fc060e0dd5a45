package periodic

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunSweepsAtOnceAndAgainUntilCancelled: the first sweep runs at once,
// a failure does not stop the loop, and Run returns when ctx ends.
func TestRunSweepsAtOnceAndAgainUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan struct{})
	go func() {
		Run(ctx, 5*time.Millisecond, slog.New(slog.DiscardHandler), "test", slog.LevelInfo, func(context.Context) (int, error) {
			if calls.Add(1) == 1 {
				return 0, errors.New("first sweep fails")
			}
			return 1, nil
		})
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sweeps after 10 s", calls.Load())
		}
		<-time.After(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
