package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/node"
	"github.com/berth-dev/berth/internal/agent/simulate"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/config"
)

// agentFlags are the flags `berth agent` and `berth up` share for an agent.
type agentFlags struct {
	configPath        string
	containerdAddress string
	containerdNS      string
	metadataListen    string
	bridge            string
	subnet            string
}

func (fl *agentFlags) register(cmd *cobra.Command, withConfig bool) {
	f := cmd.Flags()
	if withConfig {
		f.StringVar(&fl.configPath, "config", agentconfig.DefaultPath, "ecs.config-style file of ECS_* settings (ECS_* environment variables win)")
	}
	f.StringVar(&fl.containerdAddress, "containerd-address", node.DefaultContainerdAddress, "containerd's socket")
	f.StringVar(&fl.containerdNS, "containerd-namespace", node.DefaultContainerdNamespace, "containerd namespace of the agent's containers (one per agent on a machine)")
	f.StringVar(&fl.metadataListen, "metadata-listen", node.DefaultMetadataListen, "address of the task metadata endpoint (tasks reach it at 169.254.170.2)")
	f.StringVar(&fl.bridge, "bridge", node.DefaultBridge, "name of the CNI bridge for bridge-mode tasks")
	f.StringVar(&fl.subnet, "subnet", node.DefaultSubnet, "subnet of the CNI bridge")
}

func (fl *agentFlags) apply(cfg *node.Config) {
	cfg.ContainerdAddress = fl.containerdAddress
	cfg.ContainerdNamespace = fl.containerdNS
	cfg.MetadataListen = fl.metadataListen
	cfg.Bridge = fl.bridge
	cfg.Subnet = fl.subnet
}

