package ecsapi

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

// FuzzPaginate checks that any nextToken yields a page or
// InvalidParameterException, never a panic, and that a valid token resumes
// after its key.
func FuzzPaginate(f *testing.F) {
	f.Add("", int32(2))
	f.Add(*encodeToken("b"), int32(1))
	f.Add("MTpi", int32(100)) // "1:b"
	f.Add("%%%", int32(0))
	f.Add("MTo", int32(-5))
	items := []string{"a", "b", "c", "d"}
	id := func(s string) string { return s }
	f.Fuzz(func(t *testing.T, tok string, size int32) {
		page, next, err := paginate(items, id, false, &size, &tok, listLimits)
		if err != nil {
			if code(err) != "InvalidParameterException" {
				t.Fatalf("error %v maps to %s", err, code(err))
			}
			return
		}
		if len(page) > int(size) {
			t.Fatalf("page of %d for maxResults %d", len(page), size)
		}
		if tok != "" {
			after, _ := decodeToken(tok)
			for _, p := range page {
				if p <= after {
					t.Fatalf("page %v repeats items up to %q", page, after)
				}
			}
		}
		if next != nil && len(page) == 0 {
			t.Fatal("empty page with a next token")
		}
	})
}

// FuzzActions sends arbitrary bodies to every action: each must answer
// 200 or a client error, never panic or fail with a server fault.
func FuzzActions(f *testing.F) {
	seeds := map[string]string{
		"CreateCluster":              `{"clusterName":"a","tags":[{"key":"k","value":"v"}],"settings":[{"name":"containerInsights","value":"enabled"}]}`,
		"DescribeClusters":           `{"clusters":["a","arn:aws:ecs:us-east-1:123456789012:cluster/a"],"include":["TAGS"]}`,
		"ListClusters":               `{"maxResults":1,"nextToken":"MTph"}`,
		"UpdateCluster":              `{"cluster":"a","serviceConnectDefaults":{"namespace":""}}`,
		"DeleteCluster":              `{"cluster":"a"}`,
		"RegisterTaskDefinition":     `{"family":"f","containerDefinitions":[{"name":"c","image":"i","memory":64}]}`,
		"DescribeTaskDefinition":     `{"taskDefinition":"f:1","include":["TAGS"]}`,
		"ListTaskDefinitions":        `{"familyPrefix":"f","sort":"DESC","status":"INACTIVE"}`,
		"DeregisterTaskDefinition":   `{"taskDefinition":"f:1"}`,
		"DeleteTaskDefinitions":      `{"taskDefinitions":["f:1","f"]}`,
		"TagResource":                `{"resourceArn":"arn:aws:ecs:us-east-1:123456789012:cluster/a","tags":[{"key":"x","value":"y"}]}`,
		"ListAccountSettings":        `{"effectiveSettings":true,"maxResults":3}`,
		"PutAccountSettingDefault":   `{"name":"containerInsights","value":"enhanced"}`,
		"ListTaskDefinitionFamilies": `{"familyPrefix":"f","status":"ALL"}`,
	}
	for op, body := range seeds {
		f.Add(op, body)
	}
	f.Add("UntagResource", `{"resourceArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/f:1","tagKeys":["x"]}`)
	f.Add("PutAccountSetting", `{"name":"awsvpcTrunking","value":"enabled","principalArn":"arn:aws:iam::123456789012:user/u"}`)
	f.Add("UpdateClusterSettings", `{"cluster":"a","settings":[]}`)
	f.Add("ListTagsForResource", `{"resourceArn":"arn:aws:ecs:us-east-1:123456789012:cluster/a"}`)

	// Container instances and tasks: the store below has a cluster "a"
	// with one connected instance and a task definition "f", so that
	// bodies reach placement and the lifecycle, not just validation.
	for op, body := range map[string]string{
		"RegisterContainerInstance":     `{"cluster":"a","totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1024},{"name":"PORTS","type":"STRINGSET","stringSetValue":["22"]}],"attributes":[{"name":"ecs.os-type","value":"linux"}]}`,
		"DeregisterContainerInstance":   `{"cluster":"a","containerInstance":"` + fuzzInstance + `","force":true}`,
		"DescribeContainerInstances":    `{"cluster":"a","containerInstances":["` + fuzzInstance + `","x"],"include":["TAGS","CONTAINER_INSTANCE_HEALTH"]}`,
		"ListContainerInstances":        `{"cluster":"a","filter":"attribute:ecs.os-type == linux and not(task:group == g)","status":"ACTIVE"}`,
		"UpdateContainerInstancesState": `{"cluster":"a","containerInstances":["` + fuzzInstance + `"],"status":"DRAINING"}`,
		"PutAttributes":                 `{"cluster":"a","attributes":[{"name":"stack","value":"prod","targetId":"` + fuzzInstance + `","targetType":"container-instance"}]}`,
		"DeleteAttributes":              `{"cluster":"a","attributes":[{"name":"stack","targetId":"` + fuzzInstance + `"}]}`,
		"ListAttributes":                `{"cluster":"a","targetType":"container-instance","attributeName":"stack","maxResults":1}`,
		"DiscoverPollEndpoint":          `{"cluster":"a","containerInstance":"` + fuzzInstance + `"}`,
		"RunTask":                       `{"cluster":"a","taskDefinition":"f","count":2,"clientToken":"t","overrides":{"containerOverrides":[{"name":"c","memoryReservation":8}]},"placementStrategy":[{"type":"spread","field":"instanceId"}]}`,
		"StartTask":                     `{"cluster":"a","taskDefinition":"f:1","containerInstances":["` + fuzzInstance + `"],"group":"g"}`,
		"StopTask":                      `{"cluster":"a","task":"` + fuzzTask + `","reason":"r"}`,
		"DescribeTasks":                 `{"cluster":"a","tasks":["` + fuzzTask + `"],"include":["TAGS"]}`,
		"ListTasks":                     `{"cluster":"a","family":"f","desiredStatus":"STOPPED","maxResults":5}`,
		"SubmitTaskStateChange":         `{"cluster":"a","task":"` + fuzzTask + `","status":"STOPPED","pullStartedAt":1700000000.25,"containers":[{"containerName":"c","status":"STOPPED","exitCode":1}]}`,
		"SubmitContainerStateChange":    `{"cluster":"a","task":"` + fuzzTask + `","containerName":"c","status":"RUNNING","networkBindings":[{"containerPort":80,"hostPort":32768}]}`,
	} {
		f.Add(op, body)
	}

	st := memstore.New()
	f.Cleanup(func() { _ = st.Close() })
	fc := clock.NewFake(testStart)
	svc := New(testConfig(st, fc))
	ctx := asPrincipal(adminARN)
	seedFuzzStore(f, st, fc)
	f.Fuzz(func(t *testing.T, name, body string) {
		op, ok := svc.Operation(name)
		if !ok {
			return
		}
		rec := httptest.NewRecorder()
		err := svc.Handle(ctx, rec, op, []byte(body))
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s (%v)", name, body, rec.Code, rec.Body, err)
		}
	})
}

