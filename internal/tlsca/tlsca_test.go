package tlsca

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/jointoken"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreate(filepath.Join(t.TempDir(), "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestLoadOrCreate(t *testing.T) {
	now := time.Now()
	dir := filepath.Join(t.TempDir(), "tls")
	ca, err := LoadOrCreate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"", 0o755}, {CertFile, 0o644}, {KeyFile, 0o600}} {
		fi, err := os.Stat(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != f.mode {
			t.Errorf("%s: mode %o, want %o", filepath.Join(dir, f.name), got, f.mode)
		}
	}
	c := ca.Certificate()
	if !c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA || c.NotAfter.Sub(now) < 9*365*24*time.Hour {
		t.Errorf("CA: IsCA %v, algorithm %v, valid until %v", c.IsCA, c.PublicKeyAlgorithm, c.NotAfter)
	}
	if ca.CertPath() != filepath.Join(dir, CertFile) {
		t.Errorf("CertPath %q", ca.CertPath())
	}
	again, err := LoadOrCreate(dir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again.Pin() != ca.Pin() {
		t.Errorf("reloaded CA has pin %s, want %s", again.Pin(), ca.Pin())
	}

	otherKey, err := os.ReadFile(filepath.Join(newCA(t).dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		prepare func(dir string)
		at      time.Time
		want    error  // nil: a CA loads or is created
		newCA   bool   // a new CA (another pin) is expected
		msg     string // part of the error message
	}{
		{name: "key without certificate starts over", prepare: func(d string) { os.Remove(filepath.Join(d, CertFile)) }, at: now, newCA: true},
		{name: "certificate without key", prepare: func(d string) { os.Remove(filepath.Join(d, KeyFile)) }, at: now, want: errdefs.ErrInvalidArgument, msg: "restore the CA's key"},
		{name: "garbage certificate", prepare: func(d string) { os.WriteFile(filepath.Join(d, CertFile), []byte("nope"), 0o644) }, at: now, want: errdefs.ErrInvalidArgument, msg: "no PEM CERTIFICATE"},
		{name: "key of another CA", prepare: func(d string) { os.WriteFile(filepath.Join(d, KeyFile), otherKey, 0o600) }, at: now, want: errdefs.ErrInvalidArgument, msg: "does not belong"},
		{name: "expired", prepare: func(string) {}, at: now.Add(CALifetime + time.Hour), want: errdefs.ErrInvalidArgument, msg: "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			first, err := LoadOrCreate(dir, now)
			if err != nil {
				t.Fatal(err)
			}
			tc.prepare(dir)
			got, err := LoadOrCreate(dir, tc.at)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !strings.Contains(errdefs.Message(err, ""), tc.msg) {
					t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got.Pin() != first.Pin()) != tc.newCA {
				t.Errorf("pin changed: %v, want %v", got.Pin() != first.Pin(), tc.newCA)
			}
		})
	}
}

// The pin tokens carry and the pin the CA reports are one computation.
func TestPinIsJointokenPin(t *testing.T) {
	ca := newCA(t)
	if got, want := ca.Pin(), jointoken.CAPin(ca.Certificate().Raw); got != want {
		t.Fatalf("Pin %s, jointoken.CAPin %s", got, want)
	}
	if !validPin(ca.Pin()) {
		t.Errorf("pin %q has not the format PinnedClientConfig accepts", ca.Pin())
	}
	id, _ := jointoken.NewID()
	secret, _ := jointoken.NewSecret()
	tok, err := jointoken.Encode(jointoken.Token{Server: "https://192.0.2.1:7400", ID: id, Secret: secret, Cluster: "default", CAPin: ca.Pin()})
	if err != nil {
		t.Fatalf("a token does not accept the CA's pin: %v", err)
	}
	back, err := jointoken.Parse(tok)
	if err != nil || back.CAPin != ca.Pin() {
		t.Fatalf("Parse: %+v %v", back, err)
	}
}

// serveTLS serves "ok" over TLS with cfg on a loopback port and returns
// the port.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: cfg,
		// Refused handshakes are what these tests are about.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeTLS(l, "", "")
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// fixed serves one certificate chain, whatever the client asks.
func fixed(c tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c}}
}

