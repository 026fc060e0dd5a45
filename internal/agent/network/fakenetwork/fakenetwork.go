// Package fakenetwork is an in-memory network.Network for agent tests: it
// hands out made-up namespace paths and addresses, records what is
// attached, and can be told to fail. It passes the same conformance suite
// (network/networktest) as the CNI network.
package fakenetwork

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

// NetNSDir is the made-up directory of bridge-mode namespace paths. Nothing
// exists there; runtimes fed from the fake must not open the path.
const NetNSDir = "/run/berth/fakenetwork"

// Network is the fake. The zero value is not usable; call New.
type Network struct {
	mu        sync.Mutex
	atts      map[string]network.Attachment
	next      netip.Addr // next address to hand out
	attachErr error
	detachErr error
	attaches  int // successful Attach calls that attached something new
	detaches  int // successful Detach calls that removed something
}

var _ network.Network = (*Network)(nil)

// New returns an empty fake whose bridge-mode addresses start at 10.254.0.2.
func New() *Network {
	return &Network{atts: make(map[string]network.Attachment), next: netip.MustParseAddr("10.254.0.2")}
}

// Attach implements network.Network.
func (n *Network) Attach(ctx context.Context, req network.Request) (network.Attachment, error) {
	if err := req.Validate(); err != nil {
		return network.Attachment{}, err
	}
	if err := ctx.Err(); err != nil {
		return network.Attachment{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.attachErr != nil {
		return network.Attachment{}, n.attachErr
	}
	if att, ok := n.atts[req.ID]; ok {
		if !att.Matches(req) {
			return network.Attachment{}, errdefs.Conflict(fmt.Sprintf("network: %s is already attached (%s) with other settings", req.ID, att.Mode))
		}
		return clone(att), nil
	}
	att := network.Attachment{ID: req.ID, Mode: req.Mode, Ports: slices.Clone(req.Ports)}
	switch req.Mode {
	case network.ModeHost:
		att.NetNSPath = runtime.NetNSHost
	case network.ModeBridge:
		att.NetNSPath = NetNSDir + "/" + req.ID
		att.IPv4 = n.next.String()
		n.next = n.next.Next()
	}
	n.atts[req.ID] = att
	n.attaches++
	return clone(att), nil
}

// Detach implements network.Network.
func (n *Network) Detach(ctx context.Context, att network.Attachment) error {
	if err := network.ValidateID(att.ID); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.detachErr != nil {
		return n.detachErr
	}
	if _, ok := n.atts[att.ID]; ok {
		delete(n.atts, att.ID)
		n.detaches++
	}
	return nil
}

// List returns the current attachments sorted by ID, as CNI.List does.
func (n *Network) List(ctx context.Context) ([]network.Attachment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]network.Attachment, 0, len(n.atts))
	for _, a := range n.atts {
		out = append(out, clone(a))
	}
	slices.SortFunc(out, func(a, b network.Attachment) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Get returns the attachment of id, if attached.
func (n *Network) Get(id string) (network.Attachment, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.atts[id]
	return clone(a), ok
}

// FailAttach makes every Attach fail with err until FailAttach(nil).
func (n *Network) FailAttach(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.attachErr = err
}

// FailDetach makes every Detach fail with err until FailDetach(nil).
func (n *Network) FailDetach(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.detachErr = err
}

// Counts returns how many Attach calls attached something new and how many
// Detach calls removed something.
func (n *Network) Counts() (attaches, detaches int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attaches, n.detaches
}

func clone(a network.Attachment) network.Attachment {
	a.Ports = slices.Clone(a.Ports)
	return a
}
