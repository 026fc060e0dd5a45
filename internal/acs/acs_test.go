package acs_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/internal/acs"
	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
	"github.com/berth-dev/berth/internal/store/watchcache"
)

const (
	region  = "us-east-1"
	account = "123456789012"
	cluster = "prod"
)

var (
	adminARN    = "arn:aws:iam::" + account + ":user/admin"
	instanceARN = iam.InstanceARNPrefix(account) + "i-0123456789abcdef"
	aliceARN    = "arn:aws:iam::" + account + ":user/alice"
)

// keys is the access-key store: each principal signs with a key derived
// from its ARN and the secret "secret-<key id>".
type keys map[string]string // access key id → principal ARN

func (k keys) LookupAccessKey(_ context.Context, id string) (string, iam.Principal, error) {
	arn, ok := k[id]
	if !ok {
		return "", iam.Principal{}, errdefs.New(errdefs.ErrUnauthenticated, "unknown access key")
	}
	return "secret-" + id, iam.Principal{AccountID: account, ARN: arn, AccessKeyID: id}, nil
}

func credsOf(principalARN string) aws.Credentials {
	id := fmt.Sprintf("AKID%X", sha256.Sum256([]byte(principalARN)))[:20]
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: "secret-" + id}
}

// env is an ECS API and the agent channel on one test server over a
// memstore behind the watch-fed cache, as the server composes them, with
// one cluster and one registered container instance.
type env struct {
	t          *testing.T
	mem        *memstore.Store // under the cache: writes here bypass read-your-writes
	url        string
	channel    *acs.Server
	ecs        *ecs.Client // signed as the admin
	instances  ecsapi.Instances
	instanceID string
	arn        string // of the instance
}

// timings of the tests: short, so that timeouts happen within a test.
var testTimings = acs.Config{
	HeartbeatInterval: 50 * time.Millisecond,
	DisconnectAfter:   time.Second,
	AckTimeout:        200 * time.Millisecond,
}

func newEnv(t *testing.T, timings acs.Config) *env {
	t.Helper()
	return newEnvOn(t, timings, nil, nil)
}

// newEnvOn is newEnv with the cache fed from cacheSource(mem) and the
// cached store writing to (and watching) base(mem); nil means mem itself.
func newEnvOn(t *testing.T, timings acs.Config, cacheSource, base func(*memstore.Store) store.Store) *env {
	t.Helper()
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	var src, under store.Store = mem, mem
	if cacheSource != nil {
		src = cacheSource(mem)
	}
	if base != nil {
		under = base(mem)
	}
	cache, err := watchcache.New(context.Background(), src, "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	st := watchcache.NewCachedStore(under, cache)

	creds := keys{}
	for _, p := range []string{adminARN, instanceARN, aliceARN} {
		creds[credsOf(p).AccessKeyID] = p
	}
	verifier := &sigv4.Verifier{Creds: creds, Region: region}
	authz := iam.Builtin{AdminARN: adminARN, InstanceARNPrefix: iam.InstanceARNPrefix(account)}
	instances := ecsapi.Instances{Store: st, Clock: clock.Real{}, Region: region, AccountID: account}
	cfg := timings
	cfg.Store, cfg.Instances, cfg.Verifier, cfg.Authorizer = st, instances, verifier, authz
	channel, err := acs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	router := &awsapi.Router{
		Verifier: verifier,
		JSON: []*awsjson.Service{ecsapi.New(ecsapi.Config{
			Store: st, Authorizer: authz, Clock: clock.Real{}, Region: region, AccountID: account,
		})},
	}
	if err := router.Validate(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(agentproto.ChannelPath, channel)
	mux.Handle("/", router)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		channel.Close() // before the store closes: it marks instances disconnected
		srv.Close()
	})

	e := &env{t: t, mem: mem, url: srv.URL, channel: channel, instances: instances}
	e.ecs = ecs.New(ecs.Options{
		Region: region, BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: static(credsOf(adminARN)),
	})
	ctx := context.Background()
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	reg, err := e.ecs.RegisterContainerInstance(ctx, &ecs.RegisterContainerInstanceInput{
		Cluster: aws.String(cluster),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 4096},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 8192},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.arn = aws.ToString(reg.ContainerInstance.ContainerInstanceArn)
	e.instanceID = e.arn[strings.LastIndexByte(e.arn, '/')+1:]
	if _, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("nginx:1.27"), Memory: aws.Int32(128), Essential: aws.Bool(true),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

func static(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func (e *env) agentConnected() bool {
	e.t.Helper()
	out, err := e.ecs.DescribeContainerInstances(context.Background(), &ecs.DescribeContainerInstancesInput{
		Cluster: aws.String(cluster), ContainerInstances: []string{e.instanceID},
	})
	if err != nil || len(out.ContainerInstances) != 1 {
		e.t.Fatalf("describe instance: %v %+v", err, out)
	}
	return out.ContainerInstances[0].AgentConnected
}

func (e *env) runTask() string {
	e.t.Helper()
	out, err := e.ecs.RunTask(context.Background(), &ecs.RunTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String("web"), Group: aws.String("g1"), StartedBy: aws.String("test"),
	})
	if err != nil || len(out.Tasks) != 1 {
		e.t.Fatalf("run task: %v %+v", err, out)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

func (e *env) stopTask(taskARN string) {
	e.t.Helper()
	if _, err := e.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(taskARN), Reason: aws.String("enough")}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) describeTask(taskARN string) types.Task {
	e.t.Helper()
	out, err := e.ecs.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{taskARN}})
	if err != nil || len(out.Tasks) != 1 {
		e.t.Fatalf("describe task: %v %+v", err, out)
	}
	return out.Tasks[0]
}

