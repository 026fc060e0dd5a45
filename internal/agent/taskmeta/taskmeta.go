// Package taskmeta serves the ECS task metadata endpoint (v4, and v3 with
// the same paths) to a node's containers: their own and their task's
// metadata and Docker-shaped stats, found by the endpoint ID in the path.
//
// The agent implements Source (which task and container an endpoint ID
// belongs to) and passes its runtime as the StatsSource; Handler builds the
// ECS JSON, and Server listens where the containers reach it
// (169.254.170.2:80). The JSON shapes follow the ECS agent's response types
// field for field; docs/task-metadata.md records them.
package taskmeta

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/agent/runtime"
)

// Source is the agent's view of its tasks. Implementations are safe for
// concurrent use.
type Source interface {
	// Lookup returns the task holding the container an endpoint ID was
	// issued to, and that container's Name; ok is false for an unknown ID.
	Lookup(endpointID string) (task Task, containerName string, ok bool)
}

// StatsSource samples a container's resource usage by runtime ID
// (runtime.Runtime satisfies it).
type StatsSource interface {
	Stats(ctx context.Context, runtimeID string) (runtime.Stats, error)
}

// Values ECS uses in the model.
const (
	ContainerTypeNormal = "NORMAL"
	LaunchTypeEC2       = "EC2"
	LaunchTypeFargate   = "FARGATE"
	LaunchTypeExternal  = "EXTERNAL"
)

// Task is a task as /v4/<id>/task returns it (the ECS agent's
// tmds/handlers/v4/state.TaskResponse, which embeds v2.TaskResponse).
// Times are written in UTC; zero times are left out.
type Task struct {
	Cluster            string      `json:"Cluster"`
	TaskARN            string      `json:"TaskARN"`
	Family             string      `json:"Family"`
	Revision           string      `json:"Revision"`
	DesiredStatus      string      `json:"DesiredStatus,omitempty"`
	KnownStatus        string      `json:"KnownStatus"`
	Containers         []Container `json:"Containers,omitempty"`
	Limits             TaskLimits  `json:"Limits,omitzero"`
	PullStartedAt      time.Time   `json:"PullStartedAt,omitzero"`
	PullStoppedAt      time.Time   `json:"PullStoppedAt,omitzero"`
	ExecutionStoppedAt time.Time   `json:"ExecutionStoppedAt,omitzero"`
	AvailabilityZone   string      `json:"AvailabilityZone,omitempty"`
	// TaskTags and ContainerInstanceTags appear only on /taskWithTags.
	TaskTags              map[string]string `json:"TaskTags,omitempty"`
	ContainerInstanceTags map[string]string `json:"ContainerInstanceTags,omitempty"`
	LaunchType            string            `json:"LaunchType,omitempty"`
	Errors                []ErrorResponse   `json:"Errors,omitempty"`
	// v4 only from here.
	VPCID                   string                   `json:"VPCID,omitempty"`
	ServiceName             string                   `json:"ServiceName,omitempty"`
	ClockDrift              *ClockDrift              `json:"ClockDrift,omitempty"`
	EphemeralStorageMetrics *EphemeralStorageMetrics `json:"EphemeralStorageMetrics,omitempty"`
	FaultInjectionEnabled   bool                     `json:"FaultInjectionEnabled"`
}

// TaskLimits are the task-level CPU (vCPU) and memory (MiB); a zero one is
// left out, and so is Limits when both are.
type TaskLimits struct {
	CPU    float64 `json:"CPU,omitempty"`
	Memory int64   `json:"Memory,omitempty"`
}

// ContainerLimits are a container's CPU units and memory MiB; ECS always
// writes both, zeros included.
type ContainerLimits struct {
	CPU    float64 `json:"CPU"`
	Memory int64   `json:"Memory"`
}

