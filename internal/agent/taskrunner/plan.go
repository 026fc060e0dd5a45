package taskrunner

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agentproto"
)

// Labels berth puts on the containers it creates, to find them again
// after a restart (Runtime.List) and to tell its own from others.
const (
	LabelManaged       = "berth.managed" // value "true"
	LabelTaskARN       = "berth.task-arn"
	LabelContainerName = "berth.container-name"
)

// The labels the ECS agent sets on every container
// (agent-contract.md §6).
const (
	labelECSCluster   = "com.amazonaws.ecs.cluster"
	labelECSContainer = "com.amazonaws.ecs.container-name"
	labelECSTask      = "com.amazonaws.ecs.task-arn"
	labelECSFamily    = "com.amazonaws.ecs.task-definition-family"
	labelECSVersion   = "com.amazonaws.ecs.task-definition-version"
)

// ECS health-check defaults (ContainerDefinition.healthCheck).
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 5 * time.Second
	defaultHealthRetries  = 3
)

// failure is why a task cannot start: the container it concerns (may be
// empty) and the reason ECS shows, e.g. "CannotPullContainerError: …".
type failure struct {
	container string
	reason    string
}

func (f *failure) Error() string { return f.reason }

func failf(container, format string, a ...any) *failure {
	return &failure{container: container, reason: fmt.Sprintf(format, a...)}
}

// taskPlan is what a task definition with its overrides asks for, checked
// once. It depends on nothing but the desired state, so a task that was
// planned once is planned the same way after a restart.
type taskPlan struct {
	mode       network.Mode
	containers []*ctrPlan // in task-definition order, as taskRec.Containers
	order      []int      // start order (dependencies first)
	byName     map[string]int
}

type ctrPlan struct {
	name         string
	def          types.ContainerDefinition
	override     *types.ContainerOverride
	essential    bool
	image        string
	ports        []portPlan
	mounts       []runtime.Mount
	volumeDirs   []string // host directories to create before the container
	deps         []dep
	health       *healthPlan
	stopTimeout  time.Duration
	startTimeout time.Duration
	cpu          uint64
	memory       int64
	reservation  int64
}

type portPlan struct {
	containerPort uint16
	hostPort      uint16 // 0 = dynamic
	proto         string
}

type dep struct {
	name      string
	index     int
	condition types.ContainerCondition
}

type healthPlan struct {
	argv        []string
	interval    time.Duration
	timeout     time.Duration
	retries     int
	startPeriod time.Duration
}

// plan checks a task's desired state and works out its containers.
func (e *Engine) plan(t agentproto.Task) (*taskPlan, *failure) {
	td := t.TaskDefinition
	p := &taskPlan{byName: map[string]int{}}
	switch mode := td.NetworkMode; mode {
	case "", types.NetworkModeBridge:
		p.mode = network.ModeBridge
	case types.NetworkModeHost:
		p.mode = network.ModeHost
	case types.NetworkModeNone:
		p.mode = network.ModeNone
	default:
		return nil, failf("", "ResourceInitializationError: network mode %s is not supported by this agent", mode)
	}
	if len(td.ContainerDefinitions) == 0 {
		return nil, failf("", "CannotCreateContainerError: the task definition has no containers")
	}
	for i, def := range td.ContainerDefinitions {
		name := aws.ToString(def.Name)
		if name == "" {
			return nil, failf("", "CannotCreateContainerError: container %d has no name", i)
		}
		if _, dup := p.byName[name]; dup {
			return nil, failf(name, "CannotCreateContainerError: container name %q is used twice", name)
		}
		p.byName[name] = i
	}
	vols, f := e.volumes(t)
	if f != nil {
		return nil, f
	}
	for _, def := range td.ContainerDefinitions {
		c, f := e.planContainer(t, p, def, vols)
		if f != nil {
			return nil, f
		}
		p.containers = append(p.containers, c)
	}
	for _, c := range p.containers {
		m, f := p.mountsOf(c, map[string]bool{})
		if f != nil {
			return nil, f
		}
		c.mounts = m
	}
	order, f := p.startOrder()
	if f != nil {
		return nil, f
	}
	p.order = order
	return p, nil
}

