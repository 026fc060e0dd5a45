package runtime

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParsePullBehavior(t *testing.T) {
	for in, want := range map[string]PullBehavior{
		"": PullDefault, "default": PullDefault, "ALWAYS": PullAlways, " once ": PullOnce, "prefer-cached": PullPreferCached,
	} {
		got, err := ParsePullBehavior(in)
		if err != nil || got != want {
			t.Errorf("ParsePullBehavior(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePullBehavior("sometimes"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParsePullBehavior(sometimes): %v", err)
	}
}

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                 "docker.io/library/nginx:latest",
		"nginx:1.25":            "docker.io/library/nginx:1.25",
		"me/app":                "docker.io/me/app:latest",
		"127.0.0.1:5000/x/y:v1": "127.0.0.1:5000/x/y:v1",
		"123.dkr.ecr.us-east-1.amazonaws.com/app:v2": "123.dkr.ecr.us-east-1.amazonaws.com/app:v2",
	} {
		got, err := NormalizeRef(in)
		if err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Upper/Case", "a b", "x:y:z"} {
		if _, err := NormalizeRef(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NormalizeRef(%q): %v, want invalid argument", bad, err)
		}
	}
	if h := RefHost("docker.io/library/nginx:latest"); h != "docker.io" {
		t.Errorf("RefHost = %q", h)
	}
	if h := RefHost("127.0.0.1:5000/x:v1"); h != "127.0.0.1:5000" {
		t.Errorf("RefHost = %q", h)
	}
}

