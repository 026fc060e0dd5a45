// Package networktest is the conformance suite for network.Network. The CNI
// network runs it on a real machine (as root) and the fake in memory, so
// what the task runner's tests learn from the fake holds for the real
// thing.
package networktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Run runs the suite. newNetwork returns a fresh network for one subtest;
// subtests run in parallel and detach everything they attach.
func Run(t *testing.T, newNetwork func(t *testing.T) network.Network) {
	run := randomHex(4)
	id := func(t *testing.T, suffix string) string { return "nt" + run + "-" + suffix }

	// attach attaches req and detaches it when the test ends.
	attach := func(t *testing.T, n network.Network, req network.Request) network.Attachment {
		t.Helper()
		att, err := n.Attach(t.Context(), req)
		if err != nil {
			t.Fatalf("Attach(%+v): %v", req, err)
		}
		t.Cleanup(func() { // t.Context() is done by now
			if err := n.Detach(context.Background(), att); err != nil {
				t.Errorf("cleanup: Detach(%s): %v", att.ID, err)
			}
		})
		return att
	}

	t.Run("bridge attach is idempotent", func(t *testing.T) {
		t.Parallel()
		n := newNetwork(t)
		req := network.Request{ID: id(t, "idem"), Mode: network.ModeBridge, Ports: []network.PortMapping{
			{ContainerPort: 8080, HostPort: FreePort(t), Protocol: "tcp"},
			{ContainerPort: 53, HostPort: FreePort(t), Protocol: "udp"},
		}}
		a1 := attach(t, n, req)
		if a1.ID != req.ID || a1.Mode != network.ModeBridge || !cmp.Equal(a1.Ports, req.Ports) {
			t.Errorf("Attach = %+v, want ID, mode and ports of %+v", a1, req)
		}
		if !filepath.IsAbs(a1.NetNSPath) {
			t.Errorf("NetNSPath = %q, want an absolute path", a1.NetNSPath)
		}
		if ip, err := netip.ParseAddr(a1.IPv4); err != nil || !ip.Is4() {
			t.Errorf("IPv4 = %q, want an IPv4 address", a1.IPv4)
		}
		// The same request again, its ports in another order.
		again := req
		again.Ports = []network.PortMapping{req.Ports[1], req.Ports[0]}
		a2, err := n.Attach(t.Context(), again)
		if err != nil {
			t.Fatalf("second Attach: %v", err)
		}
		if diff := cmp.Diff(a1, a2); diff != "" {
			t.Errorf("second Attach differs (-first +second):\n%s", diff)
		}
	})

	t.Run("same id with other settings conflicts", func(t *testing.T) {
		t.Parallel()
		n := newNetwork(t)
		req := network.Request{ID: id(t, "conflict"), Mode: network.ModeBridge}
		attach(t, n, req)
		for _, other := range []network.Request{
			{ID: req.ID, Mode: network.ModeHost},
			{ID: req.ID, Mode: network.ModeBridge, Ports: []network.PortMapping{{ContainerPort: 80, HostPort: FreePort(t), Protocol: "tcp"}}},
		} {
			if _, err := n.Attach(t.Context(), other); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("Attach(%+v) after Attach(%+v) = %v, want ErrConflict", other, req, err)
			}
		}
	})

	t.Run("distinct ids get distinct namespaces and addresses", func(t *testing.T) {
		t.Parallel()
		n := newNetwork(t)
		const count = 4
		atts := make([]network.Attachment, count)
		errs := make([]error, count)
		var wg sync.WaitGroup
		for i := range count {
			wg.Go(func() {
				atts[i], errs[i] = n.Attach(t.Context(), network.Request{ID: id(t, "many"+string(rune('a'+i))), Mode: network.ModeBridge})
			})
		}
		wg.Wait()
		for i, a := range atts {
			if errs[i] != nil {
				t.Errorf("concurrent Attach %d: %v", i, errs[i])
				continue
			}
			t.Cleanup(func() {
				if err := n.Detach(context.Background(), a); err != nil {
					t.Errorf("cleanup: Detach(%s): %v", a.ID, err)
				}
			})
		}
		if t.Failed() {
			return
		}
		ips, paths := map[string]bool{}, map[string]bool{}
		for _, a := range atts {
			if ips[a.IPv4] || paths[a.NetNSPath] {
				t.Errorf("%s shares its address %s or namespace %s with another attachment", a.ID, a.IPv4, a.NetNSPath)
			}
			ips[a.IPv4], paths[a.NetNSPath] = true, true
		}
	})

	t.Run("host and none modes", func(t *testing.T) {
		t.Parallel()
		n := newNetwork(t)
		for _, tc := range []struct {
			mode  network.Mode
			netns string
		}{
			{network.ModeHost, runtime.NetNSHost},
			{network.ModeNone, ""},
		} {
			req := network.Request{ID: id(t, string(tc.mode)), Mode: tc.mode}
			want := network.Attachment{ID: req.ID, Mode: tc.mode, NetNSPath: tc.netns}
			for range 2 { // the second Attach returns the same
				att := attach(t, n, req)
				if diff := cmp.Diff(want, att); diff != "" {
					t.Errorf("Attach(%s) (-want +got):\n%s", tc.mode, diff)
				}
			}
		}
	})

	t.Run("detach is idempotent and allows a new attach", func(t *testing.T) {
		t.Parallel()
		n := newNetwork(t)
		req := network.Request{ID: id(t, "detach"), Mode: network.ModeBridge, Ports: []network.PortMapping{{ContainerPort: 80, HostPort: FreePort(t), Protocol: "tcp"}}}
		att, err := n.Attach(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := n.Detach(t.Context(), att); err != nil {
				t.Fatalf("Detach #%d: %v", i+1, err)
			}
		}
		// Detached, the ID is free for other settings.
		host := network.Request{ID: req.ID, Mode: network.ModeHost}
		if got := attach(t, n, host); got.Mode != network.ModeHost {
			t.Errorf("Attach after Detach = %+v, want host mode", got)
		}
	})

	t.Run("detach of something never attached", func(t *testing.T) {
		t.Parallel()
		n := newNetwork(t)
		for _, att := range []network.Attachment{
			{ID: id(t, "unknown-bridge"), Mode: network.ModeBridge, NetNSPath: "/nonexistent", IPv4: "10.254.9.9",
				Ports: []network.PortMapping{{ContainerPort: 80, HostPort: FreePort(t), Protocol: "tcp"}}},
			{ID: id(t, "unknown-host"), Mode: network.ModeHost, NetNSPath: runtime.NetNSHost},
			{ID: id(t, "unknown-nomode")},
		} {
			if err := n.Detach(t.Context(), att); err != nil {
				t.Errorf("Detach(%+v) = %v, want nil", att, err)
			}
		}
	})

	t.Run("invalid requests", func(t *testing.T) {
		t.Parallel()
		n := newNetwork(t)
		tcp := func(host, ctr uint16) network.PortMapping {
			return network.PortMapping{HostPort: host, ContainerPort: ctr, Protocol: "tcp"}
		}
		good := id(t, "bad")
		for name, req := range map[string]network.Request{
			"empty id":          {Mode: network.ModeBridge},
			"path in id":        {ID: "../" + good, Mode: network.ModeBridge},
			"dot id":            {ID: ".", Mode: network.ModeBridge},
			"slash in id":       {ID: good + "/x", Mode: network.ModeBridge},
			"long id":           {ID: strings.Repeat("a", network.MaxIDLength+1), Mode: network.ModeBridge},
			"no mode":           {ID: good},
			"awsvpc":            {ID: good, Mode: "awsvpc"},
			"unknown protocol":  {ID: good, Mode: network.ModeBridge, Ports: []network.PortMapping{{HostPort: 1, ContainerPort: 1, Protocol: "sctp"}}},
			"no protocol":       {ID: good, Mode: network.ModeBridge, Ports: []network.PortMapping{{HostPort: 1, ContainerPort: 1}}},
			"no host port":      {ID: good, Mode: network.ModeBridge, Ports: []network.PortMapping{tcp(0, 80)}},
			"no container port": {ID: good, Mode: network.ModeBridge, Ports: []network.PortMapping{tcp(80, 0)}},
			"host port twice":   {ID: good, Mode: network.ModeBridge, Ports: []network.PortMapping{tcp(8080, 80), tcp(8080, 81)}},
			"ports in host":     {ID: good, Mode: network.ModeHost, Ports: []network.PortMapping{tcp(80, 80)}},
			"ports in none":     {ID: good, Mode: network.ModeNone, Ports: []network.PortMapping{tcp(80, 80)}},
		} {
			if att, err := n.Attach(t.Context(), req); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: Attach = %+v, %v; want ErrInvalidArgument", name, att, err)
				if err == nil {
					n.Detach(t.Context(), att)
				}
			}
		}
		if err := n.Detach(t.Context(), network.Attachment{ID: "../x", Mode: network.ModeBridge}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Detach with id ../x = %v, want ErrInvalidArgument", err)
		}
		// A valid request with the same ID still works: nothing was left behind.
		attach(t, n, network.Request{ID: good, Mode: network.ModeBridge})
	})
}

// FreePort returns a TCP and UDP port nothing on the host listens on now,
// to use as a host port in a mapping.
func FreePort(t testing.TB) uint16 {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return uint16(port)
		}
	}
	t.Fatal("no port free for both tcp and udp")
	return 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
