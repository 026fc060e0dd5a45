// Package agentconfig reads the node agent's configuration: an
// ecs.config-style file of KEY=VALUE lines overlaid by ECS_* environment
// variables, with the variable names, defaults and value syntax of the
// Amazon ECS container agent, so a host moves from ECS to berth unchanged.
//
// Where ECS silently ignores a bad value, berth refuses it with an error
// naming the variable: a typo should not quietly register an instance in the
// wrong cluster. docs/agent-config.md lists every variable and how berth
// handles it.
package agentconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultPath is where `berth agent` looks for its file when --config is not
// given; the same path the ECS agent's ecs-init reads.
const DefaultPath = "/etc/ecs/ecs.config"

// ImagePullBehavior is the value of ECS_IMAGE_PULL_BEHAVIOR.
type ImagePullBehavior string

// The pull behaviours of the ECS agent.
const (
	// PullDefault pulls, and falls back to the cached image when the pull fails.
	PullDefault ImagePullBehavior = "default"
	// PullAlways pulls; a failed pull fails the task.
	PullAlways ImagePullBehavior = "always"
	// PullOnce pulls an image the agent has not pulled before (or has
	// cleaned up); otherwise it uses the cache.
	PullOnce ImagePullBehavior = "once"
	// PullPreferCached uses a cached image when there is one.
	PullPreferCached ImagePullBehavior = "prefer-cached"
)

// LogLevel is the value of ECS_LOGLEVEL.
type LogLevel string

// The ECS agent's log levels, most severe first.
const (
	LogCrit  LogLevel = "crit"
	LogError LogLevel = "error"
	LogWarn  LogLevel = "warn"
	LogInfo  LogLevel = "info"
	LogDebug LogLevel = "debug"
)

// AuthType is the value of ECS_ENGINE_AUTH_TYPE.
type AuthType string

// The formats ECS_ENGINE_AUTH_DATA may have.
const (
	// AuthDocker: {"registry":{"username":…,"password":…[,"email":…]}}.
	AuthDocker AuthType = "docker"
	// AuthDockercfg: a legacy ~/.dockercfg, {"registry":{"auth":base64("user:pass"),"email":…}}.
	AuthDockercfg AuthType = "dockercfg"
)

// PortRange is an inclusive range of ports. The zero value means "unset".
type PortRange struct {
	First, Last uint16
}

// IsZero reports whether the range is unset.
func (r PortRange) IsZero() bool { return r == PortRange{} }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Config is the node agent's configuration. Every field has a default (see
// Default); Load fills it from the file and the environment.
type Config struct {
	// Cluster (ECS_CLUSTER) is the cluster name or cluster ARN to join.
	Cluster string
	// BackendHost (ECS_BACKEND_HOST) overrides the server endpoint; "" means
	// the one given on the command line.
	BackendHost string
	// Region (AWS_DEFAULT_REGION) is the region to sign requests for; ""
	// means the server's.
	Region string

	// ReservedPorts (ECS_RESERVED_PORTS) and ReservedPortsUDP
	// (ECS_RESERVED_PORTS_UDP) are registered as taken (PORTS, PORTS_UDP)
	// and are never handed out as host ports. Never nil after Load.
	ReservedPorts    []uint16
	ReservedPortsUDP []uint16
	// ReservedMemoryMiB (ECS_RESERVED_MEMORY) is subtracted from the
	// registered MEMORY; it reserves nothing on the host. uint16 as in ECS.
	ReservedMemoryMiB uint16
	// DynamicHostPortRange (ECS_DYNAMIC_HOST_PORT_RANGE) is where bridge-mode
	// host ports come from; zero means the host's ip_local_port_range.
	DynamicHostPortRange PortRange

	// ContainerStopTimeout (ECS_CONTAINER_STOP_TIMEOUT) is the SIGTERM →
	// SIGKILL interval when the container definition sets no stopTimeout.
	ContainerStopTimeout time.Duration
	// ContainerStartTimeout (ECS_CONTAINER_START_TIMEOUT) bounds one
	// container start.
	ContainerStartTimeout time.Duration
	// TaskCleanupWaitDuration (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION) is how
	// long a stopped task's containers are kept before removal.
	TaskCleanupWaitDuration time.Duration

	// ImagePullBehavior (ECS_IMAGE_PULL_BEHAVIOR).
	ImagePullBehavior ImagePullBehavior
	// EngineAuthType (ECS_ENGINE_AUTH_TYPE) is "" when no registry
	// credentials are configured.
	EngineAuthType AuthType
	// EngineAuth (ECS_ENGINE_AUTH_DATA) maps a registry host (see
	// RegistryHost) to its credentials. Never nil after Load.
	EngineAuth map[string]RegistryAuth

	// InstanceAttributes (ECS_INSTANCE_ATTRIBUTES) are custom attributes sent
	// at first registration. Never nil after Load.
	InstanceAttributes map[string]string
	// ContainerInstanceTags (ECS_CONTAINER_INSTANCE_TAGS) are tags sent at
	// registration. Never nil after Load.
	ContainerInstanceTags map[string]string
	// AvailableLoggingDrivers (ECS_AVAILABLE_LOGGING_DRIVERS) are advertised
	// as com.amazonaws.ecs.capability.logging-driver.* attributes.
	AvailableLoggingDrivers []string

	// TaskIAMRoleEnabled (ECS_ENABLE_TASK_IAM_ROLE) and
	// TaskIAMRoleEnabledForNetworkHost (ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST)
	// advertise the task-iam-role capabilities.
	TaskIAMRoleEnabled               bool
	TaskIAMRoleEnabledForNetworkHost bool
	// PrivilegedDisabled (ECS_DISABLE_PRIVILEGED) refuses privileged
	// containers and withholds the privileged-container capability.
	PrivilegedDisabled bool
	// TaskPidsLimit (ECS_TASK_PIDS_LIMIT) is the task cgroup's pids.max; 0
	// means unset (the agent's own default applies).
	TaskPidsLimit int

	// DataDir (ECS_DATADIR) holds the agent's state database.
	DataDir string
	// LogLevel (ECS_LOGLEVEL).
	LogLevel LogLevel

	// Ignored lists, sorted, the ECS agent variables that were set but that
	// berth does not implement yet. The caller logs them as a warning.
	Ignored []string
	// Warnings are values that were adjusted rather than refused, as ECS
	// does (a cleanup wait under one second, say). The caller logs them.
	Warnings []string
}

