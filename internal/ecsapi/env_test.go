package ecsapi

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
	"github.com/berth-dev/berth/internal/store/watchcache"
)

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
	adminARN    = "arn:aws:iam::123456789012:user/admin"
	rootARN     = "arn:aws:iam::123456789012:root"
)

var testStart = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// env is one ECS API over a fresh in-memory store, called directly with
// typed inputs as the admin.
type env struct {
	t     *testing.T
	h     *handlers
	store store.Store
	clock *clock.Fake
	ctx   context.Context
}

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
	fc := clock.NewFake(testStart)
	return &env{t: t, h: newTestHandlers(st, fc), store: st, clock: fc, ctx: asPrincipal(adminARN)}
}

// overCachedStore makes newEnv put the watch-fed cache in front of the
// store, as production does (TestOverCachedStore).
var overCachedStore bool

// TestOverCachedStore runs the flows with reads from the watch-fed cache:
// every write must be visible to the next read (read-your-writes) and
// concurrent writers must still get distinct revisions.
func TestOverCachedStore(t *testing.T) {
	overCachedStore = true
	t.Cleanup(func() { overCachedStore = false })
	for name, fn := range map[string]func(*testing.T){
		"SDKClusters":           TestSDKClusters,
		"SDKTaskDefinitions":    TestSDKTaskDefinitions,
		"SDKTagsAndSettings":    TestSDKTagsAndSettings,
		"RegisterConcurrently":  TestRegisterTaskDefinitionConcurrently,
		"DeleteTaskDefinitions": TestDeleteTaskDefinitions,
		"DeleteCluster":         TestDeleteCluster,
		"TagsRoundTrip":         TestTagsRoundTrip,
		"SDKInstancesAndTasks":  TestSDKInstancesAndTasks,
		"TaskLifecycle":         TestTaskLifecycleThroughTheAPI,
		"RunTaskStorm":          TestRunTaskStorm,
		"PlacementFailures":     TestRunTaskPlacementFailures,
		"Deregister":            TestDeregisterContainerInstance,
		"Attributes":            TestAttributes,
		"SDKServices":           TestSDKServices,
		"ServiceIdempotency":    TestCreateServiceIdempotency,
		"UpdateService":         TestUpdateServiceDeployments,
		"DeleteServiceRules":    TestDeleteServiceRules,
		"DescribeServices":      TestDescribeServices,
		"ListServices":          TestListServices,
		"ClusterWithServices":   TestDeleteClusterWithServices,
		"ServiceTasksLaunch":    TestServiceTasksLaunch,
		"ServiceLaunchFailures": TestServiceTasksLaunchFailures,
	} {
		t.Run(name, fn)
	}
}

// testConfig is the Config of the tests: admin-only authorization, the
// test region and account.
func testConfig(st store.Store, fc clock.Clock) Config {
	return Config{
		Store:      st,
		Authorizer: iam.AdminOnly{AdminARN: adminARN},
		Clock:      fc,
		Region:     testRegion,
		AccountID:  testAccount,
	}
}

func newTestHandlers(st store.Store, fc clock.Clock) *handlers {
	return newHandlers(testConfig(st, fc))
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

// must wraps a handler so that an error fails the test:
// must(t, e.h.CreateCluster)(ctx, in) returns the output.
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

func (e *env) createCluster(name string, tags ...types.Tag) *types.Cluster {
	e.t.Helper()
	out := must(e.t, e.h.CreateCluster)(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name), Tags: tags})
	return out.Cluster
}

func (e *env) register(family string, tags ...types.Tag) *types.TaskDefinition {
	e.t.Helper()
	out := must(e.t, e.h.RegisterTaskDefinition)(e.ctx, taskDefInput(family, tags...))
	return out.TaskDefinition
}

func taskDefInput(family string, tags ...types.Tag) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:   aws.String("app"),
			Image:  aws.String("nginx:1.27"),
			Memory: aws.Int32(128),
		}},
		Tags: tags,
	}
}

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func clusterARN(name string) string {
	return "arn:aws:ecs:us-east-1:123456789012:cluster/" + name
}

func tdARN(familyRev string) string {
	return "arn:aws:ecs:us-east-1:123456789012:task-definition/" + familyRev
}

// putRaw writes a raw record, standing in for resources (services, tasks,
// container instances) whose handlers arrive later.
func (e *env) putRaw(key string) {
	e.t.Helper()
	if _, err := e.store.Txn(context.Background(), nil, []store.Op{store.Put(key, []byte(`{}`))}); err != nil {
		e.t.Fatal(err)
	}
}
