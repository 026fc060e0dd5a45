package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/internal/tlsca"
)

// nonLoopbackIPv4 is an address of this machine that is not loopback
// (connections to it stay on the machine), or "".
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	return ""
}

// bundleClient trusts DATA/config's ca_bundle only, as the AWS CLI and
// `berth token create` do.
func bundleClient(t *testing.T, srv *Server) *http.Client {
	t.Helper()
	p, err := account.ReadProfileConfig(srv.Files().Config)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(p.CABundle)
	if err != nil {
		t.Fatalf("ca_bundle of DATA/config: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("ca_bundle %s holds no certificate", p.CABundle)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// pinnedClient trusts the CA a token pins, for the host of its server URL,
// as a joining agent does.
func pinnedClient(t *testing.T, tok jointoken.Token) (*http.Client, *tls.Config) {
	t.Helper()
	u, err := url.Parse(tok.Server)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsca.PinnedClientConfig(tok.CAPin, u.Hostname())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, cfg
}

// postWith sends a JSON body, SigV4-signed for service when creds is set,
// and decodes the JSON answer.
func postWith(t *testing.T, client *http.Client, endpoint, path, body string, creds *aws.Credentials, service, region string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if creds != nil {
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), *creds, req, hex.EncodeToString(sum[:]), service, region, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s answered %d with a body that is not JSON: %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// TestListenerTLS: a loopback listener serves plain HTTP with no CA pin
// and no ca_bundle; any other listener serves TLS from the data
// directory's CA, its tokens pin that CA, DATA/config names it, and an
// agent that trusts only the token joins and opens its channel.
func TestListenerTLS(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	for _, tc := range []struct {
		name   string
		listen string
		tls    bool
		host   string // endpoint host; "" for any address of the machine
		needIP bool   // needs a non-loopback address on the machine
	}{
		{name: "loopback is plain HTTP", listen: "127.0.0.1:0", host: "127.0.0.1"},
		{name: "wildcard serves TLS", listen: "0.0.0.0:0", tls: true},
		{name: "interface address serves TLS", listen: net.JoinHostPort(ip, "0"), tls: true, host: ip, needIP: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needIP {
				testenv.Require(t, "a non-loopback IPv4 address on this machine", ip != "")
			}
			srv, admin := startServerOn(t, tc.listen)
			u, err := url.Parse(srv.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			if wantScheme := map[bool]string{true: "https", false: "http"}[tc.tls]; u.Scheme != wantScheme {
				t.Fatalf("endpoint %s, want scheme %s", srv.Endpoint(), wantScheme)
			}
			if tc.host != "" && u.Hostname() != tc.host {
				t.Errorf("endpoint %s, want host %s", srv.Endpoint(), tc.host)
			}
			if tc.host == "" && (net.ParseIP(u.Hostname()) == nil || (ip != "" && net.ParseIP(u.Hostname()).IsLoopback())) {
				t.Errorf("wildcard endpoint %s: want an address of this machine", srv.Endpoint())
			}
			// The CA exists either way; TLS listeners serve its certificates.
			caPEM, err := os.ReadFile(filepath.Join(filepath.Dir(srv.Files().Config), "tls", tlsca.CertFile))
			if err != nil {
				t.Fatalf("no CA in DATA/tls: %v", err)
			}
			prof, err := account.ReadProfileConfig(srv.Files().Config)
			if err != nil {
				t.Fatal(err)
			}
			if prof.EndpointURL != srv.Endpoint() {
				t.Errorf("DATA/config endpoint_url %s, want %s", prof.EndpointURL, srv.Endpoint())
			}
			client := http.DefaultClient
			if !tc.tls {
				if srv.CAPin() != "" || prof.CABundle != "" {
					t.Fatalf("plain HTTP with CA pin %q, ca_bundle %q", srv.CAPin(), prof.CABundle)
				}
			} else {
				if want := filepath.Join(filepath.Dir(srv.Files().Config), "tls", tlsca.CertFile); prof.CABundle != want {
					t.Fatalf("ca_bundle %q, want %q", prof.CABundle, want)
				}
				if !bytes.Contains(caPEM, []byte("BEGIN CERTIFICATE")) || srv.CAPin() == "" {
					t.Fatalf("CA pin %q", srv.CAPin())
				}
				// Plain HTTP on a TLS listener gets no API.
				if resp, err := http.Get("http://" + u.Host + "/healthz"); err == nil {
					if resp.StatusCode == 200 {
						t.Error("plain HTTP answered 200 on a TLS listener")
					}
					resp.Body.Close()
				}
				// A client pinned to another CA is refused.
				otherCA, err := tlsca.LoadOrCreate(filepath.Join(t.TempDir(), "other"), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				other, _ := tlsca.PinnedClientConfig(otherCA.Pin(), u.Hostname())
				tr := &http.Transport{TLSClientConfig: other}
				if resp, err := (&http.Client{Transport: tr}).Get(srv.Endpoint() + "/healthz"); err == nil {
					resp.Body.Close()
					t.Error("a client pinned to another CA connected")
				}
				tr.CloseIdleConnections()
				client = bundleClient(t, srv)
			}

			region := srv.Account().Region
			code, out := postWith(t, client, srv.Endpoint(), jointoken.TokensPath, `{"cluster":"default"}`, &admin, jointoken.SigningName, region)
			if code != 200 {
				t.Fatalf("create token: %d %v", code, out)
			}
			tok, err := jointoken.Parse(out["token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Server != srv.Endpoint() || tok.CAPin != srv.CAPin() {
				t.Fatalf("token names %s with pin %q, want %s with %q", tok.Server, tok.CAPin, srv.Endpoint(), srv.CAPin())
			}
			if !tc.tls {
				return
			}
			if tok.CAPin != jointoken.CAPin(mustPEMDER(t, caPEM)) {
				t.Fatalf("token pin %s is not the pin of DATA/tls/ca.pem", tok.CAPin)
			}

			// An agent with nothing but the token.
			agentHTTP, agentTLS := pinnedClient(t, tok)
			b, _ := json.Marshal(jointoken.JoinRequest{Token: out["token"].(string)})
			code, got := postWith(t, agentHTTP, tok.Server, jointoken.JoinPath, string(b), nil, "", "")
			if code != 200 {
				t.Fatalf("join: %d %v", code, got)
			}
			inst := aws.Credentials{AccessKeyID: got["accessKeyId"].(string), SecretAccessKey: got["secretAccessKey"].(string)}
			if code, body := call(t, agentHTTP, srv, inst, "CreateCluster", `{}`); code != 200 {
				t.Fatalf("CreateCluster: %d %s", code, body)
			}
			code, body := call(t, agentHTTP, srv, inst, "RegisterContainerInstance", `{"totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1024},{"name":"MEMORY","type":"INTEGER","integerValue":1024}]}`)
			if code != 200 {
				t.Fatalf("RegisterContainerInstance: %d %s", code, body)
			}
			var reg struct {
				ContainerInstance struct {
					ContainerInstanceArn string `json:"containerInstanceArn"`
				} `json:"containerInstance"`
			}
			_ = json.Unmarshal([]byte(body), &reg)
			// The channel (a WebSocket upgrade) works over the pinned TLS.
			var synced atomic.Bool
			c, err := acsclient.New(acsclient.Config{
				Endpoint: tok.Server, ContainerInstance: reg.ContainerInstance.ContainerInstanceArn, Region: region,
				Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return inst, nil }),
				TLSConfig:   agentTLS,
				Handler: func(context.Context, []agentproto.Task, bool) error {
					synced.Store(true)
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
					t.Errorf("channel Run: %v", err)
				}
			}()
			poll(t, "a full sync over wss://", synced.Load)
		})
	}
}

func mustPEMDER(t *testing.T, pemBytes []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("not a PEM certificate")
	}
	return b.Bytes
}

// TestAWSCLIOverTLS: the real AWS CLI, given only the files berth writes
// (credentials, and config with ca_bundle), talks to a TLS listener; with
// the CA removed from the config it refuses the certificate, so TLS is
// real and ca_bundle is what makes it work.
func TestAWSCLIOverTLS(t *testing.T) {
	const awsCLI = "/usr/bin/aws" // Debian's awscli: the real AWS CLI v2
	_, err := os.Stat(awsCLI)
	testenv.Require(t, awsCLI+" (Debian package awscli)", err == nil)
	srv, _ := startServerOn(t, "0.0.0.0:0")
	if !strings.HasPrefix(srv.Endpoint(), "https://") {
		t.Fatalf("endpoint %s", srv.Endpoint())
	}
	conf, err := os.ReadFile(srv.Files().Config)
	if err != nil {
		t.Fatal(err)
	}
	noCA := filepath.Join(t.TempDir(), "config")
	var kept []string
	for _, l := range strings.Split(string(conf), "\n") {
		if !strings.HasPrefix(l, "ca_bundle") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(noCA, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		config  string
		wantOK  bool
		wantErr string
	}{
		{name: "config with ca_bundle", config: srv.Files().Config, wantOK: true},
		{name: "config without ca_bundle", config: noCA, wantErr: "SSL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, awsCLI, "--endpoint-url", srv.Endpoint(), "--cli-read-timeout", "20", "--cli-connect-timeout", "10",
				"ecs", "create-cluster", "--cluster-name", "tls")
			cmd.Env = []string{
				"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(),
				"AWS_SHARED_CREDENTIALS_FILE=" + srv.Files().Credentials, "AWS_CONFIG_FILE=" + tc.config, "AWS_PROFILE=" + account.Profile,
				"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tc.wantOK {
				if err != nil || !strings.Contains(stdout.String(), `"clusterName": "tls"`) {
					t.Fatalf("aws ecs create-cluster: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
				}
				return
			}
			if err == nil || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("aws ecs create-cluster: %v, want a failure mentioning %q\nstdout: %s\nstderr: %s", err, tc.wantErr, stdout.String(), stderr.String())
			}
		})
	}
}
