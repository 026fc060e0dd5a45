package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/jointoken"
)

// TestTokenCreateOverTLS: against a server that serves TLS (a non-loopback
// listener), `berth token create` trusts the CA that DATA/config names as
// ca_bundle, and the token pins that CA. Without the CA it refuses the
// server's certificate.
func TestTokenCreateOverTLS(t *testing.T) {
	srv, cfg := startTestServer(t, "0.0.0.0:0")
	if !strings.HasPrefix(srv.Endpoint(), "https://") || srv.CAPin() == "" {
		t.Fatalf("endpoint %s, CA pin %q: want TLS", srv.Endpoint(), srv.CAPin())
	}

	stdout, stderr, err := runBerth(t, "token", "create", "--data-dir", cfg.DataDir)
	if err != nil {
		t.Fatalf("token create: %v (stderr %q)", err, stderr)
	}
	tok, err := jointoken.Parse(stdout)
	if err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if tok.Server != srv.Endpoint() || tok.CAPin != srv.CAPin() {
		t.Fatalf("token names %s pinned %q, want %s pinned %q", tok.Server, tok.CAPin, srv.Endpoint(), srv.CAPin())
	}

	for _, tc := range []struct {
		name, caBundle, want string
	}{
		{name: "no ca_bundle: system roots", want: "cannot reach the berth server"},
		{name: "missing ca_bundle", caBundle: filepath.Join(t.TempDir(), "tls", "ca.pem"), want: "no server's CA certificate (ca_bundle)"},
		{name: "ca_bundle without a certificate", caBundle: os.Args[0], want: "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"credentials", "config"} {
				b, err := os.ReadFile(filepath.Join(cfg.DataDir, f))
				if err != nil {
					t.Fatal(err)
				}
				var kept []string
				for _, l := range strings.Split(string(b), "\n") {
					if !strings.HasPrefix(l, "ca_bundle") {
						kept = append(kept, l)
					}
				}
				if f == "config" && tc.caBundle != "" {
					kept = append(kept, "ca_bundle = "+tc.caBundle)
				}
				if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.Join(kept, "\n")), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if p, err := account.ReadProfileConfig(filepath.Join(dir, "config")); err != nil || p.CABundle != tc.caBundle {
				t.Fatalf("prepared config: %+v %v", p, err)
			}
			_, _, err := runBerth(t, "token", "create", "--data-dir", dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("token create: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
