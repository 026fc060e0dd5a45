// Package sigv4 verifies AWS Signature Version 4 on the server side, for
// requests signed in the Authorization header and for presigned query
// strings. It rebuilds the canonical request from the received request
// (written here from the SigV4 specification rather than by re-signing with
// the SDK, so that verification stays cheap), derives the signing key from
// the secret the Credentials port returns, and compares in constant time.
// Failures carry one of the reason sentinels below, so each wire protocol
// can name AWS's exception; their messages are AWS's own.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	terminator      = "aws4_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"

	// DefaultMaxSkew is how far X-Amz-Date may be from the server's clock.
	DefaultMaxSkew = 5 * time.Minute
	// MaxPresignExpiry is the longest X-Amz-Expires AWS accepts: 7 days.
	MaxPresignExpiry = 7 * 24 * time.Hour
)

// Reasons, carried in errdefs.Error.Reason with kind
// errdefs.ErrUnauthenticated. Each protocol maps them to its exception names.
var (
	// ErrMissingAuth: neither an Authorization header nor X-Amz-Signature.
	ErrMissingAuth = errors.New("missing authentication token")
	// ErrIncompleteSignature: malformed header or query, missing parts, an
	// unsupported algorithm, no date.
	ErrIncompleteSignature = errors.New("incomplete signature")
	// ErrUnknownAccessKey: the access key (or session token) is not known.
	ErrUnknownAccessKey = errors.New("unknown access key")
	// ErrSignatureMismatch: the signature or the credential scope is wrong.
	ErrSignatureMismatch = errors.New("signature mismatch")
	// ErrExpired: the request date is outside the allowed skew, or a
	// presigned request has expired.
	ErrExpired = errors.New("signature expired")
)

// AWS's messages.
const (
	msgMissing    = "Missing Authentication Token"
	msgUnknownKey = "The security token included in the request is invalid."
	msgMismatch   = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

func authError(reason error, msg string) error {
	return errdefs.WithReason(errdefs.ErrUnauthenticated, reason, msg)
}

func incomplete(msg string) error { return authError(ErrIncompleteSignature, msg) }
func mismatch(msg string) error   { return authError(ErrSignatureMismatch, msg) }

// Credentials looks up the secret of an access key. It returns an error of
// kind errdefs.ErrNotFound for a key it does not know.
type Credentials interface {
	LookupAccessKey(ctx context.Context, accessKeyID string) (secret string, p iam.Principal, err error)
}

// SessionCredentials is implemented by a Credentials that also knows
// temporary (session) credentials. A request carrying X-Amz-Security-Token
// is verified through it; when the Credentials does not implement it, such a
// request is rejected as an unknown key rather than accepted on the strength
// of the access key alone.
type SessionCredentials interface {
	LookupSessionKey(ctx context.Context, accessKeyID, sessionToken string) (secret string, p iam.Principal, err error)
}

// Verifier checks SigV4 signatures. Set the exported fields before first
// use and do not copy it afterwards (it holds a key cache).
type Verifier struct {
	Creds Credentials
	Clock clock.Clock // nil means the wall clock
	// Region, when set, is the only region a credential scope may name.
	Region string
	// MaxSkew bounds the distance between X-Amz-Date and now; zero means
	// DefaultMaxSkew.
	MaxSkew time.Duration

	keys keyCache
}

// signed is what a request says about its own signature.
type signed struct {
	cred          Credential
	signedHeaders string
	signature     string
	amzDate       string // the timestamp line of the string to sign
	date          time.Time
	presigned     bool
	expires       time.Duration // presigned only, when hasExpires
	hasExpires    bool
	token         string
	query         []qpair
	declaredHash  string // X-Amz-Content-Sha256, when signed
}

// Verify authenticates r, whose body the caller has already read. It
// returns the principal that signed it, or an error of kind
// errdefs.ErrUnauthenticated with one of the reasons above (or an internal
// error when the credential lookup itself fails).
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (iam.Principal, error) {
	return v.verify(ctx, r, body, "")
}

// VerifyService is Verify that also requires the credential scope to name
// service (the signing name the request was routed to).
func (v *Verifier) VerifyService(ctx context.Context, r *http.Request, body []byte, service string) (iam.Principal, error) {
	return v.verify(ctx, r, body, service)
}

func (v *Verifier) verify(ctx context.Context, r *http.Request, body []byte, service string) (iam.Principal, error) {
	s, err := readSigned(r)
	if err != nil {
		return iam.Principal{}, err
	}
	if err := v.checkScope(s, service); err != nil {
		return iam.Principal{}, err
	}
	if err := v.checkTime(s); err != nil {
		return iam.Principal{}, err
	}

	bodyHash := sha256Hex(body)
	payloadHash := bodyHash
	if s.declaredHash != "" && s.declaredHash != bodyHash {
		if !(s.presigned && s.declaredHash == unsignedPayload) {
			return iam.Principal{}, mismatch("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		payloadHash = unsignedPayload
	}

	secret, p, err := v.lookup(ctx, s)
	if err != nil {
		return iam.Principal{}, err
	}
	key := v.keys.get(secret, s.cred)

	canonical := canonicalRequest(r, s, payloadHash)
	ok := s.verifySignature(key, canonical)
	// A presigned URL with an empty body may have been signed S3-style with
	// UNSIGNED-PAYLOAD without saying so; with no body there is nothing the
	// signature could fail to cover.
	if !ok && s.presigned && s.declaredHash == "" && len(body) == 0 {
		ok = s.verifySignature(key, canonicalRequest(r, s, unsignedPayload))
	}
	if !ok {
		return iam.Principal{}, mismatch(msgMismatch)
	}
	if p.AccessKeyID == "" {
		p.AccessKeyID = s.cred.AccessKeyID
	}
	return p, nil
}

func (s *signed) verifySignature(key []byte, canonical string) bool {
	sts := stringToSign(s.amzDate, s.cred.scope(), canonical)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sts))
	var sum [sha256.Size]byte
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], mac.Sum(sum[:0]))
	return hmac.Equal(want[:], []byte(s.signature))
}

