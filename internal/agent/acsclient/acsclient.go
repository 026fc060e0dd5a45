// Package acsclient is the agent's end of the agent channel
// (docs/architecture/agent-channel.md): it keeps a SigV4-signed WebSocket
// to the server open, hands every Sync to the agent's handler and
// acknowledges it once handled, sends heartbeats and container health, and
// reconnects with back-off whenever the server goes away.
package acsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
)

// SigningName is the service the upgrade request is signed for.
const SigningName = "ecs"

// Defaults of the timings that agentproto does not fix.
const (
	DefaultDialTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMinBackoff   = 250 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
)

// emptyPayloadHash is the SHA-256 of the upgrade request's empty body.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// syncQueue is how many received Syncs may wait for the handler before the
// reader waits too.
const syncQueue = 16

// ErrNotConnected is returned by SendHealth while the channel is down.
var ErrNotConnected = fmt.Errorf("acsclient: the agent channel is not connected: %w", errdefs.ErrUnavailable)

// Handler applies the tasks of one Sync. full means tasks is every task
// assigned to the instance (agentproto.Sync). The Sync is acknowledged
// only when Handler returns nil; otherwise the server sends it again.
// Calls are sequential, in the order the Syncs arrived.
type Handler func(ctx context.Context, tasks []agentproto.Task, full bool) error

// Config configures a Client.
type Config struct {
	// Endpoint is the server's URL (http:// or https://); the channel is
	// at agentproto.ChannelPath on it (ws:// or wss://).
	Endpoint          string
	Cluster           string // name or ARN
	ContainerInstance string // ARN or id
	Region            string
	Credentials       aws.CredentialsProvider
	Handler           Handler
	// OnConnect, when set, runs in its own goroutine after every connect,
	// with a context that ends with the connection: the place to send
	// every task's current health again.
	OnConnect func(ctx context.Context)
	// OnError, when set, is told why each connection failed or ended
	// (Run also logs it), e.g. an errdefs.ErrAccessDenied refusal.
	OnError func(err error)

	// TLSConfig is used for wss:// (e.g. to pin the server's CA).
	TLSConfig *tls.Config
	// NetDialContext, when set, opens the TCP connection.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds connecting and the upgrade handshake.
	DialTimeout time.Duration

	Clock  clock.Clock // nil: the wall clock; used for signing and heartbeats
	Logger *slog.Logger

	// Timings; zero means agentproto's and the defaults above.
	HeartbeatInterval time.Duration
	DisconnectAfter   time.Duration
	WriteTimeout      time.Duration
	MinBackoff        time.Duration
	MaxBackoff        time.Duration
}

// Client is the agent's channel. Run it once; SendHealth and Connected may
// be called from any goroutine.
type Client struct {
	cfg    Config
	url    *url.URL // ws(s)://…/agent/v1/channel?cluster=…&containerInstance=…
	dialer *websocket.Dialer
	signer *v4.Signer

	mu   sync.Mutex
	sess *session // the open connection; nil while down; guarded by mu
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Handler == nil || cfg.Credentials == nil || cfg.Region == "" || cfg.ContainerInstance == "" {
		return nil, errdefs.InvalidArgument("acsclient: Handler, Credentials, Region and ContainerInstance are required")
	}
	u, err := ChannelURL(cfg.Endpoint, cfg.Cluster, cfg.ContainerInstance)
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HeartbeatInterval, agentproto.HeartbeatInterval)
	def(&cfg.DisconnectAfter, agentproto.DisconnectAfter)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	return &Client{
		cfg: cfg,
		url: u,
		dialer: &websocket.Dialer{
			NetDialContext:   cfg.NetDialContext,
			TLSClientConfig:  cfg.TLSConfig,
			HandshakeTimeout: cfg.DialTimeout,
		},
		signer: v4.NewSigner(),
	}, nil
}

