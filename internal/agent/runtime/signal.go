package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ParseSignal parses a stop signal as Docker's STOPSIGNAL accepts it:
// "SIGTERM", "TERM", "sigterm" or a number ("15").
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidArgument(fmt.Sprintf("signal %d out of range", n))
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidArgument(fmt.Sprintf("unknown signal %q", s))
}
