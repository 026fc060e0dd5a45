package taskmeta

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/runtime/fakeruntime"
	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	endpointApp     = "3c1f2a4e-0b7d-4c59-9a6e-1f2d3c4b5a69"
	endpointSidecar = "7d2e1f0a-9b8c-4d7e-8f6a-5b4c3d2e1f0a"
	taskARN         = "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef"
)

// fakeSource maps endpoint IDs to a task and container name.
type fakeSource struct {
	mu   sync.Mutex
	task Task
	ids  map[string]string // endpoint ID → container name
}

func (s *fakeSource) Lookup(id string) (Task, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.ids[id]
	if !ok {
		return Task{}, "", false
	}
	t := s.task
	t.Containers = slices.Clone(t.Containers)
	return t, name, true
}

var (
	tokyo   = time.FixedZone("JST", 9*3600)
	created = time.Date(2024, 5, 1, 21, 0, 0, 123, tokyo)
)

func exampleTask() Task {
	exit, restarts, idx := 0, 2, 0
	return Task{
		Cluster: "default", TaskARN: taskARN, Family: "web", Revision: "3",
		DesiredStatus: "RUNNING", KnownStatus: "RUNNING",
		Limits:        TaskLimits{CPU: 0.5, Memory: 512},
		PullStartedAt: created, PullStoppedAt: created.Add(time.Second),
		AvailabilityZone: "us-east-1a", LaunchType: LaunchTypeEC2,
		TaskTags: map[string]string{"team": "a"}, ContainerInstanceTags: map[string]string{"rack": "1"},
		ServiceName: "web-svc", VPCID: "vpc-1",
		Containers: []Container{
			{
				DockerID: "ctr-app", Name: "app", DockerName: "ecs-web-3-app-1", Image: "nginx:latest",
				ImageID: "sha256:abc", DesiredStatus: "RUNNING", KnownStatus: "RUNNING",
				Ports:     []Port{{ContainerPort: 80, Protocol: "tcp", HostPort: 32768, HostIP: "0.0.0.0"}},
				Labels:    map[string]string{"com.amazonaws.ecs.container-name": "app"},
				Limits:    ContainerLimits{CPU: 256, Memory: 128},
				CreatedAt: created, StartedAt: created.Add(2 * time.Second), Type: ContainerTypeNormal,
				Networks: []Network{{NetworkMode: "awsvpc", IPv4Addresses: []string{"10.0.0.5"}, AttachmentIndex: &idx,
					MACAddress: "0a:00:00:00:00:01", IPv4SubnetCIDRBlock: "10.0.0.0/24", SubnetGatewayIPv4Address: "10.0.0.1/24"}},
				Health:       &Health{Status: "HEALTHY", Since: created.Add(5 * time.Second)},
				ContainerARN: "arn:aws:ecs:us-east-1:123456789012:container/default/x/y",
				LogDriver:    "awslogs", LogOptions: map[string]string{"awslogs-group": "/ecs/web"},
				Snapshotter: "overlayfs", RestartCount: &restarts,
			},
			{
				DockerID: "ctr-sidecar", Name: "sidecar", DockerName: "ecs-web-3-sidecar-1", Image: "busybox",
				DesiredStatus: "STOPPED", KnownStatus: "STOPPED", ExitCode: &exit, Type: ContainerTypeNormal,
			},
			{Name: "later", DesiredStatus: "RUNNING", KnownStatus: "PENDING", Type: ContainerTypeNormal},
		},
	}
}

func newTestHandler(t *testing.T, stats StatsSource) (*httptest.Server, *fakeSource) {
	t.Helper()
	src := &fakeSource{task: exampleTask(), ids: map[string]string{endpointApp: "app", endpointSidecar: "sidecar"}}
	if stats == nil {
		stats = fakeruntime.New()
	}
	srv := httptest.NewServer(Handler(src, stats))
	t.Cleanup(srv.Close)
	return srv, src
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url)
}

