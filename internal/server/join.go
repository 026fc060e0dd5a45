package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/store"
)

// Limits on failed join attempts: 10 at once per remote address, then one
// more every 6 seconds; at most 4096 addresses tracked.
const (
	joinFailureBurst     = 10
	joinFailureEvery     = 6 * time.Second
	joinFailureAddresses = 4096
)

// agentJoin serves the two endpoints through which agents join: the admin
// mints a token (jointoken.TokensPath, SigV4) and an agent exchanges it for
// its own instance credentials (jointoken.JoinPath, the token is the
// credential). See docs/architecture/agent-join.md.
type agentJoin struct {
	store    store.Store
	account  account.Account
	verifier *sigv4.Verifier
	authz    iam.Authorizer
	clock    clock.Clock
	// endpoint is the server URL written into tokens that name none.
	endpoint string
	// caPin is the pin of the server's CA, written into every token; ""
	// while the server serves plain HTTP.
	caPin   string
	limiter *failureLimiter
	log     *slog.Logger
}

func (j *agentJoin) register(mux *http.ServeMux) {
	mux.HandleFunc(jointoken.TokensPath, j.createToken)
	mux.HandleFunc(jointoken.JoinPath, j.join)
}

func (j *agentJoin) createToken(w http.ResponseWriter, r *http.Request) {
	body, p, ok := signedPost(w, r, j.verifier, j.authz, iam.ActionCreateJoinToken)
	if !ok {
		return
	}
	var req jointoken.CreateRequest
	if err := decodeJSON(body, &req); err != nil {
		writeJoinError(w, err)
		return
	}
	if req.TTLSeconds < 0 || req.TTLSeconds > int64(account.MaxJoinTokenTTL/time.Second) {
		writeJoinError(w, errdefs.InvalidArgument(fmt.Sprintf("ttlSeconds must be between %d and %d",
			int64(account.MinJoinTokenTTL/time.Second), int64(account.MaxJoinTokenTTL/time.Second))))
		return
	}
	server := req.ServerURL
	if server == "" {
		server = j.endpoint
	}
	// Checked before anything is stored, so a bad URL leaves no record.
	if err := jointoken.ValidateServerURL(server); err != nil {
		writeJoinError(w, err)
		return
	}
	rec, secret, err := account.CreateJoinToken(r.Context(), j.store, req.Cluster, time.Duration(req.TTLSeconds)*time.Second, j.clock.Now())
	if err != nil {
		writeJoinError(w, err)
		return
	}
	tok, err := jointoken.Encode(jointoken.Token{Server: server, ID: rec.ID, Secret: secret, Cluster: rec.Cluster, CAPin: j.caPin})
	if err != nil {
		writeJoinError(w, err)
		return
	}
	j.log.Info("join token created", "token_id", rec.ID, "cluster", rec.Cluster, "expires", rec.ExpiresAt, "by", p.ARN)
	writeJoinJSON(w, jointoken.CreateResponse{Token: tok, TokenID: rec.ID, Cluster: rec.Cluster, ExpiresAt: rec.ExpiresAt})
}

func (j *agentJoin) join(w http.ResponseWriter, r *http.Request) {
	if !requirePost(w, r) {
		return
	}
	ip := remoteIP(r)
	if wait, ok := j.limiter.allow(ip); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeJoinError(w, &apierror.Error{Code: "ThrottlingException",
			Message: "Rate exceeded: too many failed join attempts from this address; try again later", HTTPStatus: http.StatusTooManyRequests})
		return
	}
	creds, tok, err := j.redeem(w, r)
	if err != nil {
		if !errors.Is(err, errdefs.ErrInternal) && !errors.Is(err, errdefs.ErrUnavailable) {
			j.limiter.fail(ip)
		}
		j.log.Warn("join refused", "remote", ip, "error", err)
		writeJoinError(w, err)
		return
	}
	j.log.Info("agent joined", "remote", ip, "user", creds.ARN, "cluster", creds.Cluster, "token_id", tok.ID)
	writeJoinJSON(w, jointoken.JoinResponse{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		AccountID: j.account.ID, Region: j.account.Region, Cluster: creds.Cluster,
		Endpoint: tok.Server, UserARN: creds.ARN,
	})
}

// redeem reads the join request and redeems its token. Every refusal is
// of kind errdefs.ErrAccessDenied or a client error of the framing.
func (j *agentJoin) redeem(w http.ResponseWriter, r *http.Request) (account.InstanceCredentials, jointoken.Token, error) {
	body, err := readLimited(w, r)
	if err != nil {
		return account.InstanceCredentials{}, jointoken.Token{}, err
	}
	var req jointoken.JoinRequest
	if err := decodeJSON(body, &req); err != nil {
		return account.InstanceCredentials{}, jointoken.Token{}, err
	}
	tok, err := jointoken.Parse(req.Token)
	if err != nil {
		return account.InstanceCredentials{}, jointoken.Token{}, errdefs.New(errdefs.ErrAccessDenied, errdefs.Message(err, "invalid join token"))
	}
	// The cluster comes from the server's record, not from the token's
	// (unsigned) copy of it.
	creds, err := account.RedeemJoinToken(r.Context(), j.store, j.account, tok.ID, tok.Secret, j.clock.Now())
	return creds, tok, err
}

