package acsclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestChannelURL(t *testing.T) {
	for _, tc := range []struct {
		endpoint, cluster, instance string
		want                        string
		wantErr                     bool
	}{
		{"http://127.0.0.1:7400", "prod", "abc", "ws://127.0.0.1:7400/agent/v1/channel?cluster=prod&containerInstance=abc", false},
		{"https://berth.example:443/", "", "abc", "wss://berth.example:443/agent/v1/channel?containerInstance=abc", false},
		{"https://berth.example/base", "arn:aws:ecs:us-east-1:123456789012:cluster/prod", "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/abc",
			"wss://berth.example/base/agent/v1/channel?cluster=arn%3Aaws%3Aecs%3Aus-east-1%3A123456789012%3Acluster%2Fprod&containerInstance=arn%3Aaws%3Aecs%3Aus-east-1%3A123456789012%3Acontainer-instance%2Fprod%2Fabc", false},
		{"ftp://x", "", "abc", "", true},
		{"127.0.0.1:7400", "", "abc", "", true},
		{"", "", "abc", "", true},
	} {
		u, err := ChannelURL(tc.endpoint, tc.cluster, tc.instance)
		if tc.wantErr {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ChannelURL(%q) = %v, %v; want an invalid-argument error", tc.endpoint, u, err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("ChannelURL(%q) = %v, %v; want %s", tc.endpoint, u, err, tc.want)
		}
	}
}

func FuzzChannelURL(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:7400", "https://h/p?q=1#f", "ws://x", "http://[::1]:1/", "%zz"} {
		f.Add(s, "prod", "abc")
	}
	f.Fuzz(func(t *testing.T, endpoint, cluster, instance string) {
		u, err := ChannelURL(endpoint, cluster, instance)
		if err != nil {
			return
		}
		if u.Scheme != "ws" && u.Scheme != "wss" || !strings.HasSuffix(u.Path, agentproto.ChannelPath) {
			t.Fatalf("ChannelURL(%q) = %s", endpoint, u)
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil || q.Get(agentproto.ParamContainerInstance) != instance || q.Get(agentproto.ParamCluster) != cluster {
			t.Fatalf("ChannelURL(%q, %q, %q) query %q: %v", endpoint, cluster, instance, u.RawQuery, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	lo, hi := 250*time.Millisecond, 10*time.Second
	for _, tc := range []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{0, 0, 125 * time.Millisecond},
		{0, 0.999999, 250 * time.Millisecond},
		{1, 0, 250 * time.Millisecond},
		{3, 0.5, 1500 * time.Millisecond},
		{6, 0, 5 * time.Second},
		{60, 0, 5 * time.Second},
		{1000, 0.999999, 10 * time.Second},
	} {
		got := backoff(lo, hi, tc.failures, tc.r)
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("backoff(%d, %v) = %v, want %v", tc.failures, tc.r, got, tc.want)
		}
	}
}

// fakeServer upgrades every request and hands the connection to serve.
func fakeServer(t *testing.T, serve func(ws *websocket.Conn)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != agentproto.ChannelPath || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKID/") {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		conns.Add(1)
		serve(ws)
	}))
	t.Cleanup(srv.Close)
	return srv, &conns
}

func newTestClient(t *testing.T, endpoint string, cfg Config) *Client {
	t.Helper()
	cfg.Endpoint, cfg.ContainerInstance, cfg.Region = endpoint, "abc", "us-east-1"
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}, nil
	})
	if cfg.Handler == nil {
		cfg.Handler = func(context.Context, []agentproto.Task, bool) error { return nil }
	}
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// readUntil reads frames until one matches.
func readUntil(ws *websocket.Conn, match func(agentproto.Message) bool) (agentproto.Message, error) {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return agentproto.Message{}, err
		}
		m, err := agentproto.Decode(b)
		if err != nil {
			return m, err
		}
		if match(m) {
			return m, nil
		}
	}
}

