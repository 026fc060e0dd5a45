package ecs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

type taskDefRule struct {
	name    string
	fargate bool // start from fargateDef instead of ec2Def
	mod     func(td *types.TaskDefinition)
	msg     string // "" = the definition is valid
	invalid bool   // InvalidParameterException rather than ClientException
}

// firstContainer returns the definition's first container, for short mods.
func firstContainer(td *types.TaskDefinition) *types.ContainerDefinition {
	return &td.ContainerDefinitions[0]
}

// addContainer appends a valid EC2 container named name.
func addContainer(td *types.TaskDefinition, name string) *types.ContainerDefinition {
	td.ContainerDefinitions = append(td.ContainerDefinitions, types.ContainerDefinition{
		Name: new(name), Image: new("busybox"), Memory: new(int32(64)),
	})
	return &td.ContainerDefinitions[len(td.ContainerDefinitions)-1]
}

func TestTaskDefinitionRules(t *testing.T) {
	var rules []taskDefRule
	for _, group := range [][]taskDefRule{
		familyAndContainerRules, taskSizeRules, enumRules, memoryRules, portRules, linkAndEnvRules,
		volumeRules, dependencyRules, healthCheckRules, logAndMiscRules, taskLevelRules, fargateRules,
		otherLaunchTypeRules,
	} {
		rules = append(rules, group...)
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.name] {
			t.Fatalf("duplicate rule name %q", r.name)
		}
		seen[r.name] = true
		t.Run(r.name, func(t *testing.T) {
			td := ec2Def()
			if r.fargate {
				td = fargateDef()
			}
			r.mod(td)
			err := PrepareTaskDefinition(td, PrepareOptions{})
			if r.msg == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			checkTaskDefError(t, r.name, err, r.msg, !r.invalid)
		})
	}
}

var familyAndContainerRules = []taskDefRule{
	{name: "family missing", mod: func(td *types.TaskDefinition) { td.Family = nil }, msg: "Family can not be blank."},
	{name: "family empty", mod: func(td *types.TaskDefinition) { td.Family = new("") }, msg: "Family can not be blank."},
	{name: "family with a dot", mod: func(td *types.TaskDefinition) { td.Family = new("my.app") }, msg: "Family contains invalid characters."},
	{name: "family with a colon", mod: func(td *types.TaskDefinition) { td.Family = new("app:1") }, msg: "Family contains invalid characters."},
	{name: "family 256 chars", mod: func(td *types.TaskDefinition) { td.Family = new(strings.Repeat("a", 256)) }, msg: "Family contains invalid characters."},
	{name: "family 255 chars", mod: func(td *types.TaskDefinition) { td.Family = new(strings.Repeat("a", 255)) }},
	{name: "family with digits, _ and -", mod: func(td *types.TaskDefinition) { td.Family = new("My_App-2") }},
	{name: "no containers", mod: func(td *types.TaskDefinition) { td.ContainerDefinitions = nil }, msg: "Container list cannot be empty."},
	{name: "ten containers", mod: func(td *types.TaskDefinition) {
		for i := 1; i < 10; i++ {
			addContainer(td, fmt.Sprintf("c%d", i))
		}
	}},
	{name: "eleven containers", mod: func(td *types.TaskDefinition) {
		for i := 1; i < 11; i++ {
			addContainer(td, fmt.Sprintf("c%d", i))
		}
	}, msg: "Too many containers."},
	{name: "container name missing", mod: func(td *types.TaskDefinition) { firstContainer(td).Name = nil }, msg: "Container.name should not be null or empty."},
	{name: "container name with a space", mod: func(td *types.TaskDefinition) { firstContainer(td).Name = new("my app") },
		msg: "Container.name contains invalid characters."},
	{name: "container name 256 chars", mod: func(td *types.TaskDefinition) { firstContainer(td).Name = new(strings.Repeat("c", 256)) },
		msg: "Container.name contains invalid characters."},
	{name: "duplicate container name", mod: func(td *types.TaskDefinition) { addContainer(td, "app") },
		msg: "Container names must be unique. Duplicate container name: 'app'."},
	{name: "image missing", mod: func(td *types.TaskDefinition) { firstContainer(td).Image = nil }, msg: "Container.image should not be null or empty."},
	{name: "image blank", mod: func(td *types.TaskDefinition) { firstContainer(td).Image = new("  ") }, msg: "Container.image should not be null or empty."},
	{name: "no essential container", mod: func(td *types.TaskDefinition) {
		firstContainer(td).Essential = new(false)
		addContainer(td, "side").Essential = new(false)
	}, msg: "Task definition doesn't have any essential container."},
	{name: "essential defaults to true", mod: func(td *types.TaskDefinition) { addContainer(td, "side").Essential = new(false) }},
	{name: "negative container cpu", mod: func(td *types.TaskDefinition) { firstContainer(td).Cpu = -1 },
		msg: "Invalid 'cpu' setting for container 'app'. The value must not be negative."},
	{name: "negative stopTimeout", mod: func(td *types.TaskDefinition) { firstContainer(td).StopTimeout = new(int32(-1)) },
		msg: "Invalid 'stopTimeout' setting for container 'app'. The value must not be negative."},
	{name: "negative startTimeout", mod: func(td *types.TaskDefinition) { firstContainer(td).StartTimeout = new(int32(-1)) },
		msg: "Invalid 'startTimeout' setting for container 'app'. The value must not be negative."},
	{name: "stopTimeout 300 on EC2", mod: func(td *types.TaskDefinition) { firstContainer(td).StopTimeout = new(int32(300)) }},
}

const (
	tdBadCPU    = "Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
	tdBadMemory = "Invalid 'memory' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
)

