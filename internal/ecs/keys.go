package ecs

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// The store key layout of the ECS domain. Every key lives under /v1/ecs/;
// the "v1" segment lets a later layout migrate side by side. Names used in
// keys (cluster names, families) are restricted by ECS to [A-Za-z0-9_-], so
// they never contain a slash and a prefix listing never spills into a
// neighbour; principal ARNs, which do contain slashes, are path-escaped.
// docs/architecture/store-keys.md documents the layout.
const (
	keyRoot = "/v1/ecs/"
	// KeyRoot is the prefix of every key of the ECS domain.
	KeyRoot = keyRoot

	// ClustersPrefix holds one Cluster record per cluster name.
	ClustersPrefix = keyRoot + "clusters/"
	// TaskDefinitionsPrefix holds one TaskDefinitionRecord per revision, under
	// a per-family prefix.
	TaskDefinitionsPrefix = keyRoot + "task-definitions/"
	// TaskDefinitionFamiliesPrefix holds one TaskDefinitionFamily record per
	// family ever registered.
	TaskDefinitionFamiliesPrefix = keyRoot + "task-definition-families/"
	// AccountSettingsPrefix holds one AccountSetting per principal and name.
	AccountSettingsPrefix = keyRoot + "account-settings/"

	// AllTasksPrefix holds every cluster's task records (TasksPrefix per
	// cluster); the task reaper lists it.
	AllTasksPrefix = keyRoot + "tasks/"
	// AllContainerInstancesPrefix holds every cluster's container-instance
	// records (ContainerInstancesPrefix per cluster).
	AllContainerInstancesPrefix = keyRoot + "container-instances/"
	// InstanceTasksRootPrefix holds the instance → task index: one key with
	// an empty value per task that is assigned to a container instance and
	// not yet STOPPED (InstanceTaskKey). It is written and deleted in the
	// same transactions as the task records, so it is never stale; the agent
	// channel lists and watches it to find an instance's tasks.
	InstanceTasksRootPrefix = keyRoot + "instancetasks/"
	// ClientTokensPrefix holds one ClientTokenRecord per idempotency token
	// (RunTask clientToken).
	ClientTokensPrefix = keyRoot + "client-tokens/"

	// AllServicesPrefix holds every cluster's service records
	// (ServicesPrefix per cluster).
	AllServicesPrefix = keyRoot + "services/"
	// ServiceTasksRootPrefix holds the service → task index: one key with
	// an empty value per task a service started (ServiceTaskKey), written
	// with the task record and deleted with it (the task reaper), so a
	// service's STOPPED tasks stay listed as long as their records exist.
	ServiceTasksRootPrefix = keyRoot + "servicetasks/"

	servicesRoot           = AllServicesPrefix
	tasksRoot              = AllTasksPrefix
	containerInstancesRoot = AllContainerInstancesPrefix
)

// revisionDigits zero-pads revisions in keys so that lexical key order is
// numeric revision order. ECS caps a family at 1,000,000 revisions; ten
// digits hold any int32.
const revisionDigits = 10

// ClusterKey is the key of a cluster's record.
func ClusterKey(name string) string { return ClustersPrefix + name }

// ServicesPrefix is the prefix of a cluster's service records.
func ServicesPrefix(cluster string) string { return servicesRoot + cluster + "/" }

// ServiceKey is the key of one service of a cluster.
func ServiceKey(cluster, name string) string { return ServicesPrefix(cluster) + name }

// ParseServiceKey splits a ServiceKey into cluster and service name; ok is
// false for any other key.
func ParseServiceKey(key string) (cluster, name string, ok bool) {
	rest, found := strings.CutPrefix(key, AllServicesPrefix)
	if !found {
		return "", "", false
	}
	cluster, name, found = strings.Cut(rest, "/")
	if !found || cluster == "" || name == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return cluster, name, true
}

// ServiceTasksPrefix is the prefix of the index keys of one service's tasks.
func ServiceTasksPrefix(cluster, service string) string {
	return ServiceTasksRootPrefix + cluster + "/" + service + "/"
}

// ServiceTaskKey is the index key saying that task taskID of cluster was
// started by service.
func ServiceTaskKey(cluster, service, taskID string) string {
	return ServiceTasksPrefix(cluster, service) + taskID
}

