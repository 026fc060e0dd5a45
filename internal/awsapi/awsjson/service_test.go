package awsjson

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/schemas"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	smithy "github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/errdefs"
)

var errClusterNotFound = errors.New("cluster not found")

func ecsOp(op, in, out *smithy.Schema) *smithy.OperationSchema {
	return smithy.NewOperationSchema(op, in, out)
}

var registeredAt = time.Date(2024, 4, 17, 14, 30, 7, 68_000_000, time.UTC)

// newECS is a toy ECS service: fixed answers, enough to pin the wire shape.
func newECS() *Service {
	return &Service{
		SigningName: "ecs",
		Schema:      schemas.AmazonEC2ContainerServiceV20141113,
		Operations: []Operation{
			Bind(ecsOp(schemas.ListClusters, schemas.ListClustersRequest, schemas.ListClustersResponse),
				func(_ context.Context, in *ecs.ListClustersInput) (*ecs.ListClustersOutput, error) {
					if in.MaxResults != nil && *in.MaxResults == 0 {
						return nil, nil // a nil output is an empty object
					}
					return &ecs.ListClustersOutput{ClusterArns: []string{"arn:aws:ecs:us-east-1:123456789012:cluster/default"}}, nil
				}),
			Bind(ecsOp(schemas.DescribeClusters, schemas.DescribeClustersRequest, schemas.DescribeClustersResponse),
				func(_ context.Context, in *ecs.DescribeClustersInput) (*ecs.DescribeClustersOutput, error) {
					out := &ecs.DescribeClustersOutput{}
					for _, c := range in.Clusters {
						if c == "missing" {
							out.Failures = append(out.Failures, types.Failure{Arn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/missing"), Reason: aws.String("MISSING")})
							continue
						}
						out.Clusters = append(out.Clusters, types.Cluster{
							ClusterName:                       aws.String(c),
							ClusterArn:                        aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/" + c),
							Status:                            aws.String("ACTIVE"),
							RunningTasksCount:                 3,
							ActiveServicesCount:               1,
							Tags:                              []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}},
							Settings:                          []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("disabled")}},
							CapacityProviders:                 []string{"FARGATE"},
							Statistics:                        []types.KeyValuePair{},
							PendingTasksCount:                 0,
							RegisteredContainerInstancesCount: 2,
						})
					}
					return out, nil
				}),
			Bind(ecsOp(schemas.DeleteCluster, schemas.DeleteClusterRequest, schemas.DeleteClusterResponse),
				func(_ context.Context, in *ecs.DeleteClusterInput) (*ecs.DeleteClusterOutput, error) {
					switch aws.ToString(in.Cluster) {
					case "boom":
						return nil, errdefs.Internal(errors.New("disk on fire at /var/lib/berth"))
					case "denied":
						return nil, errdefs.New(errdefs.ErrAccessDenied, "User: x is not authorized")
					case "wire":
						return nil, &apierror.Error{Code: "UpdateInProgressException", Message: "busy", HTTPStatus: 400}
					}
					return nil, errdefs.WithReason(errdefs.ErrNotFound, errClusterNotFound, "Cluster not found.")
				}),
			Bind(ecsOp(schemas.RegisterTaskDefinition, schemas.RegisterTaskDefinitionRequest, schemas.RegisterTaskDefinitionResponse),
				registerTaskDefinition),
		},
		MapError: func(err error) *apierror.Error {
			if errors.Is(err, errClusterNotFound) {
				return &apierror.Error{Code: "ClusterNotFoundException", Message: errdefs.Message(err, ""), HTTPStatus: 400}
			}
			return nil
		},
	}
}

func registerTaskDefinition(_ context.Context, in *ecs.RegisterTaskDefinitionInput) (*ecs.RegisterTaskDefinitionOutput, error) {
	return &ecs.RegisterTaskDefinitionOutput{
		TaskDefinition: &types.TaskDefinition{
			Family:                  in.Family,
			TaskDefinitionArn:       aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/" + aws.ToString(in.Family) + ":1"),
			Revision:                1,
			ContainerDefinitions:    in.ContainerDefinitions,
			Cpu:                     in.Cpu,
			Memory:                  in.Memory,
			NetworkMode:             in.NetworkMode,
			Status:                  types.TaskDefinitionStatusActive,
			RegisteredAt:            aws.Time(registeredAt),
			RequiresCompatibilities: in.RequiresCompatibilities,
		},
		Tags: in.Tags,
	}, nil
}

// handler serves svc without authentication: the router's job is tested
// in package awsapi.
func handler(svc *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		target := r.Header.Get("X-Amz-Target")
		prefix, name, ok := SplitTarget(target)
		if !ok || prefix != svc.Prefix() {
			svc.WriteError(w, UnknownOperation(target))
			return
		}
		op, ok := svc.Operation(name)
		if !ok {
			svc.WriteError(w, UnknownOperation(target))
			return
		}
		_ = svc.Handle(r.Context(), w, op, body)
	})
}

