package agentconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/internal/arn"
	"github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
)

// variable is one name the configuration knows. parse == nil marks an ECS
// agent variable that berth accepts but does not implement yet.
type variable struct {
	name   string
	parse  func(c *Config, v string) error
	secret bool // never echo the value in an error
}

// supported are the variables berth implements. The order is irrelevant:
// each parser touches its own field (ECS_ENGINE_AUTH_DATA, which depends on
// ECS_ENGINE_AUTH_TYPE, is handled in Load).
var supported = []variable{
	{name: "ECS_CLUSTER", parse: func(c *Config, v string) error {
		if err := validCluster(v); err != nil {
			return err
		}
		c.Cluster = v
		return nil
	}},
	{name: "ECS_BACKEND_HOST", parse: func(c *Config, v string) error {
		if err := validEndpoint(v); err != nil {
			return err
		}
		c.BackendHost = v
		return nil
	}},
	{name: "AWS_DEFAULT_REGION", parse: func(c *Config, v string) error {
		if !regionRE.MatchString(v) {
			return errors.New("want a region name such as us-east-1")
		}
		c.Region = v
		return nil
	}},
	{name: "ECS_RESERVED_PORTS", parse: func(c *Config, v string) (err error) {
		c.ReservedPorts, err = parsePorts(v)
		return err
	}},
	{name: "ECS_RESERVED_PORTS_UDP", parse: func(c *Config, v string) (err error) {
		c.ReservedPortsUDP, err = parsePorts(v)
		return err
	}},
	{name: "ECS_RESERVED_MEMORY", parse: func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return errors.New("want a whole number of MiB from 0 to 65535")
		}
		c.ReservedMemoryMiB = uint16(n)
		return nil
	}},
	{name: "ECS_DYNAMIC_HOST_PORT_RANGE", parse: func(c *Config, v string) (err error) {
		c.DynamicHostPortRange, err = parsePortRange(v)
		return err
	}},
	{name: "ECS_CONTAINER_STOP_TIMEOUT", parse: func(c *Config, v string) (err error) {
		c.ContainerStopTimeout, err = parseDuration(v, MinContainerStopTimeout)
		return err
	}},
	{name: "ECS_CONTAINER_START_TIMEOUT", parse: func(c *Config, v string) (err error) {
		c.ContainerStartTimeout, err = parseDuration(v, MinContainerStartTimeout)
		return err
	}},
	{name: "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", parse: func(c *Config, v string) error {
		d, err := parseDuration(v, 0)
		if err != nil {
			return err
		}
		if d < MinTaskCleanupWaitDuration {
			// ECS ignores such values rather than refusing them.
			c.Warnings = append(c.Warnings, fmt.Sprintf("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=%s is under %s and is ignored; using the default %s", v, MinTaskCleanupWaitDuration, DefaultTaskCleanupWaitDuration))
			d = DefaultTaskCleanupWaitDuration
		}
		c.TaskCleanupWaitDuration = d
		return nil
	}},
	{name: "ECS_IMAGE_PULL_BEHAVIOR", parse: func(c *Config, v string) error {
		b := ImagePullBehavior(v)
		if !slices.Contains([]ImagePullBehavior{PullDefault, PullAlways, PullOnce, PullPreferCached}, b) {
			return errors.New("want default, always, once or prefer-cached")
		}
		c.ImagePullBehavior = b
		return nil
	}},
	{name: "ECS_ENGINE_AUTH_TYPE", parse: func(c *Config, v string) error {
		t := AuthType(v)
		if t != AuthDocker && t != AuthDockercfg {
			return errors.New("want docker or dockercfg")
		}
		c.EngineAuthType = t
		return nil
	}},
	{name: "ECS_ENGINE_AUTH_DATA", secret: true, parse: func(*Config, string) error {
		return nil // parsed in Load, after ECS_ENGINE_AUTH_TYPE
	}},
	{name: "ECS_INSTANCE_ATTRIBUTES", parse: func(c *Config, v string) error {
		m, err := parseStringMap(v, `{"stack":"prod"}`)
		if err != nil {
			return err
		}
		if err := validAttributes(m); err != nil {
			return err
		}
		c.InstanceAttributes = m
		return nil
	}},
	{name: "ECS_CONTAINER_INSTANCE_TAGS", parse: func(c *Config, v string) error {
		m, err := parseStringMap(v, `{"team":"web"}`)
		if err != nil {
			return err
		}
		if err := validTags(m); err != nil {
			return err
		}
		c.ContainerInstanceTags = m
		return nil
	}},
	{name: "ECS_AVAILABLE_LOGGING_DRIVERS", parse: func(c *Config, v string) error {
		var drivers []string
		if err := strictJSON(v, &drivers); err != nil || drivers == nil {
			return errors.New(`want a JSON list of strings such as ["json-file","none"]`)
		}
		var bad []string
		for _, d := range drivers {
			if !slices.Contains(loggingDrivers, d) {
				bad = append(bad, strconv.Quote(d))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("unknown logging driver %s; known: %s", strings.Join(bad, ", "), strings.Join(loggingDrivers, ", "))
		}
		c.AvailableLoggingDrivers = dedupe(drivers)
		return nil
	}},
	{name: "ECS_ENABLE_TASK_IAM_ROLE", parse: boolField(func(c *Config) *bool { return &c.TaskIAMRoleEnabled })},
	{name: "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST", parse: boolField(func(c *Config) *bool { return &c.TaskIAMRoleEnabledForNetworkHost })},
	{name: "ECS_DISABLE_PRIVILEGED", parse: boolField(func(c *Config) *bool { return &c.PrivilegedDisabled })},
	{name: "ECS_TASK_PIDS_LIMIT", parse: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxTaskPidsLimit {
			return fmt.Errorf("want a whole number from 1 to %d", MaxTaskPidsLimit)
		}
		c.TaskPidsLimit = n
		return nil
	}},
	{name: "ECS_DATADIR", parse: func(c *Config, v string) error {
		if !strings.HasPrefix(v, "/") {
			return errors.New("want an absolute path")
		}
		c.DataDir = v
		return nil
	}},
	{name: "ECS_LOGLEVEL", parse: func(c *Config, v string) error {
		l := LogLevel(strings.ToLower(v))
		if !slices.Contains([]LogLevel{LogCrit, LogError, LogWarn, LogInfo, LogDebug}, l) {
			return errors.New("want crit, error, warn, info or debug")
		}
		c.LogLevel = l
		return nil
	}},
}

