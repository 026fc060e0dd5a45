package awsjson

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/schemas"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	smithy "github.com/aws/smithy-go"
)

func TestZeroFillWritesPrimitiveZeros(t *testing.T) {
	ecsPrim := func(n string) smithy.ShapeID { return smithy.ShapeID{Namespace: "com.amazonaws.ecs", Name: n} }
	svc := &Service{
		Schema:     schemas.AmazonEC2ContainerServiceV20141113,
		Primitives: []smithy.ShapeID{ecsPrim("Integer"), ecsPrim("Boolean"), ecsPrim("Long"), ecsPrim("Double")},
	}
	svc.setup()
	op := Bind(smithy.NewOperationSchema(schemas.DescribeClusters, schemas.DescribeClustersRequest, schemas.DescribeClustersResponse),
		func(context.Context, *ecs.DescribeClustersInput) (*ecs.DescribeClustersOutput, error) {
			return nil, nil
		})
	out := &ecs.DescribeClustersOutput{Clusters: []types.Cluster{{
		ClusterName:       aws.String("c"),
		RunningTasksCount: 3,
		Statistics:        []types.KeyValuePair{{Name: aws.String("n"), Value: aws.String("v")}},
	}}}
	b, err := svc.encode(context.Background(), &op, out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Clusters []map[string]any `json:"clusters"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	c := got.Clusters[0]
	for field, want := range map[string]float64{
		"runningTasksCount": 3, "pendingTasksCount": 0, "activeServicesCount": 0, "registeredContainerInstancesCount": 0,
	} {
		if v, ok := c[field].(float64); !ok || v != want {
			t.Errorf("%s = %v, want %v (body %s)", field, c[field], want, b)
		}
	}
	if _, ok := c["statistics"].([]any)[0].(map[string]any)["runningTasksCount"]; ok {
		t.Errorf("zero written into a nested structure of another shape: %s", b)
	}
	if _, ok := c["tags"]; ok {
		t.Errorf("unset non-primitive member written: %s", b)
	}
	// Without Primitives, the SDK's behaviour (zeros omitted) is unchanged.
	plain := &Service{Schema: schemas.AmazonEC2ContainerServiceV20141113}
	plain.setup()
	b, _ = plain.encode(context.Background(), &op, out)
	got.Clusters = nil
	if json.Unmarshal(b, &got); got.Clusters[0]["pendingTasksCount"] != nil {
		t.Errorf("plain service wrote zeros: %s", b)
	}
}
