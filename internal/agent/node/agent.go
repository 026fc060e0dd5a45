package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/tlsca"
)

// Defaults of the agent's own flags.
const (
	DefaultContainerdAddress   = "/run/containerd/containerd.sock"
	DefaultContainerdNamespace = "berth"
	// DefaultMetadataListen is where the task metadata endpoint listens:
	// the address every task reaches it at (agent-contract.md §4.1).
	DefaultMetadataListen = network.EndpointAddress + ":80"
	DefaultBridge         = "berth0"
	DefaultSubnet         = "10.213.0.0/16"
)

// Config is what an agent runs with.
type Config struct {
	// Agent is the parsed ecs.config and ECS_* environment.
	Agent agentconfig.Config
	// Server overrides the server URL of the token or of the stored
	// identity ("" keeps it).
	Server string
	// CAPin, with Server, overrides the stored pin of the server's CA (the
	// local agent of `berth up` gets its server's).
	CAPin string
	// Token is a join token, needed when no identity is stored.
	Token string
	// Enroll, when set, provides the identity instead of a join token (the
	// agent `berth up` starts in its own process).
	Enroll func(ctx context.Context, cluster string) (state.Identity, error)

	// TrimStartupMemory releases, once started, the pages of the binary
	// that only start-up used (`berth agent`: it runs alone; `berth up`
	// shares the binary with its server, which uses them).
	TrimStartupMemory bool

	ContainerdAddress   string
	ContainerdNamespace string
	MetadataListen      string
	Bridge, Subnet      string

	Logger *slog.Logger
	Clock  clock.Clock
}

func (c *Config) defaults() {
	if c.ContainerdAddress == "" {
		c.ContainerdAddress = DefaultContainerdAddress
	}
	if c.ContainerdNamespace == "" {
		c.ContainerdNamespace = DefaultContainerdNamespace
	}
	if c.MetadataListen == "" {
		c.MetadataListen = DefaultMetadataListen
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if c.Subnet == "" {
		c.Subnet = DefaultSubnet
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
}

// identity returns the stored identity, or joins (token or Enroll) and
// stores the result. A token for another server than the stored identity's
// joins afresh.
func identity(ctx context.Context, cfg Config, db *state.DB) (state.Identity, error) {
	id, ok, err := db.Identity()
	if err != nil {
		return id, err
	}
	switch {
	case cfg.Token != "":
		if ok && tokenServer(cfg.Token) == id.Endpoint {
			break // already joined through this server: keep the identity
		}
		if id, err = Join(ctx, cfg.Token); err != nil {
			return id, err
		}
		ok = false
	case ok:
	case cfg.Enroll != nil:
		if id, err = cfg.Enroll(ctx, cfg.Agent.Cluster); err != nil {
			return id, fmt.Errorf("enrolling the local agent: %w", err)
		}
	default:
		return id, errdefs.InvalidArgument("this agent has not joined a server yet: pass --token with a join token from 'berth token create' (data dir " + cfg.Agent.DataDir + ")")
	}
	if cfg.Server != "" {
		id.Endpoint = strings.TrimRight(cfg.Server, "/")
		if cfg.CAPin != "" {
			id.CAPin = cfg.CAPin
		}
	}
	if !ok {
		if err := db.SetIdentity(id); err != nil {
			return id, err
		}
		// Another server's instance record means nothing here.
		if err := db.ClearInstance(); err != nil {
			return id, err
		}
	}
	return id, nil
}

// tokenServer is the server URL a join token names ("" if unreadable).
func tokenServer(token string) string {
	tok, err := jointoken.Parse(strings.TrimSpace(token))
	if err != nil {
		return ""
	}
	return strings.TrimRight(tok.Server, "/")
}

// serverTLS is the TLS configuration for reaching endpoint: none for plain
// HTTP on loopback, the CA pinned by the join token for https. Plain HTTP
// off loopback is refused: nothing would prove who the server is.
func serverTLS(endpoint, pin string) (*tls.Config, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("server URL %q is not a URL like https://HOST:PORT", endpoint))
	}
	switch {
	case u.Scheme == "https":
		if pin == "" {
			return nil, errdefs.InvalidArgument("server " + endpoint + " serves TLS but the join token pins no CA; create the token on that server with 'berth token create'")
		}
		return tlsca.PinnedClientConfig(pin, u.Hostname())
	case tlsca.IsLoopback(u.Hostname()):
		return nil, nil
	}
	return nil, errdefs.InvalidArgument("server " + endpoint + " is plain HTTP off loopback: nothing proves who answers; run the server on a non-loopback --listen address (it then serves TLS) and create a new token")
}