// ignored are the ECS agent's (and ecs-init's) other variables, from the
// agent's README and its log collector's allowlist (ECSA 1.105.1), plus the
// ones the agent injects into task containers (so a berth agent started
// inside a task does not trip over them). Setting one is not an error; Load
// lists it in Config.Ignored.
var ignored = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"CREDENTIALS_FETCHER_HOST", "CREDENTIALS_FETCHER_SECRET_NAME_FOR_DOMAINLESS_GMSA",
	"DOCKER_HOST", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"NON_ECS_IMAGE_MINIMUM_CLEANUP_AGE",
	"ECS_AGENT_APPARMOR_PROFILE", "ECS_AGENT_CONFIG_FILE_PATH", "ECS_AGENT_HEALTHCHECK_HOST",
	"ECS_AGENT_LABELS", "ECS_AGENT_PID_NAMESPACE_HOST", "ECS_AGENT_URI",
	"ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS", "ECS_ALTERNATE_CREDENTIAL_PROFILE",
	"ECS_APPARMOR_CAPABLE", "ECS_AUDIT_LOGFILE", "ECS_AUDIT_LOGFILE_DISABLED",
	"ECS_AWSVPC_ADDITIONAL_LOCAL_ROUTES", "ECS_AWSVPC_BLOCK_IMDS",
	"ECS_CGROUP_CPU_PERIOD", "ECS_CGROUP_PATH", "ECS_CHECKPOINT", "ECS_CNI_PLUGINS_PATH",
	"ECS_CONTAINER_CREATE_TIMEOUT", "ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM",
	"ECS_CONTAINER_METADATA_FILE", "ECS_CONTAINER_METADATA_URI", "ECS_CONTAINER_METADATA_URI_V4",
	"ECS_DISABLE_DOCKER_HEALTH_CHECK", "ECS_DISABLE_IMAGE_CLEANUP", "ECS_DISABLE_METRICS",
	"ECS_DISABLE_TASK_METADATA_AZ", "ECS_EBSTA_SUPPORTED",
	"ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE", "ECS_ENABLE_CONTAINER_METADATA",
	"ECS_ENABLE_CPU_UNBOUNDED_WINDOWS_WORKAROUND", "ECS_ENABLE_GPU_SUPPORT",
	"ECS_ENABLE_HIGH_DENSITY_ENI", "ECS_ENABLE_MEMORY_UNBOUNDED_WINDOWS_WORKAROUND",
	"ECS_ENABLE_PROMETHEUS_METRICS", "ECS_ENABLE_RUNTIME_STATS", "ECS_ENABLE_SPOT_INSTANCE_DRAINING",
	"ECS_ENABLE_TASK_CPU_MEM_LIMIT", "ECS_ENABLE_TASK_ENI", "ECS_ENABLE_UNTRACKED_IMAGE_CLEANUP",
	"ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION_JITTER", "ECS_EXCLUDE_IPV6_PORTBINDING",
	"ECS_EXCLUDE_UNTRACKED_IMAGE", "ECS_EXTERNAL", "ECS_FSX_WINDOWS_FILE_SERVER_SUPPORTED",
	"ECS_GMSA_SUPPORTED", "ECS_HOST_DATA_DIR", "ECS_IMAGE_CLEANUP_INTERVAL",
	"ECS_IMAGE_MINIMUM_CLEANUP_AGE", "ECS_IMAGE_PULL_INACTIVITY_TIMEOUT", "ECS_IMAGE_PULL_TIMEOUT",
	"ECS_INSTANCE_IP_COMPATIBILITY", "ECS_LOGFILE", "ECS_LOGLEVEL_ON_INSTANCE", "ECS_LOG_DRIVER",
	"ECS_LOG_MAX_FILE_SIZE_MB", "ECS_LOG_MAX_ROLL_COUNT", "ECS_LOG_OPTS", "ECS_LOG_OUTPUT_FORMAT",
	"ECS_LOG_ROLLOVER_TYPE", "ECS_MANIFEST_PULL_TIMEOUT", "ECS_NUM_IMAGES_DELETE_PER_CYCLE",
	"ECS_NVIDIA_RUNTIME", "ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME", "ECS_POLLING_METRICS_WAIT_DURATION",
	"ECS_POLL_METRICS", "ECS_PULL_DEPENDENT_CONTAINERS_UPFRONT", "ECS_SELINUX_CAPABLE",
	"ECS_SHARED_VOLUME_MATCH_FULL_CONFIG", "ECS_SKIP_LOCALHOST_TRAFFIC_FILTER",
	"ECS_TASK_METADATA_RPS_LIMIT", "ECS_UPDATES_ENABLED", "ECS_UPDATE_DOWNLOAD_DIR",
	"ECS_WARM_POOLS_CHECK",
}

