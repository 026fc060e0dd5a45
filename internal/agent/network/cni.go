package network

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	gocni "github.com/containerd/go-cni"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Defaults of Config.
const (
	DefaultBridgeName = "berth0"
	DefaultSubnet     = "10.213.0.0/16"
	DefaultNetNSDir   = "/run/berth/netns"
)

// DefaultPluginDirs are where Debian (and then upstream tarballs) put the
// CNI plugins.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// cniVersion is the newest spec version Debian's plugins (1.1.1) accept.
const cniVersion = "1.0.0"

// ifName is the container's interface.
const ifName = "eth0"

// requiredPlugins are the chain's plugin binaries.
var requiredPlugins = []string{"bridge", "host-local", "portmap"}

// Config configures a CNI network. Two agents on one machine must differ in
// BridgeName (or run in separate network namespaces), Subnet and DataDir.
type Config struct {
	// PluginDirs are searched for the plugin binaries; DefaultPluginDirs if empty.
	PluginDirs []string
	// BridgeName is the Linux bridge (at most 15 characters); DefaultBridgeName if empty.
	BridgeName string
	// Subnet is the IPv4 range containers get addresses from; its first
	// address is the bridge (gateway). DefaultSubnet if empty.
	Subnet string
	// NetNSDir holds the bind-mounted namespaces; DefaultNetNSDir if empty.
	// It must be visible in containerd's mount namespace.
	NetNSDir string
	// DataDir is this network's own directory under the agent's data dir:
	// host-local's address leases and the attachment records. Required.
	DataDir string
	// MTU of the bridge and veths; 0 leaves the plugin's default (1500).
	MTU int
}

// CNI is the Network of a real machine: a bridge with host-local addresses
// and portmap host ports, driven through go-cni.
type CNI struct {
	cfg     Config
	netName string
	cni     gocni.CNI // bridge, then portmap
	// noPorts is the same network without portmap, for attachments that
	// map no host ports: one plugin exec fewer on every start and stop.
	// Which of the two an attachment uses follows from its ports alone,
	// so DEL always runs the chain ADD ran.
	noPorts gocni.CNI
	records records
	locks   idLocks
}

var _ Network = (*CNI)(nil)

// NewCNI checks cfg, creates its directories, loads the conflist and
// installs the bridge's host rules (hostrules.go); the bridge itself
// appears with the first Attach.
func NewCNI(cfg Config) (*CNI, error) {
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	cfg.BridgeName = cmp.Or(cfg.BridgeName, DefaultBridgeName)
	cfg.Subnet = cmp.Or(cfg.Subnet, DefaultSubnet)
	cfg.NetNSDir = cmp.Or(cfg.NetNSDir, DefaultNetNSDir)
	if cfg.DataDir == "" {
		return nil, errdefs.InvalidArgument("network: DataDir is required")
	}
	if !filepath.IsAbs(cfg.NetNSDir) || !filepath.IsAbs(cfg.DataDir) {
		return nil, errdefs.InvalidArgument("network: NetNSDir and DataDir must be absolute paths")
	}
	if err := validBridgeName(cfg.BridgeName); err != nil {
		return nil, err
	}
	subnet, err := netip.ParsePrefix(cfg.Subnet)
	if err != nil || !subnet.Addr().Is4() || subnet.Bits() > 29 || subnet.Masked() != subnet {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("network: subnet %q: want an IPv4 network of /29 or larger, e.g. %s", cfg.Subnet, DefaultSubnet))
	}
	if cfg.MTU < 0 {
		return nil, errdefs.InvalidArgument("network: negative MTU")
	}
	for _, p := range requiredPlugins {
		if !findPlugin(cfg.PluginDirs, p) {
			return nil, errdefs.New(errdefs.ErrFailedPrecondition,
				fmt.Sprintf("network: CNI plugin %q not found in %v (Debian package containernetworking-plugins)", p, cfg.PluginDirs))
		}
	}

	c := &CNI{cfg: cfg, netName: networkName(cfg)}
	c.records = records{dir: filepath.Join(cfg.DataDir, "attachments")}
	for _, dir := range []string{cfg.NetNSDir, c.records.dir, filepath.Join(cfg.DataDir, "ipam")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	if c.cni, err = c.load(subnet, true); err != nil {
		return nil, err
	}
	if c.noPorts, err = c.load(subnet, false); err != nil {
		return nil, err
	}
	if err := c.ensureHostRules(context.Background()); err != nil {
		return nil, err
	}
	return c, nil
}

