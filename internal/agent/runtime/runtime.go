// Package runtime is the node agent's port to a container runtime: pull or
// import images, create, start, wait for, stop, exec into, inspect, list and
// remove containers.
//
// The agent's task runner depends on this package only. Implementations:
// runtime/containerd (the real one, on containerd's v2 Go client) and
// runtime/fakeruntime (in memory, for fast agent tests). Both pass the
// conformance suite in runtime/runtimetest, which is what keeps the fake
// honest. The security defaults (seccomp, capabilities, no-new-privileges,
// masked paths, RLIMIT_NOFILE) are part of the contract and are written down
// on ContainerSpec; docs/architecture/agent-runtime.md explains them.
//
// Errors carry errdefs kinds: ErrNotFound for an unknown container or image,
// ErrAlreadyExists for a duplicate container ID, ErrInvalidArgument for a bad
// spec, ErrFailedPrecondition for an operation the container's state does
// not allow (starting a running container, removing a running one, exec into
// a stopped one).
package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/reference"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Runtime runs containers on one machine. Implementations are safe for
// concurrent use. Containers outlive the Runtime value: Close releases the
// client only, and a new Runtime on the same machine sees (adopts) the
// containers an earlier one created.
type Runtime interface {
	// EnsureImage makes ref available locally according to opts.Behavior
	// and returns it. ref is normalised as Docker does ("nginx" →
	// "docker.io/library/nginx:latest").
	EnsureImage(ctx context.Context, ref string, opts PullOptions) (Image, error)
	// Import loads the images of a docker-archive or OCI-layout tarball
	// (for tests and offline machines) and returns them.
	Import(ctx context.Context, tarPath string) ([]Image, error)
	// RemoveImage deletes a local image (the agent's image cleanup); its
	// content goes once nothing else refers to it. An image a container
	// still uses cannot be removed (ErrFailedPrecondition).
	RemoveImage(ctx context.Context, ref string) error
	// Create creates a container from spec without starting it. The image
	// must be local (EnsureImage or Import).
	Create(ctx context.Context, spec ContainerSpec) error
	// Start starts a created container.
	Start(ctx context.Context, id string) error
	// Wait returns a channel that yields the container's Exit once, then is
	// closed. It may be called before Start, while running, or after the
	// exit (the channel then yields at once). The channel is closed without
	// a value when ctx ends, the container is removed before it exits, or
	// the Runtime is closed; call Wait again to resume waiting.
	Wait(ctx context.Context, id string) (<-chan Exit, error)
	// Stop sends the container's stop signal (ContainerSpec.StopSignal, else
	// the image's STOPSIGNAL, else SIGTERM), waits up to timeout (≤ 0 means
	// the container's StopTimeout, else DefaultStopTimeout), then sends
	// SIGKILL to every process of the container, and returns once it has
	// exited. Stopping a container that is not running is a no-op.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Exec runs argv inside the running container (as its user, in its
	// working directory and environment), discarding the output, and returns
	// the exit code. After timeout the process is killed and the error
	// wraps context.DeadlineExceeded.
	Exec(ctx context.Context, id string, argv []string, timeout time.Duration) (exitCode int, err error)
	// Inspect returns the container's current status.
	Inspect(ctx context.Context, id string) (ContainerStatus, error)
	// Stats samples the resource usage of a running container (the
	// task metadata endpoint's /stats and telemetry build Docker's stats
	// shape from it). A container that is not running is
	// ErrFailedPrecondition.
	Stats(ctx context.Context, id string) (Stats, error)
	// List returns the containers carrying all of the given labels (all
	// containers for none), sorted by ID.
	List(ctx context.Context, labels map[string]string) ([]ContainerStatus, error)
	// Remove deletes a container that is not running, with its writable
	// layer. The log file at LogPath is kept: its lifetime belongs to the
	// agent, which keeps logs retrievable after the container is gone.
	Remove(ctx context.Context, id string) error
	// Close releases the client. Containers keep running.
	Close() error
}

// PullBehavior is ECS_IMAGE_PULL_BEHAVIOR.
type PullBehavior string

const (
	// PullDefault pulls; if the pull fails, a cached image is used.
	PullDefault PullBehavior = "default"
	// PullAlways pulls; if the pull fails, so does EnsureImage.
	PullAlways PullBehavior = "always"
	// PullOnce pulls only when no local copy exists. (ECS's "once" counts
	// only images the agent pulled itself; a runtime cannot tell, so locally
	// present is taken as pulled before.)
	PullOnce PullBehavior = "once"
	// PullPreferCached pulls only when no local copy exists.
	PullPreferCached PullBehavior = "prefer-cached"
)