// readSigned extracts the signature parameters from the Authorization header
// or, when there is none, from a presigned query string.
func readSigned(r *http.Request) (*signed, error) {
	var pairs []qpair
	if r.URL != nil {
		pairs = parseQuery(r.URL.RawQuery)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		return readHeaderSigned(r, h, pairs)
	}
	for _, p := range pairs {
		if p.key == "X-Amz-Signature" || p.key == "X-Amz-Algorithm" || p.key == "X-Amz-Credential" {
			return readPresigned(r, pairs)
		}
	}
	return nil, authError(ErrMissingAuth, msgMissing)
}

func readHeaderSigned(r *http.Request, h string, pairs []qpair) (*signed, error) {
	a, missing, err := parseAuthHeader(h)
	if err != nil {
		return nil, err
	}
	s := &signed{cred: a.Credential, signedHeaders: a.SignedHeaders, signature: a.Signature, query: pairs}
	if d := r.Header.Get("X-Amz-Date"); d != "" {
		t, err := parseAmzDate(d)
		if err != nil {
			return nil, err
		}
		s.amzDate, s.date = d, t
	} else if d := r.Header.Get("Date"); d != "" {
		t, err := http.ParseTime(d)
		if err != nil {
			return nil, badDate(d)
		}
		s.date = t.UTC()
		s.amzDate = s.date.Format(amzDateFormat)
	} else {
		missing.date = true
	}
	if missing.any() {
		return nil, incomplete(missing.message(h))
	}
	if err := requireHost(s.signedHeaders); err != nil {
		return nil, err
	}
	s.token = r.Header.Get("X-Amz-Security-Token")
	if hasSignedHeader(s.signedHeaders, "x-amz-content-sha256") {
		s.declaredHash = r.Header.Get("X-Amz-Content-Sha256")
	}
	return s, nil
}

