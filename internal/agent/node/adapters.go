package node

import (
	"context"
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agent/taskmeta"
	"github.com/berth-dev/berth/internal/agent/taskrunner"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/errdefs"
)

// reporter sends the engine's state changes through the ECS API and maps
// the refusals the server will never take back to errdefs kinds, so the
// engine drops them instead of retrying forever.
type reporter struct{ client *ecs.Client }

func (r reporter) SubmitTaskStateChange(ctx context.Context, in *ecs.SubmitTaskStateChangeInput) error {
	_, err := r.client.SubmitTaskStateChange(ctx, in)
	return reportError(err)
}

func (r reporter) SubmitContainerStateChange(ctx context.Context, in *ecs.SubmitContainerStateChangeInput) error {
	_, err := r.client.SubmitContainerStateChange(ctx, in)
	return reportError(err)
}

func reportError(err error) error {
	var (
		inv *types.InvalidParameterException
		cli *types.ClientException
		nf  *types.ClusterNotFoundException
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inv), errors.As(err, &cli):
		return errdefs.InvalidArgument(err.Error())
	case errors.As(err, &nf):
		return errdefs.NotFound(err.Error())
	}
	return err
}

// metadataSource answers the task metadata endpoint from the engine.
type metadataSource struct{ engine *taskrunner.Engine }

func (m metadataSource) Lookup(endpointID string) (taskmeta.Task, string, bool) {
	arn, name, ok := m.engine.LookupEndpoint(endpointID)
	if !ok {
		return taskmeta.Task{}, "", false
	}
	v, ok := m.engine.Task(arn)
	if !ok {
		return taskmeta.Task{}, "", false
	}
	return metadataTask(v), name, true
}

// metadataTask renders the engine's view in the endpoint's model.
func metadataTask(v taskrunner.TaskView) taskmeta.Task {
	t := taskmeta.Task{
		Cluster: v.Cluster, TaskARN: v.ARN, Family: v.Family, Revision: strconv.Itoa(int(v.Revision)),
		DesiredStatus: v.DesiredStatus, KnownStatus: v.KnownStatus, LaunchType: v.LaunchType,
		PullStartedAt: v.PullStartedAt, PullStoppedAt: v.PullStoppedAt, ExecutionStoppedAt: v.ExecutionStoppedAt,
	}
	if cpu, err := strconv.ParseFloat(v.CPU, 64); err == nil {
		t.Limits.CPU = cpu / 1024
	}
	if mem, err := strconv.ParseInt(v.Memory, 10, 64); err == nil {
		t.Limits.Memory = mem
	}
	for _, c := range v.Containers {
		mc := taskmeta.Container{
			DockerID: c.RuntimeID, Name: c.Name, DockerName: c.RuntimeID, Image: c.Image, ImageID: c.ImageDigest,
			Labels: c.Labels, DesiredStatus: c.DesiredStatus, KnownStatus: c.KnownStatus, ExitCode: c.ExitCode,
			Limits:    taskmeta.ContainerLimits{CPU: float64(c.CPU), Memory: c.MemoryMiB},
			CreatedAt: c.CreatedAt, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt,
			Type: taskmeta.ContainerTypeNormal, ContainerARN: c.ContainerARN,
		}
		for _, p := range c.Ports {
			mc.Ports = append(mc.Ports, taskmeta.Port{ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostPort: p.HostPort, HostIP: p.BindIP})
		}
		if c.Health != "" {
			mc.Health = &taskmeta.Health{Status: c.Health}
		}
		nw := taskmeta.Network{NetworkMode: string(v.NetworkMode)}
		if c.IPv4 != "" {
			nw.IPv4Addresses = []string{c.IPv4}
		}
		mc.Networks = []taskmeta.Network{nw}
		t.Containers = append(t.Containers, mc)
	}
	return t
}

// healthSender sends the engine's health through the channel; while the
// channel is down the message is dropped (the engine sends every health
// again when it reconnects).
type healthSender struct{ client *acsclient.Client }

func (h healthSender) ReportHealth(ctx context.Context, m agentproto.Health) error {
	return h.client.SendHealth(ctx, m)
}
