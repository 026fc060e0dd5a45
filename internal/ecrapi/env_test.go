package ecrapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	smithy "github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
	"github.com/berth-dev/berth/internal/store/watchcache"
)

// The registry satisfies the ports the ECR API and the registry define for
// each other; only a test may import both (they are peers, DESIGN.md §9).
var (
	_ Images                = (*registry.Registry)(nil)
	_ registry.Repositories = Repositories{}
)

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
	adminARN    = "arn:aws:iam::123456789012:user/admin"
	aliceARN    = "arn:aws:iam::123456789012:user/alice"
)

var (
	testStart    = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	testTokenKey = bytes.Repeat([]byte("t"), 32)
)

type authCall struct{ Action, Resource string }

// recordingAuthorizer lets the admin do everything but the one action it
// is told to deny, and records every question it is asked.
type recordingAuthorizer struct {
	mu    sync.Mutex
	deny  string
	calls []authCall
}

func (a *recordingAuthorizer) Authorize(_ context.Context, p iam.Principal, action, resource string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, authCall{action, resource})
	if p.ARN != adminARN || action == a.deny {
		return iam.AccessDenied(p, action, resource)
	}
	return nil
}

func (a *recordingAuthorizer) set(deny string) {
	a.mu.Lock()
	a.deny, a.calls = deny, nil
	a.mu.Unlock()
}

func (a *recordingAuthorizer) recorded() []authCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]authCall(nil), a.calls...)
}

// env is one ECR API and one real registry (over a temporary directory)
// behind one HTTP server, as the server mounts them: /v2/ is the registry,
// everything else the AWS router.
type env struct {
	t     *testing.T
	h     *handlers
	store store.Store
	clock *clock.Fake
	authz *recordingAuthorizer
	reg   *registry.Registry
	srv   *httptest.Server
	host  string // host:port of srv
	ctx   context.Context
}

// overCachedStore makes newEnv put the watch-fed cache in front of the
// store, as production does (TestOverCachedStore).
var overCachedStore bool

