// Package config holds the typed configuration of a berth control plane,
// its defaults and its validation. Flags fill it in cmd/berth; nothing reads
// configuration from anywhere else.
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultListen is the API listener's default address.
const DefaultListen = "127.0.0.1:7400"

// Server configures `berth server` and the control plane of `berth up`.
type Server struct {
	// DataDir holds etcd's data (when embedded), the shared AWS files and,
	// later, registry blobs and logs. Created 0700 if absent.
	DataDir string
	// Listen is the API listener's host:port.
	Listen string
	// Region is the account's region; "" means the stored region, or
	// us-east-1 at first start.
	Region string
	// EtcdEndpoints, when set, points at an external etcd cluster instead
	// of the embedded one.
	EtcdEndpoints []string
	// EtcdPrefix namespaces every key berth writes in etcd, so several
	// berth installations can share one external etcd.
	EtcdPrefix string
	// MaxBodyBytes bounds request bodies (413 beyond).
	MaxBodyBytes int64
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// FilesOwner, when set, owns DATA/credentials and DATA/config (the
	// user who ran `sudo berth up`).
	FilesOwner *FileOwner
}

// FileOwner is a user and group id.
type FileOwner struct {
	UID, GID int
}

// DefaultDataDir is ~/.berth, or /var/lib/berth when running as root.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".berth")
	}
	return ".berth"
}

// Defaults returns a Server with every default set.
func Defaults() Server {
	return Server{
		DataDir:      DefaultDataDir(),
		Listen:       DefaultListen,
		EtcdPrefix:   "/berth",
		MaxBodyBytes: 10 << 20,
		LogLevel:     "info",
		LogFormat:    "text",
	}
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)

// Validate checks every field and returns an invalid-argument error naming
// the first bad one.
func (s Server) Validate() error {
	if s.DataDir == "" {
		return errdefs.InvalidArgument("--data-dir must not be empty")
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		return errdefs.InvalidArgument(fmt.Sprintf("--listen %q: want host:port", s.Listen))
	}
	if s.Region != "" && !regionRE.MatchString(s.Region) {
		return errdefs.InvalidArgument(fmt.Sprintf("--region %q: want a region name such as us-east-1", s.Region))
	}
	for _, ep := range s.EtcdEndpoints {
		if !strings.Contains(ep, "://") {
			return errdefs.InvalidArgument(fmt.Sprintf("--etcd-endpoints %q: want a URL such as http://127.0.0.1:2379", ep))
		}
	}
	if !strings.HasPrefix(s.EtcdPrefix, "/") {
		return errdefs.InvalidArgument("--etcd-prefix must start with /")
	}
	if s.MaxBodyBytes <= 0 {
		return errdefs.InvalidArgument("--max-body-bytes must be positive")
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errdefs.InvalidArgument(fmt.Sprintf("--log-level %q: want debug, info, warn or error", s.LogLevel))
	}
	switch s.LogFormat {
	case "text", "json":
	default:
		return errdefs.InvalidArgument(fmt.Sprintf("--log-format %q: want text or json", s.LogFormat))
	}
	return nil
}
