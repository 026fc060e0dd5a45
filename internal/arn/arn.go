// Package arn builds and parses the Amazon Resource Names of ECS resources.
//
// berth always uses ECS's long ("new") ARN format, in which services, tasks
// and container instances carry their cluster's name: the opt-in period
// ended in 2021 and every account now gets long ARNs. Short-format ARNs are
// rejected by Parse, as ECS rejects them for tagging.
package arn

import (
	"fmt"
	"strconv"
	"strings"

	awsarn "github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Resource types, the first segment of an ECS ARN's resource part.
const (
	TypeCluster           = "cluster"
	TypeTaskDefinition    = "task-definition"
	TypeService           = "service"
	TypeTask              = "task"
	TypeContainerInstance = "container-instance"
	TypeCapacityProvider  = "capacity-provider"
	TypeTaskSet           = "task-set"
)

// Namespace is the ARN service namespace of ECS.
const Namespace = "ecs"

// Resource is a parsed ECS ARN.
type Resource struct {
	Partition string // "aws", "aws-cn", "aws-us-gov"
	Region    string
	AccountID string
	Type      string // one of the Type constants
	// Cluster is the owning cluster of a service, task, container instance
	// or task set; empty for other types.
	Cluster string
	// Service is the owning service of a task set; empty otherwise.
	Service string
	// Name is the cluster name, task definition family, service name, task
	// id, container instance id, capacity provider name or task set id.
	Name string
	// Revision is the task definition revision (≥ 1); 0 for other types.
	Revision int32
}

// Partition returns the ARN partition of a region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

func build(region, account, resource string) string {
	return awsarn.ARN{
		Partition: Partition(region),
		Service:   Namespace,
		Region:    region,
		AccountID: account,
		Resource:  resource,
	}.String()
}

// Cluster returns arn:aws:ecs:{region}:{account}:cluster/{name}.
func Cluster(region, account, name string) string {
	return build(region, account, TypeCluster+"/"+name)
}

// TaskDefinition returns
// arn:aws:ecs:{region}:{account}:task-definition/{family}:{revision}.
func TaskDefinition(region, account, family string, revision int32) string {
	return build(region, account, TypeTaskDefinition+"/"+family+":"+strconv.FormatInt(int64(revision), 10))
}

// Service returns arn:aws:ecs:{region}:{account}:service/{cluster}/{name}.
func Service(region, account, cluster, name string) string {
	return build(region, account, TypeService+"/"+cluster+"/"+name)
}

// Task returns arn:aws:ecs:{region}:{account}:task/{cluster}/{id}.
func Task(region, account, cluster, id string) string {
	return build(region, account, TypeTask+"/"+cluster+"/"+id)
}

// ContainerInstance returns
// arn:aws:ecs:{region}:{account}:container-instance/{cluster}/{id}.
func ContainerInstance(region, account, cluster, id string) string {
	return build(region, account, TypeContainerInstance+"/"+cluster+"/"+id)
}

// CapacityProvider returns
// arn:aws:ecs:{region}:{account}:capacity-provider/{name}.
func CapacityProvider(region, account, name string) string {
	return build(region, account, TypeCapacityProvider+"/"+name)
}

// String formats r back into its ARN.
func (r Resource) String() string {
	var res string
	switch r.Type {
	case TypeTaskDefinition:
		res = r.Type + "/" + r.Name + ":" + strconv.FormatInt(int64(r.Revision), 10)
	case TypeService, TypeTask, TypeContainerInstance:
		res = r.Type + "/" + r.Cluster + "/" + r.Name
	case TypeTaskSet:
		res = r.Type + "/" + r.Cluster + "/" + r.Service + "/" + r.Name
	default:
		res = r.Type + "/" + r.Name
	}
	return awsarn.ARN{Partition: r.Partition, Service: Namespace, Region: r.Region, AccountID: r.AccountID, Resource: res}.String()
}

// IsARN reports whether s looks like an ARN rather than a name: ECS
// accepts either wherever it takes a reference.
func IsARN(s string) bool { return strings.HasPrefix(s, "arn:") }

// Parse parses an ECS ARN in the long format. The error is of kind
// errdefs.ErrInvalidArgument.
func Parse(s string) (Resource, error) {
	a, err := awsarn.Parse(s)
	if err != nil {
		return Resource{}, invalid(s, "not an ARN")
	}
	if a.Service != Namespace {
		return Resource{}, invalid(s, "not an ECS ARN")
	}
	if a.Partition == "" || a.Region == "" || a.AccountID == "" {
		return Resource{}, invalid(s, "partition, region and account are required")
	}
	r := Resource{Partition: a.Partition, Region: a.Region, AccountID: a.AccountID}
	typ, rest, ok := strings.Cut(a.Resource, "/")
	if !ok || rest == "" {
		return Resource{}, invalid(s, "no resource")
	}
	r.Type = typ
	parts := strings.Split(rest, "/")
	switch typ {
	case TypeCluster, TypeCapacityProvider:
		if len(parts) != 1 {
			return Resource{}, invalid(s, "malformed "+typ)
		}
		r.Name = parts[0]
	case TypeTaskDefinition:
		family, rev, ok := strings.Cut(rest, ":")
		if !ok || len(parts) != 1 || family == "" {
			return Resource{}, invalid(s, "a task definition ARN needs family:revision")
		}
		n, err := strconv.ParseInt(rev, 10, 32)
		if err != nil || n < 1 || strconv.FormatInt(n, 10) != rev {
			return Resource{}, invalid(s, "malformed revision")
		}
		r.Name, r.Revision = family, int32(n)
	case TypeService, TypeTask, TypeContainerInstance:
		if len(parts) != 2 {
			// A short-format ARN (no cluster) lands here too.
			return Resource{}, invalid(s, "the long ARN format is required")
		}
		r.Cluster, r.Name = parts[0], parts[1]
	case TypeTaskSet:
		// The id itself contains a slash: ecs-svc/1234.
		if len(parts) < 3 {
			return Resource{}, invalid(s, "malformed task set")
		}
		r.Cluster, r.Service, r.Name = parts[0], parts[1], strings.Join(parts[2:], "/")
	default:
		return Resource{}, invalid(s, "unsupported resource type "+strconv.Quote(typ))
	}
	for _, p := range parts {
		if p == "" {
			return Resource{}, invalid(s, "empty segment")
		}
	}
	return r, nil
}

func invalid(s, why string) error {
	return &errdefs.Error{
		Kind:    errdefs.ErrInvalidArgument,
		Message: "The ARN provided is invalid.",
		Cause:   fmt.Errorf("arn %q: %s", s, why),
	}
}

// ClusterName resolves a cluster reference, a name or a cluster ARN, to a
// cluster name. ok is false when ref is an ARN that does not name a cluster
// of this region and account: ECS treats such a reference as a cluster it
// does not know.
func ClusterName(ref, region, account string) (name string, ok bool) {
	if !IsARN(ref) {
		return ref, true
	}
	r, err := Parse(ref)
	if err != nil || r.Type != TypeCluster || !r.In(region, account) {
		return "", false
	}
	return r.Name, true
}

// In reports whether r belongs to the given region and account.
func (r Resource) In(region, account string) bool {
	return r.Region == region && r.AccountID == account && r.Partition == Partition(region)
}
