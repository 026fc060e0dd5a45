package jointoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func validToken(t testing.TB) Token {
	t.Helper()
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return Token{Server: "http://127.0.0.1:7400", ID: id, Secret: secret, Cluster: "default"}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	tok := validToken(t)
	for _, mod := range []func(*Token){
		func(*Token) {},
		func(t *Token) { t.CAPin = CAPin([]byte("a certificate")) },
		func(t *Token) { t.Server = "https://berth.example.com:7400/" },
		func(t *Token) { t.Server = "https://[fd00::1]:7400"; t.Cluster = strings.Repeat("a", 255) },
	} {
		in := tok
		mod(&in)
		s, err := Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, Prefix) || len(s) > MaxLen {
			t.Fatalf("token %q", s)
		}
		// Pasted tokens often carry a newline.
		out, err := Parse("  " + s + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(in, out); diff != "" {
			t.Fatalf("round trip (-in +out):\n%s", diff)
		}
	}
}

func encodeRaw(json string) string {
	return Prefix + base64.RawURLEncoding.EncodeToString([]byte(json))
}

func TestParseRejects(t *testing.T) {
	tok := validToken(t)
	good := func(mod func(*Token)) string {
		in := tok
		mod(&in)
		b, _ := json.Marshal(in)
		return encodeRaw(string(b))
	}
	tests := []struct {
		name, token, want string
	}{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"other text", "K10abc::server:secret", `must start with "berth1."`},
		{"newer version", "berth2.e30", `token version "berth2" is not supported`},
		{"too long", Prefix + strings.Repeat("A", MaxLen), "at most 4096"},
		{"not base64", Prefix + "!!!", "not base64url"},
		{"not json", encodeRaw("hello"), "not a JSON object"},
		{"json array", encodeRaw("[1,2]"), "not a JSON object"},
		{"json null", encodeRaw("null"), "no server URL"},
		{"no server", good(func(t *Token) { t.Server = "" }), "no server URL"},
		{"ftp server", good(func(t *Token) { t.Server = "ftp://h:1" }), "http:// or https://"},
		{"bare host", good(func(t *Token) { t.Server = "127.0.0.1:7400" }), "not a URL like http://HOST:PORT"},
		{"host name only", good(func(t *Token) { t.Server = "berth.local" }), "http:// or https://"},
		{"no host", good(func(t *Token) { t.Server = "http://" }), "has no host"},
		{"user info", good(func(t *Token) { t.Server = "http://u:p@h:1" }), "user information"},
		{"path", good(func(t *Token) { t.Server = "http://h:1/x" }), "no path"},
		{"query", good(func(t *Token) { t.Server = "http://h:1?x=1" }), "no path"},
		{"bad url", good(func(t *Token) { t.Server = "http://[::1" }), "not a URL"},
		{"no id", good(func(t *Token) { t.ID = "" }), "token id"},
		{"upper id", good(func(t *Token) { t.ID = "0123456789ABCDEF" }), "token id"},
		{"id with slash", good(func(t *Token) { t.ID = "0123456789abc/ef" }), "token id"},
		{"no secret", good(func(t *Token) { t.Secret = "" }), "secret must be 32 bytes"},
		{"short secret", good(func(t *Token) { t.Secret = "c2hvcnQ" }), "secret must be 32 bytes"},
		{"padded secret", good(func(t *Token) { t.Secret = base64.URLEncoding.EncodeToString(make([]byte, 32)) }), "secret must be 32 bytes"},
		{"no cluster", good(func(t *Token) { t.Cluster = "" }), "cluster name"},
		{"bad cluster", good(func(t *Token) { t.Cluster = "a/b" }), "cluster name"},
		{"long cluster", good(func(t *Token) { t.Cluster = strings.Repeat("a", 256) }), "cluster name"},
		{"bad pin", good(func(t *Token) { t.CAPin = "md5:abc" }), "CA pin"},
		{"short pin", good(func(t *Token) { t.CAPin = "sha256:abc" }), "CA pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.token)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Parse: %v, want invalid argument", err)
			}
			msg := errdefs.Message(err, "")
			if !strings.HasPrefix(msg, "invalid join token: ") || !strings.Contains(msg, tt.want) {
				t.Fatalf("message %q, want it to contain %q", msg, tt.want)
			}
			if strings.Contains(msg, tok.Secret) {
				t.Fatalf("message leaks the secret: %q", msg)
			}
		})
	}
}

func TestEncodeValidates(t *testing.T) {
	tok := validToken(t)
	tok.Cluster = ""
	if _, err := Encode(tok); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Encode of an invalid token: %v", err)
	}
}

func TestSecretsAndHashes(t *testing.T) {
	a, _ := NewSecret()
	b, _ := NewSecret()
	if a == b || len(a) != 43 {
		t.Fatalf("secrets %q %q", a, b)
	}
	h := HashSecret(a)
	if len(h) != 64 || !isLowerHex(h) || strings.Contains(h, a) {
		t.Fatalf("hash %q", h)
	}
	if !SecretMatches(a, h) || SecretMatches(b, h) || SecretMatches("", h) || SecretMatches(a, "") {
		t.Fatal("SecretMatches is wrong")
	}
	id1, _ := NewID()
	id2, _ := NewID()
	if id1 == id2 || ValidateID(id1) != nil {
		t.Fatalf("ids %q %q", id1, id2)
	}
}

func TestCAPin(t *testing.T) {
	cert := []byte("der bytes")
	pin := CAPin(cert)
	if !strings.HasPrefix(pin, "sha256:") || len(pin) != 7+64 {
		t.Fatalf("pin %q", pin)
	}
	if !PinMatches(pin, cert) || PinMatches(pin, []byte("other")) || PinMatches("", cert) {
		t.Fatal("PinMatches is wrong")
	}
}

func TestLogValueHidesSecret(t *testing.T) {
	tok := validToken(t)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("joined", "token", tok)
	if strings.Contains(buf.String(), tok.Secret) || !strings.Contains(buf.String(), tok.ID) {
		t.Fatalf("log line %q", buf.String())
	}
}

func FuzzParse(f *testing.F) {
	tok := validToken(f)
	s, err := Encode(tok)
	if err != nil {
		f.Fatal(err)
	}
	tok.CAPin = CAPin([]byte("x"))
	withPin, _ := Encode(tok)
	for _, seed := range []string{
		s, withPin, "", Prefix, Prefix + "e30", "berth2.e30", "berth1.!!", s[:len(s)/2], s + "==",
		encodeRaw(`{"server":"http://h:1","id":"0123456789abcdef","secret":"x","cluster":"c"}`),
		encodeRaw(`{"server":1}`), encodeRaw(`[]`), encodeRaw(`"str"`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Parse(in)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// Whatever parses re-encodes and parses to the same token.
		again, err := Encode(got)
		if err != nil {
			t.Fatalf("Encode of a parsed token: %v", err)
		}
		back, err := Parse(again)
		if err != nil || back != got {
			t.Fatalf("re-parse: %+v, %v; want %+v", back, err, got)
		}
	})
}
