package awsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/schemas"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithy "github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/awsquery"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
)

const (
	akid   = "AKIABERTHTESTKEY0001"
	secret = "berth-test-secret-key"
	region = "us-east-1"
)

var admin = iam.Principal{AccountID: "123456789012", ARN: "arn:aws:iam::123456789012:user/admin", UserID: "AIDABERTHADMIN"}

type keyStore map[string]string

func (k keyStore) LookupAccessKey(_ context.Context, id string) (string, iam.Principal, error) {
	s, ok := k[id]
	if !ok {
		return "", iam.Principal{}, errdefs.NotFound("no such key")
	}
	return s, admin, nil
}

// observed records Observer calls.
type observed struct {
	mu   sync.Mutex
	list []string
}

func (o *observed) ObserveRequest(service, action string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, service+" "+action+" "+http.StatusText(status))
}

func (o *observed) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.list) == 0 {
		return ""
	}
	return o.list[len(o.list)-1]
}

type fixture struct {
	url   string
	clock *clock.Fake
	obs   *observed
	logs  *bytes.Buffer
	logMu *sync.Mutex
}

// syncWriter serialises log writes from server goroutines.
type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (f *fixture) logText() string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.logs.String()
}

// newFixture serves a router with a fake ECS (ListClusters only, plus a
// DeleteCluster that panics) and a fake STS (GetCallerIdentity).
func newFixture(t *testing.T, maxBody int64) *fixture {
	t.Helper()
	f := &fixture{clock: clock.NewFake(time.Now()), obs: &observed{}, logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	ecsSvc := &awsjson.Service{
		SigningName: "ecs",
		Schema:      schemas.AmazonEC2ContainerServiceV20141113,
		Operations: []awsjson.Operation{
			awsjson.Bind(smithy.NewOperationSchema(schemas.ListClusters, schemas.ListClustersRequest, schemas.ListClustersResponse),
				func(ctx context.Context, _ *ecs.ListClustersInput) (*ecs.ListClustersOutput, error) {
					p, ok := awsapi.PrincipalFrom(ctx)
					if !ok || awsapi.RequestIDFrom(ctx) == "" {
						return nil, errdefs.Internal(errors.New("no principal or request id in context"))
					}
					return &ecs.ListClustersOutput{ClusterArns: []string{"arn:aws:ecs:us-east-1:" + p.AccountID + ":cluster/default"}}, nil
				}),
			awsjson.Bind(smithy.NewOperationSchema(schemas.DeleteCluster, schemas.DeleteClusterRequest, schemas.DeleteClusterResponse),
				func(context.Context, *ecs.DeleteClusterInput) (*ecs.DeleteClusterOutput, error) {
					panic("handler bug")
				}),
		},
	}
	stsSvc := &awsquery.Service{
		SigningName:  "sts",
		Version:      "2011-06-15",
		XMLNamespace: "https://sts.amazonaws.com/doc/2011-06-15/",
		Actions: map[string]awsquery.Handler{
			"GetCallerIdentity": func(ctx context.Context, _ awsquery.Params) (any, error) {
				p, _ := awsapi.PrincipalFrom(ctx)
				return struct {
					Arn     string
					UserID  string `xml:"UserId"`
					Account string
				}{p.ARN, p.UserID, p.AccountID}, nil
			},
		},
	}
	rt := &awsapi.Router{
		Verifier:     &sigv4.Verifier{Creds: keyStore{akid: secret}, Clock: f.clock, Region: region},
		JSON:         []*awsjson.Service{ecsSvc},
		Query:        []*awsquery.Service{stsSvc},
		MaxBodyBytes: maxBody,
		Metrics:      f.obs,
		Logger:       slog.New(slog.NewTextHandler(syncWriter{f.logMu, f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := rt.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func creds(id, key string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: key}, nil
	})
}

func (f *fixture) ecs(c aws.CredentialsProvider, reg string) *ecs.Client {
	return ecs.New(ecs.Options{Region: reg, BaseEndpoint: aws.String(f.url), Credentials: c, RetryMaxAttempts: 1})
}

func (f *fixture) sts(c aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(f.url), Credentials: c, RetryMaxAttempts: 1})
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func wantAPIError(t *testing.T, err error, code string, status int, msgPrefix string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.HasPrefix(ae.ErrorMessage(), msgPrefix) {
		t.Fatalf("err = %v; want %s: %s…", err, code, msgPrefix)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("err = %v; want HTTP %d", err, status)
	}
	if !uuidRE.MatchString(re.RequestID) {
		t.Fatalf("request id %q on the error response", re.RequestID)
	}
}

func TestRouterJSON(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()

	t.Run("signed", func(t *testing.T) {
		out, err := f.ecs(creds(akid, secret), region).ListClusters(ctx, &ecs.ListClustersInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ClusterArns) != 1 || out.ClusterArns[0] != "arn:aws:ecs:us-east-1:123456789012:cluster/default" {
			t.Fatalf("ClusterArns = %v", out.ClusterArns)
		}
		if id, _ := awsmw.GetRequestIDMetadata(out.ResultMetadata); !uuidRE.MatchString(id) {
			t.Fatalf("request id %q", id)
		}
		if got := f.obs.last(); got != "ecs ListClusters OK" {
			t.Fatalf("observed %q", got)
		}
	})
	t.Run("no signature", func(t *testing.T) {
		_, err := f.ecs(aws.AnonymousCredentials{}, region).ListClusters(ctx, &ecs.ListClustersInput{})
		wantAPIError(t, err, "MissingAuthenticationTokenException", 403, "Missing Authentication Token")
		if got := f.obs.last(); got != "ecs ListClusters Forbidden" {
			t.Fatalf("observed %q", got)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		_, err := f.ecs(creds(akid, "wrong"), region).ListClusters(ctx, &ecs.ListClustersInput{})
		wantAPIError(t, err, "InvalidSignatureException", 403, "The request signature we calculated does not match")
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := f.ecs(creds("AKIANOBODY", secret), region).ListClusters(ctx, &ecs.ListClustersInput{})
		wantAPIError(t, err, "UnrecognizedClientException", 403, "The security token included in the request is invalid.")
	})
	t.Run("wrong region", func(t *testing.T) {
		_, err := f.ecs(creds(akid, secret), "eu-west-1").ListClusters(ctx, &ecs.ListClustersInput{})
		wantAPIError(t, err, "InvalidSignatureException", 403, "Credential should be scoped to a valid region, not 'eu-west-1'. ")
	})
	t.Run("clock 10 minutes off", func(t *testing.T) {
		f.clock.Set(time.Now().Add(10 * time.Minute))
		defer f.clock.Set(time.Now())
		_, err := f.ecs(creds(akid, secret), region).ListClusters(ctx, &ecs.ListClustersInput{})
		wantAPIError(t, err, "InvalidSignatureException", 403, "Signature expired: ")
		if !strings.Contains(err.Error(), " - 5 min.)") {
			t.Fatalf("message %v", err)
		}
	})
	t.Run("handler panic", func(t *testing.T) {
		_, err := f.ecs(creds(akid, secret), region).DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("x")})
		wantAPIError(t, err, "InternalFailure", 500, "The request processing has failed")
		if !strings.Contains(f.logText(), "level=ERROR") || !strings.Contains(f.logText(), "handler bug") {
			t.Fatalf("panic not logged at error level:\n%s", f.logText())
		}
	})
}

func TestRouterOversizedBody(t *testing.T) {
	f := newFixture(t, 1024)
	_, err := f.ecs(creds(akid, secret), region).ListClusters(context.Background(),
		&ecs.ListClustersInput{NextToken: aws.String(strings.Repeat("x", 2048))})
	wantAPIError(t, err, "RequestEntityTooLarge", 413, "Request body exceeds the limit of 1024 bytes.")

	// In the query protocol the answer is XML, from the service the
	// signature names.
	_, err = f.sts(creds(akid, secret)).AssumeRole(context.Background(),
		&sts.AssumeRoleInput{RoleArn: aws.String(strings.Repeat("r", 2048)), RoleSessionName: aws.String("s")})
	wantAPIError(t, err, "RequestEntityTooLarge", 413, "Request body exceeds the limit of 1024 bytes.")

	// Without a Content-Length the limit still holds.
	req, _ := http.NewRequest(http.MethodPost, f.url, struct{ *strings.Reader }{strings.NewReader(strings.Repeat("x", 4096))})
	req.ContentLength = -1
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || resp.Header.Get("X-Amzn-ErrorType") != "RequestEntityTooLarge" {
		t.Fatalf("chunked oversized body: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

// raw sends an unsigned request and returns status, headers and body.
func raw(t *testing.T, method, url string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.String()
}

func TestRouterUnidentified(t *testing.T) {
	f := newFixture(t, 0)
	for _, tc := range []struct {
		name   string
		method string
		hdr    map[string]string
		body   string
		status int
		code   string
	}{
		{"unknown prefix", "POST", map[string]string{"X-Amz-Target": "Nope_2020.ListThings"}, "{}", 400, "UnknownOperationException"},
		{"unknown operation", "POST", map[string]string{"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListThings"}, "{}", 400, "UnknownOperationException"},
		{"GET on awsJson", "GET", map[string]string{"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters"}, "", 405, "MethodNotAllowed"},
		{"empty POST", "POST", nil, "", 400, "UnknownOperationException"},
		{"unsigned JSON", "POST", map[string]string{"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters"}, "{}", 403, "MissingAuthenticationTokenException"},
		{"bad header", "POST", map[string]string{"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters", "Authorization": "Bearer x"}, "{}", 403, "IncompleteSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := raw(t, tc.method, f.url+"/", tc.hdr, tc.body)
			var e struct {
				Type string `json:"__type"`
			}
			_ = json.Unmarshal([]byte(body), &e)
			if resp.StatusCode != tc.status || e.Type != tc.code || resp.Header.Get("X-Amzn-ErrorType") != tc.code {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			if !uuidRE.MatchString(resp.Header.Get("X-Amzn-Requestid")) {
				t.Fatalf("request id header %q", resp.Header.Get("X-Amzn-Requestid"))
			}
		})
	}
	// An unknown target never becomes a metric label.
	raw(t, "POST", f.url+"/", map[string]string{"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.Random123"}, "{}")
	if got := f.obs.last(); got != "ecs  Bad Request" {
		t.Fatalf("observed %q", got)
	}
}

func TestRouterQuery(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()

	out, err := f.sts(creds(akid, secret)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Arn) != admin.ARN || aws.ToString(out.Account) != admin.AccountID {
		t.Fatalf("GetCallerIdentity = %+v", out)
	}
	if id, _ := awsmw.GetRequestIDMetadata(out.ResultMetadata); !uuidRE.MatchString(id) {
		t.Fatalf("request id %q", id)
	}
	if got := f.obs.last(); got != "sts GetCallerIdentity OK" {
		t.Fatalf("observed %q", got)
	}

	_, err = f.sts(aws.AnonymousCredentials{}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "MissingAuthenticationToken", 403, "Request is missing Authentication Token")
	_, err = f.sts(creds(akid, "wrong")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "SignatureDoesNotMatch", 403, "The request signature we calculated does not match")
	_, err = f.sts(creds("AKIANOBODY", secret)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "InvalidClientTokenId", 403, "The security token included in the request is invalid.")
	_, err = f.sts(creds(akid, secret)).GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	wantAPIError(t, err, "InvalidAction", 400, "Could not find operation GetSessionToken for version 2011-06-15")

	// A form signed for a service berth does not serve.
	body := "Action=ListUsers&Version=2010-05-08"
	req := httptest.NewRequest(http.MethodPost, f.url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RequestURI = ""
	signer := v4.NewSigner()
	if err := signer.SignHTTP(ctx, aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, req, sha256Hex(body), "iam", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("iam-scoped request: %d", resp.StatusCode)
	}
}

// A presigned GET (the STS GetCallerIdentity URL some tools hand around)
// goes through the query path.
func TestRouterPresignedGET(t *testing.T) {
	f := newFixture(t, 0)
	req, _ := http.NewRequest(http.MethodGet, f.url+"/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60", nil)
	u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		req, sha256Hex(""), "sts", region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	get, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range hdr {
		if k != "Host" {
			get.Header[k] = v
		}
	}
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(b.String(), "<Arn>"+admin.ARN+"</Arn>") {
		t.Fatalf("%d %s", resp.StatusCode, b.String())
	}
}

func TestRouterValidate(t *testing.T) {
	svc := &awsjson.Service{SigningName: "ecs", Schema: schemas.AmazonEC2ContainerServiceV20141113}
	for name, rt := range map[string]*awsapi.Router{
		"no verifier":  {JSON: []*awsjson.Service{svc}},
		"dup prefix":   {Verifier: &sigv4.Verifier{}, JSON: []*awsjson.Service{svc, svc}},
		"dup query":    {Verifier: &sigv4.Verifier{}, Query: []*awsquery.Service{{SigningName: "sts"}, {SigningName: "sts"}}},
		"no sign name": {Verifier: &sigv4.Verifier{}, Query: []*awsquery.Service{{}}},
		"no prefix":    {Verifier: &sigv4.Verifier{}, JSON: []*awsjson.Service{{SigningName: "x"}}},
	} {
		if rt.Validate() == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
	rec := httptest.NewRecorder()
	(&awsapi.Router{Logger: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != 500 || rec.Header().Get("x-amzn-RequestId") == "" {
		t.Fatalf("misconfigured router answered %d", rec.Code)
	}
}

// TestAWSCLI drives the router with the real aws CLI v2, whose own botocore
// signs, and checks what a user sees.
func TestAWSCLI(t *testing.T) {
	const cli = "/usr/bin/aws"
	if _, err := os.Stat(cli); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("aws CLI required in CI: %v", err)
		}
		t.Skipf("aws CLI not installed: %v", err)
	}
	f := newFixture(t, 0)
	run := func(key string, args ...string) (string, string, error) {
		home := t.TempDir()
		cmd := exec.Command(cli, append([]string{"--endpoint-url", f.url, "--output", "json"}, args...)...)
		cmd.Env = []string{
			"HOME=" + home, "PATH=/usr/bin:/bin",
			"AWS_ACCESS_KEY_ID=" + akid, "AWS_SECRET_ACCESS_KEY=" + key, "AWS_DEFAULT_REGION=" + region,
			"AWS_CONFIG_FILE=" + home + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	out, errOut, err := run(secret, "ecs", "list-clusters")
	if err != nil || !strings.Contains(out, "arn:aws:ecs:us-east-1:123456789012:cluster/default") {
		t.Fatalf("list-clusters: %v\n%s\n%s", err, out, errOut)
	}
	_, errOut, err = run("wrong", "ecs", "list-clusters")
	want := "An error occurred (InvalidSignatureException) when calling the ListClusters operation: The request signature we calculated does not match the signature you provided."
	if err == nil || !strings.Contains(errOut, want) {
		t.Fatalf("wrong secret: %v\n%s", err, errOut)
	}
	t.Logf("aws ecs list-clusters with a wrong secret:\n%s", errOut)
	out, errOut, err = run(secret, "sts", "get-caller-identity")
	if err != nil || !strings.Contains(out, admin.ARN) {
		t.Fatalf("get-caller-identity: %v\n%s\n%s", err, out, errOut)
	}
	_, errOut, err = run("wrong", "sts", "get-caller-identity")
	if err == nil || !strings.Contains(errOut, "An error occurred (SignatureDoesNotMatch) when calling the GetCallerIdentity operation: ") {
		t.Fatalf("sts wrong secret: %v\n%s", err, errOut)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