// The instance and task that seedFuzzStore creates, named in the seeds.
const (
	fuzzInstance = "0123456789abcdef0123456789abcdef"
	fuzzTask     = "fedcba9876543210fedcba9876543210"
)

// seedFuzzStore puts a cluster "a", a task definition "f" with container
// "c", a connected instance fuzzInstance and a task fuzzTask on it into st.
func seedFuzzStore(f *testing.F, st store.Store, fc *clock.Fake) {
	h := newTestHandlers(st, fc)
	ctx := asPrincipal(adminARN)
	fail := func(err error) {
		if err != nil {
			f.Fatal(err)
		}
	}
	_, err := h.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("a")})
	fail(err)
	_, err = h.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("f"), ContainerDefinitions: []types.ContainerDefinition{
		{Name: aws.String("c"), Image: aws.String("i"), Memory: aws.Int32(16)},
	}})
	fail(err)
	in := instanceInput("a", 4096, 4096)
	_, err = h.RegisterContainerInstance(ctx, in)
	fail(err)
	// Give the instance and a task fixed ids, so seeds can name them.
	kvs, _, err := st.List(context.Background(), domain.ContainerInstancesPrefix("a"))
	fail(err)
	ci, err := decode[domain.ContainerInstance](kvs[0])
	fail(err)
	ci.ID, ci.AgentConnected = fuzzInstance, true
	op, err := put(domain.ContainerInstanceKey("a", fuzzInstance), ci)
	fail(err)
	_, err = st.Txn(context.Background(), nil, []store.Op{store.Delete(kvs[0].Key), op})
	fail(err)
	out, err := h.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("a"), TaskDefinition: aws.String("f")})
	fail(err)
	if len(out.Tasks) != 1 {
		f.Fatalf("seed task: %+v", out.Failures)
	}
	id := instanceID(aws.ToString(out.Tasks[0].TaskArn))
	t, err := decodeKey[domain.TaskRecord](st, domain.TaskKey("a", id))
	fail(err)
	t.ID = fuzzTask
	t.Task.TaskArn = aws.String(h.taskARN("a", fuzzTask))
	op, err = put(domain.TaskKey("a", fuzzTask), t)
	fail(err)
	_, err = st.Txn(context.Background(), nil, []store.Op{
		store.Delete(domain.TaskKey("a", id)), store.Delete(domain.InstanceTaskKey("a", fuzzInstance, id)),
		op, store.Put(domain.InstanceTaskKey("a", fuzzInstance, fuzzTask), []byte{}),
	})
	fail(err)
}

func decodeKey[T any](st store.Store, key string) (T, error) {
	var zero T
	kv, err := st.Get(context.Background(), key)
	if err != nil {
		return zero, err
	}
	return decode[T](kv)
}