// Container is a container as /v4/<id> returns it (v4/state.ContainerResponse
// over v2.ContainerResponse).
type Container struct {
	// DockerID is the runtime's container ID (runtime.ContainerSpec.ID):
	// the key of /task/stats and what StatsSource is asked about. Empty
	// until the container has been created.
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []Port            `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        ContainerLimits   `json:"Limits"`
	CreatedAt     time.Time         `json:"CreatedAt,omitzero"`
	StartedAt     time.Time         `json:"StartedAt,omitzero"`
	FinishedAt    time.Time         `json:"FinishedAt,omitzero"`
	Type          string            `json:"Type"` // ContainerTypeNormal
	Networks      []Network         `json:"Networks,omitempty"`
	Health        *Health           `json:"Health,omitempty"`
	Volumes       []Volume          `json:"Volumes,omitempty"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
	ContainerARN  string            `json:"ContainerARN,omitempty"`
	// v4 only from here.
	Snapshotter  string `json:"Snapshotter,omitempty"`
	RestartCount *int   `json:"RestartCount,omitempty"`
}

// Port is a port mapping.
type Port struct {
	ContainerPort uint16 `json:"ContainerPort,omitempty"`
	Protocol      string `json:"Protocol,omitempty"`
	HostPort      uint16 `json:"HostPort,omitempty"`
	HostIP        string `json:"HostIp,omitempty"`
}

// Volume is a mounted volume.
type Volume struct {
	DockerName  string `json:"DockerName,omitempty"`
	Source      string `json:"Source,omitempty"`
	Destination string `json:"Destination,omitempty"`
}

// Network is one network of a container. The fields after IPv6Addresses
// are ECS's awsvpc-only interface properties (v4 only).
type Network struct {
	NetworkMode              string   `json:"NetworkMode,omitempty"`
	IPv4Addresses            []string `json:"IPv4Addresses,omitempty"`
	IPv6Addresses            []string `json:"IPv6Addresses,omitempty"`
	AttachmentIndex          *int     `json:"AttachmentIndex,omitempty"`
	MACAddress               string   `json:"MACAddress,omitempty"`
	IPv4SubnetCIDRBlock      string   `json:"IPv4SubnetCIDRBlock,omitempty"`
	IPv6SubnetCIDRBlock      string   `json:"IPv6SubnetCIDRBlock,omitempty"`
	DomainNameServers        []string `json:"DomainNameServers,omitempty"`
	DomainNameSearchList     []string `json:"DomainNameSearchList,omitempty"`
	PrivateDNSName           string   `json:"PrivateDNSName,omitempty"`
	SubnetGatewayIPv4Address string   `json:"SubnetGatewayIpv4Address,omitempty"`
	SubnetGatewayIPv6Address string   `json:"SubnetGatewayIpv6Address,omitempty"`
}

// Health is a container's health check status (lower-case keys, as ECS
// writes them).
type Health struct {
	Status   string    `json:"status,omitempty"` // HEALTHY, UNHEALTHY, UNKNOWN
	Since    time.Time `json:"statusSince,omitzero"`
	ExitCode int       `json:"exitCode,omitempty"`
	Output   string    `json:"output,omitempty"`
}

// ErrorResponse reports a failure to fetch part of the answer (ECS: the
// tags of /taskWithTags).
type ErrorResponse struct {
	ErrorField   string `json:"ErrorField,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
	StatusCode   int    `json:"StatusCode,omitempty"`
	RequestID    string `json:"RequestId,omitempty"`
	ResourceARN  string `json:"ResourceARN,omitempty"`
}

// ClockDrift is the instance's clock status.
type ClockDrift struct {
	ClockErrorBound            float64   `json:"ClockErrorBound,omitempty"`
	ReferenceTimestamp         time.Time `json:"ReferenceTimestamp,omitzero"`
	ClockSynchronizationStatus string    `json:"ClockSynchronizationStatus,omitempty"` // SYNCHRONIZED, NOT_SYNCHRONIZED
}

// EphemeralStorageMetrics are the task's ephemeral storage in MiB.
type EphemeralStorageMetrics struct {
	Utilized int64 `json:"Utilized"`
	Reserved int64 `json:"Reserved"`
}
