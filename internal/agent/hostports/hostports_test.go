package hostports

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/quick"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestMain doubles as a helper process that holds a port, so tests can
// check ports bound by another process on the host.
func TestMain(m *testing.M) {
	if proto := os.Getenv("HOSTPORTS_TEST_HOLD"); proto != "" {
		holdPort(proto)
		return
	}
	os.Exit(m.Run())
}

// holdPort binds an ephemeral port, prints it and holds it until stdin closes.
func holdPort(proto string) {
	var port int
	var c io.Closer
	switch proto {
	case TCP:
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		port, c = l.Addr().(*net.TCPAddr).Port, l
	default:
		pc, err := net.ListenPacket("udp", ":0")
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		port, c = pc.LocalAddr().(*net.UDPAddr).Port, pc
	}
	fmt.Println(port)
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
	os.Exit(0)
}

// portHeldByOtherProcess starts a helper process holding a port and
// returns the port; the process ends with the test.
func portHeldByOtherProcess(t *testing.T, proto string) uint16 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HOSTPORTS_TEST_HOLD="+proto)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	p, err := strconv.ParseUint(strings.TrimSpace(line), 10, 16)
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	return uint16(p)
}

func free(string, uint16) bool { return true }

// memStore is a Persister in memory that can be made to fail.
type memStore struct {
	mu    sync.Mutex
	ports map[string][]Binding
	fail  error
	calls int
}

func (s *memStore) PutPorts(owner string, b []Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	if s.ports == nil {
		s.ports = map[string][]Binding{}
	}
	s.ports[owner] = slices.Clone(b)
	return nil
}

func (s *memStore) DeletePorts(owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	delete(s.ports, owner)
	return nil
}

