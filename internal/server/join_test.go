package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/store/memstore"
)

// joinFixture is the join endpoints alone, on a memory store.
type joinFixture struct {
	url    string
	clock  *clock.Fake
	acct   account.Account
	admin  aws.Credentials
	region string
}

func newJoinFixture(t *testing.T) *joinFixture {
	t.Helper()
	ctx := context.Background()
	st := memstore.New()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	acct, err := account.Bootstrap(ctx, st, "", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := account.AdminKey(ctx, st, acct)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	j := &agentJoin{
		store: st, account: acct, clock: clk,
		verifier: &sigv4.Verifier{Creds: account.NewKeys(st, acct), Clock: clk, Region: acct.Region},
		authz:    iam.Builtin{AdminARN: acct.AdminARN(), InstanceARNPrefix: iam.InstanceARNPrefix(acct.ID)},
		limiter:  newFailureLimiter(clk, 3, time.Minute, 100),
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	j.register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	j.endpoint = ts.URL
	return &joinFixture{url: ts.URL, clock: clk, acct: acct, region: acct.Region,
		admin: aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}}
}

// post sends body to path, SigV4-signed with creds for service (unsigned
// when creds is nil), and returns the status and the decoded body.
func post(t *testing.T, url, path, body string, creds *aws.Credentials, service, region string, at time.Time) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if creds != nil {
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), *creds, req, hex.EncodeToString(sum[:]), service, region, at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s answered %d with a body that is not JSON: %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, out, resp.Header
}

func (f *joinFixture) createToken(t *testing.T, body string) string {
	t.Helper()
	code, out, _ := post(t, f.url, jointoken.TokensPath, body, &f.admin, jointoken.SigningName, f.region, f.clock.Now())
	if code != 200 {
		t.Fatalf("create token: %d %v", code, out)
	}
	tok, _ := out["token"].(string)
	return tok
}

func (f *joinFixture) join(t *testing.T, token string) (int, map[string]any, http.Header) {
	t.Helper()
	b, _ := json.Marshal(jointoken.JoinRequest{Token: token})
	return post(t, f.url, jointoken.JoinPath, string(b), nil, "", "", time.Time{})
}

func TestCreateTokenAndJoin(t *testing.T) {
	f := newJoinFixture(t)
	code, out, _ := post(t, f.url, jointoken.TokensPath, `{"cluster":"edge","ttlSeconds":3600}`, &f.admin, jointoken.SigningName, f.region, f.clock.Now())
	if code != 200 {
		t.Fatalf("create token: %d %v", code, out)
	}
	tok, err := jointoken.Parse(out["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Server != f.url || tok.Cluster != "edge" || tok.CAPin != "" || out["tokenId"] != tok.ID || out["cluster"] != "edge" {
		t.Fatalf("token %+v, answer %v", tok, out)
	}
	if exp, _ := time.Parse(time.RFC3339, out["expiresAt"].(string)); !exp.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("expiresAt %v", out["expiresAt"])
	}

	code, got, hdr := f.join(t, out["token"].(string))
	if code != 200 {
		t.Fatalf("join: %d %v", code, got)
	}
	if got["accountId"] != f.acct.ID || got["region"] != f.region || got["cluster"] != "edge" || got["endpoint"] != f.url ||
		!strings.HasPrefix(got["accessKeyId"].(string), "AKIA") || len(got["secretAccessKey"].(string)) != 40 ||
		!strings.HasPrefix(got["userArn"].(string), iam.InstanceARNPrefix(f.acct.ID)+"i-") || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("join answer %v", got)
	}

	// The instance's credentials authenticate, but may not mint tokens.
	inst := aws.Credentials{AccessKeyID: got["accessKeyId"].(string), SecretAccessKey: got["secretAccessKey"].(string)}
	code, denied, _ := post(t, f.url, jointoken.TokensPath, `{}`, &inst, jointoken.SigningName, f.region, f.clock.Now())
	if code != 403 || denied["__type"] != "AccessDeniedException" ||
		!strings.Contains(denied["message"].(string), "is not authorized to perform: berth:CreateJoinToken") {
		t.Fatalf("instance creating a token: %d %v", code, denied)
	}
}

