package embedetcd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func startT(t *testing.T, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func client(t *testing.T, s *Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRestartKeepsData writes a key, stops the member and starts it again on
// the same directory: once with the URLs it had, once with fresh ports (a
// caller that forgot them must not lose data either).
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s := startT(t, Config{Dir: dir, UnsafeNoFsync: true})
	for _, u := range []string{s.ClientURL(), s.PeerURL()} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Fatalf("URL %q is not loopback", u)
		}
	}
	if got := s.Endpoints(); len(got) != 1 || got[0] != s.ClientURL() {
		t.Fatalf("Endpoints() = %v, want [%s]", got, s.ClientURL())
	}
	if _, err := client(t, s).Put(ctx, "/k", "v1"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	clientURL, peerURL := s.ClientURL(), s.PeerURL()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"same URLs", Config{Dir: dir, ClientURL: clientURL, PeerURL: peerURL, UnsafeNoFsync: true}},
		{"fresh ports", Config{Dir: dir, UnsafeNoFsync: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startT(t, tc.cfg)
			defer s.Close()
			if tc.cfg.ClientURL != "" && s.ClientURL() != tc.cfg.ClientURL {
				t.Errorf("ClientURL() = %q, want %q", s.ClientURL(), tc.cfg.ClientURL)
			}
			resp, err := client(t, s).Get(ctx, "/k")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
				t.Fatalf("after restart /k = %v, want v1", resp.Kvs)
			}
			select {
			case err := <-s.Err():
				t.Fatalf("Err(): %v", err)
			default:
			}
		})
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{},
		{Dir: t.TempDir(), ClientURL: "http://10.0.0.1:2379"},
		{Dir: t.TempDir(), ClientURL: "https://127.0.0.1:2379"},
		{Dir: t.TempDir(), PeerURL: "127.0.0.1:2380"},
		{Dir: t.TempDir(), ClientURL: "http://127.0.0.1:0"},
		{Dir: t.TempDir(), ClientURL: "http://127.0.0.1:2379", PeerURL: "http://127.0.0.1:2379"},
	} {
		if s, err := Start(ctx, cfg); err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestStartHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Start(ctx, Config{Dir: t.TempDir(), UnsafeNoFsync: true})
	if err == nil {
		s.Close()
		t.Fatal("Start with a cancelled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with cancelled ctx: %v, want context.Canceled", err)
	}
}

func FuzzLoopbackURL(f *testing.F) {
	for _, s := range []string{"", "http://127.0.0.1:2379", "http://[::1]:1", "http://localhost:80", "http://10.1.1.1:5", "http://127.0.0.1", "http://127.0.0.1:99999", "%zz", "http://127.0.0.1:1/x?y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == "" {
			return // picks a port: not a decoding question
		}
		u, err := loopbackURL(raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" || u.Port() == "" {
			t.Fatalf("loopbackURL(%q) = %v accepted", raw, u)
		}
	})
}
