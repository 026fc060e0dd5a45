package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/store"
)

// registryGCInterval is how often the registry's unreferenced blobs are
// collected (blobs younger than a day are spared: pushes in progress).
const registryGCInterval = 6 * time.Hour

// RegistryGCPath is berth's endpoint for `berth registry gc`.
const RegistryGCPath = "/berth/v1/registry-gc"

// ActionCollectGarbage is the authorization action of RegistryGCPath; only
// the admin has it until IAM policies exist.
const ActionCollectGarbage = "berth:CollectRegistryGarbage"

// tokenKeyKey holds the secret that signs ECR authorization tokens, shared
// by every server of the store.
const tokenKeyKey = "/v1/ecr/token-key"

// registryTokenKey reads the token key from the store, creating it on the
// first start (a concurrent first start of another server wins the race
// and both use its key).
func registryTokenKey(ctx context.Context, st store.Store) ([]byte, error) {
	for range 3 {
		kv, err := st.Get(ctx, tokenKeyKey)
		if err == nil && len(kv.Value) >= ecr.MinTokenKeyLength {
			return kv.Value, nil
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("read the registry token key: %w", err)
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		_, err = st.Txn(ctx, []store.Cond{{Key: tokenKeyKey, ModRevision: 0}}, []store.Op{store.Put(tokenKeyKey, key)})
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			return nil, fmt.Errorf("store the registry token key: %w", err)
		}
		if err := store.Sync(ctx, st); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("registry token key: the store keeps changing it")
}

// endpointHostScheme splits the API endpoint into the registry's host:port
// (what `docker login` and image references name) and its scheme.
func endpointHostScheme(endpoint string) (host, scheme string) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", "https"
	}
	return u.Host, u.Scheme
}

// registryGC serves RegistryGCPath: an admin's SigV4-signed POST runs one
// garbage collection of the registry in this server (where it knows which
// blobs its requests are using) and answers its figures.
type registryGC struct {
	verifier *sigv4.Verifier
	authz    iam.Authorizer
	registry *registry.Registry
}

func (g *registryGC) register(mux *http.ServeMux) {
	mux.HandleFunc(RegistryGCPath, g.serve)
}

func (g *registryGC) serve(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := signedPost(w, r, g.verifier, g.authz, ActionCollectGarbage); !ok {
		return
	}
	stats, err := g.registry.Collect(r.Context())
	if err != nil {
		writeJoinError(w, err)
		return
	}
	writeJoinJSON(w, stats)
}
