package ecsapi

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

func TestRegisterTaskDefinition(t *testing.T) {
	e := newEnv(t)
	out := must(t, e.h.RegisterTaskDefinition)(e.ctx, taskDefInput("web", tag("team", "a")))
	td := out.TaskDefinition
	if td.Revision != 1 || aws.ToString(td.TaskDefinitionArn) != tdARN("web:1") ||
		td.Status != types.TaskDefinitionStatusActive || aws.ToString(td.RegisteredBy) != adminARN ||
		!aws.ToTime(td.RegisteredAt).Equal(testStart) || aws.ToString(td.Family) != "web" {
		t.Errorf("RegisterTaskDefinition: %+v", td)
	}
	if tagMap(out.Tags)["team"] != "a" {
		t.Errorf("tags %v", out.Tags)
	}
	if len(td.Compatibilities) == 0 {
		t.Errorf("computed fields not filled: %+v", td)
	}
	e.clock.Advance(time.Minute)
	if td2 := e.register("web"); td2.Revision != 2 || !aws.ToTime(td2.RegisteredAt).Equal(testStart.Add(time.Minute)) {
		t.Errorf("second revision: %d at %v", td2.Revision, td2.RegisteredAt)
	}
	if other := e.register("api"); other.Revision != 1 {
		t.Errorf("revisions are per family: api got %d", other.Revision)
	}

	// Validation is the domain's (PrepareTaskDefinition); it reaches the
	// caller as its exception.
	_, err := e.h.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web")})
	if c := code(err); c != "ClientException" && c != "InvalidParameterException" {
		t.Errorf("RegisterTaskDefinition without containers: %v (%s)", err, c)
	}
	_, err = e.h.RegisterTaskDefinition(e.ctx, taskDefInput("web", tag("aws:x", "1")))
	wantErr(t, err, "InvalidParameterException", "")
	if got := e.describe("web").Revision; got != 2 {
		t.Errorf("a rejected registration changed the family: newest is %d", got)
	}
}

func (e *env) describe(ref string) *types.TaskDefinition {
	e.t.Helper()
	return must(e.t, e.h.DescribeTaskDefinition)(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref)}).TaskDefinition
}

func (e *env) deregister(ref string) *types.TaskDefinition {
	e.t.Helper()
	return must(e.t, e.h.DeregisterTaskDefinition)(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(ref)}).TaskDefinition
}

func TestRegisterTaskDefinitionConcurrently(t *testing.T) {
	e := newEnv(t)
	const n = 10
	revs := make(chan int32, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			out, err := e.h.RegisterTaskDefinition(e.ctx, taskDefInput("web"))
			if err != nil {
				t.Errorf("concurrent register: %v", err)
				return
			}
			revs <- out.TaskDefinition.Revision
		})
	}
	wg.Wait()
	close(revs)
	seen := map[int32]bool{}
	for r := range revs {
		if seen[r] {
			t.Errorf("revision %d given twice", r)
		}
		seen[r] = true
	}
	for r := int32(1); r <= n; r++ {
		if !seen[r] {
			t.Errorf("revision %d missing", r)
		}
	}
}

