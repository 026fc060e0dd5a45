package ecs

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/errdefs"
)

// FuzzPrepareTaskDefinition feeds RegisterTaskDefinition-shaped JSON (as a
// client sends it; encoding/json matches keys case-insensitively) through
// PrepareTaskDefinition. It must never panic; every error must be an
// invalid-argument error with a message; and whatever it accepts must pass
// again unchanged, as a re-registered describe output does.
func FuzzPrepareTaskDefinition(f *testing.F) {
	for _, seed := range []string{
		`{"family":"nginx","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512",
		  "executionRoleArn":"arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
		  "containerDefinitions":[{"name":"nginx","image":"nginx","portMappings":[{"containerPort":80}],
		  "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g","awslogs-region":"us-east-1"}}}]}`,
		`{"family":"web","containerDefinitions":[{"name":"app","image":"nginx","memory":256,"links":["db:database"],
		  "portMappings":[{"containerPort":80,"hostPort":8080}],"mountPoints":[{"sourceVolume":"data","containerPath":"/d"}]},
		  {"name":"db","image":"postgres","memoryReservation":512,"essential":false,
		  "healthCheck":{"command":["CMD-SHELL","pg_isready"],"interval":10}}],"volumes":[{"name":"data","host":{"sourcePath":"/srv"}}]}`,
		`{"family":"x","cpu":"1 vCPU","memory":"2 GB","networkMode":"host","pidMode":"host","ipcMode":"none",
		  "containerDefinitions":[{"name":"a","image":"i","dependsOn":[{"containerName":"b","condition":"SUCCESS"}]},
		  {"name":"b","image":"i","essential":false,"dependsOn":[{"containerName":"a","condition":"START"}]}]}`,
		`{"family":"p","containerDefinitions":[{"name":"a","image":"i","memory":6,"portMappings":[{"containerPortRange":"1-65535"}],
		  "ulimits":[{"name":"nofile","softLimit":1,"hardLimit":2}],"linuxParameters":{"tmpfs":[{"containerPath":"/t","size":1}]}}],
		  "placementConstraints":[{"type":"memberOf","expression":"attribute:ecs.os-type == linux"}],"ephemeralStorage":{"sizeInGiB":21}}`,
		`{"family":"m","networkMode":"awsvpc","proxyConfiguration":{"type":"APPMESH","containerName":"envoy"},
		  "containerDefinitions":[{"name":"envoy","image":"envoy","memory":128,"portMappings":[{"containerPort":9901,"hostPort":0}]}]}`,
		`{}`,
		`{"family":"","containerDefinitions":[{}]}`,
		`{"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"healthCheck":{"command":[]}}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var td types.TaskDefinition
		if json.Unmarshal(data, &td) != nil {
			return
		}
		before, _ := json.Marshal(&td)
		err := PrepareTaskDefinition(&td, PrepareOptions{RegistryHosts: []string{"127.0.0.1:7400"}})
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || errdefs.Message(err, "") == "" {
				t.Fatalf("error %v: want an invalid-argument error with a message", err)
			}
			if after, _ := json.Marshal(&td); string(after) != string(before) {
				t.Fatalf("definition changed on error %v", err)
			}
			return
		}
		if td.Status != types.TaskDefinitionStatusActive || !slices.Contains(td.Compatibilities, types.CompatibilityEc2) {
			t.Fatalf("status %q, compatibilities %v", td.Status, td.Compatibilities)
		}
		for _, c := range td.ContainerDefinitions {
			if c.Essential == nil || c.PortMappings == nil || c.Environment == nil {
				t.Fatalf("container %q lacks its defaults", tdValue(c.Name))
			}
		}
		first, err := json.Marshal(&td)
		if err != nil {
			t.Fatal(err)
		}
		var again types.TaskDefinition
		if err := json.Unmarshal(first, &again); err != nil {
			t.Fatal(err)
		}
		if err := PrepareTaskDefinition(&again, PrepareOptions{RegistryHosts: []string{"127.0.0.1:7400"}}); err != nil {
			t.Fatalf("accepted once, refused the second time: %v\n%s", err, first)
		}
		if second, _ := json.Marshal(&again); string(second) != string(first) {
			t.Fatalf("second pass changed the definition:\n%s\n%s", first, second)
		}
	})
}