func newClient(t *testing.T, h http.Handler) *ecs.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

func TestSDKRoundTrip(t *testing.T) {
	c := newClient(t, handler(newECS()))
	ctx := context.Background()

	lc, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"arn:aws:ecs:us-east-1:123456789012:cluster/default"}, lc.ClusterArns); diff != "" {
		t.Fatal(diff)
	}
	empty, err := c.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(0)})
	if err != nil || empty.ClusterArns != nil {
		t.Fatalf("nil output: %+v, %v", empty, err)
	}

	dc, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"prod", "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := newECS().Operations[1].invoke(ctx, []byte(`{"clusters":["prod","missing"]}`))
	opts := cmpopts.IgnoreUnexported(ecs.DescribeClustersOutput{}, types.Cluster{}, types.Tag{}, types.ClusterSetting{}, types.Failure{}, types.KeyValuePair{})
	if diff := cmp.Diff(want, dc, opts, cmpopts.IgnoreFields(ecs.DescribeClustersOutput{}, "ResultMetadata"), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("DescribeClusters round trip (-sent +decoded):\n%s", diff)
	}

	td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("nginx"), Essential: aws.Bool(true), Memory: aws.Int32(128),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80), Protocol: types.TransportProtocolTcp}},
			Environment:  []types.KeyValuePair{{Name: aws.String("A"), Value: aws.String("1")}},
		}},
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String("256"),
		Tags:                    []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := td.TaskDefinition
	if got.RegisteredAt == nil || !got.RegisteredAt.Equal(registeredAt) {
		t.Fatalf("registeredAt = %v; want %v", got.RegisteredAt, registeredAt)
	}
	if aws.ToString(got.Family) != "web" || got.Revision != 1 || got.Status != types.TaskDefinitionStatusActive ||
		len(got.ContainerDefinitions) != 1 || aws.ToInt32(got.ContainerDefinitions[0].PortMappings[0].ContainerPort) != 80 ||
		got.RequiresCompatibilities[0] != types.CompatibilityFargate || aws.ToString(td.Tags[0].Key) != "k" {
		t.Fatalf("task definition decoded as %+v", got)
	}
}

// The response body itself: lowerCamel names, epoch-second timestamps.
func TestResponseWireShape(t *testing.T) {
	svc := newECS()
	op, _ := svc.Operation("RegisterTaskDefinition")
	rec := httptest.NewRecorder()
	if err := svc.Handle(context.Background(), rec, op, []byte(`{"family":"web"}`)); err != nil {
		t.Fatal(err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var body map[string]map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	td := body["taskDefinition"]
	if td["registeredAt"] != 1713364207.068 || td["family"] != "web" || td["status"] != "ACTIVE" {
		t.Fatalf("body = %s", rec.Body)
	}
}

func TestSDKErrors(t *testing.T) {
	c := newClient(t, handler(newECS()))
	ctx := context.Background()
	for _, tc := range []struct {
		cluster, code, msg string
	}{
		{"gone", "ClusterNotFoundException", "Cluster not found."},
		{"denied", "AccessDeniedException", "User: x is not authorized"},
		{"wire", "UpdateInProgressException", "busy"},
		{"boom", "InternalFailure", InternalFailureMessage},
	} {
		_, err := c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(tc.cluster)})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || ae.ErrorMessage() != tc.msg {
			t.Errorf("%s: err = %v; want %s: %s", tc.cluster, err, tc.code, tc.msg)
		}
	}
	_, err := c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("gone")})
	var cnf *types.ClusterNotFoundException
	if !errors.As(err, &cnf) {
		t.Fatalf("err = %T %v; want the SDK's typed ClusterNotFoundException", err, err)
	}
}

func TestErrorEnvelope(t *testing.T) {
	svc := newECS()
	tests := []struct {
		name   string
		target string
		body   string
		status int
		code   string
		msg    string
	}{
		{"unknown operation", "AmazonEC2ContainerServiceV20141113.Nope", "{}", 400, "UnknownOperationException", ""},
		{"wrong prefix", "Logs_20140328.ListClusters", "{}", 400, "UnknownOperationException", ""},
		{"array body", "AmazonEC2ContainerServiceV20141113.ListClusters", `[1,2]`, 400, "SerializationException", "Request body must be a JSON object"},
		{"string body", "AmazonEC2ContainerServiceV20141113.ListClusters", `"x"`, 400, "SerializationException", "Request body must be a JSON object"},
		{"malformed", "AmazonEC2ContainerServiceV20141113.ListClusters", `{"maxResults":`, 400, "SerializationException", "Malformed JSON: unexpected end of JSON input"},
		{"wrong type", "AmazonEC2ContainerServiceV20141113.ListClusters", `{"maxResults":"ten"}`, 400, "SerializationException", "Unexpected value of type string for field maxResults"},
		{"trailing garbage", "AmazonEC2ContainerServiceV20141113.ListClusters", `{} x`, 400, "SerializationException", ""},
		{"cluster not found", "AmazonEC2ContainerServiceV20141113.DeleteCluster", `{"cluster":"x"}`, 400, "ClusterNotFoundException", "Cluster not found."},
		{"internal hides cause", "AmazonEC2ContainerServiceV20141113.DeleteCluster", `{"cluster":"boom"}`, 500, "InternalFailure", InternalFailureMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			r.Header.Set("X-Amz-Target", tc.target)
			rec := httptest.NewRecorder()
			handler(svc).ServeHTTP(rec, r)
			var body struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%v: %s", err, rec.Body)
			}
			if rec.Code != tc.status || body.Type != tc.code || rec.Header().Get("X-Amzn-ErrorType") != tc.code {
				t.Fatalf("got %d %s (header %q); want %d %s", rec.Code, body.Type, rec.Header().Get("X-Amzn-ErrorType"), tc.status, tc.code)
			}
			if tc.msg != "" && body.Message != tc.msg {
				t.Fatalf("message = %q; want %q", body.Message, tc.msg)
			}
			if strings.Contains(rec.Body.String(), "disk on fire") {
				t.Fatal("internal cause leaked")
			}
		})
	}
}