var taskSizeRules = []taskDefRule{
	{name: "task cpu 127", mod: func(td *types.TaskDefinition) { td.Cpu = new("127") }, msg: tdBadCPU},
	{name: "task cpu 128", mod: func(td *types.TaskDefinition) { td.Cpu = new("128") }},
	{name: "task cpu 196608", mod: func(td *types.TaskDefinition) { td.Cpu = new("196608") }},
	{name: "task cpu 196609", mod: func(td *types.TaskDefinition) { td.Cpu = new("196609") }, msg: tdBadCPU},
	{name: "task cpu in GB", mod: func(td *types.TaskDefinition) { td.Cpu = new("1 GB") }, msg: tdBadCPU},
	{name: "task cpu fraction of a unit", mod: func(td *types.TaskDefinition) { td.Cpu = new("0.1 vCPU") }, msg: tdBadCPU},
	{name: "task cpu empty", mod: func(td *types.TaskDefinition) { td.Cpu = new("") }, msg: tdBadCPU},
	{name: "task memory 0", mod: func(td *types.TaskDefinition) { td.Memory = new("0") }, msg: tdBadMemory},
	{name: "task memory fraction of a MiB", mod: func(td *types.TaskDefinition) { td.Memory = new("1.1 GB") }, msg: tdBadMemory},
	{name: "task memory in vCPU", mod: func(td *types.TaskDefinition) { td.Memory = new("1 vCPU") }, msg: tdBadMemory},
	{name: "task memory in GB", mod: func(td *types.TaskDefinition) { td.Memory = new("1 GB") }},
	{name: "container cpu sum above task cpu", mod: func(td *types.TaskDefinition) {
		td.Cpu = new("256")
		firstContainer(td).Cpu = 200
		addContainer(td, "side").Cpu = 100
	}, msg: "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."},
	{name: "container cpu sum equal to task cpu", mod: func(td *types.TaskDefinition) {
		td.Cpu = new("0.25 vCPU")
		firstContainer(td).Cpu = 156
		addContainer(td, "side").Cpu = 100
	}},
}

var enumRules = []taskDefRule{
	{name: "networkMode unknown", mod: func(td *types.TaskDefinition) { td.NetworkMode = "nat" },
		msg: "Invalid networkMode 'nat'. Valid values are bridge, host, awsvpc, none."},
	{name: "requiresCompatibilities unknown", mod: func(td *types.TaskDefinition) { td.RequiresCompatibilities = []types.Compatibility{"LAMBDA"} },
		msg: "Invalid requiresCompatibilities value 'LAMBDA'. Valid values are EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES."},
	{name: "pidMode unknown", mod: func(td *types.TaskDefinition) { td.PidMode = "container" },
		msg: "Invalid pidMode 'container'. Valid values are host, task."},
	{name: "ipcMode unknown", mod: func(td *types.TaskDefinition) { td.IpcMode = "shareable" },
		msg: "Invalid ipcMode 'shareable'. Valid values are host, task, none."},
	{name: "cpuArchitecture unknown", mod: func(td *types.TaskDefinition) {
		td.RuntimePlatform = &types.RuntimePlatform{CpuArchitecture: "RISCV64"}
	}, msg: "Invalid runtimePlatform.cpuArchitecture 'RISCV64'. Valid values are X86_64, ARM64."},
	{name: "operatingSystemFamily unknown", mod: func(td *types.TaskDefinition) {
		td.RuntimePlatform = &types.RuntimePlatform{OperatingSystemFamily: "MACOS"}
	}, msg: "Invalid runtimePlatform.operatingSystemFamily 'MACOS'. Valid values are WINDOWS_SERVER_2019_FULL, WINDOWS_SERVER_2019_CORE, WINDOWS_SERVER_2016_FULL, WINDOWS_SERVER_2004_CORE, WINDOWS_SERVER_2022_CORE, WINDOWS_SERVER_2022_FULL, WINDOWS_SERVER_2025_CORE, WINDOWS_SERVER_2025_FULL, WINDOWS_SERVER_20H2_CORE, LINUX."},
	{name: "ARM64 Linux", mod: func(td *types.TaskDefinition) {
		td.RuntimePlatform = &types.RuntimePlatform{CpuArchitecture: "ARM64", OperatingSystemFamily: "LINUX"}
	}},
}

var memoryRules = []taskDefRule{
	{name: "no memory anywhere", mod: func(td *types.TaskDefinition) { firstContainer(td).Memory = nil },
		msg: "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."},
	{name: "memoryReservation only", mod: func(td *types.TaskDefinition) {
		firstContainer(td).Memory = nil
		firstContainer(td).MemoryReservation = new(int32(128))
	}},
	{name: "task memory only", mod: func(td *types.TaskDefinition) {
		firstContainer(td).Memory = nil
		td.Memory = new("512")
	}},
	{name: "memory 5 MiB", mod: func(td *types.TaskDefinition) { firstContainer(td).Memory = new(int32(5)) },
		msg: "Invalid 'memory' setting for container 'app'. The minimum is 6 MiB."},
	{name: "memory 6 MiB", mod: func(td *types.TaskDefinition) { firstContainer(td).Memory = new(int32(6)) }},
	{name: "memoryReservation 0", mod: func(td *types.TaskDefinition) { firstContainer(td).MemoryReservation = new(int32(0)) },
		msg: "Invalid 'memoryReservation' setting for container 'app'. The minimum is 6 MiB."},
	{name: "memory below memoryReservation", mod: func(td *types.TaskDefinition) { firstContainer(td).MemoryReservation = new(int32(512)) },
		msg: "Invalid setting for container 'app'. 'memory' must be greater than or equal to 'memoryReservation'."},
	{name: "memory equal to memoryReservation", mod: func(td *types.TaskDefinition) { firstContainer(td).MemoryReservation = new(int32(256)) }},
	{name: "container memory above task memory", mod: func(td *types.TaskDefinition) { td.Memory = new("128") },
		msg: "The 'memory' setting for container 'app' is greater than for the task."},
	{name: "container memoryReservation above task memory", mod: func(td *types.TaskDefinition) {
		td.Memory = new("128")
		firstContainer(td).Memory = nil
		firstContainer(td).MemoryReservation = new(int32(129))
	}, msg: "The 'memoryReservation' setting for container 'app' is greater than for the task."},
}

func tdPortMapping(containerPort, hostPort int32) types.PortMapping {
	pm := types.PortMapping{ContainerPort: new(containerPort)}
	if hostPort >= 0 {
		pm.HostPort = new(hostPort)
	}
	return pm
}

func tdSetPorts(pms ...types.PortMapping) func(td *types.TaskDefinition) {
	return func(td *types.TaskDefinition) { firstContainer(td).PortMappings = pms }
}