func do(t *testing.T, method, url string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return m
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestContainerMetadata(t *testing.T) {
	srv, _ := newTestHandler(t, nil)
	for _, tc := range []struct {
		name, path string
		wantKeys   []string
		check      func(t *testing.T, m map[string]any)
	}{
		{"v4 full", "/v4/" + endpointApp, sorted("DockerId", "Name", "DockerName", "Image", "ImageID", "Ports", "Labels",
			"DesiredStatus", "KnownStatus", "Limits", "CreatedAt", "StartedAt", "Type", "Networks", "Health",
			"LogDriver", "LogOptions", "ContainerARN", "Snapshotter", "RestartCount"),
			func(t *testing.T, m map[string]any) {
				if got := m["CreatedAt"]; got != "2024-05-01T12:00:00.000000123Z" {
					t.Errorf("CreatedAt = %v, want UTC RFC 3339", got)
				}
				ports := m["Ports"].([]any)[0].(map[string]any)
				if diff := cmp.Diff(map[string]any{"ContainerPort": 80.0, "Protocol": "tcp", "HostPort": 32768.0, "HostIp": "0.0.0.0"}, ports); diff != "" {
					t.Errorf("Ports[0] (-want +got):\n%s", diff)
				}
				health := m["Health"].(map[string]any)
				if diff := cmp.Diff(sorted("status", "statusSince"), keys(health)); diff != "" {
					t.Errorf("Health keys (-want +got):\n%s", diff)
				}
				nw := m["Networks"].([]any)[0].(map[string]any)
				if diff := cmp.Diff(sorted("NetworkMode", "IPv4Addresses", "AttachmentIndex", "MACAddress",
					"IPv4SubnetCIDRBlock", "SubnetGatewayIpv4Address"), keys(nw)); diff != "" {
					t.Errorf("Networks[0] keys (-want +got):\n%s", diff)
				}
				if m["RestartCount"] != 2.0 {
					t.Errorf("RestartCount = %v", m["RestartCount"])
				}
			}},
		{"v4 sparse: required fields and zero limits stay", "/v4/" + endpointSidecar,
			sorted("DockerId", "Name", "DockerName", "Image", "ImageID", "DesiredStatus", "KnownStatus", "ExitCode", "Limits", "Type"),
			func(t *testing.T, m map[string]any) {
				if diff := cmp.Diff(map[string]any{"CPU": 0.0, "Memory": 0.0}, m["Limits"]); diff != "" {
					t.Errorf("Limits (-want +got):\n%s", diff)
				}
				if m["ExitCode"] != 0.0 {
					t.Errorf("ExitCode = %v, want 0 (present)", m["ExitCode"])
				}
			}},
		{"v3 has the v2-era fields only", "/v3/" + endpointApp, sorted("DockerId", "Name", "DockerName", "Image", "ImageID", "Ports", "Labels",
			"DesiredStatus", "KnownStatus", "Limits", "CreatedAt", "StartedAt", "Type", "Networks", "Health"),
			func(t *testing.T, m map[string]any) {
				nw := m["Networks"].([]any)[0].(map[string]any)
				if diff := cmp.Diff(sorted("NetworkMode", "IPv4Addresses"), keys(nw)); diff != "" {
					t.Errorf("v3 Networks[0] keys (-want +got):\n%s", diff)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := get(t, srv.URL+tc.path)
			if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q: %s", code, hdr.Get("Content-Type"), body)
			}
			m := decode(t, body)
			if diff := cmp.Diff(tc.wantKeys, keys(m)); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			tc.check(t, m)
		})
	}
}

func TestTaskMetadata(t *testing.T) {
	srv, _ := newTestHandler(t, nil)
	v4Keys := []string{"Cluster", "TaskARN", "Family", "Revision", "DesiredStatus", "KnownStatus", "Containers",
		"Limits", "PullStartedAt", "PullStoppedAt", "AvailabilityZone", "LaunchType", "VPCID", "ServiceName",
		"FaultInjectionEnabled"}
	for _, tc := range []struct {
		name, path string
		wantKeys   []string
	}{
		{"v4 task", "/v4/" + endpointSidecar + "/task", sorted(v4Keys...)},
		{"v4 task with tags", "/v4/" + endpointSidecar + "/taskWithTags", sorted(append(slices.Clone(v4Keys), "TaskTags", "ContainerInstanceTags")...)},
		{"v3 task", "/v3/" + endpointSidecar + "/task", sorted("Cluster", "TaskARN", "Family", "Revision", "DesiredStatus",
			"KnownStatus", "Containers", "Limits", "PullStartedAt", "PullStoppedAt", "AvailabilityZone")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := get(t, srv.URL+tc.path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			m := decode(t, body)
			if diff := cmp.Diff(tc.wantKeys, keys(m)); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]any{"CPU": 0.5, "Memory": 512.0}, m["Limits"]); diff != "" {
				t.Errorf("Limits (-want +got):\n%s", diff)
			}
			var names []string
			for _, c := range m["Containers"].([]any) {
				names = append(names, c.(map[string]any)["Name"].(string))
			}
			if diff := cmp.Diff([]string{"app", "sidecar", "later"}, names); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
		})
	}

	// A task without limits leaves Limits out; FaultInjectionEnabled stays.
	bare := httptest.NewServer(Handler(&fakeSource{
		task: Task{Cluster: "c", TaskARN: "t", Containers: []Container{{Name: "a"}}},
		ids:  map[string]string{"x": "a"},
	}, fakeruntime.New()))
	defer bare.Close()
	_, _, body := get(t, bare.URL+"/v4/x/task")
	if want := `{"Cluster":"c","TaskARN":"t","Family":"","Revision":"","KnownStatus":"","Containers":[{"DockerId":"","Name":"a","DockerName":"","Image":"","ImageID":"","DesiredStatus":"","KnownStatus":"","Limits":{"CPU":0,"Memory":0},"Type":""}],"FaultInjectionEnabled":false}`; string(body) != want {
		t.Errorf("bare task =\n%s\nwant\n%s", body, want)
	}
}

