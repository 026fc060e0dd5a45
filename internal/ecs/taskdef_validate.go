package ecs

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Health-check bounds and the defaults ECS echoes back (seconds, count).
const (
	healthCheckDefaultInterval = 30
	healthCheckDefaultTimeout  = 5
	healthCheckDefaultRetries  = 3
)

// Bounds of the container restart policy (seconds, count).
const (
	restartAttemptPeriodMin = 60
	restartAttemptPeriodMax = 1800
	restartIgnoredCodesMax  = 50
)

// portNamePattern: Service Connect port names, up to 64 lowercase letters,
// digits, underscores and hyphens, not starting with a hyphen.
var portNamePattern = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,63}$`)

// taskDefError is a ClientException: ECS reports task-definition problems
// that way.
func taskDefError(format string, args ...any) error {
	return ClientError(fmt.Sprintf(format, args...))
}

// containerSettingError is ECS's "Invalid setting for container 'x'." form.
func containerSettingError(name, format string, args ...any) error {
	return ClientError(fmt.Sprintf("Invalid setting for container '%s'. ", name) + fmt.Sprintf(format, args...))
}

// containerFieldError is ECS's "Invalid 'field' setting for container 'x'."
// form, with optional detail.
func containerFieldError(field, name, detail string) error {
	msg := fmt.Sprintf("Invalid '%s' setting for container '%s'.", field, name)
	if detail != "" {
		msg += " " + detail
	}
	return ClientError(msg)
}

func tdEnumValid[T ~string](v T, values []T) bool { return slices.Contains(values, v) }

func tdEnumList[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func tdValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// validateTaskDefinition checks td the way RegisterTaskDefinition does and
// returns the derived view, or the first problem.
func validateTaskDefinition(td *types.TaskDefinition) (*taskDefView, error) {
	v := &taskDefView{
		td:        td,
		names:     map[string]int{},
		volumes:   map[string]*types.Volume{},
		hostPorts: map[string]bool{},
		portNames: map[string]bool{},
	}
	for _, check := range []func() error{
		v.checkFamily,
		v.checkContainerList,
		v.checkTaskEnums,
		v.checkTaskSize,
		v.checkVolumes,
		v.checkContainerNames,
		v.checkContainers,
		v.checkEssential,
		v.checkDependencies,
		v.checkTaskCPUSum,
		v.checkPlacementConstraints,
		v.checkEphemeralStorage,
		v.checkProxyConfiguration,
		v.checkInferenceAccelerators,
		v.checkRequiredCompatibilities,
	} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *taskDefView) checkFamily() error {
	f := tdValue(v.td.Family)
	if f == "" {
		return taskDefError("Family can not be blank.")
	}
	if !taskDefNamePattern.MatchString(f) {
		return taskDefError("Family contains invalid characters.")
	}
	return nil
}

func (v *taskDefView) checkContainerList() error {
	n := len(v.td.ContainerDefinitions)
	if n == 0 {
		return taskDefError("Container list cannot be empty.")
	}
	if n > taskDefMaxContainers {
		return taskDefError("Too many containers.")
	}
	return nil
}

func (v *taskDefView) checkTaskEnums() error {
	td := v.td
	if td.NetworkMode != "" && !tdEnumValid(td.NetworkMode, types.NetworkMode("").Values()) {
		return taskDefError("Invalid networkMode '%s'. Valid values are %s.", td.NetworkMode, tdEnumList(types.NetworkMode("").Values()))
	}
	for _, c := range td.RequiresCompatibilities {
		if !tdEnumValid(c, types.Compatibility("").Values()) {
			return taskDefError("Invalid requiresCompatibilities value '%s'. Valid values are %s.", c, tdEnumList(types.Compatibility("").Values()))
		}
	}
	if td.PidMode != "" && !tdEnumValid(td.PidMode, types.PidMode("").Values()) {
		return taskDefError("Invalid pidMode '%s'. Valid values are %s.", td.PidMode, tdEnumList(types.PidMode("").Values()))
	}
	if td.IpcMode != "" && !tdEnumValid(td.IpcMode, types.IpcMode("").Values()) {
		return taskDefError("Invalid ipcMode '%s'. Valid values are %s.", td.IpcMode, tdEnumList(types.IpcMode("").Values()))
	}
	if rp := td.RuntimePlatform; rp != nil {
		if rp.CpuArchitecture != "" && !tdEnumValid(rp.CpuArchitecture, types.CPUArchitecture("").Values()) {
			return taskDefError("Invalid runtimePlatform.cpuArchitecture '%s'. Valid values are %s.", rp.CpuArchitecture, tdEnumList(types.CPUArchitecture("").Values()))
		}
		if rp.OperatingSystemFamily != "" && !tdEnumValid(rp.OperatingSystemFamily, types.OSFamily("").Values()) {
			return taskDefError("Invalid runtimePlatform.operatingSystemFamily '%s'. Valid values are %s.", rp.OperatingSystemFamily, tdEnumList(types.OSFamily("").Values()))
		}
	}
	return nil
}

func (v *taskDefView) checkTaskSize() error {
	const guide = " For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
	if v.td.Cpu != nil {
		units, ok := parseTaskCPU(*v.td.Cpu)
		if !ok {
			return taskDefError("Invalid 'cpu' setting for task." + guide)
		}
		v.cpu = units
	}
	if v.td.Memory != nil {
		mib, ok := parseTaskMemory(*v.td.Memory)
		if !ok {
			return taskDefError("Invalid 'memory' setting for task." + guide)
		}
		v.memory = mib
	}
	return nil
}

func (v *taskDefView) checkVolumes() error {
	for i := range v.td.Volumes {
		vol := &v.td.Volumes[i]
		name := tdValue(vol.Name)
		if name == "" {
			return taskDefError("Volume.name should not be null or empty.")
		}
		if !taskDefNamePattern.MatchString(name) {
			return taskDefError("Invalid volume name '%s'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.", name)
		}
		if v.volumes[name] != nil {
			return taskDefError("Volume names must be unique. Duplicate volume name: '%s'.", name)
		}
		v.volumes[name] = vol
		kinds := 0
		for _, set := range []bool{vol.Host != nil, vol.DockerVolumeConfiguration != nil, vol.EfsVolumeConfiguration != nil,
			vol.FsxWindowsFileServerVolumeConfiguration != nil, vol.S3filesVolumeConfiguration != nil} {
			if set {
				kinds++
			}
		}
		if kinds > 1 {
			return taskDefError("Invalid volume '%s'. Specify at most one of host, dockerVolumeConfiguration, efsVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration and s3filesVolumeConfiguration.", name)
		}
		if dv := vol.DockerVolumeConfiguration; dv != nil {
			if dv.Scope != "" && !tdEnumValid(dv.Scope, types.Scope("").Values()) {
				return taskDefError("Invalid volume '%s'. Invalid dockerVolumeConfiguration.scope '%s'. Valid values are %s.", name, dv.Scope, tdEnumList(types.Scope("").Values()))
			}
			if tdValue(dv.Autoprovision) && dv.Scope != types.ScopeShared {
				return taskDefError("Invalid volume '%s'. Autoprovision can be true only when the scope is shared.", name)
			}
		}
		if efs := vol.EfsVolumeConfiguration; efs != nil {
			if tdValue(efs.FileSystemId) == "" {
				return taskDefError("Invalid volume '%s'. efsVolumeConfiguration.fileSystemId should not be null or empty.", name)
			}
			if efs.TransitEncryption != "" && !tdEnumValid(efs.TransitEncryption, types.EFSTransitEncryption("").Values()) {
				return taskDefError("Invalid volume '%s'. Invalid efsVolumeConfiguration.transitEncryption '%s'.", name, efs.TransitEncryption)
			}
		}
		if fsx := vol.FsxWindowsFileServerVolumeConfiguration; fsx != nil && tdValue(fsx.FileSystemId) == "" {
			return taskDefError("Invalid volume '%s'. fsxWindowsFileServerVolumeConfiguration.fileSystemId should not be null or empty.", name)
		}
	}
	return nil
}

func (v *taskDefView) checkContainerNames() error {
	for i, c := range v.td.ContainerDefinitions {
		name := tdValue(c.Name)
		if name == "" {
			return taskDefError("Container.name should not be null or empty.")
		}
		if !taskDefNamePattern.MatchString(name) {
			return taskDefError("Container.name contains invalid characters.")
		}
		if _, dup := v.names[name]; dup {
			return taskDefError("Container names must be unique. Duplicate container name: '%s'.", name)
		}
		v.names[name] = i
		if c.FirelensConfiguration != nil {
			v.firelens = true
		}
	}
	return nil
}

func (v *taskDefView) checkContainers() error {
	for i := range v.td.ContainerDefinitions {
		c := &v.td.ContainerDefinitions[i]
		for _, check := range []func(*types.ContainerDefinition) error{
			v.checkContainerBasics,
			v.checkContainerMemory,
			v.checkPortMappings,
			v.checkLinks,
			v.checkEnvironment,
			v.checkMounts,
			v.checkHealthCheck,
			v.checkLogConfiguration,
			v.checkUlimits,
			v.checkLinuxParameters,
			v.checkContainerMisc,
		} {
			if err := check(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *taskDefView) checkContainerBasics(c *types.ContainerDefinition) error {
	name := *c.Name
	if strings.TrimSpace(tdValue(c.Image)) == "" {
		return taskDefError("Container.image should not be null or empty.")
	}
	if c.Cpu < 0 {
		return containerFieldError("cpu", name, "The value must not be negative.")
	}
	if c.StartTimeout != nil && *c.StartTimeout < 0 {
		return containerFieldError("startTimeout", name, "The value must not be negative.")
	}
	if c.StopTimeout != nil && *c.StopTimeout < 0 {
		return containerFieldError("stopTimeout", name, "The value must not be negative.")
	}
	return nil
}

func (v *taskDefView) checkContainerMemory(c *types.ContainerDefinition) error {
	name := *c.Name
	if c.Memory == nil && c.MemoryReservation == nil {
		if v.memory == 0 {
			return containerSettingError(name, "At least one of 'memory' or 'memoryReservation' must be specified.")
		}
		return nil
	}
	if c.Memory != nil && *c.Memory < containerMinMemoryMiB {
		return containerFieldError("memory", name, fmt.Sprintf("The minimum is %d MiB.", containerMinMemoryMiB))
	}
	if c.MemoryReservation != nil && *c.MemoryReservation < containerMinMemoryMiB {
		return containerFieldError("memoryReservation", name, fmt.Sprintf("The minimum is %d MiB.", containerMinMemoryMiB))
	}
	if c.Memory != nil && c.MemoryReservation != nil && *c.Memory < *c.MemoryReservation {
		return containerSettingError(name, "'memory' must be greater than or equal to 'memoryReservation'.")
	}
	if v.memory > 0 && c.Memory != nil && int(*c.Memory) > v.memory {
		return taskDefError("The 'memory' setting for container '%s' is greater than for the task.", name)
	}
	if v.memory > 0 && c.MemoryReservation != nil && int(*c.MemoryReservation) > v.memory {
		return taskDefError("The 'memoryReservation' setting for container '%s' is greater than for the task.", name)
	}
	return nil
}

func (v *taskDefView) checkPortMappings(c *types.ContainerDefinition) error {
	name := *c.Name
	mode := v.mode()
	if mode == types.NetworkModeNone && len(c.PortMappings) > 0 {
		return containerSettingError(name, "Port mappings are not supported when networkMode=none.")
	}
	for _, pm := range c.PortMappings {
		if pm.Protocol != "" && !tdEnumValid(pm.Protocol, types.TransportProtocol("").Values()) {
			return containerFieldError("protocol", name, "Valid values are tcp and udp.")
		}
		if pm.AppProtocol != "" && !tdEnumValid(pm.AppProtocol, types.ApplicationProtocol("").Values()) {
			return containerFieldError("appProtocol", name, "Valid values are "+tdEnumList(types.ApplicationProtocol("").Values())+".")
		}
		if pm.Name != nil {
			if !portNamePattern.MatchString(*pm.Name) {
				return containerSettingError(name, "Port mapping name '%s' is invalid. Up to 64 lowercase letters, numbers, underscores, and hyphens are allowed, and it cannot start with a hyphen.", *pm.Name)
			}
			if v.portNames[*pm.Name] {
				return containerSettingError(name, "Port mapping names must be unique within a task definition. Duplicate name: '%s'.", *pm.Name)
			}
			v.portNames[*pm.Name] = true
		}
		proto := pm.Protocol
		if proto == "" {
			proto = types.TransportProtocolTcp
		}
		if pm.ContainerPortRange != nil {
			if err := checkPortRange(name, mode, pm); err != nil {
				return err
			}
			continue
		}
		if pm.ContainerPort == nil || *pm.ContainerPort < 1 || *pm.ContainerPort > 65535 {
			return containerFieldError("containerPort", name, "")
		}
		if pm.HostPort != nil && (*pm.HostPort < 0 || *pm.HostPort > 65535) {
			return containerFieldError("hostPort", name, "")
		}
		host := int32(0)
		switch mode {
		case types.NetworkModeAwsvpc, types.NetworkModeHost:
			if pm.HostPort != nil && *pm.HostPort != *pm.ContainerPort {
				return taskDefError("When networkMode=%s, the host ports and container ports in port mappings must match.", mode)
			}
			host = *pm.ContainerPort
		default:
			host = tdValue(pm.HostPort)
		}
		if host == 0 {
			continue // a dynamic host port cannot collide
		}
		key := fmt.Sprintf("%d/%s", host, proto)
		if v.hostPorts[key] {
			return containerSettingError(name, "Host port %s is used by more than one port mapping in the task definition.", key)
		}
		v.hostPorts[key] = true
	}
	return nil
}

// checkPortRange validates a containerPortRange mapping ("start-end").
func checkPortRange(name string, mode types.NetworkMode, pm types.PortMapping) error {
	if pm.ContainerPort != nil {
		return containerSettingError(name, "A port mapping cannot set both 'containerPort' and 'containerPortRange'.")
	}
	if pm.HostPort != nil {
		return containerSettingError(name, "A port mapping with 'containerPortRange' cannot set 'hostPort'.")
	}
	if mode != types.NetworkModeBridge && mode != types.NetworkModeAwsvpc {
		return containerSettingError(name, "'containerPortRange' is supported only when networkMode is bridge or awsvpc.")
	}
	lo, hi, ok := strings.Cut(*pm.ContainerPortRange, "-")
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	if !ok || errA != nil || errB != nil || a < 1 || b > 65535 || a >= b {
		return containerFieldError("containerPortRange", name, "Use the form start-end with 1 <= start < end <= 65535.")
	}
	return nil
}

func (v *taskDefView) checkLinks(c *types.ContainerDefinition) error {
	if len(c.Links) == 0 {
		return nil
	}
	name := *c.Name
	if mode := v.mode(); mode != types.NetworkModeBridge {
		return taskDefError("Links are not supported when networkMode=%s.", mode)
	}
	for _, l := range c.Links {
		target, _, _ := strings.Cut(l, ":")
		if target == name {
			return containerSettingError(name, "A container cannot link to itself.")
		}
		if _, ok := v.names[target]; !ok {
			return containerSettingError(name, "Link '%s' refers to container '%s', which is not defined in the task definition.", l, target)
		}
	}
	return nil
}

func (v *taskDefView) checkEnvironment(c *types.ContainerDefinition) error {
	name := *c.Name
	for _, kv := range c.Environment {
		if tdValue(kv.Name) == "" {
			return containerSettingError(name, "Environment variable name should not be null or empty.")
		}
	}
	for _, f := range c.EnvironmentFiles {
		if f.Type != types.EnvironmentFileTypeS3 {
			return containerSettingError(name, "Environment file type must be s3.")
		}
		if tdValue(f.Value) == "" {
			return containerSettingError(name, "Environment file value should not be null or empty.")
		}
	}
	for _, s := range c.Secrets {
		if tdValue(s.Name) == "" || tdValue(s.ValueFrom) == "" {
			return containerSettingError(name, "Secret name and valueFrom should not be null or empty.")
		}
	}
	return nil
}

func (v *taskDefView) checkMounts(c *types.ContainerDefinition) error {
	name := *c.Name
	for _, mp := range c.MountPoints {
		src := tdValue(mp.SourceVolume)
		if src == "" {
			return containerSettingError(name, "Mount point 'sourceVolume' should not be null or empty.")
		}
		if v.volumes[src] == nil {
			return containerSettingError(name, "Mount point refers to volume '%s', which is not defined in the task definition.", src)
		}
		if tdValue(mp.ContainerPath) == "" {
			return containerSettingError(name, "Mount point 'containerPath' should not be null or empty.")
		}
	}
	for _, vf := range c.VolumesFrom {
		src := tdValue(vf.SourceContainer)
		if src == "" {
			return containerSettingError(name, "volumesFrom 'sourceContainer' should not be null or empty.")
		}
		if src == name {
			return containerSettingError(name, "A container cannot mount volumes from itself.")
		}
		if _, ok := v.names[src]; !ok {
			return containerSettingError(name, "volumesFrom refers to container '%s', which is not defined in the task definition.", src)
		}
	}
	return nil
}

func (v *taskDefView) checkHealthCheck(c *types.ContainerDefinition) error {
	hc := c.HealthCheck
	if hc == nil {
		return nil
	}
	name := *c.Name
	if len(hc.Command) == 0 {
		return containerSettingError(name, "Health check 'command' should not be null or empty.")
	}
	switch hc.Command[0] {
	case "NONE":
	case "CMD", "CMD-SHELL":
		if len(hc.Command) < 2 {
			return containerSettingError(name, "Health check 'command' must give a command after %s.", hc.Command[0])
		}
	default:
		return containerSettingError(name, "Health check 'command' must start with CMD, CMD-SHELL or NONE.")
	}
	for _, r := range []struct {
		field    string
		value    *int32
		min, max int32
	}{
		{"healthCheck.interval", hc.Interval, 5, 300},
		{"healthCheck.timeout", hc.Timeout, 2, 60},
		{"healthCheck.retries", hc.Retries, 1, 10},
		{"healthCheck.startPeriod", hc.StartPeriod, 0, 300},
	} {
		if r.value != nil && (*r.value < r.min || *r.value > r.max) {
			return containerFieldError(r.field, name, fmt.Sprintf("The value must be between %d and %d.", r.min, r.max))
		}
	}
	return nil
}

func (v *taskDefView) checkLogConfiguration(c *types.ContainerDefinition) error {
	lc := c.LogConfiguration
	if lc == nil {
		return nil
	}
	name := *c.Name
	if lc.LogDriver == "" {
		return containerSettingError(name, "'logConfiguration.logDriver' should not be null or empty.")
	}
	if !tdEnumValid(lc.LogDriver, types.LogDriver("").Values()) {
		return containerSettingError(name, "Log driver '%s' is not supported. Valid values are %s.", lc.LogDriver, tdEnumList(types.LogDriver("").Values()))
	}
	switch lc.LogDriver {
	case types.LogDriverAwslogs:
		var missing []string
		for _, opt := range []string{"awslogs-region", "awslogs-group"} {
			if lc.Options[opt] == "" {
				missing = append(missing, opt)
			}
		}
		if len(missing) > 0 {
			return taskDefError("Log driver awslogs requires options: %s", strings.Join(missing, ", "))
		}
	case types.LogDriverAwsfirelens:
		if !v.firelens {
			return containerSettingError(name, "Log driver awsfirelens requires a container with 'firelensConfiguration' in the task definition.")
		}
	}
	for _, s := range lc.SecretOptions {
		if tdValue(s.Name) == "" || tdValue(s.ValueFrom) == "" {
			return containerSettingError(name, "Log configuration secret name and valueFrom should not be null or empty.")
		}
	}
	return nil
}

func (v *taskDefView) checkUlimits(c *types.ContainerDefinition) error {
	name := *c.Name
	for _, u := range c.Ulimits {
		if !tdEnumValid(u.Name, types.UlimitName("").Values()) {
			return containerSettingError(name, "Ulimit name '%s' is not supported. Valid values are %s.", u.Name, tdEnumList(types.UlimitName("").Values()))
		}
		if u.SoftLimit > u.HardLimit {
			return containerSettingError(name, "Ulimit '%s': softLimit must be less than or equal to hardLimit.", u.Name)
		}
	}
	return nil
}

func (v *taskDefView) checkLinuxParameters(c *types.ContainerDefinition) error {
	lp := c.LinuxParameters
	if lp == nil {
		return nil
	}
	name := *c.Name
	for _, d := range lp.Devices {
		if tdValue(d.HostPath) == "" {
			return containerSettingError(name, "Device 'hostPath' should not be null or empty.")
		}
		for _, p := range d.Permissions {
			if !tdEnumValid(p, types.DeviceCgroupPermission("").Values()) {
				return containerSettingError(name, "Device permission '%s' is not supported. Valid values are %s.", p, tdEnumList(types.DeviceCgroupPermission("").Values()))
			}
		}
	}
	for _, t := range lp.Tmpfs {
		if tdValue(t.ContainerPath) == "" {
			return containerSettingError(name, "Tmpfs 'containerPath' should not be null or empty.")
		}
		if t.Size <= 0 {
			return containerSettingError(name, "Tmpfs 'size' must be greater than 0.")
		}
	}
	if lp.SharedMemorySize != nil && *lp.SharedMemorySize <= 0 {
		return containerFieldError("linuxParameters.sharedMemorySize", name, "The value must be greater than 0.")
	}
	if lp.MaxSwap != nil && *lp.MaxSwap < 0 {
		return containerFieldError("linuxParameters.maxSwap", name, "The value must not be negative.")
	}
	if lp.Swappiness != nil && (*lp.Swappiness < 0 || *lp.Swappiness > 100) {
		return containerFieldError("linuxParameters.swappiness", name, "The value must be between 0 and 100.")
	}
	return nil
}

func (v *taskDefView) checkContainerMisc(c *types.ContainerDefinition) error {
	name := *c.Name
	for _, h := range c.ExtraHosts {
		if tdValue(h.Hostname) == "" || tdValue(h.IpAddress) == "" {
			return containerSettingError(name, "Extra host 'hostname' and 'ipAddress' should not be null or empty.")
		}
	}
	for _, s := range c.SystemControls {
		if tdValue(s.Namespace) == "" {
			return containerSettingError(name, "System control 'namespace' should not be null or empty.")
		}
	}
	for _, r := range c.ResourceRequirements {
		if !tdEnumValid(r.Type, types.ResourceType("").Values()) {
			return containerSettingError(name, "Resource requirement type '%s' is not supported. Valid values are %s.", r.Type, tdEnumList(types.ResourceType("").Values()))
		}
		if tdValue(r.Value) == "" {
			return containerSettingError(name, "Resource requirement 'value' should not be null or empty.")
		}
		if r.Type == types.ResourceTypeGpu {
			if n, err := strconv.Atoi(*r.Value); err != nil || n < 1 {
				return containerSettingError(name, "GPU resource requirement value must be a positive integer.")
			}
		}
	}
	if rc := c.RepositoryCredentials; rc != nil && tdValue(rc.CredentialsParameter) == "" {
		return containerSettingError(name, "repositoryCredentials.credentialsParameter should not be null or empty.")
	}
	if fc := c.FirelensConfiguration; fc != nil && !tdEnumValid(fc.Type, types.FirelensConfigurationType("").Values()) {
		return containerSettingError(name, "Firelens configuration type '%s' is not supported. Valid values are %s.", fc.Type, tdEnumList(types.FirelensConfigurationType("").Values()))
	}
	if c.VersionConsistency != "" && !tdEnumValid(c.VersionConsistency, types.VersionConsistency("").Values()) {
		return containerFieldError("versionConsistency", name, "Valid values are enabled and disabled.")
	}
	if rp := c.RestartPolicy; rp != nil {
		if rp.RestartAttemptPeriod != nil && (*rp.RestartAttemptPeriod < restartAttemptPeriodMin || *rp.RestartAttemptPeriod > restartAttemptPeriodMax) {
			return containerFieldError("restartPolicy.restartAttemptPeriod", name, fmt.Sprintf("The value must be between %d and %d.", restartAttemptPeriodMin, restartAttemptPeriodMax))
		}
		if len(rp.IgnoredExitCodes) > restartIgnoredCodesMax {
			return containerFieldError("restartPolicy.ignoredExitCodes", name, fmt.Sprintf("At most %d exit codes are allowed.", restartIgnoredCodesMax))
		}
	}
	return nil
}

func (v *taskDefView) checkEssential() error {
	for _, c := range v.td.ContainerDefinitions {
		if c.Essential == nil || *c.Essential {
			return nil
		}
	}
	return taskDefError("Task definition doesn't have any essential container.")
}

func (v *taskDefView) checkDependencies() error {
	cds := v.td.ContainerDefinitions
	for _, c := range cds {
		name := *c.Name
		for _, d := range c.DependsOn {
			target := tdValue(d.ContainerName)
			if target == "" {
				return containerSettingError(name, "dependsOn 'containerName' should not be null or empty.")
			}
			ti, ok := v.names[target]
			if !ok {
				return containerSettingError(name, "dependsOn refers to container '%s', which is not defined in the task definition.", target)
			}
			switch d.Condition {
			case types.ContainerConditionStart:
			case types.ContainerConditionComplete, types.ContainerConditionSuccess:
				if e := cds[ti].Essential; e == nil || *e {
					return taskDefError("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container")
				}
			case types.ContainerConditionHealthy:
				if cds[ti].HealthCheck == nil {
					return taskDefError("A dependency container with HEALTHY condition must have a health check configured. Container '%s' has none.", target)
				}
			default:
				return containerSettingError(name, "dependsOn condition '%s' is not supported. Valid values are %s.", d.Condition, tdEnumList(types.ContainerCondition("").Values()))
			}
		}
	}
	if cycle := v.dependencyCycle(); cycle != nil {
		return taskDefError("Container dependencies must not form a cycle: %s.", strings.Join(cycle, " -> "))
	}
	return nil
}

// dependencyCycle returns the container names along a dependsOn cycle
// (first name repeated at the end), or nil.
func (v *taskDefView) dependencyCycle() []string {
	cds := v.td.ContainerDefinitions
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]int, len(cds))
	var path []int
	var visit func(i int) []string
	visit = func(i int) []string {
		state[i] = onPath
		path = append(path, i)
		for _, d := range cds[i].DependsOn {
			j := v.names[*d.ContainerName]
			switch state[j] {
			case onPath:
				start := slices.Index(path, j)
				var names []string
				for _, k := range path[start:] {
					names = append(names, *cds[k].Name)
				}
				return append(names, *cds[j].Name)
			case unvisited:
				if c := visit(j); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = done
		return nil
	}
	for i := range cds {
		if state[i] == unvisited {
			if c := visit(i); c != nil {
				return c
			}
		}
	}
	return nil
}

func (v *taskDefView) checkTaskCPUSum() error {
	if v.cpu == 0 {
		return nil
	}
	sum := 0
	for _, c := range v.td.ContainerDefinitions {
		sum += int(c.Cpu)
	}
	if sum > v.cpu {
		return taskDefError("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.")
	}
	return nil
}

func (v *taskDefView) checkPlacementConstraints() error {
	pcs := v.td.PlacementConstraints
	if len(pcs) > taskDefMaxPlacementConstraints {
		return taskDefError("Too many placement constraints: %d. A task definition can have at most %d.", len(pcs), taskDefMaxPlacementConstraints)
	}
	for _, pc := range pcs {
		if pc.Type != types.TaskDefinitionPlacementConstraintTypeMemberOf {
			return taskDefError("Invalid placement constraint type '%s'. Task definitions support only memberOf.", pc.Type)
		}
		expr := tdValue(pc.Expression)
		if strings.TrimSpace(expr) == "" {
			return taskDefError("A memberOf placement constraint requires an expression.")
		}
		if len(expr) > taskDefMaxConstraintExpression {
			return taskDefError("Placement constraint expression is too long. The maximum length is %d characters.", taskDefMaxConstraintExpression)
		}
	}
	return nil
}

func (v *taskDefView) checkEphemeralStorage() error {
	es := v.td.EphemeralStorage
	if es != nil && (es.SizeInGiB < ephemeralStorageMinGiB || es.SizeInGiB > ephemeralStorageMaxGiB) {
		return taskDefError("Invalid 'ephemeralStorage.sizeInGiB' setting for task. The value must be between %d and %d.", ephemeralStorageMinGiB, ephemeralStorageMaxGiB)
	}
	return nil
}

func (v *taskDefView) checkProxyConfiguration() error {
	pc := v.td.ProxyConfiguration
	if pc == nil {
		return nil
	}
	if pc.Type != "" && pc.Type != types.ProxyConfigurationTypeAppmesh {
		return taskDefError("Invalid proxyConfiguration type '%s'. The only valid value is APPMESH.", pc.Type)
	}
	cn := tdValue(pc.ContainerName)
	if cn == "" {
		return taskDefError("proxyConfiguration.containerName should not be null or empty.")
	}
	if _, ok := v.names[cn]; !ok {
		return taskDefError("proxyConfiguration refers to container '%s', which is not defined in the task definition.", cn)
	}
	if v.mode() != types.NetworkModeAwsvpc {
		return taskDefError("A proxy configuration requires networkMode=awsvpc.")
	}
	for _, p := range pc.Properties {
		if tdValue(p.Name) == "" {
			return taskDefError("proxyConfiguration property name should not be null or empty.")
		}
	}
	return nil
}

func (v *taskDefView) checkInferenceAccelerators() error {
	for _, ia := range v.td.InferenceAccelerators {
		if tdValue(ia.DeviceName) == "" || tdValue(ia.DeviceType) == "" {
			return taskDefError("Inference accelerator deviceName and deviceType should not be null or empty.")
		}
	}
	return nil
}