var portRules = []taskDefRule{
	{name: "containerPort missing", mod: tdSetPorts(types.PortMapping{HostPort: new(int32(80))}), msg: "Invalid 'containerPort' setting for container 'app'."},
	{name: "containerPort 0", mod: tdSetPorts(tdPortMapping(0, -1)), msg: "Invalid 'containerPort' setting for container 'app'."},
	{name: "containerPort 65536", mod: tdSetPorts(tdPortMapping(65536, -1)), msg: "Invalid 'containerPort' setting for container 'app'."},
	{name: "containerPort 65535", mod: tdSetPorts(tdPortMapping(65535, -1))},
	{name: "hostPort -1", mod: tdSetPorts(tdPortMapping(80, -1), types.PortMapping{ContainerPort: new(int32(81)), HostPort: new(int32(-2))}),
		msg: "Invalid 'hostPort' setting for container 'app'."},
	{name: "hostPort 65536", mod: tdSetPorts(tdPortMapping(80, 65536)), msg: "Invalid 'hostPort' setting for container 'app'."},
	{name: "protocol sctp", mod: tdSetPorts(types.PortMapping{ContainerPort: new(int32(80)), Protocol: "sctp"}),
		msg: "Invalid 'protocol' setting for container 'app'. Valid values are tcp and udp."},
	{name: "appProtocol ftp", mod: tdSetPorts(types.PortMapping{ContainerPort: new(int32(80)), AppProtocol: "ftp"}),
		msg: "Invalid 'appProtocol' setting for container 'app'. Valid values are http, http2, grpc."},
	{name: "bridge static host port differs", mod: tdSetPorts(tdPortMapping(80, 8080))},
	{name: "awsvpc host port differs", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "awsvpc"
		tdSetPorts(tdPortMapping(80, 8080))(td)
	}, msg: "When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
	{name: "awsvpc host port 0", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "awsvpc"
		tdSetPorts(tdPortMapping(80, 0))(td)
	}, msg: "When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
	{name: "host mode host port differs", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "host"
		tdSetPorts(tdPortMapping(80, 81))(td)
	}, msg: "When networkMode=host, the host ports and container ports in port mappings must match."},
	{name: "awsvpc host port equal", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "awsvpc"
		tdSetPorts(tdPortMapping(80, 80))(td)
	}},
	{name: "bridge duplicate static host port", mod: func(td *types.TaskDefinition) {
		tdSetPorts(tdPortMapping(80, 8080))(td)
		addContainer(td, "side").PortMappings = []types.PortMapping{tdPortMapping(81, 8080)}
	}, msg: "Invalid setting for container 'side'. Host port 8080/tcp is used by more than one port mapping in the task definition."},
	{name: "bridge same host port, other protocol", mod: func(td *types.TaskDefinition) {
		tdSetPorts(tdPortMapping(53, 53), types.PortMapping{ContainerPort: new(int32(53)), HostPort: new(int32(53)), Protocol: "udp"})(td)
	}},
	{name: "bridge dynamic host ports repeat", mod: tdSetPorts(tdPortMapping(80, 0), tdPortMapping(81, 0), tdPortMapping(82, -1))},
	{name: "awsvpc duplicate container port", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "awsvpc"
		addContainer(td, "side").PortMappings = []types.PortMapping{tdPortMapping(80, -1)}
	}, msg: "Invalid setting for container 'side'. Host port 80/tcp is used by more than one port mapping in the task definition."},
	{name: "ports in none mode", mod: func(td *types.TaskDefinition) { td.NetworkMode = "none" },
		msg: "Invalid setting for container 'app'. Port mappings are not supported when networkMode=none."},
	{name: "port name uppercase", mod: tdSetPorts(types.PortMapping{ContainerPort: new(int32(80)), Name: new("Web")}),
		msg: "Invalid setting for container 'app'. Port mapping name 'Web' is invalid. Up to 64 lowercase letters, numbers, underscores, and hyphens are allowed, and it cannot start with a hyphen."},
	{name: "port name duplicate", mod: func(td *types.TaskDefinition) {
		tdSetPorts(types.PortMapping{ContainerPort: new(int32(80)), Name: new("web")})(td)
		addContainer(td, "side").PortMappings = []types.PortMapping{{ContainerPort: new(int32(81)), Name: new("web")}}
	}, msg: "Invalid setting for container 'side'. Port mapping names must be unique within a task definition. Duplicate name: 'web'."},
	{name: "port range", mod: tdSetPorts(types.PortMapping{ContainerPortRange: new("8000-8010")})},
	{name: "port range with containerPort", mod: tdSetPorts(types.PortMapping{ContainerPortRange: new("8000-8010"), ContainerPort: new(int32(8000))}),
		msg: "Invalid setting for container 'app'. A port mapping cannot set both 'containerPort' and 'containerPortRange'."},
	{name: "port range with hostPort", mod: tdSetPorts(types.PortMapping{ContainerPortRange: new("8000-8010"), HostPort: new(int32(8000))}),
		msg: "Invalid setting for container 'app'. A port mapping with 'containerPortRange' cannot set 'hostPort'."},
	{name: "port range reversed", mod: tdSetPorts(types.PortMapping{ContainerPortRange: new("9000-8000")}),
		msg: "Invalid 'containerPortRange' setting for container 'app'. Use the form start-end with 1 <= start < end <= 65535."},
	{name: "port range in host mode", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "host"
		tdSetPorts(types.PortMapping{ContainerPortRange: new("8000-8010")})(td)
	}, msg: "Invalid setting for container 'app'. 'containerPortRange' is supported only when networkMode is bridge or awsvpc."},
}

