// Package jointoken is the format of the tokens with which an agent joins a
// berth server: "berth1." followed by unpadded base64url of a JSON object
// that tells the agent where the server is (URL), how to trust it (the
// SHA-256 pin of the server's CA certificate, once berth serves TLS), which
// cluster it joins, and the credential itself (a token id and a 32-byte
// random secret). The server keeps only a SHA-256 hash of the secret. It
// also defines the messages of the join exchange (exchange.go), which the
// server and the agent share. See docs/adr/0006-join-tokens.md and
// docs/architecture/agent-join.md. It is a leaf: no I/O besides crypto/rand.
package jointoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Prefix starts every token of this format version. A later, incompatible
// format gets "berth2.".
const Prefix = "berth1."

// MaxLen bounds an encoded token; real ones are about 300 characters. It
// keeps a decoder fed with garbage from allocating much.
const MaxLen = 4096

const (
	secretBytes = 32
	idBytes     = 8
	pinPrefix   = "sha256:"
)

// Token is the content of a join token. All fields but CAPin are required.
type Token struct {
	// Server is the URL agents reach the server at, e.g.
	// https://10.0.0.5:7400 (http or https, a host, no path beyond "/").
	Server string `json:"server"`
	// ID names the token on the server: 16 lower-case hex characters.
	ID string `json:"id"`
	// Secret is 32 random bytes as unpadded base64url (43 characters).
	Secret string `json:"secret"`
	// Cluster is the ECS cluster the agent registers into.
	Cluster string `json:"cluster"`
	// CAPin is "sha256:" and the lower-case hex SHA-256 of the DER bytes of
	// the server's CA certificate; empty while the server serves plain HTTP.
	CAPin string `json:"caPin,omitempty"`
}

// LogValue keeps the secret out of logs.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("server", t.Server), slog.String("id", t.ID),
		slog.String("cluster", t.Cluster), slog.String("caPin", t.CAPin))
}

// Encode validates t and returns its text form.
func Encode(t Token) (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", errdefs.Internal(err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Parse decodes and validates a token. Surrounding white space (from
// copying and pasting) is ignored. Errors are of kind
// errdefs.ErrInvalidArgument and say what is wrong without echoing the
// secret.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Token{}, invalid("the token is empty")
	case len(s) > MaxLen:
		return Token{}, invalid(fmt.Sprintf("the token is %d characters long; a join token has at most %d", len(s), MaxLen))
	case !strings.HasPrefix(s, Prefix):
		if v, _, ok := strings.Cut(s, "."); ok && strings.HasPrefix(v, "berth") && len(v) > len("berth") {
			return Token{}, invalid(fmt.Sprintf("token version %q is not supported by this berth (it reads %q tokens); use a berth of the server's version", v, strings.TrimSuffix(Prefix, ".")))
		}
		return Token{}, invalid(fmt.Sprintf("not a berth join token: it must start with %q (create one with `berth token create`)", Prefix))
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s[len(Prefix):], "="))
	if err != nil {
		return Token{}, invalid("the token is damaged (not base64url after " + Prefix + "); copy it again in full")
	}
	var t Token
	if err := json.Unmarshal(raw, &t); err != nil {
		return Token{}, invalid("the token is damaged (its content is not a JSON object); copy it again in full")
	}
	if err := t.Validate(); err != nil {
		return Token{}, err
	}
	return t, nil
}

// Validate checks every field.
func (t Token) Validate() error {
	if err := ValidateServerURL(t.Server); err != nil {
		return err
	}
	if err := ValidateID(t.ID); err != nil {
		return err
	}
	if err := validateSecret(t.Secret); err != nil {
		return err
	}
	if err := validateCluster(t.Cluster); err != nil {
		return err
	}
	if t.CAPin != "" {
		h, ok := strings.CutPrefix(t.CAPin, pinPrefix)
		if !ok || len(h) != 2*sha256.Size || !isLowerHex(h) {
			return invalid("the token's CA pin must be \"sha256:\" followed by 64 lower-case hex characters")
		}
	}
	return nil
}

// ValidateServerURL checks a server URL for a token: http or https, a host,
// no user information, no path beyond "/", no query or fragment.
func ValidateServerURL(s string) error {
	if s == "" {
		return invalid("the token names no server URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid(fmt.Sprintf("the token's server URL %q is not a URL like http://HOST:PORT or https://HOST:PORT", s))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid(fmt.Sprintf("the token's server URL %q must start with http:// or https://", s))
	case u.Host == "" || u.Hostname() == "":
		return invalid(fmt.Sprintf("the token's server URL %q has no host", s))
	case u.User != nil:
		return invalid("the token's server URL must not carry user information")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return invalid(fmt.Sprintf("the token's server URL %q must have no path, query or fragment", s))
	}
	return nil
}

// ValidateID checks a token id: 16 lower-case hex characters. Ids appear in
// store keys, so this also keeps them key-safe.
func ValidateID(id string) error {
	if len(id) != 2*idBytes || !isLowerHex(id) {
		return invalid("the token id must be 16 lower-case hex characters")
	}
	return nil
}

func validateSecret(s string) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != secretBytes {
		return invalid("the token's secret must be 32 bytes in unpadded base64url")
	}
	return nil
}

// validateCluster applies ECS's rule for cluster names: 1 to 255 letters,
// digits, underscores and hyphens.
func validateCluster(c string) error {
	if c == "" || len(c) > 255 || strings.IndexFunc(c, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) >= 0 {
		return invalid("the token's cluster name must be 1 to 255 letters, digits, underscores and hyphens")
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func invalid(msg string) error {
	return errdefs.InvalidArgument("invalid join token: " + msg)
}

// NewID returns a fresh random token id.
func NewID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", errdefs.Internal(err)
	}
	return hex.EncodeToString(b), nil
}

// NewSecret returns a fresh random secret (32 bytes, unpadded base64url).
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", errdefs.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret returns what the server stores instead of a secret: the
// lower-case hex SHA-256 of its text form. The secret has 256 bits of
// entropy, so a plain hash (no salt, no slow KDF) cannot be brute-forced.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches reports, in constant time, whether secret hashes to hash.
func SecretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

// CAPin returns the pin of a CA certificate given in DER form.
func CAPin(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return pinPrefix + hex.EncodeToString(sum[:])
}

// PinMatches reports whether a CA certificate (DER) has the given pin.
func PinMatches(pin string, certDER []byte) bool {
	return subtle.ConstantTimeCompare([]byte(CAPin(certDER)), []byte(pin)) == 1
}
