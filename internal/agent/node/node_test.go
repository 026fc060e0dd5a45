package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/agent/taskrunner"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/jointoken"
)

func TestRegistrationInput(t *testing.T) {
	cfg := agentconfig.Default()
	cfg.ReservedMemoryMiB = 256
	cfg.ReservedPortsUDP = []uint16{53}
	cfg.InstanceAttributes = map[string]string{"stack": "blue", "az": "a"}
	cfg.ContainerInstanceTags = map[string]string{"team": "x"}
	cfg.TaskIAMRoleEnabled = true
	host := Host{CPUs: 4, MemoryMiB: 8192, Arch: "x86_64"}
	in, err := RegistrationInput(cfg, host, "prod", "arn:old")
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]types.Resource{}
	for _, r := range in.TotalResources {
		res[aws.ToString(r.Name)] = r
	}
	if res["CPU"].IntegerValue != 4096 || res["MEMORY"].IntegerValue != 8192-256 {
		t.Errorf("CPU %d MEMORY %d", res["CPU"].IntegerValue, res["MEMORY"].IntegerValue)
	}
	if got := strings.Join(res["PORTS"].StringSetValue, ","); got != "22,2375,2376,51678,51679" {
		t.Errorf("PORTS %s", got)
	}
	if got := strings.Join(res["PORTS_UDP"].StringSetValue, ","); got != "53" {
		t.Errorf("PORTS_UDP %s", got)
	}
	attrs := map[string]string{}
	for _, a := range in.Attributes {
		attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	for name, want := range map[string]string{
		"ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64", "stack": "blue", "az": "a",
		"com.amazonaws.ecs.capability.task-iam-role":            "",
		"com.amazonaws.ecs.capability.logging-driver.json-file": "",
		"com.amazonaws.ecs.capability.docker-remote-api.1.17":   "",
		"ecs.capability.container-health-check":                 "",
	} {
		if got, ok := attrs[name]; !ok || got != want {
			t.Errorf("attribute %s = %q (present %v), want %q", name, got, ok, want)
		}
	}
	if _, ok := attrs["com.amazonaws.ecs.capability.task-iam-role-network-host"]; ok {
		t.Error("task-iam-role-network-host advertised without ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST")
	}
	if aws.ToString(in.ContainerInstanceArn) != "arn:old" || aws.ToString(in.Cluster) != "prod" || len(in.Tags) != 1 {
		t.Errorf("input %+v", in)
	}

	cfg.ReservedMemoryMiB = 9000
	if _, err := RegistrationInput(cfg, host, "prod", ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("reserving more memory than the machine has: %v", err)
	}
}

func TestCPUArchitecture(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "x86_64", "arm64": "arm64", "riscv64": "riscv64"} {
		if got := cpuArchitecture(goarch); got != want {
			t.Errorf("%s → %s, want %s", goarch, got, want)
		}
	}
}

type fakeRegistrar struct {
	clusterMissing bool
	created        []string
	calls          int
}

func (f *fakeRegistrar) RegisterContainerInstance(ctx context.Context, in *ecs.RegisterContainerInstanceInput, _ ...func(*ecs.Options)) (*ecs.RegisterContainerInstanceOutput, error) {
	f.calls++
	if f.clusterMissing {
		return nil, &types.ClusterNotFoundException{Message: aws.String("Cluster not found.")}
	}
	return &ecs.RegisterContainerInstanceOutput{ContainerInstance: &types.ContainerInstance{ContainerInstanceArn: aws.String("arn:ci/" + aws.ToString(in.Cluster))}}, nil
}

func (f *fakeRegistrar) CreateCluster(ctx context.Context, in *ecs.CreateClusterInput, _ ...func(*ecs.Options)) (*ecs.CreateClusterOutput, error) {
	f.created = append(f.created, aws.ToString(in.ClusterName))
	f.clusterMissing = false
	return &ecs.CreateClusterOutput{}, nil
}

