package network_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/network/networktest"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
)

// requireCNI skips (or fails under CI) unless this machine can run the real
// chain: root, the plugins and iptables.
func requireCNI(t *testing.T) {
	t.Helper()
	testenv.Root(t)
	missing := []string{}
	for _, p := range network.RequiredPlugins {
		if !network.FindPlugin(network.DefaultPluginDirs, p) {
			missing = append(missing, p)
		}
	}
	testenv.Require(t, fmt.Sprintf("CNI plugins %v in %v (scripts/deps.sh need_test_deps)", missing, network.DefaultPluginDirs), len(missing) == 0)
	for _, bin := range []string{"iptables", "ip"} {
		_, err := exec.LookPath(bin)
		testenv.Require(t, bin+" in PATH (Debian packages iptables, iproute2)", err == nil)
	}
}

var subnetSeq atomic.Uint32

// testSubnet picks a /24 in 10.200.0.0–10.249.255.0 that no host interface
// uses; tests in parallel packages pick at random, tests in this process
// also never repeat.
func testSubnet(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	start, _ := rand.Int(rand.Reader, big.NewInt(50*256))
	for range 50 * 256 {
		n := (uint32(start.Int64()) + subnetSeq.Add(1)) % (50 * 256)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + n/256), byte(n % 256), 0}), 24)
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				ones, _ := ipn.Mask.Size()
				if hp, ok := netip.AddrFromSlice(ipn.IP); ok && netip.PrefixFrom(hp.Unmap(), ones).Masked().Overlaps(p) {
					used = true
				}
			}
		}
		if !used {
			return p.String()
		}
	}
	t.Fatal("no free test subnet")
	return ""
}

// newTestCNI makes a CNI with its own bridge, subnet and directories. When
// the test ends, after its attachments are detached, it checks that no
// iptables rule names the network any more and deletes the bridge.
func newTestCNI(t *testing.T, adjust ...func(*network.Config)) *network.CNI {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	cfg := network.Config{
		BridgeName: "bt" + hex.EncodeToString(b),
		Subnet:     testSubnet(t),
		NetNSDir:   t.TempDir(),
		DataDir:    t.TempDir(),
	}
	for _, f := range adjust {
		f(&cfg)
	}
	c, err := network.NewCNI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Rules name the network in comments (portmap) or the subnet (the
	// bridge's host rules, removed first); the subnet is this test's alone.
	subnet := netip.MustParsePrefix(cfg.Subnet)
	subnetRE := regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(strings.TrimSuffix(subnet.Addr().String(), "0")) + `[0-9]+/`)
	// Rules that were there before (another bridge's wider subnet that the
	// pattern happens to match) are not this test's.
	before := map[string]bool{}
	for _, table := range []string{"nat", "filter"} {
		for _, rule := range iptablesRules(t, table) {
			before[table+" "+rule] = true
		}
	}
	t.Cleanup(func() {
		if err := c.RemoveHostRules(context.Background()); err != nil {
			t.Error(err)
		}
		for _, table := range []string{"nat", "filter"} {
			for _, rule := range iptablesRules(t, table) {
				if !before[table+" "+rule] && (strings.Contains(rule, c.NetName()) || subnetRE.MatchString(rule)) {
					t.Errorf("after every Detach, iptables -t %s still has %q", table, rule)
				}
			}
		}
		// Whatever a failed test left: unmount namespaces before TempDir goes.
		entries, _ := os.ReadDir(cfg.NetNSDir)
		for _, e := range entries {
			network.RemoveNetNS(filepath.Join(cfg.NetNSDir, e.Name()))
		}
		if _, err := net.InterfaceByName(cfg.BridgeName); err == nil {
			if out, err := exec.Command("ip", "link", "del", cfg.BridgeName).CombinedOutput(); err != nil {
				t.Errorf("ip link del %s: %v: %s", cfg.BridgeName, err, out)
			}
		}
	})
	return c
}

