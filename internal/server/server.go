// Package server is the composition root of berth's control plane: it opens
// the state store (embedded etcd, or an external cluster), the watch-fed
// cache, bootstraps the account, builds the AWS API router with every
// service, and serves HTTP (HTTPS off loopback) until its context ends.
// Nothing else wires packages together.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/acs"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/controller/ecrlifecycle"
	"github.com/berth-dev/berth/internal/controller/leader"
	servicectl "github.com/berth-dev/berth/internal/controller/service"
	"github.com/berth-dev/berth/internal/controller/taskreaper"
	"github.com/berth-dev/berth/internal/ecrapi"
	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/watchcache"
	"github.com/berth-dev/berth/internal/tlsca"
)

// Server is a running control plane.
type Server struct {
	cfg      config.Server
	log      *slog.Logger
	account  account.Account
	files    account.Files
	endpoint string
	// caPin is the pin of the CA whose certificate the listener serves;
	// "" on a plain-HTTP (loopback) listener.
	caPin string

	listener  net.Listener
	http      *http.Server
	reaper    *taskreaper.Reaper
	services  *servicectl.Controller
	registry  *registry.Registry
	lifecycle *ecrlifecycle.Sweeper
	store     store.Store // the cached store
	id        string      // this server's id (DATA/server-id)
	backend   *backend
	cache     *watchcache.Cache
	channel   *acs.Server // the agent channel; owns its connections
}

// Start opens the store, bootstraps the account and starts listening. The
// caller must call Run (which serves until ctx ends) or Close.
func Start(ctx context.Context, cfg config.Server, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s := &Server{cfg: cfg, log: log, files: account.FilesIn(cfg.DataDir)}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	var err error
	if s.backend, err = openBackend(ctx, cfg, log); err != nil {
		return nil, err
	}
	if s.cache, err = watchcache.New(ctx, s.backend.store, "/"); err != nil {
		return nil, fmt.Errorf("start cache: %w", err)
	}
	st := watchcache.NewCachedStore(s.backend.store, s.cache)
	s.store = st
	if s.id, err = serverID(cfg.DataDir); err != nil {
		return nil, err
	}

	clk := clock.Real{}
	if s.account, err = account.Bootstrap(ctx, st, cfg.Region, clk.Now()); err != nil {
		return nil, err
	}
	// The CA exists from the first start on, whatever the listener, so
	// its pin does not depend on when TLS was first switched on.
	ca, err := tlsca.LoadOrCreate(filepath.Join(cfg.DataDir, "tls"), clk.Now())
	if err != nil {
		return nil, fmt.Errorf("certificate authority: %w", err)
	}
	if s.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	tlsConfig, err := s.secureListener(ca, clk)
	if err != nil {
		return nil, err
	}
	key, err := account.AdminKey(ctx, st, s.account)
	if err != nil {
		return nil, fmt.Errorf("read admin key: %w", err)
	}
	var owner *account.Owner
	if o := cfg.FilesOwner; o != nil {
		owner = &account.Owner{UID: o.UID, GID: o.GID}
	}
	if err := account.WriteProfileFiles(s.files, s.account, key, s.endpoint, owner); err != nil {
		return nil, fmt.Errorf("write shared AWS files: %w", err)
	}

	reg := newRegistry()
	authz := iam.Builtin{AdminARN: s.account.AdminARN(), InstanceARNPrefix: iam.InstanceARNPrefix(s.account.ID)}
	// One verifier (and its signing-key cache) for the AWS APIs and the
	// agent endpoints.
	verifier := &sigv4.Verifier{
		Creds:  account.NewKeys(st, s.account),
		Clock:  clk,
		Region: s.account.Region,
	}
	// The registry (ECR) on the same listener: /v2/ for clients, the ECR
	// API among the AWS APIs. Its token key lives in the store, so every
	// server sharing it accepts the same tokens.
	tokenKey, err := registryTokenKey(ctx, st)
	if err != nil {
		return nil, err
	}
	registryHost, registryScheme := endpointHostScheme(s.endpoint)
	if s.registry, err = registry.New(registry.Config{
		RootDirectory: filepath.Join(cfg.DataDir, "registry"),
		AccountID:     s.account.ID, Region: s.account.Region, Host: registryHost,
		TokenKey: tokenKey, SigV4: verifier,
		Authorizer: authz, Repositories: ecrapi.Repositories{Store: st},
		Clock: clk, Logger: log,
	}); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	s.lifecycle = ecrlifecycle.New(ecrlifecycle.Config{Store: st, Images: s.registry, Clock: clk, Logger: log})
	router := &awsapi.Router{
		Verifier: verifier,
		JSON: []*awsjson.Service{ecsapi.New(ecsapi.Config{
			Store: st, Authorizer: authz, Clock: clk,
			Region: s.account.Region, AccountID: s.account.ID, Logger: log,
			Endpoint: s.endpoint, RegistryHosts: []string{registryHost},
		}), ecrapi.New(ecrapi.Config{
			Store: st, Authorizer: authz, Images: s.registry, Clock: clk,
			Region: s.account.Region, AccountID: s.account.ID, Logger: log,
			RegistryHost: registryHost, RegistryScheme: registryScheme, TokenKey: tokenKey,
		})},
		MaxBodyBytes: cfg.MaxBodyBytes,
		Metrics:      newAPIMetrics(reg),
		Logger:       log,
	}
	s.reaper = taskreaper.New(taskreaper.Config{Store: st, Clock: clk, Logger: log})
	s.services = servicectl.New(servicectl.Config{
		Store: st, Clock: clk, Logger: log,
		Launcher: ecsapi.NewServiceTasks(ecsapi.Config{
			Store: st, Authorizer: authz, Clock: clk,
			Region: s.account.Region, AccountID: s.account.ID, Logger: log,
		}),
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	(&agentJoin{
		store: st, account: s.account, verifier: verifier, authz: authz, clock: clk,
		endpoint: s.endpoint, caPin: s.caPin, limiter: newFailureLimiter(clk, joinFailureBurst, joinFailureEvery, joinFailureAddresses),
		log: log,
	}).register(mux)
	(&explainPlacement{verifier: verifier, explainer: ecsapi.NewExplainer(ecsapi.Config{Store: st, Authorizer: authz, Clock: clk, Region: s.account.Region, AccountID: s.account.ID, Logger: log})}).register(mux)
	if s.channel, err = acs.New(acs.Config{
		Store:      st,
		Instances:  ecsapi.Instances{Store: st, Clock: clk, Region: s.account.Region, AccountID: s.account.ID},
		Verifier:   verifier,
		Authorizer: authz,
		Clock:      clk,
		Logger:     log,
	}); err != nil {
		return nil, err
	}
	channel := s.channel
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "berth", Subsystem: "agent_channel", Name: "connected",
		Help: "Container instances whose agent has the channel open on this server.",
	}, func() float64 { return float64(channel.Connected()) }))
	mux.Handle(agentproto.ChannelPath, s.channel)
	mux.Handle("/v2/", s.registry)
	(&registryGC{verifier: verifier, authz: authz, registry: s.registry}).register(mux)
	mux.Handle("/", router)
	s.http = &http.Server{
		Handler:           mux,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second, // bounds TLS handshakes too
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ok = true
	return s, nil
}