// ChannelURL is the channel's URL on the server at endpoint: http becomes
// ws and https wss.
func ChannelURL(endpoint, cluster, containerInstance string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("acsclient: endpoint %q is not an absolute URL", endpoint))
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, errdefs.InvalidArgument(fmt.Sprintf("acsclient: endpoint %q: scheme must be http or https", endpoint))
	}
	q := url.Values{}
	if cluster != "" {
		q.Set(agentproto.ParamCluster, cluster)
	}
	q.Set(agentproto.ParamContainerInstance, containerInstance)
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/") + agentproto.ChannelPath, RawQuery: q.Encode()}, nil
}

// Connected reports whether the channel is open.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// SendHealth sends the health of a task's containers. It does not queue
// while the channel is down (ErrNotConnected): OnConnect sends everything
// again on the next connection.
func (c *Client) SendHealth(ctx context.Context, h agentproto.Health) error {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return ErrNotConnected
	}
	return s.send(ctx, agentproto.Message{Type: agentproto.TypeHealth, Health: &h})
}

// Run keeps the channel open until ctx ends, reconnecting with capped
// exponential back-off and jitter. It returns nil when ctx ends.
func (c *Client) Run(ctx context.Context) error {
	failures := 0
	for {
		connected, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			failures = 0
		}
		wait := backoff(c.cfg.MinBackoff, c.cfg.MaxBackoff, failures, rand.Float64())
		failures++
		c.cfg.Logger.Warn("agent channel down; reconnecting", "error", err, "in", wait)
		if c.cfg.OnError != nil {
			c.cfg.OnError(err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the wait before attempt failures+1: lo doubled per failure,
// capped at hi, then jittered down by up to half (r in [0,1)) so agents
// that lost one server do not all return at once.
func backoff(lo, hi time.Duration, failures int, r float64) time.Duration {
	d := lo
	for i := 0; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(r*float64(d/2))
}

// connect opens one connection and serves it until it fails; connected
// says whether the upgrade succeeded.
func (c *Client) connect(ctx context.Context) (connected bool, err error) {
	header, err := c.sign(ctx)
	if err != nil {
		return false, err
	}
	ws, resp, err := c.dialer.DialContext(ctx, c.url.String(), header)
	if err != nil {
		return false, dialError(err, resp)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	c.cfg.Logger.Info("agent channel connected", "url", c.url.Redacted())
	return true, c.serve(ctx, ws)
}

// sign returns the headers of a SigV4-signed GET of the channel URL, as
// the server will see it (http(s) in place of ws(s)).
func (c *Client) sign(ctx context.Context) (http.Header, error) {
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	u := *c.url
	u.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if err := c.signer.SignHTTP(ctx, creds, req, emptyPayloadHash, SigningName, c.cfg.Region, c.cfg.Clock.Now()); err != nil {
		return nil, fmt.Errorf("sign the channel request: %w", err)
	}
	h := http.Header{}
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := req.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	return h, nil
}

// dialError says why an upgrade failed, with the server's answer when it
// gave one (e.g. 403 AccessDeniedException and its message).
func dialError(err error, resp *http.Response) error {
	if resp == nil {
		return fmt.Errorf("dial the agent channel: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	kind := errdefs.ErrUnavailable
	switch resp.StatusCode {
	case http.StatusForbidden, http.StatusUnauthorized:
		kind = errdefs.ErrAccessDenied
	case http.StatusBadRequest, http.StatusNotFound:
		kind = errdefs.ErrInvalidArgument
	}
	return &errdefs.Error{Kind: kind, Message: fmt.Sprintf("agent channel refused: %s: %s", resp.Status, strings.TrimSpace(string(b))), Cause: err}
}

// session is one open connection: what SendHealth and the handler write
// through.
type session struct {
	out     chan []byte   // encoded frames for the writer
	done    chan struct{} // closed when the connection ends
	timeout time.Duration
}

func (s *session) send(ctx context.Context, m agentproto.Message) error {
	b, err := agentproto.Encode(m)
	if err != nil {
		return err
	}
	select {
	case s.out <- b:
		return nil
	case <-s.done:
		return ErrNotConnected
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve runs the connection's reader, writer, handler and OnConnect
// goroutines until one fails or ctx ends, then closes the socket and waits
// for all of them.
func (c *Client) serve(ctx context.Context, ws *websocket.Conn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	s := &session{out: make(chan []byte, syncQueue), done: make(chan struct{}), timeout: c.cfg.WriteTimeout}
	syncs := make(chan agentproto.Message, syncQueue)
	ws.SetReadLimit(agentproto.MaxMessageBytes)

	var wg sync.WaitGroup
	writerDone := make(chan struct{})
	wg.Go(func() { cancel(c.read(ctx, ws, syncs)) })
	go func() {
		defer close(writerDone)
		cancel(c.write(ctx, ws, s))
	}()
	wg.Go(func() { c.handle(ctx, s, syncs) })
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	if c.cfg.OnConnect != nil {
		wg.Go(func() { c.cfg.OnConnect(ctx) })
	}

	<-ctx.Done()
	c.mu.Lock()
	c.sess = nil
	c.mu.Unlock()
	close(s.done)
	// A write stuck on a dead peer gives up within a second.
	_ = ws.UnderlyingConn().SetWriteDeadline(time.Now().Add(time.Second))
	<-writerDone   // it says goodbye first, bounded by a second
	_ = ws.Close() // ends a read in progress
	wg.Wait()
	return context.Cause(ctx)
}

// read reads frames until the connection fails or the server is silent
// for DisconnectAfter (it sends a heartbeat every HeartbeatInterval).
func (c *Client) read(ctx context.Context, ws *websocket.Conn, syncs chan<- agentproto.Message) error {
	for {
		if err := ws.SetReadDeadline(time.Now().Add(c.cfg.DisconnectAfter)); err != nil {
			return err
		}
		typ, b, err := ws.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("server silent for %s: %w", c.cfg.DisconnectAfter, err)
			}
			return fmt.Errorf("read: %w", err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		m, err := agentproto.Decode(b)
		if err != nil {
			c.cfg.Logger.Warn("agent channel: malformed frame ignored", "error", err)
			continue
		}
		if m.Type != agentproto.TypeSync {
			continue // a heartbeat: the deadline above is its effect
		}
		select {
		case syncs <- m:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// write sends queued frames and a heartbeat every HeartbeatInterval, each
// within WriteTimeout.
func (c *Client) write(ctx context.Context, ws *websocket.Conn, s *session) error {
	tick := time.NewTicker(c.cfg.HeartbeatInterval)
	defer tick.Stop()
	put := func(b []byte) error {
		if err := ws.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
			return err
		}
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return nil
	}
	for {
		var b []byte
		select {
		case <-ctx.Done():
			// Say goodbye; the server then frees the instance at once.
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return context.Cause(ctx)
		case b = <-s.out:
		case <-tick.C:
			var err error
			if b, err = agentproto.Encode(agentproto.Message{Type: agentproto.TypeHeartbeat, Heartbeat: &agentproto.Heartbeat{SentAt: c.cfg.Clock.Now().UTC()}}); err != nil {
				return err
			}
		}
		if err := put(b); err != nil {
			return err
		}
	}
}

// handle applies Syncs in order and acknowledges each that the handler
// accepted.
func (c *Client) handle(ctx context.Context, s *session, syncs <-chan agentproto.Message) {
	for {
		var m agentproto.Message
		select {
		case <-ctx.Done():
			return
		case m = <-syncs:
		}
		if err := c.cfg.Handler(ctx, m.Sync.Tasks, m.Sync.Full); err != nil {
			if ctx.Err() == nil {
				c.cfg.Logger.Warn("agent channel: sync not applied; the server will send it again", "id", m.ID, "error", err)
			}
			continue
		}
		if err := s.send(ctx, agentproto.Message{Type: agentproto.TypeAck, ID: m.ID, Ack: &agentproto.Ack{}}); err != nil {
			return
		}
	}
}