// networkName names the CNI network after the bridge plus a hash of the data
// dir. It keys libcni's result cache (/var/lib/cni/results), the portmap and
// ipMasq chains and the namespace files, so agents sharing /run or
// /var/lib/cni never collide even when their bridges share a name in
// separate network namespaces.
func networkName(cfg Config) string {
	sum := sha256.Sum256([]byte(filepath.Clean(cfg.DataDir)))
	return "berth-" + cfg.BridgeName + "-" + hex.EncodeToString(sum[:4])
}

// load makes a go-cni instance with only this network's conflist, so the
// interface is eth0 (loopback is brought up when the namespace is made,
// not by a second network that would shift the index).
func (c *CNI) load(subnet netip.Prefix, portmap bool) (gocni.CNI, error) {
	conf, err := c.conflist(subnet, portmap)
	if err != nil {
		return nil, err
	}
	g, err := gocni.New(gocni.WithPluginDir(c.cfg.PluginDirs), gocni.WithInterfacePrefix("eth"), gocni.WithMinNetworkCount(1))
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if err := g.Load(gocni.WithConfListBytes(conf)); err != nil {
		return nil, fmt.Errorf("network: load conflist: %w", err)
	}
	return g, nil
}

// chain is the go-cni instance for an attachment mapping ports.
func (c *CNI) chain(ports []PortMapping) gocni.CNI {
	if len(ports) == 0 {
		return c.noPorts
	}
	return c.cni
}

// conflist is the chain: bridge (gateway, hairpin) with host-local
// addresses, then, when portmap is set, portmap for host ports (snat on by
// default, which is what makes 127.0.0.1:hostPort work). NAT out and
// forwarding are the bridge's host rules (hostrules.go).
func (c *CNI) conflist(subnet netip.Prefix, portmap bool) ([]byte, error) {
	gateway := subnet.Addr().Next()
	ipam := map[string]any{
		"type":    "host-local",
		"dataDir": filepath.Join(c.cfg.DataDir, "ipam"),
		"ranges":  [][]map[string]string{{{"subnet": subnet.String(), "gateway": gateway.String()}}},
		"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
	}
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      c.cfg.BridgeName,
		"isGateway":   true,
		"ipMasq":      false, // one rule per bridge instead: hostrules.go
		"hairpinMode": true,
		"ipam":        ipam,
	}
	if c.cfg.MTU > 0 {
		bridge["mtu"] = c.cfg.MTU
	}
	plugins := []any{bridge}
	if portmap {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	return json.Marshal(map[string]any{
		"cniVersion": cniVersion,
		"name":       c.netName,
		"plugins":    plugins,
	})
}

// netnsPath is where the namespace of id is mounted.
func (c *CNI) netnsPath(id string) string {
	return filepath.Join(c.cfg.NetNSDir, c.netName+"_"+id)
}

