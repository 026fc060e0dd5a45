package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
)

const (
	testAKID   = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
	ecsTarget  = "AmazonEC2ContainerServiceV20141113.ListClusters"
)

var (
	t0        = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	adminARN  = "arn:aws:iam::123456789012:user/admin"
	testPrinc = iam.Principal{AccountID: "123456789012", ARN: adminARN, UserID: "AIDAEXAMPLE"}
)

// keyStore is an in-memory Credentials.
type keyStore map[string]string

func (k keyStore) LookupAccessKey(_ context.Context, akid string) (string, iam.Principal, error) {
	s, ok := k[akid]
	if !ok {
		return "", iam.Principal{}, errdefs.NotFound("no such key")
	}
	return s, testPrinc, nil
}

// sessionStore also knows session tokens.
type sessionStore struct {
	keyStore
	tokens map[string]string // token -> akid
}

func (s sessionStore) LookupSessionKey(ctx context.Context, akid, token string) (string, iam.Principal, error) {
	if s.tokens[token] != akid {
		return "", iam.Principal{}, errdefs.NotFound("no such session")
	}
	return s.LookupAccessKey(ctx, akid)
}

func newVerifier(now time.Time) *Verifier {
	return &Verifier{Creds: keyStore{testAKID: testSecret}, Clock: clock.NewFake(now), Region: testRegion}
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newECSRequest is a server-side view of an ECS awsJson request.
func newECSRequest(target string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://ecs.berth.test:7400/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", target)
	return r
}

func sign(t testing.TB, r *http.Request, body []byte, secret string, at time.Time) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hashHex(body), "ecs", testRegion, at); err != nil {
		t.Fatal(err)
	}
}

func wantAuthErr(t *testing.T, err, reason error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified; want %v", reason)
	}
	if !errors.Is(err, reason) || !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Fatalf("err = %v; want reason %v of kind unauthenticated", err, reason)
	}
	if msg != "" {
		if got := errdefs.Message(err, ""); got != msg {
			t.Fatalf("message:\n got %q\nwant %q", got, msg)
		}
	}
}

func TestVerifySignedHeader(t *testing.T) {
	body := []byte(`{"maxResults":10}`)
	r := newECSRequest(ecsTarget, body)
	sign(t, r, body, testSecret, t0)
	p, err := newVerifier(t0.Add(time.Minute)).VerifyService(context.Background(), r, body, "ecs")
	if err != nil {
		t.Fatal(err)
	}
	if p.ARN != adminARN || p.AccessKeyID != testAKID {
		t.Fatalf("principal = %+v", p)
	}
}

func TestVerifyFailures(t *testing.T) {
	body := []byte(`{"maxResults":10}`)
	tests := []struct {
		name   string
		secret string
		signAt time.Time
		now    time.Time
		mutate func(r *http.Request) []byte // returns the body the server sees
		reason error
		msg    string
	}{
		{name: "wrong secret", secret: "not-the-secret", reason: ErrSignatureMismatch, msg: msgMismatch},
		{name: "tampered body", mutate: func(*http.Request) []byte { return []byte(`{"maxResults":11}`) },
			reason: ErrSignatureMismatch, msg: msgMismatch},
		{name: "tampered signed header", mutate: func(r *http.Request) []byte {
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster")
			return body
		}, reason: ErrSignatureMismatch, msg: msgMismatch},
		{name: "tampered host", mutate: func(r *http.Request) []byte { r.Host = "other.test"; return body },
			reason: ErrSignatureMismatch, msg: msgMismatch},
		{name: "tampered query", mutate: func(r *http.Request) []byte { r.URL.RawQuery = "a=1"; return body },
			reason: ErrSignatureMismatch, msg: msgMismatch},
		{name: "stale", signAt: t0, now: t0.Add(10 * time.Minute), reason: ErrExpired,
			msg: "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z (20240101T001000Z - 5 min.)"},
		{name: "future", signAt: t0.Add(20 * time.Minute), now: t0.Add(10 * time.Minute), reason: ErrExpired,
			msg: "Signature not yet current: 20240101T002000Z is still later than 20240101T001500Z (20240101T001000Z + 5 min.)"},
		{name: "unsigned date header removed", mutate: func(r *http.Request) []byte { r.Header.Del("X-Amz-Date"); return body },
			reason: ErrIncompleteSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := tc.secret
			if secret == "" {
				secret = testSecret
			}
			signAt, now := tc.signAt, tc.now
			if signAt.IsZero() {
				signAt, now = t0, t0
			}
			r := newECSRequest(ecsTarget, body)
			sign(t, r, body, secret, signAt)
			got := body
			if tc.mutate != nil {
				got = tc.mutate(r)
			}
			_, err := newVerifier(now).Verify(context.Background(), r, got)
			wantAuthErr(t, err, tc.reason, tc.msg)
		})
	}
}

