package node

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/version"
)

// Host is what the agent registers of the machine.
type Host struct {
	CPUs      int   // logical CPUs; registered as CPUs×1024 units
	MemoryMiB int64 // physical memory
	Arch      string
}

// DetectHost reads the machine's CPUs and memory.
func DetectHost() (Host, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return Host{}, errdefs.Internal(fmt.Errorf("sysinfo: %w", err))
	}
	mem := int64(si.Totalram) * int64(si.Unit) / (1 << 20)
	return Host{CPUs: goruntime.NumCPU(), MemoryMiB: mem, Arch: cpuArchitecture(goruntime.GOARCH)}, nil
}

// cpuArchitecture names GOARCH as ECS's ecs.cpu-architecture attribute does.
func cpuArchitecture(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "arm64"
	}
	return goarch
}

// dockerRemoteAPIVersions are the docker-remote-api capability versions the
// ECS agent advertises; task definitions' requiresAttributes name them, so
// berth advertises the same although it drives containerd.
var dockerRemoteAPIVersions = []string{
	"1.17", "1.18", "1.19", "1.20", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26",
	"1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36",
	"1.37", "1.38", "1.39", "1.40", "1.41", "1.42", "1.43", "1.44",
}

// Capabilities lists the attributes the agent advertises for what it can do.
func Capabilities(cfg agentconfig.Config, host Host) []types.Attribute {
	var attrs []types.Attribute
	add := func(name, value string) {
		a := types.Attribute{Name: aws.String(name)}
		if value != "" {
			a.Value = aws.String(value)
		}
		attrs = append(attrs, a)
	}
	add("ecs.os-type", "linux")
	add("ecs.os-family", "LINUX")
	add("ecs.cpu-architecture", host.Arch)
	for _, v := range dockerRemoteAPIVersions {
		add("com.amazonaws.ecs.capability.docker-remote-api."+v, "")
	}
	for _, d := range cfg.AvailableLoggingDrivers {
		add("com.amazonaws.ecs.capability.logging-driver."+d, "")
	}
	if !cfg.PrivilegedDisabled {
		add("com.amazonaws.ecs.capability.privileged-container", "")
	}
	if cfg.TaskIAMRoleEnabled {
		add("com.amazonaws.ecs.capability.task-iam-role", "")
	}
	if cfg.TaskIAMRoleEnabledForNetworkHost {
		add("com.amazonaws.ecs.capability.task-iam-role-network-host", "")
	}
	for _, c := range []string{
		"ecs.capability.container-health-check",
		"ecs.capability.container-ordering",
		"ecs.capability.task-cpu-mem-limit",
		"ecs.capability.env-files",
	} {
		add(c, "")
	}
	return attrs
}

// RegistrationInput builds RegisterContainerInstance's input: CPU =
// CPUs×1024, MEMORY = MiB minus ECS_RESERVED_MEMORY, PORTS and PORTS_UDP =
// the reserved ports, the capabilities plus ECS_INSTANCE_ATTRIBUTES, and
// ECS_CONTAINER_INSTANCE_TAGS. existingARN re-registers the same instance.
func RegistrationInput(cfg agentconfig.Config, host Host, cluster, existingARN string) (*ecs.RegisterContainerInstanceInput, error) {
	mem := host.MemoryMiB - int64(cfg.ReservedMemoryMiB)
	if mem <= 0 {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("ECS_RESERVED_MEMORY=%d leaves no memory of the machine's %d MiB to register", cfg.ReservedMemoryMiB, host.MemoryMiB))
	}
	ports := func(ps []uint16) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, strconv.Itoa(int(p)))
		}
		return out
	}
	in := &ecs.RegisterContainerInstanceInput{
		Cluster: aws.String(cluster),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: int32(host.CPUs * 1024)},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: int32(mem)},
			{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: ports(cfg.ReservedPorts)},
			{Name: aws.String("PORTS_UDP"), Type: aws.String("STRINGSET"), StringSetValue: ports(cfg.ReservedPortsUDP)},
		},
		VersionInfo: &types.VersionInfo{AgentVersion: aws.String(version.Version)},
		Attributes:  Capabilities(cfg, host),
	}
	if existingARN != "" {
		in.ContainerInstanceArn = aws.String(existingARN)
	}
	names := make([]string, 0, len(cfg.InstanceAttributes))
	for k := range cfg.InstanceAttributes {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		in.Attributes = append(in.Attributes, types.Attribute{Name: aws.String(k), Value: aws.String(cfg.InstanceAttributes[k])})
	}
	names = names[:0]
	for k := range cfg.ContainerInstanceTags {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(cfg.ContainerInstanceTags[k])})
	}
	return in, nil
}

// RegisterAPI is the part of the ECS client registration uses.
type RegisterAPI interface {
	RegisterContainerInstance(ctx context.Context, in *ecs.RegisterContainerInstanceInput, opts ...func(*ecs.Options)) (*ecs.RegisterContainerInstanceOutput, error)
	CreateCluster(ctx context.Context, in *ecs.CreateClusterInput, opts ...func(*ecs.Options)) (*ecs.CreateClusterOutput, error)
}

// Register registers the instance; like the ECS agent, it creates the
// cluster first when it does not exist. It returns the container instance
// ARN.
func Register(ctx context.Context, api RegisterAPI, in *ecs.RegisterContainerInstanceInput) (string, error) {
	out, err := api.RegisterContainerInstance(ctx, in)
	var nf *types.ClusterNotFoundException
	if errors.As(err, &nf) {
		if _, cerr := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: in.Cluster}); cerr != nil {
			return "", fmt.Errorf("creating cluster %s: %w", aws.ToString(in.Cluster), cerr)
		}
		out, err = api.RegisterContainerInstance(ctx, in)
	}
	if err != nil {
		return "", fmt.Errorf("registering with cluster %s: %w", aws.ToString(in.Cluster), err)
	}
	if out.ContainerInstance == nil || aws.ToString(out.ContainerInstance.ContainerInstanceArn) == "" {
		return "", errdefs.New(errdefs.ErrUnavailable, "RegisterContainerInstance answered without a container instance ARN")
	}
	return aws.ToString(out.ContainerInstance.ContainerInstanceArn), nil
}