// secureListener decides between plain HTTP and TLS for the listener and
// sets the endpoint URL. Loopback listeners (127.0.0.0/8, ::1, localhost)
// serve plain HTTP: only this machine reaches them. Every other listener
// serves TLS with a certificate from the data directory's CA, for the
// listen host or, on a wildcard, every address of the machine; then join
// tokens carry the CA's pin and DATA/config names the CA as ca_bundle.
// It returns nil for plain HTTP.
func (s *Server) secureListener(ca *tlsca.CA, clk clock.Clock) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(s.cfg.Listen)
	_, port, _ := net.SplitHostPort(s.listener.Addr().String())
	if tlsca.IsLoopback(host) {
		s.endpoint = "http://" + s.listener.Addr().String()
		return nil, nil
	}
	hosts, err := tlsca.ListenerHosts(host)
	if err != nil {
		return nil, err
	}
	conf, err := ca.ServerConfig(hosts, clk)
	if err != nil {
		return nil, fmt.Errorf("issue the server certificate: %w", err)
	}
	s.endpoint = "https://" + net.JoinHostPort(endpointHost(host, hosts), port)
	s.caPin = ca.Pin()
	s.files.CABundle = ca.CertPath()
	return conf, nil
}

// endpointHost is the host of the endpoint URL: the listen host itself or,
// for a wildcard listener, the machine's first IPv4 address (else its
// first address, else 127.0.0.1), so that tokens name an address other
// machines may reach. `--listen HOST:PORT` or `berth token create
// --server-url` choose another.
func endpointHost(listenHost string, hosts []string) string {
	if !tlsca.IsWildcard(listenHost) {
		return strings.Trim(listenHost, "[]")
	}
	first := ""
	for _, h := range hosts {
		ip := net.ParseIP(h)
		if ip == nil || ip.IsLoopback() {
			continue
		}
		if ip.To4() != nil {
			return h
		}
		if first == "" {
			first = h
		}
	}
	if first == "" {
		return "127.0.0.1"
	}
	return first
}