func TestVerifyUnknownKey(t *testing.T) {
	body := []byte(`{}`)
	r := newECSRequest(ecsTarget, body)
	sign(t, r, body, testSecret, t0)
	v := &Verifier{Creds: keyStore{}, Clock: clock.NewFake(t0)}
	_, err := v.Verify(context.Background(), r, body)
	wantAuthErr(t, err, ErrUnknownAccessKey, "The security token included in the request is invalid.")
}

func TestVerifyLookupFailureIsNotAuthError(t *testing.T) {
	body := []byte(`{}`)
	r := newECSRequest(ecsTarget, body)
	sign(t, r, body, testSecret, t0)
	v := &Verifier{Creds: failingStore{}, Clock: clock.NewFake(t0)}
	_, err := v.Verify(context.Background(), r, body)
	if err == nil || errors.Is(err, errdefs.ErrUnauthenticated) || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v; want the store's unavailable error", err)
	}
}

type failingStore struct{}

func (failingStore) LookupAccessKey(context.Context, string) (string, iam.Principal, error) {
	return "", iam.Principal{}, errdefs.New(errdefs.ErrUnavailable, "store down")
}

func TestUnsignedExtraHeaderIsFine(t *testing.T) {
	body := []byte(`{}`)
	r := newECSRequest(ecsTarget, body)
	sign(t, r, body, testSecret, t0)
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	r.Header.Set("User-Agent", "something else")
	if _, err := newVerifier(t0).Verify(context.Background(), r, body); err != nil {
		t.Fatal(err)
	}
}

