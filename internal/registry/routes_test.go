package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
)

const appARN = "arn:aws:ecr:us-east-1:123456789012:repository/team/app"

// startUpload opens an upload in team/app and returns its location path.
func (e *env) startUpload(t *testing.T) string {
	t.Helper()
	resp := e.request("POST", "/v2/team/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/team/app/blobs/uploads/") {
		t.Fatalf("upload location %q", loc)
	}
	return loc
}

func withQuery(loc, q string) string {
	if strings.Contains(loc, "?") {
		return loc + "&" + q
	}
	return loc + "?" + q
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestEachRouteAsksItsAction proves, route by route, which ECR action a
// registry request needs: allowed, the authorizer is asked exactly the
// expected actions on the repository ARN; with the last of them denied,
// the request is refused with ECR's DENIED and AWS's message.
func TestEachRouteAsksItsAction(t *testing.T) {
	e := newEnv(t)
	img := mustImage(t, 512, 1)
	if err := e.push("team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	manifestDigest := mustDigest(t, img).String()

	type req struct {
		method, path string
		body         []byte
		hdr          map[string]string
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T) req
		actions []string
	}{
		{"get manifest", func(*testing.T) req { return req{"GET", "/v2/team/app/manifests/v1", nil, nil} }, []string{ecr.ActionBatchGetImage}},
		{"head manifest", func(*testing.T) req { return req{"HEAD", "/v2/team/app/manifests/" + manifestDigest, nil, nil} }, []string{ecr.ActionBatchGetImage}},
		{"get blob", func(*testing.T) req { return req{"GET", "/v2/team/app/blobs/" + layer.String(), nil, nil} }, []string{ecr.ActionGetDownloadURLForLayer}},
		{"head blob", func(*testing.T) req { return req{"HEAD", "/v2/team/app/blobs/" + layer.String(), nil, nil} }, []string{ecr.ActionBatchCheckLayerAvailability}},
		{"list tags", func(*testing.T) req { return req{"GET", "/v2/team/app/tags/list", nil, nil} }, []string{ecr.ActionListImages}},
		{"list referrers", func(*testing.T) req { return req{"GET", "/v2/team/app/referrers/" + manifestDigest, nil, nil} }, []string{ecr.ActionBatchGetImage}},
		{"start upload", func(*testing.T) req { return req{"POST", "/v2/team/app/blobs/uploads/", nil, nil} }, []string{ecr.ActionInitiateLayerUpload}},
		{"upload chunk", func(t *testing.T) req {
			return req{"PATCH", e.startUpload(t), []byte("abc"), map[string]string{"Content-Type": "application/octet-stream"}}
		}, []string{ecr.ActionUploadLayerPart}},
		{"upload status", func(t *testing.T) req { return req{"GET", e.startUpload(t), nil, nil} }, []string{ecr.ActionUploadLayerPart}},
		{"complete upload", func(t *testing.T) req {
			loc := e.startUpload(t)
			resp := e.request("PATCH", loc, []byte("abc"), map[string]string{"Content-Type": "application/octet-stream"})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("patch: %d", resp.StatusCode)
			}
			return req{"PUT", withQuery(resp.Header.Get("Location"), "digest="+sha([]byte("abc"))), nil, nil}
		}, []string{ecr.ActionCompleteLayerUpload}},
		{"complete upload with the last chunk", func(t *testing.T) req {
			return req{"PUT", withQuery(e.startUpload(t), "digest="+sha([]byte("xyz"))), []byte("xyz"), map[string]string{"Content-Type": "application/octet-stream"}}
		}, []string{ecr.ActionUploadLayerPart, ecr.ActionCompleteLayerUpload}},
		{"cancel upload", func(t *testing.T) req { return req{"DELETE", e.startUpload(t), nil, nil} }, []string{ecr.ActionUploadLayerPart}},
		{"put manifest", func(*testing.T) req {
			return req{"PUT", "/v2/team/app/manifests/v2", raw, map[string]string{"Content-Type": string(mt)}}
		}, []string{ecr.ActionPutImage}},
		{"delete blob", func(*testing.T) req { return req{"DELETE", "/v2/team/app/blobs/" + sha([]byte("abc")), nil, nil} }, []string{ecr.ActionBatchDeleteImage}},
		{"delete manifest", func(*testing.T) req { return req{"DELETE", "/v2/team/app/manifests/" + manifestDigest, nil, nil} }, []string{ecr.ActionBatchDeleteImage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			denied := tt.actions[len(tt.actions)-1]
			e.authz.set(denied)
			r := tt.setup(t)
			e.authz.set(denied) // forget what the setup asked
			resp := e.request(r.method, r.path, r.body, r.hdr)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("with %s denied: status %d, want 403", denied, resp.StatusCode)
			}
			if r.method != "HEAD" {
				errs := decodeErrors(t, resp)
				want := "User: " + adminARN + " is not authorized to perform: " + denied + " on resource: " + appARN
				if len(errs.Errors) != 1 || errs.Errors[0].Code != "DENIED" || !strings.HasPrefix(errs.Errors[0].Message, want) {
					t.Fatalf("body %+v, want DENIED %q", errs, want)
				}
			}
			wantCalls := func() []authCall {
				var out []authCall
				for _, a := range tt.actions {
					out = append(out, authCall{a, appARN})
				}
				return out
			}()
			if got := e.authz.recorded(); !slices.Equal(got, wantCalls) {
				t.Fatalf("denied run asked %v, want %v", got, wantCalls)
			}

			e.authz.set("")
			r = tt.setup(t)
			e.authz.set("")
			resp = e.request(r.method, r.path, r.body, r.hdr)
			if resp.StatusCode >= 300 {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("allowed: status %d: %s", resp.StatusCode, body)
			}
			if got := e.authz.recorded(); !slices.Equal(got, wantCalls) {
				t.Fatalf("allowed run asked %v, want %v", got, wantCalls)
			}
		})
	}
}

