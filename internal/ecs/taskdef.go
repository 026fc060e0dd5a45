package ecs

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// PrepareOptions carries what PrepareTaskDefinition needs from its caller.
type PrepareOptions struct {
	// RegistryHosts are image registry hosts ("host" or "host:port", compared
	// case-insensitively) whose images count as Amazon ECR images when
	// computing requiresAttributes (ecr-auth, execution-role-ecr-pull), in
	// addition to <account>.dkr.ecr.<region>.amazonaws.com. berth's own
	// registry belongs here.
	RegistryHosts []string
}

// Limits of a task definition (ECS quotas and the API reference).
const (
	taskDefMaxContainers           = 10
	taskDefMaxNameLength           = 255
	taskDefMaxPlacementConstraints = 10
	taskDefMaxConstraintExpression = 2000
	taskCPUMinUnits                = 128
	taskCPUMaxUnits                = 196608
	containerMinMemoryMiB          = 6 // Docker 20.10 and later refuse less
	ephemeralStorageMinGiB         = 21
	ephemeralStorageMaxGiB         = 200
	fargateMaxStopTimeout          = 120
)

// taskDefNamePattern is the alphabet of families, container names and
// volume names: up to 255 letters, digits, hyphens and underscores.
var taskDefNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// PrepareTaskDefinition validates a task definition that RegisterTaskDefinition
// received (the handler has copied the request fields into td) and, when it
// is valid, fills in what ECS computes: container defaults, normalised task
// cpu and memory, compatibilities, requiresAttributes and status ACTIVE. It
// returns the first problem ECS would report, as a ClientException (most
// problems) or InvalidParameterException, with ECS's message; td is left
// unchanged then. The caller sets the ARN, revision, registeredAt and
// registeredBy.
func PrepareTaskDefinition(td *types.TaskDefinition, opts PrepareOptions) error {
	if td == nil {
		return ClientError("Task definition should not be null.")
	}
	v, err := validateTaskDefinition(td)
	if err != nil {
		return err
	}
	compat := v.compatibilities()
	applyTaskDefinitionDefaults(td, v)
	td.Compatibilities = compat
	td.RequiresAttributes = taskDefRequiresAttributes(td, opts)
	td.Status = types.TaskDefinitionStatusActive
	return nil
}

// taskDefView is a validated reading of a task definition: the values ECS
// derives from the request before it stores anything.
type taskDefView struct {
	td        *types.TaskDefinition
	cpu       int // task cpu units; 0 when not given
	memory    int // task memory MiB; 0 when not given
	names     map[string]int
	volumes   map[string]*types.Volume
	firelens  bool // some container has firelensConfiguration
	hostPorts map[string]bool
	portNames map[string]bool
}

// mode is the network mode in effect: bridge when none was given (Linux;
// berth runs Linux containers only).
func (v *taskDefView) mode() types.NetworkMode {
	if v.td.NetworkMode == "" {
		return types.NetworkModeBridge
	}
	return v.td.NetworkMode
}

func (v *taskDefView) requires(c types.Compatibility) bool {
	return slices.Contains(v.td.RequiresCompatibilities, c)
}

func (v *taskDefView) windows() bool {
	rp := v.td.RuntimePlatform
	return rp != nil && strings.HasPrefix(string(rp.OperatingSystemFamily), "WINDOWS_")
}

// compatibilities lists the launch types the definition is valid for, in
// the order ECS prints them in the samples we have: EXTERNAL, EC2, FARGATE,
// MANAGED_INSTANCES. EC2 is always present: it is what the base validation
// checks.
func (v *taskDefView) compatibilities() []types.Compatibility {
	var out []types.Compatibility
	if v.externalProblem() == nil {
		out = append(out, types.CompatibilityExternal)
	}
	out = append(out, types.CompatibilityEc2)
	if v.fargateProblem() == nil {
		out = append(out, types.CompatibilityFargate)
	}
	if v.managedInstancesProblem() == nil {
		out = append(out, types.CompatibilityManagedInstances)
	}
	return out
}

// applyTaskDefinitionDefaults writes the values ECS fills in and echoes back.
func applyTaskDefinitionDefaults(td *types.TaskDefinition, v *taskDefView) {
	if v.cpu > 0 {
		td.Cpu = new(strconv.Itoa(v.cpu))
	}
	if v.memory > 0 {
		td.Memory = new(strconv.Itoa(v.memory))
	}
	if td.Volumes == nil {
		td.Volumes = []types.Volume{}
	}
	for i := range td.Volumes {
		if efs := td.Volumes[i].EfsVolumeConfiguration; efs != nil && efs.RootDirectory == nil {
			efs.RootDirectory = new("/")
		}
	}
	if td.PlacementConstraints == nil {
		td.PlacementConstraints = []types.TaskDefinitionPlacementConstraint{}
	}
	if td.EnableFaultInjection == nil {
		td.EnableFaultInjection = new(false)
	}
	mode := v.mode()
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if c.Essential == nil {
			c.Essential = new(true)
		}
		if c.PortMappings == nil {
			c.PortMappings = []types.PortMapping{}
		}
		if c.Environment == nil {
			c.Environment = []types.KeyValuePair{}
		}
		if c.MountPoints == nil {
			c.MountPoints = []types.MountPoint{}
		}
		if c.VolumesFrom == nil {
			c.VolumesFrom = []types.VolumeFrom{}
		}
		if c.SystemControls == nil {
			c.SystemControls = []types.SystemControl{}
		}
		for j := range c.PortMappings {
			pm := &c.PortMappings[j]
			if pm.Protocol == "" {
				pm.Protocol = types.TransportProtocolTcp
			}
			if pm.HostPort != nil || pm.ContainerPortRange != nil {
				continue
			}
			if mode == types.NetworkModeAwsvpc || mode == types.NetworkModeHost {
				pm.HostPort = new(*pm.ContainerPort)
			} else {
				pm.HostPort = new(int32(0)) // bridge: a dynamic host port
			}
		}
		if hc := c.HealthCheck; hc != nil {
			if hc.Interval == nil {
				hc.Interval = new(int32(healthCheckDefaultInterval))
			}
			if hc.Timeout == nil {
				hc.Timeout = new(int32(healthCheckDefaultTimeout))
			}
			if hc.Retries == nil {
				hc.Retries = new(int32(healthCheckDefaultRetries))
			}
		}
	}
}