// httpClient reaches endpoint as serverTLS says, keeping up to conns idle
// connections (0: net/http's default).
func httpClient(endpoint, pin string, conns int) (*http.Client, *tls.Config, error) {
	tc, err := serverTLS(endpoint, pin)
	if err != nil {
		return nil, nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if conns > 0 {
		tr.MaxIdleConns = max(tr.MaxIdleConns, 2*conns)
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, conns)
	}
	if tc != nil {
		// net/http adds "h2" to the config it is given; the WebSocket
		// dialer must not offer it, so each gets its own copy.
		tr.TLSClientConfig = tc.Clone()
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: BufferBodies(tr)}, tc, nil
}

// newECSClient is the agent's ECS API client, signed with its identity.
func newECSClient(id state.Identity, hc *http.Client) *ecs.Client {
	creds := aws.Credentials{AccessKeyID: id.AccessKeyID, SecretAccessKey: id.SecretAccessKey, Source: "berth-agent"}
	return ecs.New(ecs.Options{
		Region:       id.Region,
		BaseEndpoint: aws.String(id.Endpoint),
		HTTPClient:   hc,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
	})
}

// register registers (or re-registers) the instance and stores its ARN.
func register(ctx context.Context, cfg Config, db *state.DB, client RegisterAPI, id state.Identity) (state.Instance, error) {
	host, err := DetectHost()
	if err != nil {
		return state.Instance{}, err
	}
	cluster := cfg.Agent.Cluster
	if cluster == "" || cluster == agentconfig.DefaultCluster && id.Cluster != "" {
		cluster = id.Cluster // the token's cluster unless ECS_CLUSTER names one
	}
	prev, ok, err := db.Instance()
	if err != nil {
		return state.Instance{}, err
	}
	existing := ""
	// A new identity cleared the record, so one that is left belongs to
	// this server, whatever address it has today.
	if ok && prev.Cluster == cluster {
		existing = prev.ContainerInstanceARN
	}
	in, err := RegistrationInput(cfg.Agent, host, cluster, existing)
	if err != nil {
		return state.Instance{}, err
	}
	var arn string
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		arn, err = Register(ctx, client, in)
		if err == nil || !retryable(err) {
			break
		}
		cfg.Logger.Warn("registration failed; retrying", "error", err, "in", delay)
		select {
		case <-ctx.Done():
			return state.Instance{}, ctx.Err()
		case <-time.After(delay):
		}
	}
	if err != nil {
		return state.Instance{}, err
	}
	inst := state.Instance{ContainerInstanceARN: arn, Cluster: cluster, Server: id.Endpoint, RegisteredAt: cfg.Clock.Now()}
	if ok && prev.ContainerInstanceARN == arn {
		inst.RegisteredAt = prev.RegisteredAt
	}
	return inst, db.SetInstance(inst)
}

// retryable reports whether a failed API call may succeed later: the
// server is unreachable or answered 5xx, not a refusal.
func retryable(err error) bool {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429
	}
	return !errors.Is(err, context.Canceled)
}

// openState opens the agent's state database under the data dir.
func openState(dataDir string) (*state.DB, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent data dir: %w", err)
	}
	return state.Open(filepath.Join(dataDir, "state.db"))
}

// BufferBodies wraps rt so that the transport gets its own copy of each
// request body. smithy-go closes a request body as soon as the response
// headers arrive; when a server on loopback answers before net/http's
// write loop has made its last read of the body, that read fails and the
// loop closes the connection under the response still being read ("use of
// closed network connection" on a 200, aws/aws-sdk-go-v2#2737), which the
// SDK then retries after a back-off. With a copy, the close reaches nothing
// the transport still reads.
func BufferBodies(rt http.RoundTripper) http.RoundTripper { return bufferedBodies{rt} }

type bufferedBodies struct{ rt http.RoundTripper }

func (b bufferedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return b.rt.RoundTrip(req)
	}
	data, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	cp := req.Clone(req.Context())
	cp.ContentLength = int64(len(data))
	cp.Body = io.NopCloser(bytes.NewReader(data))
	cp.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return b.rt.RoundTrip(cp)
}