func requirePost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", http.MethodPost)
	writeJoinError(w, &apierror.Error{Code: "MethodNotAllowed",
		Message: fmt.Sprintf("The HTTP method %s is not allowed.", r.Method), HTTPStatus: http.StatusMethodNotAllowed})
	return false
}

func readLimited(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := &apierror.Error{Code: "RequestEntityTooLarge",
		Message: fmt.Sprintf("Request body exceeds the limit of %d bytes.", jointoken.MaxRequestBytes), HTTPStatus: http.StatusRequestEntityTooLarge}
	if r.ContentLength > jointoken.MaxRequestBytes {
		return nil, tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, jointoken.MaxRequestBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, &apierror.Error{Code: "IncompleteBody", Message: "The request body could not be read.", HTTPStatus: http.StatusBadRequest}
	}
	return b, nil
}

// decodeJSON decodes a request body; an empty body is an empty object.
// Unknown fields are ignored, so newer clients can talk to older servers.
func decodeJSON(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apierror.Error{Code: "SerializationException", Message: "The request body is not a valid JSON object of the expected shape.", HTTPStatus: http.StatusBadRequest}
	}
	return nil
}

// writeJoinError answers in the awsJson error shape. Refusals are 403
// AccessDeniedException here (berth's own endpoints, where a refused token
// is a refused credential); everything else maps as on the AWS APIs.
func writeJoinError(w http.ResponseWriter, err error) {
	if errors.Is(err, errdefs.ErrAccessDenied) {
		err = &apierror.Error{Code: "AccessDeniedException", Message: errdefs.Message(err, "Access denied"), HTTPStatus: http.StatusForbidden}
	}
	(*awsjson.Service)(nil).WriteError(w, err)
}

func writeJoinJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeJoinError(w, errdefs.Internal(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // answers carry secrets
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// remoteIP is the address the connection comes from. Forwarding headers are
// ignored: anyone can set them, and the limit must hold per real peer.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// failureLimiter limits failed join attempts per remote address with a
// token bucket: burst failures at once, then one more per every. A
// success costs nothing. It tracks at most max addresses; when full,
// addresses whose bucket has refilled are dropped, and new addresses that
// still find no room share one bucket, so memory stays bounded whatever
// the number of peers.
type failureLimiter struct {
	clock clock.Clock
	burst float64
	every time.Duration
	max   int

	mu        sync.Mutex
	buckets   map[string]*bucket // guarded by mu
	lastSweep time.Time          // guarded by mu
}

type bucket struct {
	tokens float64
	at     time.Time
}

// overflowKey is the shared bucket of addresses that found the table full.
const overflowKey = ""

func newFailureLimiter(clk clock.Clock, burst int, every time.Duration, max int) *failureLimiter {
	return &failureLimiter{clock: clk, burst: float64(burst), every: every, max: max, buckets: make(map[string]*bucket)}
}

// refill brings b up to now and returns its tokens.
func (l *failureLimiter) refill(b *bucket, now time.Time) float64 {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+float64(d)/float64(l.every))
		b.at = now
	}
	return b.tokens
}

// allow reports whether ip may try now, and otherwise how long until it may.
func (l *failureLimiter) allow(ip string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) < l.max {
			return 0, true // an untracked address has a full bucket
		}
		if b, ok = l.buckets[overflowKey]; !ok {
			return 0, true
		}
	}
	t := l.refill(b, l.clock.Now())
	if t >= 1 {
		return 0, true
	}
	return time.Duration((1 - t) * float64(l.every)), false
}

// fail records one failed attempt from ip.
func (l *failureLimiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		key := ip
		if len(l.buckets) >= l.max {
			key = overflowKey
		}
		if b, ok = l.buckets[key]; !ok {
			b = &bucket{tokens: l.burst, at: now}
			l.buckets[key] = b
		}
	}
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// sweep drops the buckets that have refilled, at most once per every, so a
// table kept full by a flood does not cost a full scan per request.
func (l *failureLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.every {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if k != overflowKey && l.refill(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// signedPost reads a POST to one of berth's own endpoints: the body, the
// caller verified with SigV4 (service jointoken.SigningName) and
// authorized for action on "*". On failure it has answered, and ok is
// false.
func signedPost(w http.ResponseWriter, r *http.Request, v *sigv4.Verifier, authz iam.Authorizer, action string) (body []byte, p iam.Principal, ok bool) {
	if !requirePost(w, r) {
		return nil, p, false
	}
	body, err := readLimited(w, r)
	if err == nil {
		p, err = v.VerifyService(r.Context(), r, body, jointoken.SigningName)
	}
	if err == nil {
		err = authz.Authorize(r.Context(), p, action, "*")
	}
	if err != nil {
		writeJoinError(w, err)
		return nil, p, false
	}
	return body, p, true
}
