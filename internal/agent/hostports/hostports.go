// Package hostports allocates host ports for bridge-mode tasks: static
// hostPorts are checked and claimed, dynamic ones (hostPort 0) are drawn
// round-robin from the ephemeral range, as the ECS agent does. TCP and UDP
// are separate port spaces. Every allocation is written through a Persister
// before it is handed out, so a restarted agent can Restore the same ports
// for the tasks it adopts.
//
// The allocator is the only authority on which host ports berth's tasks
// hold: the CNI portmap plugin only installs DNAT rules and binds nothing,
// so the kernel cannot arbitrate between two tasks. For ports held by other
// processes on the host, a bind probe skips (dynamic) or refuses (static)
// them at allocation time.
package hostports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Protocols.
const (
	TCP = "tcp"
	UDP = "udp"
)

// Reasons carried by the ErrConflict errors of Reserve (see errdefs.Error).
var (
	// ErrPortUnavailable: a static host port is reserved, allocated or in use
	// on the host — ECS's RESOURCE:PORTS.
	ErrPortUnavailable = errors.New("host port unavailable")
	// ErrNoFreePort: the dynamic range has no free port left.
	ErrNoFreePort = errors.New("no free host port")
)

// Range is an inclusive port range.
type Range struct {
	First, Last uint16
}

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

func (r Range) size() int { return int(r.Last) - int(r.First) + 1 }

func (r Range) contains(p uint16) bool { return p >= r.First && p <= r.Last }

// FallbackRange is the ECS agent's dynamic range on Linux when
// ip_local_port_range cannot be read.
var FallbackRange = Range{First: 49153, Last: 65535}

const localPortRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// DefaultRange is the host's ephemeral port range
// (/proc/sys/net/ipv4/ip_local_port_range), or FallbackRange.
func DefaultRange() Range {
	data, err := os.ReadFile(localPortRangeFile)
	if err != nil {
		return FallbackRange
	}
	if r, ok := parseLocalPortRange(string(data)); ok {
		return r
	}
	return FallbackRange
}

func parseLocalPortRange(s string) (Range, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Range{}, false
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || lo > hi {
		return Range{}, false
	}
	return Range{First: uint16(lo), Last: uint16(hi)}, true
}

// Binding is one host port held by an owner.
type Binding struct {
	Proto    string `json:"proto"` // TCP or UDP
	HostPort uint16 `json:"hostPort"`
}

func (b Binding) String() string { return fmt.Sprintf("%d/%s", b.HostPort, b.Proto) }

// PortRequest asks for one host port: HostPort 0 means any port from the
// dynamic range.
type PortRequest struct {
	Proto    string // TCP or UDP
	HostPort uint16
}

// Persister stores the allocation table. PutPorts replaces everything held
// by owner; DeletePorts forgets owner (and is a no-op for an unknown one).
// Both must be durable when they return: the allocator hands a port out
// only after PutPorts succeeded. internal/agent/state implements it.
type Persister interface {
	PutPorts(owner string, bindings []Binding) error
	DeletePorts(owner string) error
}

// Config configures an Allocator. Every field is optional.
type Config struct {
	// DynamicRange is where dynamic ports come from; zero means DefaultRange().
	DynamicRange Range
	// ReservedTCP and ReservedUDP are never handed out, static or dynamic
	// (ECS_RESERVED_PORTS, ECS_RESERVED_PORTS_UDP).
	ReservedTCP, ReservedUDP []uint16
	// Probe reports whether a port is free on the host right now; nil means
	// BindProbe. Tests replace it.
	Probe func(proto string, port uint16) bool
	// Store persists allocations; nil keeps them in memory only.
	Store Persister
}

// Allocator hands out host ports. It is safe for concurrent use.
type Allocator struct {
	rng      Range
	reserved map[Binding]bool
	probe    func(string, uint16) bool
	store    Persister

	mu     sync.Mutex           // guards the fields below
	owners map[string][]Binding // owner → its ports, in allocation order
	taken  map[Binding]string   // port → owner
	next   map[string]uint16    // proto → next dynamic candidate
}

