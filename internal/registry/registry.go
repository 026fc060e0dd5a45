// Package registry is berth's OCI registry, the data plane of its ECR: an
// http.Handler for /v2/ built on distribution/v3's registry application
// (handlers.NewApp) with berth's own authentication (ECR authorization
// tokens over Basic auth, or SigV4) and authorization (every request asks
// the IAM Authorizer for ECR's action on the repository ARN). It also
// offers the storage view the ECR API works through (images, manifests,
// layer availability, repository removal) and garbage collection of
// unreferenced blobs. Repository records live elsewhere (internal/ecr
// records, read through the Repositories port).
package registry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // the default driver
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"

	v2 "github.com/distribution/distribution/v3/registry/api/v2"
)

// Repositories is the port to the ECR repository records. A repository
// must exist here before anything can be pushed to it.
type Repositories interface {
	// Lookup returns the record of the repository called name.
	Lookup(ctx context.Context, name string) (ecr.Repository, bool, error)
	// List returns every repository record (for /v2/_catalog).
	List(ctx context.Context) ([]ecr.Repository, error)
}

// SigV4Verifier authenticates SigV4-signed requests;
// *sigv4.Verifier (internal/awsapi/sigv4) satisfies it.
type SigV4Verifier interface {
	Verify(ctx context.Context, r *http.Request, body []byte) (iam.Principal, error)
}

// Config configures a Registry.
type Config struct {
	// RootDirectory is the filesystem driver's root (a directory under the
	// data dir). Used when StorageDriver is "" or "filesystem".
	RootDirectory string
	// StorageDriver names another distribution storage driver (one whose
	// package the binary imports, e.g. "s3aws"), configured with
	// StorageParameters; "" means the filesystem driver.
	StorageDriver     string
	StorageParameters map[string]any

	AccountID string
	Region    string
	// Host is the registry's host[:port] as clients reach it, for the
	// WWW-Authenticate realm; "" means the request's Host.
	Host string

	// TokenKey verifies ECR authorization tokens (ecr.VerifyToken); at
	// least ecr.MinTokenKeyLength bytes. It also keys the upload-state
	// secret, so servers sharing storage must share it.
	TokenKey []byte
	// PrincipalForToken maps the principal ARN a token was issued to onto
	// the principal to authorize (nil: Principal{ARN, AccountID}). An error
	// of kind errdefs.ErrNotFound (the user is gone) refuses the request.
	PrincipalForToken func(ctx context.Context, principalARN string) (iam.Principal, error)
	// SigV4, when set, accepts SigV4-signed requests too.
	SigV4 SigV4Verifier
	// MaxSigV4Body bounds the body of a SigV4-signed request, which must be
	// read whole to check its hash; 0 means 64 MiB.
	MaxSigV4Body int64

	Authorizer   iam.Authorizer
	Repositories Repositories

	Clock  clock.Clock  // nil: the wall clock
	Logger *slog.Logger // nil: slog.Default()

	// GCGracePeriod spares blobs younger than this, or used by a request
	// of this process within it, from garbage collection; 0 means 24h.
	GCGracePeriod time.Duration
	// UploadMaxAge is the age at which Collect purges unfinished uploads;
	// 0 means 7 days (distribution's default).
	UploadMaxAge time.Duration
}

// Defaults.
const (
	DefaultMaxSigV4Body  = 64 << 20
	DefaultGCGracePeriod = 24 * time.Hour
	DefaultUploadMaxAge  = 7 * 24 * time.Hour
)

// Registry serves /v2/ and owns the storage behind it.
type Registry struct {
	cfg    Config
	log    *slog.Logger
	libLog *logrus.Entry // distribution's logger, forwarding to log
	clock  clock.Clock
	app    *handlers.App
	router *mux.Router

	inner   storagedriver.StorageDriver // the real driver: GC reads it without touching
	driver  storagedriver.StorageDriver // trackingDriver over inner
	touches *touches
	// files serves blob GETs straight from the filesystem driver's files
	// (nil with another driver).
	files  *fileBlobs
	view   distribution.Namespace // storage view over driver, deletes enabled
	gcView distribution.Namespace // storage view over inner, for marking

	repoLocks [64]sync.Mutex // serialize tag checks and manifest writes per repository
	gcMu      sync.Mutex     // one Collect at a time

	mu         sync.Mutex
	collectors []*Collector
	closed     bool
}

var _ http.Handler = (*Registry)(nil)

