package node

import (
	"crypto/tls"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/state"
)

// What the simulated agents (internal/agent/simulate) share with the real
// one: the same TLS rules and signed ECS client, and the same choice of
// cluster, so a simulation reaches a server exactly as agents do.

// ServerClient is the ECS API client an agent with identity id uses, with a
// connection pool for conns concurrent calls, and the TLS configuration
// for the agent channel (nil for plain HTTP on loopback).
func ServerClient(id state.Identity, conns int) (*ecs.Client, *tls.Config, error) {
	hc, tc, err := httpClient(id.Endpoint, id.CAPin, conns)
	if err != nil {
		return nil, nil, err
	}
	return newECSClient(id, hc), tc, nil
}

// RegistrationCluster is the cluster an agent with cfg and identity id
// registers in: ECS_CLUSTER when it names one, else the join token's.
func RegistrationCluster(cfg agentconfig.Config, id state.Identity) string {
	if cfg.Cluster == "" || cfg.Cluster == agentconfig.DefaultCluster && id.Cluster != "" {
		return id.Cluster
	}
	return cfg.Cluster
}