func TestRegisterCreatesAMissingCluster(t *testing.T) {
	f := &fakeRegistrar{clusterMissing: true}
	arn, err := Register(context.Background(), f, &ecs.RegisterContainerInstanceInput{Cluster: aws.String("new")})
	if err != nil || arn != "arn:ci/new" || len(f.created) != 1 || f.created[0] != "new" || f.calls != 2 {
		t.Fatalf("arn %q err %v created %v calls %d", arn, err, f.created, f.calls)
	}
}

func TestServerTLS(t *testing.T) {
	const pin = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		endpoint, pin string
		ok, tls       bool
	}{
		{"http://127.0.0.1:7400", "", true, false},
		{"http://localhost:7400", "", true, false},
		{"http://10.0.0.5:7400", "", false, false},  // plain HTTP off loopback: refused
		{"https://10.0.0.5:7400", "", false, false}, // TLS without a pin: refused
		{"https://10.0.0.5:7400", pin, true, true},
		{"::not a url", "", false, false},
	} {
		conf, err := serverTLS(tc.endpoint, tc.pin)
		if (err == nil) != tc.ok || (conf != nil) != tc.tls {
			t.Errorf("%s pin %q: conf %v err %v", tc.endpoint, tc.pin, conf != nil, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: error kind %v", tc.endpoint, err)
		}
	}
}

func token(t *testing.T, server string) string {
	t.Helper()
	tok, err := jointoken.Encode(jointoken.Token{Server: server, ID: "0123456789abcdef", Secret: strings.Repeat("A", 43), Cluster: "default"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestJoin(t *testing.T) {
	refuse := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != jointoken.JoinPath || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if refuse {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(jointoken.ErrorResponse{Type: "AccessDeniedException", Message: "the join token has expired"})
			return
		}
		json.NewEncoder(w).Encode(jointoken.JoinResponse{AccessKeyID: "AKIA1", SecretAccessKey: "s", AccountID: "123456789012",
			Region: "us-east-1", Cluster: "default", Endpoint: "http://elsewhere", UserARN: "arn:aws:iam::123456789012:user/berth/instances/i-1"})
	}))
	defer srv.Close()
	id, err := Join(context.Background(), token(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if id.AccessKeyID != "AKIA1" || id.Endpoint != srv.URL || id.Region != "us-east-1" {
		t.Errorf("identity %+v (the endpoint must be the token's server)", id)
	}
	refuse = true
	if _, err := Join(context.Background(), token(t, srv.URL)); !errors.Is(err, errdefs.ErrAccessDenied) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("refused join: %v", err)
	}
	if _, err := Join(context.Background(), "berth1.garbage"); err == nil {
		t.Error("a damaged token joined")
	}
}

func TestIdentityIsStoredAndReused(t *testing.T) {
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	enrolled := 0
	cfg := Config{Agent: agentconfig.Default(), Enroll: func(ctx context.Context, cluster string) (state.Identity, error) {
		enrolled++
		return state.Identity{AccessKeyID: "AKIA2", SecretAccessKey: "s", Region: "us-east-1", Endpoint: "http://127.0.0.1:1"}, nil
	}}
	if err := db.SetInstance(state.Instance{ContainerInstanceARN: "arn:stale", Cluster: "default"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		id, err := identity(context.Background(), cfg, db)
		if err != nil || id.AccessKeyID != "AKIA2" {
			t.Fatalf("identity %+v %v", id, err)
		}
	}
	if enrolled != 1 {
		t.Errorf("enrolled %d times, want once", enrolled)
	}
	if _, ok, _ := db.Instance(); ok {
		t.Error("a new identity kept the registration of the old one")
	}
	// A moved server keeps the identity with the new address.
	cfg.Server = "http://127.0.0.1:2/"
	if id, _ := identity(context.Background(), cfg, db); id.Endpoint != "http://127.0.0.1:2" {
		t.Errorf("endpoint %s", id.Endpoint)
	}
	// Without a stored identity, a token or Enroll is needed.
	db2, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, err := identity(context.Background(), Config{Agent: agentconfig.Default()}, db2); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "--token") {
		t.Errorf("no identity, no token: %v", err)
	}
}

func TestReportErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind error
	}{
		{&types.InvalidParameterException{Message: aws.String("The referenced task was not found.")}, errdefs.ErrInvalidArgument},
		{&types.ClientException{Message: aws.String("no")}, errdefs.ErrInvalidArgument},
		{&types.ClusterNotFoundException{Message: aws.String("gone")}, errdefs.ErrNotFound},
	} {
		if got := reportError(tc.err); !errors.Is(got, tc.kind) {
			t.Errorf("%T → %v, want kind %v", tc.err, got, tc.kind)
		}
	}
	if reportError(nil) != nil {
		t.Error("nil")
	}
	other := errors.New("connection refused")
	if got := reportError(other); got != other {
		t.Errorf("a transient error must stay retryable: %v", got)
	}
}

