// Package etcdstore implements store.Store on etcd v3 (embedded through
// internal/embedetcd or an external cluster given by --etcd-endpoints): the
// source of truth in production.
//
// Every key is stored under Config.Prefix, so several berth installations
// can share one etcd. Revisions are etcd's own, global to the cluster, so a
// store's revisions are increasing but not contiguous.
package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
	"go.uber.org/zap"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// DefaultDialTimeout applies when Config.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Config says which etcd to use and where in it.
type Config struct {
	// Endpoints are etcd client URLs, e.g. "http://127.0.0.1:2379".
	Endpoints []string
	// Prefix namespaces every key, e.g. "/berth": the store key
	// "/v1/ecs/clusters/x" is the etcd key "/berth/v1/ecs/clusters/x".
	// When Prefix does not end in "/", every key and every List or Watch
	// prefix must start with "/" (or be empty), so that "/berth" never sees
	// the keys of "/berth2".
	Prefix string
	// DialTimeout bounds connecting and the first request New makes.
	// Default DefaultDialTimeout.
	DialTimeout time.Duration
}

// Store is a store.Store on an etcd client.
type Store struct {
	cli     *clientv3.Client
	kv      clientv3.KV
	watcher clientv3.Watcher
	// slash says that keys must start with "/" (see Config.Prefix).
	slash bool
}

var _ store.Store = (*Store)(nil)

// New connects to etcd and checks that it answers.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errdefs.InvalidArgument("etcd endpoints are required")
	}
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: timeout,
		Context:     context.WithoutCancel(ctx),
		// Every failure reaches the caller as an error; the client's own
		// retry chatter would only duplicate it.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, unavailable(err)
	}
	s := &Store{
		cli:     cli,
		kv:      namespace.NewKV(cli.KV, cfg.Prefix),
		watcher: namespace.NewWatcher(cli.Watcher, cfg.Prefix),
		slash:   cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/"),
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := s.Revision(pctx); err != nil {
		cli.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the client; open watches end.
func (s *Store) Close() error { return s.cli.Close() }

// Compact discards etcd's history up to rev, for the whole cluster (not
// only this store's prefix). Embedded etcd also compacts on its own.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	_, err := s.cli.Compact(ctx, rev)
	return mapErr(err)
}

func (s *Store) checkKey(key string) error {
	if key == "" {
		return errdefs.InvalidArgument("empty key")
	}
	if s.slash && key[0] != '/' {
		return errdefs.InvalidArgument(fmt.Sprintf("key %q does not start with /", key))
	}
	return nil
}

// rangePrefix checks a List or Watch prefix and maps "" to the whole
// namespace.
func (s *Store) rangePrefix(prefix string) (string, error) {
	if prefix == "" && s.slash {
		return "/", nil
	}
	if prefix != "" && s.slash && prefix[0] != '/' {
		return "", errdefs.InvalidArgument(fmt.Sprintf("prefix %q does not start with /", prefix))
	}
	return prefix, nil
}

// Get implements store.Reader.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.checkKey(key); err != nil {
		return store.KV{}, err
	}
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return store.KV{}, mapErr(err)
	}
	if len(resp.Kvs) == 0 {
		return store.KV{}, &errdefs.Error{Kind: errdefs.ErrNotFound, Message: "not found", Cause: fmt.Errorf("key %q", key)}
	}
	return toKV(resp.Kvs[0]), nil
}

// List implements store.Reader.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	prefix, err := s.rangePrefix(prefix)
	if err != nil {
		return nil, 0, err
	}
	// etcd returns ranges sorted by key (byte order), as the port requires.
	resp, err := s.kv.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, mapErr(err)
	}
	var out []store.KV
	if len(resp.Kvs) > 0 {
		out = make([]store.KV, len(resp.Kvs))
		for i, kv := range resp.Kvs {
			out[i] = toKV(kv)
		}
	}
	return out, resp.Header.Revision, nil
}