var linkAndEnvRules = []taskDefRule{
	{name: "links in bridge mode", mod: func(td *types.TaskDefinition) {
		addContainer(td, "db")
		firstContainer(td).Links = []string{"db:database"}
	}},
	{name: "links in awsvpc mode", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "awsvpc"
		addContainer(td, "db")
		firstContainer(td).Links = []string{"db"}
	}, msg: "Links are not supported when networkMode=awsvpc."},
	{name: "links in host mode", mod: func(td *types.TaskDefinition) {
		td.NetworkMode = "host"
		addContainer(td, "db")
		firstContainer(td).Links = []string{"db"}
	}, msg: "Links are not supported when networkMode=host."},
	{name: "link to unknown container", mod: func(td *types.TaskDefinition) { firstContainer(td).Links = []string{"cache:redis"} },
		msg: "Invalid setting for container 'app'. Link 'cache:redis' refers to container 'cache', which is not defined in the task definition."},
	{name: "link to itself", mod: func(td *types.TaskDefinition) { firstContainer(td).Links = []string{"app"} },
		msg: "Invalid setting for container 'app'. A container cannot link to itself."},
	{name: "environment name empty", mod: func(td *types.TaskDefinition) {
		firstContainer(td).Environment = []types.KeyValuePair{{Name: new("A"), Value: new("1")}, {Value: new("2")}}
	}, msg: "Invalid setting for container 'app'. Environment variable name should not be null or empty."},
	{name: "environment value may be empty", mod: func(td *types.TaskDefinition) {
		firstContainer(td).Environment = []types.KeyValuePair{{Name: new("A")}}
	}},
	{name: "environment file not s3", mod: func(td *types.TaskDefinition) {
		firstContainer(td).EnvironmentFiles = []types.EnvironmentFile{{Type: "http", Value: new("x")}}
	}, msg: "Invalid setting for container 'app'. Environment file type must be s3."},
	{name: "secret without valueFrom", mod: func(td *types.TaskDefinition) {
		firstContainer(td).Secrets = []types.Secret{{Name: new("DB")}}
	}, msg: "Invalid setting for container 'app'. Secret name and valueFrom should not be null or empty."},
}

func tdWithVolume(vol types.Volume) func(td *types.TaskDefinition) {
	return func(td *types.TaskDefinition) { td.Volumes = append(td.Volumes, vol) }
}

