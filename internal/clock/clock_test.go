package clock

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("a live context reported ended")
	}
	if !Sleep(context.Background(), 0) {
		t.Error("zero wait on a live context reported ended")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("an ended context did not end the wait")
	}
	if Sleep(ctx, 0) {
		t.Error("zero wait on an ended context reported live")
	}
}

func TestFake(t *testing.T) {
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	f.Advance(time.Minute)
	if got := f.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Errorf("after Advance: %v", got)
	}
	f.Set(start)
	if !f.Now().Equal(start) {
		t.Errorf("after Set: %v", f.Now())
	}
}