// Revision implements store.Store with a linearizable count-only read.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.kv.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		return 0, mapErr(err)
	}
	return resp.Header.Revision, nil
}

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	cmps := make([]clientv3.Cmp, 0, len(conds))
	for _, c := range conds {
		if err := s.checkKey(c.Key); err != nil {
			return 0, err
		}
		switch {
		case c.ModRevision < 0:
			return 0, errdefs.InvalidArgument("condition on a negative revision")
		case c.ModRevision == 0:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(c.Key), "=", 0))
		default:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(c.Key), "=", c.ModRevision))
		}
	}
	eops := make([]clientv3.Op, 0, len(ops))
	seen := make(map[string]struct{}, len(ops))
	for _, op := range ops {
		if err := s.checkKey(op.Key); err != nil {
			return 0, err
		}
		// etcd rejects these too, but checking here gives the same message
		// as memstore and saves a round trip.
		if _, dup := seen[op.Key]; dup {
			return 0, errdefs.InvalidArgument(fmt.Sprintf("key %q appears twice in one transaction", op.Key))
		}
		seen[op.Key] = struct{}{}
		switch op.Type {
		case store.OpPut:
			eops = append(eops, clientv3.OpPut(op.Key, string(op.Value)))
		case store.OpDelete:
			eops = append(eops, clientv3.OpDelete(op.Key))
		default:
			return 0, errdefs.InvalidArgument(fmt.Sprintf("unknown op type %d", op.Type))
		}
	}
	resp, err := s.kv.Txn(ctx).If(cmps...).Then(eops...).Commit()
	if err != nil {
		return 0, mapErr(err)
	}
	if !resp.Succeeded {
		return 0, &errdefs.Error{Kind: errdefs.ErrConflict, Message: "state changed concurrently", Cause: errors.New("a transaction condition failed")}
	}
	return resp.Header.Revision, nil
}

// Watch implements store.Store. "From now" is resolved to the current
// revision before Watch returns, so a write made after Watch returns is
// always seen, however long the watch stream takes to open.
func (s *Store) Watch(ctx context.Context, prefix string, afterRev int64) <-chan store.WatchResponse {
	out := make(chan store.WatchResponse)
	prefix, err := s.rangePrefix(prefix)
	if err == nil && afterRev < 0 {
		err = errdefs.InvalidArgument("negative watch revision")
	}
	if err == nil && afterRev == 0 {
		afterRev, err = s.Revision(ctx)
	}
	go func() {
		defer close(out)
		send := func(r store.WatchResponse) bool {
			select {
			case out <- r:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if err != nil {
			send(store.WatchResponse{Err: err})
			return
		}
		// WithRequireLeader ends the watch when the member loses its
		// leader, instead of leaving it silently stalled.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		wch := s.watcher.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(afterRev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if resp.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
					err = fmt.Errorf("watch after revision %d, compacted up to %d: %w", afterRev, resp.CompactRevision, store.ErrCompacted)
				} else {
					err = mapErr(err)
				}
				send(store.WatchResponse{Err: err})
				return
			}
			if len(resp.Events) == 0 {
				if resp.IsProgressNotify() && !send(store.WatchResponse{Revision: resp.Header.Revision}) {
					return
				}
				continue
			}
			// etcd never splits one revision's events across responses
			// (without WithFragment), so transactions stay whole.
			wr := store.WatchResponse{Events: make([]store.Event, len(resp.Events))}
			for i, ev := range resp.Events {
				e := store.Event{Type: store.EventPut, KV: toKV(ev.Kv)}
				if ev.Type == mvccpb.DELETE {
					e.Type = store.EventDelete
					e.KV.Value, e.KV.CreateRevision = nil, 0
				}
				wr.Events[i] = e
				afterRev = ev.Kv.ModRevision
			}
			// Not resp.Header.Revision: while catching up it is the
			// cluster's current revision, ahead of these events.
			wr.Revision = afterRev
			if !send(wr) {
				return
			}
		}
		if ctx.Err() == nil {
			send(store.WatchResponse{Err: unavailable(errors.New("etcd watch ended"))})
		}
	}()
	return out
}

func toKV(kv *mvccpb.KeyValue) store.KV {
	v := kv.Value
	if v == nil {
		v = []byte{}
	}
	return store.KV{Key: string(kv.Key), Value: v, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
}

func unavailable(err error) error {
	return &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "state store unavailable", Cause: err}
}

// mapErr gives etcd's errors berth's kinds. Context errors stay reachable
// through errors.Is in the cause.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrRequestTooLarge):
		return &errdefs.Error{Kind: errdefs.ErrLimitExceeded, Message: "transaction too large", Cause: err}
	case errors.Is(err, rpctypes.ErrDuplicateKey), errors.Is(err, rpctypes.ErrEmptyKey), errors.Is(err, rpctypes.ErrFutureRev):
		return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Message: "invalid store request", Cause: err}
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("%w: %w", store.ErrCompacted, err)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "state store is out of space", Cause: err}
	default:
		return unavailable(err)
	}
}