// ParseServiceTaskKey splits a ServiceTaskKey into its parts; ok is false
// for any other key.
func ParseServiceTaskKey(key string) (cluster, service, taskID string, ok bool) {
	rest, found := strings.CutPrefix(key, ServiceTasksRootPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// ServiceOfTask is the service whose group a task carries ("service:x"),
// or "".
func ServiceOfTask(group string) string {
	name, _ := strings.CutPrefix(group, "service:")
	if name == group {
		return ""
	}
	return name
}

// TasksPrefix is the prefix of a cluster's task records.
func TasksPrefix(cluster string) string { return tasksRoot + cluster + "/" }

// TaskKey is the key of one task of a cluster.
func TaskKey(cluster, id string) string { return TasksPrefix(cluster) + id }

// ContainerInstancesPrefix is the prefix of a cluster's container-instance
// records.
func ContainerInstancesPrefix(cluster string) string { return containerInstancesRoot + cluster + "/" }

// ContainerInstanceKey is the key of one container instance of a cluster.
func ContainerInstanceKey(cluster, id string) string { return ContainerInstancesPrefix(cluster) + id }

// InstanceTasksClusterPrefix is the prefix of the instance → task index of
// one cluster.
func InstanceTasksClusterPrefix(cluster string) string {
	return InstanceTasksRootPrefix + cluster + "/"
}

// InstanceTasksPrefix is the prefix of the index keys of one container
// instance's tasks.
func InstanceTasksPrefix(cluster, instanceID string) string {
	return InstanceTasksClusterPrefix(cluster) + instanceID + "/"
}

// InstanceTaskKey is the index key saying that task taskID of cluster is
// assigned to container instance instanceID and not yet STOPPED.
func InstanceTaskKey(cluster, instanceID, taskID string) string {
	return InstanceTasksPrefix(cluster, instanceID) + taskID
}

// ParseInstanceTaskKey splits an InstanceTaskKey into its parts; ok is
// false for any other key.
func ParseInstanceTaskKey(key string) (cluster, instanceID, taskID string, ok bool) {
	rest, found := strings.CutPrefix(key, InstanceTasksRootPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// ParseTaskKey splits a TaskKey into cluster and task id; ok is false for
// any other key.
func ParseTaskKey(key string) (cluster, taskID string, ok bool) {
	rest, found := strings.CutPrefix(key, AllTasksPrefix)
	if !found {
		return "", "", false
	}
	cluster, taskID, found = strings.Cut(rest, "/")
	if !found || cluster == "" || taskID == "" || strings.Contains(taskID, "/") {
		return "", "", false
	}
	return cluster, taskID, true
}

// ClientTokenKey is the key of an idempotency token of an action. Tokens
// are free text, so they are path-escaped.
func ClientTokenKey(action, token string) string {
	return ClientTokensPrefix + action + "/" + url.PathEscape(token)
}

// TaskDefinitionFamilyPrefix is the prefix of all revisions of a family.
func TaskDefinitionFamilyPrefix(family string) string { return TaskDefinitionsPrefix + family + "/" }

// TaskDefinitionKey is the key of one revision of a family.
func TaskDefinitionKey(family string, revision int32) string {
	return fmt.Sprintf("%s%0*d", TaskDefinitionFamilyPrefix(family), revisionDigits, revision)
}

// TaskDefinitionFamilyKey is the key of a family's record.
func TaskDefinitionFamilyKey(family string) string { return TaskDefinitionFamiliesPrefix + family }

// AccountSettingsPrincipalPrefix is the prefix of one principal's settings.
func AccountSettingsPrincipalPrefix(principalARN string) string {
	return AccountSettingsPrefix + url.PathEscape(principalARN) + "/"
}

// AccountSettingKey is the key of one principal's value of one setting. The
// account default is the setting of the account's root principal (RootARN).
func AccountSettingKey(principalARN string, name types.SettingName) string {
	return AccountSettingsPrincipalPrefix(principalARN) + string(name)
}

// TaskDefinitionRecord is the value stored at TaskDefinitionKey: the task
// definition exactly as DescribeTaskDefinition returns it, plus its tags
// (which ECS returns beside it, not inside it).
type TaskDefinitionRecord struct {
	TaskDefinition types.TaskDefinition `json:"taskDefinition"`
	Tags           []types.Tag          `json:"tags,omitempty"`
}

// TaskDefinitionFamily is the value stored at TaskDefinitionFamilyKey. It is
// written in the same transaction as every revision change of the family,
// so its counters are exact.
type TaskDefinitionFamily struct {
	Family string `json:"family"`
	// LastRevision is the highest revision ever registered. It never goes
	// down, so a revision number is never reused, even after deletion.
	LastRevision int32 `json:"lastRevision"`
	// Revisions counts stored revisions in any status; a family with none
	// left is no longer listed.
	Revisions int `json:"revisions"`
	// ActiveRevisions counts ACTIVE revisions; the family is ACTIVE when it
	// has one.
	ActiveRevisions int `json:"activeRevisions"`
}

// MaxTaskDefinitionRevisions is ECS's quota of revisions per family.
const MaxTaskDefinitionRevisions = 1000000
