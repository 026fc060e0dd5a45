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
