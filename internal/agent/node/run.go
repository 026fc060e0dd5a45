package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/runtime/containerd"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/agent/taskmeta"
	"github.com/berth-dev/berth/internal/agent/taskrunner"
	"github.com/berth-dev/berth/internal/agentproto"
)

// Agent is a started node agent.
type Agent struct {
	cfg  Config
	db   *state.DB
	id   state.Identity
	inst state.Instance

	rt     runtime.Runtime
	net    *network.CNI
	engine *taskrunner.Engine
	meta   *taskmeta.Server
	acs    *acsclient.Client

	closeOnce sync.Once
	closers   []func() error // in reverse order of opening
}

// InstanceARN is the container instance the agent registered.
func (a *Agent) InstanceARN() string { return a.inst.ContainerInstanceARN }

// Cluster is the cluster the agent registered in.
func (a *Agent) Cluster() string { return a.inst.Cluster }

// Start opens the agent's state, joins or enrolls when it has no identity,
// connects to containerd, prepares the network and registers the instance.
// The caller must call Run (or Close).
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	cfg.defaults()
	for _, v := range cfg.Agent.Ignored {
		cfg.Logger.Warn("ignoring an ECS agent setting berth does not implement", "variable", v)
	}
	for _, w := range cfg.Agent.Warnings {
		cfg.Logger.Warn(w)
	}
	a := &Agent{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	var err error
	if a.db, err = openState(cfg.Agent.DataDir); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.db.Close)
	if a.id, err = identity(ctx, cfg, a.db); err != nil {
		return nil, err
	}
	rt, err := containerd.New(ctx, containerd.Options{Address: cfg.ContainerdAddress, Namespace: cfg.ContainerdNamespace})
	if err != nil {
		return nil, err
	}
	a.rt = rt
	a.closers = append(a.closers, rt.Close)
	if a.net, err = network.NewCNI(network.Config{
		BridgeName: cfg.Bridge, Subnet: cfg.Subnet,
		NetNSDir: filepath.Join("/run/berth", cfg.ContainerdNamespace, "netns"),
		DataDir:  filepath.Join(cfg.Agent.DataDir, "network"),
	}); err != nil {
		return nil, err
	}
	if err := network.EnsureEndpointAddress(ctx); err != nil {
		return nil, fmt.Errorf("task endpoint address %s: %w", network.EndpointAddress, err)
	}
	hc, tlsConf, err := httpClient(a.id.Endpoint, a.id.CAPin, 0)
	if err != nil {
		return nil, err
	}
	client := newECSClient(a.id, hc)
	tokens, err := newRegistryTokens(a.id, hc, cfg.Clock)
	if err != nil {
		return nil, err
	}
	if a.inst, err = register(ctx, cfg, a.db, client, a.id); err != nil {
		return nil, err
	}
	cfg.Logger.Info("registered", "container_instance", a.inst.ContainerInstanceARN, "cluster", a.inst.Cluster, "server", a.id.Endpoint)

	pull, err := runtime.ParsePullBehavior(string(cfg.Agent.ImagePullBehavior))
	if err != nil {
		return nil, err
	}
	ports, err := hostports.New(hostports.Config{
		DynamicRange: hostports.Range{First: cfg.Agent.DynamicHostPortRange.First, Last: cfg.Agent.DynamicHostPortRange.Last},
		ReservedTCP:  cfg.Agent.ReservedPorts, ReservedUDP: cfg.Agent.ReservedPortsUDP,
		Store: a.db,
	})
	if err != nil {
		return nil, err
	}
	// The channel client exists before the engine so the engine can send
	// health through it; it runs only in Run.
	a.acs, err = acsclient.New(acsclient.Config{
		Endpoint: a.id.Endpoint, Cluster: a.inst.Cluster, ContainerInstance: a.inst.ContainerInstanceARN, Region: a.id.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: a.id.AccessKeyID, SecretAccessKey: a.id.SecretAccessKey, Source: "berth-agent"}, nil
		}),
		Handler: func(ctx context.Context, tasks []agentproto.Task, full bool) error {
			return a.engine.Apply(ctx, tasks, full)
		},
		OnConnect: func(ctx context.Context) { a.engine.ResendHealth(ctx) },
		OnError:   func(err error) { cfg.Logger.Warn("agent channel", "error", err) },
		TLSConfig: tlsConf,
		Logger:    cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	metaBase := "http://" + cfg.MetadataListen
	if host, port, _ := strings.Cut(cfg.MetadataListen, ":"); port == "80" {
		metaBase = "http://" + host
	}
	a.engine, err = taskrunner.New(taskrunner.Config{
		Cluster: a.inst.Cluster, DataDir: absDir(cfg.Agent.DataDir),
		Runtime: a.rt, Network: a.net, Ports: ports, State: a.db,
		Reporter: reporter{client: client}, Health: healthSender{client: a.acs},
		MetadataEnv: func(endpointID string) []string { return taskmeta.Env(metaBase, endpointID) },
		Pull:        pullOptions(pull, cfg.Agent, tokens, a.id.Endpoint, tlsConf),
		StopTimeout: cfg.Agent.ContainerStopTimeout, CleanupWait: cfg.Agent.TaskCleanupWaitDuration,
		PrivilegedDisabled: cfg.Agent.PrivilegedDisabled, PidsLimit: int64(cfg.Agent.TaskPidsLimit),
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if err := a.engine.Start(ctx); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.engine.Close)
	a.meta = taskmeta.NewServer(cfg.MetadataListen, taskmeta.Handler(metadataSource{engine: a.engine}, a.rt))
	if err := a.meta.Start(ctx); err != nil {
		return nil, fmt.Errorf("task metadata endpoint on %s: %w", cfg.MetadataListen, err)
	}
	a.closers = append(a.closers, a.meta.Close)
	ok = true
	return a, nil
}

// Run runs the agent channel until ctx ends, then closes the agent.
// Containers keep running: a restarted agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	defer a.Close()
	if a.cfg.TrimStartupMemory {
		releaseStartupPages()
	}
	return a.acs.Run(ctx)
}

// registryAuth answers the runtime's credential lookups from
// ECS_ENGINE_AUTH_DATA.
func registryAuth(cfg agentconfig.Config) func(host string) (string, string, error) {
	if len(cfg.EngineAuth) == 0 {
		return nil
	}
	return func(host string) (string, string, error) {
		a, ok := cfg.EngineAuth[agentconfig.RegistryHost(host)]
		if !ok {
			return "", "", nil
		}
		return a.Username, a.Password, nil
	}
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// Close releases what Start opened.
func (a *Agent) Close() error {
	var errs []error
	a.closeOnce.Do(func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			errs = append(errs, a.closers[i]())
		}
	})
	return errors.Join(errs...)
}