// volume is where a task volume lives on the host.
type volume struct {
	path string
	// create says the directory is the agent's to make (task-scoped and
	// shared volumes; a missing host sourcePath is created too, as Docker
	// does for bind sources).
	create bool
}

func (e *Engine) volumes(t agentproto.Task) (map[string]volume, *failure) {
	out := map[string]volume{}
	for _, v := range t.TaskDefinition.Volumes {
		name := aws.ToString(v.Name)
		if name == "" {
			return nil, failf("", "ResourceInitializationError: a volume has no name")
		}
		switch {
		case v.EfsVolumeConfiguration != nil, v.FsxWindowsFileServerVolumeConfiguration != nil, v.S3filesVolumeConfiguration != nil:
			return nil, failf("", "ResourceInitializationError: volume %s: only host, task-scoped and docker volumes are supported by this agent", name)
		case v.Host != nil && aws.ToString(v.Host.SourcePath) != "":
			src := aws.ToString(v.Host.SourcePath)
			if !strings.HasPrefix(src, "/") {
				return nil, failf("", "ResourceInitializationError: volume %s: host sourcePath %q is not absolute", name, src)
			}
			out[name] = volume{path: src, create: true}
		case v.DockerVolumeConfiguration != nil && v.DockerVolumeConfiguration.Scope == types.ScopeShared:
			out[name] = volume{path: sharedVolumeDir(e.cfg.DataDir, name), create: true}
		default:
			out[name] = volume{path: volumeDir(e.cfg.DataDir, t.TaskARN, name), create: true}
		}
	}
	return out, nil
}

func (e *Engine) planContainer(t agentproto.Task, p *taskPlan, def types.ContainerDefinition, vols map[string]volume) (*ctrPlan, *failure) {
	name := aws.ToString(def.Name)
	c := &ctrPlan{
		name: name, def: def, essential: def.Essential == nil || *def.Essential,
		image: aws.ToString(def.Image), cpu: uint64(max(def.Cpu, 0)),
		memory: int64(aws.ToInt32(def.Memory)), reservation: int64(aws.ToInt32(def.MemoryReservation)),
		stopTimeout: e.cfg.StopTimeout, startTimeout: e.cfg.StartTimeout,
	}
	if t.Overrides != nil {
		for i := range t.Overrides.ContainerOverrides {
			if o := &t.Overrides.ContainerOverrides[i]; aws.ToString(o.Name) == name {
				c.override = o
			}
		}
	}
	if o := c.override; o != nil {
		if o.Cpu != nil {
			c.cpu = uint64(max(*o.Cpu, 0))
		}
		if o.Memory != nil {
			c.memory = int64(*o.Memory)
		}
		if o.MemoryReservation != nil {
			c.reservation = int64(*o.MemoryReservation)
		}
	}
	if c.image == "" {
		return nil, failf(name, "CannotPullContainerError: container %s has no image", name)
	}
	if len(def.Secrets) > 0 || def.RepositoryCredentials != nil {
		return nil, failf(name, "ResourceInitializationError: unable to pull secrets or registry auth: container %s: secrets and repositoryCredentials are not supported by this agent", name)
	}
	if s := aws.ToInt32(def.StopTimeout); s > 0 {
		c.stopTimeout = time.Duration(s) * time.Second
	}
	if s := aws.ToInt32(def.StartTimeout); s > 0 {
		c.startTimeout = time.Duration(s) * time.Second
	}
	for _, pm := range def.PortMappings {
		if pm.ContainerPortRange != nil {
			return nil, failf(name, "CannotCreateContainerError: container %s: containerPortRange is not supported by this agent", name)
		}
		cp := aws.ToInt32(pm.ContainerPort)
		hp := aws.ToInt32(pm.HostPort)
		if cp <= 0 || cp > math.MaxUint16 || hp < 0 || hp > math.MaxUint16 {
			return nil, failf(name, "CannotCreateContainerError: container %s: port mapping %d:%d is out of range", name, hp, cp)
		}
		proto := string(pm.Protocol)
		if proto == "" {
			proto = hostports.TCP
		}
		if proto != hostports.TCP && proto != hostports.UDP {
			return nil, failf(name, "CannotCreateContainerError: container %s: protocol %q", name, proto)
		}
		switch p.mode {
		case network.ModeHost:
			hp = cp // host mode: the container's port is the host's
		case network.ModeNone:
			continue // nothing to publish
		}
		c.ports = append(c.ports, portPlan{containerPort: uint16(cp), hostPort: uint16(hp), proto: proto})
	}
	for _, mp := range def.MountPoints {
		src, dst := aws.ToString(mp.SourceVolume), aws.ToString(mp.ContainerPath)
		v, ok := vols[src]
		if !ok {
			return nil, failf(name, "CannotCreateContainerError: container %s: mount point names unknown volume %q", name, src)
		}
		if !strings.HasPrefix(dst, "/") {
			return nil, failf(name, "CannotCreateContainerError: container %s: containerPath %q is not absolute", name, dst)
		}
		c.mounts = append(c.mounts, runtime.Mount{Source: v.path, Destination: dst, ReadOnly: aws.ToBool(mp.ReadOnly)})
		if v.create {
			c.volumeDirs = append(c.volumeDirs, v.path)
		}
	}
	for _, d := range def.DependsOn {
		dn := aws.ToString(d.ContainerName)
		i, ok := p.byName[dn]
		if !ok || dn == name {
			return nil, failf(name, "CannotCreateContainerError: container %s depends on unknown container %q", name, dn)
		}
		switch d.Condition {
		case types.ContainerConditionStart, types.ContainerConditionComplete, types.ContainerConditionSuccess:
		case types.ContainerConditionHealthy:
			if t.TaskDefinition.ContainerDefinitions[i].HealthCheck == nil {
				return nil, failf(name, "CannotCreateContainerError: container %s waits for %s to be HEALTHY, but %s has no health check", name, dn, dn)
			}
		default:
			return nil, failf(name, "CannotCreateContainerError: container %s: dependency condition %q", name, d.Condition)
		}
		c.deps = append(c.deps, dep{name: dn, index: i, condition: d.Condition})
	}
	if hc := def.HealthCheck; hc != nil {
		h, f := healthOf(name, hc)
		if f != nil {
			return nil, f
		}
		c.health = h
	}
	return c, nil
}

