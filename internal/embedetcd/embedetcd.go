// Package embedetcd runs a single-member etcd inside the berth process: the
// state store of `berth up` and of a lone `berth server`.
//
// It owns only the server's lifecycle (start, readiness, fatal errors, stop);
// berth reads and writes through store/etcdstore over the client URL, exactly
// as it would against an external cluster. Listeners are loopback only: the
// client port carries no TLS and must not leave the machine.
package embedetcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults for the zero values of Config.
const (
	DefaultName                    = "berth"
	DefaultLogLevel                = "error"
	DefaultAutoCompactionMode      = "revision"
	DefaultAutoCompactionRetention = "10000"
	DefaultQuotaBackendBytes       = 2 << 30 // 2 GiB: etcd's own default, said out loud
	DefaultStartTimeout            = time.Minute
)

// Config configures the embedded member. Only Dir is required.
type Config struct {
	// Dir is etcd's data directory; created 0700 if absent. Restarting on
	// the same Dir keeps every key.
	Dir string
	// Name is the member name. Default DefaultName. Keep it stable across
	// restarts of one Dir.
	Name string
	// ClientURL and PeerURL are loopback URLs such as
	// "http://127.0.0.1:2379"; empty picks a free loopback port. Callers
	// that restart on the same Dir should persist the chosen URLs
	// (Server.ClientURL, Server.PeerURL) and pass them back.
	ClientURL, PeerURL string
	// LogLevel is etcd's zap level (debug, info, warn, error). Default
	// DefaultLogLevel: etcd is chatty and its info lines mean nothing to a
	// berth operator.
	LogLevel string
	// AutoCompactionMode is "revision" or "periodic", with
	// AutoCompactionRetention a revision count or a duration ("1h").
	// Defaults DefaultAutoCompactionMode / DefaultAutoCompactionRetention:
	// without compaction the database grows until the quota alarm.
	AutoCompactionMode      string
	AutoCompactionRetention string
	// QuotaBackendBytes bounds the database. Default DefaultQuotaBackendBytes.
	QuotaBackendBytes int64
	// MaxTxnOps bounds the ops (and, separately, the conditions) of one
	// transaction. 0 keeps etcd's default, 128.
	MaxTxnOps uint
	// StartTimeout bounds the wait for the member to become ready.
	// Default DefaultStartTimeout.
	StartTimeout time.Duration
	// UnsafeNoFsync turns off fsync. Tests only: a crash loses writes.
	UnsafeNoFsync bool
}

// Server is a running embedded etcd member.
type Server struct {
	etcd      *embed.Etcd
	closing   *atomic.Bool
	clientURL string
	peerURL   string
	closeOnce sync.Once
}

// Start starts the member and waits until it serves clients. ctx bounds
// only the start; the server runs until Close.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedetcd: Dir is required")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedetcd: start: %w", err)
	}
	// Ports we pick ourselves can be taken by someone else between the
	// probe and etcd's bind; try again with fresh ones in that case.
	pick := cfg.ClientURL == "" || cfg.PeerURL == ""
	attempts := 1
	if pick {
		attempts = 3
	}
	var err error
	for range attempts {
		var s *Server
		s, err = start(ctx, cfg)
		if err == nil {
			return s, nil
		}
		if !pick || !errors.Is(err, syscall.EADDRINUSE) || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func start(ctx context.Context, cfg Config) (*Server, error) {
	clientURL, err := loopbackURL(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: client URL: %w", err)
	}
	peerURL, err := loopbackURL(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: peer URL: %w", err)
	}
	if clientURL.Host == peerURL.Host {
		return nil, fmt.Errorf("embedetcd: client and peer URL share %s", clientURL.Host)
	}

	ec := embed.NewConfig()
	ec.Dir = cfg.Dir
	ec.Name = or(cfg.Name, DefaultName)
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	// A fresh Dir bootstraps a new one-member cluster; an existing one
	// restarts from its WAL and ignores the bootstrap settings.
	ec.ClusterState = embed.ClusterStateFlagNew
	ec.InitialClusterToken = "berth-" + ec.Name
	ec.LogLevel = or(cfg.LogLevel, DefaultLogLevel)
	closing := new(atomic.Bool)
	lg, err := newLogger(ec.LogLevel, closing)
	if err != nil {
		return nil, err
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	ec.AutoCompactionMode = or(cfg.AutoCompactionMode, DefaultAutoCompactionMode)
	ec.AutoCompactionRetention = or(cfg.AutoCompactionRetention, DefaultAutoCompactionRetention)
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	if ec.QuotaBackendBytes == 0 {
		ec.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if cfg.MaxTxnOps != 0 {
		ec.MaxTxnOps = cfg.MaxTxnOps
	}
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	// berth speaks gRPC only; the JSON gateway would be one more surface.
	ec.EnableGRPCGateway = false

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: start: %w", err)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("embedetcd: start: %w", err)
	case <-timer.C:
		closing.Store(true)
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedetcd: not ready after %s", timeout)
	case <-ctx.Done():
		closing.Store(true)
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedetcd: start: %w", ctx.Err())
	}
	return &Server{etcd: e, closing: closing, clientURL: clientURL.String(), peerURL: peerURL.String()}, nil
}

// Endpoints are the client endpoints to give store/etcdstore.
func (s *Server) Endpoints() []string { return []string{s.clientURL} }

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.clientURL }

// PeerURL is the member's peer URL.
func (s *Server) PeerURL() string { return s.peerURL }

// Err reports fatal errors of the running member; the server is unusable
// after one arrives.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the member gracefully. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.etcd.Close()
	})
	return nil
}

// newLogger builds etcd's zap logger at level. Once closing is set it
// drops everything: etcd logs its own orderly shutdown ("server closed",
// "use of closed network connection") at error level.
func newLogger(level string, closing *atomic.Bool) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	zc.DisableStacktrace = true
	zc.OutputPaths = []string{"stderr"}
	zc.ErrorOutputPaths = []string{"stderr"}
	lg, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("embedetcd: logger: %w", err)
	}
	return lg.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return quietCore{Core: c, closing: closing}
	})), nil
}

// quietCore mutes a zap core while the server closes.
type quietCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{Core: c.Core.With(fields), closing: c.closing}
}

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closing.Load() {
		return ce
	}
	return c.Core.Check(e, ce)
}

// loopbackURL parses an explicit http URL on a loopback address, or picks a
// free loopback port when raw is empty.
func loopbackURL(raw string) (*url.URL, error) {
	if raw == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		return &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%q: scheme must be http (the embedded member listens on loopback only)", raw)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", raw, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%q: host must be a loopback address", raw)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("%q: port must be 1-65535", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q: only scheme, host and port are allowed", raw)
	}
	return &url.URL{Scheme: "http", Host: u.Host}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
