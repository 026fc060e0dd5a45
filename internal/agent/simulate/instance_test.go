package simulate

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/berth-dev/berth/internal/agent/taskrunner"
	"github.com/berth-dev/berth/internal/agentproto"
)

func def(mode types.NetworkMode, ports ...types.PortMapping) types.TaskDefinition {
	return types.TaskDefinition{NetworkMode: mode, ContainerDefinitions: []types.ContainerDefinition{
		{Name: aws.String("app"), PortMappings: ports},
		{Name: aws.String("side")},
	}}
}

func at(arn string, rev int64, desired string) agentproto.Task {
	return agentproto.Task{TaskARN: arn, Revision: rev, DesiredStatus: desired, TaskDefinition: def("")}
}

func testInstance() *instance {
	return newInstance(0, "default", "us-east-1a", newPortPool(50000, 50002, map[uint16]bool{50001: true}))
}

// sendAll sends every pending report as a worker would, all accepted, and
// returns them as "task:STATUS".
func sendAll(in *instance, now time.Time) []string {
	var out []string
	for {
		t, st, ok := in.pick()
		if !ok {
			return out
		}
		out = append(out, t.arn+":"+st.String())
		in.done(t, st, now)
	}
}

func TestApplySyncs(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name  string
		syncs [][]agentproto.Task
		full  []bool
		want  []string // reports, in order, after the last Sync
	}{
		{"new task runs", [][]agentproto.Task{{at("a", 1, "RUNNING")}}, []bool{false},
			[]string{"a:PENDING", "a:RUNNING"}},
		{"two tasks take turns", [][]agentproto.Task{{at("a", 1, "RUNNING"), at("b", 1, "RUNNING")}}, []bool{true},
			[]string{"a:PENDING", "b:PENDING", "a:RUNNING", "b:RUNNING"}},
		{"stopped before it started", [][]agentproto.Task{{at("a", 1, "RUNNING")}, {at("a", 2, "STOPPED")}}, []bool{false, false},
			[]string{"a:STOPPED"}},
		{"born stopped", [][]agentproto.Task{{at("a", 1, "STOPPED")}}, []bool{false},
			[]string{"a:STOPPED"}},
		{"an older revision is ignored", [][]agentproto.Task{{at("a", 5, "RUNNING")}, {at("a", 4, "STOPPED")}}, []bool{false, false},
			[]string{"a:PENDING", "a:RUNNING"}},
		{"missing from a full sync is stopped", [][]agentproto.Task{{at("a", 1, "RUNNING")}, {at("b", 2, "RUNNING")}}, []bool{false, true},
			[]string{"a:STOPPED", "b:PENDING", "b:RUNNING"}},
		{"missing from a partial sync is kept", [][]agentproto.Task{{at("a", 1, "RUNNING")}, {at("b", 2, "RUNNING")}}, []bool{false, false},
			[]string{"a:PENDING", "b:PENDING", "a:RUNNING", "b:RUNNING"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInstance()
			for i, s := range tt.syncs {
				in.apply(s, tt.full[i], now)
			}
			if got := sendAll(in, now); !slices.Equal(got, tt.want) {
				t.Errorf("reports %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStoppedTaskIsNeverStartedAgain(t *testing.T) {
	now := time.Unix(1000, 0)
	in := testInstance()
	in.apply([]agentproto.Task{at("a", 1, "RUNNING")}, false, now)
	sendAll(in, now)
	in.apply([]agentproto.Task{at("a", 2, "STOPPED")}, false, now)
	if got := sendAll(in, now); !slices.Equal(got, []string{"a:STOPPED"}) {
		t.Fatalf("reports %v", got)
	}
	// A resend of the old Sync, and a later one: nothing to do.
	in.apply([]agentproto.Task{at("a", 1, "RUNNING")}, false, now)
	in.apply([]agentproto.Task{at("a", 3, "RUNNING")}, true, now)
	if got := sendAll(in, now); got != nil {
		t.Errorf("a stopped task was reported again: %v", got)
	}
	// A full Sync without it forgets it; so does time.
	in.apply(nil, true, now)
	if len(in.finished) != 0 {
		t.Errorf("finished %v after a full Sync without it", in.finished)
	}
	in.apply([]agentproto.Task{at("b", 1, "STOPPED")}, false, now)
	sendAll(in, now)
	in.apply(nil, false, now.Add(finishedKeep+time.Second))
	if len(in.finished) != 0 {
		t.Errorf("finished %v after %s", in.finished, finishedKeep)
	}
}

func TestReportsAndPorts(t *testing.T) {
	now := time.Unix(1000, 0)
	in := testInstance()
	mk := func(arn string, mode types.NetworkMode, pm ...types.PortMapping) agentproto.Task {
		return agentproto.Task{TaskARN: arn, Revision: 1, DesiredStatus: "RUNNING", TaskDefinition: def(mode, pm...)}
	}
	in.apply([]agentproto.Task{
		mk("static", types.NetworkModeBridge, types.PortMapping{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080)}),
		mk("dyn1", "", types.PortMapping{ContainerPort: aws.Int32(80)}, types.PortMapping{ContainerPort: aws.Int32(53), Protocol: types.TransportProtocolUdp}),
		mk("dyn2", types.NetworkModeBridge, types.PortMapping{ContainerPort: aws.Int32(80), HostPort: aws.Int32(0)}),
		mk("host", types.NetworkModeHost, types.PortMapping{ContainerPort: aws.Int32(9000)}),
		mk("none", types.NetworkModeNone, types.PortMapping{ContainerPort: aws.Int32(9000)}),
	}, true, now)
	hostPorts := func(arn string) []int32 {
		var out []int32
		for _, b := range in.tasks[arn].containers[0].bindings {
			out = append(out, aws.ToInt32(b.HostPort))
		}
		return out
	}
	// The pool is 50000-50002 with 50001 reserved: two dynamic ports, then none.
	for arn, want := range map[string][]int32{"static": {8080}, "dyn1": {50000, 50002}, "dyn2": nil, "host": {9000}, "none": nil} {
		if got := hostPorts(arn); !slices.Equal(got, want) {
			t.Errorf("%s: host ports %v, want %v", arn, got, want)
		}
	}
	if p := in.tasks["dyn1"].containers[0].bindings[1].Protocol; p != types.TransportProtocolUdp {
		t.Errorf("protocol %q", p)
	}

	tk := in.tasks["static"]
	pending := in.report(tk, statusPending, now)
	if aws.ToString(pending.Status) != "PENDING" || pending.PullStartedAt == nil || pending.Containers[0].RuntimeId != nil || len(pending.Containers) != 2 {
		t.Errorf("PENDING report %+v", pending)
	}
	in.done(tk, statusPending, now)
	running := in.report(tk, statusRunning, now)
	c := running.Containers[0]
	if aws.ToString(c.Status) != "RUNNING" || len(aws.ToString(c.RuntimeId)) != 64 || len(c.NetworkBindings) != 1 {
		t.Errorf("RUNNING container %+v", c)
	}
	in.done(tk, statusRunning, now)
	stopped := in.report(tk, statusStopped, now)
	if c := stopped.Containers[0]; aws.ToInt32(c.ExitCode) != 0 || c.ExitCode == nil || c.NetworkBindings != nil || stopped.ExecutionStoppedAt == nil {
		t.Errorf("STOPPED report %+v", stopped)
	}

	// A stopped task frees its dynamic ports for the next.
	in.tasks["dyn1"].desired = "STOPPED"
	in.done(in.tasks["dyn1"], statusStopped, now)
	in.apply([]agentproto.Task{mk("dyn3", "", types.PortMapping{ContainerPort: aws.Int32(80)})}, false, now)
	if got := hostPorts("dyn3"); len(got) != 1 || got[0] != 50000 && got[0] != 50002 {
		t.Errorf("dyn3 host ports %v", got)
	}

	// An unassigned task is stopped with the real agent's reason.
	in.apply(nil, true, now)
	if tk := in.tasks["host"]; tk.desired != "STOPPED" || aws.ToString(in.report(tk, statusStopped, now).Reason) != taskrunner.ReasonNotAssigned {
		t.Errorf("unassigned task: desired %s", tk.desired)
	}
}

// fakeAPI answers SubmitTaskStateChange from a script of errors, then
// accepts; it records the statuses it accepted.
type fakeAPI struct {
	API
	mu       sync.Mutex
	errs     []error
	accepted []string
}

func (f *fakeAPI) SubmitTaskStateChange(_ context.Context, in *ecs.SubmitTaskStateChangeInput, _ ...func(*ecs.Options)) (*ecs.SubmitTaskStateChangeOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return nil, err
		}
	}
	f.accepted = append(f.accepted, aws.ToString(in.Task)+":"+aws.ToString(in.Status))
	return &ecs.SubmitTaskStateChangeOutput{}, nil
}

func httpErr(code int, err error) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: err}
}