func healthOf(name string, hc *types.HealthCheck) (*healthPlan, *failure) {
	h := &healthPlan{interval: defaultHealthInterval, timeout: defaultHealthTimeout, retries: defaultHealthRetries}
	if len(hc.Command) == 0 {
		return nil, failf(name, "CannotCreateContainerError: container %s: health check without a command", name)
	}
	switch hc.Command[0] {
	case "CMD-SHELL":
		h.argv = []string{"/bin/sh", "-c", strings.Join(hc.Command[1:], " ")}
	case "CMD":
		h.argv = slices.Clone(hc.Command[1:])
	case "NONE":
		return nil, nil
	default:
		// Docker's API takes a bare command as CMD.
		h.argv = slices.Clone(hc.Command)
	}
	if len(h.argv) == 0 {
		return nil, failf(name, "CannotCreateContainerError: container %s: health check without a command", name)
	}
	if v := aws.ToInt32(hc.Interval); v > 0 {
		h.interval = time.Duration(v) * time.Second
	}
	if v := aws.ToInt32(hc.Timeout); v > 0 {
		h.timeout = time.Duration(v) * time.Second
	}
	if hc.Retries != nil {
		h.retries = max(int(*hc.Retries), 1)
	}
	if v := aws.ToInt32(hc.StartPeriod); v > 0 {
		h.startPeriod = time.Duration(v) * time.Second
	}
	return h, nil
}

