package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/jointoken"
)

// TestExplainPlacementEndpoint drives ecsapi.ExplainPlacementPath on a whole
// server: SigV4 for service "berth", RunTask's authorization (an agent's
// instance credentials may not run tasks), ECS's exceptions, and an answer
// that places nothing.
func TestExplainPlacementEndpoint(t *testing.T) {
	srv, admin := startTestServer(t)
	for _, c := range []struct{ action, body string }{
		{"CreateCluster", `{"clusterName":"prod"}`},
		{"RegisterTaskDefinition", `{"family":"web","containerDefinitions":[{"name":"app","image":"nginx","cpu":256,"memory":512}]}`},
		{"RegisterContainerInstance", `{"cluster":"prod","totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1024},{"name":"MEMORY","type":"INTEGER","integerValue":2048}]}`},
	} {
		if code, body := call(t, http.DefaultClient, srv, admin, c.action, c.body); code != 200 {
			t.Fatalf("%s: %d %s", c.action, code, body)
		}
	}
	region, url := srv.Account().Region, srv.Endpoint()
	_, tok, _ := post(t, url, jointoken.TokensPath, `{"cluster":"prod"}`, &admin, jointoken.SigningName, region, time.Now())
	_, joined, _ := post(t, url, jointoken.JoinPath, `{"token":"`+tok["token"].(string)+`"}`, nil, "", region, time.Now())
	instance := aws.Credentials{AccessKeyID: joined["accessKeyId"].(string), SecretAccessKey: joined["secretAccessKey"].(string)}

	const run = `{"cluster":"prod","taskDefinition":"web","count":2,"placementStrategy":[{"type":"binpack","field":"memory"}]}`
	for _, tc := range []struct {
		name     string
		body     string
		creds    *aws.Credentials
		service  string
		wantCode int
		wantType string
	}{
		{"admin", run, &admin, "berth", 200, ""},
		{"signed for ecs", run, &admin, "ecs", 403, "InvalidSignatureException"},
		{"unsigned", run, nil, "", 403, "MissingAuthenticationTokenException"},
		{"instance credentials", run, &instance, "berth", 403, "AccessDeniedException"},
		{"not JSON", `{"cluster":`, &admin, "berth", 400, "SerializationException"},
		{"unknown cluster", `{"cluster":"nope","taskDefinition":"web"}`, &admin, "berth", 400, "ClusterNotFoundException"},
		{"bad strategy", `{"cluster":"prod","taskDefinition":"web","placementStrategy":[{"type":"pack"}]}`, &admin, "berth", 400, "InvalidParameterException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, _ := post(t, url, ecsapi.ExplainPlacementPath, tc.body, tc.creds, tc.service, region, time.Now())
			if code != tc.wantCode || tc.wantType != "" && out["__type"] != tc.wantType {
				t.Fatalf("%d %v, want %d %s", code, out, tc.wantCode, tc.wantType)
			}
			if tc.wantCode != 200 {
				return
			}
			// The instance's agent is not connected: nothing can be placed,
			// and the verdict says why.
			insts, _ := out["containerInstances"].([]any)
			fails, _ := out["failures"].([]any)
			if len(insts) != 1 || len(fails) != 1 || fails[0].(map[string]any)["reason"] != "AGENT" || out["count"] != 2.0 {
				t.Fatalf("answer %v", out)
			}
		})
	}
	if code, body := call(t, http.DefaultClient, srv, admin, "ListTasks", `{"cluster":"prod"}`); code != 200 || body != `{"taskArns":[]}` {
		t.Errorf("explaining placed tasks: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, url+ecsapi.ExplainPlacementPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %s", resp.Status)
	}
}
