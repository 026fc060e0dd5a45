// Package acs serves the agent channel (docs/adr/0005-agent-channel.md,
// docs/architecture/agent-channel.md): the WebSocket at
// agentproto.ChannelPath through which each container instance's agent
// receives the tasks assigned to it. It authenticates the upgrade (SigV4,
// ecs:Poll), records agentConnected, sends a full Sync on connect and a
// Sync of the changed tasks for every store change, resends what is not
// acknowledged, and applies the container health agents report. One watch
// per server (the hub) feeds every connection, through bounded inboxes.
package acs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/arn"
	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
)

// SigningName is the service an agent signs the upgrade request for, and
// ActionPoll what it must be allowed, as for the ECS agent's ACS session.
const (
	SigningName = "ecs"
	ActionPoll  = "ecs:Poll"
)

// DefaultWriteTimeout bounds writing one frame to an agent.
const DefaultWriteTimeout = 10 * time.Second

// maxPending bounds the unacknowledged Syncs of one connection: beyond it
// they are replaced by one full Sync, which says everything they said.
const maxPending = 64

// Config configures a Server.
type Config struct {
	// Store serves reads (the server's watch-fed cache) and watches.
	Store store.Store
	// Instances resolves instances, records agentConnected, reads the
	// assigned tasks and applies health; it must use the same Store.
	Instances  ecsapi.Instances
	Verifier   *sigv4.Verifier
	Authorizer iam.Authorizer
	Clock      clock.Clock // nil: the wall clock
	Logger     *slog.Logger

	// Timings; zero means agentproto's (DefaultWriteTimeout for writes).
	// Tests shorten them.
	HeartbeatInterval time.Duration
	DisconnectAfter   time.Duration
	AckTimeout        time.Duration
	WriteTimeout      time.Duration

	// QueueLimit bounds the task changes queued for one connection while
	// it is busy (writing to a slow agent, say); past it the connection
	// drops them and sends a full Sync instead. Zero means
	// DefaultQueueLimit.
	QueueLimit int
}

// Server is the channel's HTTP handler and owner of its connections.
type Server struct {
	cfg      Config
	upgrader websocket.Upgrader

	ctx     context.Context // ends with Close; every connection derives from it
	cancel  context.CancelFunc
	wg      sync.WaitGroup // one per connection being served
	hub     *hub           // the one watch over the task records
	hubDone chan struct{}  // closed when the hub's goroutine has ended
	// defs holds each task definition decoded once for every connection.
	defs store.Memo[domain.TaskDefinitionRecord]

	mu     sync.Mutex
	closed bool             // guarded by mu
	slots  map[string]*slot // by cluster/instance id; guarded by mu
}

// slot is one instance's connections. gen names the newest connection;
// only it may mark the instance disconnected, so an old connection's
// cleanup cannot undo a reconnect.
type slot struct {
	gen    uint64             // guarded by Server.mu
	cancel context.CancelFunc // of the newest connection; guarded by Server.mu
	refs   int                // connections holding the slot; guarded by Server.mu
	// write serializes the agentConnected writes of the instance's
	// connections with their generation check.
	write sync.Mutex
}

// New returns a Server; it serves until Close.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Verifier == nil || cfg.Authorizer == nil || cfg.Instances.Store == nil {
		return nil, errdefs.InvalidArgument("acs: Store, Instances, Verifier and Authorizer are required")
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
	def(&cfg.AckTimeout, agentproto.AckTimeout)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = DefaultQueueLimit
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: cfg.WriteTimeout,
			// Agents send no Origin; a browser page that did would still
			// need a SigV4 signature, so the default check suffices.
		},
		ctx: ctx, cancel: cancel,
		hub:     newHub(cfg.Store, cfg.Logger, cfg.QueueLimit),
		hubDone: make(chan struct{}),
		slots:   map[string]*slot{},
	}
	go func() {
		defer close(s.hubDone)
		s.hub.run(ctx)
	}()
	return s, nil
}

// Close ends every connection (marking its instance disconnected) and
// waits for them; later upgrades are refused.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	<-s.hubDone
}

// taskDefinition reads one revision of a family through the shared memo;
// a revision no longer stored is the zero value, as the agent is told.
func (s *Server) taskDefinition(ctx context.Context, family string, revision int32) (types.TaskDefinition, error) {
	rec, _, err := s.defs.Get(ctx, s.cfg.Store, domain.TaskDefinitionKey(family, revision))
	if errors.Is(err, errdefs.ErrNotFound) {
		return types.TaskDefinition{}, nil
	}
	return rec.TaskDefinition, err
}

// Connected is the number of instances with an open channel.
func (s *Server) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.slots)
}

// ServeHTTP authenticates and upgrades one agent's channel, then serves it
// until either side ends it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, &apierror.Error{Code: "MethodNotAllowed",
			Message: fmt.Sprintf("The HTTP method %s is not allowed.", r.Method), HTTPStatus: http.StatusMethodNotAllowed})
		return
	}
	ci, p, err := s.admit(r)
	if err != nil {
		s.cfg.Logger.Warn("agent channel refused", "remote", r.RemoteAddr, "error", err)
		writeError(w, err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, errdefs.New(errdefs.ErrUnavailable, "the server is shutting down"))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	s.serve(ws, ci, p)
}