func iptablesRules(t *testing.T, table string) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", table, "-S").Output()
	if err != nil {
		t.Fatalf("iptables -t %s -S: %v", table, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// rulesNaming returns the nat and filter rules that mention word (a port or
// an address) as a whole token.
func rulesNaming(t *testing.T, word string) []string {
	t.Helper()
	re := regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(word) + `($|[^0-9.])`)
	var out []string
	for _, table := range []string{"nat", "filter"} {
		for _, r := range iptablesRules(t, table) {
			if re.MatchString(r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func attachT(t *testing.T, n network.Network, req network.Request) network.Attachment {
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

// serveInNetNS listens on 0.0.0.0:port inside the namespace at path and
// answers every connection with reply and the address it came from.
func serveInNetNS(t *testing.T, path string, port int, reply string) {
	t.Helper()
	var l net.Listener
	err := network.InNetNS(path, func() (err error) {
		l, err = net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, reply)
}

// serve answers each connection on l with "reply from=<peer ip>".
func serve(t *testing.T, l net.Listener, reply string) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			peer := conn.RemoteAddr().(*net.TCPAddr).IP
			fmt.Fprintf(conn, "%s from=%s", reply, peer)
			conn.Close()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
}

// ask connects to addr and returns what the server says.
func ask(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	return string(b), err
}

// hostAddress returns an IPv4 address of an up, non-loopback interface
// that is not a test bridge, or "" if the machine has none.
func hostAddress(t *testing.T) string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "bt") || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return ""
}

func TestCNIConformance(t *testing.T) {
	requireCNI(t)
	networktest.Run(t, func(t *testing.T) network.Network { return newTestCNI(t) })
}

func TestCNIHostPortsReachTheirContainer(t *testing.T) {
	requireCNI(t)
	t.Parallel()
	c := newTestCNI(t)
	hostAddr := hostAddress(t)
	if hostAddr == "" {
		t.Log("no non-loopback host address; checking 127.0.0.1 and the bridge only")
	}
	type ctr struct {
		name     string
		hostPort uint16
		att      network.Attachment
	}
	ctrs := []*ctr{{name: "a"}, {name: "b"}}
	for _, k := range ctrs {
		k.hostPort = networktest.FreePort(t)
		k.att = attachT(t, c, network.Request{ID: "ports-" + k.name, Mode: network.ModeBridge, Ports: []network.PortMapping{{ContainerPort: 8080, HostPort: k.hostPort, Protocol: "tcp"}}})
		if !network.IsNetNS(k.att.NetNSPath) {
			t.Fatalf("%s: %s is not a mounted network namespace", k.name, k.att.NetNSPath)
		}
		serveInNetNS(t, k.att.NetNSPath, 8080, k.name)
	}
	for _, k := range ctrs {
		targets := []string{
			net.JoinHostPort("127.0.0.1", strconv.Itoa(int(k.hostPort))),
			net.JoinHostPort(k.att.IPv4, "8080"),
		}
		if hostAddr != "" {
			targets = append(targets, net.JoinHostPort(hostAddr, strconv.Itoa(int(k.hostPort))))
		}
		for _, addr := range targets {
			got, err := ask(addr)
			if err != nil || !strings.HasPrefix(got, k.name+" ") {
				t.Errorf("%s via %s: got %q, %v; want %q's answer", k.name, addr, got, err, k.name)
			}
		}
	}

	// Detach a: its port goes quiet, its rules and namespace go; b stays.
	a, b := ctrs[0], ctrs[1]
	if err := c.Detach(t.Context(), a.att); err != nil {
		t.Fatal(err)
	}
	if got, err := ask(net.JoinHostPort("127.0.0.1", strconv.Itoa(int(a.hostPort)))); err == nil {
		t.Errorf("after Detach, 127.0.0.1:%d still answers %q", a.hostPort, got)
	}
	for _, word := range []string{strconv.Itoa(int(a.hostPort)), a.att.IPv4} {
		if rules := rulesNaming(t, word); len(rules) > 0 {
			t.Errorf("after Detach, iptables rules still name %s:\n%s", word, strings.Join(rules, "\n"))
		}
	}
	if network.FileExists(a.att.NetNSPath) {
		t.Errorf("after Detach, %s still exists", a.att.NetNSPath)
	}
	if got, err := ask(net.JoinHostPort("127.0.0.1", strconv.Itoa(int(b.hostPort)))); err != nil || !strings.HasPrefix(got, "b ") {
		t.Errorf("after detaching a, b's port answers %q, %v", got, err)
	}
}

func TestCNIContainersReachTheEndpointAddress(t *testing.T) {
	requireCNI(t)
	t.Parallel()
	for range 2 { // idempotent
		if err := network.EnsureEndpointAddress(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := network.LoopbackHas(netip.MustParseAddr(network.EndpointAddress)); !ok || err != nil {
		t.Fatalf("lo has %s: %v, %v", network.EndpointAddress, ok, err)
	}
	l, err := net.Listen("tcp4", net.JoinHostPort(network.EndpointAddress, "0"))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, "endpoint")

	c := newTestCNI(t)
	att := attachT(t, c, network.Request{ID: "endpoint", Mode: network.ModeBridge})
	var got string
	err = network.InNetNS(att.NetNSPath, func() (err error) {
		got, err = ask(l.Addr().String())
		return err
	})
	// The caller's own address arrives (no NAT), so the agent can tell
	// which task asks.
	if want := "endpoint from=" + att.IPv4; err != nil || got != want {
		t.Errorf("from the container, %s answered %q, %v; want %q", l.Addr(), got, err, want)
	}
}

func TestCNIRestartKeepsAttachments(t *testing.T) {
	requireCNI(t)
	t.Parallel()
	c1 := newTestCNI(t)
	req := network.Request{ID: "restart", Mode: network.ModeBridge, Ports: []network.PortMapping{{ContainerPort: 80, HostPort: networktest.FreePort(t), Protocol: "tcp"}}}
	att, err := c1.Attach(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := network.NewCNI(c1.Config())
	if err != nil {
		t.Fatal(err)
	}
	again, err := c2.Attach(t.Context(), req)
	if err != nil || !cmp.Equal(att, again) {
		t.Fatalf("Attach after restart = %+v, %v; want %+v", again, err, att)
	}
	list, err := c2.List(t.Context())
	if err != nil || !cmp.Equal(list, []network.Attachment{att}) {
		t.Fatalf("List after restart = %+v, %v; want [%+v]", list, err, att)
	}
	// The agent's persisted attachment may be stale; the record wins.
	if err := c2.Detach(t.Context(), network.Attachment{ID: att.ID, Mode: network.ModeBridge}); err != nil {
		t.Fatal(err)
	}
	if rules := rulesNaming(t, strconv.Itoa(int(req.Ports[0].HostPort))); len(rules) > 0 {
		t.Errorf("Detach after restart left rules:\n%s", strings.Join(rules, "\n"))
	}
	if list, _ := c2.List(t.Context()); len(list) != 0 {
		t.Errorf("List after Detach = %+v", list)
	}
}

// An agent that died between CNI ADD and the final record left a pending
// record, a namespace and DNAT rules; the next Attach of the ID clears them
// (with the old ports) before attaching afresh.
func TestCNIAttachRecoversFromAnInterruptedAttach(t *testing.T) {
	requireCNI(t)
	t.Parallel()
	c := newTestCNI(t)
	oldPort := networktest.FreePort(t)
	crashed := network.Attachment{ID: "crashed", Mode: network.ModeBridge, Ports: []network.PortMapping{{ContainerPort: 80, HostPort: oldPort, Protocol: "tcp"}}}
	if err := c.InterruptAttach(t.Context(), crashed); err != nil {
		t.Fatal(err)
	}
	if len(rulesNaming(t, strconv.Itoa(int(oldPort)))) == 0 {
		t.Fatal("the interrupted attach made no DNAT rule; the test proves nothing")
	}

	att := attachT(t, c, network.Request{ID: "crashed", Mode: network.ModeBridge})
	if len(att.Ports) != 0 || !network.IsNetNS(att.NetNSPath) {
		t.Errorf("Attach = %+v, want a fresh attachment without ports", att)
	}
	if rules := rulesNaming(t, strconv.Itoa(int(oldPort))); len(rules) > 0 {
		t.Errorf("the interrupted attach's rules survived:\n%s", strings.Join(rules, "\n"))
	}
}

// A failed CNI ADD (here: the /29's five addresses are taken) leaves no
// namespace and no record behind.
func TestCNIFailedAttachLeavesNothing(t *testing.T) {
	requireCNI(t)
	t.Parallel()
	c := newTestCNI(t, func(cfg *network.Config) {
		p := netip.MustParsePrefix(cfg.Subnet)
		cfg.Subnet = netip.PrefixFrom(p.Addr(), 29).String()
	})
	for i := range 5 {
		attachT(t, c, network.Request{ID: "full" + strconv.Itoa(i), Mode: network.ModeBridge})
	}
	_, err := c.Attach(t.Context(), network.Request{ID: "overflow", Mode: network.ModeBridge})
	if !errors.Is(err, errdefs.ErrInternal) {
		t.Fatalf("Attach beyond the subnet = %v, want an ErrInternal failure", err)
	}
	if network.FileExists(c.NetNSPathOf("overflow")) {
		t.Error("the failed Attach left its namespace")
	}
	if c.HasRecord("overflow") {
		t.Error("the failed Attach left its record")
	}
}

// TestCNIPrepareThenAttach: a prepared namespace is the one Attach wires
// (a listener started in it before the ADD answers on the host port
// after), preparing again gives the same path, and Detach removes it all.
func TestCNIPrepareThenAttach(t *testing.T) {
	requireCNI(t)
	t.Parallel()
	c := newTestCNI(t)
	port := networktest.FreePort(t)
	req := network.Request{ID: "prep-a", Mode: network.ModeBridge, Ports: []network.PortMapping{{ContainerPort: 8080, HostPort: port, Protocol: "tcp"}}}
	path, err := c.Prepare(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !network.IsNetNS(path) {
		t.Fatalf("%s is not a mounted network namespace", path)
	}
	serveInNetNS(t, path, 8080, "prepared")
	if again, err := c.Prepare(t.Context(), req); err != nil || again != path {
		t.Fatalf("second Prepare: %q %v", again, err)
	}
	att := attachT(t, c, req)
	if att.NetNSPath != path || att.IPv4 == "" {
		t.Fatalf("attachment %+v, want the prepared namespace %s wired", att, path)
	}
	if again, err := c.Prepare(t.Context(), req); err != nil || again != path {
		t.Fatalf("Prepare after Attach: %q %v", again, err)
	}
	if got, err := ask(net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))); err != nil || !strings.HasPrefix(got, "prepared ") {
		t.Fatalf("host port: %q %v", got, err)
	}
	if _, err := c.Prepare(t.Context(), network.Request{ID: "prep-b", Mode: network.ModeHost}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("preparing host mode: %v", err)
	}
	if err := c.Detach(t.Context(), att); err != nil {
		t.Fatal(err)
	}
	if network.FileExists(path) {
		t.Errorf("after Detach, %s still exists", path)
	}
}