func TestErrors(t *testing.T) {
	srv, _ := newTestHandler(t, nil)
	const unknown = "00000000-0000-4000-8000-000000000000"
	for _, tc := range []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"unknown id, container", "GET", "/v4/" + unknown, 404,
			`"V4 container metadata handler: unable to get container ID from request: unable to get docker ID from v3 endpoint ID: ` + unknown + `"`},
		{"unknown id, task", "GET", "/v4/" + unknown + "/task", 404,
			`"V4 task metadata handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: ` + unknown + `"`},
		{"unknown id, stats", "GET", "/v4/" + unknown + "/stats", 404,
			`"V4 container stats handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: ` + unknown + `"`},
		{"unknown id, task stats v3", "GET", "/v3/" + unknown + "/task/stats", 404,
			`"V3 task stats handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: ` + unknown + `"`},
		{"empty id", "GET", "/v4//task", 404,
			`"V4 task metadata handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: "`},
		{"unknown sub-path", "GET", "/v4/" + endpointApp + "/nope", 404, `"404 page not found"`},
		{"trailing slash", "GET", "/v4/" + endpointApp + "/", 404, `"404 page not found"`},
		{"taskWithTags is v4 only", "GET", "/v3/" + endpointApp + "/taskWithTags", 404, `"404 page not found"`},
		{"v2", "GET", "/v2/metadata", 404, `"404 page not found"`},
		{"POST", "POST", "/v4/" + endpointApp, 405, `"method not allowed"`},
		{"DELETE on task", "DELETE", "/v4/" + endpointApp + "/task", 405, `"method not allowed"`},
		{"HEAD", "HEAD", "/v4/" + endpointApp, 200, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := do(t, tc.method, srv.URL+tc.path)
			if code != tc.code || string(body) != tc.body {
				t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, code, body, tc.code, tc.body)
			}
			if code == 405 && hdr.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", hdr.Get("Allow"))
			}
		})
	}
}