var known = func() map[string]variable {
	m := make(map[string]variable, len(supported)+len(ignored))
	for _, v := range supported {
		m[v.name] = v
	}
	for _, n := range ignored {
		if _, dup := m[n]; dup {
			panic("agentconfig: " + n + " is both supported and ignored")
		}
		m[n] = variable{name: n, secret: true}
	}
	return m
}()

func lookup(name string) (variable, bool) {
	v, ok := known[name]
	return v, ok
}

// Supported returns the names of the variables berth implements, sorted.
func Supported() []string {
	out := make([]string, 0, len(supported))
	for _, v := range supported {
		out = append(out, v.name)
	}
	slices.Sort(out)
	return out
}

// Accepted returns the names of the ECS agent variables berth accepts but
// ignores, sorted.
func Accepted() []string {
	return slices.Sorted(slices.Values(ignored))
}

// suggest returns the known name closest to an unknown one, or "".
func suggest(name string) string {
	if _, ok := known["ECS_"+name]; ok {
		return "ECS_" + name
	}
	best, bestD := "", len(name)/3+2 // ignore far-fetched matches
	for k := range known {
		if d := distance(name, k); d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between two names.
func distance(a, b string) int {
	if len(a) > 256 || len(b) > 256 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// loggingDrivers are the drivers the ECS agent knows (dockerclient
// LoggingDriverMinimumVersion).
var loggingDrivers = []string{
	"awsfirelens", "awslogs", "fluentd", "gelf", "journald", "json-file",
	"logentries", "none", "splunk", "sumologic", "syslog",
}

// regionRE is the shape of an AWS region name (as internal/config checks it).
var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)

func boolField(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*field(c) = b
		return nil
	}
}

func parseDuration(v string, minimum time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want a duration such as 30s, 10m or 3h")
	}
	if d < minimum {
		return 0, fmt.Errorf("must be at least %s", minimum)
	}
	return d, nil
}