func TestUnservedMethodsRefused(t *testing.T) {
	e := newEnv(t)
	for _, r := range []struct{ method, path string }{
		{"POST", "/v2/team/app/manifests/v1"},
		{"PATCH", "/v2/team/app/blobs/sha256:" + strings.Repeat("0", 64)},
		{"PUT", "/v2/team/app/tags/list"},
		{"GET", "/v2/team/app/blobs/uploads/"},
		{"POST", "/v2/_catalog"},
		{"DELETE", "/v2/"},
	} {
		resp := e.request(r.method, r.path, nil, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", r.method, r.path, resp.StatusCode)
		}
	}
	if calls := e.authz.recorded(); len(calls) != 0 {
		t.Errorf("asked %v for unserved methods", calls)
	}
}

func TestCrossRepositoryMount(t *testing.T) {
	e := newEnv(t)
	img := mustImage(t, 256, 1)
	if err := e.push("team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	otherARN := "arn:aws:ecr:us-east-1:123456789012:repository/other"
	tests := []struct {
		name, from, deny string
		status           int
	}{
		{"readable source mounts", "team/app", "", http.StatusCreated},
		{"unreadable source uploads", "team/app", ecr.ActionGetDownloadURLForLayer, http.StatusAccepted},
		{"missing source uploads", "team/gone", "", http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The target stays empty: a mount into "other" would satisfy
			// the next case.
			if err := e.reg.DeleteRepositoryContents(context.Background(), "other"); err != nil {
				t.Fatal(err)
			}
			e.authz.set(tt.deny)
			resp := e.request("POST", "/v2/other/blobs/uploads/?mount="+layer.String()+"&from="+tt.from, nil, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			calls := e.authz.recorded()
			want := []authCall{{ecr.ActionInitiateLayerUpload, otherARN}, {ecr.ActionGetDownloadURLForLayer, "arn:aws:ecr:us-east-1:123456789012:repository/" + tt.from}}
			if !slices.Equal(calls, want) {
				t.Fatalf("asked %v, want %v", calls, want)
			}
		})
	}
}

type keyStore map[string]string

func (k keyStore) LookupAccessKey(_ context.Context, akid string) (string, iam.Principal, error) {
	s, ok := k[akid]
	if !ok {
		return "", iam.Principal{}, errdefs.NotFound("no such key")
	}
	return s, iam.Principal{AccountID: testAccount, ARN: adminARN}, nil
}

func TestSigV4(t *testing.T) {
	const akid, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	now := time.Now()
	e := newEnv(t, func(c *Config) {
		c.SigV4 = &sigv4.Verifier{Creds: keyStore{akid: secret}, Clock: clock.NewFake(now), Region: testRegion}
		c.MaxSigV4Body = 4096
	})
	img := mustImage(t, 128, 1)
	if err := e.push("team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	send := func(method, path string, body, signedBody []byte) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", string(mt))
		s := sha256.Sum256(signedBody)
		creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(s[:]), "ecr", testRegion, now); err != nil {
			t.Fatal(err)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := send("GET", "/v2/team/app/manifests/v1", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed pull: %d", resp.StatusCode)
	}
	if resp := send("PUT", "/v2/team/app/manifests/v2", raw, raw); resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("signed push: %d %s", resp.StatusCode, body)
	}
	tampered := bytes.Replace(raw, []byte(`"size"`), []byte(`"size" `), 1)
	if resp := send("PUT", "/v2/team/app/manifests/v3", tampered, raw); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d", resp.StatusCode)
	}
	big := bytes.Repeat([]byte("x"), 5000)
	if resp := send("PUT", "/v2/team/app/manifests/v4", big, big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized signed body: %d", resp.StatusCode)
	}
	if _, err := e.reg.DescribeImage(context.Background(), "team/app", ImageRef{Tag: "v2"}); err != nil {
		t.Fatalf("signed push not stored: %v", err)
	}
}