// The ECS agent's Linux defaults and limits.
const (
	DefaultCluster                 = "default"
	DefaultContainerStopTimeout    = 30 * time.Second
	DefaultContainerStartTimeout   = 3 * time.Minute
	DefaultTaskCleanupWaitDuration = 3 * time.Hour

	MinContainerStopTimeout    = time.Second
	MinContainerStartTimeout   = 45 * time.Second
	MinTaskCleanupWaitDuration = time.Second

	MaxTaskPidsLimit = 4194304
)

// Default returns the configuration with nothing set.
func Default() Config {
	return Config{
		Cluster:                 DefaultCluster,
		ReservedPorts:           []uint16{22, 2375, 2376, 51678, 51679},
		ReservedPortsUDP:        []uint16{},
		ContainerStopTimeout:    DefaultContainerStopTimeout,
		ContainerStartTimeout:   DefaultContainerStartTimeout,
		TaskCleanupWaitDuration: DefaultTaskCleanupWaitDuration,
		ImagePullBehavior:       PullDefault,
		EngineAuth:              map[string]RegistryAuth{},
		InstanceAttributes:      map[string]string{},
		ContainerInstanceTags:   map[string]string{},
		AvailableLoggingDrivers: []string{"json-file", "none"},
		DataDir:                 DefaultDataDir(),
		LogLevel:                LogInfo,
	}
}

// DefaultDataDir is /var/lib/berth/agent for root, else ~/.berth/agent
// (beside the control plane's ~/.berth), else a directory under the
// temporary directory when there is no home.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/berth/agent"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".berth", "agent")
	}
	return filepath.Join(os.TempDir(), "berth-agent")
}

// RegistryAuth returns the credentials configured for a registry, looked up
// by RegistryHost(registry).
func (c Config) RegistryAuth(registry string) (RegistryAuth, bool) {
	a, ok := c.EngineAuth[RegistryHost(registry)]
	return a, ok
}

// source says where a value came from, for error messages.
type source struct {
	value string
	from  string // "/etc/ecs/ecs.config:3" or "environment"
}

// Load reads the configuration: defaults, then the file at path, then the
// ECS_* variables and AWS_DEFAULT_REGION of environ (which win).
//
// path "" means DefaultPath. A missing file is fine at the default path
// (a host may be configured by environment alone) and an error anywhere
// else: an explicitly named file that is not there is a mistake.
//
// Every bad variable is reported, not just the first (a syntax error in
// the file stops at its line); the error is of kind
// errdefs.ErrInvalidArgument and each part names the variable, where it
// came from and (except for secrets) the bad value.
func Load(path string, environ []string) (Config, error) {
	return loadFrom(path, environ, DefaultPath)
}

