package registry

import (
	_ "crypto/sha256" // digest algorithms must be linked to be Available
	_ "crypto/sha512"
	"encoding/json"
	"hash"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"
)

// holdBack is how many bytes of a verified body the verifyingWriter keeps
// until the digest is known good: with them missing, a client of corrupt
// content gets a truncated transfer instead of all the wrong bytes.
const holdBack = 64

// verifyingWriter hashes the body of a full (200) GET of a manifest or
// blob and compares it with the Docker-Content-Digest the app set, holding
// back the last bytes until finish. Distribution verifies digests on
// upload but serves stored content as it is; this closes the read side.
// Other responses (206 ranges, 304, errors) pass through.
type verifyingWriter struct {
	http.ResponseWriter
	started bool
	active  bool
	want    digest.Digest
	got     digest.Digest
	h       hash.Hash
	held    [holdBack]byte
	nheld   int
	err     error
}

func (v *verifyingWriter) WriteHeader(code int) {
	if !v.started {
		v.started = true
		if code == http.StatusOK {
			d, err := digest.Parse(v.Header().Get("Docker-Content-Digest"))
			if err == nil && d.Algorithm().Available() {
				v.want, v.h, v.active = d, d.Algorithm().Hash(), true
			}
		}
	}
	v.ResponseWriter.WriteHeader(code)
}

func (v *verifyingWriter) Write(p []byte) (int, error) {
	if !v.started {
		v.WriteHeader(http.StatusOK)
	}
	if !v.active {
		return v.ResponseWriter.Write(p)
	}
	if v.err != nil {
		return 0, v.err
	}
	v.h.Write(p)
	n := v.nheld + len(p)
	if n <= holdBack {
		copy(v.held[v.nheld:], p)
		v.nheld = n
		return len(p), nil
	}
	emit := n - holdBack
	fromHeld := min(emit, v.nheld)
	if fromHeld > 0 {
		if _, err := v.ResponseWriter.Write(v.held[:fromHeld]); err != nil {
			v.err = err
			return 0, err
		}
	}
	rest := copy(v.held[:], v.held[fromHeld:v.nheld])
	fromP := emit - fromHeld
	if fromP > 0 {
		if _, err := v.ResponseWriter.Write(p[:fromP]); err != nil {
			v.err = err
			return 0, err
		}
	}
	v.nheld = rest + copy(v.held[rest:], p[fromP:])
	return len(p), nil
}

// Unwrap lets http.ResponseController reach the connection.
func (v *verifyingWriter) Unwrap() http.ResponseWriter { return v.ResponseWriter }

// finish releases the held-back bytes if the body matched its digest and
// reports whether it did (true when nothing was verified).
func (v *verifyingWriter) finish() bool {
	if !v.active || v.err != nil {
		return true
	}
	v.got = digest.NewDigest(v.want.Algorithm(), v.h)
	if v.got != v.want {
		return false
	}
	if v.nheld > 0 {
		_, _ = v.ResponseWriter.Write(v.held[:v.nheld])
	}
	return true
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
