package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
)

// EndpointAddress is where tasks find the credentials and metadata
// endpoints (ECS's 169.254.170.2).
const EndpointAddress = "169.254.170.2"

// EnsureEndpointAddress puts EndpointAddress/32 on the host's loopback
// device, so the agent can listen on it and bridge-mode containers reach it
// through their gateway with their own source address (no DNAT, no
// route_localnet). It is idempotent and safe to race with another agent on
// the same machine. The address is never removed: other agents may use it.
func EnsureEndpointAddress(ctx context.Context) error {
	addr := netip.MustParseAddr(EndpointAddress)
	if ok, err := loopbackHas(addr); ok || err != nil {
		return err
	}
	ip, err := ipCommand()
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, ip, "-4", "addr", "add", EndpointAddress+"/32", "dev", "lo").CombinedOutput()
	if err != nil {
		// Another agent may have added it in the meantime.
		if ok, _ := loopbackHas(addr); ok {
			return nil
		}
		return fmt.Errorf("network: add %s to lo: %w: %s", EndpointAddress, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// loopbackHas reports whether lo carries addr.
func loopbackHas(addr netip.Addr) (bool, error) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return false, fmt.Errorf("network: %w", err)
	}
	addrs, err := lo.Addrs()
	if err != nil {
		return false, fmt.Errorf("network: addresses of lo: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr {
				return true, nil
			}
		}
	}
	return false, nil
}

// ipCommand finds iproute2's ip, also where root's PATH may lack sbin.
func ipCommand() (string, error) {
	if p, err := exec.LookPath("ip"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("network: iproute2's ip not found (Debian package iproute2)")
}