// mountsOf is a container's own mounts followed by those of the containers
// its volumesFrom names (theirs recursively, as Docker copies a source's
// mounts including the ones it got from others).
func (p *taskPlan) mountsOf(c *ctrPlan, visiting map[string]bool) ([]runtime.Mount, *failure) {
	if visiting[c.name] {
		return nil, failf(c.name, "CannotCreateContainerError: volumesFrom of container %s forms a cycle", c.name)
	}
	visiting[c.name] = true
	defer delete(visiting, c.name)
	out := slices.Clone(c.mounts)
	for _, vf := range c.def.VolumesFrom {
		src := aws.ToString(vf.SourceContainer)
		i, ok := p.byName[src]
		if !ok {
			return nil, failf(c.name, "CannotCreateContainerError: container %s: volumesFrom names unknown container %q", c.name, src)
		}
		from, f := p.mountsOf(p.containers[i], visiting)
		if f != nil {
			return nil, f
		}
		for _, m := range from {
			if aws.ToBool(vf.ReadOnly) {
				m.ReadOnly = true
			}
			if !slices.ContainsFunc(out, func(o runtime.Mount) bool { return o.Destination == m.Destination }) {
				out = append(out, m)
			}
		}
		c.volumeDirs = append(c.volumeDirs, p.containers[i].volumeDirs...)
	}
	return out, nil
}

// startOrder sorts the containers so that each comes after the containers
// it depends on, keeping the task definition's order otherwise.
func (p *taskPlan) startOrder() ([]int, *failure) {
	n := len(p.containers)
	placed := make([]bool, n)
	var order []int
	for len(order) < n {
		progress := false
		for i, c := range p.containers {
			if placed[i] {
				continue
			}
			ready := true
			for _, d := range c.deps {
				if !placed[d.index] {
					ready = false
					break
				}
			}
			if ready {
				placed[i] = true
				order = append(order, i)
				progress = true
			}
		}
		if !progress {
			var names []string
			for i, c := range p.containers {
				if !placed[i] {
					names = append(names, c.name)
				}
			}
			return nil, failf(names[0], "CannotCreateContainerError: the dependsOn of containers %s form a cycle", strings.Join(names, ", "))
		}
	}
	return order, nil
}

// environment is a container's environment before the injected variables:
// its environment files, then its environment, then the override's files
// and environment, each later source winning (ECS: environment beats
// environmentFiles; overrides beat the definition).
func environment(c *ctrPlan) ([]string, *failure) {
	var env []string
	files := slices.Clone(c.def.EnvironmentFiles)
	add := func(kv []types.KeyValuePair) {
		for _, p := range kv {
			if k := aws.ToString(p.Name); k != "" {
				env = runtime.MergeEnv(env, []string{k + "=" + aws.ToString(p.Value)})
			}
		}
	}
	read := func(fs []types.EnvironmentFile) *failure {
		for _, f := range fs {
			vars, err := readEnvFile(aws.ToString(f.Value))
			if err != nil {
				return failf(c.name, "ResourceInitializationError: failed to read environment files of container %s: %v", c.name, err)
			}
			env = runtime.MergeEnv(env, vars)
		}
		return nil
	}
	if f := read(files); f != nil {
		return nil, f
	}
	add(c.def.Environment)
	if o := c.override; o != nil {
		if f := read(o.EnvironmentFiles); f != nil {
			return nil, f
		}
		add(o.Environment)
	}
	return env, nil
}

// maxEnvFile bounds one environment file, as ECS does (at most 40 KiB per
// variable; a file of a few hundred variables stays far below this).
const maxEnvFile = 1 << 20