func TestStepRetriesAndDrops(t *testing.T) {
	notFound := httpErr(400, &types.InvalidParameterException{Message: aws.String("The referenced task was not found.")})
	tests := []struct {
		name         string
		errs         []error
		assignedAgo  time.Duration
		wantAccepted []string
		wantRetries  uint64
		wantDropped  uint64
	}{
		{"throttled then accepted", []error{httpErr(400, &smithy.GenericAPIError{Code: "ThrottlingException"}), httpErr(503, errors.New("unavailable"))}, 0,
			[]string{"a:PENDING", "a:RUNNING"}, 2, 0},
		{"refused for good: dropped, goes on", []error{httpErr(400, &types.InvalidParameterException{Message: aws.String("bad")})}, 0,
			[]string{"a:RUNNING"}, 0, 1},
		{"not found while new: retried", []error{notFound}, 0,
			[]string{"a:PENDING", "a:RUNNING"}, 1, 0},
		{"not found when old: dropped", []error{notFound}, time.Minute,
			[]string{"a:RUNNING"}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{errs: tt.errs}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &Simulator{cfg: Config{Logger: slog.New(slog.DiscardHandler)}, api: api, queue: make(chan *instance, 1), ctx: ctx, cancel: cancel}
			in := testInstance()
			in.apply([]agentproto.Task{at("a", 1, "RUNNING")}, true, time.Now().Add(-tt.assignedAgo))
			s.enqueue(in)
			for len(s.queue) > 0 {
				s.step(<-s.queue)
			}
			if in.queued {
				t.Error("the instance is still marked queued with nothing to send")
			}
			if !slices.Equal(api.accepted, tt.wantAccepted) {
				t.Errorf("accepted %v, want %v", api.accepted, tt.wantAccepted)
			}
			st := s.Stats()
			if st.Retries != tt.wantRetries || st.Dropped != tt.wantDropped || st.Running != 1 || st.Started != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"network", errors.New("connection refused"), true},
		{"5xx", httpErr(500, errors.New("x")), true},
		{"429", httpErr(429, errors.New("x")), true},
		{"throttling (400)", httpErr(400, &smithy.GenericAPIError{Code: "ThrottlingException"}), true},
		{"server exception", httpErr(500, &types.ServerException{Message: aws.String("x")}), true},
		{"invalid parameter", httpErr(400, &types.InvalidParameterException{}), false},
		{"access denied", httpErr(400, &types.AccessDeniedException{}), false},
		{"canceled", context.Canceled, false},
		{"forced", errRetry{httpErr(400, &types.InvalidParameterException{})}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryable(tt.err); got != tt.want {
				t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
	for i := 1; i <= 100; i++ {
		h.observe(time.Duration(i) * time.Millisecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0, time.Millisecond}} {
		got := h.quantile(tt.q)
		if got < tt.want || float64(got) > 1.2*float64(tt.want) {
			t.Errorf("quantile(%v) = %v, want %v within 19%%", tt.q, got, tt.want)
		}
	}
	h.observe(-time.Second)
	h.observe(1000 * time.Hour)
}

func TestParseZones(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"us-east-1a, us-east-1b,,", []string{"us-east-1a", "us-east-1b"}, false},
		{"eu-west-1a", []string{"eu-west-1a"}, false},
		{"bad zone", nil, true},
		{"a;b", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseZones(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParseZones(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	ok := Config{Count: 1}
	ok.Identity.Endpoint, ok.Identity.Region, ok.Identity.AccessKeyID = "http://127.0.0.1:1", "eu-west-1", "AK"
	if err := ok.defaults(); err != nil || !slices.Equal(ok.Zones, []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}) || ok.Workers != DefaultWorkers {
		t.Fatalf("defaults: %v %+v", err, ok)
	}
	for name, mut := range map[string]func(*Config){
		"no instances":    func(c *Config) { c.Count = 0 },
		"negative cpu":    func(c *Config) { c.CPU = -1 },
		"huge memory":     func(c *Config) { c.MemoryMiB = 1 << 40 },
		"no identity":     func(c *Config) { c.Identity.AccessKeyID = "" },
		"a bad zone name": func(c *Config) { c.Zones = []string{"a b"} },
	} {
		c := Config{Count: 1, Identity: ok.Identity}
		mut(&c)
		if err := c.defaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzApplySync feeds decoded channel frames to an instance: whatever the
// server sends, apply must not panic, no task may be reported twice in
// the same status or go backwards, and the dynamic port pool stays
// consistent (no reserved port handed out, none kept by a finished task).
func FuzzApplySync(f *testing.F) {
	f.Add([]byte(`{"type":"Sync","id":"1","sync":{"full":true,"tasks":[{"taskArn":"a","revision":1,"desiredStatus":"RUNNING","taskDefinition":{"containerDefinitions":[{"name":"c","portMappings":[{"containerPort":80}]}]}}]}}`), true)
	f.Add([]byte(`{"type":"Sync","id":"2","sync":{"full":false,"tasks":[{"taskArn":"a","revision":2,"desiredStatus":"STOPPED","taskDefinition":{"networkMode":"host","containerDefinitions":[{"name":"c","portMappings":[{"containerPort":80,"hostPort":80}]}]}}]}}`), false)
	f.Fuzz(func(t *testing.T, frame []byte, sendBetween bool) {
		m, err := agentproto.Decode(frame)
		if err != nil || m.Sync == nil {
			return
		}
		now := time.Unix(1000, 0)
		in := testInstance()
		seen := map[string]status{}
		check := func() {
			for {
				tk, st, ok := in.pick()
				if !ok {
					return
				}
				if st <= seen[tk.arn] {
					t.Fatalf("task %s reported %s after %s", tk.arn, st, seen[tk.arn])
				}
				seen[tk.arn] = st
				in.done(tk, st, now)
			}
		}
		for range 2 {
			in.apply(m.Sync.Tasks, m.Sync.Full, now)
			if sendBetween {
				check()
			}
		}
		check()
		p := in.ports
		for port, arn := range p.used {
			if p.reserved[port] || port < p.first || port > p.last || !slices.Contains(p.byTask[arn], port) {
				t.Fatalf("dynamic port %d of %s: reserved, out of range or not recorded", port, arn)
			}
			if _, live := in.tasks[arn]; !live {
				t.Fatalf("dynamic port %d still held by finished task %s", port, arn)
			}
		}
	})
}
