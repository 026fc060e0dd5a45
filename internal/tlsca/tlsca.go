// Package tlsca is berth's own certificate authority for TLS on
// non-loopback listeners: it creates (once) and loads the CA kept under
// DATA/tls, issues the API listener's server certificate from it, and gives
// agents a client configuration that trusts exactly the CA a join token
// pins, whatever the system roots say. See
// docs/adr/0007-tls-and-ca-pinning.md.
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/jointoken"
)

// File names inside the CA directory (DATA/tls).
const (
	CertFile = "ca.pem"     // the CA certificate, 0644: clients may read it (ca_bundle)
	KeyFile  = "ca-key.pem" // the CA's private key, 0600
)

const (
	// CALifetime is how long a new CA is valid. Tokens pin the CA, so a
	// new CA means new tokens; ten years keeps that rare.
	CALifetime = 10 * 365 * 24 * time.Hour
	// LeafLifetime is how long an issued server certificate is valid. The
	// server re-issues at every start and, while running, once less than
	// a third of it remains (ServerConfig).
	LeafLifetime = 90 * 24 * time.Hour
	// backdate allows for clocks of agents that run a little behind.
	backdate = time.Hour
)

// CA is berth's certificate authority, loaded from or created in a
// directory.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

// LoadOrCreate loads the CA from dir (DATA/tls), or creates it there: an
// ECDSA P-256 key and a self-signed CA certificate valid for CALifetime from
// now. The directory is made 0755 so that a user given the shared AWS files
// can read ca.pem; the key stays 0600. A directory holding a certificate
// without its key is an error rather than a reason to start over, because
// tokens already handed out pin that certificate.
func LoadOrCreate(dir string, now time.Time) (*CA, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errdefs.Internal(fmt.Errorf("create %s: %w", dir, err))
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, errdefs.Internal(err)
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, err := os.ReadFile(certPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A key without a certificate is a creation cut short: the
		// certificate was never served, so nothing pins it.
		return create(dir, now)
	case err != nil:
		return nil, errdefs.Internal(err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("%s exists but %s does not: restore the CA's key, or remove %s to create a new CA (join tokens issued so far then stop working)", certPath, keyPath, dir))
	} else if err != nil {
		return nil, errdefs.Internal(err)
	}
	ca, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("the CA in %s: %s", dir, errdefs.Message(err, err.Error())))
	}
	if now.After(ca.cert.NotAfter) {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("the CA in %s expired at %s: remove %s to create a new one and issue new join tokens", dir, ca.cert.NotAfter.Format(time.RFC3339), dir))
	}
	ca.dir = dir
	return ca, nil
}

func create(dir string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial in the name tells CAs of different installations
		// apart in tools that show only the subject.
		Subject:               pkix.Name{Organization: []string{"berth"}, CommonName: fmt.Sprintf("berth CA %s %x", host, serial.Bytes()[:4])},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	// The key first: a certificate on disk always has its key beside it.
	if err := atomicfile.Write(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, CertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, dir: dir}, nil
}

// parse reads a CA certificate and its key from PEM and checks that they
// belong together and that the certificate is a CA.
func parse(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errdefs.InvalidArgument(CertFile + " holds no PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, errdefs.InvalidArgument(CertFile + ": " + err.Error())
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errdefs.InvalidArgument(CertFile + " is not a CA certificate")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errdefs.InvalidArgument(KeyFile + " holds no PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, errdefs.InvalidArgument(KeyFile + ": " + err.Error())
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errdefs.InvalidArgument(KeyFile + " is not an ECDSA key")
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errdefs.InvalidArgument(KeyFile + " does not belong to " + CertFile)
	}
	return &CA{cert: cert, key: key}, nil
}

// Certificate is the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPath is the CA certificate's file, for ca_bundle in the AWS config
// file and for clients on the server's machine.
func (c *CA) CertPath() string { return filepath.Join(c.dir, CertFile) }

// Pin is the CA's pin as join tokens carry it: jointoken.CAPin of the
// certificate's DER, "sha256:<hex>".
func (c *CA) Pin() string { return jointoken.CAPin(c.cert.Raw) }

// Issue signs a server certificate for hosts (IP addresses or DNS names)
// valid from now (backdated an hour) for LeafLifetime, never beyond the
// CA. The chain it returns is the leaf then the CA certificate: clients
// pin the CA from the chain (PinnedClientConfig).
func (c *CA) Issue(hosts []string, now time.Time) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errdefs.InvalidArgument("a server certificate needs at least one host")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, errdefs.Internal(err)
	}
	serial, err := newSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"berth"}, CommonName: "berth server"},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(LeafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return tls.Certificate{}, errdefs.Internal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, errdefs.Internal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerConfig is the TLS configuration of a listener reachable as hosts.
// It issues the first certificate now, so a failure shows at start, and
// re-issues, at the next handshake, once less than a third of the
// certificate's lifetime remains, so a server that runs for months keeps a
// valid certificate.
func (c *CA) ServerConfig(hosts []string, clk clock.Clock) (*tls.Config, error) {
	first, err := c.Issue(hosts, clk.Now())
	if err != nil {
		return nil, err
	}
	hosts = append([]string(nil), hosts...)
	var mu sync.Mutex
	current := &first
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			now := clk.Now()
			l := current.Leaf
			if now.Before(l.NotAfter.Add(-l.NotAfter.Sub(l.NotBefore) / 3)) {
				return current, nil
			}
			next, err := c.Issue(hosts, now)
			if err != nil {
				// The current certificate may still be valid; serving it
				// beats refusing every handshake.
				return current, nil
			}
			current = &next
			return current, nil
		},
	}, nil
}