// New builds a Registry. It creates the storage driver and the
// distribution app but starts no goroutine: upload purging and garbage
// collection run from Collect, on a schedule with StartCollector.
func New(cfg Config) (*Registry, error) {
	if cfg.AccountID == "" || cfg.Region == "" {
		return nil, errdefs.InvalidArgument("registry: AccountID and Region are required")
	}
	if len(cfg.TokenKey) < ecr.MinTokenKeyLength {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("registry: TokenKey must be at least %d bytes", ecr.MinTokenKeyLength))
	}
	if cfg.Authorizer == nil || cfg.Repositories == nil {
		return nil, errdefs.InvalidArgument("registry: Authorizer and Repositories are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxSigV4Body <= 0 {
		cfg.MaxSigV4Body = DefaultMaxSigV4Body
	}
	if cfg.GCGracePeriod <= 0 {
		cfg.GCGracePeriod = DefaultGCGracePeriod
	}
	if cfg.UploadMaxAge <= 0 {
		cfg.UploadMaxAge = DefaultUploadMaxAge
	}
	log := cfg.Logger.With("component", "registry")
	libLog := newLibraryLogger(log)
	ctx := context.Context(logContext{Context: context.Background(), entry: libLog})
	name, params := cfg.StorageDriver, cfg.StorageParameters
	if name == "" || name == "filesystem" {
		if cfg.RootDirectory == "" {
			return nil, errdefs.InvalidArgument("registry: RootDirectory is required for the filesystem driver")
		}
		name = "filesystem"
		params = map[string]any{"rootdirectory": cfg.RootDirectory}
	}
	inner, err := factory.Create(ctx, name, params)
	if err != nil {
		return nil, fmt.Errorf("registry: storage driver %q: %w", name, err)
	}
	t := newTouches(cfg.Clock)
	var files *fileBlobs
	if name == "filesystem" {
		root, _ := params["rootdirectory"].(string)
		files = &fileBlobs{root: root, verified: map[digest.Digest]fileVersion{}}
	}
	r := &Registry{
		files:   files,
		cfg:     cfg,
		log:     log,
		libLog:  libLog,
		clock:   cfg.Clock,
		router:  v2.RouterWithPrefix(""),
		inner:   inner,
		driver:  &trackingDriver{StorageDriver: inner, t: t},
		touches: t,
	}
	if r.view, err = storage.NewRegistry(ctx, r.driver, storage.EnableDelete, storage.EnableValidateImageIndexImagesExist); err != nil {
		return nil, fmt.Errorf("registry: storage view: %w", err)
	}
	if r.gcView, err = storage.NewRegistry(ctx, r.inner); err != nil {
		return nil, fmt.Errorf("registry: storage view: %w", err)
	}
	if r.app, err = newApp(ctx, r.driver, cfg.TokenKey); err != nil {
		return nil, err
	}
	return r, nil
}

// newApp builds distribution's registry application over driver. NewApp
// panics on configuration errors; the panic becomes an error here.
func newApp(ctx context.Context, driver storagedriver.StorageDriver, tokenKey []byte) (app *handlers.App, err error) {
	// The upload state secret is derived from the token key: servers that
	// share storage and the token key resume each other's uploads.
	mac := hmac.New(sha256.New, tokenKey)
	mac.Write([]byte("berth registry upload state"))
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			passthroughDriverName: configuration.Parameters{passthroughDriverParam: driver},
			"delete":              configuration.Parameters{"enabled": true},
			// Redirects would hand clients storage URLs that bypass
			// authorization and read verification.
			"redirect": configuration.Parameters{"disable": true},
			// Upload purging runs in Collect, owned by berth, not in a
			// goroutine of the app's.
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
	}
	cfg.HTTP.Secret = hex.EncodeToString(mac.Sum(nil))
	// Relative Location headers keep working behind proxies and load
	// balancers that rewrite the host.
	cfg.HTTP.RelativeURLs = true
	// ECR accepts foreign (non-distributable) layers; their URLs are the
	// client's business.
	cfg.Validation.Manifests.URLs.Allow = []string{"^https?://"}
	defer func() {
		if p := recover(); p != nil {
			app, err = nil, fmt.Errorf("registry: distribution app: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Close stops the collectors started with StartCollector and releases
// the app. In-flight requests are the HTTP server's to drain.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	cs := r.collectors
	r.collectors = nil
	r.mu.Unlock()
	for _, c := range cs {
		c.Stop()
	}
	if err := r.app.Shutdown(); err != nil {
		return fmt.Errorf("registry: shutdown: %w", err)
	}
	return nil
}

// repoLock returns the mutex serializing tag checks and writes of a
// repository (striped: unrelated repositories may share one).
func (r *Registry) repoLock(name string) *sync.Mutex {
	var h uint32 = 2166136261
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return &r.repoLocks[h%uint32(len(r.repoLocks))]
}

// lookup returns the repository record or ECR's RepositoryNotFound.
func (r *Registry) lookup(ctx context.Context, name string) (ecr.Repository, error) {
	repo, ok, err := r.cfg.Repositories.Lookup(ctx, name)
	if err != nil {
		return ecr.Repository{}, err
	}
	if !ok {
		return ecr.Repository{}, ecr.RepositoryNotFound(name, r.cfg.AccountID)
	}
	return repo, nil
}

func (r *Registry) repositoryARN(name string) string {
	return ecr.RepositoryARN(r.cfg.Region, r.cfg.AccountID, name)
}

var errClosed = errors.New("registry closed")