// ParsePullBehavior parses ECS_IMAGE_PULL_BEHAVIOR; "" means default.
func ParsePullBehavior(s string) (PullBehavior, error) {
	switch b := PullBehavior(strings.ToLower(strings.TrimSpace(s))); b {
	case "":
		return PullDefault, nil
	case PullDefault, PullAlways, PullOnce, PullPreferCached:
		return b, nil
	}
	return "", errdefs.InvalidArgument(fmt.Sprintf("image pull behavior %q: want default, always, once or prefer-cached", s))
}

// PullOptions say how EnsureImage gets an image.
type PullOptions struct {
	Behavior PullBehavior // "" = PullDefault
	// Auth returns credentials for a registry host ("host[:port]"); nil or
	// an empty user means anonymous. For ECR the user is "AWS".
	Auth func(host string) (user, secret string, err error)
	// PlainHTTPHosts are registry hosts ("host[:port]") spoken to over
	// plain HTTP instead of HTTPS.
	PlainHTTPHosts []string
	// TLS, when set and it returns a config for a registry host, is the
	// TLS configuration for that registry (berth's own registry, trusted
	// by its CA pin); other registries use the system's roots.
	TLS func(host string) *tls.Config
}

// PlainHTTP reports whether host is listed in PlainHTTPHosts.
func (o PullOptions) PlainHTTP(host string) bool {
	return slices.Contains(o.PlainHTTPHosts, host)
}

// Image is a local image.
type Image struct {
	Ref    string // normalised reference
	Digest string // manifest digest, "sha256:…" (ECS imageDigest)
	Config ImageConfig
	// Cached is true when EnsureImage used the local copy without pulling
	// (by behaviour, or because the pull failed under PullDefault).
	Cached bool
}

// ImageConfig is the part of an image's configuration a container uses.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	StopSignal string
	Labels     map[string]string
}

// NormalizeRef returns ref in the fully qualified form Docker and
// containerd store it under ("nginx" → "docker.io/library/nginx:latest").
func NormalizeRef(ref string) (string, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Sprintf("image reference %q: %v", ref, err))
	}
	return n.String(), nil
}

// RefHost returns the registry host of a normalised reference.
func RefHost(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.Domain(n)
}

// State is a container's lifecycle state.
type State string

const (
	StateCreated State = "created" // created, never started
	StateRunning State = "running"
	StateStopped State = "stopped" // exited; ExitCode and ExitedAt are set
)

// Exit is how a container ended.
type Exit struct {
	Code      int // 128+signal when killed by a signal (137 for SIGKILL)
	ExitedAt  time.Time
	OOMKilled bool // the kernel's OOM killer killed a process of the container
}

// ContainerStatus is what Inspect and List report.
type ContainerStatus struct {
	ID          string
	Image       string // normalised reference
	ImageDigest string
	Labels      map[string]string // the spec's labels
	State       State
	Pid         int // while running
	CreatedAt   time.Time
	ExitCode    int       // when stopped
	ExitedAt    time.Time // when stopped
	OOMKilled   bool      // when stopped
	LogPath     string
}

// Stats is one sample of a container's resource usage, in the units of
// Docker's stats API (nanoseconds, bytes), whatever the cgroup version.
type Stats struct {
	Read   time.Time // when the sample was taken
	CPU    CPUStats
	Memory MemoryStats
	Pids   PidsStats
	// Networks are the counters of the container's network namespace by
	// interface name, loopback left out (as Docker reports them). Nil with
	// NetNSHost, whose counters are the host's.
	Networks map[string]NetworkStats
}

// CPUStats is cumulative CPU time since the container started.
type CPUStats struct {
	TotalNs  uint64
	UserNs   uint64
	KernelNs uint64
	PerCPUNs []uint64 // by CPU; cgroup v1 only, nil on v2
	// SystemNs is the host's total CPU time (all CPUs, /proc/stat) at the
	// same moment, the denominator of Docker's CPU percentage.
	SystemNs   uint64
	OnlineCPUs uint32
	// Throttling by the CFS quota.
	Periods          uint64
	ThrottledPeriods uint64
	ThrottledTimeNs  uint64
}