// FuzzJoinAnswer feeds the join answer decoder what a server (or anything
// at its address) may send: it never panics, and success always carries
// credentials and the token's server.
func FuzzJoinAnswer(f *testing.F) {
	f.Add(200, []byte(`{"accessKeyId":"AKIA1","secretAccessKey":"s","region":"us-east-1","endpoint":"http://x"}`))
	f.Add(403, []byte(`{"__type":"AccessDeniedException","message":"expired"}`))
	f.Add(200, []byte(`not json`))
	f.Add(500, []byte{})
	tok := jointoken.Token{Server: "http://127.0.0.1:7400/"}
	f.Fuzz(func(t *testing.T, code int, raw []byte) {
		id, err := joinAnswer(tok, code, "status", raw)
		if err != nil {
			return
		}
		if id.AccessKeyID == "" || id.SecretAccessKey == "" || id.Region == "" || id.Endpoint != "http://127.0.0.1:7400" {
			t.Fatalf("accepted an incomplete answer: %+v", id)
		}
	})
}

func TestMetadataTask(t *testing.T) {
	code := 0
	v := taskrunner.TaskView{ARN: "arn:t", Cluster: "c", Family: "web", Revision: 3, DesiredStatus: "RUNNING", KnownStatus: "RUNNING",
		CPU: "512", Memory: "256", NetworkMode: "bridge",
		Containers: []taskrunner.ContainerView{{Name: "app", RuntimeID: "r1", Image: "img", ImageDigest: "sha256:1", ExitCode: &code,
			Health: "HEALTHY", IPv4: "10.213.0.2", CPU: 128, MemoryMiB: 64,
			Ports: []state.PortBinding{{ContainerPort: 8080, HostPort: 32768, Protocol: "tcp", BindIP: "0.0.0.0"}}}},
	}
	m := metadataTask(v)
	if m.Revision != "3" || m.Limits.CPU != 0.5 || m.Limits.Memory != 256 || len(m.Containers) != 1 {
		t.Fatalf("%+v", m)
	}
	c := m.Containers[0]
	if c.DockerID != "r1" || c.Health == nil || c.Health.Status != "HEALTHY" || len(c.Ports) != 1 || c.Ports[0].HostPort != 32768 ||
		len(c.Networks) != 1 || c.Networks[0].IPv4Addresses[0] != "10.213.0.2" || c.Type != "NORMAL" {
		t.Fatalf("%+v", c)
	}
}

// TestBufferBodies: the transport under the wrapper reads a body of its
// own; closing the caller's body (as smithy-go does once headers arrive)
// does not touch it.
func TestBufferBodies(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := &http.Client{Transport: BufferBodies(http.DefaultTransport)}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader("payload")))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "payload" {
		t.Errorf("server read %q", got)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