// admit checks the upgrade request: signature, ecs:Poll on the instance,
// and an instance that exists and is not INACTIVE.
func (s *Server) admit(r *http.Request) (domain.ContainerInstance, iam.Principal, error) {
	ctx := r.Context()
	p, err := s.cfg.Verifier.VerifyService(ctx, r, nil, SigningName)
	if err != nil {
		return domain.ContainerInstance{}, p, err
	}
	q := r.URL.Query()
	clusterRef, instanceRef := q.Get(agentproto.ParamCluster), q.Get(agentproto.ParamContainerInstance)
	if instanceRef == "" {
		return domain.ContainerInstance{}, p, errdefs.InvalidArgument("the " + agentproto.ParamContainerInstance + " parameter is required")
	}
	// Authorized before the instance is read, so that a caller without
	// ecs:Poll learns nothing about which instances exist.
	if err := s.cfg.Authorizer.Authorize(ctx, p, ActionPoll, s.resource(clusterRef, instanceRef)); err != nil {
		return domain.ContainerInstance{}, p, err
	}
	ci, err := s.cfg.Instances.Resolve(ctx, clusterRef, instanceRef)
	if err != nil {
		return ci, p, err
	}
	if ci.Status == domain.InstanceStatusInactive {
		return ci, p, errdefs.New(errdefs.ErrFailedPrecondition, fmt.Sprintf("container instance %s is INACTIVE (deregistered)", ci.ID))
	}
	return ci, p, nil
}

// resource is the ARN of the instance a request names, for authorization;
// "*" stands for a reference that names no instance of this account (the
// lookup then fails).
func (s *Server) resource(clusterRef, instanceRef string) string {
	if arn.IsARN(instanceRef) {
		return instanceRef
	}
	cluster := domain.DefaultClusterName
	if clusterRef != "" {
		name, ok := arn.ClusterName(clusterRef, s.cfg.Instances.Region, s.cfg.Instances.AccountID)
		if !ok {
			return "*"
		}
		cluster = name
	}
	return arn.ContainerInstance(s.cfg.Instances.Region, s.cfg.Instances.AccountID, cluster, instanceRef)
}

// writeError answers in the awsJson error shape; refusals are 403, as on
// berth's other agent endpoints.
func writeError(w http.ResponseWriter, err error) {
	if errors.Is(err, errdefs.ErrAccessDenied) {
		err = &apierror.Error{Code: "AccessDeniedException", Message: errdefs.Message(err, "Access denied"), HTTPStatus: http.StatusForbidden}
	}
	(*awsjson.Service)(nil).WriteError(w, err)
}

// serve runs one upgraded connection.
func (s *Server) serve(ws *websocket.Conn, ci domain.ContainerInstance, p iam.Principal) {
	key := ci.Cluster + "/" + ci.ID
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	sl, gen := s.acquire(key, cancel)
	defer s.release(key, sl)
	log := s.cfg.Logger.With("cluster", ci.Cluster, "instance", ci.ID, "remote", ws.RemoteAddr().String())

	if err := s.markConnected(ctx, sl, gen, ci, true); err != nil {
		log.Warn("agent channel: cannot mark the agent connected", "error", err)
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "cannot record the connection"), time.Now().Add(s.cfg.WriteTimeout))
		_ = ws.Close()
		return
	}
	log.Info("agent connected", "principal", p.ARN)
	c := newConn(s, ws, ci, log)
	err := c.run(ctx)
	_ = ws.Close()
	// The write outlives the connection's context (which Close cancels),
	// bounded on its own.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WriteTimeout)
	defer wcancel()
	if merr := s.markConnected(wctx, sl, gen, ci, false); merr != nil {
		log.Warn("agent channel: cannot mark the agent disconnected", "error", merr)
	}
	log.Info("agent disconnected", "reason", err)
}

// acquire makes the caller the newest connection of the instance, ending
// the previous one (its agent has reconnected), and returns its generation.
func (s *Server) acquire(key string, cancel context.CancelFunc) (*slot, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots[key]
	if sl == nil {
		sl = &slot{}
		s.slots[key] = sl
	}
	if sl.cancel != nil {
		sl.cancel()
	}
	sl.gen++
	sl.cancel = cancel
	sl.refs++
	return sl, sl.gen
}

func (s *Server) release(key string, sl *slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.refs--; sl.refs == 0 {
		delete(s.slots, key)
	}
}

// markConnected records connected for the instance if gen is still its
// newest connection.
func (s *Server) markConnected(ctx context.Context, sl *slot, gen uint64, ci domain.ContainerInstance, connected bool) error {
	sl.write.Lock()
	defer sl.write.Unlock()
	s.mu.Lock()
	current := sl.gen == gen
	s.mu.Unlock()
	if !current {
		if connected {
			return errdefs.New(errdefs.ErrConflict, "a newer connection of the instance has replaced this one")
		}
		return nil
	}
	return s.cfg.Instances.SetAgentConnected(ctx, ci.Cluster, ci.ID, connected)
}
