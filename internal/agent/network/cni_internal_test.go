package network

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestNewCNIChecksConfig(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		cfg  Config
		kind error
	}{
		"no data dir":         {Config{}, errdefs.ErrInvalidArgument},
		"relative data dir":   {Config{DataDir: "data"}, errdefs.ErrInvalidArgument},
		"relative netns dir":  {Config{DataDir: dir, NetNSDir: "netns"}, errdefs.ErrInvalidArgument},
		"long bridge name":    {Config{DataDir: dir, BridgeName: "abcdefghijklmnop"}, errdefs.ErrInvalidArgument},
		"bridge name slash":   {Config{DataDir: dir, BridgeName: "br/0"}, errdefs.ErrInvalidArgument},
		"ipv6 subnet":         {Config{DataDir: dir, Subnet: "fd00::/64"}, errdefs.ErrInvalidArgument},
		"tiny subnet":         {Config{DataDir: dir, Subnet: "10.1.0.0/30"}, errdefs.ErrInvalidArgument},
		"unmasked subnet":     {Config{DataDir: dir, Subnet: "10.1.0.5/24"}, errdefs.ErrInvalidArgument},
		"not a subnet":        {Config{DataDir: dir, Subnet: "ten"}, errdefs.ErrInvalidArgument},
		"negative mtu":        {Config{DataDir: dir, MTU: -1}, errdefs.ErrInvalidArgument},
		"no plugins":          {Config{DataDir: dir, PluginDirs: []string{t.TempDir()}}, errdefs.ErrFailedPrecondition},
		"plugins not execute": {Config{DataDir: dir, PluginDirs: []string{fakePlugins(t, 0o644)}}, errdefs.ErrFailedPrecondition},
	} {
		if _, err := NewCNI(tc.cfg); !errors.Is(err, tc.kind) {
			t.Errorf("%s: NewCNI = %v, want %v", name, err, tc.kind)
		}
	}
	// With (fake) plugins present it loads without touching the network.
	c, err := NewCNI(Config{DataDir: filepath.Join(dir, "d"), NetNSDir: filepath.Join(dir, "ns"), PluginDirs: []string{fakePlugins(t, 0o755)}})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config()
	if got.BridgeName != DefaultBridgeName || got.Subnet != DefaultSubnet {
		t.Errorf("defaults: %+v", got)
	}
	for _, d := range []string{"ns", "d/attachments", "d/ipam"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Errorf("NewCNI did not make %s: %v", d, err)
		}
	}
}

// fakePlugins returns a directory with empty files named like the plugins.
func fakePlugins(t *testing.T, perm os.FileMode) string {
	dir := t.TempDir()
	for _, p := range requiredPlugins {
		if err := os.WriteFile(filepath.Join(dir, p), nil, perm); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestConflist(t *testing.T) {
	c := &CNI{cfg: Config{BridgeName: "br9", DataDir: "/var/lib/berth/network", MTU: 1400}}
	c.netName = networkName(c.cfg)
	bridge := map[string]any{"type": "bridge", "bridge": "br9", "isGateway": true, "ipMasq": false, "hairpinMode": true, "mtu": 1400.0,
		"ipam": map[string]any{
			"type": "host-local", "dataDir": "/var/lib/berth/network/ipam",
			"ranges": []any{[]any{map[string]any{"subnet": "10.9.0.0/24", "gateway": "10.9.0.1"}}},
			"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
		}}
	portmap := map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}}
	for _, tc := range []struct {
		portmap bool
		plugins []any
	}{
		{true, []any{bridge, portmap}},
		// The same network (name, bridge, address pool) without portmap.
		{false, []any{bridge}},
	} {
		b, err := c.conflist(netip.MustParsePrefix("10.9.0.0/24"), tc.portmap)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"cniVersion": "1.0.0", "name": c.netName, "plugins": tc.plugins}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("conflist portmap=%v (-want +got):\n%s", tc.portmap, diff)
		}
	}
}

func TestNetworkNameSeparatesAgents(t *testing.T) {
	for _, tc := range []struct {
		a, b Config
		same bool
	}{
		{Config{BridgeName: "berth0", DataDir: "/a"}, Config{BridgeName: "berth0", DataDir: "/a/"}, true},
		{Config{BridgeName: "berth0", DataDir: "/a"}, Config{BridgeName: "berth0", DataDir: "/b"}, false},
		{Config{BridgeName: "berth0", DataDir: "/a"}, Config{BridgeName: "berth1", DataDir: "/a"}, false},
	} {
		if got := networkName(tc.a) == networkName(tc.b); got != tc.same {
			t.Errorf("networkName(%+v) == networkName(%+v): %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestIDLocks(t *testing.T) {
	var l idLocks
	unlockA := l.lock("a")
	l.lock("b")() // another ID is not held up by a
	if l.m["a"].mu.TryLock() {
		t.Fatal("a is not held while locked")
	}
	unlockA()
	l.lock("a")()
	if len(l.m) != 0 {
		t.Errorf("locks left in the map: %v", l.m)
	}
}