func TestArgs(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"cmd", "x"}}
	for _, tc := range []struct {
		name          string
		ep, cmd, want []string
	}{
		{"image defaults", nil, nil, []string{"/ep", "cmd", "x"}},
		{"command replaces cmd", nil, []string{"c"}, []string{"/ep", "c"}},
		{"entrypoint drops the image cmd", []string{"/e2"}, nil, []string{"/e2"}},
		{"both", []string{"/e2"}, []string{"c"}, []string{"/e2", "c"}},
		{"empty entrypoint", []string{}, []string{"c"}, []string{"c"}},
	} {
		if diff := cmp.Diff(tc.want, Args(img, tc.ep, tc.cmd)); diff != "" {
			t.Errorf("%s: %s", tc.name, diff)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := MergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3", "EMPTY="})
	if diff := cmp.Diff([]string{"PATH=/bin", "A=2", "B=3", "EMPTY="}, got); diff != "" {
		t.Error(diff)
	}
}

func TestCapabilities(t *testing.T) {
	for in, want := range map[string]string{"net_admin": "CAP_NET_ADMIN", "CAP_SYS_ADMIN": "CAP_SYS_ADMIN", "all": "ALL"} {
		if got, err := NormalizeCapability(in); err != nil || got != want {
			t.Errorf("NormalizeCapability(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := NormalizeCapability("FLY"); err == nil {
		t.Error("NormalizeCapability(FLY) succeeded")
	}
	got, err := EffectiveCapabilities([]string{"NET_ADMIN"}, []string{"NET_RAW", "mknod"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(DefaultCapabilities)-1 || !contains(got, "CAP_NET_ADMIN") || contains(got, "CAP_NET_RAW") || contains(got, "CAP_MKNOD") {
		t.Errorf("EffectiveCapabilities = %v", got)
	}
	got, _ = EffectiveCapabilities([]string{"SYS_PTRACE"}, []string{"ALL"})
	if diff := cmp.Diff([]string{"CAP_SYS_PTRACE"}, got); diff != "" {
		t.Errorf("drop ALL, add one: %s", diff)
	}
	got, _ = EffectiveCapabilities([]string{"ALL"}, nil)
	if len(got) != len(Capabilities) {
		t.Errorf("add ALL gives %d capabilities, want %d", len(got), len(Capabilities))
	}
	// Docker's default set as /proc/<pid>/status shows it.
	if m := CapabilityMask(DefaultCapabilities); m != 0xa80425fb {
		t.Errorf("CapabilityMask(default) = %#x, want 0xa80425fb", m)
	}
	for _, c := range Capabilities {
		if _, ok := capabilityBits[c]; !ok {
			t.Errorf("capability %s has no bit", c)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "TERM": syscall.SIGTERM, "sigint": syscall.SIGINT, "9": syscall.SIGKILL, "SIGRTMIN+3": 0,
	} {
		got, err := ParseSignal(in)
		if want == 0 {
			continue // platform-specific names need not parse
		}
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "SIGNOPE", "0", "65", "-1"} {
		if _, err := ParseSignal(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseSignal(%q): %v, want invalid argument", bad, err)
		}
	}
}

func TestDefaultHostnameAndIDs(t *testing.T) {
	if got := DefaultHostname("task_1.web"); got != "task-1.web" {
		t.Errorf("DefaultHostname = %q", got)
	}
	if got := DefaultHostname(strings.Repeat("a", 80)); len(got) != 63 {
		t.Errorf("DefaultHostname of 80 chars has %d", len(got))
	}
	for id, ok := range map[string]bool{"a": true, "a-b_c.d": true, "": false, "-a": false, "a b": false, strings.Repeat("x", 77): false} {
		if ValidID(id) != ok {
			t.Errorf("ValidID(%q) = %v", id, !ok)
		}
	}
	if ClampCPUShares(0) != 2 || ClampCPUShares(512) != 512 || ClampCPUShares(1<<30) != MaxCPUShares {
		t.Error("ClampCPUShares is off")
	}
	if n := DefaultNofileLimit(); n == 0 || n > DefaultNofile {
		t.Errorf("DefaultNofileLimit = %d", n)
	}
}

func TestValidate(t *testing.T) {
	good := ContainerSpec{ID: "c1", Image: "nginx", LogPath: "/var/log/c1.log"}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good): %v", err)
	}
	for name, mutate := range map[string]func(*ContainerSpec){
		"bad id":             func(s *ContainerSpec) { s.ID = "no spaces" },
		"no image":           func(s *ContainerSpec) { s.Image = "" },
		"bad image":          func(s *ContainerSpec) { s.Image = "a/UP" },
		"reserved label":     func(s *ContainerSpec) { s.Labels = map[string]string{InternalLabelPrefix + "x": "y"} },
		"bad env":            func(s *ContainerSpec) { s.Env = []string{"=x"} },
		"relative cwd":       func(s *ContainerSpec) { s.WorkingDir = "tmp" },
		"negative memory":    func(s *ContainerSpec) { s.MemoryLimitMiB = -1 },
		"tiny memory":        func(s *ContainerSpec) { s.MemoryLimitMiB = 4 },
		"reservation > hard": func(s *ContainerSpec) { s.MemoryLimitMiB, s.MemoryReservationMiB = 64, 128 },
		"unknown ulimit":     func(s *ContainerSpec) { s.Ulimits = []Ulimit{{Name: "files", Soft: 1, Hard: 1}} },
		"twice ulimit": func(s *ContainerSpec) {
			s.Ulimits = []Ulimit{{Name: "nofile", Soft: 1, Hard: 1}, {Name: "nofile", Soft: 2, Hard: 2}}
		},
		"soft > hard":       func(s *ContainerSpec) { s.Ulimits = []Ulimit{{Name: "core", Soft: 2, Hard: 1}} },
		"bad capability":    func(s *ContainerSpec) { s.CapAdd = []string{"FLY"} },
		"relative mount":    func(s *ContainerSpec) { s.Mounts = []Mount{{Source: "a", Destination: "/b"}} },
		"relative log":      func(s *ContainerSpec) { s.LogPath = "c1.log" },
		"relative netns":    func(s *ContainerSpec) { s.NetNSPath = "ns" },
		"hostname and host": func(s *ContainerSpec) { s.NetNSPath, s.Hostname = NetNSHost, "h" },
		"bad stop signal":   func(s *ContainerSpec) { s.StopSignal = "SIGNOPE" },
		"negative timeout":  func(s *ContainerSpec) { s.StopTimeout = -1 },
	} {
		s := good
		mutate(&s)
		if err := s.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Validate = %v, want invalid argument", name, err)
		}
	}
}

// FuzzParsers feeds outside input (image references from task definitions,
// STOPSIGNAL from image configs, ECS_IMAGE_PULL_BEHAVIOR, container specs)
// to the parsers: they must answer with a value or an error, never panic.
func FuzzParsers(f *testing.F) {
	f.Add("nginx:latest", "SIGTERM", "default", "c1", "nobody", "NET_ADMIN")
	f.Add("127.0.0.1:5000/x@sha256:"+strings.Repeat("a", 64), "15", "prefer-cached", "a.b-c", "0:0", "all")
	f.Add("", "", "", "", "", "")
	f.Add("UPPER", "SIG", "x", "-", ":", "CAP_")
	f.Fuzz(func(t *testing.T, ref, sig, behavior, id, user, capability string) {
		if n, err := NormalizeRef(ref); err == nil {
			if again, err := NormalizeRef(n); err != nil || again != n {
				t.Errorf("NormalizeRef(%q) = %q, which normalises to %q, %v", ref, n, again, err)
			}
			_ = RefHost(n)
		}
		_, _ = ParseSignal(sig)
		_, _ = ParsePullBehavior(behavior)
		_ = DefaultHostname(id)
		s := ContainerSpec{ID: id, Image: ref, User: user, StopSignal: sig, CapAdd: []string{capability}, Env: []string{user}}
		_ = s.Validate()
		_, _ = EffectiveCapabilities([]string{capability}, []string{capability})
	})
}
