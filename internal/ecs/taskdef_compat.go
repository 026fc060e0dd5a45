package ecs

import (
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// fargateLogDrivers are the log drivers Fargate tasks may use.
var fargateLogDrivers = []types.LogDriver{types.LogDriverAwslogs, types.LogDriverSplunk, types.LogDriverAwsfirelens}

// checkRequiredCompatibilities rejects a definition that does not satisfy a
// launch type named in requiresCompatibilities. EC2 is the base every
// definition that got this far satisfies.
func (v *taskDefView) checkRequiredCompatibilities() error {
	if v.requires(types.CompatibilityFargate) {
		if err := v.fargateProblem(); err != nil {
			return err
		}
	}
	if v.requires(types.CompatibilityExternal) {
		if err := v.externalProblem(); err != nil {
			return err
		}
	}
	if v.requires(types.CompatibilityManagedInstances) {
		if err := v.managedInstancesProblem(); err != nil {
			return err
		}
	}
	return nil
}

// fargateProblem returns the first reason the definition cannot run on
// Fargate, or nil.
func (v *taskDefView) fargateProblem() error {
	td := v.td
	const unsupported = "Tasks using the Fargate launch type do not support %s."
	if v.mode() != types.NetworkModeAwsvpc {
		return taskDefError("Fargate only supports network mode ‘awsvpc’.")
	}
	if v.cpu == 0 {
		return taskDefError("Fargate requires that 'cpu' be defined at the task level.")
	}
	if v.memory == 0 {
		return taskDefError("Fargate requires that 'memory' be defined at the task level.")
	}
	// Windows containers on Fargate start at 1 vCPU (AWS's Windows table:
	// 1, 2 and 4 vCPU with the Linux memory ranges).
	if !ValidFargateSize(v.cpu, v.memory) || v.windows() && (v.cpu < 1024 || v.cpu > 4096) {
		return taskDefError("No Fargate configuration exists for given values: %d CPU, %d memory. See the Amazon ECS documentation for the valid values.", v.cpu, v.memory)
	}
	if td.PidMode == types.PidModeHost {
		return taskDefError("Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.")
	}
	if td.IpcMode != "" {
		return taskDefError(unsupported, "ipcMode")
	}
	if len(td.PlacementConstraints) > 0 {
		return taskDefError(unsupported, "placement constraints")
	}
	if len(td.InferenceAccelerators) > 0 {
		return taskDefError(unsupported, "inference accelerators")
	}
	for _, vol := range td.Volumes {
		name := tdValue(vol.Name)
		switch {
		case vol.Host != nil && tdValue(vol.Host.SourcePath) != "":
			return taskDefError(unsupported+" Volume '%s' sets host.sourcePath.", "host volumes", name)
		case vol.DockerVolumeConfiguration != nil:
			return taskDefError(unsupported+" Volume '%s' sets dockerVolumeConfiguration.", "Docker volumes", name)
		case vol.FsxWindowsFileServerVolumeConfiguration != nil:
			return taskDefError(unsupported+" Volume '%s' sets fsxWindowsFileServerVolumeConfiguration.", "FSx for Windows File Server volumes", name)
		}
	}
	for _, c := range td.ContainerDefinitions {
		if err := fargateContainerProblem(td, &c); err != nil {
			return err
		}
	}
	return nil
}

func fargateContainerProblem(td *types.TaskDefinition, c *types.ContainerDefinition) error {
	name := *c.Name
	const unsupported = "Tasks using the Fargate launch type do not support %s."
	if tdValue(c.Privileged) {
		return containerSettingError(name, unsupported, "privileged containers")
	}
	if len(c.DockerSecurityOptions) > 0 {
		return containerSettingError(name, unsupported, "dockerSecurityOptions")
	}
	if c.StopTimeout != nil && *c.StopTimeout > fargateMaxStopTimeout {
		return containerFieldError("stopTimeout", name, fmt.Sprintf("Tasks using the Fargate launch type support a stopTimeout of at most %d seconds.", fargateMaxStopTimeout))
	}
	for _, r := range c.ResourceRequirements {
		if r.Type == types.ResourceTypeGpu {
			return containerSettingError(name, unsupported, "GPU resource requirements")
		}
	}
	if lc := c.LogConfiguration; lc != nil {
		if !slices.Contains(fargateLogDrivers, lc.LogDriver) {
			return containerSettingError(name, unsupported+" Valid values are %s.", "log driver '"+string(lc.LogDriver)+"'", tdEnumList(fargateLogDrivers))
		}
		if lc.LogDriver == types.LogDriverAwslogs && tdValue(td.ExecutionRoleArn) == "" {
			return taskDefError("Fargate requires task definition to have execution role ARN to support log driver awslogs.")
		}
	}
	if lp := c.LinuxParameters; lp != nil {
		switch {
		case len(lp.Devices) > 0:
			return containerSettingError(name, unsupported, "linuxParameters.devices")
		case lp.SharedMemorySize != nil:
			return containerSettingError(name, unsupported, "linuxParameters.sharedMemorySize")
		case lp.MaxSwap != nil || lp.Swappiness != nil:
			return containerSettingError(name, unsupported, "linuxParameters.maxSwap and linuxParameters.swappiness")
		}
		if lp.Capabilities != nil {
			for _, capName := range lp.Capabilities.Add {
				if capName != "SYS_PTRACE" {
					return containerSettingError(name, unsupported+" Only SYS_PTRACE can be added.", "adding the capability "+capName)
				}
			}
		}
	}
	return nil
}

// externalProblem returns the first reason the definition cannot run on
// ECS Anywhere (EXTERNAL) instances, or nil.
func (v *taskDefView) externalProblem() error {
	const unsupported = "Tasks using the EXTERNAL launch type do not support %s."
	if v.mode() == types.NetworkModeAwsvpc {
		return taskDefError(unsupported, "network mode 'awsvpc'")
	}
	for _, vol := range v.td.Volumes {
		if vol.EfsVolumeConfiguration != nil || vol.FsxWindowsFileServerVolumeConfiguration != nil {
			return taskDefError(unsupported+" Volume '%s' uses a managed file system.", "EFS or FSx volumes", tdValue(vol.Name))
		}
	}
	if len(v.td.InferenceAccelerators) > 0 {
		return taskDefError(unsupported, "inference accelerators")
	}
	if v.td.ProxyConfiguration != nil {
		return taskDefError(unsupported, "proxy configurations")
	}
	return nil
}

// managedInstancesProblem returns the first reason the definition cannot run
// on ECS Managed Instances, or nil. Managed Instances run Linux tasks in
// awsvpc, host or none mode, and the mode must be named.
func (v *taskDefView) managedInstancesProblem() error {
	switch v.td.NetworkMode {
	case types.NetworkModeAwsvpc, types.NetworkModeHost, types.NetworkModeNone:
	default:
		return taskDefError("Tasks using the MANAGED_INSTANCES launch type require networkMode awsvpc, host or none.")
	}
	if v.windows() {
		return taskDefError("Tasks using the MANAGED_INSTANCES launch type do not support Windows containers.")
	}
	return nil
}