// New returns an allocator with nothing allocated; call Restore to adopt a
// previous run's allocations.
func New(cfg Config) (*Allocator, error) {
	rng := cfg.DynamicRange
	if rng == (Range{}) {
		rng = DefaultRange()
	}
	if rng.First == 0 || rng.First > rng.Last {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("hostports: dynamic range %s: want 1 ≤ first ≤ last ≤ 65535", rng))
	}
	a := &Allocator{
		rng:      rng,
		reserved: map[Binding]bool{},
		probe:    cfg.Probe,
		store:    cfg.Store,
		owners:   map[string][]Binding{},
		taken:    map[Binding]string{},
		next:     map[string]uint16{TCP: rng.First, UDP: rng.First},
	}
	if a.probe == nil {
		a.probe = BindProbe
	}
	for _, p := range cfg.ReservedTCP {
		a.reserved[Binding{TCP, p}] = true
	}
	for _, p := range cfg.ReservedUDP {
		a.reserved[Binding{UDP, p}] = true
	}
	return a, nil
}

// Range returns the dynamic range in use.
func (a *Allocator) Range() Range { return a.rng }

// Reserve allocates one host port per request to owner (a task ARN, say)
// and returns them in request order. It is all or nothing: on error nothing
// is allocated. Calling it again for the same owner adds ports.
//
// A static port must be outside the reserved lists, not held by any owner
// (this one included: two containers cannot share a host port) and
// bindable on the host; otherwise the error is of kind errdefs.ErrConflict
// with reason ErrPortUnavailable and names the port. A dynamic port is the
// next free one round-robin from the range, skipping reserved, allocated
// and unbindable ports; when none is left the error is ErrConflict with
// reason ErrNoFreePort.
func (a *Allocator) Reserve(owner string, reqs []PortRequest) ([]Binding, error) {
	if owner == "" {
		return nil, errdefs.InvalidArgument("hostports: empty owner")
	}
	for _, r := range reqs {
		if r.Proto != TCP && r.Proto != UDP {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("hostports: protocol %q: want tcp or udp", r.Proto))
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()

	out := make([]Binding, len(reqs))
	chosen := map[Binding]bool{}
	// Static ports first, so a dynamic pick cannot take a port the same call
	// asks for explicitly.
	for i, r := range reqs {
		if r.HostPort == 0 {
			continue
		}
		b := Binding{r.Proto, r.HostPort}
		if err := a.checkStatic(owner, b, chosen); err != nil {
			return nil, err
		}
		chosen[b] = true
		out[i] = b
	}
	next := map[string]uint16{TCP: a.next[TCP], UDP: a.next[UDP]}
	for i, r := range reqs {
		if r.HostPort != 0 {
			continue
		}
		p, ok := a.pickDynamic(r.Proto, next[r.Proto], chosen)
		if !ok {
			return nil, &errdefs.Error{Kind: errdefs.ErrConflict, Reason: ErrNoFreePort,
				Message: fmt.Sprintf("no free %s host port in the dynamic range %s", r.Proto, a.rng)}
		}
		b := Binding{r.Proto, p}
		chosen[b] = true
		out[i] = b
		next[r.Proto] = a.after(p)
	}
	if len(out) == 0 {
		return out, nil
	}

	all := append(slices.Clone(a.owners[owner]), out...)
	if a.store != nil {
		if err := a.store.PutPorts(owner, all); err != nil {
			return nil, fmt.Errorf("hostports: persisting the ports of %s: %w", owner, err)
		}
	}
	a.owners[owner] = all
	for _, b := range out {
		a.taken[b] = owner
	}
	a.next = next
	return out, nil
}

func (a *Allocator) checkStatic(owner string, b Binding, chosen map[Binding]bool) error {
	conflict := func(why string) error {
		return &errdefs.Error{Kind: errdefs.ErrConflict, Reason: ErrPortUnavailable,
			Message: fmt.Sprintf("host port %s %s", b, why)}
	}
	switch holder, held := a.taken[b]; {
	case a.reserved[b]:
		return conflict("is reserved on this instance")
	case chosen[b]:
		return conflict("is requested twice")
	case held && holder == owner:
		return conflict("is already allocated to " + owner)
	case held:
		return conflict("is already allocated to " + holder)
	case !a.probe(b.Proto, b.HostPort):
		return conflict("is in use on the host")
	}
	return nil
}

// pickDynamic scans the whole range once, starting at from.
func (a *Allocator) pickDynamic(proto string, from uint16, chosen map[Binding]bool) (uint16, bool) {
	if !a.rng.contains(from) {
		from = a.rng.First
	}
	p := from
	for range a.rng.size() {
		b := Binding{proto, p}
		if _, held := a.taken[b]; !held && !a.reserved[b] && !chosen[b] && a.probe(proto, p) {
			return p, true
		}
		p = a.after(p)
	}
	return 0, false
}

// after is the port after p in the range, wrapping around.
func (a *Allocator) after(p uint16) uint16 {
	if p >= a.rng.Last {
		return a.rng.First
	}
	return p + 1
}

// Release frees every port owner holds. It is idempotent. If the Persister
// fails, nothing is freed and the error is returned, so memory and disk
// never disagree; the caller retries.
func (a *Allocator) Release(owner string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.store != nil {
		if err := a.store.DeletePorts(owner); err != nil {
			return fmt.Errorf("hostports: forgetting the ports of %s: %w", owner, err)
		}
	}
	for _, b := range a.owners[owner] {
		delete(a.taken, b)
	}
	delete(a.owners, owner)
	return nil
}

// Restore adopts allocations persisted by a previous run (state's Ports),
// without probing (the ports may well be in use by the very tasks being
// adopted) and without writing them back. A binding another owner already
// holds, or with a bad protocol or port, is skipped and reported in the
// returned error; the rest are restored.
func (a *Allocator) Restore(allocs map[string][]Binding) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	owners := make([]string, 0, len(allocs))
	for o := range allocs {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	var errs []error
	for _, owner := range owners {
		for _, b := range allocs[owner] {
			holder, held := a.taken[b]
			switch {
			case owner == "":
				errs = append(errs, fmt.Errorf("hostports: restoring %s: empty owner", b))
			case b.Proto != TCP && b.Proto != UDP || b.HostPort == 0:
				errs = append(errs, fmt.Errorf("hostports: restoring %s for %s: not a valid binding", b, owner))
			case held && holder != owner:
				errs = append(errs, fmt.Errorf("hostports: restoring %s for %s: already held by %s", b, owner, holder))
			case held:
				// the same binding twice for one owner: keep one
			default:
				a.taken[b] = owner
				a.owners[owner] = append(a.owners[owner], b)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errdefs.New(errdefs.ErrConflict, err.Error())
	}
	return nil
}

// Allocations returns a copy of the allocation table.
func (a *Allocator) Allocations() map[string][]Binding {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string][]Binding, len(a.owners))
	for o, bs := range a.owners {
		out[o] = slices.Clone(bs)
	}
	return out
}

// BindProbe reports whether port can be bound on all of the host's
// addresses right now, by binding it and letting go. With Go's default
// dual-stack wildcard socket this fails when anything holds the port on
// any IPv4 or IPv6 address. It is a point-in-time check: nothing stops
// another process from taking the port afterwards.
func BindProbe(proto string, port uint16) bool {
	addr := net.JoinHostPort("", strconv.Itoa(int(port)))
	switch proto {
	case TCP:
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		return true
	case UDP:
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	return false
}