func TestDescribeTaskDefinition(t *testing.T) {
	e := newEnv(t)
	e.register("web", tag("k", "v"))
	e.register("web")
	e.register("web")
	e.deregister("web:3")

	for ref, want := range map[string]int32{
		"web":          2, // newest ACTIVE
		"web:3":        3, // INACTIVE, by revision
		"web:1":        1,
		tdARN("web:1"): 1,
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:2": 2,
	} {
		if got := e.describe(ref); got.Revision != want {
			t.Errorf("describe %s = revision %d, want %d", ref, got.Revision, want)
		}
	}
	if td := e.describe("web:3"); td.Status != types.TaskDefinitionStatusInactive {
		t.Errorf("web:3 status %s", td.Status)
	}

	out := must(t, e.h.DescribeTaskDefinition)(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:1")})
	if out.Tags != nil {
		t.Errorf("tags without include TAGS: %v", out.Tags)
	}
	out = must(t, e.h.DescribeTaskDefinition)(e.ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("web:1"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if tagMap(out.Tags)["k"] != "v" {
		t.Errorf("include TAGS: %v", out.Tags)
	}
	out = must(t, e.h.DescribeTaskDefinition)(e.ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("web:2"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if out.Tags == nil || len(out.Tags) != 0 {
		t.Errorf("include TAGS without tags: %#v", out.Tags)
	}

	for _, ref := range []string{
		"nope", "web:9", "", "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
		"arn:aws:ecs:us-east-1:999999999999:task-definition/web:1",
	} {
		_, err := e.h.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref)})
		if ref == "" {
			wantErr(t, err, "ClientException", "")
			continue
		}
		wantErr(t, err, "ClientException", "Unable to describe task definition.")
	}
	e.deregister("web:1")
	e.deregister("web:2")
	_, err := e.h.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")})
	wantErr(t, err, "ClientException", "Unable to describe task definition.")
}

func TestDeregisterTaskDefinition(t *testing.T) {
	e := newEnv(t)
	e.register("web")
	e.clock.Advance(time.Hour)
	td := e.deregister(tdARN("web:1"))
	if td.Status != types.TaskDefinitionStatusInactive || !aws.ToTime(td.DeregisteredAt).Equal(testStart.Add(time.Hour)) {
		t.Errorf("deregistered: %+v", td)
	}
	// Again: unchanged.
	e.clock.Advance(time.Hour)
	again := e.deregister("web:1")
	if !aws.ToTime(again.DeregisteredAt).Equal(testStart.Add(time.Hour)) {
		t.Errorf("second deregister changed deregisteredAt to %v", again.DeregisteredAt)
	}
	_, err := e.h.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web")})
	wantErr(t, err, "ClientException", "Revision is missing.")
	_, err = e.h.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:2")})
	wantErr(t, err, "ClientException", "Unable to describe task definition.")
	_, err = e.h.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:x")})
	wantErr(t, err, "InvalidParameterException", "Invalid revision number. Number: x")
}

func TestDeleteTaskDefinitions(t *testing.T) {
	e := newEnv(t)
	e.register("web")
	e.register("web")
	e.register("web")
	e.deregister("web:1")
	e.deregister("web:2")
	e.clock.Advance(time.Minute)

	out := must(t, e.h.DeleteTaskDefinitions)(e.ctx, &ecs.DeleteTaskDefinitionsInput{
		TaskDefinitions: []string{"web:1", tdARN("web:2"), "web:3", "web:9", "web", "web:1", "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3"},
	})
	var deleted []string
	for _, td := range out.TaskDefinitions {
		deleted = append(deleted, aws.ToString(td.TaskDefinitionArn))
		if td.Status != types.TaskDefinitionStatusDeleteInProgress || !aws.ToTime(td.DeleteRequestedAt).Equal(testStart.Add(time.Minute)) {
			t.Errorf("deleted definition: %+v", td)
		}
	}
	if diff := cmp.Diff([]string{tdARN("web:1"), tdARN("web:2")}, deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	wantFailures := []types.Failure{
		{Arn: aws.String(tdARN("web:3")), Reason: aws.String("The specified task definition is still in ACTIVE status. Please deregister the target and try again.")},
		{Arn: aws.String(tdARN("web:9")), Reason: aws.String("The specified task definition does not exist. Specify a valid account, family, revision and try again.")},
		{Arn: aws.String("web"), Reason: aws.String("The specified task definition identifier is invalid. Specify a valid name or ARN and try again.")},
		{Arn: aws.String("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3"), Reason: aws.String("The specified task definition does not exist. Specify a valid account, family, revision and try again.")},
	}
	if diff := cmp.Diff(wantFailures, out.Failures, ignoreSerde); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}

	// A deleted revision stays describable, DELETE_IN_PROGRESS, as in ECS;
	// deleting it again answers the same.
	desc := must(t, e.h.DescribeTaskDefinition)(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:1")})
	if desc.TaskDefinition.Status != types.TaskDefinitionStatusDeleteInProgress {
		t.Errorf("describe deleted revision: status %s", desc.TaskDefinition.Status)
	}
	again := must(t, e.h.DeleteTaskDefinitions)(e.ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web:1"}})
	if len(again.TaskDefinitions) != 1 || len(again.Failures) != 0 || !aws.ToTime(again.TaskDefinitions[0].DeleteRequestedAt).Equal(testStart.Add(time.Minute)) {
		t.Errorf("second delete: %+v", again)
	}
	if got := e.listTaskDefs(ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusDeleteInProgress}); len(got) != 2 {
		t.Errorf("DELETE_IN_PROGRESS list: %v", got)
	}
	// Revision numbers are never reused.
	if td := e.register("web"); td.Revision != 4 {
		t.Errorf("registration after delete got revision %d, want 4", td.Revision)
	}

	_, err := e.h.DeleteTaskDefinitions(e.ctx, &ecs.DeleteTaskDefinitionsInput{})
	wantErr(t, err, "InvalidParameterException", "")
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, fmt.Sprintf("web:%d", i+1))
	}
	_, err = e.h.DeleteTaskDefinitions(e.ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: eleven})
	wantErr(t, err, "InvalidParameterException", "")
}

func (e *env) listTaskDefs(in ecs.ListTaskDefinitionsInput) []string {
	e.t.Helper()
	var all []string
	for range 100 {
		out := must(e.t, e.h.ListTaskDefinitions)(e.ctx, &in)
		all = append(all, out.TaskDefinitionArns...)
		if out.NextToken == nil {
			return all
		}
		in.NextToken = out.NextToken
	}
	e.t.Fatal("pagination does not end")
	return nil
}

