package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/ecsapi"
)

func TestGroupListArgs(t *testing.T) {
	lists := explainListFlags
	for _, tc := range []struct {
		args, want string // space-separated
	}{
		{"--cluster c --task-definition web", "--cluster c --task-definition web"},
		{"--placement-strategy A B --count 2", "--placement-strategy A --placement-strategy B --count 2"},
		{"--placement-strategy=A B", "--placement-strategy=A --placement-strategy B"},
		{"--placement-strategy A --placement-constraints X Y --output json", "--placement-strategy A --placement-constraints X --placement-constraints Y --output json"},
		{"--placement-strategy A B --placement-strategy C", "--placement-strategy A --placement-strategy B --placement-strategy C"},
		{"--group g stray", "--group g stray"},
		{"--placement-strategy A -- B", "--placement-strategy A -- B"},
		{"--placement-strategy", "--placement-strategy"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			if got := strings.Join(groupListArgs(strings.Fields(tc.args), lists), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseShorthand(t *testing.T) {
	keys := []string{"type", "expression"}
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"type=distinctInstance", map[string]string{"type": "distinctInstance"}, ""},
		{`type=memberOf,expression="attribute:ecs.instance-type =~ t3.*"`, map[string]string{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}, ""},
		// The shell removed the quotes: the space and == survive.
		{"type=memberOf,expression=attribute:ecs.instance-type == t3.small", map[string]string{"type": "memberOf", "expression": "attribute:ecs.instance-type == t3.small"}, ""},
		// An unquoted list keeps its commas.
		{"type=memberOf,expression=attribute:zone in [a, b]", map[string]string{"type": "memberOf", "expression": "attribute:zone in [a, b]"}, ""},
		{"expression='a, b',type=memberOf", map[string]string{"type": "memberOf", "expression": "a, b"}, ""},
		{`type=memberOf,expression=ec2InstanceId in ['i-1', 'i-2']`, map[string]string{"type": "memberOf", "expression": "ec2InstanceId in ['i-1', 'i-2']"}, ""},
		{`type=memberOf,expression=a\,b`, map[string]string{"type": "memberOf", "expression": "a,b"}, ""},
		{" type = memberOf , expression = x ", map[string]string{"type": "memberOf", "expression": "x"}, ""},
		{"field=memory", nil, `expected type=…,expression=…, got "field=memory"`},
		{"type=a,type=b", nil, "type given twice"},
		{"", nil, `expected type=…,expression=…, got ""`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseShorthand(tc.in, keys)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestExplainInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "strategy.json")
	if err := os.WriteFile(file, []byte(`[{"type":"spread","field":"host"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := explainFlags{taskDefinition: "web", count: 1}
	for _, tc := range []struct {
		name string
		edit func(*explainFlags)
		// want is the request's strategies, constraints and overrides,
		// rendered; wantErr a part of the error.
		want, wantErr string
	}{
		{"defaults", func(*explainFlags) {}, "[] [] <nil>", ""},
		{"shorthand", func(f *explainFlags) {
			f.strategies = []string{"type=spread,field=attribute:ecs.availability-zone", "type=binpack,field=memory", "type=random"}
			f.constraints = []string{`type=memberOf,expression="attribute:ecs.instance-type =~ t3.*"`, "type=distinctInstance"}
		}, "[spread attribute:ecs.availability-zone binpack memory random -] [memberOf attribute:ecs.instance-type =~ t3.* distinctInstance -] <nil>", ""},
		{"JSON", func(f *explainFlags) {
			f.strategies = []string{`[{"type":"spread","field":"instanceId"},{"type":"binpack","field":"cpu"}]`}
			f.constraints = []string{`{"type":"memberOf","expression":"attribute:a == b"}`}
			f.overrides = `{"containerOverrides":[{"name":"app","memory":2048}]}`
		}, "[spread instanceId binpack cpu] [memberOf attribute:a == b] app:2048", ""},
		{"file", func(f *explainFlags) { f.strategies = []string{"file://" + file} }, "[spread host] [] <nil>", ""},
		{"no task definition", func(f *explainFlags) { f.taskDefinition = "" }, "", "--task-definition is required"},
		{"unknown JSON member", func(f *explainFlags) { f.strategies = []string{`[{"type":"spread","fields":"host"}]`} }, "", `unknown field "fields"`},
		{"bad overrides", func(f *explainFlags) { f.overrides = `{"containerOverrides":` }, "", "--overrides: invalid JSON"},
		{"bad shorthand", func(f *explainFlags) { f.strategies = []string{"spread"} }, "", `--placement-strategy "spread": expected type=…,field=…`},
		{"missing file", func(f *explainFlags) { f.constraints = []string{"file:///nonexistent/x"} }, "", "read file:///nonexistent/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := base
			tc.edit(&fl)
			in, err := explainInput(fl)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ss, cs []string
			for _, s := range in.PlacementStrategy {
				ss = append(ss, string(s.Type), aws.ToString(s.Field))
			}
			for _, c := range in.PlacementConstraints {
				cs = append(cs, string(c.Type), aws.ToString(c.Expression))
			}
			ov := "<nil>"
			if in.Overrides != nil {
				co := in.Overrides.ContainerOverrides[0]
				ov = fmt.Sprintf("%s:%d", aws.ToString(co.Name), aws.ToInt32(co.Memory))
			}
			got := strings.ReplaceAll(fmt.Sprintf("%v %v %s", fmtList(ss), fmtList(cs), ov), "  ", " - ")
			if got != tc.want || aws.ToString(in.TaskDefinition) != "web" {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// fmtList renders a list with "-" for empty items.
func fmtList(items []string) string {
	for i, s := range items {
		if s == "" {
			items[i] = "-"
		}
	}
	return "[" + strings.Join(items, " ") + "]"
}

// FuzzParseListArg feeds arbitrary text to the parameter parser: it never
// panics, and a shorthand that parses has only the known keys.
func FuzzParseListArg(f *testing.F) {
	for _, s := range []string{"type=spread,field=host", `[{"type":"random"}]`, `{"type":"binpack"}`,
		`type=memberOf,expression="a =~ b,c"`, `a\`, `'`, `type='x`, "expression=,,,", "[", "{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.HasPrefix(s, "file://") {
			return
		}
		items, err := parseListArg[types.PlacementConstraint]("--x", s, []string{"type", "expression"}, func(kv map[string]string) types.PlacementConstraint {
			for k := range kv {
				if k != "type" && k != "expression" {
					t.Fatalf("key %q from %q", k, s)
				}
			}
			return types.PlacementConstraint{Type: types.PlacementConstraintType(kv["type"])}
		})
		if err == nil && len(items) == 0 && !strings.HasPrefix(strings.TrimSpace(s), "[") {
			t.Fatalf("%q parsed to nothing", s)
		}
	})
}

// TestExplainPlacementAgainstServer runs the command against a server: the
// table and the JSON name the instance and why it takes nothing (its agent
// is not connected), and a refusal is the server's exception.
func TestExplainPlacementAgainstServer(t *testing.T) {
	_, cfg := startTestServer(t, "127.0.0.1:0")
	client, err := newServerClient(cfg.DataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	// Set up through the AWS API with the same admin credentials.
	for _, c := range []struct{ target, body string }{
		{"CreateCluster", `{"clusterName":"prod"}`},
		{"RegisterTaskDefinition", `{"family":"web","containerDefinitions":[{"name":"app","image":"nginx","cpu":256,"memory":512,"portMappings":[{"containerPort":80,"hostPort":80}]}]}`},
		{"RegisterContainerInstance", `{"cluster":"prod","totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1024},{"name":"MEMORY","type":"INTEGER","integerValue":2048}],"attributes":[{"name":"ecs.availability-zone","value":"za"}]}`},
	} {
		if err := ecsCall(t, client, c.target, c.body); err != nil {
			t.Fatalf("%s: %v", c.target, err)
		}
	}
	args := []string{"explain-placement", "--data-dir", cfg.DataDir, "--cluster", "prod", "--task-definition", "web", "--count", "2",
		"--placement-strategy", "type=spread,field=attribute:ecs.availability-zone", "type=binpack,field=memory",
		"--placement-constraints", "type=memberOf,expression=attribute:ecs.availability-zone in [za, zb]"}
	stdout, stderr, err := runBerth(t, args...)
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, stderr)
	}
	for _, want := range []string{
		"Each task needs  cpu 256, memory 512 MiB, ports 80/tcp",
		"Strategies       spread(attribute:ecs.availability-zone), binpack(memory)",
		"Constraints      memberOf(attribute:ecs.availability-zone in [za, zb])",
		"0 of 2 tasks would be placed.",
		"ECS.AVAILABILITY-ZONE",
		"disconnected  1024      2048         za                     0      AGENT        agent is not connected",
		"run-task would return these failures:\n  AGENT  ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}

	stdout, _, err = runBerth(t, append(args, "--output", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var x ecsapi.PlacementExplanation
	if err := json.Unmarshal([]byte(stdout), &x); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	if x.Count != 2 || len(x.Strategies) != 2 || len(x.Constraints) != 1 || len(x.Instances) != 1 || x.Instances[0].Excluded == nil ||
		x.Instances[0].Excluded.Reason != "AGENT" || x.Instances[0].Attributes["ecs.availability-zone"] != "za" {
		t.Errorf("JSON %s", stdout)
	}

	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--cluster", "nope", "--task-definition", "web"}, "the server refused: ClusterNotFoundException: Cluster not found."},
		{[]string{"--task-definition", "web", "--cluster", "prod", "--placement-strategy", "type=binpack,field=disk"}, "the server refused: InvalidParameterException: Invalid field \"disk\""},
		{[]string{"--task-definition", "web", "--output", "yaml"}, "--output must be table or json"},
		{[]string{"--task-definition", "web", "stray"}, `unexpected argument "stray"`},
		{[]string{"--count", "x"}, `invalid argument "x"`},
	} {
		_, _, err := runBerth(t, append([]string{"explain-placement", "--data-dir", cfg.DataDir}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.wantErr)
		}
	}
	if out, _, err := runBerth(t, "explain-placement", "--help"); err != nil || !strings.Contains(out, "--placement-constraints") {
		t.Errorf("help: %v %q", err, out)
	}
}

// ecsCall sends one ECS action (a JSON body) with the admin's credentials.
func ecsCall(t *testing.T, c *serverClient, target, body string) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.endpoint+"/", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113."+target)
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), c.creds, req, hex.EncodeToString(sum[:]), "ecs", c.region, time.Now()); err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return nil
}
