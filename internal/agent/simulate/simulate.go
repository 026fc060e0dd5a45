// Package simulate runs many simulated container instances in one process
// for scale tests and capacity planning (`berth agent --simulated N`): each
// registers through the ECS API like a real agent, keeps its own agent
// channel open, and reports the tasks assigned to it PENDING, RUNNING and
// STOPPED without running any container. Nothing is stored: a simulation is
// throwaway, and it deregisters its instances when it stops.
package simulate

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/acsclient"
	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/agent/node"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Attribute names every simulated instance carries.
const (
	// IndexAttribute is the instance's number in the simulation, from 0.
	IndexAttribute = "berth.simulated-index"
	// ZoneAttribute cycles over Config.Zones.
	ZoneAttribute = "ecs.availability-zone"
)

// Defaults.
const (
	DefaultWorkers           = 32
	DefaultDeregisterTimeout = time.Minute
	DefaultStatsInterval     = 10 * time.Second
	minBackoff               = 250 * time.Millisecond
	maxBackoff               = 10 * time.Second
)

// API is the part of the ECS client a simulation calls.
type API interface {
	node.RegisterAPI
	DeregisterContainerInstance(ctx context.Context, in *ecs.DeregisterContainerInstanceInput, opts ...func(*ecs.Options)) (*ecs.DeregisterContainerInstanceOutput, error)
	SubmitTaskStateChange(ctx context.Context, in *ecs.SubmitTaskStateChangeInput, opts ...func(*ecs.Options)) (*ecs.SubmitTaskStateChangeOutput, error)
}

// Config is what a simulation runs with.
type Config struct {
	// Agent is the ecs.config and ECS_* environment a real agent would
	// read: cluster, reserved memory and ports, ECS_INSTANCE_ATTRIBUTES,
	// tags, dynamic port range, capabilities.
	Agent agentconfig.Config
	// Identity is the joined agent's (node.Join); all instances share it.
	Identity state.Identity
	// Count is how many instances to simulate.
	Count int
	// CPU overrides the CPU units each instance registers (0: the
	// machine's, CPUs×1024).
	CPU int
	// MemoryMiB overrides the machine's memory each instance registers
	// before ECS_RESERVED_MEMORY is taken off (0: the machine's).
	MemoryMiB int64
	// Zones are the values of ecs.availability-zone, assigned round-robin
	// (default: the region's a, b and c).
	Zones []string
	// Workers bounds the API calls in flight (registrations, reports,
	// deregistrations); it is also the connection pool's size.
	Workers int
	// DeregisterTimeout bounds the deregistration when Run ends.
	DeregisterTimeout time.Duration
	// StatsInterval is how often Run logs the figures (negative: never).
	StatsInterval time.Duration

	Logger *slog.Logger
	// Host replaces the machine's detected CPUs, memory and architecture
	// (tests).
	Host *node.Host
	// API replaces the ECS client built from Identity (tests).
	API API
	// ChannelOptions adjusts each instance's channel configuration (tests).
	ChannelOptions func(*acsclient.Config)
}

// Simulator is a running simulation.
type Simulator struct {
	cfg     Config
	api     API
	cluster string
	queue   chan *instance // instances with reports to send, each at most once
	stats   counters

	mu         sync.Mutex
	registered []string    // ARNs, to deregister
	insts      []*instance // connected, in order of registration

	ctx    context.Context // owns the channels and workers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Start registers cfg.Count instances (creating the cluster if it is
// missing, as agents do), opens their channels and starts the report
// workers. When it fails it deregisters what it registered. The caller
// must call Run or Close.
func Start(ctx context.Context, cfg Config) (*Simulator, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Simulator{cfg: cfg, api: cfg.API, cluster: node.RegistrationCluster(cfg.Agent, cfg.Identity), queue: make(chan *instance, cfg.Count)}
	chanCfg := acsclient.Config{
		Endpoint: cfg.Identity.Endpoint, Cluster: s.cluster, Region: cfg.Identity.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cfg.Identity.AccessKeyID, SecretAccessKey: cfg.Identity.SecretAccessKey, Source: "berth-simulated-agent"}, nil
		}),
	}
	if s.api == nil {
		client, tc, err := node.ServerClient(cfg.Identity, cfg.Workers)
		if err != nil {
			return nil, err
		}
		s.api, chanCfg.TLSConfig = client, tc
	}
	host := cfg.Host
	if host == nil {
		h, err := node.DetectHost()
		if err != nil {
			return nil, err
		}
		host = &h
	}
	hc := *host
	if cfg.MemoryMiB > 0 {
		hc.MemoryMiB = cfg.MemoryMiB
	}
	tmpl, err := node.RegistrationInput(cfg.Agent, hc, s.cluster, "")
	if err != nil {
		return nil, err
	}
	if cfg.CPU > 0 {
		for i, r := range tmpl.TotalResources {
			if aws.ToString(r.Name) == "CPU" {
				tmpl.TotalResources[i].IntegerValue = int32(cfg.CPU)
			}
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	ok := false
	defer func() {
		if !ok {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DeregisterTimeout)
			defer cancel()
			_ = s.Close(dctx)
		}
	}()

	first, last, reserved := portRange(cfg.Agent)
	insts := make([]*instance, cfg.Count)
	for i := range insts {
		insts[i] = newInstance(i, s.cluster, cfg.Zones[i%len(cfg.Zones)], newPortPool(first, last, reserved))
	}
	// The first registration creates a missing cluster; the others then
	// need not race to.
	if err := s.register(ctx, tmpl, insts[0]); err != nil {
		return nil, err
	}
	if err := s.connect(insts[0], chanCfg); err != nil {
		return nil, err
	}
	if _, err := each(ctx, cfg.Workers, insts[1:], true, func(ctx context.Context, in *instance) error {
		if err := s.register(ctx, tmpl, in); err != nil {
			return err
		}
		return s.connect(in, chanCfg)
	}); err != nil {
		return nil, err
	}
	for range cfg.Workers {
		s.wg.Go(s.work)
	}
	ok = true
	return s, nil
}