func TestListTaskDefinitions(t *testing.T) {
	e := newEnv(t)
	// "a" sorts before "a-b" by name although its keys sort after.
	for range 11 {
		e.register("a")
	}
	e.register("a-b")
	e.register("b")
	e.deregister("a:2")

	var want []string
	for r := 1; r <= 11; r++ {
		if r != 2 {
			want = append(want, tdARN(fmt.Sprintf("a:%d", r)))
		}
	}
	want = append(want, tdARN("a-b:1"), tdARN("b:1"))
	if diff := cmp.Diff(want, e.listTaskDefs(ecs.ListTaskDefinitionsInput{})); diff != "" {
		t.Errorf("ASC (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, e.listTaskDefs(ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(3)})); diff != "" {
		t.Errorf("ASC in pages of 3 (-want +got):\n%s", diff)
	}
	rev := append([]string(nil), want...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if diff := cmp.Diff(rev, e.listTaskDefs(ecs.ListTaskDefinitionsInput{Sort: types.SortOrderDesc, MaxResults: aws.Int32(4)})); diff != "" {
		t.Errorf("DESC in pages of 4 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{tdARN("a:2")}, e.listTaskDefs(ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive})); diff != "" {
		t.Errorf("INACTIVE (-want +got):\n%s", diff)
	}
	// familyPrefix is a whole family name.
	if diff := cmp.Diff([]string{tdARN("a-b:1")}, e.listTaskDefs(ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("a-b")})); diff != "" {
		t.Errorf("familyPrefix a-b (-want +got):\n%s", diff)
	}
	if got := e.listTaskDefs(ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("a-")}); len(got) != 0 {
		t.Errorf("familyPrefix a- = %v, want nothing", got)
	}

	_, err := e.h.ListTaskDefinitions(e.ctx, &ecs.ListTaskDefinitionsInput{Status: "GONE"})
	wantErr(t, err, "InvalidParameterException", "")
	_, err = e.h.ListTaskDefinitions(e.ctx, &ecs.ListTaskDefinitionsInput{Sort: "UP"})
	wantErr(t, err, "InvalidParameterException", "")
	_, err = e.h.ListTaskDefinitions(e.ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(101)})
	wantErr(t, err, "InvalidParameterException", "")
}

func TestListTaskDefinitionFamilies(t *testing.T) {
	e := newEnv(t)
	e.register("api")
	e.register("web")
	e.register("worker")
	e.register("old")
	e.deregister("old:1")
	e.register("gone")
	e.deregister("gone:1")
	must(t, e.h.DeleteTaskDefinitions)(e.ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"gone:1"}})

	list := func(in ecs.ListTaskDefinitionFamiliesInput) []string {
		var all []string
		for range 100 {
			out := must(t, e.h.ListTaskDefinitionFamilies)(e.ctx, &in)
			all = append(all, out.Families...)
			if out.NextToken == nil {
				return all
			}
			in.NextToken = out.NextToken
		}
		t.Fatal("pagination does not end")
		return nil
	}
	tests := []struct {
		in   ecs.ListTaskDefinitionFamiliesInput
		want []string
	}{
		{ecs.ListTaskDefinitionFamiliesInput{}, []string{"api", "old", "web", "worker"}},
		{ecs.ListTaskDefinitionFamiliesInput{MaxResults: aws.Int32(1)}, []string{"api", "old", "web", "worker"}},
		{ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusAll}, []string{"api", "old", "web", "worker"}},
		{ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusActive}, []string{"api", "web", "worker"}},
		{ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusInactive}, []string{"old"}},
		{ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("w")}, []string{"web", "worker"}},
		{ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("x")}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(tt.in)); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tt.in, diff)
		}
	}
	_, err := e.h.ListTaskDefinitionFamilies(e.ctx, &ecs.ListTaskDefinitionFamiliesInput{Status: "DELETE_IN_PROGRESS"})
	wantErr(t, err, "InvalidParameterException", "")
}

func TestTaskDefinitionLimitsAndInclude(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat("x", 70000)
	_, err := e.h.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("big"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("i"), Memory: aws.Int32(64),
			Environment: []types.KeyValuePair{{Name: aws.String("BIG"), Value: aws.String(big)}}}},
	})
	wantErr(t, err, "ClientException", "")
	if err == nil || !strings.Contains(err.Error(), "Max allowed length is '65536' bytes.") {
		t.Errorf("oversized definition: %v", err)
	}
	e.register("web")
	_, err = e.h.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web"), Include: []types.TaskDefinitionField{"BOGUS"}})
	wantErr(t, err, "InvalidParameterException", "include should be one of [TAGS]")
}

func TestDescribeClustersRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	_, err := e.h.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{""}})
	wantErr(t, err, "InvalidParameterException", "Clusters can not be blank.")
	_, err = e.h.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Include: []types.ClusterField{"BOGUS"}})
	wantErr(t, err, "InvalidParameterException", "include should be one of [ATTACHMENTS,CONFIGURATIONS,SETTINGS,STATISTICS,TAGS]")
}
