package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/iam"
)

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
	adminARN    = "arn:aws:iam::123456789012:user/admin"
	aliceARN    = "arn:aws:iam::123456789012:user/alice"
)

var testTokenKey = bytes.Repeat([]byte("k"), 32)

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

type env struct {
	t     *testing.T
	reg   *Registry
	srv   *httptest.Server
	host  string
	clock *clock.Fake
	authz *recordingAuthorizer
	repos *MemRepositories
	root  string
}

func newRepo(name, mutability string) ecr.Repository {
	r := ecr.NewRepository(testRegion, testAccount, "registry.test", name, time.Now())
	r.ImageTagMutability = mutability
	return r
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	e := &env{
		t:     t,
		clock: clock.NewFake(time.Now()),
		authz: &recordingAuthorizer{},
		repos: NewMemRepositories(newRepo("team/app", ecr.TagMutable), newRepo("team/frozen", ecr.TagImmutable), newRepo("other", ecr.TagMutable)),
		root:  t.TempDir(),
	}
	cfg := Config{
		RootDirectory: e.root,
		AccountID:     testAccount,
		Region:        testRegion,
		TokenKey:      testTokenKey,
		Authorizer:    e.authz,
		Repositories:  e.repos,
		Clock:         e.clock,
		Logger:        slog.New(slog.NewTextHandler(testLogWriter{t}, nil)),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	reg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.reg = reg
	e.srv = httptest.NewServer(reg)
	e.host = strings.TrimPrefix(e.srv.URL, "http://")
	t.Cleanup(func() {
		e.srv.Close()
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// testLogWriter sends the registry's logs to the test's log, shown when
// the test fails.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *env) token(principalARN string) string {
	tok, _, err := ecr.IssueToken(testTokenKey, principalARN, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) ref(s string) name.Reference {
	r, err := name.ParseReference(e.host+"/"+s, name.Insecure)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) remoteAuth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "AWS", Password: e.token(adminARN)})
}

func (e *env) push(ref string, img v1.Image) error {
	return remote.Write(e.ref(ref), img, e.remoteAuth())
}

// request sends a raw request as the admin (or with the given header
// value for Authorization when auth is not nil).
func (e *env) request(method, path string, body []byte, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	req.SetBasicAuth("AWS", e.token(adminARN))
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type registryErrors struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func decodeErrors(t *testing.T, resp *http.Response) registryErrors {
	t.Helper()
	var out registryErrors
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decoding error body of %d: %v", resp.StatusCode, err)
	}
	return out
}

func mustImage(t *testing.T, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDigest(t *testing.T, img interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPushPullWithToken(t *testing.T) {
	e := newEnv(t)
	img := mustImage(t, 2048, 3)
	if err := e.push("team/app:v1", img); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := remote.Image(e.ref("team/app:v1"), e.remoteAuth())
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if mustDigest(t, got) != mustDigest(t, img) {
		t.Fatal("pulled a different image")
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		// go-containerregistry verifies the digest while reading.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer: %v", err)
		}
		rc.Close()
	}
	// Every question was about the repository's ARN.
	arn := "arn:aws:ecr:us-east-1:123456789012:repository/team/app"
	seen := map[string]bool{}
	for _, c := range e.authz.recorded() {
		if c.Resource != arn {
			t.Errorf("asked %s on %s", c.Action, c.Resource)
		}
		seen[c.Action] = true
	}
	for _, a := range []string{ecr.ActionInitiateLayerUpload, ecr.ActionCompleteLayerUpload, ecr.ActionPutImage, ecr.ActionBatchGetImage, ecr.ActionGetDownloadURLForLayer, ecr.ActionBatchCheckLayerAvailability} {
		if !seen[a] {
			t.Errorf("a push and pull never asked for %s", a)
		}
	}
}

func TestAuthenticationRefused(t *testing.T) {
	e := newEnv(t)
	otherKey := bytes.Repeat([]byte("o"), 32)
	forged, _, _ := ecr.IssueToken(otherKey, adminARN, e.clock.Now())
	basic := func(user, pass string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return req.Header.Get("Authorization")
	}
	challenge := `Basic realm="http://` + e.host + `/",service="ecr.amazonaws.com"`
	tests := []struct {
		name, method, path, authz string
	}{
		{"anonymous ping", "GET", "/v2/", ""},
		{"anonymous pull", "GET", "/v2/team/app/manifests/v1", ""},
		{"anonymous head", "HEAD", "/v2/team/app/manifests/v1", ""},
		{"anonymous catalog", "GET", "/v2/_catalog", ""},
		{"anonymous upload", "POST", "/v2/team/app/blobs/uploads/", ""},
		{"garbage token", "GET", "/v2/", basic("AWS", "nonsense")},
		{"token of another key", "GET", "/v2/team/app/tags/list", basic("AWS", forged)},
		{"wrong user", "GET", "/v2/", basic("admin", e.token(adminARN))},
		{"bearer", "GET", "/v2/", "Bearer " + e.token(adminARN)},
		{"sigv4 without a verifier", "GET", "/v2/", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.request(tt.method, tt.path, nil, map[string]string{"Authorization": tt.authz})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
				t.Fatalf("challenge %q, want %q", got, challenge)
			}
			if tt.method != "HEAD" {
				errs := decodeErrors(t, resp)
				if len(errs.Errors) != 1 || errs.Errors[0].Code != "UNAUTHORIZED" || errs.Errors[0].Message != "Not Authorized" {
					t.Fatalf("body %+v", errs)
				}
			}
		})
	}
	if calls := e.authz.recorded(); len(calls) != 0 {
		t.Fatalf("unauthenticated requests reached the authorizer: %v", calls)
	}
	// The challenge names the configured host when there is one.
	e2 := newEnv(t, func(c *Config) { c.Host = "berth.example:8443" })
	resp := e2.request("GET", "/v2/", nil, map[string]string{"Authorization": ""})
	if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="https://berth.example:8443/",service="ecr.amazonaws.com"` {
		t.Fatalf("challenge %q", got)
	}
	// And a valid token pings.
	if resp := e.request("GET", "/v2/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("authenticated ping: %d", resp.StatusCode)
	}
}

func TestExpiredTokenRefused(t *testing.T) {
	e := newEnv(t)
	tok := e.token(adminARN)
	get := func() *http.Response {
		return e.request("GET", "/v2/team/app/tags/list", nil, map[string]string{"Authorization": "Basic " + ecr.AuthorizationData(tok)})
	}
	e.clock.Advance(ecr.TokenValidity - time.Second)
	if resp := get(); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusOK {
		t.Fatalf("token one second before expiry: %d", resp.StatusCode)
	}
	e.clock.Advance(time.Second)
	resp := get()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("expired token: status %d, want 403", resp.StatusCode)
	}
	errs := decodeErrors(t, resp)
	if len(errs.Errors) != 1 || errs.Errors[0].Code != "DENIED" || errs.Errors[0].Message != ecr.TokenExpiredMessage {
		t.Fatalf("body %+v", errs)
	}
}

func TestPrincipalForToken(t *testing.T) {
	var asked []string
	e := newEnv(t, func(c *Config) {
		c.PrincipalForToken = func(_ context.Context, arn string) (iam.Principal, error) {
			asked = append(asked, arn)
			if arn == aliceARN {
				return iam.Principal{}, ecr.RepositoryNotFound("x", "y") // any not-found: the user is gone
			}
			return iam.Principal{ARN: arn, AccountID: testAccount}, nil
		}
	})
	tok := e.token(aliceARN)
	resp := e.request("GET", "/v2/", nil, map[string]string{"Authorization": "Basic " + ecr.AuthorizationData(tok)})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token of a deleted user: %d", resp.StatusCode)
	}
	if resp := e.request("GET", "/v2/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin: %d", resp.StatusCode)
	}
	if len(asked) != 2 || asked[0] != aliceARN || asked[1] != adminARN {
		t.Fatalf("asked %v", asked)
	}
}

func TestPushToMissingRepositoryRefused(t *testing.T) {
	e := newEnv(t)
	err := e.push("team/nope:v1", mustImage(t, 128, 1))
	var terr *transport.Error
	if !errors.As(err, &terr) || len(terr.Errors) == 0 {
		t.Fatalf("push to a missing repository: %v", err)
	}
	want := "The repository with name 'team/nope' does not exist in the registry with id '123456789012'"
	if terr.Errors[0].Code != transport.NameUnknownErrorCode || terr.Errors[0].Message != want {
		t.Fatalf("error %+v, want NAME_UNKNOWN %q", terr.Errors[0], want)
	}
	if terr.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", terr.StatusCode)
	}
	if n, err := e.reg.HasImages(context.Background(), "team/nope"); err != nil || n {
		t.Fatalf("something was stored: %v %v", n, err)
	}
}

func TestImmutableTagsCannotBeOverwritten(t *testing.T) {
	e := newEnv(t)
	first, second := mustImage(t, 256, 1), mustImage(t, 256, 1)
	if err := e.push("team/frozen:v1", first); err != nil {
		t.Fatalf("first push: %v", err)
	}
	want := "The image tag 'v1' already exists in the 'team/frozen' repository and cannot be overwritten because the tag is immutable."
	err := e.push("team/frozen:v1", second)
	var terr *transport.Error
	if !errors.As(err, &terr) || len(terr.Errors) == 0 || terr.Errors[0].Code != transport.TagInvalidErrorCode || terr.Errors[0].Message != want {
		t.Fatalf("another image over an immutable tag: %v", err)
	}
	// go-containerregistry skips a manifest the registry has; docker PUTs
	// it again, and ECR refuses that too.
	raw, _ := first.RawManifest()
	mt, _ := first.MediaType()
	resp := e.request("PUT", "/v2/team/frozen/manifests/v1", raw, map[string]string{"Content-Type": string(mt)})
	if errs := decodeErrors(t, resp); resp.StatusCode != http.StatusBadRequest || len(errs.Errors) != 1 || errs.Errors[0].Code != "TAG_INVALID" || errs.Errors[0].Message != want {
		t.Fatalf("the same image over an immutable tag: %d %+v", resp.StatusCode, errs)
	}
	got, err := remote.Image(e.ref("team/frozen:v1"), e.remoteAuth())
	if err != nil || mustDigest(t, got) != mustDigest(t, first) {
		t.Fatalf("the tag moved: %v", err)
	}
	// New tags and pushes by digest are fine; mutable repositories move tags.
	if err := e.push("team/frozen:v2", second); err != nil {
		t.Fatalf("new tag: %v", err)
	}
	if err := e.push("team/frozen@"+mustDigest(t, second).String(), second); err != nil {
		t.Fatalf("push by digest: %v", err)
	}
	if err := e.push("team/app:v1", first); err != nil {
		t.Fatal(err)
	}
	if err := e.push("team/app:v1", second); err != nil {
		t.Fatalf("mutable tag overwrite: %v", err)
	}
	// The storage view refuses the same way.
	m, err := e.reg.GetManifest(context.Background(), "team/frozen", ImageRef{Tag: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.PutManifest(context.Background(), "team/frozen", "v1", m.MediaType, m.Body, true)
	if !errors.Is(err, ecr.ErrImageTagAlreadyExists) {
		t.Fatalf("PutManifest over an immutable tag: %v", err)
	}
}

func TestCatalog(t *testing.T) {
	e := newEnv(t)
	resp := e.request("GET", "/v2/_catalog?n=2", nil, nil)
	var body struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if strings.Join(body.Repositories, ",") != "other,team/app" {
		t.Fatalf("first page %v", body.Repositories)
	}
	if link := resp.Header.Get("Link"); link != `</v2/_catalog?last=team%2Fapp&n=2>; rel="next"` {
		t.Fatalf("Link %q", link)
	}
	resp = e.request("GET", "/v2/_catalog?n=2&last=team%2Fapp", nil, nil)
	body.Repositories = nil
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if strings.Join(body.Repositories, ",") != "team/frozen" || resp.Header.Get("Link") != "" {
		t.Fatalf("second page %v %q", body.Repositories, resp.Header.Get("Link"))
	}
	for _, c := range e.authz.recorded() {
		if c.Action != ecr.ActionDescribeRepositories {
			t.Errorf("catalog asked %v", c)
		}
	}
	// Repositories the caller may not describe are left out.
	alice := e.token(aliceARN)
	resp = e.request("GET", "/v2/_catalog", nil, map[string]string{"Authorization": "Basic " + ecr.AuthorizationData(alice)})
	body.Repositories = nil
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusOK || len(body.Repositories) != 0 {
		t.Fatalf("alice sees %v (%d)", body.Repositories, resp.StatusCode)
	}
	if resp := e.request("GET", "/v2/_catalog?n=-1", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("n=-1: %d", resp.StatusCode)
	}
}