// MemoryStats is the container's memory cgroup.
type MemoryStats struct {
	Usage    uint64
	MaxUsage uint64 // peak; 0 where the cgroup does not report it
	// Limit is the hard limit, or the host's memory when unlimited (as
	// Docker reports it).
	Limit   uint64
	Failcnt uint64 // times the limit was hit; cgroup v1 only
	// Stats is memory.stat by Docker's key names: cgroup v1 "cache",
	// "rss", "total_inactive_file", …; v2 "anon", "file",
	// "inactive_file", ….
	Stats map[string]uint64
}

// PidsStats is the container's pids cgroup.
type PidsStats struct {
	Current uint64
	Limit   uint64 // 0 = unlimited
}

// NetworkStats are one interface's cumulative counters.
type NetworkStats struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Mount is a bind mount of a host path into the container.
type Mount struct {
	Source      string // absolute host path
	Destination string // absolute container path
	ReadOnly    bool
}

// Ulimit is one resource limit, by ECS name ("nofile", "core", …).
type Ulimit struct {
	Name       string
	Soft, Hard uint64
}

// NetNSHost in ContainerSpec.NetNSPath shares the host's network (and UTS)
// namespace.
const NetNSHost = "host"

// DefaultStopTimeout is ECS_CONTAINER_STOP_TIMEOUT's default.
const DefaultStopTimeout = 30 * time.Second

// DefaultNofile is the RLIMIT_NOFILE soft and hard limit a container gets
// unless Ulimits set "nofile": what ECS-on-Docker users expect, instead of
// containerd's 1024. See DefaultNofileLimit.
const DefaultNofile = 65535

// DefaultNofileLimit is DefaultNofile, lowered to this process's own hard
// limit when that is lower and the process lacks CAP_SYS_RESOURCE: then the
// machine's runtime (started alike) cannot raise it either, and every
// container would fail to start.
var DefaultNofileLimit = sync.OnceValue(func() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max >= DefaultNofile {
		return DefaultNofile
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return DefaultNofile
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err == nil && mask&(1<<capabilityBits["SYS_RESOURCE"]) == 0 {
				return lim.Max
			}
		}
	}
	return DefaultNofile
})

// CPU share bounds, as the ECS agent clamps them.
const (
	MinCPUShares = 2
	MaxCPUShares = 262144
)

// ContainerSpec is everything an ECS container definition turns into.
// Zero values mean the default noted on each field.
//
// Security defaults every container gets: Docker's default capability set
// (adjusted by CapAdd/CapDrop), no-new-privileges, the default seccomp
// profile (unconfined only when Privileged), masked /proc and /sys paths
// including /proc/interrupts, thermal_throttle and powercap, read-only
// /proc/{bus,fs,irq,sys,sysrq-trigger}, RLIMIT_NOFILE DefaultNofileLimit().
type ContainerSpec struct {
	// ID names the container: 1–76 characters of letters, digits, '_',
	// '.' and '-', starting with a letter or digit.
	ID     string
	Image  string            // reference; must be local
	Labels map[string]string // keys must not start with InternalLabelPrefix
	// Env is the container's environment, already merged by the agent
	// (task definition, overrides, environment files, injected ECS
	// variables); the image's variables remain unless overridden.
	Env []string
	// Entrypoint and Command follow Docker: a nil Entrypoint keeps the
	// image's; a non-nil Entrypoint drops the image's Cmd; a nil Command
	// keeps the image's Cmd.
	Entrypoint []string
	Command    []string
	WorkingDir string // "" = the image's, else "/"
	User       string // "user", "uid", "user:group" or "uid:gid"; "" = the image's
	// CPUShares is clamped to MinCPUShares..MaxCPUShares (so 0 means 2, as
	// ECS does). On cgroup v2 runc converts it to cpu.weight.
	CPUShares uint64
	// MemoryLimitMiB is the hard limit (0 = none); exceeding it gets the
	// container OOM-killed.
	MemoryLimitMiB int64
	// MemoryReservationMiB is the soft limit (0 = none): memory.soft_limit
	// on cgroup v1, memory.low on v2.
	MemoryReservationMiB int64
	PidsLimit            int64 // 0 = none
	ShmSizeMiB           int64 // /dev/shm size; 0 = 64 MiB
	ReadonlyRootfs       bool
	Ulimits              []Ulimit
	Privileged           bool
	CapAdd, CapDrop      []string // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL" allowed
	// AllowNewPrivileges turns off no-new-privileges (for setuid binaries
	// such as sudo).
	AllowNewPrivileges bool
	Mounts             []Mount
	// NetNSPath is the network namespace to join: a path (prepared by the
	// agent's network package), NetNSHost, or "" for a new namespace with
	// only loopback (ECS network mode "none").
	NetNSPath string
	// Hostname defaults to DefaultHostname(ID); it must be empty with
	// NetNSHost, which shares the host's hostname.
	Hostname string
	// HostsFile and ResolvConfFile are host files bind-mounted as
	// /etc/hosts and /etc/resolv.conf. With NetNSHost they default to the
	// host's own.
	HostsFile, ResolvConfFile string
	// CgroupParent places the container's cgroup under this path (a task's
	// cgroup); "" = /<namespace>.
	CgroupParent string
	// LogPath receives the container's stdout and stderr (written by the
	// runtime's shim, so logging survives an agent restart); "" discards
	// them. Its directory is created if missing.
	LogPath string
	// StopTimeout is the default for Stop (0 = DefaultStopTimeout).
	StopTimeout time.Duration
	// StopSignal overrides the image's STOPSIGNAL ("SIGINT", "2", …).
	StopSignal string
}

