package store

import (
	"context"
	"encoding/json"
	"fmt"

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
