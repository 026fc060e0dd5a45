package ecs

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	tdExecRole = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
	tdTaskRole = "arn:aws:iam::123456789012:role/app"
)

// ec2Def is a minimal valid EC2 definition in the default (bridge) mode.
func ec2Def() *types.TaskDefinition {
	return &types.TaskDefinition{
		Family: new("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         new("app"),
			Image:        new("nginx:1.27"),
			Memory:       new(int32(256)),
			PortMappings: []types.PortMapping{{ContainerPort: new(int32(80))}},
		}},
	}
}

// fargateDef is the usual Fargate nginx definition (the console's sample).
func fargateDef() *types.TaskDefinition {
	return &types.TaskDefinition{
		Family:                  new("nginx"),
		NetworkMode:             types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     new("256"),
		Memory:                  new("512"),
		ExecutionRoleArn:        new(tdExecRole),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         new("nginx"),
			Image:        new("public.ecr.aws/nginx/nginx:latest"),
			PortMappings: []types.PortMapping{{ContainerPort: new(int32(80))}},
			LogConfiguration: &types.LogConfiguration{
				LogDriver: types.LogDriverAwslogs,
				Options: map[string]string{
					"awslogs-group":         "/ecs/nginx",
					"awslogs-region":        "us-east-1",
					"awslogs-stream-prefix": "ecs",
				},
			},
		}},
	}
}

func tdAttrNames(attrs []types.Attribute) []string {
	out := []string{}
	for _, a := range attrs {
		out = append(out, tdValue(a.Name))
	}
	return out
}

func tdJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTaskDefPrepareFargateNginx(t *testing.T) {
	td := fargateDef()
	td.Cpu = new(".25 vCPU")
	td.Memory = new("0.5 GB")
	if err := PrepareTaskDefinition(td, PrepareOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := tdValue(td.Cpu)+"/"+tdValue(td.Memory), "256/512"; got != want {
		t.Errorf("cpu/memory = %s, want %s", got, want)
	}
	if diff := cmp.Diff([]types.Compatibility{"EC2", "FARGATE", "MANAGED_INSTANCES"}, td.Compatibilities); diff != "" {
		t.Errorf("compatibilities (-want +got):\n%s", diff)
	}
	wantAttrs := []string{
		"com.amazonaws.ecs.capability.logging-driver.awslogs",
		"ecs.capability.execution-role-awslogs",
		"com.amazonaws.ecs.capability.docker-remote-api.1.19",
		"com.amazonaws.ecs.capability.docker-remote-api.1.18",
		"ecs.capability.task-eni",
	}
	if diff := cmp.Diff(wantAttrs, tdAttrNames(td.RequiresAttributes)); diff != "" {
		t.Errorf("requiresAttributes (-want +got):\n%s", diff)
	}
	if td.Status != types.TaskDefinitionStatusActive {
		t.Errorf("status = %q", td.Status)
	}
	if td.NetworkMode != types.NetworkModeAwsvpc || td.EnableFaultInjection == nil || *td.EnableFaultInjection {
		t.Errorf("networkMode %q, enableFaultInjection %v", td.NetworkMode, td.EnableFaultInjection)
	}
	if td.Revision != 0 || td.TaskDefinitionArn != nil || td.RegisteredAt != nil {
		t.Error("PrepareTaskDefinition set a field the caller owns")
	}
	// The container as ECS echoes it.
	c := td.ContainerDefinitions[0]
	wantC := `{"Command":null,"Cpu":0,"CredentialSpecs":null,"DependsOn":null,"DisableNetworking":null,"DnsSearchDomains":null,"DnsServers":null,"DockerLabels":null,"DockerSecurityOptions":null,"EntryPoint":null,` +
		`"Environment":[],"EnvironmentFiles":null,"Essential":true,"ExtraHosts":null,"FirelensConfiguration":null,"HealthCheck":null,"Hostname":null,"Image":"public.ecr.aws/nginx/nginx:latest","Interactive":null,"Links":null,"LinuxParameters":null,` +
		`"LogConfiguration":{"LogDriver":"awslogs","Options":{"awslogs-group":"/ecs/nginx","awslogs-region":"us-east-1","awslogs-stream-prefix":"ecs"},"SecretOptions":null},"Memory":null,"MemoryReservation":null,"MountPoints":[],"Name":"nginx",` +
		`"PortMappings":[{"AppProtocol":"","ContainerPort":80,"ContainerPortRange":null,"HostPort":80,"Name":null,"Protocol":"tcp"}],"Privileged":null,"PseudoTerminal":null,"ReadonlyRootFilesystem":null,"RepositoryCredentials":null,"ResourceRequirements":null,"RestartPolicy":null,` +
		`"Secrets":null,"StartTimeout":null,"StopTimeout":null,"SystemControls":[],"Ulimits":null,"User":null,"VersionConsistency":"","VolumesFrom":[],"WorkingDirectory":null}`
	if got := tdJSON(t, c); got != wantC {
		t.Errorf("container =\n%s\nwant\n%s", got, wantC)
	}
	if td.Volumes == nil || td.PlacementConstraints == nil {
		t.Error("volumes and placementConstraints must be echoed as empty lists")
	}
}

func TestTaskDefPrepareEC2Bridge(t *testing.T) {
	td := ec2Def()
	td.TaskRoleArn = new(tdTaskRole)
	td.ExecutionRoleArn = new(tdExecRole)
	td.ContainerDefinitions[0].Image = new("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1")
	td.ContainerDefinitions[0].HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}}
	td.ContainerDefinitions[0].Secrets = []types.Secret{{Name: new("DB"), ValueFrom: new("arn:aws:ssm:eu-west-1:123456789012:parameter/db")}}
	if err := PrepareTaskDefinition(td, PrepareOptions{}); err != nil {
		t.Fatal(err)
	}
	if td.NetworkMode != "" {
		t.Errorf("networkMode = %q; ECS leaves it unset (bridge) when not given", td.NetworkMode)
	}
	if diff := cmp.Diff([]types.Compatibility{"EXTERNAL", "EC2"}, td.Compatibilities); diff != "" {
		t.Errorf("compatibilities (-want +got):\n%s", diff)
	}
	wantAttrs := []string{
		"com.amazonaws.ecs.capability.ecr-auth",
		"com.amazonaws.ecs.capability.task-iam-role",
		"ecs.capability.container-health-check",
		"ecs.capability.execution-role-ecr-pull",
		"ecs.capability.secrets.ssm.environment-variables",
	}
	if diff := cmp.Diff(wantAttrs, tdAttrNames(td.RequiresAttributes)); diff != "" {
		t.Errorf("requiresAttributes (-want +got):\n%s", diff)
	}
	pm := td.ContainerDefinitions[0].PortMappings[0]
	if tdValue(pm.HostPort) != 0 || pm.HostPort == nil || pm.Protocol != "tcp" {
		t.Errorf("bridge port mapping = %s, want hostPort 0 (dynamic) and tcp", tdJSON(t, pm))
	}
	hc := td.ContainerDefinitions[0].HealthCheck
	if tdValue(hc.Interval) != 30 || tdValue(hc.Timeout) != 5 || tdValue(hc.Retries) != 3 || hc.StartPeriod != nil {
		t.Errorf("health check defaults = %s", tdJSON(t, hc))
	}
	if td.Cpu != nil || td.Memory != nil {
		t.Error("task cpu/memory appeared from nowhere")
	}
}