func TestPinnedClientConfig(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	now := time.Now()
	good, err := ca.ServerConfig(hosts, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	// A leaf from another CA sent with the pinned CA certificate beside it.
	foreign, err := other.Issue(hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	foreign.Certificate = [][]byte{foreign.Certificate[0], ca.Certificate().Raw}
	// The right leaf, but without the CA in the chain.
	leafOnly, err := ca.Issue(hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	leafOnly.Certificate = leafOnly.Certificate[:1]
	expired, err := ca.ServerConfig(hosts, clock.NewFake(now.Add(-LeafLifetime-24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	otherServer, err := other.ServerConfig(hosts, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		server     *tls.Config
		pin        string
		host       string // dialled host
		serverName string // overrides the name checked
		want       string // "" for success, else part of the error
	}{
		{name: "right pin by IP", server: good, pin: ca.Pin(), host: "127.0.0.1"},
		{name: "right pin by name", server: good, pin: ca.Pin(), host: "localhost"},
		{name: "right pin, IPv6 name", server: good, pin: ca.Pin(), host: "127.0.0.1", serverName: "::1"},
		{name: "wrong pin", server: good, pin: other.Pin(), host: "127.0.0.1", want: "does not contain the CA pinned"},
		{name: "server of another CA", server: otherServer, pin: ca.Pin(), host: "127.0.0.1", want: "does not contain the CA pinned"},
		{name: "leaf not signed by the pinned CA", server: fixed(foreign), pin: ca.Pin(), host: "127.0.0.1", want: "does not verify against the pinned CA"},
		{name: "no CA in the chain", server: fixed(leafOnly), pin: ca.Pin(), host: "127.0.0.1", want: "does not contain the CA pinned"},
		{name: "expired leaf", server: expired, pin: ca.Pin(), host: "127.0.0.1", want: "expired"},
		{name: "name not in the certificate", server: good, pin: ca.Pin(), host: "127.0.0.1", serverName: "berth.example", want: "not berth.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := serveTLS(t, tc.server)
			name := tc.host
			if tc.serverName != "" {
				name = tc.serverName
			}
			cfg, err := PinnedClientConfig(tc.pin, name)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			resp, err := client.Get("https://" + net.JoinHostPort(tc.host, port) + "/")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" {
					t.Fatalf("body %q", b)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("connected, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPinnedClientConfigRefusesMalformedPins(t *testing.T) {
	ca := newCA(t)
	for _, pin := range []string{"", "sha256:", strings.ToUpper(ca.Pin()), "sha1:" + strings.TrimPrefix(ca.Pin(), "sha256:"), ca.Pin() + "0", strings.Replace(ca.Pin(), "sha256:", "sha256:g", 1)[:71]} {
		if _, err := PinnedClientConfig(pin, "192.0.2.1"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("PinnedClientConfig(%q): %v, want invalid argument", pin, err)
		}
	}
	if _, err := PinnedClientConfig(ca.Pin(), ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("PinnedClientConfig without a host: %v, want invalid argument", err)
	}
	cfg, err := PinnedClientConfig(ca.Pin(), "[fd00::1]")
	if err != nil || cfg.ServerName != "fd00::1" {
		t.Errorf("PinnedClientConfig(%q, [fd00::1]): %v, ServerName %q", ca.Pin(), err, cfg.ServerName)
	}
}

func TestVerifyPinnedNeedsCertificates(t *testing.T) {
	ca := newCA(t)
	if err := verifyPinned(ca.Pin(), "127.0.0.1", nil, time.Now()); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("no certificates: %v", err)
	}
	// The CA alone (no leaf) is not a server certificate.
	if err := verifyPinned(ca.Pin(), "127.0.0.1", []*x509.Certificate{ca.Certificate()}, time.Now()); err == nil {
		t.Error("the CA certificate alone: accepted")
	}
}

func TestIssue(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	c, err := ca.Issue([]string{"192.0.2.7", "[fd00::7]", "berth.example.", "192.0.2.7", "", "localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"192.0.2.7", "fd00::7"}) || !slices.Equal(leaf.DNSNames, []string{"berth.example", "localhost"}) {
		t.Errorf("SANs: IPs %v, DNS %v", ips, leaf.DNSNames)
	}
	if len(c.Certificate) != 2 || string(c.Certificate[1]) != string(ca.Certificate().Raw) {
		t.Errorf("chain has %d certificates, want leaf then CA", len(c.Certificate))
	}
	if leaf.IsCA || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("leaf: IsCA %v, ExtKeyUsage %v", leaf.IsCA, leaf.ExtKeyUsage)
	}
	if got := leaf.NotAfter.Sub(now); got < LeafLifetime-time.Minute || got > LeafLifetime+time.Minute {
		t.Errorf("leaf valid for %v, want %v", got, LeafLifetime)
	}
	// Never beyond the CA.
	late, err := ca.Issue([]string{"x"}, ca.Certificate().NotAfter.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !late.Leaf.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("late leaf ends %v, CA ends %v", late.Leaf.NotAfter, ca.Certificate().NotAfter)
	}
	if _, err := ca.Issue(nil, now); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no hosts: %v", err)
	}
}

func TestServerConfigRenews(t *testing.T) {
	ca := newCA(t)
	clk := clock.NewFake(time.Now())
	cfg, err := ca.ServerConfig([]string{"127.0.0.1"}, clk)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	first := serial()
	clk.Advance(LeafLifetime / 2)
	if serial() != first {
		t.Error("renewed with half the lifetime left")
	}
	clk.Advance(LeafLifetime / 4)
	second := serial()
	if second == first {
		t.Error("not renewed with a quarter of the lifetime left")
	}
	if serial() != second {
		t.Error("renewed again right after renewing")
	}
}

func TestIsLoopbackAndWildcard(t *testing.T) {
	for _, tc := range []struct {
		host               string
		loopback, wildcard bool
	}{
		{"127.0.0.1", true, false},
		{"127.8.9.10", true, false},
		{"::1", true, false},
		{"[::1]", true, false},
		{"localhost", true, false},
		{"LocalHost.", true, false},
		{"", false, true},
		{"0.0.0.0", false, true},
		{"::", false, true},
		{"[::]", false, true},
		{"192.0.2.1", false, false},
		{"fd00::1", false, false},
		{"berth.example", false, false},
		{"localhost.example", false, false},
		{"128.0.0.1", false, false},
	} {
		if got := IsLoopback(tc.host); got != tc.loopback {
			t.Errorf("IsLoopback(%q) = %v", tc.host, got)
		}
		if got := IsWildcard(tc.host); got != tc.wildcard {
			t.Errorf("IsWildcard(%q) = %v", tc.host, got)
		}
	}
}

func TestListenerHosts(t *testing.T) {
	got, err := ListenerHosts("192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.9", "127.0.0.1", "::1", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("ListenerHosts(192.0.2.9) = %v, want %v", got, want)
	}
	for _, wildcard := range []string{"", "0.0.0.0", "::"} {
		got, err := ListenerHosts(wildcard)
		if err != nil {
			t.Fatal(err)
		}
		hostname, _ := os.Hostname()
		for _, want := range []string{"127.0.0.1", "::1", "localhost", hostname} {
			if !slices.Contains(got, want) {
				t.Errorf("ListenerHosts(%q) = %v, misses %q", wildcard, got, want)
			}
		}
		// Every non-link-local address of an up interface is named.
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if !slices.Contains(got, ipn.IP.String()) {
				t.Logf("ListenerHosts(%q) misses %s (its interface may be down)", wildcard, ipn.IP)
			}
		}
		for _, h := range got {
			if ip := net.ParseIP(h); ip != nil && ip.IsLinkLocalUnicast() {
				t.Errorf("ListenerHosts(%q) names link-local %s", wildcard, h)
			}
		}
	}
}

// FuzzParse feeds parse (which reads DATA/tls) arbitrary files: it must
// refuse or accept without panicking, and accept only a matching CA pair.
func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	ca, err := LoadOrCreate(dir, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, CertFile))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	f.Add(certPEM, keyPEM)
	f.Add(certPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), keyPEM)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, c, k []byte) {
		got, err := parse(c, k)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of kind %v: %v", errdefs.Kind(err), err)
			}
			return
		}
		if !got.cert.IsCA || !got.cert.PublicKey.(*ecdsa.PublicKey).Equal(&got.key.PublicKey) {
			t.Fatal("accepted a pair that is not a CA with its key")
		}
		if b, _ := pem.Decode(c); b != nil && string(b.Bytes) == string(ca.cert.Raw) && got.Pin() != ca.Pin() {
			t.Fatal("same certificate, another pin")
		}
	})
}
