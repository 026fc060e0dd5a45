package containerd

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Create implements runtime.Runtime.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	ref, _ := runtime.NormalizeRef(spec.Image)
	if _, err := r.client.LoadContainer(ctx, spec.ID); err == nil {
		return errdefs.AlreadyExists(fmt.Sprintf("container %q already exists", spec.ID))
	}
	img, err := r.client.GetImage(ctx, ref)
	if err != nil {
		return wrap(err, fmt.Sprintf("image %s is not present locally", ref))
	}
	if err := r.unpack(ctx, img); err != nil {
		return err
	}
	cfg, err := imageConfig(ctx, img)
	if err != nil {
		return err
	}
	argv := runtime.Args(cfg, spec.Entrypoint, spec.Command)
	if len(argv) == 0 {
		return errdefs.InvalidArgument(fmt.Sprintf("container %q: no command (neither the image nor the spec has one)", spec.ID))
	}
	stopSignal := spec.StopSignal
	if stopSignal == "" {
		stopSignal = cfg.StopSignal
	}
	if _, err := runtime.ParseSignal(stopSignal); err != nil {
		stopSignal = "SIGTERM"
	}
	labels := map[string]string{
		labelStopSignal:  stopSignal,
		labelImageDigest: img.Target().Digest.String(),
	}
	if spec.LogPath != "" {
		labels[labelLogPath] = spec.LogPath
	}
	if spec.StopTimeout > 0 {
		labels[labelStopTimeout] = spec.StopTimeout.String()
	}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	specOpts, err := r.specOpts(spec, argv)
	if err != nil {
		return err
	}
	// Image defaults first (env, cwd, user), then the spec's own settings.
	specOpts = append([]oci.SpecOpts{oci.WithImageConfig(img)}, specOpts...)
	_, err = r.client.NewContainer(ctx, spec.ID,
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.opts.Snapshotter),
		containerd.WithNewSnapshot(spec.ID, img),
		containerd.WithRuntime(r.opts.Runtime, &options.Options{SystemdCgroup: r.opts.SystemdCgroup}),
		containerd.WithContainerLabels(labels),
		containerd.WithNewSpec(specOpts...),
	)
	if err != nil {
		return wrap(err, fmt.Sprintf("creating container %q", spec.ID))
	}
	return nil
}

