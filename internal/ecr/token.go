package ecr

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Authorization tokens: what GetAuthorizationToken issues and the registry
// accepts as the Basic-auth password of user "AWS". A token carries the
// principal it was issued to and its expiry, signed with HMAC-SHA256 under a
// server key, so the registry checks it without a store lookup. Like ECR's,
// a token cannot be revoked before it expires.
//
// Wire form: "v1." + base64url(payload JSON) + "." + base64url(MAC), where
// the MAC covers a domain label and the encoded payload.

// TokenValidity is how long a token is valid: 12 hours, as ECR's.
const TokenValidity = 12 * time.Hour

// AuthorizationUser is the Basic-auth user name that goes with a token.
const AuthorizationUser = "AWS"

// MinTokenKeyLength is the shortest signing key IssueToken and VerifyToken
// accept.
const MinTokenKeyLength = 32

const (
	tokenVersion = "v1"
	macLabel     = "berth ecr authorization token v1\n"
	// maxTokenLength bounds what VerifyToken decodes; a real token is a
	// few hundred bytes (the principal ARN dominates).
	maxTokenLength = 4096
)

type tokenPayload struct {
	Principal string `json:"p"`
	Expires   int64  `json:"e"` // Unix seconds
	Nonce     string `json:"n"` // makes two tokens of one second differ
}

// IssueToken returns a token for principalARN valid for TokenValidity from
// now, and its expiry.
func IssueToken(key []byte, principalARN string, now time.Time) (string, time.Time, error) {
	if len(key) < MinTokenKeyLength {
		return "", time.Time{}, errdefs.Internal(errTokenKey)
	}
	if principalARN == "" {
		return "", time.Time{}, errdefs.InvalidArgument("authorization token without a principal")
	}
	expires := now.Add(TokenValidity).Truncate(time.Second).UTC()
	var nonce [8]byte
	_, _ = rand.Read(nonce[:]) // never fails (crypto/rand)
	body, err := json.Marshal(tokenPayload{Principal: principalARN, Expires: expires.Unix(), Nonce: hex.EncodeToString(nonce[:])})
	if err != nil {
		return "", time.Time{}, errdefs.Internal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString(body)
	return tokenVersion + "." + enc + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(key, enc)), expires, nil
}

// VerifyToken checks a token's signature and expiry and returns the
// principal ARN it was issued to. It fails with kind
// errdefs.ErrUnauthenticated and reason ErrTokenInvalid (malformed or
// forged) or ErrTokenExpired.
func VerifyToken(key []byte, token string, now time.Time) (string, error) {
	if len(key) < MinTokenKeyLength {
		return "", errdefs.Internal(errTokenKey)
	}
	if len(token) > maxTokenLength {
		return "", invalidToken()
	}
	version, rest, ok := strings.Cut(token, ".")
	if !ok || version != tokenVersion {
		return "", invalidToken()
	}
	enc, sigText, ok := strings.Cut(rest, ".")
	if !ok || enc == "" {
		return "", invalidToken()
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigText)
	if err != nil || !hmac.Equal(sig, tokenMAC(key, enc)) {
		return "", invalidToken()
	}
	// Only signed bytes are parsed from here on.
	body, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil {
		return "", invalidToken()
	}
	var p tokenPayload
	if err := json.Unmarshal(body, &p); err != nil || p.Principal == "" || p.Expires <= 0 {
		return "", invalidToken()
	}
	if !now.Before(time.Unix(p.Expires, 0)) {
		return "", errdefs.WithReason(errdefs.ErrUnauthenticated, ErrTokenExpired, TokenExpiredMessage)
	}
	return p.Principal, nil
}

// AuthorizationData is GetAuthorizationToken's authorizationToken:
// base64("AWS:" + token), the form `docker login` credentials take.
func AuthorizationData(token string) string {
	return base64.StdEncoding.EncodeToString([]byte(AuthorizationUser + ":" + token))
}

// ParseAuthorizationData inverts AuthorizationData: it returns the user
// name and the token (the password).
func ParseAuthorizationData(data string) (user, token string, err error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return "", "", errdefs.InvalidArgument("authorization data is not base64")
	}
	user, token, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || token == "" {
		return "", "", errdefs.InvalidArgument("authorization data is not user:password")
	}
	return user, token, nil
}

func tokenMAC(key []byte, encodedPayload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macLabel))
	m.Write([]byte(encodedPayload))
	return m.Sum(nil)
}

func invalidToken() error {
	return errdefs.WithReason(errdefs.ErrUnauthenticated, ErrTokenInvalid, NotAuthorizedMessage)
}

var errTokenKey = tokenKeyError{}

type tokenKeyError struct{}

func (tokenKeyError) Error() string { return "authorization token key shorter than 32 bytes" }