func newAgentCmd() *cobra.Command {
	var fl agentFlags
	var server, token, logLevel, logFormat string
	var sim simFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: join a server and run the tasks it places here",
		Long: `Run the node agent. The first start needs --token (from 'berth token create' on the
server); the agent stores the credentials it gets under ECS_DATADIR and needs no token afterwards.
Settings come from the ecs.config file (--config) and ECS_* environment variables, as for the
Amazon ECS agent (docs/agent-config.md).

With --simulated N it runs no containers: it registers N simulated container
instances that take tasks and report them RUNNING, for scale tests and capacity
planning (docs/simulation.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			acfg, err := agentconfig.Load(fl.configPath, os.Environ())
			if err != nil {
				return err
			}
			if logLevel == "" {
				logLevel = agentLogLevel(acfg.LogLevel)
			}
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return err
			}
			if sim.count != 0 || cmd.Flags().Changed("simulated-cpu") || cmd.Flags().Changed("simulated-memory") || cmd.Flags().Changed("simulated-zones") {
				return runSimulation(cmd, acfg, server, token, sim, log)
			}
			// An agent runs beside the workloads it serves: trade a little
			// GC work for a smaller heap unless GOGC says otherwise.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(agentGCPercent)
			}
			cfg := node.Config{Agent: acfg, Server: server, Token: token, Logger: log, TrimStartupMemory: true}
			fl.apply(&cfg)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := node.Start(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "berth agent is up: container instance %s in cluster %s\n", a.InstanceARN(), a.Cluster())
			return a.Run(ctx)
		},
	}
	fl.register(cmd, true)
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "server URL (default: the one in the join token, or the stored one)")
	f.StringVar(&token, "token", "", "join token from 'berth token create' (first start only)")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (default: ECS_LOGLEVEL)")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	sim.register(cmd)
	return cmd
}

// simFlags are `berth agent`'s simulation flags (docs/simulation.md).
type simFlags struct {
	count  int
	cpu    int
	memory int64
	zones  string
}

func (fl *simFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&fl.count, "simulated", 0, "simulate this many container instances instead of running tasks: they register, take tasks and report them RUNNING without containers (docs/simulation.md)")
	f.IntVar(&fl.cpu, "simulated-cpu", 0, "CPU units each simulated instance registers (default: this machine's, CPUs×1024)")
	f.Int64Var(&fl.memory, "simulated-memory", 0, "memory in MiB of each simulated instance, before ECS_RESERVED_MEMORY (default: this machine's)")
	f.StringVar(&fl.zones, "simulated-zones", "", "comma-separated ecs.availability-zone values, assigned round-robin (default: the region's a, b and c)")
}

// runSimulation runs `berth agent --simulated N`: it joins with the token
// (storing nothing), registers N instances and serves them until
// interrupted, then deregisters them.
func runSimulation(cmd *cobra.Command, acfg agentconfig.Config, server, token string, fl simFlags, log *slog.Logger) error {
	if fl.count <= 0 {
		return fmt.Errorf("--simulated must be a positive number of instances, got %d", fl.count)
	}
	if token == "" {
		return errors.New("--simulated needs --token: a simulation joins afresh on every start and stores nothing (create one with 'berth token create')")
	}
	zones, err := simulate.ParseZones(fl.zones)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	id, err := node.Join(ctx, token)
	if err != nil {
		return err
	}
	if server != "" {
		id.Endpoint = strings.TrimRight(server, "/")
	}
	fmt.Fprintf(cmd.OutOrStdout(), "berth agent: registering %d simulated container instances with %s\n", fl.count, id.Endpoint)
	s, err := simulate.Start(ctx, simulate.Config{
		Agent: acfg, Identity: id, Count: fl.count, CPU: fl.cpu, MemoryMiB: fl.memory, Zones: zones, Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "berth agent: %d simulated container instances in cluster %s; interrupt to deregister them\n", len(s.Instances()), s.Cluster())
	return s.Run(ctx)
}

// agentGCPercent is `berth agent`'s GOGC: its live heap is a few MiB, so
// collecting at 50% growth instead of 100% costs little CPU and keeps its
// resident memory within the agent's budget (docs/benchmarks.md).
const agentGCPercent = 50

// agentLogLevel maps ECS_LOGLEVEL to a slog level name.
func agentLogLevel(l agentconfig.LogLevel) string {
	switch l {
	case agentconfig.LogCrit, agentconfig.LogError:
		return "error"
	case agentconfig.LogWarn:
		return "warn"
	case agentconfig.LogDebug:
		return "debug"
	}
	return "info"
}

// runUp runs the control plane and, in the same process, an agent in
// cluster default (or ECS_CLUSTER) that enrolls without a join token.
func runUp(cmd *cobra.Command, cfg config.Server, fl agentFlags) error {
	acfg, err := agentconfig.FromEnv(os.Environ())
	if err != nil {
		return err
	}
	if os.Getenv("ECS_DATADIR") == "" {
		acfg.DataDir = filepath.Join(cfg.DataDir, "agent")
	}
	ctx, stop, log, srv, err := startServer(cmd, cfg)
	defer stop()
	if err != nil {
		return err
	}
	acct := srv.Account()
	ncfg := node.Config{Agent: acfg, Logger: log.With("component", "agent")}
	fl.apply(&ncfg)
	ncfg.Enroll = func(ctx context.Context, cluster string) (state.Identity, error) {
		creds, err := srv.LocalAgentCredentials(ctx, cluster)
		if err != nil {
			return state.Identity{}, err
		}
		return state.Identity{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
			AccountID: acct.ID, Region: acct.Region, Cluster: creds.Cluster, Endpoint: srv.Endpoint(), UserARN: creds.ARN,
			CAPin: srv.CAPin()}, nil
	}
	// The server's address (and whether it serves TLS) may change between
	// runs (--listen 127.0.0.1:0).
	ncfg.Server, ncfg.CAPin = srv.Endpoint(), srv.CAPin()
	serverDone := make(chan error, 1)
	go func() { serverDone <- srv.Run(ctx) }()
	a, err := node.Start(ctx, ncfg)
	if err != nil {
		stop()
		<-serverDone
		return fmt.Errorf("local agent: %w (pass --agent=false to run the control plane alone)", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "berth is up: account %s, region %s, API %s\nlocal agent: container instance %s in cluster %s\n%s\nPaste these lines into your shell:\n\n%s\n",
		acct.ID, acct.Region, srv.Endpoint(), a.InstanceARN(), a.Cluster(), tlsNote(srv), account.PasteLines(srv.Files(), srv.Endpoint()))
	agentErr := a.Run(ctx)
	stop()
	if err := <-serverDone; err != nil {
		return err
	}
	return agentErr
}