func readPresigned(r *http.Request, pairs []qpair) (*signed, error) {
	get := func(k string) (string, bool) {
		for _, p := range pairs {
			if p.key == k {
				return p.value, true
			}
		}
		return "", false
	}
	alg, hasAlg := get("X-Amz-Algorithm")
	credRaw, hasCred := get("X-Amz-Credential")
	sig, hasSig := get("X-Amz-Signature")
	sh, hasSH := get("X-Amz-SignedHeaders")
	d, hasDate := get("X-Amz-Date")
	if !hasAlg || !hasCred || !hasSig || !hasSH || !hasDate {
		var b strings.Builder
		for _, m := range []struct {
			name string
			ok   bool
		}{{"X-Amz-Algorithm", hasAlg}, {"X-Amz-Credential", hasCred}, {"X-Amz-Signature", hasSig}, {"X-Amz-SignedHeaders", hasSH}, {"X-Amz-Date", hasDate}} {
			if !m.ok {
				fmt.Fprintf(&b, "AWS query-string parameters must include '%s'. ", m.name)
			}
		}
		b.WriteString("Re-examine the query-string parameters.")
		return nil, incomplete(b.String())
	}
	if alg != algorithm {
		return nil, incomplete(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
	}
	cred, ok := parseCredential(credRaw)
	if !ok {
		return nil, incomplete(fmt.Sprintf(
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", credRaw))
	}
	t, err := parseAmzDate(d)
	if err != nil {
		return nil, err
	}
	s := &signed{cred: cred, signedHeaders: sh, signature: sig, amzDate: d, date: t, presigned: true, query: pairs}
	if e, ok := get("X-Amz-Expires"); ok {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n < 0 {
			return nil, incomplete("X-Amz-Expires should be a number")
		}
		if n > int64(MaxPresignExpiry/time.Second) {
			return nil, incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800")
		}
		s.expires, s.hasExpires = time.Duration(n)*time.Second, true
	}
	if err := requireHost(sh); err != nil {
		return nil, err
	}
	s.token, _ = get("X-Amz-Security-Token")
	if h, ok := get("X-Amz-Content-Sha256"); ok {
		s.declaredHash = h
	} else if hasSignedHeader(sh, "x-amz-content-sha256") {
		s.declaredHash = r.Header.Get("X-Amz-Content-Sha256")
	}
	return s, nil
}

// parseAmzDate parses an ISO-8601 basic timestamp, 20240101T000000Z.
func parseAmzDate(d string) (time.Time, error) {
	if len(d) == len(amzDateFormat) {
		if t, err := time.Parse(amzDateFormat, d); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badDate(d)
}

func badDate(d string) error {
	return incomplete(fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", d))
}

func requireHost(signedHeaders string) error {
	if !hasSignedHeader(signedHeaders, "host") {
		return incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return nil
}

func hasSignedHeader(list, name string) bool {
	for h := range strings.SplitSeq(list, ";") {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

func (v *Verifier) checkScope(s *signed, service string) error {
	c := s.cred
	switch {
	case c.Terminator != terminator:
		return mismatch(fmt.Sprintf("Credential should be scoped with a valid terminator: '%s', not '%s'. ", terminator, c.Terminator))
	case v.Region != "" && c.Region != v.Region:
		return mismatch(fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", c.Region))
	case service != "" && c.Service != service:
		return mismatch(fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service))
	case c.Date != s.amzDate[:8]:
		return mismatch(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			c.Date, s.amzDate[:8], s.amzDate))
	}
	return nil
}

func (v *Verifier) checkTime(s *signed) error {
	now := time.Now()
	if v.Clock != nil {
		now = v.Clock.Now()
	}
	now = now.UTC().Truncate(time.Second)
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if late := now.Add(skew); s.date.After(late) {
		return authError(ErrExpired, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
			s.amzDate, late.Format(amzDateFormat), now.Format(amzDateFormat), window(skew)))
	}
	win := skew
	if s.presigned && s.hasExpires {
		win = s.expires
	}
	if early := now.Add(-win); s.date.Before(early) {
		return authError(ErrExpired, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
			s.amzDate, early.Format(amzDateFormat), now.Format(amzDateFormat), window(win)))
	}
	return nil
}

// window formats a duration the way AWS's skew messages do ("5 min.").
func window(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + " sec."
}

func (v *Verifier) lookup(ctx context.Context, s *signed) (string, iam.Principal, error) {
	if v.Creds == nil {
		return "", iam.Principal{}, errdefs.Internal(errors.New("sigv4: verifier has no credentials"))
	}
	var (
		secret string
		p      iam.Principal
		err    error
	)
	if s.token != "" {
		sc, ok := v.Creds.(SessionCredentials)
		if !ok {
			return "", iam.Principal{}, authError(ErrUnknownAccessKey, msgUnknownKey)
		}
		secret, p, err = sc.LookupSessionKey(ctx, s.cred.AccessKeyID, s.token)
	} else {
		secret, p, err = v.Creds.LookupAccessKey(ctx, s.cred.AccessKeyID)
	}
	switch {
	case err == nil:
		return secret, p, nil
	case errors.Is(err, errdefs.ErrNotFound), errors.Is(err, errdefs.ErrUnauthenticated):
		return "", iam.Principal{}, authError(ErrUnknownAccessKey, msgUnknownKey)
	default:
		return "", iam.Principal{}, fmt.Errorf("sigv4: look up access key: %w", err)
	}
}

// canonicalRequest builds the SigV4 canonical request:
// method, URI, query, headers, signed header list, payload hash.
func canonicalRequest(r *http.Request, s *signed, payloadHash string) string {
	var b strings.Builder
	b.Grow(256 + len(s.signedHeaders)*4)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(s.query, s.presigned))
	b.WriteByte('\n')
	for name := range strings.SplitSeq(s.signedHeaders, ";") {
		b.WriteString(name)
		b.WriteByte(':')
		switch name {
		case "host":
			b.WriteString(trimAll(r.Host))
		case "content-length":
			if vals := r.Header.Values("Content-Length"); len(vals) > 0 {
				writeValues(&b, vals)
			} else if r.ContentLength >= 0 {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		default:
			writeValues(&b, r.Header.Values(name))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(s.signedHeaders)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func writeValues(b *strings.Builder, vals []string) {
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(trimAll(v))
	}
}

func stringToSign(amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	var b strings.Builder
	b.Grow(len(algorithm) + len(amzDate) + len(scope) + 3 + 2*sha256.Size)
	b.WriteString(algorithm)
	b.WriteByte('\n')
	b.WriteString(amzDate)
	b.WriteByte('\n')
	b.WriteString(scope)
	b.WriteByte('\n')
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	b.Write(h[:])
	return b.String()
}

func sha256Hex(p []byte) string {
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// deriveKey computes the SigV4 signing key for one day, region and service.
func deriveKey(secret string, c Credential) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), c.Date)
	k = hmacSHA256(k, c.Region)
	k = hmacSHA256(k, c.Service)
	return hmacSHA256(k, terminator)
}

// maxCachedKeys bounds the signing-key cache. Keys change daily, so the
// cache is simply emptied when full rather than tracking recency.
const maxCachedKeys = 1024

// keyCache memoises derived signing keys (four HMACs each) per access key,
// date, region and service. An entry is used only if the secret it was
// derived from is still the key's secret, so a rotated secret never matches
// an old key.
type keyCache struct {
	mu sync.RWMutex
	m  map[string]cachedKey // guarded by mu
}

type cachedKey struct {
	secret string
	key    []byte
}

func (c *keyCache) get(secret string, cred Credential) []byte {
	id := cred.AccessKeyID + "/" + cred.Date + "/" + cred.Region + "/" + cred.Service
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if ok && subtle.ConstantTimeCompare([]byte(e.secret), []byte(secret)) == 1 {
		return e.key
	}
	key := deriveKey(secret, cred)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[string]cachedKey)
	}
	c.m[id] = cachedKey{secret: secret, key: key}
	c.mu.Unlock()
	return key
}
