package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/config"
)

// startTestServer runs a whole control plane (embedded etcd included) in a
// temporary data directory on a free loopback port.
func startTestServer(tb testing.TB) (*Server, aws.Credentials) {
	tb.Helper()
	return startServerOn(tb, "127.0.0.1:0")
}

// startServerOn is startTestServer listening on listen.
func startServerOn(tb testing.TB, listen string) (*Server, aws.Credentials) {
	tb.Helper()
	cfg := config.Defaults()
	cfg.DataDir = tb.TempDir()
	cfg.Listen = listen
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	id, secret, err := account.ReadCredentials(srv.Files().Credentials)
	if err != nil {
		tb.Fatal(err)
	}
	return srv, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
}

// call sends one signed awsJson request and returns the status and body.
func call(tb testing.TB, client *http.Client, srv *Server, creds aws.Credentials, action, body string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, srv.Endpoint()+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113."+action)
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecs", srv.Account().Region, time.Now()); err != nil {
		tb.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerServesHealthMetricsAndECS(t *testing.T) {
	srv, creds := startTestServer(t)
	resp, err := http.Get(srv.Endpoint() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, body := call(t, http.DefaultClient, srv, creds, "CreateCluster", `{"clusterName":"a"}`); code != 200 || !strings.Contains(body, `"clusterName":"a"`) {
		t.Fatalf("CreateCluster: %d %s", code, body)
	}
	// Read-your-writes through the cache: the next request sees the cluster.
	if code, body := call(t, http.DefaultClient, srv, creds, "ListClusters", `{}`); code != 200 || !strings.Contains(body, "cluster/a") {
		t.Fatalf("ListClusters: %d %s", code, body)
	}
}

// BenchmarkDescribe measures one authenticated request through the whole
// server over loopback (client signing included), for profiling:
// go test -run=NONE -bench=Describe -cpuprofile cpu.out ./internal/server
func BenchmarkDescribe(b *testing.B) {
	srv, creds := startTestServer(b)
	client := &http.Client{}
	for _, f := range []struct{ action, body string }{
		{"CreateCluster", `{"clusterName":"bench"}`},
		{"RegisterTaskDefinition", `{"family":"bench","containerDefinitions":[{"name":"app","image":"registry.local/app:1","memory":64}]}`},
	} {
		if code, body := call(b, client, srv, creds, f.action, f.body); code != 200 {
			b.Fatalf("%s: %d %s", f.action, code, body)
		}
	}
	for _, bc := range []struct{ name, action, body string }{
		{"Clusters", "DescribeClusters", `{"clusters":["bench"]}`},
		{"TaskDefinition", "DescribeTaskDefinition", `{"taskDefinition":"bench"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if code, body := call(b, client, srv, creds, bc.action, bc.body); code != 200 {
						b.Fatalf("%d %s", code, body)
					}
				}
			})
		})
	}
}
