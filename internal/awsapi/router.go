package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/awsquery"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultMaxBodyBytes is the request body limit when Router.MaxBodyBytes is
// zero: 10 MiB, above the largest legitimate control-plane request (a
// RegisterTaskDefinition with many containers is well under 1 MiB; IAM
// policy documents are capped at 10 KiB) and small enough that a stream of
// oversized requests cannot exhaust memory.
const DefaultMaxBodyBytes = 10 << 20

// Observer receives one observation per request. service is the signing
// name of the service the request was routed to and action a known
// operation of it; either is "" when the request never got that far (so the
// label values stay a small, fixed set whatever clients send).
type Observer interface {
	ObserveRequest(service, action string, status int, d time.Duration)
}

// Router is the http.Handler for every AWS-compatible API. It reads the
// request, identifies the service and protocol (X-Amz-Target → awsJson;
// otherwise a form Action plus the SigV4 scope's service → awsQuery),
// verifies the signature, puts the principal and request id in the context
// and hands the request to the service. Set the fields, then do not change
// them once it serves requests.
type Router struct {
	Verifier *sigv4.Verifier // required: there is no anonymous access
	JSON     []*awsjson.Service
	Query    []*awsquery.Service
	// MaxBodyBytes caps the request body; zero means DefaultMaxBodyBytes.
	// Larger requests get 413 RequestEntityTooLarge.
	MaxBodyBytes int64
	Metrics      Observer     // optional
	Logger       *slog.Logger // nil means slog.Default()
	// NewRequestID returns a fresh request id; nil means a random UUID.
	NewRequestID func() string

	once      sync.Once
	setupErr  error
	byPrefix  map[string]*awsjson.Service
	bySigName map[string]*awsquery.Service
}

// Validate checks the configuration (a verifier, no two services answering
// to the same target prefix or signing name). ServeHTTP calls it on first
// use and answers 500 if it fails; call it at start-up to fail early.
func (rt *Router) Validate() error {
	rt.once.Do(func() { rt.setupErr = rt.setup() })
	return rt.setupErr
}

func (rt *Router) setup() error {
	if rt.Verifier == nil {
		return errors.New("awsapi: Router has no Verifier")
	}
	rt.byPrefix = make(map[string]*awsjson.Service, len(rt.JSON))
	for _, s := range rt.JSON {
		p := s.Prefix()
		if p == "" {
			return fmt.Errorf("awsapi: JSON service %q has no target prefix", s.SigningName)
		}
		if _, dup := rt.byPrefix[p]; dup {
			return fmt.Errorf("awsapi: two JSON services with target prefix %q", p)
		}
		rt.byPrefix[p] = s
	}
	rt.bySigName = make(map[string]*awsquery.Service, len(rt.Query))
	for _, s := range rt.Query {
		if s.SigningName == "" {
			return errors.New("awsapi: query service without a signing name")
		}
		if _, dup := rt.bySigName[s.SigningName]; dup {
			return fmt.Errorf("awsapi: two query services with signing name %q", s.SigningName)
		}
		rt.bySigName[s.SigningName] = s
	}
	return nil
}

// exchange is what the router learned about one request, for the log line
// and the metrics.
type exchange struct {
	id       string
	service  string
	action   string
	err      error
	writeErr func(error) // renders an error in the protocol identified so far
}

// ServeHTTP implements http.Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	x := &exchange{id: rt.newRequestID()}
	// Every response carries the id, errors included: the SDKs copy it into
	// ResponseMetadata.RequestId.
	sw.Header().Set("x-amzn-RequestId", x.id)
	x.writeErr = func(err error) { (*awsjson.Service)(nil).WriteError(sw, err) }
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			x.err = errdefs.Internal(fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			if !sw.wrote {
				x.writeErr(x.err)
			}
		}
		rt.finish(r.Context(), sw, x, time.Since(start))
	}()

	if err := rt.Validate(); err != nil {
		x.err = errdefs.Internal(err)
		x.writeErr(x.err)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		rt.serveJSON(sw, r, x, target)
		return
	}
	rt.serveQuery(sw, r, x)
}

