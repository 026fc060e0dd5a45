// Package periodic runs the level-driven sweeps of the controllers (the
// task reaper, the ECR lifecycle sweeper): once at start, then every
// interval, until the owner cancels; a failed sweep is logged and retried
// at the next interval, since nothing depends on a sweep having run.
package periodic

import (
	"context"
	"log/slog"
	"time"
)

// Run calls sweep at once and then every interval until ctx ends, logging
// failures as warnings and non-zero counts at level; it returns when ctx
// ends. name labels the log lines.
func Run(ctx context.Context, interval time.Duration, log *slog.Logger, name string, level slog.Level, sweep func(context.Context) (int, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn(name+" failed", "err", err)
		} else if n > 0 {
			log.Log(ctx, level, name+" done", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
