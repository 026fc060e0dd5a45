package taskrunner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/agentproto"
)

func TestHealthOf(t *testing.T) {
	tests := []struct {
		cmd     []string
		argv    []string
		none    bool
		invalid bool
	}{
		{cmd: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}, argv: []string{"/bin/sh", "-c", "curl -f http://localhost/ || exit 1"}},
		{cmd: []string{"CMD", "/probe", "healthcheck", "/x"}, argv: []string{"/probe", "healthcheck", "/x"}},
		{cmd: []string{"/probe", "healthcheck"}, argv: []string{"/probe", "healthcheck"}},
		{cmd: []string{"NONE"}, none: true},
		{cmd: []string{"CMD"}, invalid: true},
		{cmd: nil, invalid: true},
	}
	for _, tt := range tests {
		h, f := healthOf("c", &types.HealthCheck{Command: tt.cmd})
		switch {
		case tt.invalid:
			if f == nil {
				t.Errorf("%q: accepted", tt.cmd)
			}
		case tt.none:
			if h != nil || f != nil {
				t.Errorf("%q: %+v %v", tt.cmd, h, f)
			}
		case f != nil || !slices.Equal(h.argv, tt.argv):
			t.Errorf("%q: %+v %v, want argv %q", tt.cmd, h, f, tt.argv)
		case h.interval != defaultHealthInterval || h.timeout != defaultHealthTimeout || h.retries != defaultHealthRetries || h.startPeriod != 0:
			t.Errorf("%q: defaults %+v", tt.cmd, h)
		}
	}
}

func TestPlanFailures(t *testing.T) {
	e := &Engine{cfg: Config{DataDir: "/data"}}
	tests := []struct {
		name   string
		edit   func(*agentproto.Task)
		reason string
	}{
		{"awsvpc", func(t *agentproto.Task) { t.TaskDefinition.NetworkMode = types.NetworkModeAwsvpc }, "network mode awsvpc is not supported"},
		{"cycle", func(t *agentproto.Task) {
			cs := t.TaskDefinition.ContainerDefinitions
			cs[0] = dependsOn(cs[0], "b", types.ContainerConditionStart)
			cs[1] = dependsOn(cs[1], "a", types.ContainerConditionStart)
		}, "form a cycle"},
		{"unknown dependency", func(t *agentproto.Task) {
			t.TaskDefinition.ContainerDefinitions[0] = dependsOn(t.TaskDefinition.ContainerDefinitions[0], "zz", types.ContainerConditionStart)
		}, `unknown container "zz"`},
		{"healthy without health check", func(t *agentproto.Task) {
			t.TaskDefinition.ContainerDefinitions[0] = dependsOn(t.TaskDefinition.ContainerDefinitions[0], "b", types.ContainerConditionHealthy)
		}, "has no health check"},
		{"unknown volume", func(t *agentproto.Task) {
			t.TaskDefinition.ContainerDefinitions[0].MountPoints = []types.MountPoint{{SourceVolume: aws.String("v"), ContainerPath: aws.String("/v")}}
		}, `unknown volume "v"`},
		{"efs", func(t *agentproto.Task) {
			t.TaskDefinition.Volumes = []types.Volume{{Name: aws.String("v"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{}}}
		}, "only host, task-scoped and docker volumes"},
		{"secrets", func(t *agentproto.Task) {
			t.TaskDefinition.ContainerDefinitions[1].Secrets = []types.Secret{{Name: aws.String("S")}}
		}, "secrets and repositoryCredentials are not supported"},
		{"duplicate name", func(t *agentproto.Task) { t.TaskDefinition.ContainerDefinitions[1].Name = aws.String("a") }, "used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := newTask("t1", 1, "RUNNING", ctr("a", "sleep"), ctr("b", "sleep"))
			tt.edit(&task)
			_, f := e.plan(task)
			if f == nil || !strings.Contains(f.reason, tt.reason) {
				t.Errorf("failure %v, want one containing %q", f, tt.reason)
			}
		})
	}
}

func TestPlanOrderAndVolumes(t *testing.T) {
	e := &Engine{cfg: Config{DataDir: "/data"}}
	app := dependsOn(ctr("app", "sleep"), "db", types.ContainerConditionStart)
	app.VolumesFrom = []types.VolumeFrom{{SourceContainer: aws.String("db"), ReadOnly: aws.Bool(true)}}
	db := dependsOn(ctr("db", "sleep"), "init", types.ContainerConditionSuccess)
	db.MountPoints = []types.MountPoint{
		{SourceVolume: aws.String("data"), ContainerPath: aws.String("/data")},
		{SourceVolume: aws.String("host"), ContainerPath: aws.String("/host"), ReadOnly: aws.Bool(true)},
		{SourceVolume: aws.String("shared"), ContainerPath: aws.String("/shared")},
	}
	task := newTask("t1", 1, "RUNNING", app, db, ctr("init", "exit", "0"))
	task.TaskDefinition.Volumes = []types.Volume{
		{Name: aws.String("data")},
		{Name: aws.String("host"), Host: &types.HostVolumeProperties{SourcePath: aws.String("/srv/host")}},
		{Name: aws.String("shared"), DockerVolumeConfiguration: &types.DockerVolumeConfiguration{Scope: types.ScopeShared}},
	}
	p, f := e.plan(task)
	if f != nil {
		t.Fatal(f)
	}
	if !slices.Equal(p.order, []int{2, 1, 0}) {
		t.Errorf("start order %v, want init, db, app", p.order)
	}
	wantDB := []string{"/data/volumes/tasks/t1/data:/data:false", "/srv/host:/host:true", "/data/volumes/shared/shared:/shared:false"}
	wantApp := []string{"/data/volumes/tasks/t1/data:/data:true", "/srv/host:/host:true", "/data/volumes/shared/shared:/shared:true"}
	for i, want := range map[int][]string{1: wantDB, 0: wantApp} {
		var got []string
		for _, m := range p.containers[i].mounts {
			got = append(got, m.Source+":"+m.Destination+":"+map[bool]string{true: "true", false: "false"}[m.ReadOnly])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s mounts %v, want %v", p.containers[i].name, got, want)
		}
	}
}

func TestEnvironmentPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.env")
	if err := os.WriteFile(file, []byte("# comment\n\nFROM_FILE=1\nSHARED=file\nOVER=file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	def := ctr("c", "sleep")
	def.EnvironmentFiles = []types.EnvironmentFile{{Type: types.EnvironmentFileTypeS3, Value: aws.String(file)}}
	def.Environment = []types.KeyValuePair{{Name: aws.String("SHARED"), Value: aws.String("def")}, {Name: aws.String("OVER"), Value: aws.String("def")}}
	c := &ctrPlan{name: "c", def: def, override: &types.ContainerOverride{
		Environment: []types.KeyValuePair{{Name: aws.String("OVER"), Value: aws.String("override")}},
	}}
	env, f := environment(c)
	if f != nil {
		t.Fatal(f)
	}
	if want := []string{"FROM_FILE=1", "SHARED=def", "OVER=override"}; !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
}

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "A=1\nB==2\n  # c\nC=\n", want: []string{"A=1", "B==2", "C="}},
		{in: "A=1\nA=2", want: []string{"A=2"}},
		{in: "A=x y \"z\"", want: []string{`A=x y "z"`}},
		{in: "NOEQUALS\n", bad: true},
		{in: "=v\n", bad: true},
		{in: "A B=1\n", bad: true},
	}
	for _, tt := range tests {
		got, err := parseEnvFile([]byte(tt.in))
		if tt.bad != (err != nil) || !tt.bad && !slices.Equal(got, tt.want) {
			t.Errorf("parseEnvFile(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("n", 300)
	tests := []struct{ arn, id string }{
		{"arn:aws:ecs:us-east-1:1:task/default/0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
		{"arn:aws:ecs:us-east-1:1:task/default/../..", ""},
		{"weird", "weird"},
	}
	for _, tt := range tests {
		got := TaskID(tt.arn)
		if tt.id != "" && got != tt.id || !safeName(got) {
			t.Errorf("TaskID(%q) = %q", tt.arn, got)
		}
	}
	for _, name := range []string{"web", long, "a.b/c"} {
		id := runtimeID(taskARN("0123456789abcdef0123456789abcdef"), 3, name)
		if len(id) > 76 || !safeName(id) {
			t.Errorf("runtimeID for %q = %q", name, id)
		}
	}
	if a, b := runtimeID("t", 0, long), runtimeID("t", 1, long); a == b {
		t.Error("two containers share a runtime id")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	task := newTask("t1", 7, "RUNNING", withPorts(ctr("a", "sleep"), 80), ctr("b", "sleep"))
	rec, err := newRecord(task)
	if err != nil {
		t.Fatal(err)
	}
	code := 3
	rec.Containers[0].ExitCode = &code
	rec.Containers[0].Status = ctrStopped
	rec.Containers[0].Ports = []state.PortBinding{{ContainerPort: 80, HostPort: 40000, Protocol: "tcp", BindIP: "0.0.0.0"}}
	st, err := rec.toState()
	if err != nil {
		t.Fatal(err)
	}
	back, err := fromState(st)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(rec)
	b, _ := json.Marshal(back)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("round trip:\n%s\n%s", a, b)
	}
}

// FuzzFromState feeds stored task records (as the state database returns
// them) to the decoder: it must refuse or accept without panicking, and
// what it accepts must encode and decode to the same record.
func FuzzFromState(f *testing.F) {
	task := newTask("t1", 7, "RUNNING", withPorts(ctr("a", "sleep"), 80), ctr("b", "sleep"))
	rec, _ := newRecord(task)
	st, _ := rec.toState()
	seed, _ := json.Marshal(st)
	f.Add(seed)
	f.Add([]byte(`{"arn":"x","extra":{"v":1,"phase":"RUNNING","desired":{"taskArn":"x"},"containers":[]}}`))
	f.Add([]byte(`{"arn":"x","containers":[{"name":"a","runtimeId":"r"}],"extra":{"v":1,"phase":"STOPPED","desired":{"taskArn":"x","taskDefinition":{"ContainerDefinitions":[{}]}},"containers":[{"name":"a","endpointId":"0123456789abcdef0123456789abcdef"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st state.Task
		if json.Unmarshal(data, &st) != nil {
			return
		}
		rec, err := fromState(st)
		if err != nil {
			return
		}
		st2, err := rec.toState()
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		rec2, err := fromState(st2)
		if err != nil {
			t.Fatalf("re-encoded record refused: %v", err)
		}
		a, _ := json.Marshal(rec)
		b, _ := json.Marshal(rec2)
		if string(a) != string(b) {
			t.Fatalf("round trip changed the record:\n%s\n%s", a, b)
		}
	})
}

// FuzzParseEnvFile: environment files come from the host; whatever they
// hold, the parser returns KEY=VALUE entries that parse back the same.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\nB=2\n", "# c\n\nX=y=z\r\n", "=bad", "K=\x00", "0=\r\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvFile(data)
		if err != nil {
			return
		}
		for _, e := range env {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				t.Fatalf("entry %q", e)
			}
		}
		again, err := parseEnvFile([]byte(strings.Join(env, "\n")))
		if err != nil || !slices.Equal(env, again) {
			t.Fatalf("%q parses back as %q, %v", env, again, err)
		}
	})
}