func TestReconnectsWhenTheServerIsSilent(t *testing.T) {
	heartbeats := make(chan struct{}, 1)
	srv, conns := fakeServer(t, func(ws *websocket.Conn) {
		// Reads the client's heartbeats, says nothing.
		for {
			if _, err := readUntil(ws, func(m agentproto.Message) bool { return m.Type == agentproto.TypeHeartbeat }); err != nil {
				return
			}
			select {
			case heartbeats <- struct{}{}:
			default:
			}
		}
	})
	var errs atomic.Int32
	newTestClient(t, srv.URL, Config{
		HeartbeatInterval: 10 * time.Millisecond, DisconnectAfter: 100 * time.Millisecond,
		OnError: func(err error) {
			if strings.Contains(err.Error(), "server silent") {
				errs.Add(1)
			}
		},
	})
	<-heartbeats
	waitFor(t, "three connections", func() bool { return conns.Load() >= 3 })
	if errs.Load() < 2 {
		t.Fatalf("%d silent-server errors after %d connections", errs.Load(), conns.Load())
	}
}

func TestAckOnlyWhatTheHandlerApplied(t *testing.T) {
	task := agentproto.Task{TaskARN: "arn:t", Revision: 7, DesiredStatus: "RUNNING"}
	type result struct {
		first agentproto.Message
		err   error
	}
	results := make(chan result, 1)
	srv, _ := fakeServer(t, func(ws *websocket.Conn) {
		for _, m := range []agentproto.Message{
			{Type: agentproto.TypeSync, ID: "a", Sync: &agentproto.Sync{Full: true, Tasks: []agentproto.Task{task}}},
			{Type: agentproto.TypeSync, ID: "b", Sync: &agentproto.Sync{Tasks: []agentproto.Task{task}}},
		} {
			b, _ := agentproto.Encode(m)
			if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
				results <- result{err: err}
				return
			}
		}
		m, err := readUntil(ws, func(m agentproto.Message) bool { return m.Type == agentproto.TypeAck })
		results <- result{m, err}
		_, _ = readUntil(ws, func(agentproto.Message) bool { return false })
	})
	var calls atomic.Int32
	newTestClient(t, srv.URL, Config{Handler: func(_ context.Context, tasks []agentproto.Task, full bool) error {
		n := calls.Add(1)
		if len(tasks) != 1 || tasks[0].TaskARN != task.TaskARN || tasks[0].Revision != task.Revision {
			t.Errorf("tasks = %+v", tasks)
		}
		if n == 1 {
			if !full {
				t.Error("the first sync is not full")
			}
			return errors.New("not now")
		}
		return nil
	}})
	r := <-results
	if r.err != nil || r.first.ID != "b" {
		t.Fatalf("first ack = %+v, %v; want b (a's handler failed)", r.first, r.err)
	}
}

func TestOnConnectAndHealth(t *testing.T) {
	health := make(chan agentproto.Health, 4)
	srv, _ := fakeServer(t, func(ws *websocket.Conn) {
		m, err := readUntil(ws, func(m agentproto.Message) bool { return m.Type == agentproto.TypeHealth })
		if err == nil {
			health <- *m.Health
		}
		// Ends the connection: the client reconnects and resends.
	})
	client := make(chan *Client, 1) // the client, once newTestClient returns it
	var ctxEnded atomic.Int32
	client <- newTestClient(t, srv.URL, Config{OnConnect: func(ctx context.Context) {
		c := <-client
		client <- c
		if err := c.SendHealth(ctx, agentproto.Health{TaskARN: "arn:t", Containers: map[string]string{"app": "HEALTHY"}}); err != nil && ctx.Err() == nil {
			t.Errorf("SendHealth: %v", err)
		}
		<-ctx.Done()
		ctxEnded.Add(1)
	}})
	for range 2 {
		if h := <-health; h.TaskARN != "arn:t" || h.Containers["app"] != "HEALTHY" {
			t.Fatalf("health = %+v", h)
		}
	}
	waitFor(t, "OnConnect's context to end with its connection", func() bool { return ctxEnded.Load() >= 1 })
}

func TestSendHealthWhileDown(t *testing.T) {
	c, err := New(Config{
		Endpoint: "http://127.0.0.1:1", ContainerInstance: "abc", Region: "us-east-1",
		Credentials: aws.AnonymousCredentials{},
		Handler:     func(context.Context, []agentproto.Task, bool) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendHealth(context.Background(), agentproto.Health{TaskARN: "arn:t"}); !errors.Is(err, ErrNotConnected) || c.Connected() {
		t.Fatalf("SendHealth before Run = %v", err)
	}
	if _, err := New(Config{Endpoint: "http://x"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("New without handler: %v", err)
	}
}
