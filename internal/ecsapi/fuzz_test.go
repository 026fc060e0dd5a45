package ecsapi

import (
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth/internal/clock"
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

	st := memstore.New()
	f.Cleanup(func() { _ = st.Close() })
	svc := New(testConfig(st, clock.NewFake(testStart)))
	ctx := asPrincipal(adminARN)
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