func TestScopeChecks(t *testing.T) {
	body := []byte(`{}`)
	r := newECSRequest(ecsTarget, body)
	sign(t, r, body, testSecret, t0)

	v := newVerifier(t0)
	v.Region = "eu-west-1"
	_, err := v.Verify(context.Background(), r, body)
	wantAuthErr(t, err, ErrSignatureMismatch, "Credential should be scoped to a valid region, not 'us-east-1'. ")

	_, err = newVerifier(t0).VerifyService(context.Background(), r, body, "sts")
	wantAuthErr(t, err, ErrSignatureMismatch, "Credential should be scoped to correct service: 'sts'. ")

	// A credential dated another day than X-Amz-Date.
	r2 := newECSRequest(ecsTarget, body)
	sign(t, r2, body, testSecret, t0)
	r2.Header.Set("Authorization", strings.Replace(r2.Header.Get("Authorization"), "/20240101/", "/20240102/", 1))
	_, err = newVerifier(t0).Verify(context.Background(), r2, body)
	wantAuthErr(t, err, ErrSignatureMismatch,
		"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240102' != '20240101', from '20240101T000000Z'.")

	r3 := newECSRequest(ecsTarget, body)
	sign(t, r3, body, testSecret, t0)
	r3.Header.Set("Authorization", strings.Replace(r3.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
	_, err = newVerifier(t0).Verify(context.Background(), r3, body)
	wantAuthErr(t, err, ErrSignatureMismatch, "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ")
}

func TestMalformedAuthorization(t *testing.T) {
	const date = "20240101T000000Z"
	tests := []struct {
		name, header string
		noDate       bool
		reason       error
		msg          string
	}{
		{name: "missing", reason: ErrMissingAuth, msg: "Missing Authentication Token"},
		{name: "bearer", header: "Bearer abc.def", reason: ErrIncompleteSignature,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer abc.def"},
		{name: "bearer no date", header: "Bearer abc", noDate: true, reason: ErrIncompleteSignature,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc"},
		{name: "only credential", header: "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ecs/aws4_request", reason: ErrIncompleteSignature,
			msg: "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ecs/aws4_request"},
		{name: "space in credential", header: "AWS4-HMAC-SHA256 Credential=AK /20240101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00",
			reason: ErrIncompleteSignature,
			msg:    "'/20240101/us-east-1/ecs/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=AK /20240101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00'."},
		{name: "short credential", header: "AWS4-HMAC-SHA256 Credential=AK/20240101, SignedHeaders=host, Signature=00", reason: ErrIncompleteSignature,
			msg: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AK/20240101'"},
		{name: "algorithm", header: "AWS4-HMAC-SHA512 Credential=AK/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00",
			reason: ErrIncompleteSignature, msg: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."},
		{name: "host not signed", header: "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ecs/aws4_request, SignedHeaders=x-amz-date, Signature=00",
			reason: ErrIncompleteSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newECSRequest(ecsTarget, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if !tc.noDate {
				r.Header.Set("X-Amz-Date", date)
			}
			_, err := newVerifier(t0).Verify(context.Background(), r, nil)
			wantAuthErr(t, err, tc.reason, tc.msg)
		})
	}
}

func TestBadDate(t *testing.T) {
	r := newECSRequest(ecsTarget, nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00")
	r.Header.Set("X-Amz-Date", "2024-01-01T00:00:00Z")
	_, err := newVerifier(t0).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrIncompleteSignature,
		"Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601")
}

// The Date header stands in for X-Amz-Date; its time is checked the same way.
func TestDateHeader(t *testing.T) {
	r := newECSRequest(ecsTarget, nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ecs/aws4_request, SignedHeaders=date;host, Signature=00")
	r.Header.Set("Date", t0.Format(http.TimeFormat))
	_, err := newVerifier(t0.Add(time.Hour)).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrExpired, "Signature expired: 20240101T000000Z is now earlier than 20240101T005500Z (20240101T010000Z - 5 min.)")
	// In time, it gets as far as the key lookup.
	_, err = newVerifier(t0).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrUnknownAccessKey, "")
}

func TestContentSha256(t *testing.T) {
	body := []byte(`{"a":1}`)
	r := newECSRequest(ecsTarget, body)
	r.Header.Set("X-Amz-Content-Sha256", hashHex(body))
	sign(t, r, body, testSecret, t0)
	if !strings.Contains(r.Header.Get("Authorization"), "x-amz-content-sha256") {
		t.Fatal("test setup: x-amz-content-sha256 not signed")
	}
	if _, err := newVerifier(t0).Verify(context.Background(), r, body); err != nil {
		t.Fatal(err)
	}
	_, err := newVerifier(t0).Verify(context.Background(), r, []byte(`{"a":2}`))
	wantAuthErr(t, err, ErrSignatureMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")

	// UNSIGNED-PAYLOAD is for presigned requests only.
	r2 := newECSRequest(ecsTarget, body)
	r2.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r2, unsignedPayload, "ecs", testRegion, t0); err != nil {
		t.Fatal(err)
	}
	_, err = newVerifier(t0).Verify(context.Background(), r2, body)
	wantAuthErr(t, err, ErrSignatureMismatch, "")
}

func TestSessionToken(t *testing.T) {
	body := []byte(`{}`)
	newReq := func(token string) *http.Request {
		r := newECSRequest(ecsTarget, body)
		creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: token}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hashHex(body), "ecs", testRegion, t0); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Without session support a token is not silently ignored.
	_, err := newVerifier(t0).Verify(context.Background(), newReq("tok"), body)
	wantAuthErr(t, err, ErrUnknownAccessKey, msgUnknownKey)

	v := &Verifier{Creds: sessionStore{keyStore{testAKID: testSecret}, map[string]string{"tok": testAKID}}, Clock: clock.NewFake(t0)}
	if _, err := v.Verify(context.Background(), newReq("tok"), body); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), newReq("other"), body)
	wantAuthErr(t, err, ErrUnknownAccessKey, msgUnknownKey)
}

func TestRotatedSecretDoesNotUseCachedKey(t *testing.T) {
	body := []byte(`{}`)
	store := keyStore{testAKID: testSecret}
	v := &Verifier{Creds: store, Clock: clock.NewFake(t0)}
	r := newECSRequest(ecsTarget, body)
	sign(t, r, body, testSecret, t0)
	if _, err := v.Verify(context.Background(), r, body); err != nil {
		t.Fatal(err)
	}
	store[testAKID] = "rotated"
	_, err := v.Verify(context.Background(), r, body)
	wantAuthErr(t, err, ErrSignatureMismatch, msgMismatch)
	r2 := newECSRequest(ecsTarget, body)
	sign(t, r2, body, "rotated", t0)
	if _, err := v.Verify(context.Background(), r2, body); err != nil {
		t.Fatal(err)
	}
}

func TestQueryCanonicalisation(t *testing.T) {
	body := []byte(`{}`)
	r := httptest.NewRequest(http.MethodGet, "http://ecs.berth.test/?b=2&a=3&a=1&c=x%20y&d=%2F&e=~&f=&Action=List", nil)
	sign(t, r, body, testSecret, t0)

	// The signer rewrote the query in canonical order; the server must
	// accept any order and any equivalent encoding of the same parameters.
	for _, raw := range []string{
		r.URL.RawQuery,
		"Action=List&f=&e=%7E&d=%2f&c=x+y&a=1&a=3&b=2",
		"f&e=~&d=%2F&c=x%20y&b=2&a=3&a=1&Action=List",
	} {
		r2 := r.Clone(context.Background())
		r2.URL.RawQuery = raw
		if _, err := newVerifier(t0).Verify(context.Background(), r2, body); err != nil {
			t.Errorf("query %q: %v", raw, err)
		}
	}
	// Reordering never changes the canonical form; changing a value does.
	r3 := r.Clone(context.Background())
	r3.URL.RawQuery = "Action=List&f=&e=~&d=%2F&c=x%20y&a=1&a=4&b=2"
	_, err := newVerifier(t0).Verify(context.Background(), r3, body)
	wantAuthErr(t, err, ErrSignatureMismatch, msgMismatch)
}

func TestCanonicalQueryString(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"Param2=value2&Param1=value1", "Param1=value1&Param2=value2"},
		{"Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2"},
		{"Param-3=Value3&Param=Value2&-Param=Value1", "-Param=Value1&Param=Value2&Param-3=Value3"},
		{"k=a%2Fb&k=a-b", "k=a%2Fb&k=a-b"},
		{"Foo.member.1=%E1%88%B4&x", "Foo.member.1=%E1%88%B4&x="},
		{"bad=%zz", "bad=%25zz"},
	}
	for _, tc := range tests {
		if got := canonicalQuery(parseQuery(tc.raw), false); got != tc.want {
			t.Errorf("canonicalQuery(%q) = %q; want %q", tc.raw, got, tc.want)
		}
	}
}