// strictJSON decodes exactly one JSON value.
func strictJSON(v string, into any) error {
	dec := json.NewDecoder(strings.NewReader(v))
	if err := dec.Decode(into); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func parsePorts(v string) ([]uint16, error) {
	var ports []uint16
	if err := strictJSON(v, &ports); err != nil || ports == nil {
		return nil, errors.New("want a JSON list of port numbers from 1 to 65535 such as [22,2375]")
	}
	for _, p := range ports {
		if p == 0 {
			return nil, errors.New("port 0 is not a port; want numbers from 1 to 65535")
		}
	}
	return dedupe(ports), nil
}

func parsePortRange(v string) (PortRange, error) {
	lo, hi, ok := strings.Cut(v, "-")
	a, errA := strconv.ParseUint(lo, 10, 16)
	b, errB := strconv.ParseUint(hi, 10, 16)
	if !ok || errA != nil || errB != nil || a == 0 || a > b {
		return PortRange{}, errors.New("want first-last with 1 ≤ first ≤ last ≤ 65535, such as 49153-65535")
	}
	return PortRange{First: uint16(a), Last: uint16(b)}, nil
}

func parseStringMap(v, example string) (map[string]string, error) {
	var m map[string]string
	if err := strictJSON(v, &m); err != nil || m == nil {
		return nil, fmt.Errorf("want a JSON object of strings such as %s", example)
	}
	return m, nil
}

func dedupe[T comparable](in []T) []T {
	out := make([]T, 0, len(in))
	for _, x := range in {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func validCluster(v string) error {
	if arn.IsARN(v) {
		r, err := arn.Parse(v)
		if err != nil || r.Type != arn.TypeCluster {
			return errors.New("not a cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)")
		}
		return nil
	}
	if err := ecs.ValidateClusterName(v); err != nil {
		return errors.New(errdefs.Message(err, "invalid cluster name"))
	}
	return nil
}

func validEndpoint(v string) error {
	raw := v
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return errors.New("want an http(s) URL or host[:port], such as https://berth.example.com:7400")
	}
	return nil
}

// Attribute limits (ecs-behaviour.md §5.4).
const (
	MaxInstanceAttributes = 10
	maxAttributeLength    = 128
)

var (
	attrNameRE  = regexp.MustCompile(`^[A-Za-z0-9_./-]{1,128}$`)
	attrValueRE = regexp.MustCompile(`^[A-Za-z0-9_./@:\\ -]{1,128}$`)
)

func validAttributes(m map[string]string) error {
	if len(m) > MaxInstanceAttributes {
		return fmt.Errorf("%d attributes; at most %d are allowed", len(m), MaxInstanceAttributes)
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		if !attrNameRE.MatchString(k) {
			return fmt.Errorf("attribute name %q: want 1 to %d letters, digits, '-', '_', '/' or '.'", truncate(k, 40), maxAttributeLength)
		}
		if !attrValueRE.MatchString(v) || strings.HasPrefix(v, " ") || strings.HasSuffix(v, " ") {
			return fmt.Errorf("attribute %s value %q: want 1 to %d letters, digits, '-', '_', '/', '\\', '.', '@', ':' or inner spaces", k, truncate(v, 40), maxAttributeLength)
		}
	}
	return nil
}

func validTags(m map[string]string) error {
	if len(m) > ecs.MaxTags {
		return fmt.Errorf("%d tags; at most %d are allowed", len(m), ecs.MaxTags)
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return errors.New("tag keys and values must be valid UTF-8")
		}
		if n := utf8.RuneCountInString(k); n < 1 || n > ecs.MaxTagKeyLength {
			return fmt.Errorf("tag key %q: want 1 to %d characters", truncate(k, 40), ecs.MaxTagKeyLength)
		}
		if utf8.RuneCountInString(v) > ecs.MaxTagValueLength {
			return fmt.Errorf("tag %s: value longer than %d characters", truncate(k, 40), ecs.MaxTagValueLength)
		}
		if hasAWSPrefix(k) || hasAWSPrefix(v) {
			return fmt.Errorf("tag %s: keys and values cannot start with the reserved prefix aws:", truncate(k, 40))
		}
	}
	return nil
}

func hasAWSPrefix(s string) bool {
	return len(s) >= 4 && strings.EqualFold(s[:4], "aws:")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
