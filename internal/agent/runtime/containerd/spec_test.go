package containerd

import (
	"context"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/agent/runtime"
)

// buildSpec applies specOpts to containerd's default spec, as NewContainer
// does, without a daemon.
func buildSpec(t *testing.T, opts Options, s runtime.ContainerSpec) *oci.Spec {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &Runtime{opts: opts}
	sopts, err := r.specOpts(s, []string{"/probe", "sleep"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "berth")
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: s.ID}, sopts...)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestSpecDefaults(t *testing.T) {
	s := buildSpec(t, Options{}, runtime.ContainerSpec{ID: "c1", Image: "x"})
	if got := s.Process.Args; !slices.Equal(got, []string{"/probe", "sleep"}) {
		t.Errorf("args = %v", got)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("no-new-privileges is off")
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("seccomp = %+v, want the default profile", s.Linux.Seccomp)
	}
	for _, p := range append([]string{"/proc/kcore", "/proc/keys", "/sys/firmware"}, runtime.ExtraMaskedPaths...) {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Errorf("%s is not masked", p)
		}
	}
	if !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sysrq-trigger") {
		t.Error("/proc/sysrq-trigger is not read-only")
	}
	caps := slices.Clone(s.Process.Capabilities.Effective)
	slices.Sort(caps)
	want := slices.Clone(runtime.DefaultCapabilities)
	slices.Sort(want)
	if !slices.Equal(caps, want) || !slices.Equal(s.Process.Capabilities.Bounding, s.Process.Capabilities.Effective) {
		t.Errorf("capabilities = %+v, want Docker's default set", s.Process.Capabilities)
	}
	if got := *s.Linux.Resources.CPU.Shares; got != runtime.MinCPUShares {
		t.Errorf("cpu shares for 0 = %d, want %d", got, runtime.MinCPUShares)
	}
	if s.Hostname != "c1" {
		t.Errorf("hostname = %q", s.Hostname)
	}
	if s.Linux.CgroupsPath != "/berth/c1" {
		t.Errorf("cgroups path = %q", s.Linux.CgroupsPath)
	}
	n := runtime.DefaultNofileLimit()
	if !slices.Contains(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: n, Hard: n}) {
		t.Errorf("rlimits = %+v", s.Process.Rlimits)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace && ns.Path != "" {
			t.Errorf("network namespace path %q, want a new namespace", ns.Path)
		}
	}
}

func TestSpecSettings(t *testing.T) {
	s := buildSpec(t, Options{}, runtime.ContainerSpec{
		ID: "c2", Image: "x", CPUShares: 1 << 20, MemoryLimitMiB: 64, MemoryReservationMiB: 32, PidsLimit: 100,
		ShmSizeMiB: 128, ReadonlyRootfs: true, AllowNewPrivileges: true,
		Ulimits:        []runtime.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}, {Name: "core", Soft: 0, Hard: 0}},
		CapAdd:         []string{"NET_ADMIN"},
		CapDrop:        []string{"NET_RAW"},
		Mounts:         []runtime.Mount{{Source: "/srv", Destination: "/data", ReadOnly: true}},
		HostsFile:      "/run/berth/hosts",
		ResolvConfFile: "/run/berth/resolv.conf",
		NetNSPath:      "/var/run/netns/t1",
		Hostname:       "web",
		CgroupParent:   "/berth/task1",
		Env:            []string{"A=1"},
		WorkingDir:     "/srv",
	})
	res := s.Linux.Resources
	if *res.CPU.Shares != runtime.MaxCPUShares {
		t.Errorf("cpu shares = %d", *res.CPU.Shares)
	}
	if *res.Memory.Limit != 64<<20 || *res.Memory.Reservation != 32<<20 {
		t.Errorf("memory = limit %d reservation %d", *res.Memory.Limit, *res.Memory.Reservation)
	}
	if swapAccounting() && (res.Memory.Swap == nil || *res.Memory.Swap != 64<<20) {
		t.Errorf("memory+swap = %v, want the memory limit", res.Memory.Swap)
	}
	if res.Pids == nil || *res.Pids.Limit != 100 {
		t.Errorf("pids = %+v", res.Pids)
	}
	if !s.Root.Readonly || s.Process.NoNewPrivileges {
		t.Errorf("readonly rootfs %v, no-new-privileges %v", s.Root.Readonly, s.Process.NoNewPrivileges)
	}
	if !slices.Contains(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}) ||
		!slices.Contains(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE"}) {
		t.Errorf("rlimits = %+v", s.Process.Rlimits)
	}
	if !slices.Contains(s.Process.Capabilities.Effective, "CAP_NET_ADMIN") || slices.Contains(s.Process.Capabilities.Bounding, "CAP_NET_RAW") {
		t.Errorf("capabilities = %+v", s.Process.Capabilities)
	}
	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	if m := mounts["/data"]; m.Source != "/srv" || !slices.Equal(m.Options, []string{"rbind", "ro"}) {
		t.Errorf("/data mount = %+v", m)
	}
	if mounts["/etc/hosts"].Source != "/run/berth/hosts" || mounts["/etc/resolv.conf"].Source != "/run/berth/resolv.conf" {
		t.Errorf("hosts/resolv.conf mounts = %+v / %+v", mounts["/etc/hosts"], mounts["/etc/resolv.conf"])
	}
	if m := mounts["/dev/shm"]; !slices.Contains(m.Options, "size=131072k") {
		t.Errorf("/dev/shm = %+v", m)
	}
	found := false
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			found = ns.Path == "/var/run/netns/t1"
		}
	}
	if !found {
		t.Errorf("namespaces = %+v, want the network one at /var/run/netns/t1", s.Linux.Namespaces)
	}
	if s.Hostname != "web" || s.Linux.CgroupsPath != "/berth/task1/c2" || s.Process.Cwd != "/srv" || !slices.Contains(s.Process.Env, "A=1") {
		t.Errorf("hostname %q cgroups %q cwd %q env %v", s.Hostname, s.Linux.CgroupsPath, s.Process.Cwd, s.Process.Env)
	}
}

func TestSpecHostNetworkAndPrivileged(t *testing.T) {
	s := buildSpec(t, Options{SystemdCgroup: true}, runtime.ContainerSpec{ID: "c3", Image: "x", NetNSPath: runtime.NetNSHost, Privileged: true})
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace || ns.Type == specs.UTSNamespace {
			t.Errorf("host network keeps a %s namespace", ns.Type)
		}
	}
	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	if mounts["/etc/hosts"].Source != "/etc/hosts" || mounts["/etc/resolv.conf"].Source != "/etc/resolv.conf" {
		t.Error("host network does not share the host's hosts and resolv.conf")
	}
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 {
		t.Errorf("privileged keeps seccomp %v or masked paths %v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths)
	}
	if s.Linux.CgroupsPath != "system.slice:berth:c3" {
		t.Errorf("systemd cgroups path = %q", s.Linux.CgroupsPath)
	}
}

func TestExitLabels(t *testing.T) {
	if _, ok := exitFromLabels(map[string]string{}); ok {
		t.Error("no labels read as an exit")
	}
	if _, ok := exitFromLabels(map[string]string{labelExitCode: "x"}); ok {
		t.Error("a malformed exit code read as an exit")
	}
	ex, ok := exitFromLabels(map[string]string{labelExitCode: "137", labelExitedAt: "2026-01-02T03:04:05.123456789Z", labelOOMKilled: "true"})
	if !ok || ex.Code != 137 || !ex.OOMKilled || ex.ExitedAt.Nanosecond() != 123456789 {
		t.Errorf("exitFromLabels = %+v, %v", ex, ok)
	}
}