// specOpts turns a validated spec into OCI spec options, applied after the
// image's configuration. It needs no daemon, so tests check it directly.
func (r *Runtime) specOpts(s runtime.ContainerSpec, argv []string) ([]oci.SpecOpts, error) {
	opts := []oci.SpecOpts{oci.WithProcessArgs(argv...)}
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(s.Env))
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.User != "" {
		opts = append(opts, oci.WithUser(s.User))
		// Supplementary groups of a named or numeric user, from the image's
		// /etc/group; an explicit group leaves none, as in Docker.
		if u, _, hasGroup := strings.Cut(s.User, ":"); !hasGroup {
			opts = append(opts, oci.WithAdditionalGIDs(u))
		}
	}

	// Network, hostname, hosts and resolv.conf.
	var mounts []specs.Mount
	switch s.NetNSPath {
	case runtime.NetNSHost:
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.UTSNamespace))
		if s.HostsFile == "" {
			opts = append(opts, oci.WithHostHostsFile)
		}
		if s.ResolvConfFile == "" {
			opts = append(opts, oci.WithHostResolvconf)
		}
	case "":
		// runc creates a new network namespace with only loopback.
	default:
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetNSPath}))
	}
	if s.NetNSPath != runtime.NetNSHost {
		hostname := s.Hostname
		if hostname == "" {
			hostname = runtime.DefaultHostname(s.ID)
		}
		opts = append(opts, oci.WithHostname(hostname))
	}
	if s.HostsFile != "" {
		mounts = append(mounts, bind(s.HostsFile, "/etc/hosts", false))
	}
	if s.ResolvConfFile != "" {
		mounts = append(mounts, bind(s.ResolvConfFile, "/etc/resolv.conf", false))
	}
	for _, m := range s.Mounts {
		mounts = append(mounts, bind(m.Source, m.Destination, m.ReadOnly))
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}

	// Resources.
	opts = append(opts, oci.WithCPUShares(runtime.ClampCPUShares(s.CPUShares)))
	if s.MemoryLimitMiB > 0 {
		limit := s.MemoryLimitMiB << 20
		opts = append(opts, oci.WithMemoryLimit(uint64(limit)))
		// No swap beyond the limit, as ECS sets it unless maxSwap says
		// otherwise; else an over-limit container swaps instead of being
		// OOM-killed. Only where the kernel accounts swap: runc rejects a
		// swap limit it cannot set.
		if swapAccounting() {
			opts = append(opts, oci.WithMemorySwap(limit))
		}
	}
	if s.MemoryReservationMiB > 0 {
		opts = append(opts, withMemoryReservation(s.MemoryReservationMiB<<20))
	}
	if s.PidsLimit > 0 {
		opts = append(opts, oci.WithPidsLimit(s.PidsLimit))
	}
	if s.ShmSizeMiB > 0 {
		opts = append(opts, oci.WithDevShmSize(s.ShmSizeMiB<<10))
	}
	if s.CgroupParent != "" || r.opts.SystemdCgroup {
		opts = append(opts, oci.WithCgroup(r.cgroupPath(s)))
	}

	// Limits and confinement.
	nofile := runtime.DefaultNofileLimit()
	opts = append(opts, oci.WithRlimit(&specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: nofile, Hard: nofile}))
	for _, u := range s.Ulimits {
		opts = append(opts, oci.WithRlimit(&specs.POSIXRlimit{Type: runtime.RlimitNames[u.Name], Soft: u.Soft, Hard: u.Hard}))
	}
	if s.ReadonlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if s.AllowNewPrivileges {
		opts = append(opts, oci.WithNewPrivileges)
	} else {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if s.Privileged {
		// Everything the agent's own process may do, all host devices, no
		// seccomp, no masked or read-only paths: ECS's privileged.
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
		return opts, nil
	}
	caps, err := runtime.EffectiveCapabilities(s.CapAdd, s.CapDrop)
	if err != nil {
		return nil, err
	}
	opts = append(opts, oci.WithCapabilities(caps), withExtraMaskedPaths(), seccomp.WithDefaultProfile())
	return opts, nil
}

// swapAccounting reports whether memory+swap limits can be set: always on
// cgroup v2 (runc turns them into memory.swap.max), on v1 only with
// memory.memsw.* (swapaccount=1). The daemon shares this host, being on a
// unix socket.
var swapAccounting = sync.OnceValue(func() bool {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
})

func (r *Runtime) cgroupPath(s runtime.ContainerSpec) string {
	if r.opts.SystemdCgroup {
		slice := s.CgroupParent
		if slice == "" {
			slice = "system.slice"
		}
		return strings.Trim(slice, "/") + ":berth:" + s.ID
	}
	return path.Join(s.CgroupParent, s.ID)
}

func bind(src, dst string, ro bool) specs.Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", mode}}
}

// withMemoryReservation sets the soft limit: memory.soft_limit_in_bytes on
// cgroup v1, memory.low on v2 (runc maps it).
func withMemoryReservation(bytes int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Reservation = &bytes
		return nil
	}
}

// withExtraMaskedPaths adds Docker's masked paths that containerd 1.6's list
// lacks (/proc/interrupts, powercap, per-CPU thermal_throttle), whatever the
// client library's own default holds.
func withExtraMaskedPaths() oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		extra := slices.Clone(runtime.ExtraMaskedPaths)
		throttle, _ := filepath.Glob("/sys/devices/system/cpu/cpu*/thermal_throttle")
		extra = append(extra, throttle...)
		for _, p := range extra {
			if !slices.Contains(s.Linux.MaskedPaths, p) {
				s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, p)
			}
		}
		return nil
	}
}