func presign(t *testing.T, r *http.Request, payloadHash string, at time.Time) *http.Request {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, payloadHash, "sts", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	out := httptest.NewRequest(r.Method, u, nil)
	for k, vs := range hdr {
		if strings.EqualFold(k, "Host") {
			continue
		}
		out.Header[k] = vs
	}
	return out
}

func TestPresigned(t *testing.T) {
	newReq := func(expires string) *http.Request {
		q := "Action=GetCallerIdentity&Version=2011-06-15"
		if expires != "" {
			q += "&X-Amz-Expires=" + expires
		}
		return httptest.NewRequest(http.MethodGet, "http://sts.berth.test/?"+q, nil)
	}
	for _, ph := range []string{hashHex(nil), unsignedPayload} {
		r := presign(t, newReq("900"), ph, t0)
		if r.Header.Get("Authorization") != "" || !strings.Contains(r.URL.RawQuery, "X-Amz-Signature=") {
			t.Fatalf("not presigned: %s", r.URL)
		}
		p, err := newVerifier(t0.Add(10*time.Minute)).VerifyService(context.Background(), r, nil, "sts")
		if err != nil {
			t.Fatalf("payload %s: %v", ph, err)
		}
		if p.AccessKeyID != testAKID {
			t.Fatalf("principal %+v", p)
		}
		if cred, ok := Scope(r); !ok || cred.Service != "sts" || cred.AccessKeyID != testAKID {
			t.Fatalf("Scope = %+v, %v", cred, ok)
		}
	}

	// Expired: 900 s after signing plus a little.
	r := presign(t, newReq("900"), hashHex(nil), t0)
	_, err := newVerifier(t0.Add(16*time.Minute)).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrExpired, "Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z (20240101T001600Z - 15 min.)")

	// Without X-Amz-Expires the ordinary skew applies.
	r = presign(t, newReq(""), hashHex(nil), t0)
	if _, err := newVerifier(t0.Add(4*time.Minute)).Verify(context.Background(), r, nil); err != nil {
		t.Fatal(err)
	}
	_, err = newVerifier(t0.Add(6*time.Minute)).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrExpired, "")

	r = presign(t, newReq("604801"), hashHex(nil), t0)
	_, err = newVerifier(t0).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrIncompleteSignature, "X-Amz-Expires must be less than a week (in seconds) that is 604800")

	// Tampering with a signed query parameter.
	r = presign(t, newReq("900"), hashHex(nil), t0)
	r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "GetCallerIdentity", "AssumeRole", 1)
	_, err = newVerifier(t0).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrSignatureMismatch, msgMismatch)

	// A body that UNSIGNED-PAYLOAD was not declared for is covered.
	r = presign(t, newReq("900"), hashHex(nil), t0)
	_, err = newVerifier(t0).Verify(context.Background(), r, []byte("Action=AssumeRole"))
	wantAuthErr(t, err, ErrSignatureMismatch, msgMismatch)
}

