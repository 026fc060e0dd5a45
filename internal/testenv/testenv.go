// Package testenv lets tests state what the machine must provide (root, a
// running containerd, ...). A missing prerequisite skips the test on a
// developer's machine but fails it under CI=true, because a suite that was
// skipped must never count as green.
package testenv

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// DefaultContainerdAddress is where Debian's containerd listens.
const DefaultContainerdAddress = "/run/containerd/containerd.sock"

// Require skips t (or fails it under CI) with the reason what unless ok.
func Require(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("prerequisite missing: %s (CI=true: a missing prerequisite is a failure, not a skip)", what)
		return
	}
	t.Skipf("prerequisite missing: %s", what)
}

// InCI reports whether CI is set to a true value.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Root requires the test process to run as root (euid 0).
func Root(t testing.TB) {
	t.Helper()
	Require(t, "root (euid 0)", os.Geteuid() == 0)
}

// Containerd requires a containerd that answers on its socket and returns
// the socket's address: $BERTH_CONTAINERD_ADDRESS, or DefaultContainerdAddress.
// It only checks that the socket accepts connections, so this package does
// not depend on the containerd client; the test's first call tells the rest.
func Containerd(t testing.TB) (address string) {
	t.Helper()
	address = os.Getenv("BERTH_CONTAINERD_ADDRESS")
	if address == "" {
		address = DefaultContainerdAddress
	}
	conn, err := net.DialTimeout("unix", address, 2*time.Second)
	if err == nil {
		conn.Close()
	}
	reason := "containerd answering on " + address
	if err != nil {
		reason += " (" + err.Error() + "; scripts/deps.sh start_containerd starts it)"
	}
	Require(t, reason, err == nil)
	return address
}