func TestCreateTokenRefusals(t *testing.T) {
	f := newJoinFixture(t)
	stranger := aws.Credentials{AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", SecretAccessKey: strings.Repeat("x", 40)}
	tests := []struct {
		name          string
		body          string
		creds         *aws.Credentials
		service       string
		code          int
		typ, contains string
	}{
		{"unsigned", `{}`, nil, jointoken.SigningName, 403, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"unknown key", `{}`, &stranger, jointoken.SigningName, 403, "UnrecognizedClientException", "security token"},
		{"wrong service scope", `{}`, &f.admin, "ecs", 403, "InvalidSignatureException", "correct service: 'berth'"},
		{"not json", `{`, &f.admin, jointoken.SigningName, 400, "SerializationException", "not a valid JSON"},
		{"bad cluster", `{"cluster":"a b"}`, &f.admin, jointoken.SigningName, 400, "ValidationException", "Invalid cluster name"},
		{"negative ttl", `{"ttlSeconds":-1}`, &f.admin, jointoken.SigningName, 400, "ValidationException", "ttlSeconds must be between"},
		{"short ttl", `{"ttlSeconds":5}`, &f.admin, jointoken.SigningName, 400, "ValidationException", "lifetime must be between"},
		{"bad server url", `{"serverUrl":"10.0.0.5:7400"}`, &f.admin, jointoken.SigningName, 400, "ValidationException", "server URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := post(t, f.url, jointoken.TokensPath, tt.body, tt.creds, tt.service, f.region, f.clock.Now())
			if code != tt.code || out["__type"] != tt.typ || !strings.Contains(fmt.Sprint(out["message"]), tt.contains) {
				t.Fatalf("got %d %v, want %d %s containing %q", code, out, tt.code, tt.typ, tt.contains)
			}
		})
	}
	// A server URL given by the admin goes into the token and the answer.
	tok, err := jointoken.Parse(f.createToken(t, `{"serverUrl":"https://10.0.0.5:7400"}`))
	if err != nil || tok.Server != "https://10.0.0.5:7400" || tok.Cluster != "default" {
		t.Fatalf("token %+v, %v", tok, err)
	}
	code, got, _ := f.join(t, f.createToken(t, `{"serverUrl":"https://10.0.0.5:7400"}`))
	if code != 200 || got["endpoint"] != "https://10.0.0.5:7400" {
		t.Fatalf("join: %d %v", code, got)
	}
}

func TestJoinRefusals(t *testing.T) {
	f := newJoinFixture(t)
	good := f.createToken(t, `{"ttlSeconds":86400}`)
	tok, _ := jointoken.Parse(good)
	wrong := tok
	wrong.Secret, _ = jointoken.NewSecret()
	wrongSecret, _ := jointoken.Encode(wrong)
	unknown := tok
	unknown.ID, _ = jointoken.NewID()
	unknownID, _ := jointoken.Encode(unknown)

	tests := []struct {
		name, token, contains string
	}{
		{"empty", "", "the token is empty"},
		{"garbage", "hello", `must start with "berth1."`},
		{"wrong secret", wrongSecret, "secret of join token " + tok.ID + " is wrong"},
		{"unknown id", unknownID, "is not known to this server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.limiterReset(t)
			code, out, _ := f.join(t, tt.token)
			if code != 403 || out["__type"] != "AccessDeniedException" || !strings.Contains(out["message"].(string), tt.contains) {
				t.Fatalf("got %d %v, want 403 AccessDeniedException containing %q", code, out, tt.contains)
			}
		})
	}
	if code, out, _ := f.join(t, good); code != 200 {
		t.Fatalf("good token: %d %v", code, out)
	}
	f.clock.Advance(24 * time.Hour)
	code, out, _ := f.join(t, good)
	if code != 403 || !strings.Contains(out["message"].(string), "expired at") {
		t.Fatalf("expired token: %d %v", code, out)
	}
}

// limiterReset waits out the failure limiter on the fake clock.
func (f *joinFixture) limiterReset(t *testing.T) {
	t.Helper()
	f.clock.Advance(time.Hour)
}

func TestJoinFraming(t *testing.T) {
	f := newJoinFixture(t)
	for _, path := range []string{jointoken.JoinPath, jointoken.TokensPath} {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(string(b), `"__type":"MethodNotAllowed"`) {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		big := bytes.Repeat([]byte("a"), jointoken.MaxRequestBytes+1)
		resp, err = http.Post(f.url+path, "application/json", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), "RequestEntityTooLarge") {
			t.Fatalf("big POST %s: %d %s", path, resp.StatusCode, b)
		}
		f.limiterReset(t)
	}
	code, out, _ := post(t, f.url, jointoken.JoinPath, `{"token":`, nil, "", "", time.Time{})
	if code != 400 || out["__type"] != "SerializationException" {
		t.Fatalf("bad JSON: %d %v", code, out)
	}
}