// readEnvFile reads an environment file from the host. ECS fetches these
// from S3; berth reads host paths ("/path" or "file:///path") instead and
// refuses anything else.
func readEnvFile(ref string) ([]string, error) {
	path, ok := strings.CutPrefix(ref, "file://")
	if !ok && !strings.HasPrefix(ref, "/") {
		return nil, fmt.Errorf("%q: environment files from S3 are not supported by this agent; give an absolute host path", ref)
	}
	if !ok {
		path = ref
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%q: not an absolute path", ref)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxEnvFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxEnvFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseEnvFile(data)
}

// parseEnvFile reads the format of ECS environment files: VARIABLE=VALUE
// per line, lines starting with # and blank lines ignored, the value taken
// as is (no quotes or escapes).
func parseEnvFile(data []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxEnvFile)
	for n := 1; sc.Scan(); n++ {
		// Every trailing CR goes (CRLF files, and "\r\r\n" from a
		// double conversion), so an accepted value never ends in one.
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("line %d: want VARIABLE=VALUE", n)
		}
		out = runtime.MergeEnv(out, []string{k + "=" + v})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// spec builds the runtime spec of a container in the network namespace at
// netnsPath (its recorded attachment's, or one prepared while CNI wires it).
func (e *Engine) spec(t agentproto.Task, p *taskPlan, c *ctrPlan, rec *ctrRec, netnsPath string) (runtime.ContainerSpec, *failure) {
	def := c.def
	if aws.ToBool(def.Privileged) && e.cfg.PrivilegedDisabled {
		return runtime.ContainerSpec{}, failf(c.name, "CannotCreateContainerError: container %s: privileged containers are disabled on this container instance (ECS_DISABLE_PRIVILEGED)", c.name)
	}
	env, f := environment(c)
	if f != nil {
		return runtime.ContainerSpec{}, f
	}
	if e.cfg.MetadataEnv != nil {
		env = runtime.MergeEnv(env, e.cfg.MetadataEnv(rec.EndpointID))
	}
	td := t.TaskDefinition
	labels := map[string]string{}
	for k, v := range def.DockerLabels {
		// berth's own labels cannot be set (or faked) by a task.
		if !strings.HasPrefix(k, "berth.") {
			labels[k] = v
		}
	}
	labels[labelECSCluster] = e.cfg.Cluster
	labels[labelECSContainer] = c.name
	labels[labelECSTask] = t.TaskARN
	labels[labelECSFamily] = aws.ToString(td.Family)
	labels[labelECSVersion] = fmt.Sprint(td.Revision)
	labels[LabelManaged] = "true"
	labels[LabelTaskARN] = t.TaskARN
	labels[LabelContainerName] = c.name

	s := runtime.ContainerSpec{
		ID: rec.RuntimeID, Image: c.image, Labels: labels, Env: env,
		Entrypoint: def.EntryPoint, Command: def.Command,
		WorkingDir: aws.ToString(def.WorkingDirectory), User: aws.ToString(def.User),
		CPUShares: c.cpu, MemoryLimitMiB: c.memory, MemoryReservationMiB: c.reservation,
		ReadonlyRootfs: aws.ToBool(def.ReadonlyRootFilesystem), Privileged: aws.ToBool(def.Privileged),
		Mounts: slices.Clone(c.mounts), LogPath: LogPath(e.cfg.DataDir, t.TaskARN, c.name),
		StopTimeout: c.stopTimeout, PidsLimit: e.cfg.PidsLimit,
	}
	if o := c.override; o != nil && o.Command != nil {
		s.Command = o.Command
	}
	s.NetNSPath = netnsPath
	if s.NetNSPath != runtime.NetNSHost {
		s.Hostname = aws.ToString(def.Hostname)
	}
	for _, u := range def.Ulimits {
		s.Ulimits = append(s.Ulimits, runtime.Ulimit{Name: string(u.Name), Soft: rlimit(u.SoftLimit), Hard: rlimit(u.HardLimit)})
	}
	if lp := def.LinuxParameters; lp != nil {
		if lp.Capabilities != nil {
			s.CapAdd, s.CapDrop = lp.Capabilities.Add, lp.Capabilities.Drop
		}
		s.ShmSizeMiB = int64(aws.ToInt32(lp.SharedMemorySize))
		// initProcessEnabled is accepted and ignored: no init is bundled yet.
	}
	for _, o := range def.DockerSecurityOptions {
		if o == "no-new-privileges:false" {
			s.AllowNewPrivileges = true
		}
	}
	if err := s.Validate(); err != nil {
		return runtime.ContainerSpec{}, failf(c.name, "CannotCreateContainerError: %v", err)
	}
	return s, nil
}

// rlimit maps an ECS ulimit value; negative means unlimited, as in Docker.
func rlimit(v int32) uint64 {
	if v < 0 {
		return math.MaxUint64
	}
	return uint64(v)
}
