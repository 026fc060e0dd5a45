package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/server"
)

func runBerth(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestTokenCreateAgainstServer(t *testing.T) {
	srv, cfg := startTestServer(t, "127.0.0.1:0")

	stdout, stderr, err := runBerth(t, "token", "create", "--data-dir", cfg.DataDir, "--cluster", "edge", "--ttl", "2h")
	if err != nil {
		t.Fatalf("token create: %v (stderr %q)", err, stderr)
	}
	tok, err := jointoken.Parse(stdout)
	if err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if tok.Server != srv.Endpoint() || tok.Cluster != "edge" || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("token %+v from stdout %q", tok, stdout)
	}
	if !strings.Contains(stderr, "for cluster edge") || strings.Contains(stderr, tok.Secret) {
		t.Fatalf("stderr %q", stderr)
	}

	stdout, _, err = runBerth(t, "token", "create", "--data-dir", cfg.DataDir, "--endpoint", srv.Endpoint()+"/", "--server-url", "https://10.1.2.3:7400")
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = jointoken.Parse(stdout); err != nil || tok.Server != "https://10.1.2.3:7400" || tok.Cluster != "default" {
		t.Fatalf("token %+v, %v", tok, err)
	}

	_, _, err = runBerth(t, "token", "create", "--data-dir", cfg.DataDir, "--cluster", "no/slash")
	if err == nil || !strings.Contains(err.Error(), "the server refused: ValidationException") {
		t.Fatalf("bad cluster: %v", err)
	}
}

func TestTokenCreateErrors(t *testing.T) {
	empty := t.TempDir()
	if _, _, err := runBerth(t, "token", "create", "--data-dir", empty); err == nil ||
		!strings.Contains(err.Error(), "no admin credentials at "+empty) || !strings.Contains(err.Error(), "berth server --data-dir") {
		t.Fatalf("empty data dir: %v", err)
	}

	// Files of a server that is not running: its port is closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	dir := t.TempDir()
	f := account.FilesIn(dir)
	acct := account.Account{ID: "123456789012", Region: "us-east-1", CreatedAt: time.Now()}
	if err := account.WriteProfileFiles(f, acct, account.AccessKey{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret"}, endpoint, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runBerth(t, "token", "create", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "cannot reach the berth server at "+endpoint) {
		t.Fatalf("server not running: %v", err)
	}
	if _, _, err := runBerth(t, "token", "create", "--data-dir", dir, "--ttl", "-1h"); err == nil || !strings.Contains(err.Error(), "--ttl must be positive") {
		t.Fatalf("negative ttl: %v", err)
	}
}

// startTestServer runs a server on listen in a temporary data dir until the
// test ends.
func startTestServer(t *testing.T, listen string) (*server.Server, config.Server) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = listen
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv, cfg
}