var volumeRules = []taskDefRule{
	{name: "mount point to undeclared volume", mod: func(td *types.TaskDefinition) {
		firstContainer(td).MountPoints = []types.MountPoint{{SourceVolume: new("data"), ContainerPath: new("/data")}}
	}, msg: "Invalid setting for container 'app'. Mount point refers to volume 'data', which is not defined in the task definition."},
	{name: "mount point to declared volume", mod: func(td *types.TaskDefinition) {
		tdWithVolume(types.Volume{Name: new("data")})(td)
		firstContainer(td).MountPoints = []types.MountPoint{{SourceVolume: new("data"), ContainerPath: new("/data")}}
	}},
	{name: "mount point without containerPath", mod: func(td *types.TaskDefinition) {
		tdWithVolume(types.Volume{Name: new("data")})(td)
		firstContainer(td).MountPoints = []types.MountPoint{{SourceVolume: new("data")}}
	}, msg: "Invalid setting for container 'app'. Mount point 'containerPath' should not be null or empty."},
	{name: "mount point without sourceVolume", mod: func(td *types.TaskDefinition) {
		firstContainer(td).MountPoints = []types.MountPoint{{ContainerPath: new("/data")}}
	}, msg: "Invalid setting for container 'app'. Mount point 'sourceVolume' should not be null or empty."},
	{name: "volumesFrom unknown container", mod: func(td *types.TaskDefinition) {
		firstContainer(td).VolumesFrom = []types.VolumeFrom{{SourceContainer: new("data")}}
	}, msg: "Invalid setting for container 'app'. volumesFrom refers to container 'data', which is not defined in the task definition."},
	{name: "volumesFrom itself", mod: func(td *types.TaskDefinition) {
		firstContainer(td).VolumesFrom = []types.VolumeFrom{{SourceContainer: new("app")}}
	}, msg: "Invalid setting for container 'app'. A container cannot mount volumes from itself."},
	{name: "volumesFrom a later container", mod: func(td *types.TaskDefinition) {
		firstContainer(td).VolumesFrom = []types.VolumeFrom{{SourceContainer: new("data"), ReadOnly: new(true)}}
		addContainer(td, "data")
	}},
	{name: "volume without name", mod: tdWithVolume(types.Volume{}), msg: "Volume.name should not be null or empty."},
	{name: "volume name with a slash", mod: tdWithVolume(types.Volume{Name: new("a/b")}),
		msg: "Invalid volume name 'a/b'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."},
	{name: "duplicate volume", mod: func(td *types.TaskDefinition) {
		tdWithVolume(types.Volume{Name: new("data")})(td)
		tdWithVolume(types.Volume{Name: new("data")})(td)
	}, msg: "Volume names must be unique. Duplicate volume name: 'data'."},
	{name: "volume host and docker", mod: tdWithVolume(types.Volume{Name: new("data"), Host: &types.HostVolumeProperties{},
		DockerVolumeConfiguration: &types.DockerVolumeConfiguration{}}),
		msg: "Invalid volume 'data'. Specify at most one of host, dockerVolumeConfiguration, efsVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration and s3filesVolumeConfiguration."},
	{name: "docker volume autoprovision in task scope", mod: tdWithVolume(types.Volume{Name: new("data"),
		DockerVolumeConfiguration: &types.DockerVolumeConfiguration{Autoprovision: new(true), Scope: "task"}}),
		msg: "Invalid volume 'data'. Autoprovision can be true only when the scope is shared."},
	{name: "docker volume autoprovision in shared scope", mod: tdWithVolume(types.Volume{Name: new("data"),
		DockerVolumeConfiguration: &types.DockerVolumeConfiguration{Autoprovision: new(true), Scope: "shared"}})},
	{name: "docker volume unknown scope", mod: tdWithVolume(types.Volume{Name: new("data"),
		DockerVolumeConfiguration: &types.DockerVolumeConfiguration{Scope: "global"}}),
		msg: "Invalid volume 'data'. Invalid dockerVolumeConfiguration.scope 'global'. Valid values are task, shared."},
	{name: "efs without file system", mod: tdWithVolume(types.Volume{Name: new("data"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{}}),
		msg: "Invalid volume 'data'. efsVolumeConfiguration.fileSystemId should not be null or empty."},
}

func tdDependsOn(target string, cond types.ContainerCondition) []types.ContainerDependency {
	return []types.ContainerDependency{{ContainerName: new(target), Condition: cond}}
}

var dependencyRules = []taskDefRule{
	{name: "dependsOn unknown container", mod: func(td *types.TaskDefinition) { firstContainer(td).DependsOn = tdDependsOn("db", "START") },
		msg: "Invalid setting for container 'app'. dependsOn refers to container 'db', which is not defined in the task definition."},
	{name: "dependsOn without name", mod: func(td *types.TaskDefinition) {
		firstContainer(td).DependsOn = []types.ContainerDependency{{Condition: "START"}}
	}, msg: "Invalid setting for container 'app'. dependsOn 'containerName' should not be null or empty."},
	{name: "dependsOn START", mod: func(td *types.TaskDefinition) {
		addContainer(td, "db")
		firstContainer(td).DependsOn = tdDependsOn("db", "START")
	}},
	{name: "dependsOn SUCCESS on an essential container", mod: func(td *types.TaskDefinition) {
		addContainer(td, "migrate")
		firstContainer(td).DependsOn = tdDependsOn("migrate", "SUCCESS")
	}, msg: "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"},
	{name: "dependsOn COMPLETE on an essential container", mod: func(td *types.TaskDefinition) {
		addContainer(td, "migrate").Essential = new(true)
		firstContainer(td).DependsOn = tdDependsOn("migrate", "COMPLETE")
	}, msg: "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"},
	{name: "dependsOn SUCCESS on a non-essential container", mod: func(td *types.TaskDefinition) {
		addContainer(td, "migrate").Essential = new(false)
		firstContainer(td).DependsOn = tdDependsOn("migrate", "SUCCESS")
	}},
	{name: "dependsOn HEALTHY without health check", mod: func(td *types.TaskDefinition) {
		addContainer(td, "db")
		firstContainer(td).DependsOn = tdDependsOn("db", "HEALTHY")
	}, msg: "A dependency container with HEALTHY condition must have a health check configured. Container 'db' has none."},
	{name: "dependsOn HEALTHY with health check", mod: func(td *types.TaskDefinition) {
		addContainer(td, "db").HealthCheck = &types.HealthCheck{Command: []string{"CMD", "pg_isready"}}
		firstContainer(td).DependsOn = tdDependsOn("db", "HEALTHY")
	}},
	{name: "dependsOn unknown condition", mod: func(td *types.TaskDefinition) {
		addContainer(td, "db")
		firstContainer(td).DependsOn = tdDependsOn("db", "READY")
	}, msg: "Invalid setting for container 'app'. dependsOn condition 'READY' is not supported. Valid values are START, COMPLETE, SUCCESS, HEALTHY."},
	{name: "dependsOn cycle", mod: func(td *types.TaskDefinition) {
		addContainer(td, "db").DependsOn = tdDependsOn("cache", "START")
		addContainer(td, "cache").DependsOn = tdDependsOn("app", "START")
		firstContainer(td).DependsOn = tdDependsOn("db", "START")
	}, msg: "Container dependencies must not form a cycle: app -> db -> cache -> app."},
	{name: "dependsOn itself", mod: func(td *types.TaskDefinition) { firstContainer(td).DependsOn = tdDependsOn("app", "START") },
		msg: "Container dependencies must not form a cycle: app -> app."},
	{name: "dependsOn diamond", mod: func(td *types.TaskDefinition) {
		addContainer(td, "a").DependsOn = tdDependsOn("c", "START")
		addContainer(td, "b").DependsOn = tdDependsOn("c", "START")
		addContainer(td, "c")
		firstContainer(td).DependsOn = append(tdDependsOn("a", "START"), tdDependsOn("b", "START")...)
	}},
}

func tdHealthCheck(cmd ...string) *types.HealthCheck { return &types.HealthCheck{Command: cmd} }

func tdWithHealth(hc *types.HealthCheck) func(td *types.TaskDefinition) {
	return func(td *types.TaskDefinition) { firstContainer(td).HealthCheck = hc }
}

func tdHealthRange(field string, set func(*types.HealthCheck, int32), value int32, lo, hi int32) taskDefRule {
	hc := tdHealthCheck("CMD", "true")
	set(hc, value)
	r := taskDefRule{name: fmt.Sprintf("healthCheck %s %d", field, value), mod: tdWithHealth(hc)}
	if value < lo || value > hi {
		r.msg = fmt.Sprintf("Invalid 'healthCheck.%s' setting for container 'app'. The value must be between %d and %d.", field, lo, hi)
	}
	return r
}

var healthCheckRules = func() []taskDefRule {
	rules := []taskDefRule{
		{name: "healthCheck empty command", mod: tdWithHealth(tdHealthCheck()),
			msg: "Invalid setting for container 'app'. Health check 'command' should not be null or empty."},
		{name: "healthCheck without CMD", mod: tdWithHealth(tdHealthCheck("curl", "localhost")),
			msg: "Invalid setting for container 'app'. Health check 'command' must start with CMD, CMD-SHELL or NONE."},
		{name: "healthCheck CMD alone", mod: tdWithHealth(tdHealthCheck("CMD")),
			msg: "Invalid setting for container 'app'. Health check 'command' must give a command after CMD."},
		{name: "healthCheck NONE", mod: tdWithHealth(tdHealthCheck("NONE"))},
		{name: "healthCheck CMD-SHELL", mod: tdWithHealth(tdHealthCheck("CMD-SHELL", "curl -f http://localhost/ || exit 1"))},
	}
	interval := func(h *types.HealthCheck, v int32) { h.Interval = new(v) }
	timeout := func(h *types.HealthCheck, v int32) { h.Timeout = new(v) }
	retries := func(h *types.HealthCheck, v int32) { h.Retries = new(v) }
	startPeriod := func(h *types.HealthCheck, v int32) { h.StartPeriod = new(v) }
	for _, v := range []int32{4, 5, 300, 301} {
		rules = append(rules, tdHealthRange("interval", interval, v, 5, 300))
	}
	for _, v := range []int32{1, 2, 60, 61} {
		rules = append(rules, tdHealthRange("timeout", timeout, v, 2, 60))
	}
	for _, v := range []int32{0, 1, 10, 11} {
		rules = append(rules, tdHealthRange("retries", retries, v, 1, 10))
	}
	for _, v := range []int32{-1, 0, 300, 301} {
		rules = append(rules, tdHealthRange("startPeriod", startPeriod, v, 0, 300))
	}
	return rules
}()

func tdWithLog(driver types.LogDriver, opts map[string]string) func(td *types.TaskDefinition) {
	return func(td *types.TaskDefinition) {
		firstContainer(td).LogConfiguration = &types.LogConfiguration{LogDriver: driver, Options: opts}
	}
}

var logAndMiscRules = []taskDefRule{
	{name: "log driver empty", mod: tdWithLog("", nil),
		msg: "Invalid setting for container 'app'. 'logConfiguration.logDriver' should not be null or empty."},
	{name: "log driver loki", mod: tdWithLog("loki", nil),
		msg: "Invalid setting for container 'app'. Log driver 'loki' is not supported. Valid values are json-file, syslog, journald, gelf, fluentd, awslogs, splunk, awsfirelens."},
	{name: "awslogs without options", mod: tdWithLog("awslogs", nil), msg: "Log driver awslogs requires options: awslogs-region, awslogs-group"},
	{name: "awslogs without group", mod: tdWithLog("awslogs", map[string]string{"awslogs-region": "us-east-1"}),
		msg: "Log driver awslogs requires options: awslogs-group"},
	{name: "awslogs on EC2 without execution role", mod: tdWithLog("awslogs", map[string]string{"awslogs-region": "us-east-1", "awslogs-group": "g"})},
	{name: "awsfirelens without a firelens container", mod: tdWithLog("awsfirelens", nil),
		msg: "Invalid setting for container 'app'. Log driver awsfirelens requires a container with 'firelensConfiguration' in the task definition."},
	{name: "log secret without valueFrom", mod: func(td *types.TaskDefinition) {
		tdWithLog("splunk", nil)(td)
		firstContainer(td).LogConfiguration.SecretOptions = []types.Secret{{Name: new("splunk-token")}}
	}, msg: "Invalid setting for container 'app'. Log configuration secret name and valueFrom should not be null or empty."},
	{name: "ulimit unknown", mod: func(td *types.TaskDefinition) { firstContainer(td).Ulimits = []types.Ulimit{{Name: "files"}} },
		msg: "Invalid setting for container 'app'. Ulimit name 'files' is not supported. Valid values are core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack."},
	{name: "ulimit soft above hard", mod: func(td *types.TaskDefinition) {
		firstContainer(td).Ulimits = []types.Ulimit{{Name: "nofile", SoftLimit: 2048, HardLimit: 1024}}
	}, msg: "Invalid setting for container 'app'. Ulimit 'nofile': softLimit must be less than or equal to hardLimit."},
	{name: "swappiness 101", mod: func(td *types.TaskDefinition) {
		firstContainer(td).LinuxParameters = &types.LinuxParameters{Swappiness: new(int32(101))}
	},
		msg: "Invalid 'linuxParameters.swappiness' setting for container 'app'. The value must be between 0 and 100."},
	{name: "tmpfs without size", mod: func(td *types.TaskDefinition) {
		firstContainer(td).LinuxParameters = &types.LinuxParameters{Tmpfs: []types.Tmpfs{{ContainerPath: new("/run")}}}
	}, msg: "Invalid setting for container 'app'. Tmpfs 'size' must be greater than 0."},
	{name: "device permission unknown", mod: func(td *types.TaskDefinition) {
		firstContainer(td).LinuxParameters = &types.LinuxParameters{Devices: []types.Device{{HostPath: new("/dev/fuse"), Permissions: []types.DeviceCgroupPermission{"exec"}}}}
	}, msg: "Invalid setting for container 'app'. Device permission 'exec' is not supported. Valid values are read, write, mknod."},
	{name: "GPU count not a number", mod: func(td *types.TaskDefinition) {
		firstContainer(td).ResourceRequirements = []types.ResourceRequirement{{Type: "GPU", Value: new("one")}}
	}, msg: "Invalid setting for container 'app'. GPU resource requirement value must be a positive integer."},
	{name: "restart attempt period 30", mod: func(td *types.TaskDefinition) {
		firstContainer(td).RestartPolicy = &types.ContainerRestartPolicy{Enabled: new(true), RestartAttemptPeriod: new(int32(30))}
	}, msg: "Invalid 'restartPolicy.restartAttemptPeriod' setting for container 'app'. The value must be between 60 and 1800."},
	{name: "extra host without address", mod: func(td *types.TaskDefinition) {
		firstContainer(td).ExtraHosts = []types.HostEntry{{Hostname: new("db")}}
	}, msg: "Invalid setting for container 'app'. Extra host 'hostname' and 'ipAddress' should not be null or empty."},
	{name: "repository credentials empty", mod: func(td *types.TaskDefinition) {
		firstContainer(td).RepositoryCredentials = &types.RepositoryCredentials{}
	}, msg: "Invalid setting for container 'app'. repositoryCredentials.credentialsParameter should not be null or empty."},
}

func tdConstraints(n int, typ types.TaskDefinitionPlacementConstraintType, expr string) func(td *types.TaskDefinition) {
	return func(td *types.TaskDefinition) {
		for range n {
			td.PlacementConstraints = append(td.PlacementConstraints, types.TaskDefinitionPlacementConstraint{Type: typ, Expression: new(expr)})
		}
	}
}

func tdAppMesh(td *types.TaskDefinition) {
	td.NetworkMode = "awsvpc"
	firstContainer(td).PortMappings = nil
	addContainer(td, "envoy")
	td.ProxyConfiguration = &types.ProxyConfiguration{Type: "APPMESH", ContainerName: new("envoy")}
}

var taskLevelRules = []taskDefRule{
	{name: "ten placement constraints", mod: tdConstraints(10, "memberOf", "attribute:ecs.instance-type =~ t3.*")},
	{name: "eleven placement constraints", mod: tdConstraints(11, "memberOf", "attribute:ecs.instance-type =~ t3.*"),
		msg: "Too many placement constraints: 11. A task definition can have at most 10."},
	{name: "distinctInstance in a task definition", mod: tdConstraints(1, "distinctInstance", ""),
		msg: "Invalid placement constraint type 'distinctInstance'. Task definitions support only memberOf."},
	{name: "memberOf without expression", mod: tdConstraints(1, "memberOf", " "), msg: "A memberOf placement constraint requires an expression."},
	{name: "memberOf expression too long", mod: tdConstraints(1, "memberOf", strings.Repeat("x", 2001)),
		msg: "Placement constraint expression is too long. The maximum length is 2000 characters."},
	{name: "ephemeral storage 20", fargate: true, mod: func(td *types.TaskDefinition) { td.EphemeralStorage = &types.EphemeralStorage{SizeInGiB: 20} },
		msg: "Invalid 'ephemeralStorage.sizeInGiB' setting for task. The value must be between 21 and 200."},
	{name: "ephemeral storage 21", fargate: true, mod: func(td *types.TaskDefinition) { td.EphemeralStorage = &types.EphemeralStorage{SizeInGiB: 21} }},
	{name: "ephemeral storage 200", fargate: true, mod: func(td *types.TaskDefinition) { td.EphemeralStorage = &types.EphemeralStorage{SizeInGiB: 200} }},
	{name: "ephemeral storage 201", fargate: true, mod: func(td *types.TaskDefinition) { td.EphemeralStorage = &types.EphemeralStorage{SizeInGiB: 201} },
		msg: "Invalid 'ephemeralStorage.sizeInGiB' setting for task. The value must be between 21 and 200."},
	{name: "app mesh proxy", mod: tdAppMesh},
	{name: "proxy in bridge mode", mod: func(td *types.TaskDefinition) {
		tdAppMesh(td)
		td.NetworkMode = ""
	}, msg: "A proxy configuration requires networkMode=awsvpc."},
	{name: "proxy for unknown container", mod: func(td *types.TaskDefinition) {
		tdAppMesh(td)
		td.ProxyConfiguration.ContainerName = new("istio")
	}, msg: "proxyConfiguration refers to container 'istio', which is not defined in the task definition."},
	{name: "proxy of unknown type", mod: func(td *types.TaskDefinition) {
		tdAppMesh(td)
		td.ProxyConfiguration.Type = "ISTIO"
	}, msg: "Invalid proxyConfiguration type 'ISTIO'. The only valid value is APPMESH."},
	{name: "inference accelerator without type", mod: func(td *types.TaskDefinition) {
		td.InferenceAccelerators = []types.InferenceAccelerator{{DeviceName: new("dev1")}}
	}, msg: "Inference accelerator deviceName and deviceType should not be null or empty."},
}

var fargateRules = []taskDefRule{
	{name: "fargate nginx", fargate: true, mod: func(*types.TaskDefinition) {}},
	{name: "fargate bridge", fargate: true, mod: func(td *types.TaskDefinition) { td.NetworkMode = "" },
		msg: "Fargate only supports network mode ‘awsvpc’."},
	{name: "fargate host", fargate: true, mod: func(td *types.TaskDefinition) { td.NetworkMode = "host" },
		msg: "Fargate only supports network mode ‘awsvpc’."},
	{name: "fargate without cpu", fargate: true, mod: func(td *types.TaskDefinition) { td.Cpu = nil },
		msg: "Fargate requires that 'cpu' be defined at the task level."},
	{name: "fargate without memory, container memory set", fargate: true, mod: func(td *types.TaskDefinition) {
		td.Memory = nil
		firstContainer(td).Memory = new(int32(256))
	}, msg: "Fargate requires that 'memory' be defined at the task level."},
	{name: "fargate without any memory", fargate: true, mod: func(td *types.TaskDefinition) { td.Memory = nil },
		msg: "Invalid setting for container 'nginx'. At least one of 'memory' or 'memoryReservation' must be specified."},
	{name: "fargate 256 CPU 4096 memory", fargate: true, mod: func(td *types.TaskDefinition) { td.Memory = new("4096") },
		msg: "No Fargate configuration exists for given values: 256 CPU, 4096 memory. See the Amazon ECS documentation for the valid values."},
	{name: "fargate 1 vCPU 1 GB", fargate: true, mod: func(td *types.TaskDefinition) { td.Cpu, td.Memory = new("1 vCPU"), new("1 GB") },
		msg: "No Fargate configuration exists for given values: 1024 CPU, 1024 memory. See the Amazon ECS documentation for the valid values."},
	{name: "fargate 1 vCPU 2 GB", fargate: true, mod: func(td *types.TaskDefinition) { td.Cpu, td.Memory = new("1 vCPU"), new("2 GB") }},
	{name: "fargate 16 vCPU 120 GB", fargate: true, mod: func(td *types.TaskDefinition) { td.Cpu, td.Memory = new("16 vCPU"), new("120 GB") }},
	{name: "fargate pidMode host", fargate: true, mod: func(td *types.TaskDefinition) { td.PidMode = "host" },
		msg: "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."},
	{name: "fargate pidMode task", fargate: true, mod: func(td *types.TaskDefinition) { td.PidMode = "task" }},
	{name: "fargate ipcMode", fargate: true, mod: func(td *types.TaskDefinition) { td.IpcMode = "task" },
		msg: "Tasks using the Fargate launch type do not support ipcMode."},
	{name: "fargate placement constraint", fargate: true, mod: tdConstraints(1, "memberOf", "attribute:ecs.os-type == linux"),
		msg: "Tasks using the Fargate launch type do not support placement constraints."},
	{name: "fargate inference accelerator", fargate: true, mod: func(td *types.TaskDefinition) {
		td.InferenceAccelerators = []types.InferenceAccelerator{{DeviceName: new("d"), DeviceType: new("eia2.medium")}}
	}, msg: "Tasks using the Fargate launch type do not support inference accelerators."},
	{name: "fargate host volume with sourcePath", fargate: true, mod: tdWithVolume(types.Volume{Name: new("data"), Host: &types.HostVolumeProperties{SourcePath: new("/srv")}}),
		msg: "Tasks using the Fargate launch type do not support host volumes. Volume 'data' sets host.sourcePath."},
	{name: "fargate bind mount volume", fargate: true, mod: tdWithVolume(types.Volume{Name: new("scratch"), Host: &types.HostVolumeProperties{}})},
	{name: "fargate docker volume", fargate: true, mod: tdWithVolume(types.Volume{Name: new("data"), DockerVolumeConfiguration: &types.DockerVolumeConfiguration{Driver: new("local")}}),
		msg: "Tasks using the Fargate launch type do not support Docker volumes. Volume 'data' sets dockerVolumeConfiguration."},
	{name: "fargate EFS volume", fargate: true, mod: tdWithVolume(types.Volume{Name: new("data"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{FileSystemId: new("fs-1")}})},
	{name: "fargate privileged", fargate: true, mod: func(td *types.TaskDefinition) { firstContainer(td).Privileged = new(true) },
		msg: "Invalid setting for container 'nginx'. Tasks using the Fargate launch type do not support privileged containers."},
	{name: "fargate docker security options", fargate: true, mod: func(td *types.TaskDefinition) {
		firstContainer(td).DockerSecurityOptions = []string{"no-new-privileges"}
	},
		msg: "Invalid setting for container 'nginx'. Tasks using the Fargate launch type do not support dockerSecurityOptions."},
	{name: "fargate json-file logs", fargate: true, mod: tdWithLog("json-file", nil),
		msg: "Invalid setting for container 'nginx'. Tasks using the Fargate launch type do not support log driver 'json-file'. Valid values are awslogs, splunk, awsfirelens."},
	{name: "fargate awslogs without execution role", fargate: true, mod: func(td *types.TaskDefinition) { td.ExecutionRoleArn = nil },
		msg: "Fargate requires task definition to have execution role ARN to support log driver awslogs."},
	{name: "fargate stopTimeout 120", fargate: true, mod: func(td *types.TaskDefinition) { firstContainer(td).StopTimeout = new(int32(120)) }},
	{name: "fargate stopTimeout 121", fargate: true, mod: func(td *types.TaskDefinition) { firstContainer(td).StopTimeout = new(int32(121)) },
		msg: "Invalid 'stopTimeout' setting for container 'nginx'. Tasks using the Fargate launch type support a stopTimeout of at most 120 seconds."},
	{name: "fargate devices", fargate: true, mod: func(td *types.TaskDefinition) {
		firstContainer(td).LinuxParameters = &types.LinuxParameters{Devices: []types.Device{{HostPath: new("/dev/fuse")}}}
	}, msg: "Invalid setting for container 'nginx'. Tasks using the Fargate launch type do not support linuxParameters.devices."},
	{name: "fargate shared memory size", fargate: true, mod: func(td *types.TaskDefinition) {
		firstContainer(td).LinuxParameters = &types.LinuxParameters{SharedMemorySize: new(int32(64))}
	}, msg: "Invalid setting for container 'nginx'. Tasks using the Fargate launch type do not support linuxParameters.sharedMemorySize."},
	{name: "fargate add NET_ADMIN", fargate: true, mod: func(td *types.TaskDefinition) {
		firstContainer(td).LinuxParameters = &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"NET_ADMIN"}}}
	}, msg: "Invalid setting for container 'nginx'. Tasks using the Fargate launch type do not support adding the capability NET_ADMIN. Only SYS_PTRACE can be added."},
	{name: "fargate add SYS_PTRACE, init process", fargate: true, mod: func(td *types.TaskDefinition) {
		firstContainer(td).LinuxParameters = &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"SYS_PTRACE"}, Drop: []string{"ALL"}}, InitProcessEnabled: new(true)}
	}},
	{name: "fargate GPU", fargate: true, mod: func(td *types.TaskDefinition) {
		firstContainer(td).ResourceRequirements = []types.ResourceRequirement{{Type: "GPU", Value: new("1")}}
	}, msg: "Invalid setting for container 'nginx'. Tasks using the Fargate launch type do not support GPU resource requirements."},
	{name: "fargate and EC2 required", fargate: true, mod: func(td *types.TaskDefinition) {
		td.RequiresCompatibilities = []types.Compatibility{"EC2", "FARGATE"}
	}},
	{name: "fargate ARM64 Linux", fargate: true, mod: func(td *types.TaskDefinition) {
		td.RuntimePlatform = &types.RuntimePlatform{CpuArchitecture: "ARM64", OperatingSystemFamily: "LINUX"}
	}},
}

