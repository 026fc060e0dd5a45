package registry

import (
	"context"
	"io"
	"log/slog"
	"reflect"

	"github.com/sirupsen/logrus"
)

// distribution logs through logrus, by default to the process-global
// standard logger, at Info for every request and at Error for every 4xx.
// Its per-context logger key lives in an internal package, so berth cannot
// set it with distribution's API; logContext answers distribution's lookup
// of that key with a logrus entry of berth's own, whose hook forwards to
// slog. Nothing global changes. If a distribution upgrade renames the key,
// logging falls back to the standard logger and TestLibraryLogsGoToSlog
// fails.
const dcontextLoggerKey = "github.com/distribution/distribution/v3/internal/dcontext.loggerKey"

type logContext struct {
	context.Context
	entry *logrus.Entry
}

func (c logContext) Value(key any) any {
	if t := reflect.TypeOf(key); t != nil && t.PkgPath()+"."+t.Name() == dcontextLoggerKey {
		return c.entry
	}
	return c.Context.Value(key)
}

// newLibraryLogger returns the logrus entry distribution logs to. Only
// Warn and above are formed at all; client errors (4xx), which
// distribution logs at Error, go to slog at Debug.
func newLibraryLogger(log *slog.Logger) *logrus.Entry {
	l := logrus.New()
	l.Out = io.Discard
	l.Level = logrus.WarnLevel
	l.AddHook(slogHook{log})
	return logrus.NewEntry(l)
}

type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelError
	switch e.Level {
	case logrus.WarnLevel:
		level = slog.LevelWarn
	case logrus.InfoLevel:
		level = slog.LevelInfo
	case logrus.DebugLevel, logrus.TraceLevel:
		level = slog.LevelDebug
	}
	if status, ok := e.Data["http.response.status"].(int); ok && status < 500 {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !h.log.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		if k == "go.version" {
			continue
		}
		attrs = append(attrs, k, v)
	}
	h.log.Log(ctx, level, "distribution: "+e.Message, attrs...)
	return nil
}

// libCtx returns ctx with distribution's logger set to berth's.
func (r *Registry) libCtx(ctx context.Context) context.Context {
	return logContext{Context: ctx, entry: r.libLog}
}
