package sigv4

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Credential is the credential scope of a signed request:
// AKID/20240101/us-east-1/ecs/aws4_request.
type Credential struct {
	AccessKeyID string
	Date        string // yyyymmdd
	Region      string
	Service     string // the signing name, e.g. "ecs", "sts"
	Terminator  string // "aws4_request" in every valid request
}

// scope is the credential scope without the access key, as it appears in
// the string to sign.
func (c Credential) scope() string {
	return c.Date + "/" + c.Region + "/" + c.Service + "/" + c.Terminator
}

// parseCredential splits "AKID/date/region/service/terminator".
func parseCredential(s string) (Credential, bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 {
		return Credential{}, false
	}
	return Credential{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3], Terminator: parts[4]}, true
}

// Authorization is a parsed "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" header.
type Authorization struct {
	Credential Credential
	// SignedHeaders is the header list as sent: lower-case names joined by
	// ';'. It goes into the canonical request verbatim.
	SignedHeaders string
	Signature     string // lower-case hex
}

// Scope returns the credential scope a request claims, from its
// Authorization header or, failing that, its presigned X-Amz-Credential
// query parameter. The router uses the scope's service to pick the awsQuery
// service a request is for. It does not verify anything.
func Scope(r *http.Request) (Credential, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		a, _, err := parseAuthHeader(h)
		if err != nil {
			return Credential{}, false
		}
		return a.Credential, a.Credential != (Credential{})
	}
	if r.URL == nil || !strings.Contains(r.URL.RawQuery, "X-Amz-Credential") {
		return Credential{}, false
	}
	for _, p := range parseQuery(r.URL.RawQuery) {
		if p.key == "X-Amz-Credential" {
			return parseCredential(p.value)
		}
	}
	return Credential{}, false
}

// ParseAuthorization parses an Authorization header value. Errors carry
// reason ErrIncompleteSignature and AWS's wording (the date requirement,
// which depends on other headers, is checked by Verify).
func ParseAuthorization(header string) (Authorization, error) {
	a, missing, err := parseAuthHeader(header)
	if err != nil {
		return Authorization{}, err
	}
	if missing.any() {
		return Authorization{}, incomplete(missing.message(header))
	}
	return a, nil
}

// missingParts records which of the required pieces of a header-signed
// request are absent; AWS lists all of them in one message.
type missingParts struct {
	credential, signature, signedHeaders, date bool
}

func (m missingParts) any() bool {
	return m.credential || m.signature || m.signedHeaders || m.date
}

func (m missingParts) message(header string) string {
	var b strings.Builder
	if m.credential {
		b.WriteString("Authorization header requires 'Credential' parameter. ")
	}
	if m.signature {
		b.WriteString("Authorization header requires 'Signature' parameter. ")
	}
	if m.signedHeaders {
		b.WriteString("Authorization header requires 'SignedHeaders' parameter. ")
	}
	if m.date {
		b.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
	}
	b.WriteString("Authorization=")
	b.WriteString(header)
	return b.String()
}

// parseAuthHeader parses the header. A header that is not SigV4 at all
// ("Bearer …", SigV2's "AWS AKID:sig") reports every parameter missing, as
// AWS does; a malformed SigV4 header is an error.
func parseAuthHeader(h string) (Authorization, missingParts, error) {
	alg, rest, _ := strings.Cut(h, " ")
	if alg != algorithm {
		if strings.HasPrefix(alg, "AWS4-") {
			return Authorization{}, missingParts{}, incomplete(fmt.Sprintf("Unsupported AWS 'algorithm': '%s'.", alg))
		}
		return Authorization{}, missingParts{credential: true, signature: true, signedHeaders: true}, nil
	}
	var a Authorization
	var credRaw string
	// AWS splits the parameter list on commas and on blanks alike, so a
	// stray space inside a value surfaces as a pair without '='.
	fields := strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Authorization{}, missingParts{}, incomplete(fmt.Sprintf(
				"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", f, h))
		}
		switch k {
		case "Credential":
			credRaw = v
		case "SignedHeaders":
			a.SignedHeaders = v
		case "Signature":
			a.Signature = v
		}
	}
	missing := missingParts{credential: credRaw == "", signature: a.Signature == "", signedHeaders: a.SignedHeaders == ""}
	if credRaw != "" {
		c, ok := parseCredential(credRaw)
		if !ok {
			return Authorization{}, missingParts{}, incomplete(fmt.Sprintf(
				"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", credRaw))
		}
		a.Credential = c
	}
	return a, missing, nil
}

// qpair is one decoded query parameter.
type qpair struct{ key, value string }

// parseQuery splits a raw query into decoded pairs, keeping repeats and
// order. Undecodable escapes are kept raw: the signature then simply fails
// to match, which is the honest answer for a query nobody could have signed
// canonically.
func parseQuery(raw string) []qpair {
	if raw == "" {
		return nil
	}
	out := make([]qpair, 0, strings.Count(raw, "&")+1)
	for seg := range strings.SplitSeq(raw, "&") {
		if seg == "" {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		out = append(out, qpair{key: unescape(k), value: unescape(v)})
	}
	return out
}

func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// canonicalQuery builds the canonical query string: every name and value
// URI-encoded, pairs sorted by encoded name then encoded value. The presigned
// signature itself is left out.
func canonicalQuery(pairs []qpair, skipSignature bool) string {
	if len(pairs) == 0 {
		return ""
	}
	enc := make([]qpair, 0, len(pairs))
	for _, p := range pairs {
		if skipSignature && p.key == "X-Amz-Signature" {
			continue
		}
		enc = append(enc, qpair{key: uriEncode(p.key, false), value: uriEncode(p.value, false)})
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].key != enc[j].key {
			return enc[i].key < enc[j].key
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// uriEncode percent-encodes every byte outside RFC 3986's unreserved set,
// with upper-case hex; keepSlash leaves '/' alone (for paths).
func uriEncode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && !(keepSlash && s[i] == '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (keepSlash && c == '/') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// canonicalURI is the request path as the AWS signers compute it for every
// service but S3: the escaped path, escaped once more.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEncode(p, true)
}

// trimAll trims blanks at both ends and collapses runs of spaces, as the
// Go SDK's signer does for header values.
func trimAll(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && i > 0 && s[i-1] == ' ' {
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}