// Endpoint is the URL clients use, e.g. http://127.0.0.1:7400 or, off
// loopback, https://10.0.0.5:7400.
func (s *Server) Endpoint() string { return s.endpoint }

// CAPin is the pin (jointoken.CAPin format) of the CA the listener's
// certificate chains to, for a client in this process that talks to
// Endpoint (tlsca.PinnedClientConfig); "" when the listener serves plain
// HTTP.
func (s *Server) CAPin() string { return s.caPin }

// Account is the account this server serves.
func (s *Server) Account() account.Account { return s.account }

// Files are the shared AWS files written into the data directory.
func (s *Server) Files() account.Files { return s.files }

// Run serves until ctx ends, then shuts down gracefully: in-flight requests
// finish (up to 15 s), agent channels close, then the cache, the store and
// embedded etcd close.
// Every acknowledged write is already durable in etcd's WAL.
func (s *Server) Run(ctx context.Context) error {
	serveErr := make(chan error, 1)
	go func() {
		if s.http.TLSConfig != nil {
			serveErr <- s.http.ServeTLS(s.listener, "", "") // the certificate comes from TLSConfig
			return
		}
		serveErr <- s.http.Serve(s.listener)
	}()
	// Controllers run until ctx ends. The task reaper runs on every server
	// (its deletes are compare-and-swap and idempotent); the service
	// scheduler only on the holder of its lease (DESIGN.md §6).
	ctrlCtx, stopControllers := context.WithCancel(ctx)
	var controllers sync.WaitGroup
	controllers.Go(func() {
		if err := s.reaper.Run(ctrlCtx); err != nil && ctrlCtx.Err() == nil {
			s.log.Error("task reaper stopped", "err", err)
		}
	})
	// The service scheduler must run on one server at a time: it would
	// start tasks twice. The lease id is kept in the data directory, so a
	// restarted server takes its own lease back at once.
	controllers.Go(func() { s.lifecycle.Run(ctrlCtx) })
	if gc, err := s.registry.StartCollector(ctrlCtx, registryGCInterval); err != nil {
		s.log.Error("registry garbage collector not started", "err", err)
	} else {
		defer gc.Stop()
	}
	controllers.Go(func() {
		leader.Run(ctrlCtx, leader.Config{Store: s.store, Name: "service-controller", ID: s.id, Logger: s.log}, s.services.Run)
	})

	s.log.Info("berth API listening", "endpoint", s.endpoint, "account", s.account.ID, "region", s.account.Region, "ca_pin", s.caPin)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	case err = <-s.backend.failed():
		err = fmt.Errorf("embedded etcd failed: %w", err)
	}
	s.log.Info("shutting down")
	stopControllers()
	controllers.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if serr := s.http.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	if cerr := s.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases everything Start opened. Safe to call more than once.
func (s *Server) Close() error {
	var errs []error
	// Channels close first: their last act is to mark their instances
	// disconnected, which needs the store. http.Server.Shutdown does not
	// wait for them (they are hijacked connections).
	if s.channel != nil {
		s.channel.Close()
		s.channel = nil
	}
	if s.listener != nil && s.http == nil {
		errs = append(errs, s.listener.Close())
	}
	if s.registry != nil {
		errs = append(errs, s.registry.Close())
		s.registry = nil
	}
	if s.cache != nil {
		s.cache.Close()
		s.cache = nil
	}
	if s.backend != nil {
		errs = append(errs, s.backend.close())
		s.backend = nil
	}
	return errors.Join(errs...)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.backend.store.Revision(ctx); err != nil {
		http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// serverID reads this server's id from DATA/server-id, creating it on the
// first start.
func serverID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "server-id")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read server id: %w", err)
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	if err := atomicfile.Write(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write server id: %w", err)
	}
	return id, nil
}