func (rt *Router) serveJSON(w http.ResponseWriter, r *http.Request, x *exchange, target string) {
	prefix, name, _ := awsjson.SplitTarget(target)
	svc := rt.byPrefix[prefix]
	x.writeErr = func(err error) { svc.WriteError(w, err) }
	fail := func(err error) { x.err = err; x.writeErr(err) }
	if svc == nil {
		fail(awsjson.UnknownOperation(target))
		return
	}
	x.service = svc.SigningName
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(methodNotAllowed(r.Method))
		return
	}
	body, err := rt.readBody(w, r)
	if err != nil {
		fail(err)
		return
	}
	op, ok := svc.Operation(name)
	if !ok {
		fail(awsjson.UnknownOperation(target))
		return
	}
	x.action = op.Name
	p, err := rt.Verifier.VerifyService(r.Context(), r, body, svc.SigningName)
	if err != nil {
		fail(err)
		return
	}
	ctx := WithRequestID(WithPrincipal(r.Context(), p), x.id)
	x.err = svc.Handle(ctx, w, op, body)
}

func (rt *Router) serveQuery(w http.ResponseWriter, r *http.Request, x *exchange) {
	// Until the body is read only the signature scope can say which query
	// service this is; the error shape follows whatever is known.
	var svc *awsquery.Service
	if scope, ok := sigv4.Scope(r); ok {
		svc = rt.bySigName[scope.Service]
	}
	x.writeErr = func(err error) { svc.WriteError(w, x.id, err) }
	fail := func(err error) { x.err = err; x.writeErr(err) }
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		fail(methodNotAllowed(r.Method))
		return
	}
	body, err := rt.readBody(w, r)
	if err != nil {
		fail(err)
		return
	}
	params, err := awsquery.ParseRequest(r, body)
	if err != nil {
		fail(err)
		return
	}
	action := params.Action()
	if svc == nil {
		switch {
		case action == "" && r.Header.Get("Authorization") == "" && !r.URL.Query().Has("X-Amz-Signature"):
			// Neither a target, nor an action, nor a signature: nothing here
			// looks like an AWS request. Answer in the JSON shape, which is
			// the readable one for curl and browsers.
			x.writeErr = func(err error) { (*awsjson.Service)(nil).WriteError(w, err) }
			fail(awsjson.UnknownOperation(""))
		case action == "":
			fail(missingAction())
		default:
			// Let the verifier say what is wrong with the signature; a
			// valid one names a service berth does not serve.
			if _, err := rt.Verifier.Verify(r.Context(), r, body); err != nil {
				fail(err)
				return
			}
			fail(awsquery.InvalidAction(action, params.Version()))
		}
		return
	}
	x.service = svc.SigningName
	if action == "" {
		fail(missingAction())
		return
	}
	if _, err := svc.Resolve(params); err != nil {
		fail(err)
		return
	}
	x.action = action
	p, err := rt.Verifier.VerifyService(r.Context(), r, body, svc.SigningName)
	if err != nil {
		fail(err)
		return
	}
	ctx := WithRequestID(WithPrincipal(r.Context(), p), x.id)
	x.err = svc.Handle(ctx, w, x.id, params)
}

func methodNotAllowed(method string) error {
	return &apierror.Error{Code: "MethodNotAllowed", Message: fmt.Sprintf("The HTTP method %s is not allowed.", method),
		HTTPStatus: http.StatusMethodNotAllowed}
}

func missingAction() error {
	return &apierror.Error{Code: "MissingAction", Message: "Missing Action", HTTPStatus: http.StatusBadRequest}
}

// readBody reads the whole body, refusing more than MaxBodyBytes.
func (rt *Router) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := rt.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	tooLarge := &apierror.Error{Code: "RequestEntityTooLarge",
		Message: fmt.Sprintf("Request body exceeds the limit of %d bytes.", limit), HTTPStatus: http.StatusRequestEntityTooLarge}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, &apierror.Error{Code: "IncompleteBody", Message: "The request body could not be read.", HTTPStatus: http.StatusBadRequest}
	}
	return b, nil
}

func (rt *Router) finish(ctx context.Context, w *statusWriter, x *exchange, d time.Duration) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	if rt.Metrics != nil {
		rt.Metrics.ObserveRequest(x.service, x.action, status, d)
	}
	log := rt.Logger
	if log == nil {
		log = slog.Default()
	}
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.id),
		slog.String("service", x.service),
		slog.String("action", x.action),
		slog.Int("status", status),
		slog.Duration("duration", d),
	}
	if x.err != nil {
		attrs = append(attrs, slog.String("error", x.err.Error()))
	}
	log.LogAttrs(ctx, level, "aws request", attrs...)
}

func (rt *Router) newRequestID() string {
	if rt.NewRequestID != nil {
		return rt.NewRequestID()
	}
	return newUUID()
}

// newUUID returns a random (version 4) UUID, the form AWS request ids take.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// statusWriter remembers the status written, for the log and the metrics,
// and whether anything was written, so a panic can still be answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