func TestPresignedMissingParameters(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://sts.berth.test/?X-Amz-Credential=AK%2F20240101%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Signature=00", nil)
	_, err := newVerifier(t0).Verify(context.Background(), r, nil)
	wantAuthErr(t, err, ErrIncompleteSignature,
		"AWS query-string parameters must include 'X-Amz-Algorithm'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.")
}

func TestScope(t *testing.T) {
	r := newECSRequest(ecsTarget, nil)
	if _, ok := Scope(r); ok {
		t.Fatal("scope of an unsigned request")
	}
	sign(t, r, nil, testSecret, t0)
	c, ok := Scope(r)
	want := Credential{AccessKeyID: testAKID, Date: "20240101", Region: testRegion, Service: "ecs", Terminator: "aws4_request"}
	if !ok || c != want {
		t.Fatalf("Scope = %+v, %v; want %+v", c, ok, want)
	}
	r.Header.Set("Authorization", "Bearer x")
	if _, ok := Scope(r); ok {
		t.Fatal("scope of a bearer token")
	}
}

// botocoreSign signs a request with botocore.auth.SigV4Auth (the signer the
// aws CLI and boto3 use) and returns its URL and headers.
const botocoreScript = `
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
a = json.loads(sys.argv[1])
req = AWSRequest(method=a["method"], url=a["url"], data=a["body"].encode(), headers=a["headers"])
SigV4Auth(Credentials(a["akid"], a["secret"]), a["service"], a["region"]).add_auth(req)
print(json.dumps({"url": req.url, "headers": dict(req.headers.items())}))
`