// InternalLabelPrefix marks labels a runtime keeps for itself.
const InternalLabelPrefix = "berth.runtime."

// Validate checks the spec; both runtimes call it in Create.
func (s ContainerSpec) Validate() error {
	bad := func(format string, a ...any) error {
		return errdefs.InvalidArgument(fmt.Sprintf("container %q: ", s.ID) + fmt.Sprintf(format, a...))
	}
	if !ValidID(s.ID) {
		return errdefs.InvalidArgument(fmt.Sprintf("container id %q: want 1-76 letters, digits, '_', '.' or '-', starting with a letter or digit", s.ID))
	}
	if s.Image == "" {
		return bad("no image")
	}
	if _, err := NormalizeRef(s.Image); err != nil {
		return bad("%s", errdefs.Message(err, "bad image reference"))
	}
	for k := range s.Labels {
		if k == "" || strings.HasPrefix(k, InternalLabelPrefix) {
			return bad("label %q: empty or reserved (%s…)", k, InternalLabelPrefix)
		}
	}
	for _, e := range s.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" || strings.ContainsRune(e, 0) {
			return bad("environment entry %q: want KEY=VALUE", e)
		}
	}
	if s.WorkingDir != "" && !strings.HasPrefix(s.WorkingDir, "/") {
		return bad("working directory %q must be absolute", s.WorkingDir)
	}
	if s.MemoryLimitMiB < 0 || s.MemoryReservationMiB < 0 || s.PidsLimit < 0 || s.ShmSizeMiB < 0 || s.StopTimeout < 0 {
		return bad("negative limit")
	}
	if s.MemoryLimitMiB > 0 && s.MemoryLimitMiB < 6 {
		return bad("memory limit %d MiB: ECS requires at least 6 MiB", s.MemoryLimitMiB)
	}
	if s.MemoryLimitMiB > 0 && s.MemoryReservationMiB > s.MemoryLimitMiB {
		return bad("memory reservation %d MiB exceeds the limit %d MiB", s.MemoryReservationMiB, s.MemoryLimitMiB)
	}
	seen := map[string]bool{}
	for _, u := range s.Ulimits {
		if _, ok := RlimitNames[u.Name]; !ok {
			return bad("ulimit %q: unknown name", u.Name)
		}
		if seen[u.Name] {
			return bad("ulimit %q given twice", u.Name)
		}
		seen[u.Name] = true
		if u.Soft > u.Hard {
			return bad("ulimit %q: soft limit %d exceeds hard limit %d", u.Name, u.Soft, u.Hard)
		}
	}
	for _, c := range append(slices.Clone(s.CapAdd), s.CapDrop...) {
		if _, err := NormalizeCapability(c); err != nil {
			return bad("%s", errdefs.Message(err, "bad capability"))
		}
	}
	for _, m := range s.Mounts {
		if !strings.HasPrefix(m.Source, "/") || !strings.HasPrefix(m.Destination, "/") {
			return bad("mount %s → %s: both paths must be absolute", m.Source, m.Destination)
		}
	}
	for _, f := range []string{s.HostsFile, s.ResolvConfFile, s.LogPath, s.CgroupParent} {
		if f != "" && !strings.HasPrefix(f, "/") {
			return bad("path %q must be absolute", f)
		}
	}
	if s.NetNSPath != "" && s.NetNSPath != NetNSHost && !strings.HasPrefix(s.NetNSPath, "/") {
		return bad("network namespace %q: want an absolute path, %q or empty", s.NetNSPath, NetNSHost)
	}
	if s.NetNSPath == NetNSHost && s.Hostname != "" {
		return bad("hostname cannot be set with the host network")
	}
	if s.StopSignal != "" {
		if _, err := ParseSignal(s.StopSignal); err != nil {
			return bad("%s", errdefs.Message(err, "bad stop signal"))
		}
	}
	return nil
}