func TestToAPIError(t *testing.T) {
	auth := func(reason error) error { return errdefs.WithReason(errdefs.ErrUnauthenticated, reason, "m") }
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{auth(sigv4.ErrMissingAuth), "MissingAuthenticationTokenException", 403},
		{auth(sigv4.ErrUnknownAccessKey), "UnrecognizedClientException", 403},
		{auth(sigv4.ErrSignatureMismatch), "InvalidSignatureException", 403},
		{auth(sigv4.ErrExpired), "InvalidSignatureException", 403},
		{auth(sigv4.ErrIncompleteSignature), "IncompleteSignatureException", 403},
		{errdefs.InvalidArgument("bad"), "ValidationException", 400},
		{errdefs.NotFound("x"), "ResourceNotFoundException", 400},
		{errdefs.New(errdefs.ErrThrottled, "slow down"), "ThrottlingException", 400},
		{errdefs.New(errdefs.ErrAccessDenied, "no"), "AccessDeniedException", 400},
		{errdefs.New(errdefs.ErrUnavailable, "later"), "ServiceUnavailableException", 503},
		{errors.New("plain"), "InternalFailure", 500},
	} {
		e := ToAPIError(tc.err, func(error) *apierror.Error { return nil })
		if e.Code != tc.code || e.Status() != tc.status {
			t.Errorf("%v → %s %d; want %s %d", tc.err, e.Code, e.Status(), tc.code, tc.status)
		}
	}
	// The service table wins over the generic mapping, but not over
	// protocol errors.
	mapAll := func(error) *apierror.Error {
		return &apierror.Error{Code: "InvalidParameterException", HTTPStatus: 400}
	}
	if e := ToAPIError(errdefs.InvalidArgument("x"), mapAll); e.Code != "InvalidParameterException" {
		t.Errorf("MapError ignored: %s", e.Code)
	}
	if e := ToAPIError(errdefs.WithReason(errdefs.ErrInvalidArgument, ErrSerialization, "x"), mapAll); e.Code != "SerializationException" {
		t.Errorf("serialization error mapped by service: %s", e.Code)
	}
}

func TestSplitTarget(t *testing.T) {
	for _, tc := range []struct{ in, prefix, name string }{
		{"AmazonEC2ContainerServiceV20141113.ListClusters", "AmazonEC2ContainerServiceV20141113", "ListClusters"},
		{"a.b.C", "a.b", "C"},
		{"NoDot", "", ""},
		{".X", "", ""},
		{"X.", "", ""},
	} {
		p, n, ok := SplitTarget(tc.in)
		if p != tc.prefix || n != tc.name || ok != (tc.name != "") {
			t.Errorf("SplitTarget(%q) = %q, %q, %v", tc.in, p, n, ok)
		}
	}
}

// FuzzDecode drives arbitrary bodies through decoding, a handler that
// echoes the input back, and the SDK encoder: the answer is a response or a
// SerializationException, never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"family":"web"}`,
		`{"family":"web","containerDefinitions":[{"name":"a","image":"nginx","portMappings":[{"containerPort":80}],"environment":[{"name":"A","value":"1"}]}]}`,
		`{"family":1}`, `{"containerDefinitions":{"a":1}}`, `{"cpu":"256","memory":"512","networkMode":"awsvpc","requiresCompatibilities":["FARGATE","\u0000"]}`,
		`{"containerDefinitions":[{"ulimits":[{"name":"nofile","softLimit":1e99}]}]}`, "{\"family\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	svc := newECS()
	op, _ := svc.Operation("RegisterTaskDefinition")
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		err := svc.Handle(context.Background(), rec, op, body)
		switch {
		case err == nil && rec.Code == 200:
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("invalid JSON response %q", rec.Body)
			}
		case errors.Is(err, ErrSerialization) && rec.Code == 400:
		default:
			t.Fatalf("body %q: status %d, err %v", body, rec.Code, err)
		}
	})
}
