package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/jointoken"
)

// TestAgentChannel runs a joined agent's channel against a whole server
// (embedded etcd, the cache, the watch): it connects with its instance
// credentials, receives a placed task, and the server reports it connected.
func TestAgentChannel(t *testing.T) {
	srv, admin := startTestServer(t)
	region := srv.Account().Region
	code, out, _ := post(t, srv.Endpoint(), jointoken.TokensPath, `{"cluster":"default"}`, &admin, jointoken.SigningName, region, time.Now())
	if code != 200 {
		t.Fatalf("create token: %d %v", code, out)
	}
	b, _ := json.Marshal(jointoken.JoinRequest{Token: out["token"].(string)})
	code, got, _ := post(t, srv.Endpoint(), jointoken.JoinPath, string(b), nil, "", "", time.Time{})
	if code != 200 {
		t.Fatalf("join: %d %v", code, got)
	}
	inst := aws.Credentials{AccessKeyID: got["accessKeyId"].(string), SecretAccessKey: got["secretAccessKey"].(string)}
	mustCall := func(creds aws.Credentials, action, body string) map[string]any {
		t.Helper()
		code, resp := call(t, http.DefaultClient, srv, creds, action, body)
		if code != 200 {
			t.Fatalf("%s: %d %s", action, code, resp)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(resp), &m)
		return m
	}
	mustCall(inst, "CreateCluster", `{}`)
	reg := mustCall(inst, "RegisterContainerInstance", `{"totalResources":[{"name":"CPU","type":"INTEGER","integerValue":2048},{"name":"MEMORY","type":"INTEGER","integerValue":4096}]}`)
	instanceARN := reg["containerInstance"].(map[string]any)["containerInstanceArn"].(string)
	mustCall(admin, "RegisterTaskDefinition", `{"family":"web","containerDefinitions":[{"name":"app","image":"nginx","memory":64}]}`)

	var mu sync.Mutex
	var synced []agentproto.Task
	c, err := acsclient.New(acsclient.Config{
		Endpoint: srv.Endpoint(), ContainerInstance: instanceARN, Region: region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return inst, nil }),
		Handler: func(_ context.Context, tasks []agentproto.Task, _ bool) error {
			mu.Lock()
			defer mu.Unlock()
			synced = append(synced, tasks...)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	poll(t, "agentConnected", func() bool {
		desc := mustCall(admin, "DescribeContainerInstances", `{"containerInstances":["`+instanceARN+`"]}`)
		return desc["containerInstances"].([]any)[0].(map[string]any)["agentConnected"] == true
	})
	run := mustCall(admin, "RunTask", `{"taskDefinition":"web"}`)
	taskARN := run["tasks"].([]any)[0].(map[string]any)["taskArn"].(string)
	poll(t, "the task on the channel", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, tk := range synced {
			if tk.TaskARN == taskARN && tk.DesiredStatus == "RUNNING" {
				return true
			}
		}
		return false
	})
	resp, err := http.Get(srv.Endpoint() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "berth_agent_channel_connected 1") {
		t.Errorf("metrics lack the connected agent:\n%s", metrics)
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