// Attach implements Network.
func (c *CNI) Attach(ctx context.Context, req Request) (Attachment, error) {
	if err := req.Validate(); err != nil {
		return Attachment{}, err
	}
	unlock := c.locks.lock(req.ID)
	defer unlock()

	rec, found, err := c.records.load(req.ID)
	if err != nil {
		return Attachment{}, errdefs.Internal(err)
	}
	if found && !rec.Pending {
		if !rec.Matches(req) {
			return Attachment{}, errdefs.Conflict(fmt.Sprintf("network: %s is already attached (%s) with other settings", req.ID, rec.Mode))
		}
		return rec.Attachment, nil
	}
	if found && rec.Prepared && req.Mode == ModeBridge && isNetNS(rec.NetNSPath) {
		// Prepare made the namespace, and a container may already live in
		// it: wire it, do not replace it.
		if !rec.Matches(req) {
			return Attachment{}, errdefs.Conflict(fmt.Sprintf("network: %s was prepared with other settings", req.ID))
		}
		return c.complete(ctx, rec)
	}
	if found || fileExists(c.netnsPath(req.ID)) {
		// A crash interrupted an earlier Attach: undo what it got done.
		leftover := rec.Attachment
		if !found {
			leftover = Attachment{ID: req.ID, Mode: ModeBridge, Ports: req.Ports}
		}
		if err := c.teardown(ctx, leftover); err != nil {
			return Attachment{}, err
		}
	}

	att := Attachment{ID: req.ID, Mode: req.Mode, Ports: req.Ports}
	switch req.Mode {
	case ModeHost:
		att.NetNSPath = runtime.NetNSHost
	case ModeBridge:
		att.NetNSPath = c.netnsPath(req.ID)
		if err := c.records.save(record{Attachment: att, Pending: true}); err != nil {
			return Attachment{}, errdefs.Internal(err)
		}
		ip, err := c.add(ctx, att)
		if err != nil {
			if terr := c.teardown(context.WithoutCancel(ctx), att); terr != nil {
				err = errors.Join(err, terr)
			}
			return Attachment{}, &errdefs.Error{Kind: errdefs.ErrInternal, Message: "network: attach " + req.ID, Cause: err}
		}
		att.IPv4 = ip
	}
	if err := c.records.save(record{Attachment: att}); err != nil {
		if req.Mode == ModeBridge {
			err = errors.Join(err, c.teardown(context.WithoutCancel(ctx), att))
		}
		return Attachment{}, errdefs.Internal(err)
	}
	return att, nil
}

// Prepare implements Preparer: it makes the namespace of a bridge-mode
// request (recorded as a prepared, pending attachment) without CNI ADD.
func (c *CNI) Prepare(ctx context.Context, req Request) (string, error) {
	if err := req.Validate(); err != nil {
		return "", err
	}
	if req.Mode != ModeBridge {
		return "", errdefs.InvalidArgument(fmt.Sprintf("network: only bridge mode is prepared, not %q", req.Mode))
	}
	unlock := c.locks.lock(req.ID)
	defer unlock()
	rec, found, err := c.records.load(req.ID)
	if err != nil {
		return "", errdefs.Internal(err)
	}
	switch {
	case found && (!rec.Pending || rec.Prepared) && isNetNS(rec.NetNSPath):
		if !rec.Matches(req) {
			return "", errdefs.Conflict(fmt.Sprintf("network: %s was prepared with other settings", req.ID))
		}
		return rec.NetNSPath, nil
	case found || fileExists(c.netnsPath(req.ID)):
		leftover := rec.Attachment
		if !found {
			leftover = Attachment{ID: req.ID, Mode: ModeBridge, Ports: req.Ports}
		}
		if err := c.teardown(ctx, leftover); err != nil {
			return "", err
		}
	}
	att := Attachment{ID: req.ID, Mode: req.Mode, Ports: req.Ports, NetNSPath: c.netnsPath(req.ID)}
	if err := c.records.save(record{Attachment: att, Pending: true, Prepared: true}); err != nil {
		return "", errdefs.Internal(err)
	}
	if err := createNetNS(att.NetNSPath); err != nil {
		_ = c.records.remove(req.ID)
		return "", &errdefs.Error{Kind: errdefs.ErrInternal, Message: "network: prepare " + req.ID, Cause: err}
	}
	return att.NetNSPath, nil
}

// complete runs CNI ADD in a prepared namespace (after CNI DEL when an
// earlier ADD there was interrupted) and records the attachment. On
// failure the namespace stays, still prepared, for Detach to remove.
func (c *CNI) complete(ctx context.Context, rec record) (Attachment, error) {
	att := rec.Attachment
	if rec.Adding {
		if err := c.chain(att.Ports).Remove(ctx, att.ID, att.NetNSPath, portMapOpt(att.Ports)); err != nil {
			return Attachment{}, &errdefs.Error{Kind: errdefs.ErrInternal, Message: "network: attach " + att.ID, Cause: fmt.Errorf("CNI DEL of an interrupted ADD: %w", err)}
		}
	}
	rec.Adding = true
	if err := c.records.save(rec); err != nil {
		return Attachment{}, errdefs.Internal(err)
	}
	ip, err := c.setup(ctx, att)
	if err != nil {
		return Attachment{}, &errdefs.Error{Kind: errdefs.ErrInternal, Message: "network: attach " + att.ID, Cause: err}
	}
	att.IPv4 = ip
	if err := c.records.save(record{Attachment: att}); err != nil {
		return Attachment{}, errdefs.Internal(err)
	}
	return att, nil
}