func newEnv(t *testing.T) *env {
	t.Helper()
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	var st store.Store = mem
	if overCachedStore {
		cache, err := watchcache.New(context.Background(), mem, "/v1/")
		if err != nil {
			t.Fatal(err)
		}
		st = watchcache.NewCachedStore(mem, cache)
		t.Cleanup(cache.Close)
	}
	e := &env{t: t, store: st, clock: clock.NewFake(testStart), authz: &recordingAuthorizer{}, ctx: asPrincipal(adminARN)}
	e.srv = httptest.NewUnstartedServer(nil)
	e.host = e.srv.Listener.Addr().String()
	reg, err := registry.New(registry.Config{
		RootDirectory: t.TempDir(),
		AccountID:     testAccount,
		Region:        testRegion,
		Host:          e.host,
		TokenKey:      testTokenKey,
		Authorizer:    e.authz,
		Repositories:  Repositories{Store: st},
		Clock:         e.clock,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.reg = reg
	e.h = newHandlers(e.config())
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/", e.router())
	e.srv.Config.Handler = mux
	e.srv.Start()
	t.Cleanup(func() {
		e.srv.Close()
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *env) config() Config {
	return Config{
		Store:          e.store,
		Authorizer:     e.authz,
		Images:         e.reg,
		Clock:          e.clock,
		Region:         testRegion,
		AccountID:      testAccount,
		RegistryHost:   e.host,
		RegistryScheme: "http",
		TokenKey:       testTokenKey,
	}
}

// testKeys is the access-key store of the SDK tests: each principal signs
// with an access key named after it.
type testKeys map[string]string // access key id → principal ARN

func (k testKeys) LookupAccessKey(_ context.Context, id string) (string, iam.Principal, error) {
	arn, ok := k[id]
	if !ok {
		return "", iam.Principal{}, errdefs.New(errdefs.ErrUnauthenticated, "unknown access key")
	}
	return "secret-" + id, iam.Principal{AccountID: testAccount, ARN: arn, AccessKeyID: id}, nil
}

func keyID(principalARN string) string {
	return fmt.Sprintf("AKID%X", sha256.Sum256([]byte(principalARN)))[:20]
}

func (e *env) router() *awsapi.Router {
	keys := testKeys{}
	for _, p := range []string{adminARN, aliceARN} {
		keys[keyID(p)] = p
	}
	rt := &awsapi.Router{
		Verifier: &sigv4.Verifier{Creds: keys, Region: testRegion},
		JSON:     []*awsjson.Service{New(e.config())},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if err := rt.Validate(); err != nil {
		e.t.Fatal(err)
	}
	return rt
}

// sdkClient is the AWS SDK's own ECR client, signing as principalARN,
// talking to the ECR API of e through the real router (SigV4 included).
func (e *env) sdkClient(principalARN string) *sdk.Client {
	id := keyID(principalARN)
	return sdk.New(sdk.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(e.srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: "secret-" + id}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

func asPrincipal(principalARN string) context.Context {
	return awsapi.WithPrincipal(context.Background(), iam.Principal{AccountID: testAccount, ARN: principalARN})
}

// code and message are what the caller sees of err.
func code(err error) string {
	if err == nil {
		return ""
	}
	return MapError(err).Code
}

func message(err error) string {
	if err == nil {
		return ""
	}
	return MapError(err).Message
}

// wantErr fails unless err maps to the exception code (and message, when
// not empty).
func wantErr(t *testing.T, err error, wantCode, wantMessage string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", wantCode)
	}
	if got := code(err); got != wantCode {
		t.Fatalf("error %v maps to %s, want %s", err, got, wantCode)
	}
	if wantMessage != "" && message(err) != wantMessage {
		t.Fatalf("message %q, want %q", message(err), wantMessage)
	}
}

// apiErr checks that an SDK call failed with the exception code and (when
// not empty) message, as the SDK decoded them off the wire.
func apiErr(t *testing.T, err error, wantCode, wantMessage string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	if ae.ErrorCode() != wantCode {
		t.Fatalf("error code %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), wantCode)
	}
	if wantMessage != "" && ae.ErrorMessage() != wantMessage {
		t.Fatalf("%s message %q, want %q", wantCode, ae.ErrorMessage(), wantMessage)
	}
}

// must wraps a handler so that an error fails the test.
func must[In, Out any](t *testing.T, fn func(context.Context, *In) (Out, error)) func(context.Context, *In) Out {
	return func(ctx context.Context, in *In) Out {
		t.Helper()
		out, err := fn(ctx, in)
		if err != nil {
			t.Fatalf("unexpected error: %v (%s)", err, code(err))
		}
		return out
	}
}

func (e *env) createRepository(name string) {
	e.t.Helper()
	must(e.t, e.h.CreateRepository)(e.ctx, &sdk.CreateRepositoryInput{RepositoryName: aws.String(name)})
}

func repoARN(name string) string {
	return ecr.RepositoryARN(testRegion, testAccount, name)
}

func notFoundMessage(name string) string {
	return "The repository with name '" + name + "' does not exist in the registry with id '" + testAccount + "'"
}

func decodeB64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitPastPush returns once a file written now gets a modification time
// after the push time of the image: the registry's push times are file
// times, and images pushed in one clock tick would tie.
func (e *env) waitPastPush(repository, digest string) {
	e.t.Helper()
	img, err := e.reg.DescribeImage(context.Background(), repository, ecr.ImageRef{Digest: digest})
	if err != nil {
		e.t.Fatal(err)
	}
	tick := filepath.Join(e.t.TempDir(), "tick")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := os.WriteFile(tick, nil, 0o600); err != nil {
			e.t.Fatal(err)
		}
		fi, err := os.Stat(tick)
		if err != nil {
			e.t.Fatal(err)
		}
		if fi.ModTime().After(img.PushedAt) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("file times do not advance")
		}
		runtime.Gosched()
	}
}