func (c *Config) defaults() error {
	if c.Count <= 0 {
		return errdefs.InvalidArgument(fmt.Sprintf("simulate: the number of instances must be positive, got %d", c.Count))
	}
	if c.CPU < 0 || c.CPU > math.MaxInt32 || c.MemoryMiB < 0 || c.MemoryMiB > math.MaxInt32 {
		return errdefs.InvalidArgument(fmt.Sprintf("simulate: CPU units (%d) and memory MiB (%d) must be between 0 (the machine's) and %d", c.CPU, c.MemoryMiB, math.MaxInt32))
	}
	if c.Identity.Endpoint == "" || c.Identity.Region == "" || c.Identity.AccessKeyID == "" {
		return errdefs.InvalidArgument("simulate: an identity (endpoint, region, credentials) is required: join with a token first")
	}
	if len(c.Zones) == 0 {
		c.Zones = DefaultZones(c.Identity.Region)
	}
	for _, z := range c.Zones {
		if err := validZone(z); err != nil {
			return err
		}
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.DeregisterTimeout <= 0 {
		c.DeregisterTimeout = DefaultDeregisterTimeout
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// DefaultZones are three zones of region: us-east-1a, us-east-1b, us-east-1c.
func DefaultZones(region string) []string {
	return []string{region + "a", region + "b", region + "c"}
}

// ParseZones reads a comma-separated list of zones ("" gives none: the
// default).
func ParseZones(s string) ([]string, error) {
	var out []string
	for z := range strings.SplitSeq(s, ",") {
		if z = strings.TrimSpace(z); z == "" {
			continue
		}
		if err := validZone(z); err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, nil
}

func validZone(z string) error {
	if len(z) == 0 || len(z) > 128 || strings.Trim(z, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") != "" {
		return errdefs.InvalidArgument(fmt.Sprintf("simulate: zone %q: use letters, digits, '-', '_', '.' and '/' (1 to 128), e.g. us-east-1a", z))
	}
	return nil
}

// portRange is the dynamic host port range and the reserved ports that
// the instances' fake port pools use.
func portRange(cfg agentconfig.Config) (first, last uint16, reserved map[uint16]bool) {
	r := hostports.Range{First: cfg.DynamicHostPortRange.First, Last: cfg.DynamicHostPortRange.Last}
	if cfg.DynamicHostPortRange.IsZero() {
		r = hostports.DefaultRange()
	}
	reserved = map[uint16]bool{}
	for _, p := range cfg.ReservedPorts {
		reserved[p] = true
	}
	for _, p := range cfg.ReservedPortsUDP {
		reserved[p] = true
	}
	return r.First, r.Last, reserved
}

// register registers one instance, retrying with back-off while the server
// is unreachable, overloaded or throttling.
func (s *Simulator) register(ctx context.Context, tmpl *ecs.RegisterContainerInstanceInput, in *instance) error {
	req := *tmpl
	req.Attributes = make([]types.Attribute, 0, len(tmpl.Attributes)+2)
	for _, a := range tmpl.Attributes {
		if n := aws.ToString(a.Name); n != IndexAttribute && n != ZoneAttribute {
			req.Attributes = append(req.Attributes, a)
		}
	}
	req.Attributes = append(req.Attributes,
		types.Attribute{Name: aws.String(IndexAttribute), Value: aws.String(strconv.Itoa(in.index))},
		types.Attribute{Name: aws.String(ZoneAttribute), Value: aws.String(in.zone)})
	var arn string
	err := retry(ctx, &s.stats, func() error {
		var err error
		arn, err = node.Register(ctx, s.api, &req)
		return err
	})
	if err != nil {
		return fmt.Errorf("simulated instance %d: %w", in.index, err)
	}
	in.arn = arn
	s.mu.Lock()
	s.registered = append(s.registered, arn)
	s.mu.Unlock()
	return nil
}