// add makes the namespace and runs CNI ADD in it; it returns the
// container's IPv4 address.
func (c *CNI) add(ctx context.Context, att Attachment) (string, error) {
	if err := createNetNS(att.NetNSPath); err != nil {
		return "", err
	}
	return c.setup(ctx, att)
}

// setup runs CNI ADD in att's namespace and returns the container's IPv4
// address.
func (c *CNI) setup(ctx context.Context, att Attachment) (string, error) {
	res, err := c.chain(att.Ports).Setup(ctx, att.ID, att.NetNSPath, portMapOpt(att.Ports))
	if err != nil {
		return "", fmt.Errorf("CNI ADD: %w", err)
	}
	if iface := res.Interfaces[ifName]; iface != nil {
		for _, ipc := range iface.IPConfigs {
			if ip4 := ipc.IP.To4(); ip4 != nil {
				return ip4.String(), nil
			}
		}
	}
	return "", fmt.Errorf("CNI ADD gave %s no IPv4 address", ifName)
}

// teardown runs CNI DEL with att's port mappings (portmap deletes DNAT rules
// only when it is told there were some) while the namespace still exists
// (bridge reads the addresses to unmasquerade from it), then removes the
// namespace and the record. Everything it touches may already be gone.
func (c *CNI) teardown(ctx context.Context, att Attachment) error {
	path := c.netnsPath(att.ID)
	if att.Mode == ModeBridge || fileExists(path) {
		nsArg := path
		if !isNetNS(path) {
			nsArg = "" // never mounted or already removed: DEL what lives outside it
		}
		if err := c.chain(att.Ports).Remove(ctx, att.ID, nsArg, portMapOpt(att.Ports)); err != nil {
			return &errdefs.Error{Kind: errdefs.ErrInternal, Message: "network: detach " + att.ID, Cause: fmt.Errorf("CNI DEL: %w", err)}
		}
		if err := removeNetNS(path); err != nil {
			return errdefs.Internal(err)
		}
	}
	if err := c.records.remove(att.ID); err != nil {
		return errdefs.Internal(err)
	}
	return nil
}

// Detach implements Network. The record of the attachment, if any, wins
// over att (it carries the ports Attach really mapped); the namespace path
// is always this network's own.
func (c *CNI) Detach(ctx context.Context, att Attachment) error {
	if err := ValidateID(att.ID); err != nil {
		return err
	}
	unlock := c.locks.lock(att.ID)
	defer unlock()
	rec, found, err := c.records.load(att.ID)
	if err != nil {
		return errdefs.Internal(err)
	}
	if found {
		att = rec.Attachment
	}
	return c.teardown(ctx, att)
}

// List returns the attachments this network has recorded, sorted by ID. A
// restarted agent detaches those whose containers are gone; after a reboot
// that is how host-local's leases are given back.
func (c *CNI) List(ctx context.Context) ([]Attachment, error) {
	recs, err := c.records.list()
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	out := make([]Attachment, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Attachment)
	}
	return out, nil
}

// Config returns the configuration in use, defaults filled in.
func (c *CNI) Config() Config { return c.cfg }

func portMapOpt(ports []PortMapping) gocni.NamespaceOpts {
	pm := make([]gocni.PortMapping, 0, len(ports))
	for _, p := range ports {
		pm = append(pm, gocni.PortMapping{HostPort: int32(p.HostPort), ContainerPort: int32(p.ContainerPort), Protocol: p.Protocol})
	}
	return gocni.WithCapabilityPortMap(pm)
}

func validBridgeName(name string) error {
	if len(name) > 15 || ValidateID(name) != nil {
		return errdefs.InvalidArgument(fmt.Sprintf("network: bridge name %q: want at most 15 of [A-Za-z0-9_.-]", name))
	}
	return nil
}

func findPlugin(dirs []string, name string) bool {
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// idLocks serialises work on one ID while different IDs proceed in parallel.
type idLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

type idLock struct {
	mu   sync.Mutex
	refs int
}

func (l *idLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*idLock)
	}
	e := l.m[id]
	if e == nil {
		e = &idLock{}
		l.m[id] = e
	}
	e.refs++
	l.mu.Unlock()

	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}