// FromEnv is Load without a file: the defaults overlaid by environ's ECS_*
// variables. `berth up` configures its local agent this way.
func FromEnv(environ []string) (Config, error) {
	return build(nil, "the environment", environ)
}

func loadFrom(path string, environ []string, defaultPath string) (Config, error) {
	if path == "" {
		path = defaultPath
	}
	data, err := readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && path == defaultPath:
		data = nil
	case err != nil:
		return Config{}, &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Message: "agent config " + path + ": cannot read the file", Cause: err}
	}
	return build(data, path, environ)
}

// build does Load's work on the file's contents (nil for no file).
func build(data []byte, path string, environ []string) (Config, error) {
	entries, err := ParseFile(data)
	if err != nil {
		return Config{}, errdefs.InvalidArgument("agent config " + path + ": " + errdefs.Message(err, err.Error()))
	}
	vals := map[string]source{}
	var order []string // first-seen order of keys, for stable messages
	set := func(k string, s source) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = s
	}
	for _, e := range entries {
		set(e.Key, source{value: e.Value, from: fmt.Sprintf("%s:%d", path, e.Line)})
	}

	// The environment: ECS_* and AWS_DEFAULT_REGION only (the rest of a
	// process environment is none of our business). As for the ECS agent,
	// an empty variable counts as unset, so it does not clear the file's
	// value; os.Getenv sees the first of duplicate entries, so do we.
	env := map[string]string{}
	var envKeys []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !(strings.HasPrefix(k, "ECS_") || k == "AWS_DEFAULT_REGION") {
			continue
		}
		if _, dup := env[k]; dup {
			continue
		}
		env[k] = v
		envKeys = append(envKeys, k)
	}
	slices.Sort(envKeys)
	for _, k := range envKeys {
		if v := strings.TrimSpace(env[k]); v != "" {
			set(k, source{value: v, from: "environment"})
		} else if _, ok := vals[k]; !ok {
			set(k, source{from: "environment"}) // still checked for being known
		}
	}

	var errs []error
	cfg := Default()
	var authData *source
	for _, k := range order {
		s := vals[k]
		v, ok := lookup(k)
		switch {
		case !ok:
			errs = append(errs, unknownErr(k, s.from))
		case s.value == "":
			// Unset, as for the ECS agent (os.Getenv cannot tell the two apart).
		case v.parse == nil:
			cfg.Ignored = append(cfg.Ignored, k)
		case k == "ECS_ENGINE_AUTH_DATA":
			authData = &s // parsed below, once the type is known
		default:
			if err := v.parse(&cfg, s.value); err != nil {
				errs = append(errs, valueErr(v, s, err))
			}
		}
	}
	if authData != nil {
		v, _ := lookup("ECS_ENGINE_AUTH_DATA")
		if cfg.EngineAuthType == "" {
			errs = append(errs, valueErr(v, *authData, errors.New("ECS_ENGINE_AUTH_TYPE must be set to docker or dockercfg to say its format")))
		} else if auth, err := parseEngineAuth(cfg.EngineAuthType, authData.value); err != nil {
			errs = append(errs, valueErr(v, *authData, err))
		} else {
			cfg.EngineAuth = auth
		}
	} else if cfg.EngineAuthType != "" {
		cfg.Warnings = append(cfg.Warnings, "ECS_ENGINE_AUTH_TYPE is set but ECS_ENGINE_AUTH_DATA is not: no registry credentials are configured")
	}
	slices.Sort(cfg.Ignored)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// readFile reads at most MaxFileSize+1 bytes so ParseFile can refuse
// anything larger without the whole of it sitting in memory.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, errors.New("is a directory")
	}
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

func unknownErr(key, from string) error {
	msg := fmt.Sprintf("agent config: %s (%s) is not a known ECS agent variable", key, from)
	if s := suggest(key); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return errdefs.InvalidArgument(msg)
}

func valueErr(v variable, s source, err error) error {
	shown := fmt.Sprintf("%q", truncate(s.value, 80))
	if v.secret {
		shown = "(value not shown)"
	}
	return errdefs.InvalidArgument(fmt.Sprintf("agent config: %s=%s (%s): %v", v.name, shown, s.from, err))
}