func newAlloc(t *testing.T, cfg Config) *Allocator {
	t.Helper()
	if cfg.Probe == nil {
		cfg.Probe = free
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func dyn(proto string) PortRequest { return PortRequest{Proto: proto} }

func TestParseLocalPortRange(t *testing.T) {
	for in, want := range map[string]Range{
		"32768\t60999\n": {32768, 60999},
		"1024 65535":     {1024, 65535},
		"5 5":            {5, 5},
	} {
		if got, ok := parseLocalPortRange(in); !ok || got != want {
			t.Errorf("parse(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "32768", "0 10", "10 5", "1 70000", "a b", "1 2 3"} {
		if _, ok := parseLocalPortRange(in); ok {
			t.Errorf("parse(%q) accepted", in)
		}
	}
	r := DefaultRange()
	if r.First == 0 || r.First > r.Last {
		t.Errorf("DefaultRange() = %v", r)
	}
	if data, err := os.ReadFile(localPortRangeFile); err == nil {
		if want, ok := parseLocalPortRange(string(data)); ok && r != want {
			t.Errorf("DefaultRange() = %v, host says %v", r, want)
		}
	} else if r != FallbackRange {
		t.Errorf("DefaultRange() = %v without %s, want %v", r, localPortRangeFile, FallbackRange)
	}
}

func TestNewRejectsBadRange(t *testing.T) {
	for _, r := range []Range{{0, 10}, {10, 5}} {
		if _, err := New(Config{DynamicRange: r}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New(range %v) = %v", r, err)
		}
	}
}

func TestReserveStaticConflicts(t *testing.T) {
	store := &memStore{}
	busy := func(proto string, p uint16) bool { return !(proto == TCP && p == 9999) }
	a := newAlloc(t, Config{DynamicRange: Range{40000, 40009}, ReservedTCP: []uint16{22}, ReservedUDP: []uint16{53}, Probe: busy, Store: store})
	if _, err := a.Reserve("task-a", []PortRequest{{TCP, 8080}, {UDP, 8080}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		owner   string
		reqs    []PortRequest
		mention string
	}{
		{"reserved tcp", "task-b", []PortRequest{{TCP, 22}}, "22/tcp"},
		{"reserved udp", "task-b", []PortRequest{{UDP, 53}}, "53/udp"},
		{"held by another owner", "task-b", []PortRequest{{TCP, 8080}}, "task-a"},
		{"held by the same owner", "task-a", []PortRequest{{UDP, 8080}}, "8080/udp"},
		{"twice in one request", "task-b", []PortRequest{{TCP, 7000}, {TCP, 7000}}, "7000/tcp"},
		{"in use on the host", "task-b", []PortRequest{{TCP, 9999}}, "9999/tcp"},
		{"all or nothing", "task-b", []PortRequest{{TCP, 7001}, dyn(TCP), {TCP, 22}}, "22/tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := store.calls
			_, err := a.Reserve(tt.owner, tt.reqs)
			if !errors.Is(err, errdefs.ErrConflict) || !errors.Is(err, ErrPortUnavailable) {
				t.Fatalf("err = %v, want ErrConflict/ErrPortUnavailable", err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			if store.calls != calls {
				t.Error("a failed Reserve wrote to the store")
			}
		})
	}
	want := map[string][]Binding{"task-a": {{TCP, 8080}, {UDP, 8080}}}
	if diff := cmp.Diff(want, a.Allocations()); diff != "" {
		t.Errorf("allocations after failures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, store.ports); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	// UDP 22 is not reserved: the lists are per protocol.
	if _, err := a.Reserve("task-c", []PortRequest{{UDP, 22}}); err != nil {
		t.Errorf("udp 22: %v", err)
	}
}

func TestReserveInvalid(t *testing.T) {
	a := newAlloc(t, Config{DynamicRange: Range{100, 101}})
	for name, call := range map[string]func() error{
		"empty owner": func() error { _, err := a.Reserve("", []PortRequest{dyn(TCP)}); return err },
		"bad proto":   func() error { _, err := a.Reserve("x", []PortRequest{{"sctp", 1}}); return err },
		"empty proto": func() error { _, err := a.Reserve("x", []PortRequest{{"", 0}}); return err },
	} {
		if err := call(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	got, err := a.Reserve("x", nil)
	if err != nil || len(got) != 0 {
		t.Errorf("empty request = %v, %v", got, err)
	}
}

func TestReserveDynamicRoundRobin(t *testing.T) {
	unbindable := uint16(102)
	probe := func(proto string, p uint16) bool { return p != unbindable }
	a := newAlloc(t, Config{DynamicRange: Range{100, 105}, ReservedTCP: []uint16{103}, Probe: probe})
	got := func(owner string, reqs ...PortRequest) []uint16 {
		t.Helper()
		bs, err := a.Reserve(owner, reqs)
		if err != nil {
			t.Fatalf("Reserve(%s): %v", owner, err)
		}
		var ports []uint16
		for i, b := range bs {
			if b.Proto != reqs[i].Proto {
				t.Fatalf("binding %d has proto %s, want %s", i, b.Proto, reqs[i].Proto)
			}
			ports = append(ports, b.HostPort)
		}
		return ports
	}
	// 102 unbindable, 103 reserved: 100, 101, 104, 105.
	if p := got("a", dyn(TCP), dyn(TCP)); !slices.Equal(p, []uint16{100, 101}) {
		t.Errorf("first = %v", p)
	}
	if p := got("b", dyn(TCP)); !slices.Equal(p, []uint16{104}) {
		t.Errorf("second = %v", p)
	}
	// Round robin: after a release the freed port is not reused at once.
	if err := a.Release("a"); err != nil {
		t.Fatal(err)
	}
	if p := got("c", dyn(TCP)); !slices.Equal(p, []uint16{105}) {
		t.Errorf("third = %v, want 105", p)
	}
	if p := got("d", dyn(TCP), dyn(TCP)); !slices.Equal(p, []uint16{100, 101}) {
		t.Errorf("wrapped = %v, want [100 101]", p)
	}
	// Exhausted for TCP.
	_, err := a.Reserve("e", []PortRequest{dyn(TCP)})
	if !errors.Is(err, errdefs.ErrConflict) || !errors.Is(err, ErrNoFreePort) {
		t.Errorf("exhausted: %v", err)
	}
	// UDP is a separate space (103 is reserved for TCP only).
	if p := got("e", dyn(UDP), dyn(UDP), dyn(UDP), dyn(UDP), dyn(UDP)); !slices.Equal(p, []uint16{100, 101, 103, 104, 105}) {
		t.Errorf("udp = %v", p)
	}
	// A failed call is all or nothing and does not move the cursor.
	before := a.Allocations()
	if _, err := a.Reserve("f", []PortRequest{dyn(UDP)}); !errors.Is(err, ErrNoFreePort) {
		t.Errorf("udp exhausted: %v", err)
	}
	if diff := cmp.Diff(before, a.Allocations()); diff != "" {
		t.Errorf("failed Reserve changed allocations:\n%s", diff)
	}
}

func TestDynamicAvoidsStaticOfSameCall(t *testing.T) {
	a := newAlloc(t, Config{DynamicRange: Range{100, 101}})
	bs, err := a.Reserve("a", []PortRequest{dyn(TCP), {TCP, 100}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Binding{{TCP, 101}, {TCP, 100}}
	if diff := cmp.Diff(want, bs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPersistence(t *testing.T) {
	store := &memStore{}
	a := newAlloc(t, Config{DynamicRange: Range{100, 110}, Store: store})
	if _, err := a.Reserve("t1", []PortRequest{{TCP, 8080}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve("t1", []PortRequest{dyn(UDP)}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]Binding{"t1": {{TCP, 8080}, {UDP, 100}}}
	if diff := cmp.Diff(want, store.ports); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}

	// A failing store refuses the allocation and leaves everything as it was.
	boom := errors.New("disk full")
	store.fail = boom
	if _, err := a.Reserve("t2", []PortRequest{dyn(TCP)}); !errors.Is(err, boom) {
		t.Errorf("Reserve with failing store: %v", err)
	}
	if err := a.Release("t1"); !errors.Is(err, boom) {
		t.Errorf("Release with failing store: %v", err)
	}
	if diff := cmp.Diff(want, a.Allocations()); diff != "" {
		t.Errorf("allocations after store failures (-want +got):\n%s", diff)
	}
	store.fail = nil
	if bs, err := a.Reserve("t2", []PortRequest{dyn(TCP)}); err != nil || bs[0].HostPort != 100 {
		t.Errorf("Reserve after recovery = %v, %v (the cursor must not have moved)", bs, err)
	}
	if err := a.Release("t1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("t1"); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if diff := cmp.Diff(map[string][]Binding{"t2": {{TCP, 100}}}, store.ports); diff != "" {
		t.Errorf("stored after release (-want +got):\n%s", diff)
	}
}

func TestRestore(t *testing.T) {
	store := &memStore{}
	a := newAlloc(t, Config{DynamicRange: Range{100, 103}, Store: store})
	// Restore never probes: the adopted tasks may hold their ports.
	a.probe = func(string, uint16) bool { t.Error("Restore probed"); return false }
	err := a.Restore(map[string][]Binding{
		"t1": {{TCP, 100}, {TCP, 8080}, {TCP, 100}},
		"t2": {{UDP, 100}, {TCP, 8080}, {"sctp", 5}, {TCP, 0}},
		"":   {{TCP, 101}},
	})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Restore with conflicts: %v", err)
	}
	for _, m := range []string{"8080/tcp for t2", "t1", "sctp", "empty owner"} {
		if err == nil || !strings.Contains(err.Error(), m) {
			t.Errorf("Restore error %v does not mention %q", err, m)
		}
	}
	want := map[string][]Binding{"t1": {{TCP, 100}, {TCP, 8080}}, "t2": {{UDP, 100}}}
	if diff := cmp.Diff(want, a.Allocations()); diff != "" {
		t.Errorf("restored (-want +got):\n%s", diff)
	}
	if store.calls != 0 {
		t.Error("Restore wrote to the store")
	}
	a.probe = free
	bs, err := a.Reserve("t3", []PortRequest{dyn(TCP), dyn(UDP)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Binding{{TCP, 101}, {UDP, 101}}, bs); diff != "" {
		t.Errorf("after restore (-want +got):\n%s", diff)
	}
	if _, err := a.Reserve("t3", []PortRequest{{TCP, 8080}}); !errors.Is(err, ErrPortUnavailable) {
		t.Errorf("restored static port handed out again: %v", err)
	}
}

func TestPortHeldByAnotherProcessIsSkipped(t *testing.T) {
	for _, proto := range []string{TCP, UDP} {
		t.Run(proto, func(t *testing.T) {
			held := portHeldByOtherProcess(t, proto)
			if BindProbe(proto, held) {
				t.Fatalf("BindProbe(%s, %d) = true for a port another process holds", proto, held)
			}
			last := uint16(min(int(held)+50, 65535))
			a := newAlloc(t, Config{DynamicRange: Range{held, last}, Probe: BindProbe})
			bs, err := a.Reserve("t", []PortRequest{dyn(proto)})
			if err != nil {
				t.Fatal(err)
			}
			if bs[0].HostPort == held || bs[0].HostPort < held || bs[0].HostPort > last {
				t.Errorf("dynamic port %d; want one in %d-%d other than %d", bs[0].HostPort, held+1, last, held)
			}
			_, err = a.Reserve("t2", []PortRequest{{proto, held}})
			if !errors.Is(err, ErrPortUnavailable) || !strings.Contains(err.Error(), strconv.Itoa(int(held))) {
				t.Errorf("static request for a held port: %v", err)
			}
		})
	}
}

func TestBindProbeInProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := uint16(l.Addr().(*net.TCPAddr).Port)
	if BindProbe(TCP, p) {
		t.Error("a port bound on 127.0.0.1 probed as free on the wildcard address")
	}
	l.Close()
	if !BindProbe(TCP, p) {
		t.Error("a just-released port probed as busy")
	}
	if BindProbe("sctp", p) {
		t.Error("unknown protocol probed as free")
	}
}

// TestConcurrentReserveNeverSharesAPort is a property test: random
// concurrent Reserve/Release sequences over a small range never hand one
// port to two owners at once, and the allocator's table matches what the
// callers were given.
func TestConcurrentReserveNeverSharesAPort(t *testing.T) {
	prop := func(seed int64) bool {
		store := &memStore{}
		a, err := New(Config{DynamicRange: Range{1000, 1019}, ReservedTCP: []uint16{1005}, Probe: free, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		held := map[Binding]string{} // the callers' view
		mine := map[string][]Binding{}
		var failed error
		fail := func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if failed == nil {
				failed = fmt.Errorf(format, args...)
			}
		}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewSource(seed + int64(w)))
				for range 60 {
					owner := fmt.Sprintf("w%d-o%d", w, rng.Intn(3))
					if rng.Intn(3) == 0 {
						mu.Lock() // forget before releasing: the port is not reusable until Release returns
						for _, b := range mine[owner] {
							delete(held, b)
						}
						delete(mine, owner)
						mu.Unlock()
						if err := a.Release(owner); err != nil {
							fail("Release: %v", err)
						}
						continue
					}
					var reqs []PortRequest
					for range rng.Intn(3) + 1 {
						proto := []string{TCP, UDP}[rng.Intn(2)]
						port := uint16(0)
						if rng.Intn(4) == 0 {
							port = uint16(1000 + rng.Intn(25)) // some outside the range
						}
						reqs = append(reqs, PortRequest{proto, port})
					}
					bs, err := a.Reserve(owner, reqs)
					if err != nil {
						if !errors.Is(err, errdefs.ErrConflict) {
							fail("Reserve: unexpected error %v", err)
						}
						continue
					}
					mu.Lock()
					for j, b := range bs {
						if other, ok := held[b]; ok {
							failed = fmt.Errorf("seed %d: %s given to %s while %s holds it", seed, b, owner, other)
						}
						if b.Proto == TCP && b.HostPort == 1005 {
							failed = fmt.Errorf("reserved port handed out")
						}
						if reqs[j].HostPort != 0 && reqs[j].HostPort != b.HostPort || b.Proto != reqs[j].Proto {
							failed = fmt.Errorf("binding %v does not answer request %v", b, reqs[j])
						}
						held[b] = owner
						mine[owner] = append(mine[owner], b)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if failed != nil {
			t.Log(failed)
			return false
		}
		for o, bs := range mine {
			if len(bs) == 0 {
				delete(mine, o)
			}
		}
		if diff := cmp.Diff(mine, a.Allocations()); diff != "" {
			t.Logf("seed %d: allocator disagrees with callers (-callers +allocator):\n%s", seed, diff)
			return false
		}
		if diff := cmp.Diff(mine, store.ports); diff != "" && !(len(mine) == 0 && len(store.ports) == 0) {
			t.Logf("seed %d: store disagrees with callers (-callers +store):\n%s", seed, diff)
			return false
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 30}); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseLocalPortRange(f *testing.F) {
	for _, s := range []string{"32768\t60999\n", "1 1", "", "0 0", "65535 65535", "10 5", "-1 5", "1\n2\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := parseLocalPortRange(s)
		if ok && (r.First == 0 || r.First > r.Last) {
			t.Fatalf("parse(%q) accepted %v", s, r)
		}
	})
}