// recorder is an agent's Handler that records every Sync; fail, when set,
// decides whether a call fails.
type recorder struct {
	mu    sync.Mutex
	syncs []recorded
	fail  func(call int) bool
}

type recorded struct {
	tasks []agentproto.Task
	full  bool
}

func (r *recorder) handle(_ context.Context, tasks []agentproto.Task, full bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs = append(r.syncs, recorded{tasks, full})
	if r.fail != nil && r.fail(len(r.syncs)) {
		return errors.New("handler failed")
	}
	return nil
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.syncs...)
}

// find reports whether some Sync after the first `from` matches.
func (r *recorder) find(from int, match func(recorded) bool) bool {
	all := r.all()
	for i := min(from, len(all)); i < len(all); i++ {
		if match(all[i]) {
			return true
		}
	}
	return false
}

// agent runs an acsclient.Client for the instance until the test ends or
// stop is called.
type agent struct {
	client *acsclient.Client
	rec    *recorder
	stop   func()
}

func (e *env) startAgent(rec *recorder, principalARN string) *agent {
	e.t.Helper()
	return e.startAgentOf(rec, principalARN, e.arn)
}

// startAgentOf is startAgent for the instance instanceARN.
func (e *env) startAgentOf(rec *recorder, principalARN, instanceARN string) *agent {
	e.t.Helper()
	c, err := acsclient.New(acsclient.Config{
		Endpoint: e.url, Cluster: cluster, ContainerInstance: instanceARN, Region: region,
		Credentials:       static(credsOf(principalARN)),
		Handler:           rec.handle,
		HeartbeatInterval: 50 * time.Millisecond,
		DisconnectAfter:   time.Second,
		MinBackoff:        10 * time.Millisecond,
		MaxBackoff:        50 * time.Millisecond,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return &agent{client: c, rec: rec, stop: stop}
}

func hasTask(arn string, match func(agentproto.Task) bool) func(recorded) bool {
	return func(r recorded) bool {
		for _, t := range r.tasks {
			if t.TaskARN == arn && match(t) {
				return true
			}
		}
		return false
	}
}

func TestSyncsFollowTheStore(t *testing.T) {
	e := newEnv(t, testTimings)
	rec := &recorder{}
	a := e.startAgent(rec, instanceARN)
	waitFor(t, "the first full sync", func() bool { return len(rec.all()) > 0 })
	if first := rec.all()[0]; !first.full || len(first.tasks) != 0 {
		t.Fatalf("first sync = %+v, want full and empty", first)
	}
	waitFor(t, "agentConnected", e.agentConnected)

	// A new task arrives in a partial Sync with everything the agent needs.
	n := len(rec.all())
	arn1 := e.runTask()
	waitFor(t, "the new task", func() bool {
		return rec.find(n, hasTask(arn1, func(tk agentproto.Task) bool { return tk.DesiredStatus == "RUNNING" }))
	})
	var got agentproto.Task
	for _, r := range rec.all()[n:] {
		if r.full {
			t.Errorf("a new task came in a full sync")
		}
		for _, tk := range r.tasks {
			if tk.TaskARN == arn1 {
				got = tk
			}
		}
	}
	desc := e.describeTask(arn1)
	if got.Revision <= 0 || aws.ToString(got.TaskDefinition.Family) != "web" || len(got.TaskDefinition.ContainerDefinitions) != 1 ||
		got.ContainerARNs["app"] != aws.ToString(desc.Containers[0].ContainerArn) || got.ContainerARNs["app"] == "" ||
		got.Group != "g1" || got.StartedBy != "test" || got.LaunchType != string(desc.LaunchType) {
		t.Errorf("synced task = %+v\nDescribeTasks = %+v", got, desc)
	}

	// StopTask reaches the agent with its stop code and reason.
	n = len(rec.all())
	e.stopTask(arn1)
	waitFor(t, "desired STOPPED", func() bool {
		return rec.find(n, hasTask(arn1, func(tk agentproto.Task) bool {
			return tk.DesiredStatus == "STOPPED" && tk.StopCode == "UserInitiated" && tk.StoppedReason == "enough" && tk.Revision > got.Revision
		}))
	})

	// A reconnecting agent gets a full Sync with every task not STOPPED.
	arn2 := e.runTask()
	a.stop()
	waitFor(t, "the disconnect", func() bool { return !e.agentConnected() })
	rec2 := &recorder{}
	e.startAgent(rec2, instanceARN)
	waitFor(t, "the reconnect's full sync", func() bool { return len(rec2.all()) > 0 })
	full := rec2.all()[0]
	if !full.full || len(full.tasks) != 2 || full.tasks[0].TaskARN > full.tasks[1].TaskARN {
		t.Fatalf("full sync after reconnect = %+v", full)
	}
	for _, tk := range full.tasks {
		want := map[string]string{arn1: "STOPPED", arn2: "RUNNING"}[tk.TaskARN]
		if tk.DesiredStatus != want {
			t.Errorf("task %s desired %s, want %s", tk.TaskARN, tk.DesiredStatus, want)
		}
	}
	waitFor(t, "agentConnected after reconnect", e.agentConnected)

	// Once the agent reports the task STOPPED it leaves the full Sync.
	if _, err := e.ecs.SubmitTaskStateChange(context.Background(), &ecs.SubmitTaskStateChangeInput{
		Cluster: aws.String(cluster), Task: aws.String(arn1), Status: aws.String("STOPPED"),
	}); err != nil {
		t.Fatal(err)
	}
	assigned, _, err := e.instances.AssignedTasks(context.Background(), cluster, e.instanceID)
	if err != nil || len(assigned) != 1 || assigned[0].Record.ARN() != arn2 {
		t.Fatalf("assigned after the stop: %v %+v", err, assigned)
	}
}

func TestUnacknowledgedSyncIsResent(t *testing.T) {
	e := newEnv(t, testTimings)
	// The handler fails its first call: that Sync is not acknowledged, so
	// the server sends it again after AckTimeout, and then no more.
	rec := &recorder{fail: func(call int) bool { return call == 1 }}
	e.startAgent(rec, instanceARN)
	waitFor(t, "the resent full sync", func() bool { return len(rec.all()) >= 2 })
	all := rec.all()
	if !all[0].full || !all[1].full {
		t.Fatalf("syncs = %+v, want the full sync twice", all)
	}
	arn := e.runTask()
	waitFor(t, "the task", func() bool { return rec.find(2, hasTask(arn, func(agentproto.Task) bool { return true })) })
}

func TestResendCarriesTheSameIDUntilAcked(t *testing.T) {
	timings := testTimings
	timings.DisconnectAfter = time.Minute // this agent sends no heartbeats
	e := newEnv(t, timings)
	ws := e.dial(t, credsOf(instanceARN))
	first := readSync(t, ws)
	if !first.Sync.Full {
		t.Fatalf("first sync not full: %+v", first)
	}
	// Not acknowledged: the same id comes again.
	again := readSync(t, ws)
	if again.ID != first.ID || !again.Sync.Full {
		t.Fatalf("resend = %+v, want id %s", again, first.ID)
	}
	ack(t, ws, first.ID)
	// A task placed now arrives under a new id; acknowledged, it is not
	// sent again: the next Sync is the second task's.
	arn1 := e.runTask()
	s1 := readSync(t, ws)
	for s1.ID == first.ID { // a resend already in flight when the ack arrived
		s1 = readSync(t, ws)
	}
	if len(s1.Sync.Tasks) != 1 || s1.Sync.Tasks[0].TaskARN != arn1 || s1.Sync.Full {
		t.Fatalf("sync = %+v, want task %s", s1, arn1)
	}
	ack(t, ws, s1.ID)
	// Three ack timeouts pass before the next change.
	<-time.After(3 * testTimings.AckTimeout)
	arn2 := e.runTask()
	s2 := readSync(t, ws)
	if s2.ID == s1.ID || s2.ID == first.ID || len(s2.Sync.Tasks) != 1 || s2.Sync.Tasks[0].TaskARN != arn2 {
		t.Fatalf("sync after ack = %+v, want only task %s under a new id", s2, arn2)
	}
}

func TestSilentAgentIsDisconnected(t *testing.T) {
	timings := testTimings
	timings.DisconnectAfter = 300 * time.Millisecond
	e := newEnv(t, timings)
	ws := e.dial(t, credsOf(instanceARN))
	waitFor(t, "agentConnected", e.agentConnected)
	// The agent sends nothing: the server gives up on it.
	waitFor(t, "agentConnected=false", func() bool { return !e.agentConnected() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break // closed by the server
		}
	}
	waitFor(t, "the connection's end", func() bool { return e.channel.Conns() == 0 })

	// A live agent, heartbeating, stays connected past DisconnectAfter.
	rec := &recorder{}
	e.startAgent(rec, instanceARN)
	waitFor(t, "agentConnected", e.agentConnected)
	<-time.After(3 * timings.DisconnectAfter)
	if !e.agentConnected() || e.channel.Conns() != 1 || len(rec.all()) != 1 {
		t.Fatalf("heartbeating agent: connected %v, conns %d, syncs %d", e.agentConnected(), e.channel.Conns(), len(rec.all()))
	}
}

func TestReconnectIsNotUndoneByTheOldConnection(t *testing.T) {
	e := newEnv(t, testTimings)
	old := e.dial(t, credsOf(instanceARN))
	readSync(t, old)
	waitFor(t, "agentConnected", e.agentConnected)
	fresh := e.dial(t, credsOf(instanceARN))
	readSync(t, fresh)
	// The server ends the old connection; its cleanup must leave the
	// instance connected.
	_ = old.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := old.ReadMessage(); err != nil {
			break
		}
	}
	waitFor(t, "the old connection's cleanup", func() bool { return e.channel.Conns() == 1 })
	if !e.agentConnected() {
		t.Fatal("the old connection's cleanup marked the instance disconnected")
	}
	// The new one still works.
	arn := e.runTask()
	if s := readSync(t, fresh); len(s.Sync.Tasks) != 1 || s.Sync.Tasks[0].TaskARN != arn {
		t.Fatalf("sync on the new connection = %+v", s)
	}
	_ = fresh.Close()
	waitFor(t, "agentConnected=false", func() bool { return !e.agentConnected() })
}

func TestUpgradeRefused(t *testing.T) {
	e := newEnv(t, testTimings)
	ctx := context.Background()
	if _, err := e.ecs.RegisterContainerInstance(ctx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	gone, err := e.ecs.RegisterContainerInstance(ctx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String(cluster)})
	if err != nil {
		t.Fatal(err)
	}
	goneARN := aws.ToString(gone.ContainerInstance.ContainerInstanceArn)
	if _, err := e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(cluster), ContainerInstance: aws.String(goneARN)}); err != nil {
		t.Fatal(err)
	}
	query := func(instance string) string {
		return "?" + agentproto.ParamCluster + "=" + cluster + "&" + agentproto.ParamContainerInstance + "=" + instance
	}
	wrongSecret := credsOf(instanceARN)
	wrongSecret.SecretAccessKey = "nope"
	for _, tc := range []struct {
		name     string
		method   string
		query    string
		creds    *aws.Credentials
		service  string
		status   int
		wantCode string
	}{
		{"unsigned", "GET", query(e.instanceID), nil, "ecs", 403, "MissingAuthenticationTokenException"},
		{"wrong secret", "GET", query(e.instanceID), &wrongSecret, "ecs", 403, "InvalidSignatureException"},
		{"other service", "GET", query(e.instanceID), ptr(credsOf(instanceARN)), "ecr", 403, ""},
		{"user without ecs:Poll", "GET", query(e.instanceID), ptr(credsOf(aliceARN)), "ecs", 403, "AccessDeniedException"},
		{"unknown instance", "GET", query("0123456789abcdef0123456789abcdef"), ptr(credsOf(instanceARN)), "ecs", 400, "ResourceNotFoundException"},
		{"no instance", "GET", "?" + agentproto.ParamCluster + "=" + cluster, ptr(credsOf(instanceARN)), "ecs", 400, ""},
		{"deregistered instance", "GET", query(goneARN), ptr(credsOf(instanceARN)), "ecs", 400, "ConflictException"},
		{"POST", "POST", query(e.instanceID), ptr(credsOf(instanceARN)), "ecs", 405, "MethodNotAllowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.url+agentproto.ChannelPath+tc.query, nil)
			if tc.creds != nil {
				if err := v4.NewSigner().SignHTTP(ctx, *tc.creds, req, emptyHash, tc.service, region, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), `"__type":"`+tc.wantCode) {
				t.Fatalf("status %d body %s, want %d %s", resp.StatusCode, body, tc.status, tc.wantCode)
			}
		})
	}

	// The client reports the refusal with the server's words, and keeps
	// trying.
	refusals := make(chan error, 16)
	c, err := acsclient.New(acsclient.Config{
		Endpoint: e.url, Cluster: cluster, ContainerInstance: e.instanceID, Region: region,
		Credentials: static(credsOf(aliceARN)),
		Handler:     func(context.Context, []agentproto.Task, bool) error { return nil },
		MinBackoff:  time.Millisecond, MaxBackoff: time.Millisecond,
		OnError: func(err error) {
			select {
			case refusals <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	for range 2 {
		if err := <-refusals; !errors.Is(err, errdefs.ErrAccessDenied) || !strings.Contains(err.Error(), "ecs:Poll") {
			t.Errorf("dial as alice: %v", err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.agentConnected() {
		t.Fatal("a refused upgrade connected the instance")
	}
}

func ptr[T any](v T) *T { return &v }

const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestHealthReachesDescribeTasks(t *testing.T) {
	e := newEnv(t, testTimings)
	rec := &recorder{}
	a := e.startAgent(rec, instanceARN)
	waitFor(t, "agentConnected", e.agentConnected)
	arn := e.runTask()
	if h := e.describeTask(arn).HealthStatus; h != types.HealthStatusUnknown {
		t.Fatalf("health before any report = %s", h)
	}
	ctx := context.Background()
	// Unknown tasks and containers are ignored, not fatal.
	for _, h := range []agentproto.Health{
		{TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/prod/ffffffffffffffffffffffffffffffff", Containers: map[string]string{"app": "HEALTHY"}},
		{TaskARN: arn, Containers: map[string]string{"nope": "UNHEALTHY"}},
		{TaskARN: arn, Containers: map[string]string{"app": "HEALTHY"}},
	} {
		if err := a.client.SendHealth(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "HEALTHY", func() bool {
		tk := e.describeTask(arn)
		return tk.HealthStatus == types.HealthStatusHealthy && tk.Containers[0].HealthStatus == types.HealthStatusHealthy
	})

	// Another instance's agent cannot change this task's health.
	if err := e.instances.ReportHealth(ctx, cluster, "0123456789abcdef0123456789abcdef", arn, map[string]types.HealthStatus{"app": "UNHEALTHY"}); err != nil {
		t.Fatal(err)
	}
	if h := e.describeTask(arn).HealthStatus; h != types.HealthStatusHealthy {
		t.Fatalf("health after another instance's report = %s", h)
	}

	a.stop()
	if err := a.client.SendHealth(ctx, agentproto.Health{TaskARN: arn}); !errors.Is(err, acsclient.ErrNotConnected) {
		t.Fatalf("SendHealth while down: %v", err)
	}
}

// dial opens a raw channel signed with creds, for tests that play a
// misbehaving agent.
func (e *env) dial(t *testing.T, creds aws.Credentials) *websocket.Conn {
	t.Helper()
	return e.dialInstance(t, creds, e.instanceID)
}

func (e *env) dialInstance(t *testing.T, creds aws.Credentials, instanceID string) *websocket.Conn {
	t.Helper()
	u := e.url + agentproto.ChannelPath + "?" + agentproto.ParamCluster + "=" + cluster + "&" + agentproto.ParamContainerInstance + "=" + instanceID
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, emptyHash, "ecs", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Authorization", req.Header.Get("Authorization"))
	h.Set("X-Amz-Date", req.Header.Get("X-Amz-Date"))
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(u, "http"), h)
	if err != nil {
		t.Fatalf("dial: %v (%+v)", err, resp)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// readSync reads frames until a Sync, failing after 10 s.
func readSync(t *testing.T, ws *websocket.Conn) agentproto.Message {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		m, err := agentproto.Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if m.Type == agentproto.TypeSync {
			return m
		}
	}
}

func ack(t *testing.T, ws *websocket.Conn, id string) {
	t.Helper()
	b, _ := agentproto.Encode(agentproto.Message{Type: agentproto.TypeAck, ID: id, Ack: &agentproto.Ack{}})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}