func TestBotocoreSignature(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import botocore").Run()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 with botocore is required in CI: %v", err)
		}
		t.Skipf("python3 with botocore not available: %v", err)
	}
	for _, tc := range []struct{ name, method, url, body, ctype, target, service string }{
		{"awsjson", "POST", "http://127.0.0.1:7400/", `{"clusters":["default"],"include":["TAGS"]}`,
			"application/x-amz-json-1.1", "AmazonEC2ContainerServiceV20141113.DescribeClusters", "ecs"},
		{"awsquery", "POST", "http://127.0.0.1:7400/", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&Tags.member.1.Key=a",
			"application/x-www-form-urlencoded; charset=utf-8", "", "sts"},
		{"query string", "GET", "http://localhost/?b=2&a=x%20y&a=1&c=~&d=%2F", "", "", "", "sts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdrs := map[string]string{}
			if tc.ctype != "" {
				hdrs["Content-Type"] = tc.ctype
			}
			if tc.target != "" {
				hdrs["X-Amz-Target"] = tc.target
			}
			arg, _ := json.Marshal(map[string]any{"method": tc.method, "url": tc.url, "body": tc.body, "headers": hdrs,
				"akid": testAKID, "secret": testSecret, "service": tc.service, "region": testRegion})
			out, err := exec.Command(py, "-c", botocoreScript, string(arg)).Output()
			if err != nil {
				t.Fatalf("botocore: %v", err)
			}
			var signed struct {
				URL     string
				Headers map[string]string
			}
			if err := json.Unmarshal(out, &signed); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			r := httptest.NewRequest(tc.method, signed.URL, strings.NewReader(tc.body))
			for k, v := range signed.Headers {
				r.Header.Set(k, v)
			}
			at, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newVerifier(at).VerifyService(context.Background(), r, []byte(tc.body), tc.service); err != nil {
				t.Fatalf("botocore-signed request rejected: %v\nheaders: %v", err, signed.Headers)
			}
			// And the same request with another secret fails.
			v := &Verifier{Creds: keyStore{testAKID: "other"}, Clock: clock.NewFake(at)}
			_, err = v.Verify(context.Background(), r, []byte(tc.body))
			wantAuthErr(t, err, ErrSignatureMismatch, msgMismatch)
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"",
		"AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + strings.Repeat("ab", 32),
		"AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ecs/aws4_request,SignedHeaders=host,Signature=00",
		"AWS4-HMAC-SHA256 Credential=AKID /20240101/us-east-1/ecs/aws4_request",
		"AWS4-HMAC-SHA256 Credential=a/b",
		"AWS4-HMAC-SHA256 ,,, =",
		"AWS4-HMAC-SHA512 x=y",
		"AWS AKID:c2ln",
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			if !errors.Is(err, ErrIncompleteSignature) {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		if a.Signature == "" || a.SignedHeaders == "" {
			t.Fatalf("accepted %q with missing parts: %+v", h, a)
		}
	})
}

// FuzzVerify feeds arbitrary signature material through the whole verifier:
// it must answer with an authentication error, never panic or verify.
func FuzzVerify(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "", "20240101T000000Z", "")
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=60", "", "")
	f.Add("", "X-Amz-Signature=&X-Amz-Expires=-1&%zz=%", "", "")
	f.Add("AWS4-HMAC-SHA256 Credential=////, SignedHeaders=;;, Signature=", "a=1&a=2", "2024", "Mon, 01 Jan 2024 00:00:00 GMT")
	f.Fuzz(func(t *testing.T, auth, query, amzDate, date string) {
		r := httptest.NewRequest(http.MethodPost, "http://ecs.berth.test/", nil)
		r.URL.RawQuery = query
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if amzDate != "" {
			r.Header["X-Amz-Date"] = []string{amzDate}
		}
		if date != "" {
			r.Header["Date"] = []string{date}
		}
		_, err := newVerifier(t0).Verify(context.Background(), r, []byte(query))
		if err == nil {
			t.Fatal("verified a fuzzed request")
		}
		if !errors.Is(err, errdefs.ErrUnauthenticated) {
			t.Fatalf("not an authentication error: %v", err)
		}
		_, _ = Scope(r)
	})
}

// BenchmarkVerify measures verification plus authorization of a typical
// signed ECS request, the per-request cost the API pays before a handler.
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"cluster":"default","taskDefinition":"web:3","count":2,"launchType":"EC2"}`)
	r := newECSRequest("AmazonEC2ContainerServiceV20141113.RunTask", body)
	sign(b, r, body, testSecret, t0)
	v := newVerifier(t0)
	authz := iam.AdminOnly{AdminARN: adminARN}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := v.VerifyService(ctx, r, body, "ecs")
		if err != nil {
			b.Fatal(err)
		}
		if err := authz.Authorize(ctx, p, "ecs:RunTask", "*"); err != nil {
			b.Fatal(err)
		}
	}
}