type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r)
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

// TestLibraryLogsGoToSlog: distribution's request logging reaches the
// configured slog logger, client errors at Debug, and nothing goes to the
// process-global logrus logger.
func TestLibraryLogsGoToSlog(t *testing.T) {
	var global bytes.Buffer
	old := logrus.StandardLogger().Out
	logrus.SetOutput(&global)
	t.Cleanup(func() { logrus.SetOutput(old) })
	h := &captureHandler{}
	e := newEnv(t, func(c *Config) { c.Logger = slog.New(h) })
	if resp := e.request("GET", "/v2/team/app/manifests/nope", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := e.reg.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	found := false
	for _, r := range h.records {
		if strings.HasPrefix(r.Message, "distribution: ") && r.Level == slog.LevelDebug {
			found = true
		}
	}
	if !found {
		t.Errorf("no distribution record at debug in %d records", len(h.records))
	}
	if global.Len() != 0 {
		t.Errorf("distribution wrote to the global logrus logger: %s", global.String())
	}
}

func TestBlobDigestOfPath(t *testing.T) {
	hexs := strings.Repeat("ab", 32)
	d := digest.Digest("sha256:" + hexs)
	tests := []struct {
		path string
		want digest.Digest
	}{
		{blobDataPath(d), d},
		{"/docker/registry/v2/blobs/sha256/ab/" + hexs + "/data", d},
		{"/docker/registry/v2/blobs/sha256/cd/" + hexs + "/data", ""},
		{"/docker/registry/v2/blobs/sha256/ab/" + hexs, ""},
		{"/docker/registry/v2/repositories/x/_layers/sha256/" + hexs + "/link", ""},
		{"/docker/registry/v2/blobs/sha256/ab/abab/data", ""},
	}
	for _, tt := range tests {
		got, ok := blobDigestOfPath(tt.path)
		if ok != (tt.want != "") || got != tt.want && ok {
			t.Errorf("%s: %q %v", tt.path, got, ok)
		}
	}
}

func FuzzBlobDigestOfPath(f *testing.F) {
	f.Add(blobDataPath(digest.FromString("x")))
	f.Add("/docker/registry/v2/blobs/sha512/aa/aa/data")
	f.Fuzz(func(t *testing.T, p string) {
		d, ok := blobDigestOfPath(p)
		if !ok {
			return
		}
		if d.Validate() != nil || blobDataPath(d) != p {
			t.Fatalf("%q parsed as %q", p, d)
		}
	})
}

func TestUnknownPathsNotFound(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/v2/team/app/nothing", "/v3/", "/v2/team/app/manifests/", "/"} {
		if resp := e.request("GET", p, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if calls := e.authz.recorded(); len(calls) != 0 {
		t.Errorf("asked %v for unknown paths", calls)
	}
}
