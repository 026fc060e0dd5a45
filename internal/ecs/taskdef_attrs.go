package ecs

import (
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Capability attribute names a task definition can require. The container
// agent registers the same names on its instance; placement matches them.
const (
	capPrefix              = "com.amazonaws.ecs.capability."
	capDockerRemoteAPI     = capPrefix + "docker-remote-api."
	capLoggingDriver       = capPrefix + "logging-driver."
	capTaskIAMRole         = capPrefix + "task-iam-role"
	capTaskIAMRoleHostNet  = capPrefix + "task-iam-role-network-host"
	capECRAuth             = capPrefix + "ecr-auth"
	capPrivileged          = capPrefix + "privileged-container"
	capExecRoleAwslogs     = "ecs.capability.execution-role-awslogs"
	capExecRoleECRPull     = "ecs.capability.execution-role-ecr-pull"
	capTaskENI             = "ecs.capability.task-eni"
	capHealthCheck         = "ecs.capability.container-health-check"
	capContainerOrdering   = "ecs.capability.container-ordering"
	capSecretsASMEnv       = "ecs.capability.secrets.asm.environment-variables"
	capSecretsSSMEnv       = "ecs.capability.secrets.ssm.environment-variables"
	capSecretsASMLog       = "ecs.capability.secrets.asm.bootstrap.log-driver"
	capSecretsSSMLog       = "ecs.capability.secrets.ssm.bootstrap.log-driver"
	capPrivateRegistryAuth = "ecs.capability.private-registry-authentication.secretsmanager"
	capEnvFilesS3          = "ecs.capability.env-files.s3"
	capEFS                 = "ecs.capability.efs"
	capEFSAuth             = "ecs.capability.efsAuth"
	capPidIpcSharing       = "ecs.capability.pid-ipc-namespace-sharing"
	capAppMesh             = "ecs.capability.aws-appmesh"
	capTaskEIA             = "ecs.capability.task-eia"
	capFirelensPrefix      = "ecs.capability.firelens."
	capRestartPolicy       = "ecs.capability.container-restart-policy"
)

// ecrHostPattern matches Amazon ECR registry hosts.
var ecrHostPattern = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// taskDefRequiresAttributes computes requiresAttributes the way ECS does as
// far as the registrations we have seen show it (docs/task-definitions.md
// lists the rules). The order is the rule order below, without duplicates;
// ECS's own order looks arbitrary, and nothing matches on it.
func taskDefRequiresAttributes(td *types.TaskDefinition, opts PrepareOptions) []types.Attribute {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	execRole := tdValue(td.ExecutionRoleArn) != ""
	for _, c := range td.ContainerDefinitions {
		if lc := c.LogConfiguration; lc != nil {
			add(capLoggingDriver + string(lc.LogDriver))
			if lc.LogDriver == types.LogDriverAwslogs && execRole {
				add(capExecRoleAwslogs)
			}
		}
	}
	for _, c := range td.ContainerDefinitions {
		if taskDefIsECRImage(tdValue(c.Image), opts) {
			add(capECRAuth)
		}
	}
	for _, c := range td.ContainerDefinitions {
		if lc := c.LogConfiguration; lc != nil && len(lc.Options) > 0 {
			add(capDockerRemoteAPI + "1.19")
		}
	}
	if tdValue(td.TaskRoleArn) != "" {
		add(capTaskIAMRole)
		if td.NetworkMode == types.NetworkModeHost {
			add(capTaskIAMRoleHostNet)
		}
	}
	for _, c := range td.ContainerDefinitions {
		if c.HealthCheck != nil {
			add(capHealthCheck)
		}
		if len(c.DependsOn) > 0 || c.StartTimeout != nil || c.StopTimeout != nil {
			add(capContainerOrdering)
		}
		if execRole && taskDefIsECRImage(tdValue(c.Image), opts) {
			add(capExecRoleECRPull)
		}
		for _, s := range c.Secrets {
			add(secretCapability(tdValue(s.ValueFrom), capSecretsASMEnv, capSecretsSSMEnv))
		}
		if lc := c.LogConfiguration; lc != nil {
			for _, s := range lc.SecretOptions {
				add(secretCapability(tdValue(s.ValueFrom), capSecretsASMLog, capSecretsSSMLog))
			}
		}
		if c.RepositoryCredentials != nil {
			add(capPrivateRegistryAuth)
		}
		if len(c.EnvironmentFiles) > 0 {
			add(capEnvFilesS3)
		}
		if tdValue(c.Privileged) {
			add(capPrivileged)
		}
		if c.LogConfiguration != nil || len(c.Ulimits) > 0 || len(c.DockerLabels) > 0 {
			add(capDockerRemoteAPI + "1.18")
		}
		if lp := c.LinuxParameters; lp != nil && lp.InitProcessEnabled != nil {
			add(capDockerRemoteAPI + "1.25")
		}
		if fc := c.FirelensConfiguration; fc != nil {
			add(capFirelensPrefix + string(fc.Type))
			switch fc.Options["config-file-type"] {
			case "file":
				add(capFirelensPrefix + "options.config.file")
			case "s3":
				add(capFirelensPrefix + "options.config.s3")
			}
		}
		if rp := c.RestartPolicy; rp != nil && tdValue(rp.Enabled) {
			add(capRestartPolicy)
		}
	}
	if td.NetworkMode == types.NetworkModeAwsvpc {
		add(capDockerRemoteAPI + "1.18")
		add(capTaskENI)
	}
	if td.RuntimePlatform != nil {
		add(capDockerRemoteAPI + "1.29")
	}
	for _, vol := range td.Volumes {
		if vol.EfsVolumeConfiguration != nil {
			add(capEFSAuth)
			add(capEFS)
			add(capDockerRemoteAPI + "1.25")
		}
		if vol.DockerVolumeConfiguration != nil {
			add(capDockerRemoteAPI + "1.25")
		}
	}
	if td.PidMode != "" || td.IpcMode != "" {
		add(capPidIpcSharing)
	}
	if td.ProxyConfiguration != nil {
		add(capAppMesh)
	}
	if len(td.InferenceAccelerators) > 0 {
		add(capTaskEIA)
	}
	out := make([]types.Attribute, len(names))
	for i, n := range names {
		out[i] = types.Attribute{Name: new(n)}
	}
	return out
}

// secretCapability picks the Secrets Manager or the SSM Parameter Store
// attribute for a secret's valueFrom.
func secretCapability(valueFrom, asm, ssm string) string {
	if strings.HasPrefix(valueFrom, "arn:") && strings.Contains(valueFrom, ":secretsmanager:") {
		return asm
	}
	return ssm
}

// taskDefIsECRImage reports whether an image reference names an ECR
// registry (or one berth serves as ECR).
func taskDefIsECRImage(image string, opts PrepareOptions) bool {
	host, _, ok := strings.Cut(image, "/")
	if !ok {
		return false
	}
	if ecrHostPattern.MatchString(host) {
		return true
	}
	for _, h := range opts.RegistryHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}