// startFake runs containers on a fake runtime under the example task's IDs.
func startFake(t *testing.T, netns string, ids ...string) *fakeruntime.Runtime {
	t.Helper()
	rt := fakeruntime.New(fakeruntime.WithImage("probe", fakeruntime.ProbeConfig))
	ctx := context.Background()
	for _, id := range ids {
		spec := runtime.ContainerSpec{ID: id, Image: "probe", Command: []string{"sleep"}, MemoryLimitMiB: 128, NetNSPath: netns}
		if err := rt.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, id := range ids {
			_ = rt.Stop(ctx, id, time.Millisecond)
		}
	})
	return rt
}

func TestStats(t *testing.T) {
	rt := startFake(t, "/run/netns/task", "ctr-app")
	srv, _ := newTestHandler(t, rt)
	url := srv.URL + "/v4/" + endpointApp + "/stats"

	code, _, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	first := decode(t, body)
	if diff := cmp.Diff(sorted("read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats",
		"precpu_stats", "memory_stats", "name", "id", "networks"), keys(first)); diff != "" {
		t.Errorf("first sample keys (-want +got):\n%s", diff)
	}
	if first["preread"] != "0001-01-01T00:00:00Z" || first["name"] != "/ecs-web-3-app-1" || first["id"] != "ctr-app" {
		t.Errorf("preread %v, name %v, id %v", first["preread"], first["name"], first["id"])
	}
	cpu := first["cpu_stats"].(map[string]any)
	if diff := cmp.Diff(sorted("cpu_usage", "system_cpu_usage", "online_cpus", "throttling_data"), keys(cpu)); diff != "" {
		t.Errorf("cpu_stats keys (-want +got):\n%s", diff)
	}
	usage := cpu["cpu_usage"].(map[string]any)
	if diff := cmp.Diff(sorted("total_usage", "percpu_usage", "usage_in_kernelmode", "usage_in_usermode"), keys(usage)); diff != "" {
		t.Errorf("cpu_usage keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted("periods", "throttled_periods", "throttled_time"), keys(cpu["throttling_data"].(map[string]any))); diff != "" {
		t.Errorf("throttling_data keys (-want +got):\n%s", diff)
	}
	mem := first["memory_stats"].(map[string]any)
	if mem["limit"] != float64(128<<20) {
		t.Errorf("memory limit = %v, want 128 MiB", mem["limit"])
	}
	eth0 := first["networks"].(map[string]any)["eth0"].(map[string]any)
	if diff := cmp.Diff(sorted("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"), keys(eth0)); diff != "" {
		t.Errorf("network keys (-want +got):\n%s", diff)
	}
	if blk := first["blkio_stats"].(map[string]any); blk["io_service_bytes_recursive"] != nil || len(blk) != 8 {
		t.Errorf("blkio_stats = %v, want 8 null lists", blk)
	}

	_, _, body = get(t, url)
	second := decode(t, body)
	if second["preread"] != first["read"] {
		t.Errorf("second preread = %v, want the first read %v", second["preread"], first["read"])
	}
	pre := second["precpu_stats"].(map[string]any)["cpu_usage"].(map[string]any)["total_usage"]
	if pre != usage["total_usage"] {
		t.Errorf("precpu total_usage = %v, want the first sample's %v", pre, usage["total_usage"])
	}
	rates, ok := second["network_rate_stats"].(map[string]any)
	if !ok || rates["rx_bytes_per_sec"].(float64) <= 0 || rates["tx_bytes_per_sec"].(float64) <= 0 {
		t.Errorf("network_rate_stats = %v, want positive rates", second["network_rate_stats"])
	}

	// v3 leaves ECS's rates out.
	_, _, body = get(t, srv.URL+"/v3/"+endpointApp+"/stats")
	if m := decode(t, body); m["network_rate_stats"] != nil || m["precpu_stats"] == nil {
		t.Errorf("v3 stats = %v", m)
	}

	// A stopped container: 500 as ECS answers, and its sample goes.
	h := Handler(&fakeSource{task: exampleTask(), ids: map[string]string{endpointApp: "app"}}, rt).(*handler)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v4/"+endpointApp+"/stats", nil))
	if h.samples.len() != 1 {
		t.Fatalf("samples after one request = %d", h.samples.len())
	}
	if err := rt.Stop(context.Background(), "ctr-app", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v4/"+endpointApp+"/stats", nil))
	if rec.Code != 500 || rec.Body.String() != `"Unable to get container stats for: ctr-app"` {
		t.Errorf("stats of a stopped container = %d %s", rec.Code, rec.Body)
	}
	if h.samples.len() != 0 {
		t.Errorf("the stopped container's sample was kept")
	}
}

func TestTaskStats(t *testing.T) {
	rt := startFake(t, runtime.NetNSHost, "ctr-app") // ctr-sidecar does not exist; "later" has no DockerId
	srv, _ := newTestHandler(t, rt)
	code, _, body := get(t, srv.URL+"/v4/"+endpointSidecar+"/task/stats")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ctr-app", "ctr-sidecar"}, slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})); diff != "" {
		t.Errorf("task stats keys (-want +got):\n%s", diff)
	}
	if string(m["ctr-sidecar"]) != "{}" {
		t.Errorf("stats of a missing container = %s, want {}", m["ctr-sidecar"])
	}
	app := decode(t, m["ctr-app"])
	if app["id"] != "ctr-app" || app["networks"] != nil {
		t.Errorf("app stats: id %v, networks %v (host network: none)", app["id"], app["networks"])
	}
}

// errStats fails every sample with err.
type errStats struct{ err error }

func (e errStats) Stats(context.Context, string) (runtime.Stats, error) {
	return runtime.Stats{}, e.err
}

func TestStatsErrorKeepsSampleOnTransientFailure(t *testing.T) {
	h := Handler(&fakeSource{task: exampleTask(), ids: map[string]string{endpointApp: "app"}},
		errStats{errdefs.New(errdefs.ErrUnavailable, "containerd down")}).(*handler)
	h.samples.swap("ctr-app", runtime.Stats{Read: time.Now()})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v4/"+endpointApp+"/stats", nil))
	if rec.Code != 500 || h.samples.len() != 1 {
		t.Errorf("status %d, samples %d; want 500 with the sample kept", rec.Code, h.samples.len())
	}
}

func TestNewStatsResponseRates(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := runtime.Stats{Read: t0, Networks: map[string]runtime.NetworkStats{"eth0": {RxBytes: 1000, TxBytes: 500}, "eth1": {RxBytes: 10}}}
	for _, tc := range []struct {
		name   string
		cur    runtime.Stats
		want   *NetworkRateStats
		noPrev bool
	}{
		{"two seconds", runtime.Stats{Read: t0.Add(2 * time.Second), Networks: map[string]runtime.NetworkStats{
			"eth0": {RxBytes: 3000, TxBytes: 1500}, "eth1": {RxBytes: 10}}}, &NetworkRateStats{RxBytesPerSec: 1000, TxBytesPerSec: 500}, false},
		{"counter went backwards", runtime.Stats{Read: t0.Add(time.Second), Networks: map[string]runtime.NetworkStats{
			"eth0": {RxBytes: 1, TxBytes: 600}}}, &NetworkRateStats{RxBytesPerSec: 0, TxBytesPerSec: 100}, false},
		{"no networks", runtime.Stats{Read: t0.Add(time.Second)}, nil, false},
		{"no previous sample", runtime.Stats{Read: t0.Add(time.Second), Networks: prev.Networks}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &prev
			if tc.noPrev {
				p = nil
			}
			got := NewStatsResponse("/n", "i", tc.cur, p)
			if diff := cmp.Diff(tc.want, got.NetworkRateStats); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSamplesBounded(t *testing.T) {
	c := newSamples(2)
	t0 := time.Now()
	at := func(s int) runtime.Stats { return runtime.Stats{Read: t0.Add(time.Duration(s) * time.Second)} }
	if c.swap("a", at(0)) != nil {
		t.Fatal("a first sample had a predecessor")
	}
	c.swap("b", at(0))
	if p := c.swap("a", at(1)); p == nil || !p.Read.Equal(t0) {
		t.Fatalf("a's previous = %v", p)
	}
	c.swap("c", at(0)) // evicts b, the least recently used
	if c.len() != 2 {
		t.Fatalf("len = %d, want 2", c.len())
	}
	if c.swap("b", at(2)) != nil {
		t.Error("b survived eviction")
	}
	// A sample not newer than the stored one yields no predecessor and
	// keeps the stored one.
	if p := c.swap("b", at(2)); p != nil {
		t.Errorf("same-time sample gave predecessor %v", p)
	}
}

func TestEnv(t *testing.T) {
	for _, base := range []string{"", DefaultBaseURL, DefaultBaseURL + "/"} {
		got := Env(base, "abc")
		want := []string{
			"ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/abc",
			"ECS_CONTAINER_METADATA_URI=http://169.254.170.2/v3/abc",
			"ECS_AGENT_URI=http://169.254.170.2/api/abc",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Env(%q) (-want +got):\n%s", base, diff)
		}
	}
}

func TestNewEndpointID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewEndpointID()
		if !uuid.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q issued twice", id)
		}
		seen[id] = true
		if r, ok := parsePath("/v4/" + id + "/task"); !ok || r.endpointID != id {
			t.Fatalf("the path parser does not return %q", id)
		}
	}
}

func TestServer(t *testing.T) {
	src := &fakeSource{task: exampleTask(), ids: map[string]string{endpointApp: "app"}}
	for _, stopBy := range []string{"Close", "context"} {
		t.Run(stopBy, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := NewServer("127.0.0.1:0", Handler(src, fakeruntime.New()))
			if s.Addr() != nil {
				t.Error("Addr before Start is not nil")
			}
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Start(ctx); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("second Start: %v, want failed precondition", err)
			}
			base := "http://" + s.Addr().String()
			if code, _, body := get(t, base+"/v4/"+endpointApp); code != 200 || !strings.Contains(string(body), `"Name":"app"`) {
				t.Fatalf("GET = %d %s", code, body)
			}
			if stopBy == "Close" {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			} else {
				cancel()
			}
			// The listener goes: poll until connections are refused.
			deadline := time.Now().Add(10 * time.Second)
			for {
				c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
				if err != nil {
					break
				}
				c.Close()
				if time.Now().After(deadline) {
					t.Fatal("server still accepts connections after stopping")
				}
				<-time.After(10 * time.Millisecond) // the next poll
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close after stop: %v", err)
			}
		})
	}

	// A busy address is an error from Start.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := NewServer(l.Addr().String(), http.NotFoundHandler()).Start(context.Background()); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Start on a busy address: %v, want unavailable", err)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, p := range []string{
		"/v4/" + endpointApp, "/v4/x/task", "/v4/x/taskWithTags", "/v4/x/stats", "/v4/x/task/stats",
		"/v3/x/taskWithTags", "/v4//task", "/v4/x/", "/v5/x", "/v4", "/v4/x/task/stats/extra", "",
	} {
		f.Add(p)
	}
	subs := map[kind]string{kindContainer: "", kindTask: "/task", kindTaskWithTags: "/taskWithTags", kindStats: "/stats", kindTaskStats: "/task/stats"}
	f.Fuzz(func(t *testing.T, p string) {
		r, ok := parsePath(p)
		if !ok {
			return
		}
		if strings.Contains(r.endpointID, "/") {
			t.Fatalf("endpoint ID %q holds a slash", r.endpointID)
		}
		if r.version != 3 && r.version != 4 || r.version == 3 && r.kind == kindTaskWithTags {
			t.Fatalf("route %+v", r)
		}
		// The route names the whole path: rebuilding it gives p back.
		if got := "/v" + string(rune('0'+r.version)) + "/" + r.endpointID + subs[r.kind]; got != p {
			t.Fatalf("parsePath(%q) = %+v, which rebuilds as %q", p, r, got)
		}
	})
}