// PinnedClientConfig is a client TLS configuration for the server at host
// (the host of its URL: an IP address or a DNS name) that trusts exactly the
// CA with the given pin (jointoken.CAPin format), not the system roots: the
// server must present that CA certificate in its chain (berth's servers
// send leaf then CA), and the leaf must verify against it for server
// authentication and name host, as normal TLS checks. The standard
// verification is switched off only to be replaced by this one
// (VerifyConnection). host is needed here because crypto/tls tells a
// client's VerifyConnection the name it sent in SNI, which is empty for IP
// addresses.
func PinnedClientConfig(pin, host string) (*tls.Config, error) {
	if !validPin(pin) {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("CA pin %q: want \"sha256:\" followed by 64 lower-case hex characters", pin))
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return nil, errdefs.InvalidArgument("a pinned TLS connection needs the server's host name or address")
	}
	return &tls.Config{
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(pin, host, cs.PeerCertificates, time.Now())
		},
	}, nil
}

func verifyPinned(pin, host string, chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("tlsca: the server presented no certificate")
	}
	leaf := chain[0]
	var ca *x509.Certificate
	for _, c := range chain[1:] {
		if jointoken.PinMatches(pin, c.Raw) {
			ca = c
			break
		}
	}
	if ca == nil {
		return fmt.Errorf("tlsca: the server's certificate chain does not contain the CA pinned by the join token (%s): not the berth server the token was made for", pin)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		return errors.New("tlsca: the pinned certificate is not a CA certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:     host,
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tlsca: the server's certificate does not verify against the pinned CA: %w", err)
	}
	return nil
}

func validPin(pin string) bool {
	h, ok := strings.CutPrefix(pin, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// IsLoopback reports whether a listen or URL host is loopback only:
// 127.0.0.0/8, ::1 or "localhost". An empty host, 0.0.0.0 and :: listen on
// every address and so are not loopback. Loopback listeners serve plain
// HTTP; everything else serves TLS.
func IsLoopback(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsWildcard reports whether a listen host means every address ("",
// 0.0.0.0, ::).
func IsWildcard(host string) bool {
	host = strings.Trim(host, "[]")
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// ListenerHosts are the names a listener on listenHost is reachable as, for
// its certificate: the host itself or, for a wildcard (every address),
// every non-link-local address of the machine's up interfaces (non-loopback
// ones first, in interface order) and the host name; then 127.0.0.1, ::1
// and localhost always, so that clients on the machine itself can use
// loopback. Link-local addresses are left out: a URL needs a zone for them.
func ListenerHosts(listenHost string) ([]string, error) {
	var hosts []string
	if !IsWildcard(listenHost) {
		hosts = append(hosts, strings.Trim(listenHost, "[]"))
	} else {
		ifaces, err := net.Interfaces()
		if err != nil {
			return nil, errdefs.Internal(fmt.Errorf("list network interfaces: %w", err))
		}
		for _, ifc := range ifaces {
			if ifc.Flags&net.FlagUp == 0 {
				continue
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				ipn, ok := a.(*net.IPNet)
				if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsLoopback() || ipn.IP.IsMulticast() {
					continue
				}
				hosts = append(hosts, ipn.IP.String())
			}
		}
		if h, err := os.Hostname(); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	return append(hosts, "127.0.0.1", "::1", "localhost"), nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	// Never zero, and the top bit set keeps the length fixed.
	return s.SetBit(s, 126, 1), nil
}
