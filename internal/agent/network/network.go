// Package network gives containers their network as ECS network modes
// describe it: bridge (a network namespace per container on the agent's
// CNI bridge, with host ports published through portmap), host (the
// machine's own namespace) and none (loopback only). It also owns the
// task-endpoint address 169.254.170.2 on the host.
package network

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Mode is an ECS network mode (awsvpc arrives with the Fargate work).
type Mode string

// Network modes.
const (
	ModeBridge Mode = "bridge"
	ModeHost   Mode = "host"
	ModeNone   Mode = "none"
)

// PortMapping publishes a container port on a host port. HostPort is chosen
// by the agent (hostports) before Attach; the network only wires it.
type PortMapping struct {
	ContainerPort uint16 `json:"containerPort"`
	HostPort      uint16 `json:"hostPort"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
}

// Request asks for the network of one container.
type Request struct {
	// ID is the container's runtime id; it names the namespace and the
	// CNI attachment, so Attach with the same ID is idempotent.
	ID    string
	Mode  Mode
	Ports []PortMapping // bridge only
}

// Attachment is what Attach did; the agent persists it (JSON) so Detach
// works after an agent restart.
type Attachment struct {
	ID   string `json:"id"`
	Mode Mode   `json:"mode"`
	// NetNSPath is what runtime.ContainerSpec.NetNSPath takes: a bind-mounted
	// namespace path (bridge), runtime.NetNSHost (host) or "" (none).
	NetNSPath string        `json:"netnsPath,omitempty"`
	IPv4      string        `json:"ipv4,omitempty"` // bridge: the container's address
	Ports     []PortMapping `json:"ports,omitempty"`
}

// Network attaches and detaches containers.
type Network interface {
	// Attach prepares the network for one container before it is created.
	// Calling it again with the same ID returns the existing attachment.
	Attach(ctx context.Context, req Request) (Attachment, error)
	// Detach undoes Attach (CNI DEL, namespace removed, port mappings
	// gone). Detaching something already gone is not an error.
	Detach(ctx context.Context, att Attachment) error
}

// MaxIDLength bounds Request.ID; IDs name files, so they stay short.
const MaxIDLength = 128

// Validate reports, as errdefs.ErrInvalidArgument, what is wrong with r:
// an ID that is not a safe file name ([A-Za-z0-9][A-Za-z0-9_.-]*), an
// unknown mode, or port mappings that are incomplete, duplicated or given
// outside bridge mode. Every implementation checks requests the same way.
func (r Request) Validate() error {
	if err := ValidateID(r.ID); err != nil {
		return err
	}
	switch r.Mode {
	case ModeBridge, ModeHost, ModeNone:
	default:
		return errdefs.InvalidArgument(fmt.Sprintf("network mode %q: want bridge, host or none", r.Mode))
	}
	if len(r.Ports) > 0 && r.Mode != ModeBridge {
		return errdefs.InvalidArgument(fmt.Sprintf("port mappings need network mode bridge, not %s", r.Mode))
	}
	seen := make(map[PortMapping]bool, len(r.Ports))
	for _, p := range r.Ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return errdefs.InvalidArgument(fmt.Sprintf("port mapping protocol %q: want tcp or udp", p.Protocol))
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return errdefs.InvalidArgument(fmt.Sprintf("port mapping %d->%d/%s: both ports must be set", p.HostPort, p.ContainerPort, p.Protocol))
		}
		key := PortMapping{HostPort: p.HostPort, Protocol: p.Protocol}
		if seen[key] {
			return errdefs.InvalidArgument(fmt.Sprintf("host port %d/%s is mapped twice", p.HostPort, p.Protocol))
		}
		seen[key] = true
	}
	return nil
}

// ValidateID checks a container ID for use as a network attachment name.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return errdefs.InvalidArgument(fmt.Sprintf("network attachment id %q: want 1 to %d characters", id, MaxIDLength))
	}
	for i, c := range id {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			return errdefs.InvalidArgument(fmt.Sprintf("network attachment id %q: want [A-Za-z0-9][A-Za-z0-9_.-]*", id))
		}
	}
	return nil
}

// Matches reports whether a is what Attach(req) made, so a repeated Attach
// may return it: same ID, mode and port mappings (in any order).
func (a Attachment) Matches(req Request) bool {
	if a.ID != req.ID || a.Mode != req.Mode || len(a.Ports) != len(req.Ports) {
		return false
	}
	x, y := slices.Clone(a.Ports), slices.Clone(req.Ports)
	slices.SortFunc(x, comparePorts)
	slices.SortFunc(y, comparePorts)
	return slices.Equal(x, y)
}

func comparePorts(a, b PortMapping) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.HostPort, b.HostPort), cmp.Compare(a.ContainerPort, b.ContainerPort))
}

// Preparer is implemented by networks whose bridge-mode namespace can be
// made before it is wired: the agent then creates the container in the
// namespace while Attach runs CNI ADD, instead of one after the other.
type Preparer interface {
	// Prepare makes the namespace of a bridge-mode request and returns its
	// path; Attach with the same request completes the attachment. Calling
	// it again (before or after Attach) returns the same path.
	Prepare(ctx context.Context, req Request) (netnsPath string, err error)
}
