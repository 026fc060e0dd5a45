package store

import (
	"context"
	"errors"
	"testing"
)

func TestFollow(t *testing.T) {
	ch := make(chan WatchResponse, 3)
	ch <- WatchResponse{Revision: 1}
	ch <- WatchResponse{Revision: 2}
	boom := errors.New("boom")
	ch <- WatchResponse{Err: boom}
	var got []int64
	progressed, err := Follow(context.Background(), ch, func(r WatchResponse) { got = append(got, r.Revision) })
	if !progressed || !errors.Is(err, boom) || len(got) != 2 {
		t.Fatalf("progressed %v err %v got %v", progressed, err, got)
	}
	closed := make(chan WatchResponse)
	close(closed)
	if progressed, err := Follow(context.Background(), closed, func(WatchResponse) {}); progressed || err == nil {
		t.Fatalf("closed watch: %v %v", progressed, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Follow(ctx, make(chan WatchResponse), func(WatchResponse) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}
}