// TestTaskDefPrepareIsIdempotent: what PrepareTaskDefinition produced is itself a
// valid request that comes out the same (a re-registered describe output).
func TestTaskDefPrepareIsIdempotent(t *testing.T) {
	for name, td := range map[string]*types.TaskDefinition{"fargate": fargateDef(), "ec2": ec2Def()} {
		if err := PrepareTaskDefinition(td, PrepareOptions{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		first := tdJSON(t, td)
		var again types.TaskDefinition
		if err := json.Unmarshal([]byte(first), &again); err != nil {
			t.Fatal(err)
		}
		if err := PrepareTaskDefinition(&again, PrepareOptions{}); err != nil {
			t.Fatalf("%s: second pass: %v", name, err)
		}
		if second := tdJSON(t, &again); second != first {
			t.Errorf("%s: second pass changed the definition:\n%s\n%s", name, first, second)
		}
	}
}

func TestTaskDefUnchangedOnError(t *testing.T) {
	td := fargateDef()
	td.Cpu = new("1 vCPU")
	td.ContainerDefinitions[0].Image = nil
	before := tdJSON(t, td)
	if err := PrepareTaskDefinition(td, PrepareOptions{}); err == nil {
		t.Fatal("want an error")
	}
	if after := tdJSON(t, td); after != before {
		t.Errorf("definition changed on error:\n%s\n%s", before, after)
	}
	if err := PrepareTaskDefinition(nil, PrepareOptions{}); !errors.Is(err, ErrClient) {
		t.Errorf("nil definition: %v", err)
	}
}

func TestTaskDefSizeParsing(t *testing.T) {
	for _, tc := range []struct {
		in   string
		cpu  int // 0: invalid
		mem  int // 0: invalid
		note string
	}{
		{in: "1024", cpu: 1024, mem: 1024},
		{in: "1 vCPU", cpu: 1024},
		{in: "1vcpu", cpu: 1024},
		{in: "0.25 vCPU", cpu: 256},
		{in: ".5 vCPU", cpu: 512},
		{in: "0.125 vCPU", cpu: 128},
		{in: "192 vCPU", cpu: 196608},
		{in: "193 vCPU"},
		{in: "0.1 vCPU", note: "102.4 units is not whole"},
		{in: "127", mem: 127},
		{in: "128", cpu: 128, mem: 128},
		{in: "196609", mem: 196609},
		{in: "1 GB", mem: 1024},
		{in: "1GB", mem: 1024},
		{in: "0.5 GB", mem: 512},
		{in: "2 GiB", mem: 2048},
		{in: "512 MiB", mem: 512},
		{in: "1.1 GB", note: "1126.4 MiB"},
		{in: "0"},
		{in: ""},
		{in: "-512"},
		{in: "1e3"},
		{in: "abc"},
		{in: "1 TB"},
		{in: "2 vCPU", cpu: 2048},
		{in: "3000000000", note: "does not fit int32"},
		{in: "1024 GB", mem: 1048576},
	} {
		cpu, cok := parseTaskCPU(tc.in)
		if cok != (tc.cpu != 0) || cpu != tc.cpu {
			t.Errorf("parseTaskCPU(%q) = %d, %v; want %d (%s)", tc.in, cpu, cok, tc.cpu, tc.note)
		}
		mem, mok := parseTaskMemory(tc.in)
		if mok != (tc.mem != 0) || mem != tc.mem {
			t.Errorf("parseTaskMemory(%q) = %d, %v; want %d (%s)", tc.in, mem, mok, tc.mem, tc.note)
		}
	}
}

func TestTaskDefComputedCompatibilities(t *testing.T) {
	awsvpc := func(cpu, mem string) func(*types.TaskDefinition) {
		return func(td *types.TaskDefinition) {
			td.NetworkMode = types.NetworkModeAwsvpc
			td.Cpu, td.Memory = new(cpu), new(mem)
			td.ContainerDefinitions[0].PortMappings = nil
		}
	}
	for _, tc := range []struct {
		name string
		mod  func(*types.TaskDefinition)
		want []types.Compatibility
	}{
		{"bridge by default", func(*types.TaskDefinition) {}, []types.Compatibility{"EXTERNAL", "EC2"}},
		{"explicit bridge", func(td *types.TaskDefinition) { td.NetworkMode = "bridge" }, []types.Compatibility{"EXTERNAL", "EC2"}},
		{"host", func(td *types.TaskDefinition) { td.NetworkMode = "host" }, []types.Compatibility{"EXTERNAL", "EC2", "MANAGED_INSTANCES"}},
		{"none", func(td *types.TaskDefinition) {
			td.NetworkMode = "none"
			td.ContainerDefinitions[0].PortMappings = nil
		}, []types.Compatibility{"EXTERNAL", "EC2", "MANAGED_INSTANCES"}},
		{"awsvpc without task size", func(td *types.TaskDefinition) { td.NetworkMode = "awsvpc" }, []types.Compatibility{"EC2", "MANAGED_INSTANCES"}},
		{"awsvpc with a Fargate size, FARGATE not required", awsvpc("256", "512"), []types.Compatibility{"EC2", "FARGATE", "MANAGED_INSTANCES"}},
		{"awsvpc with a non-Fargate size", awsvpc("512", "717"), []types.Compatibility{"EC2", "MANAGED_INSTANCES"}},
		{"awsvpc Fargate size but privileged", func(td *types.TaskDefinition) {
			awsvpc("256", "512")(td)
			td.ContainerDefinitions[0].Privileged = new(true)
		}, []types.Compatibility{"EC2", "MANAGED_INSTANCES"}},
		{"Windows awsvpc", func(td *types.TaskDefinition) {
			awsvpc("1024", "2048")(td)
			td.RuntimePlatform = &types.RuntimePlatform{OperatingSystemFamily: types.OSFamilyWindowsServer2022Core}
		}, []types.Compatibility{"EC2", "FARGATE"}},
		{"bridge with an EFS volume", func(td *types.TaskDefinition) {
			td.Volumes = []types.Volume{{Name: new("d"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{FileSystemId: new("fs-1")}}}
		}, []types.Compatibility{"EC2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td := ec2Def()
			tc.mod(td)
			if err := PrepareTaskDefinition(td, PrepareOptions{}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, td.Compatibilities); diff != "" {
				t.Errorf("compatibilities (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTaskDefRequiresAttributes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts PrepareOptions
		mod  func(*types.TaskDefinition)
		want []string
	}{
		{"nothing special", PrepareOptions{}, func(*types.TaskDefinition) {}, []string{}},
		{"berth registry counts as ECR", PrepareOptions{RegistryHosts: []string{"127.0.0.1:7400"}}, func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].Image = new("127.0.0.1:7400/web:1")
			td.ExecutionRoleArn = new(tdExecRole)
		}, []string{"com.amazonaws.ecs.capability.ecr-auth", "ecs.capability.execution-role-ecr-pull"}},
		{"docker hub is not ECR", PrepareOptions{RegistryHosts: []string{"127.0.0.1:7400"}}, func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].Image = new("docker.io/library/nginx")
		}, []string{}},
		{"task role in host mode", PrepareOptions{}, func(td *types.TaskDefinition) {
			td.NetworkMode = "host"
			td.TaskRoleArn = new(tdTaskRole)
		}, []string{"com.amazonaws.ecs.capability.task-iam-role", "com.amazonaws.ecs.capability.task-iam-role-network-host"}},
		{"json-file without options, ulimits", PrepareOptions{}, func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &types.LogConfiguration{LogDriver: "json-file"}
			td.ContainerDefinitions[0].Ulimits = []types.Ulimit{{Name: "nofile", SoftLimit: 1024, HardLimit: 4096}}
		}, []string{"com.amazonaws.ecs.capability.logging-driver.json-file", "com.amazonaws.ecs.capability.docker-remote-api.1.18"}},
		{"ordering, secrets manager, privileged, init", PrepareOptions{}, func(td *types.TaskDefinition) {
			c := &td.ContainerDefinitions[0]
			c.StopTimeout = new(int32(30))
			c.Secrets = []types.Secret{{Name: new("K"), ValueFrom: new("arn:aws:secretsmanager:us-east-1:123456789012:secret:k")}}
			c.Privileged = new(true)
			c.LinuxParameters = &types.LinuxParameters{InitProcessEnabled: new(true)}
		}, []string{"ecs.capability.container-ordering", "ecs.capability.secrets.asm.environment-variables",
			"com.amazonaws.ecs.capability.privileged-container", "com.amazonaws.ecs.capability.docker-remote-api.1.25"}},
		{"runtime platform, pid mode, EFS", PrepareOptions{}, func(td *types.TaskDefinition) {
			td.RuntimePlatform = &types.RuntimePlatform{CpuArchitecture: "ARM64", OperatingSystemFamily: "LINUX"}
			td.PidMode = "task"
			td.Volumes = []types.Volume{{Name: new("d"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{FileSystemId: new("fs-1")}}}
		}, []string{"com.amazonaws.ecs.capability.docker-remote-api.1.29", "ecs.capability.efsAuth", "ecs.capability.efs",
			"com.amazonaws.ecs.capability.docker-remote-api.1.25", "ecs.capability.pid-ipc-namespace-sharing"}},
		{"firelens", PrepareOptions{}, func(td *types.TaskDefinition) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, types.ContainerDefinition{
				Name: new("router"), Image: new("fluent-bit"), Memory: new(int32(64)), Essential: new(false),
				FirelensConfiguration: &types.FirelensConfiguration{Type: "fluentbit", Options: map[string]string{"config-file-type": "file"}},
			})
			td.ContainerDefinitions[0].LogConfiguration = &types.LogConfiguration{LogDriver: "awsfirelens"}
		}, []string{"com.amazonaws.ecs.capability.logging-driver.awsfirelens", "com.amazonaws.ecs.capability.docker-remote-api.1.18",
			"ecs.capability.firelens.fluentbit", "ecs.capability.firelens.options.config.file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td := ec2Def()
			tc.mod(td)
			if err := PrepareTaskDefinition(td, tc.opts); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, tdAttrNames(td.RequiresAttributes)); diff != "" {
				t.Errorf("requiresAttributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTaskDefParseRef(t *testing.T) {
	const unable = "Unable to describe task definition."
	for _, tc := range []struct {
		ref      string
		family   string
		revision int32
		isARN    bool
		msg      string // error message; "" = no error
		client   bool   // ClientException (else InvalidParameterException)
	}{
		{ref: "web", family: "web"},
		{ref: "web:3", family: "web", revision: 3},
		{ref: "my_app-2:2147483647", family: "my_app-2", revision: 2147483647},
		{ref: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3", family: "web", revision: 3, isARN: true},
		{ref: "arn:aws:ecs:us-east-1:123456789012:task-definition/web", family: "web", isARN: true},
		{ref: "web:foo", msg: "Invalid revision number. Number: foo"},
		{ref: "web:", msg: "Invalid revision number. Number: "},
		{ref: "web:0", msg: "Invalid revision number. Number: 0"},
		{ref: "web:-1", msg: "Invalid revision number. Number: -1"},
		{ref: "web:+1", msg: "Invalid revision number. Number: +1"},
		{ref: "web:2147483648", msg: "Invalid revision number. Number: 2147483648"},
		{ref: "web:1:2", msg: "Invalid revision number. Number: 1:2"},
		{ref: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:x", isARN: true, msg: "Invalid revision number. Number: x"},
		{ref: "", msg: unable, client: true},
		{ref: "a/b", msg: unable, client: true},
		{ref: "web.1", msg: unable, client: true},
		{ref: "arn:aws:ecs:us-east-1:123456789012:cluster/web", isARN: true, msg: unable, client: true},
		{ref: "arn:aws:iam::123456789012:role/web", isARN: true, msg: unable, client: true},
		{ref: "arn:nonsense", isARN: true, msg: unable, client: true},
		{ref: "arn:aws:ecs:us-east-1:123456789012:task-definition/", isARN: true, msg: unable, client: true},
	} {
		family, rev, isARN, err := ParseTaskDefinitionRef(tc.ref)
		if isARN != tc.isARN {
			t.Errorf("%q: isARN = %v, want %v", tc.ref, isARN, tc.isARN)
		}
		if tc.msg == "" {
			if err != nil || family != tc.family || rev != tc.revision {
				t.Errorf("%q = %q, %d, %v; want %q, %d", tc.ref, family, rev, err, tc.family, tc.revision)
			}
			continue
		}
		checkTaskDefError(t, tc.ref, err, tc.msg, tc.client)
	}
}

func TestTaskDefRefOfARN(t *testing.T) {
	family, rev, isARN, err := ParseTaskDefinitionRef("arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task-definition/web:7")
	if err != nil || family != "web" || rev != 7 || !isARN {
		t.Errorf("parse = %q, %d, %v, %v", family, rev, isARN, err)
	}
}

// checkTaskDefError checks the message and the exception an error maps to.
func checkTaskDefError(t *testing.T, what string, err error, msg string, client bool) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %q", what, msg)
		return
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("%s: error %v is not an invalid argument", what, err)
	}
	if got := errors.Is(err, ErrClient); got != client {
		t.Errorf("%s: ClientException = %v, want %v (%v)", what, got, client, err)
	}
	if got := errdefs.Message(err, ""); got != msg {
		t.Errorf("%s: message\n got %q\nwant %q", what, got, msg)
	}
}

// TestTaskDefRealSample registers the request behind a describe output
// captured from ECS in January 2026 (two containers, Fargate, ECR image,
// awslogs) and compares what berth computes with what ECS returned. ECS
// also listed docker-remote-api.1.21, which berth cannot tie to a field
// (docs/task-definitions.md). The sample's account id was shortened when
// it was published; a real one has 12 digits.
func TestTaskDefRealSample(t *testing.T) {
	const request = `{
	  "family": "agent", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
	  "cpu": "1024", "memory": "2048", "executionRoleArn": "arn:aws:iam::1234567890:role/ecsTaskExecutionRole",
	  "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
	  "containerDefinitions": [
	    {"name": "spring-ai-agent", "cpu": 0, "essential": true, "environmentFiles": [], "ulimits": [],
	     "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/spring-ai-agent@sha256:3b83c737a6bbd9f4867f0da73f15598ed63da86067b59288f7892c79e60e7347",
	     "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/agent", "awslogs-create-group": "true",
	       "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"}, "secretOptions": []},
	     "portMappings": [{"appProtocol": "http", "containerPort": 80, "hostPort": 80, "name": "spring-ai-agent-80-tcp", "protocol": "tcp"}]},
	    {"name": "redis", "cpu": 0, "essential": false, "image": "redis:latest", "memoryReservation": 1024, "environmentFiles": [],
	     "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/agent", "awslogs-create-group": "true",
	       "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"}, "secretOptions": []},
	     "portMappings": [{"containerPort": 6379, "hostPort": 6379, "name": "redis-6379-tcp", "protocol": "tcp"}]}
	  ]}`
	var td types.TaskDefinition
	if err := json.Unmarshal([]byte(request), &td); err != nil {
		t.Fatal(err)
	}
	if err := PrepareTaskDefinition(&td, PrepareOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]types.Compatibility{"EC2", "FARGATE", "MANAGED_INSTANCES"}, td.Compatibilities); diff != "" {
		t.Errorf("compatibilities (-ECS +berth):\n%s", diff)
	}
	ecs := []string{
		"com.amazonaws.ecs.capability.logging-driver.awslogs",
		"ecs.capability.execution-role-awslogs",
		"com.amazonaws.ecs.capability.ecr-auth",
		"com.amazonaws.ecs.capability.docker-remote-api.1.19",
		"ecs.capability.execution-role-ecr-pull",
		"com.amazonaws.ecs.capability.docker-remote-api.1.18",
		"ecs.capability.task-eni",
		"com.amazonaws.ecs.capability.docker-remote-api.1.29",
	}
	if diff := cmp.Diff(ecs, tdAttrNames(td.RequiresAttributes)); diff != "" {
		t.Errorf("requiresAttributes (-ECS +berth):\n%s", diff)
	}
	if tdValue(td.EnableFaultInjection) || td.EnableFaultInjection == nil {
		t.Error("enableFaultInjection: ECS echoes false")
	}
}
