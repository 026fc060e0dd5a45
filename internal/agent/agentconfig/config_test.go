package agentconfig

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ecs.config")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	missingDefault := filepath.Join(t.TempDir(), "ecs.config")
	got, err := loadFrom("", nil, missingDefault)
	if err != nil {
		t.Fatalf("a missing file at the default path must be fine: %v", err)
	}
	want := Config{
		Cluster:                 "default",
		ReservedPorts:           []uint16{22, 2375, 2376, 51678, 51679},
		ReservedPortsUDP:        []uint16{},
		ContainerStopTimeout:    30 * time.Second,
		ContainerStartTimeout:   3 * time.Minute,
		TaskCleanupWaitDuration: 3 * time.Hour,
		ImagePullBehavior:       PullDefault,
		EngineAuth:              map[string]RegistryAuth{},
		InstanceAttributes:      map[string]string{},
		ContainerInstanceTags:   map[string]string{},
		AvailableLoggingDrivers: []string{"json-file", "none"},
		DataDir:                 DefaultDataDir(),
		LogLevel:                LogInfo,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if !got.DynamicHostPortRange.IsZero() || got.TaskPidsLimit != 0 || got.TaskIAMRoleEnabled || got.PrivilegedDisabled {
		t.Errorf("unset fields are not zero: %+v", got)
	}
	// An empty file is the same as none.
	got2, err := Load(writeFile(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Errorf("empty file (-want +got):\n%s", diff)
	}
}

func TestDefaultDataDir(t *testing.T) {
	d := DefaultDataDir()
	if os.Geteuid() == 0 && d != "/var/lib/berth/agent" {
		t.Errorf("root data dir = %q", d)
	}
	if !filepath.IsAbs(d) || filepath.Base(d) != "agent" && !strings.HasSuffix(d, "berth-agent") {
		t.Errorf("data dir %q", d)
	}
}

func dockercfgAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// TestVariables checks each supported variable: accepted values change
// exactly their field; malformed ones give an error naming the variable.
func TestVariables(t *testing.T) {
	type valid struct {
		value string
		want  func(c *Config)
	}
	tests := []struct {
		key   string
		valid []valid
		bad   []string
	}{
		{"ECS_CLUSTER",
			[]valid{
				{"prod", func(c *Config) { c.Cluster = "prod" }},
				{"a_b-C9", func(c *Config) { c.Cluster = "a_b-C9" }},
				{strings.Repeat("x", 255), func(c *Config) { c.Cluster = strings.Repeat("x", 255) }},
				{"arn:aws:ecs:us-east-1:123456789012:cluster/prod", func(c *Config) { c.Cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/prod" }},
			},
			[]string{"pr od", "prod # comment", strings.Repeat("x", 256), "a.b", "arn:aws:ecs:us-east-1:123456789012:service/c/s", "arn:nope"}},
		{"ECS_BACKEND_HOST",
			[]valid{
				{"https://berth.example.com:7400", func(c *Config) { c.BackendHost = "https://berth.example.com:7400" }},
				{"127.0.0.1:7400", func(c *Config) { c.BackendHost = "127.0.0.1:7400" }},
				{"http://[::1]:7400/", func(c *Config) { c.BackendHost = "http://[::1]:7400/" }},
			},
			[]string{"ftp://x", "https://", "https://user:pw@host", "://x", "http://a b"}},
		{"AWS_DEFAULT_REGION",
			[]valid{
				{"us-east-1", func(c *Config) { c.Region = "us-east-1" }},
				{"ap-southeast-12", func(c *Config) { c.Region = "ap-southeast-12" }},
			},
			[]string{"US-EAST-1", "useast1", "us-east", "local"}},
		{"ECS_RESERVED_PORTS",
			[]valid{
				{"[22, 80, 5000, 8080]", func(c *Config) { c.ReservedPorts = []uint16{22, 80, 5000, 8080} }},
				{"[]", func(c *Config) { c.ReservedPorts = []uint16{} }},
				{"[80,80,443]", func(c *Config) { c.ReservedPorts = []uint16{80, 443} }},
				{"[65535]", func(c *Config) { c.ReservedPorts = []uint16{65535} }},
			},
			[]string{"22,80", "[0]", "[65536]", "[-1]", "[22.5]", `["22"]`, "null", "{}", "[22] [23]", "[22"}},
		{"ECS_RESERVED_PORTS_UDP",
			[]valid{
				{"[53, 123]", func(c *Config) { c.ReservedPortsUDP = []uint16{53, 123} }},
			},
			[]string{"53", "[70000]"}},
		{"ECS_RESERVED_MEMORY",
			[]valid{
				{"32", func(c *Config) { c.ReservedMemoryMiB = 32 }},
				{"0", func(c *Config) {}},
				{"65535", func(c *Config) { c.ReservedMemoryMiB = 65535 }},
			},
			[]string{"-1", "65536", "32MiB", "1.5", "0x10"}},
		{"ECS_DYNAMIC_HOST_PORT_RANGE",
			[]valid{
				{"100-200", func(c *Config) { c.DynamicHostPortRange = PortRange{100, 200} }},
				{"40000-40000", func(c *Config) { c.DynamicHostPortRange = PortRange{40000, 40000} }},
				{"1-65535", func(c *Config) { c.DynamicHostPortRange = PortRange{1, 65535} }},
			},
			[]string{"200-100", "0-100", "100", "100-", "-100", "100-65536", "100 - 200", "a-b", "100-200-300"}},
		{"ECS_CONTAINER_STOP_TIMEOUT",
			[]valid{
				{"10m", func(c *Config) { c.ContainerStopTimeout = 10 * time.Minute }},
				{"1s", func(c *Config) { c.ContainerStopTimeout = time.Second }},
				{"1m30s", func(c *Config) { c.ContainerStopTimeout = 90 * time.Second }},
			},
			[]string{"30", "999ms", "0s", "-5s", "ten seconds"}},
		{"ECS_CONTAINER_START_TIMEOUT",
			[]valid{
				{"10m", func(c *Config) { c.ContainerStartTimeout = 10 * time.Minute }},
				{"45s", func(c *Config) { c.ContainerStartTimeout = 45 * time.Second }},
			},
			[]string{"44s", "3", "3 m"}},
		{"ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION",
			[]valid{
				{"10m", func(c *Config) { c.TaskCleanupWaitDuration = 10 * time.Minute }},
				{"1s", func(c *Config) { c.TaskCleanupWaitDuration = time.Second }},
				// Under a second: ignored, as ECS does, with a warning.
				{"500ms", func(c *Config) {
					c.Warnings = []string{"ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=500ms is under 1s and is ignored; using the default 3h0m0s"}
				}},
			},
			[]string{"3", "forever"}},
		{"ECS_IMAGE_PULL_BEHAVIOR",
			[]valid{
				{"default", func(c *Config) {}},
				{"always", func(c *Config) { c.ImagePullBehavior = PullAlways }},
				{"once", func(c *Config) { c.ImagePullBehavior = PullOnce }},
				{"prefer-cached", func(c *Config) { c.ImagePullBehavior = PullPreferCached }},
			},
			[]string{"ALWAYS", "never", "prefer_cached"}},
		{"ECS_INSTANCE_ATTRIBUTES",
			[]valid{
				{`{"stack": "prod"}`, func(c *Config) { c.InstanceAttributes = map[string]string{"stack": "prod"} }},
				{`{}`, func(c *Config) {}},
				{`{"a.b/c-d_e": "x y@z:1\\2"}`, func(c *Config) { c.InstanceAttributes = map[string]string{"a.b/c-d_e": `x y@z:1\2`} }},
				{fmt.Sprintf(`{%q:%q}`, strings.Repeat("n", 128), strings.Repeat("v", 128)), func(c *Config) {
					c.InstanceAttributes = map[string]string{strings.Repeat("n", 128): strings.Repeat("v", 128)}
				}},
				{tenAttrs(10), func(c *Config) {
					c.InstanceAttributes = map[string]string{}
					for i := range 10 {
						c.InstanceAttributes[fmt.Sprintf("k%d", i)] = "v"
					}
				}},
			},
			[]string{
				`stack=prod`, `{"a":1}`, `["a"]`, `null`, `{"a":"b"} x`,
				`{"":"v"}`, `{"a b":"v"}`, `{"a":""}`, `{"a":" v"}`, `{"a":"v "}`, `{"a":"v#"}`,
				fmt.Sprintf(`{%q:"v"}`, strings.Repeat("n", 129)), fmt.Sprintf(`{"a":%q}`, strings.Repeat("v", 129)),
				tenAttrs(11),
			}},
		{"ECS_CONTAINER_INSTANCE_TAGS",
			[]valid{
				{`{"tag_key": "tag_val"}`, func(c *Config) { c.ContainerInstanceTags = map[string]string{"tag_key": "tag_val"} }},
				{`{"k": ""}`, func(c *Config) { c.ContainerInstanceTags = map[string]string{"k": ""} }},
			},
			[]string{`{"aws:x":"v"}`, `{"k":"AWS:v"}`, `{"":"v"}`, `{"k":1}`, fmt.Sprintf(`{"k":%q}`, strings.Repeat("v", 257))}},
		{"ECS_AVAILABLE_LOGGING_DRIVERS",
			[]valid{
				{`["awslogs","json-file","none"]`, func(c *Config) { c.AvailableLoggingDrivers = []string{"awslogs", "json-file", "none"} }},
				{`[]`, func(c *Config) { c.AvailableLoggingDrivers = []string{} }},
				{`["none","none"]`, func(c *Config) { c.AvailableLoggingDrivers = []string{"none"} }},
			},
			[]string{`json-file`, `["json-file","loki"]`, `[1]`, `null`}},
		{"ECS_ENABLE_TASK_IAM_ROLE",
			[]valid{
				{"true", func(c *Config) { c.TaskIAMRoleEnabled = true }},
				{"1", func(c *Config) { c.TaskIAMRoleEnabled = true }},
				{"TRUE", func(c *Config) { c.TaskIAMRoleEnabled = true }},
				{"false", func(c *Config) {}},
			},
			[]string{"yes", "on", "enabled"}},
		{"ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST",
			[]valid{{"t", func(c *Config) { c.TaskIAMRoleEnabledForNetworkHost = true }}},
			[]string{"y"}},
		{"ECS_DISABLE_PRIVILEGED",
			[]valid{{"True", func(c *Config) { c.PrivilegedDisabled = true }}, {"0", func(c *Config) {}}},
			[]string{"no"}},
		{"ECS_TASK_PIDS_LIMIT",
			[]valid{
				{"100", func(c *Config) { c.TaskPidsLimit = 100 }},
				{"1", func(c *Config) { c.TaskPidsLimit = 1 }},
				{"4194304", func(c *Config) { c.TaskPidsLimit = 4194304 }},
			},
			[]string{"0", "-1", "4194305", "max", "1e3"}},
		{"ECS_DATADIR",
			[]valid{{"/data/", func(c *Config) { c.DataDir = "/data/" }}},
			[]string{"data", "./data"}},
		{"ECS_LOGLEVEL",
			[]valid{
				{"debug", func(c *Config) { c.LogLevel = LogDebug }},
				{"crit", func(c *Config) { c.LogLevel = LogCrit }},
				{"WARN", func(c *Config) { c.LogLevel = LogWarn }},
				{"error", func(c *Config) { c.LogLevel = LogError }},
			},
			[]string{"trace", "warning", "verbose"}},
		{"ECS_ENGINE_AUTH_TYPE",
			[]valid{{"docker", func(c *Config) {
				c.EngineAuthType = AuthDocker
				c.Warnings = []string{"ECS_ENGINE_AUTH_TYPE is set but ECS_ENGINE_AUTH_DATA is not: no registry credentials are configured"}
			}}},
			[]string{"Docker", "basic"}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.key] = true
		for _, v := range tt.valid {
			for _, via := range []string{"file", "env"} {
				t.Run(tt.key+"/"+via+"/"+truncate(v.value, 20), func(t *testing.T) {
					path, env := writeFile(t, ""), []string{tt.key + "=" + v.value}
					if via == "file" {
						path, env = writeFile(t, tt.key+"="+v.value+"\n"), nil
					}
					got, err := Load(path, env)
					if err != nil {
						t.Fatal(err)
					}
					want := Default()
					v.want(&want)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
				})
			}
		}
		for _, bad := range tt.bad {
			t.Run(tt.key+"/bad/"+truncate(bad, 20), func(t *testing.T) {
				_, err := Load(writeFile(t, ""), []string{tt.key + "=" + bad})
				if err == nil {
					t.Fatal("no error")
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not ErrInvalidArgument", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.key+"=") || !strings.Contains(msg, fmt.Sprintf("%q", truncate(bad, 80))) {
					t.Errorf("error %q names neither the key nor the value", msg)
				}
				if !strings.Contains(msg, "environment") {
					t.Errorf("error %q does not say where the value came from", msg)
				}
			})
		}
	}
	for _, name := range Supported() {
		if !seen[name] && name != "ECS_ENGINE_AUTH_DATA" {
			t.Errorf("no table entry for supported variable %s", name)
		}
	}
}

func tenAttrs(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"k%d":"v"`, i))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestEngineAuth(t *testing.T) {
	tests := []struct {
		name, typ, data string
		want            map[string]RegistryAuth
	}{
		{"docker", "docker",
			`{"my.registry.example.com":{"username":"u","password":"p"},"https://index.docker.io/v1/user":{"username":"hub","password":"pw","email":"e@x"}}`,
			map[string]RegistryAuth{"my.registry.example.com": {"u", "p", ""}, "docker.io": {"hub", "pw", "e@x"}}},
		{"docker with serveraddress", "docker",
			`{"r.example.com:5000":{"username":"u","password":"p","serveraddress":"r.example.com:5000"}}`,
			map[string]RegistryAuth{"r.example.com:5000": {"u", "p", ""}}},
		{"dockercfg", "dockercfg",
			`{"http://myregistry.com/v1/":{"auth":"` + dockercfgAuth("user", "sword:fish") + `","email":"email"}}`,
			map[string]RegistryAuth{"myregistry.com": {"user", "sword:fish", "email"}}},
		{"empty object", "docker", `{}`, map[string]RegistryAuth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Data in the file (with '=' from base64 in it), type in the environment.
			got, err := Load(writeFile(t, "ECS_ENGINE_AUTH_DATA="+tt.data+"\n"), []string{"ECS_ENGINE_AUTH_TYPE=" + tt.typ})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.EngineAuth); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	cfg, err := Load(writeFile(t, `ECS_ENGINE_AUTH_TYPE=docker
ECS_ENGINE_AUTH_DATA={"https://registry-1.docker.io/":{"username":"u","password":"p"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := cfg.RegistryAuth("index.docker.io"); !ok || a.Username != "u" {
		t.Errorf("RegistryAuth(index.docker.io) = %v, %v", a, ok)
	}
	if _, ok := cfg.RegistryAuth("other.example.com"); ok {
		t.Error("credentials for an unconfigured registry")
	}
}

func TestEngineAuthErrorsHideSecrets(t *testing.T) {
	const secret = "hunter2"
	tests := []struct{ name, typ, data string }{
		{"no type", "", `{"r":{"username":"u","password":"hunter2"}}`},
		{"not JSON", "docker", `hunter2`},
		{"unknown field", "docker", `{"r":{"user":"u","password":"hunter2"}}`},
		{"no username", "docker", `{"r":{"password":"hunter2"}}`},
		{"number password", "docker", `{"r":{"username":"u","password":2}} hunter2`},
		{"twice", "docker", `{"docker.io":{"username":"u","password":"hunter2"},"index.docker.io":{"username":"u","password":"hunter2"}}`},
		{"empty registry", "docker", `{"":{"username":"u","password":"hunter2"}}`},
		{"dockercfg not base64", "dockercfg", `{"r":{"auth":"hunter2!"}}`},
		{"dockercfg no colon", "dockercfg", `{"r":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(secret)) + `"}}`},
		{"dockercfg username field", "dockercfg", `{"r":{"username":"u","password":"hunter2"}}`},
		{"null", "docker", `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := []string{"ECS_ENGINE_AUTH_DATA=" + tt.data}
			if tt.typ != "" {
				env = append(env, "ECS_ENGINE_AUTH_TYPE="+tt.typ)
			}
			_, err := Load(writeFile(t, ""), env)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "ECS_ENGINE_AUTH_DATA") {
				t.Errorf("error %q does not name the variable", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q leaks the secret", err)
			}
		})
	}
}

func TestRegistryAuthDoesNotPrintPassword(t *testing.T) {
	cfg := Default()
	cfg.EngineAuth["r"] = RegistryAuth{Username: "u", Password: "hunter2"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, cfg); strings.Contains(s, "hunter2") {
			t.Errorf("%s of Config prints the password: %s", f, s)
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "ECS_CLUSTER=from-file\nECS_LOGLEVEL=debug\nECS_RESERVED_MEMORY=64\n")
	tests := []struct {
		name string
		env  []string
		want func(c *Config)
	}{
		{"file alone", nil, func(c *Config) {}},
		{"environment wins", []string{"ECS_CLUSTER=from-env"}, func(c *Config) { c.Cluster = "from-env" }},
		{"empty environment value is unset", []string{"ECS_CLUSTER="}, func(c *Config) {}},
		{"blank environment value is unset", []string{"ECS_CLUSTER=  "}, func(c *Config) {}},
		{"first duplicate environment entry wins", []string{"ECS_CLUSTER=first", "ECS_CLUSTER=second"}, func(c *Config) { c.Cluster = "first" }},
		{"environment value is trimmed", []string{"ECS_CLUSTER= padded "}, func(c *Config) { c.Cluster = "padded" }},
		{"other environment is ignored", []string{"PATH=/bin", "HOME=/root", "DOCKER_HOST=x", "NOEQUALS", "CLUSTER=x"}, func(c *Config) {}},
		{"region from environment", []string{"AWS_DEFAULT_REGION=eu-west-1"}, func(c *Config) { c.Region = "eu-west-1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(file, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			want.Cluster, want.LogLevel, want.ReservedMemoryMiB = "from-file", LogDebug, 64
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileFormatThroughLoad(t *testing.T) {
	content := "# berth agent\r\n\r\n  ECS_CLUSTER = first \r\n; comment\r\nECS_RESERVED_PORTS=[22]\r\nECS_CLUSTER=second\r\n"
	got, err := Load(writeFile(t, content), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cluster != "second" {
		t.Errorf("duplicate key: cluster = %q, want the last one", got.Cluster)
	}
	if !slices.Equal(got.ReservedPorts, []uint16{22}) {
		t.Errorf("reserved ports = %v", got.ReservedPorts)
	}
	// A later empty assignment in the file unsets the variable (last wins).
	got, err = Load(writeFile(t, "ECS_CLUSTER=a\nECS_CLUSTER=\n"), nil)
	if err != nil || got.Cluster != DefaultCluster {
		t.Errorf("cluster = %q, %v; want the default", got.Cluster, err)
	}
	// A syntax error names the file and the line.
	p := writeFile(t, "ECS_CLUSTER=a\nECS_CLUSTER\n")
	_, err = Load(p, nil)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("syntax error = %v", err)
	}
}

func TestUnknownAndIgnored(t *testing.T) {
	t.Run("known but not implemented", func(t *testing.T) {
		got, err := Load(writeFile(t, "ECS_UPDATES_ENABLED=true\nHTTP_PROXY=proxy:3128\nECS_IMAGE_CLEANUP_INTERVAL=not-checked\nECS_LOGFILE=\n"),
			[]string{"ECS_ENABLE_TASK_ENI=true", "ECS_UPDATES_ENABLED=true", "ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/x"})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"ECS_CONTAINER_METADATA_URI_V4", "ECS_ENABLE_TASK_ENI", "ECS_IMAGE_CLEANUP_INTERVAL", "ECS_UPDATES_ENABLED", "HTTP_PROXY"}
		if diff := cmp.Diff(want, got.Ignored); diff != "" {
			t.Errorf("Ignored (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name, file string
		env        []string
		mention    []string
	}{
		{"typo in file", "ECS_CLUSTR=prod\n", nil, []string{"ECS_CLUSTR", ":1", "did you mean ECS_CLUSTER?"}},
		{"typo in environment", "", []string{"ECS_RESERVED_PORT=[22]"}, []string{"ECS_RESERVED_PORT", "environment", "did you mean ECS_RESERVED_PORTS?"}},
		{"prefix missing", "CLUSTER=prod\n", nil, []string{"CLUSTER", "did you mean ECS_CLUSTER?"}},
		{"unknown even when empty", "", []string{"ECS_NONSENSE_SETTING="}, []string{"ECS_NONSENSE_SETTING"}},
		{"far from anything", "FOO=bar\n", nil, []string{"FOO", "is not a known ECS agent variable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.file), tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("kind: %v", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	_, err := Load(writeFile(t, "FOO=bar\n"), nil)
	if err != nil && strings.Contains(err.Error(), "did you mean") {
		t.Errorf("far-fetched suggestion: %v", err)
	}
}

func TestAllProblemsReported(t *testing.T) {
	_, err := Load(writeFile(t, "ECS_CLUSTER=a b\nECS_RESERVED_MEMORY=lots\nECS_BOGUS=1\n"), []string{"ECS_LOGLEVEL=loud"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, k := range []string{"ECS_CLUSTER", "ECS_RESERVED_MEMORY", "ECS_BOGUS", "ECS_LOGLEVEL"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not report %s:\n%v", k, err)
		}
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.config"), nil); err == nil || !strings.Contains(err.Error(), "missing.config") {
		t.Errorf("an explicitly named missing file: %v", err)
	}
	if _, err := Load(dir, nil); err == nil {
		t.Error("a directory is not a config file")
	}
	big := writeFile(t, strings.Repeat("# padding\n", MaxFileSize/10+1))
	if _, err := Load(big, nil); err == nil {
		t.Error("an oversized file was accepted")
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"ECS_CLUSTERS":             "ECS_CLUSTER",
		"ECS_LOG_LEVEL":            "ECS_LOGLEVEL",
		"ECS_DATA_DIR":             "ECS_DATADIR",
		"ECS_IMAGE_PULL_BEHAVIOUR": "ECS_IMAGE_PULL_BEHAVIOR",
		"RESERVED_MEMORY":          "ECS_RESERVED_MEMORY",
		"XYZ":                      "",
	} {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDocumented keeps docs/agent-config.md in step with the tables here.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "agent-config.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(Supported(), Accepted()...) {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/agent-config.md does not mention `%s`", name)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("ECS_CLUSTER=prod\nECS_RESERVED_PORTS=[22,80]\n"), "ECS_INSTANCE_ATTRIBUTES", `{"a":"b"}`)
	f.Add([]byte("ECS_ENGINE_AUTH_TYPE=dockercfg\n"), "ECS_ENGINE_AUTH_DATA", `{"r":{"auth":"dTpw"}}`)
	f.Add([]byte(""), "ECS_DYNAMIC_HOST_PORT_RANGE", "100-200")
	f.Add([]byte("ECS_CONTAINER_STOP_TIMEOUT=1s\r\n"), "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", "1ns")
	f.Add([]byte("# x\nECS_LOGLEVEL=debug"), "ECS_TASK_PIDS_LIMIT", "100")
	f.Add([]byte("ECS_CLUSTR=x"), "AWS_DEFAULT_REGION", "us-east-1")
	f.Add([]byte("ECS_AVAILABLE_LOGGING_DRIVERS=[\"none\"]"), "ECS_CONTAINER_INSTANCE_TAGS", `{"k":"v"}`)
	f.Fuzz(func(t *testing.T, file []byte, key, value string) {
		cfg, err := build(file, "fuzz.config", []string{key + "=" + value})
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// Whatever was accepted satisfies the documented invariants.
		switch {
		case cfg.ReservedPorts == nil || cfg.ReservedPortsUDP == nil || cfg.EngineAuth == nil ||
			cfg.InstanceAttributes == nil || cfg.ContainerInstanceTags == nil || cfg.AvailableLoggingDrivers == nil:
			t.Fatalf("nil collection in %+v", cfg)
		case cfg.ContainerStopTimeout < MinContainerStopTimeout, cfg.ContainerStartTimeout < MinContainerStartTimeout,
			cfg.TaskCleanupWaitDuration < MinTaskCleanupWaitDuration:
			t.Fatalf("duration below its minimum in %+v", cfg)
		case validCluster(cfg.Cluster) != nil:
			t.Fatalf("invalid cluster %q accepted", cfg.Cluster)
		case len(cfg.InstanceAttributes) > MaxInstanceAttributes:
			t.Fatalf("too many attributes accepted")
		case slices.Contains(cfg.ReservedPorts, 0) || slices.Contains(cfg.ReservedPortsUDP, 0):
			t.Fatalf("port 0 reserved")
		case !cfg.DynamicHostPortRange.IsZero() && (cfg.DynamicHostPortRange.First == 0 || cfg.DynamicHostPortRange.First > cfg.DynamicHostPortRange.Last):
			t.Fatalf("bad range %v", cfg.DynamicHostPortRange)
		case cfg.TaskPidsLimit < 0 || cfg.TaskPidsLimit > MaxTaskPidsLimit:
			t.Fatalf("pids limit %d", cfg.TaskPidsLimit)
		}
	})
}