// parseTaskCPU reads a task cpu value: units ("1024") or vCPUs ("1 vCPU",
// "0.25 vcpu"). ok is false unless the result is a whole number of units in
// ECS's range.
func parseTaskCPU(s string) (units int, ok bool) {
	num, unit := splitQuantity(s)
	scale := int64(1)
	switch strings.ToLower(unit) {
	case "":
	case "vcpu", "vcpus":
		scale = 1024
	default:
		return 0, false
	}
	n, ok := scaledWhole(num, scale)
	if !ok || n < taskCPUMinUnits || n > taskCPUMaxUnits {
		return 0, false
	}
	return int(n), true
}

// parseTaskMemory reads a task memory value: MiB ("512", "512 MiB") or GB
// ("1 GB", "0.5GB"; ECS's GB is 1024 MiB). ok is false unless the result is
// a positive whole number of MiB that fits ECS's integer fields.
func parseTaskMemory(s string) (mib int, ok bool) {
	num, unit := splitQuantity(s)
	scale := int64(1)
	switch strings.ToLower(unit) {
	case "", "mb", "mib":
	case "gb", "gib":
		scale = 1024
	default:
		return 0, false
	}
	n, ok := scaledWhole(num, scale)
	if !ok || n < 1 || n > 1<<31-1 {
		return 0, false
	}
	return int(n), true
}

var quantityPattern = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$`)

// splitQuantity splits "0.25 vCPU" into "0.25" and "vCPU"; both are empty
// when s is not of that form.
func splitQuantity(s string) (num, unit string) {
	m := quantityPattern.FindStringSubmatch(s)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

// scaledWhole returns num×scale when it is a whole number that fits in an
// int64. Exact decimal arithmetic: "0.1 GB" is not 102 MiB.
func scaledWhole(num string, scale int64) (int64, bool) {
	if num == "" || len(num) > 32 {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, false
	}
	r.Mul(r, new(big.Rat).SetInt64(scale))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

// ParseTaskDefinitionRef reads a taskDefinition parameter: "family" (the
// newest ACTIVE revision; revision is 0), "family:revision", or a full ARN
// "arn:aws:ecs:region:account:task-definition/family:revision" (isARN is
// true; the caller checks region and account). A revision that is not a
// positive number is InvalidParameterException "Invalid revision number.
// Number: x", as in ECS; anything else malformed is ClientException "Unable to
// describe task definition.", ECS's answer for a definition it cannot find.
func ParseTaskDefinitionRef(ref string) (family string, revision int32, isARN bool, err error) {
	notFound := ClientError("Unable to describe task definition.")
	rest := ref
	if strings.HasPrefix(ref, "arn:") {
		a, perr := arn.Parse(ref)
		if perr != nil || a.Service != "ecs" || !strings.HasPrefix(a.Resource, "task-definition/") {
			return "", 0, true, notFound
		}
		rest = strings.TrimPrefix(a.Resource, "task-definition/")
		isARN = true
	}
	family, rev, hasRev := strings.Cut(rest, ":")
	if !taskDefNamePattern.MatchString(family) {
		return "", 0, isARN, notFound
	}
	if !hasRev {
		return family, 0, isARN, nil
	}
	n, perr := strconv.ParseInt(rev, 10, 32)
	if perr != nil || n < 1 || strings.TrimLeft(rev, "0123456789") != "" {
		return "", 0, isARN, InvalidParameter("Invalid revision number. Number: " + rev)
	}
	return family, int32(n), isARN, nil
}

// MaxTaskDefinitionBytes is ECS's limit on the size of a task definition.
const MaxTaskDefinitionBytes = 65536

// CheckTaskDefinitionSize rejects a task definition of n bytes of JSON above
// ECS's limit, with ECS's message.
func CheckTaskDefinitionSize(n int) error {
	if n > MaxTaskDefinitionBytes {
		return ClientError(fmt.Sprintf("Actual length: '%d'. Max allowed length is '%d' bytes.", n, MaxTaskDefinitionBytes))
	}
	return nil
}