func TestJoinRateLimitsFailures(t *testing.T) {
	f := newJoinFixture(t) // burst 3, one more per minute
	good := f.createToken(t, `{}`)
	for i := 0; i < 3; i++ {
		if code, out, _ := f.join(t, "berth1.bad"); code != 403 {
			t.Fatalf("attempt %d: %d %v", i, code, out)
		}
	}
	code, out, hdr := f.join(t, good)
	if code != 429 || out["__type"] != "ThrottlingException" || hdr.Get("Retry-After") != "60" {
		t.Fatalf("after 3 failures: %d %v (Retry-After %q)", code, out, hdr.Get("Retry-After"))
	}
	f.clock.Advance(time.Minute)
	if code, out, _ := f.join(t, good); code != 200 {
		t.Fatalf("after a minute: %d %v", code, out)
	}
	// Successes cost nothing.
	for i := 0; i < 5; i++ {
		if code, out, _ := f.join(t, good); code != 200 {
			t.Fatalf("success %d: %d %v", i, code, out)
		}
	}
}

func TestFailureLimiterIsBounded(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	l := newFailureLimiter(clk, 2, time.Minute, 4)
	for i := 0; i < 100; i++ {
		ip := fmt.Sprintf("10.0.0.%d", i)
		l.fail(ip)
		l.fail(ip)
	}
	if n := len(l.buckets); n > 5 {
		t.Fatalf("%d buckets for a limit of 4 (+1 shared)", n)
	}
	// The first addresses are tracked and limited; the rest share the
	// overflow bucket, which is empty too.
	if _, ok := l.allow("10.0.0.0"); ok {
		t.Fatal("a tracked address over its limit was allowed")
	}
	if _, ok := l.allow("10.0.0.99"); ok {
		t.Fatal("an address in the full table was allowed past the shared bucket")
	}
	// Once buckets refill, a sweep makes room for new addresses again.
	clk.Advance(2 * time.Minute)
	l.fail("192.0.2.1")
	if _, ok := l.buckets["192.0.2.1"]; !ok {
		t.Fatalf("no room after refill: %v", l.buckets)
	}
	if wait, ok := l.allow("192.0.2.1"); !ok || wait != 0 {
		t.Fatalf("one failure of a burst of 2 blocks: %v %v", wait, ok)
	}
}

// TestJoinedAgentCallsECS runs the whole flow on a real server: the admin
// mints a token, an agent joins, and the agent's credentials sign ECS
// requests that the instance policy allows and refuses.
func TestJoinedAgentCallsECS(t *testing.T) {
	srv, admin := startTestServer(t)
	region := srv.Account().Region
	code, out, _ := post(t, srv.Endpoint(), jointoken.TokensPath, `{"cluster":"fleet"}`, &admin, jointoken.SigningName, region, time.Now())
	if code != 200 {
		t.Fatalf("create token: %d %v", code, out)
	}
	b, _ := json.Marshal(jointoken.JoinRequest{Token: out["token"].(string)})
	code, got, _ := post(t, srv.Endpoint(), jointoken.JoinPath, string(b), nil, "", "", time.Time{})
	if code != 200 || got["cluster"] != "fleet" || got["endpoint"] != srv.Endpoint() {
		t.Fatalf("join: %d %v", code, got)
	}
	inst := aws.Credentials{AccessKeyID: got["accessKeyId"].(string), SecretAccessKey: got["secretAccessKey"].(string)}

	if code, body := call(t, http.DefaultClient, srv, inst, "CreateCluster", `{"clusterName":"fleet"}`); code != 200 || !strings.Contains(body, `"clusterName":"fleet"`) {
		t.Fatalf("CreateCluster as the instance: %d %s", code, body)
	}
	for _, c := range []struct{ action, body string }{
		{"DeleteCluster", `{"cluster":"fleet"}`},
		{"RegisterTaskDefinition", `{"family":"x","containerDefinitions":[{"name":"a","image":"a","memory":64}]}`},
		{"ListClusters", `{}`},
	} {
		code, body := call(t, http.DefaultClient, srv, inst, c.action, c.body)
		if code/100 != 4 || !strings.Contains(body, "AccessDeniedException") ||
			!strings.Contains(body, got["userArn"].(string)+" is not authorized to perform: ecs:"+c.action) {
			t.Fatalf("%s as the instance: %d %s", c.action, code, body)
		}
	}
	// The admin is unaffected.
	if code, body := call(t, http.DefaultClient, srv, admin, "DeleteCluster", `{"cluster":"fleet"}`); code != 200 {
		t.Fatalf("DeleteCluster as the admin: %d %s", code, body)
	}
}
