package ecs

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestTaskDefinitionKeysSortNumerically(t *testing.T) {
	revs := []int32{1, 2, 9, 10, 11, 99, 100, 1000000, math.MaxInt32}
	var keys []string
	for _, r := range revs {
		keys = append(keys, TaskDefinitionKey("web", r))
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("keys not in revision order: %q", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, TaskDefinitionFamilyPrefix("web")) {
			t.Errorf("%q is not under its family prefix", k)
		}
		if strings.HasPrefix(k, TaskDefinitionFamilyPrefix("we")) {
			t.Errorf("%q spills into the prefix of family we", k)
		}
	}
	if got, want := TaskDefinitionKey("web", 7), "/v1/ecs/task-definitions/web/0000000007"; got != want {
		t.Errorf("TaskDefinitionKey = %q, want %q", got, want)
	}
}

func TestClusterScopedPrefixesDoNotOverlap(t *testing.T) {
	for _, f := range []func(string) string{ServicesPrefix, TasksPrefix, ContainerInstancesPrefix} {
		a, b := f("prod"), f("prod-2")
		if strings.HasPrefix(b, a) || strings.HasPrefix(a, b) {
			t.Errorf("prefixes %q and %q overlap", a, b)
		}
		if !strings.HasPrefix(a, "/v1/ecs/") {
			t.Errorf("%q is outside /v1/ecs/", a)
		}
	}
	if got := ServiceKey("prod", "api"); !strings.HasPrefix(got, ServicesPrefix("prod")) {
		t.Errorf("ServiceKey %q not under ServicesPrefix", got)
	}
	if got := TaskKey("prod", "abc"); !strings.HasPrefix(got, TasksPrefix("prod")) {
		t.Errorf("TaskKey %q not under TasksPrefix", got)
	}
	if got := ContainerInstanceKey("prod", "abc"); !strings.HasPrefix(got, ContainerInstancesPrefix("prod")) {
		t.Errorf("ContainerInstanceKey %q not under ContainerInstancesPrefix", got)
	}
}

func TestAccountSettingKeysEscapePrincipals(t *testing.T) {
	// A user at the root path named "division" and a user named "admin" at
	// path /division/ must not share a prefix.
	a := AccountSettingsPrincipalPrefix("arn:aws:iam::123456789012:user/division")
	b := AccountSettingKey("arn:aws:iam::123456789012:user/division/admin", types.SettingNameContainerInsights)
	if strings.HasPrefix(b, a) {
		t.Fatalf("%q is under %q", b, a)
	}
	k := AccountSettingKey("arn:aws:iam::123456789012:root", types.SettingNameContainerInsights)
	if !strings.HasPrefix(k, AccountSettingsPrefix) || strings.Count(strings.TrimPrefix(k, AccountSettingsPrefix), "/") != 1 {
		t.Errorf("AccountSettingKey = %q", k)
	}
}

func TestInstanceTaskKeys(t *testing.T) {
	k := InstanceTaskKey("prod", "inst1", "task1")
	if !strings.HasPrefix(k, InstanceTasksPrefix("prod", "inst1")) || !strings.HasPrefix(k, InstanceTasksClusterPrefix("prod")) ||
		!strings.HasPrefix(k, InstanceTasksRootPrefix) {
		t.Fatalf("%q is not under its prefixes", k)
	}
	if strings.HasPrefix(InstanceTasksPrefix("prod", "inst10"), InstanceTasksPrefix("prod", "inst1")) {
		t.Error("instance prefixes overlap")
	}
	c, i, id, ok := ParseInstanceTaskKey(k)
	if !ok || c != "prod" || i != "inst1" || id != "task1" {
		t.Errorf("ParseInstanceTaskKey = %q %q %q %v", c, i, id, ok)
	}
	for _, bad := range []string{TaskKey("prod", "t"), InstanceTasksPrefix("prod", "i"), InstanceTasksRootPrefix + "a/b/c/d"} {
		if _, _, _, ok := ParseInstanceTaskKey(bad); ok {
			t.Errorf("ParseInstanceTaskKey(%q) ok", bad)
		}
	}
	if c, id, ok := ParseTaskKey(TaskKey("prod", "t1")); !ok || c != "prod" || id != "t1" {
		t.Errorf("ParseTaskKey = %q %q %v", c, id, ok)
	}
	if _, _, ok := ParseTaskKey(ClusterKey("prod")); ok {
		t.Error("ParseTaskKey accepted a cluster key")
	}
	if !strings.HasPrefix(TaskKey("prod", "t"), AllTasksPrefix) || !strings.HasPrefix(ContainerInstanceKey("prod", "i"), AllContainerInstancesPrefix) {
		t.Error("per-cluster keys outside the all-clusters prefixes")
	}
	tok := ClientTokenKey("RunTask", "a/b c")
	if !strings.HasPrefix(tok, ClientTokensPrefix+"RunTask/") || strings.Count(strings.TrimPrefix(tok, ClientTokensPrefix), "/") != 1 {
		t.Errorf("ClientTokenKey = %q", tok)
	}
}
