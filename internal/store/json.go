package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// GetJSON reads key from r and decodes its JSON value into a T.
func GetJSON[T any](ctx context.Context, r Reader, key string) (T, int64, error) {
	var v T
	kv, err := r.Get(ctx, key)
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, 0, errdefs.Internal(fmt.Errorf("decode %s: %w", key, err))
	}
	return v, kv.ModRevision, nil
}

// ListJSON lists prefix from r and decodes every value into a T.
func ListJSON[T any](ctx context.Context, r Reader, prefix string) ([]T, int64, error) {
	kvs, rev, err := r.List(ctx, prefix)
	if err != nil {
		return nil, 0, err
	}
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, 0, errdefs.Internal(fmt.Errorf("decode %s: %w", kv.Key, err))
		}
		out = append(out, v)
	}
	return out, rev, nil
}

// PutJSON returns an OpPut of v encoded as JSON.
func PutJSON(key string, v any) (Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Op{}, errdefs.Internal(fmt.Errorf("encode %s: %w", key, err))
	}
	return Put(key, b), nil
}

// Memo decodes JSON values once per change instead of once per read: it
// keeps, for each key, the value decoded at one mod revision. Values it
// returns are shared between callers and must be treated as read-only; use
// it on read paths only (describe, lookups), never to build an update.
// Safe for concurrent use. The zero Memo is ready; it holds at most
// MemoLimit keys and forgets everything when it would exceed that.
type Memo[T any] struct {
	mu sync.RWMutex
	m  map[string]memoEntry[T]
}

// MemoLimit bounds the keys a Memo holds.
const MemoLimit = 1 << 16

type memoEntry[T any] struct {
	rev int64
	v   T
}

// Decode returns kv's value decoded, from the memo when kv's mod revision
// was decoded before.
func (m *Memo[T]) Decode(kv KV) (T, error) {
	m.mu.RLock()
	e, ok := m.m[kv.Key]
	m.mu.RUnlock()
	if ok && e.rev == kv.ModRevision {
		return e.v, nil
	}
	var v T
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, errdefs.Internal(fmt.Errorf("decode %s: %w", kv.Key, err))
	}
	m.mu.Lock()
	if m.m == nil || len(m.m) >= MemoLimit {
		m.m = make(map[string]memoEntry[T])
	}
	m.m[kv.Key] = memoEntry[T]{rev: kv.ModRevision, v: v}
	m.mu.Unlock()
	return v, nil
}

// Get reads key from r and decodes it through the memo.
func (m *Memo[T]) Get(ctx context.Context, r Reader, key string) (T, int64, error) {
	kv, err := r.Get(ctx, key)
	if err != nil {
		var zero T
		return zero, 0, err
	}
	v, err := m.Decode(kv)
	return v, kv.ModRevision, err
}