// ValidID reports whether id is a valid container ID (containerd's
// identifier rules, which Docker's names also satisfy).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 76 {
		return false
	}
	for i, c := range id {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// DefaultHostname is the hostname of a container whose spec names none: its
// ID, cut to the 63 characters a hostname label allows, with characters a
// hostname cannot hold replaced by '-'.
func DefaultHostname(id string) string {
	b := []byte(id)
	if len(b) > 63 {
		b = b[:63]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	return string(b)
}

// ClampCPUShares applies ECS's bounds.
func ClampCPUShares(n uint64) uint64 {
	return min(max(n, MinCPUShares), MaxCPUShares)
}

// Args returns the process arguments Docker would run for a container with
// the given entrypoint and command on an image with config c.
func Args(c ImageConfig, entrypoint, command []string) []string {
	ep, cmd := c.Entrypoint, c.Cmd
	if entrypoint != nil {
		ep, cmd = entrypoint, nil
	}
	if command != nil {
		cmd = command
	}
	return append(slices.Clone(ep), cmd...)
}

// MergeEnv returns base with each KEY=VALUE of over replacing the entry of
// the same key or appended, as Docker merges image and container env.
func MergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	for _, e := range over {
		k, _, _ := strings.Cut(e, "=")
		i := slices.IndexFunc(out, func(b string) bool { bk, _, _ := strings.Cut(b, "="); return bk == k })
		if i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// RlimitNames maps ECS ulimit names to Linux RLIMIT_ names.
var RlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
	"stack": "RLIMIT_STACK",
}

// Capabilities is the set of capability names (without CAP_) a spec may add
// or drop, plus "ALL".
var Capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
	"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
	"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
	"SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	"WAKE_ALARM",
}

// capabilityBits are the kernel's capability numbers.
var capabilityBits = map[string]uint{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
	"SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
	"NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
	"SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
	"SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
	"SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
	"SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
	"BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

// CapabilityMask returns the bit mask of caps ("CAP_X") as /proc/<pid>/status
// shows it in CapEff; unknown names are ignored.
func CapabilityMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		if b, ok := capabilityBits[strings.TrimPrefix(c, "CAP_")]; ok {
			m |= 1 << b
		}
	}
	return m
}

// DefaultCapabilities is Docker's (and containerd's) default set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// NormalizeCapability returns "CAP_X" for "x", "X" or "CAP_X", and "ALL"
// for "all".
func NormalizeCapability(c string) (string, error) {
	u := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
	if u == "ALL" {
		return "ALL", nil
	}
	if !slices.Contains(Capabilities, u) {
		return "", errdefs.InvalidArgument(fmt.Sprintf("unknown capability %q", c))
	}
	return "CAP_" + u, nil
}

// EffectiveCapabilities applies add and drop (Docker's order: drop, then
// add; "ALL" in drop empties the set, in add grants every capability) to
// the default set.
func EffectiveCapabilities(add, drop []string) ([]string, error) {
	set := slices.Clone(DefaultCapabilities)
	for _, d := range drop {
		c, err := NormalizeCapability(d)
		if err != nil {
			return nil, err
		}
		if c == "ALL" {
			set = nil
			continue
		}
		set = slices.DeleteFunc(set, func(x string) bool { return x == c })
	}
	for _, a := range add {
		c, err := NormalizeCapability(a)
		if err != nil {
			return nil, err
		}
		if c == "ALL" {
			set = set[:0]
			for _, n := range Capabilities {
				set = append(set, "CAP_"+n)
			}
			continue
		}
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	slices.Sort(set)
	return slices.Compact(set), nil
}

// ExtraMaskedPaths are paths Docker masks beyond containerd 1.6's list; the
// runtimes make sure they are masked whatever the client library's default.
var ExtraMaskedPaths = []string{"/proc/interrupts", "/sys/devices/virtual/powercap"}
