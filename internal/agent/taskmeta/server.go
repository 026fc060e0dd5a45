package taskmeta

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// shutdownGrace is how long Close lets requests in flight finish.
const shutdownGrace = 5 * time.Second

// Server serves a handler (Handler, or a mux that also holds the
// credentials endpoint) on one address. Start listens and serves on a
// goroutine the Server owns; Close, or the end of Start's context, shuts
// it down gracefully, and Close waits for it.
type Server struct {
	addr    string
	handler http.Handler

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	done    chan struct{} // closed when the serving goroutine has returned
	stop    context.CancelFunc
	err     error // from Serve, other than ErrServerClosed
	started bool
}

// NewServer returns a server for addr ("169.254.170.2:80" in production,
// "127.0.0.1:0" in tests).
func NewServer(addr string, handler http.Handler) *Server {
	return &Server{addr: addr, handler: handler}
}

// Start listens on the address and serves until ctx ends or Close is
// called. It returns once the listener is open.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errdefs.New(errdefs.ErrFailedPrecondition, "task metadata server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "task metadata endpoint: listening on " + s.addr, Cause: err}
	}
	s.started = true
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	ctx, stop := context.WithCancel(ctx)
	s.stop = stop
	s.done = make(chan struct{})
	serveDone := make(chan struct{})
	go func() {
		defer close(s.done)
		go func() {
			defer close(serveDone)
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			}
		}()
		select {
		case <-ctx.Done():
		case <-serveDone:
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			_ = s.srv.Close()
		}
		<-serveDone
	}()
	return nil
}

// Addr is the address listened on (with the port chosen for ":0"), nil
// before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close shuts the server down, letting requests in flight finish (up to a
// few seconds), and waits for it. It returns the error that stopped
// serving early, if any.
func (s *Server) Close() error {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