var otherLaunchTypeRules = []taskDefRule{
	{name: "EXTERNAL in bridge mode", mod: func(td *types.TaskDefinition) { td.RequiresCompatibilities = []types.Compatibility{"EXTERNAL"} }},
	{name: "EXTERNAL in awsvpc mode", mod: func(td *types.TaskDefinition) {
		td.RequiresCompatibilities = []types.Compatibility{"EXTERNAL"}
		td.NetworkMode = "awsvpc"
	}, msg: "Tasks using the EXTERNAL launch type do not support network mode 'awsvpc'."},
	{name: "EXTERNAL with EFS", mod: func(td *types.TaskDefinition) {
		td.RequiresCompatibilities = []types.Compatibility{"EXTERNAL"}
		tdWithVolume(types.Volume{Name: new("data"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{FileSystemId: new("fs-1")}})(td)
	}, msg: "Tasks using the EXTERNAL launch type do not support EFS or FSx volumes. Volume 'data' uses a managed file system."},
	{name: "MANAGED_INSTANCES without network mode", mod: func(td *types.TaskDefinition) {
		td.RequiresCompatibilities = []types.Compatibility{"MANAGED_INSTANCES"}
	}, msg: "Tasks using the MANAGED_INSTANCES launch type require networkMode awsvpc, host or none."},
	{name: "MANAGED_INSTANCES in host mode", mod: func(td *types.TaskDefinition) {
		td.RequiresCompatibilities = []types.Compatibility{"MANAGED_INSTANCES"}
		td.NetworkMode = "host"
	}},
	{name: "MANAGED_INSTANCES with Windows", mod: func(td *types.TaskDefinition) {
		td.RequiresCompatibilities = []types.Compatibility{"MANAGED_INSTANCES"}
		td.NetworkMode = "awsvpc"
		firstContainer(td).PortMappings = nil
		td.RuntimePlatform = &types.RuntimePlatform{OperatingSystemFamily: "WINDOWS_SERVER_2022_CORE"}
	}, msg: "Tasks using the MANAGED_INSTANCES launch type do not support Windows containers."},
}
