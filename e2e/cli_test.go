package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type cluster struct {
	ClusterArn                        string
	ClusterName                       string
	Status                            string
	RegisteredContainerInstancesCount int
	RunningTasksCount                 int
	PendingTasksCount                 int
	ActiveServicesCount               int
	Tags                              []struct{ Key, Value string }
	Settings                          []struct{ Name, Value string }
	Statistics                        []struct{ Name, Value string }
}

type failure struct{ Arn, Reason, Detail string }

func TestCLIClusters(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())

	var created struct{ Cluster cluster }
	b.awsJSON(&created, "ecs", "create-cluster", "--cluster-name", "demo",
		"--tags", "key=team,value=blue", "--settings", "name=containerInsights,value=enabled")
	wantArn := fmt.Sprintf("arn:aws:ecs:us-east-1:%s:cluster/demo", b.account)
	if created.Cluster.ClusterArn != wantArn || created.Cluster.Status != "ACTIVE" || created.Cluster.ClusterName != "demo" {
		t.Fatalf("create-cluster: %+v, want arn %s ACTIVE", created.Cluster, wantArn)
	}

	var desc struct {
		Clusters []cluster
		Failures []failure
	}
	b.awsJSON(&desc, "ecs", "describe-clusters", "--clusters", "demo", "nope", "--include", "TAGS", "SETTINGS", "STATISTICS")
	if len(desc.Clusters) != 1 || desc.Clusters[0].ClusterArn != wantArn {
		t.Fatalf("describe-clusters: %+v", desc)
	}
	c := desc.Clusters[0]
	if len(c.Tags) != 1 || c.Tags[0].Key != "team" || c.Tags[0].Value != "blue" {
		t.Errorf("tags: %+v", c.Tags)
	}
	if len(c.Settings) != 1 || c.Settings[0].Name != "containerInsights" || c.Settings[0].Value != "enabled" {
		t.Errorf("settings: %+v", c.Settings)
	}
	if len(c.Statistics) == 0 {
		t.Errorf("statistics missing with --include STATISTICS")
	}
	if len(desc.Failures) != 1 || desc.Failures[0].Reason != "MISSING" ||
		desc.Failures[0].Arn != fmt.Sprintf("arn:aws:ecs:us-east-1:%s:cluster/nope", b.account) {
		t.Errorf("failures: %+v", desc.Failures)
	}
	// Without --include, no tags or settings.
	b.awsJSON(&desc, "ecs", "describe-clusters", "--clusters", wantArn)
	if len(desc.Clusters) != 1 || len(desc.Clusters[0].Tags) != 0 {
		t.Errorf("describe without include: %+v", desc.Clusters)
	}

	b.awsJSON(nil, "ecs", "update-cluster-settings", "--cluster", "demo", "--settings", "name=containerInsights,value=disabled")
	b.awsJSON(&desc, "ecs", "describe-clusters", "--clusters", "demo", "--include", "SETTINGS")
	if got := desc.Clusters[0].Settings; len(got) != 1 || got[0].Value != "disabled" {
		t.Errorf("after update-cluster-settings: %+v", got)
	}
	b.awsJSON(nil, "ecs", "update-cluster", "--cluster", "demo", "--settings", "name=containerInsights,value=enabled")

	// Pagination: the CLI follows nextToken with --page-size, and hands out
	// a starting token with --max-items.
	for i := 0; i < 5; i++ {
		b.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", fmt.Sprintf("page-%d", i))
	}
	var list struct {
		ClusterArns []string
		NextToken   string
	}
	b.awsJSON(&list, "ecs", "list-clusters", "--page-size", "2")
	if len(list.ClusterArns) != 6 {
		t.Fatalf("list-clusters --page-size 2: %d clusters, want 6: %v", len(list.ClusterArns), list.ClusterArns)
	}
	b.awsJSON(&list, "ecs", "list-clusters", "--max-items", "4")
	if len(list.ClusterArns) != 4 || list.NextToken == "" {
		t.Fatalf("list-clusters --max-items 4: %+v", list)
	}
	first := list.ClusterArns
	b.awsJSON(&list, "ecs", "list-clusters", "--max-items", "4", "--starting-token", list.NextToken)
	if len(list.ClusterArns) != 2 || list.NextToken != "" {
		t.Fatalf("second page: %+v", list)
	}
	seen := map[string]bool{}
	for _, a := range append(first, list.ClusterArns...) {
		if seen[a] {
			t.Errorf("cluster %s listed twice across pages", a)
		}
		seen[a] = true
	}
	b.awsFails("InvalidParameterException", "", "ecs", "list-clusters", "--max-results", "101", "--no-paginate")

	var deleted struct{ Cluster cluster }
	b.awsJSON(&deleted, "ecs", "delete-cluster", "--cluster", "page-0")
	if deleted.Cluster.Status != "INACTIVE" {
		t.Errorf("delete-cluster: status %s, want INACTIVE", deleted.Cluster.Status)
	}
	b.awsJSON(&desc, "ecs", "describe-clusters", "--clusters", "page-0")
	if len(desc.Clusters) != 1 || desc.Clusters[0].Status != "INACTIVE" {
		t.Errorf("describe deleted cluster: %+v", desc)
	}
	b.awsJSON(&list, "ecs", "list-clusters")
	if len(list.ClusterArns) != 5 {
		t.Errorf("list after delete: %v", list.ClusterArns)
	}
	b.awsFails("ClusterNotFoundException", "Cluster not found.", "ecs", "delete-cluster", "--cluster", "no-such-cluster")
	b.awsFails("ClusterNotFoundException", "Cluster not found.", "ecs", "update-cluster-settings", "--cluster", "no-such-cluster",
		"--settings", "name=containerInsights,value=enabled")
}

type taskDefinition struct {
	TaskDefinitionArn    string
	Family               string
	Revision             int
	Status               string
	Compatibilities      []string
	ContainerDefinitions []struct {
		Name      string
		Image     string
		Essential bool
	}
	RegisteredAt string // the CLI prints timestamps as ISO 8601
}

const webContainers = `[{"name":"web","image":"registry.local/web:1","memory":128,"portMappings":[{"containerPort":80}]}]`

func TestCLITaskDefinitions(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())

	var reg struct {
		TaskDefinition taskDefinition
		Tags           []struct{ Key, Value string }
	}
	for rev := 1; rev <= 3; rev++ {
		b.awsJSON(&reg, "ecs", "register-task-definition", "--family", "web", "--container-definitions", webContainers,
			"--tags", "key=app,value=web")
		want := fmt.Sprintf("arn:aws:ecs:us-east-1:%s:task-definition/web:%d", b.account, rev)
		if reg.TaskDefinition.Revision != rev || reg.TaskDefinition.TaskDefinitionArn != want || reg.TaskDefinition.Status != "ACTIVE" {
			t.Fatalf("register #%d: %+v", rev, reg.TaskDefinition)
		}
	}
	if reg.TaskDefinition.RegisteredAt == "" || len(reg.TaskDefinition.ContainerDefinitions) != 1 ||
		!reg.TaskDefinition.ContainerDefinitions[0].Essential {
		t.Errorf("register output: %+v", reg.TaskDefinition)
	}
	b.awsJSON(nil, "ecs", "register-task-definition", "--family", "worker", "--container-definitions",
		`[{"name":"w","image":"registry.local/worker:1","memoryReservation":64}]`)

	var desc struct {
		TaskDefinition taskDefinition
		Tags           []struct{ Key, Value string }
	}
	for _, ref := range []string{"web", "web:3", reg.TaskDefinition.TaskDefinitionArn} {
		b.awsJSON(&desc, "ecs", "describe-task-definition", "--task-definition", ref)
		if desc.TaskDefinition.Revision != 3 {
			t.Errorf("describe %s: revision %d, want 3", ref, desc.TaskDefinition.Revision)
		}
	}
	b.awsJSON(&desc, "ecs", "describe-task-definition", "--task-definition", "web:1", "--include", "TAGS")
	if desc.TaskDefinition.Revision != 1 || len(desc.Tags) != 1 || desc.Tags[0].Key != "app" {
		t.Errorf("describe web:1 with tags: %+v", desc)
	}
	b.awsFails("ClientException", "Unable to describe task definition.", "ecs", "describe-task-definition", "--task-definition", "nope:1")

	var list struct{ TaskDefinitionArns []string }
	b.awsJSON(&list, "ecs", "list-task-definitions", "--family-prefix", "web", "--sort", "DESC")
	if len(list.TaskDefinitionArns) != 3 || !strings.HasSuffix(list.TaskDefinitionArns[0], "web:3") {
		t.Errorf("list-task-definitions DESC: %v", list.TaskDefinitionArns)
	}
	b.awsJSON(&list, "ecs", "list-task-definitions", "--page-size", "1")
	if len(list.TaskDefinitionArns) != 4 || !strings.HasSuffix(list.TaskDefinitionArns[0], "web:1") {
		t.Errorf("list-task-definitions paged: %v", list.TaskDefinitionArns)
	}
	var fams struct{ Families []string }
	b.awsJSON(&fams, "ecs", "list-task-definition-families")
	if strings.Join(fams.Families, ",") != "web,worker" {
		t.Errorf("families: %v", fams.Families)
	}

	var dereg struct{ TaskDefinition taskDefinition }
	b.awsJSON(&dereg, "ecs", "deregister-task-definition", "--task-definition", "web:3")
	if dereg.TaskDefinition.Status != "INACTIVE" {
		t.Errorf("deregister: %+v", dereg.TaskDefinition)
	}
	b.awsJSON(&desc, "ecs", "describe-task-definition", "--task-definition", "web")
	if desc.TaskDefinition.Revision != 2 {
		t.Errorf("after deregistering web:3, family resolves to revision %d, want 2", desc.TaskDefinition.Revision)
	}
	b.awsJSON(&list, "ecs", "list-task-definitions", "--status", "INACTIVE")
	if len(list.TaskDefinitionArns) != 1 || !strings.HasSuffix(list.TaskDefinitionArns[0], "web:3") {
		t.Errorf("INACTIVE list: %v", list.TaskDefinitionArns)
	}
	// A new registration never reuses a revision.
	b.awsJSON(&reg, "ecs", "register-task-definition", "--family", "web", "--container-definitions", webContainers)
	if reg.TaskDefinition.Revision != 4 {
		t.Errorf("revision after deregister: %d, want 4", reg.TaskDefinition.Revision)
	}

	// Invalid definitions get ECS's ClientException texts.
	b.awsFails("ClientException", "Container.image should not be null or empty.",
		"ecs", "register-task-definition", "--family", "bad", "--container-definitions", `[{"name":"x","memory":128}]`)
	b.awsFails("ClientException", "", "ecs", "register-task-definition", "--family", "bad", "--container-definitions", `[{"name":"x","image":"i"}]`)

	// Tags on task definitions.
	arn := reg.TaskDefinition.TaskDefinitionArn
	b.awsJSON(nil, "ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=a,value=1", "key=b,value=2")
	b.awsJSON(nil, "ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "a")
	var tags struct{ Tags []struct{ Key, Value string } }
	b.awsJSON(&tags, "ecs", "list-tags-for-resource", "--resource-arn", arn)
	if len(tags.Tags) != 1 || tags.Tags[0].Key != "b" || tags.Tags[0].Value != "2" {
		t.Errorf("tags after tag/untag: %+v", tags.Tags)
	}
}

func TestCLIClusterTags(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())
	var created struct{ Cluster cluster }
	b.awsJSON(&created, "ecs", "create-cluster", "--cluster-name", "tagged")
	arn := created.Cluster.ClusterArn
	b.awsJSON(nil, "ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=env,value=dev", "key=owner,value=me")
	b.awsJSON(nil, "ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "owner")
	var tags struct{ Tags []struct{ Key, Value string } }
	b.awsJSON(&tags, "ecs", "list-tags-for-resource", "--resource-arn", arn)
	if len(tags.Tags) != 1 || tags.Tags[0].Key != "env" {
		t.Errorf("cluster tags: %+v", tags.Tags)
	}
	b.awsFails("InvalidParameterException", "", "ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=aws:reserved,value=x")
}

func TestCLIAccountSettings(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())
	b.awsJSON(nil, "ecs", "put-account-setting-default", "--name", "containerInsights", "--value", "enabled")
	var out struct {
		Settings []struct{ Name, Value, PrincipalArn string }
	}
	b.awsJSON(&out, "ecs", "list-account-settings", "--name", "containerInsights", "--effective-settings")
	if len(out.Settings) != 1 || out.Settings[0].Value != "enabled" {
		t.Fatalf("effective containerInsights: %+v", out.Settings)
	}
	b.awsJSON(nil, "ecs", "put-account-setting", "--name", "containerInsights", "--value", "disabled")
	b.awsJSON(&out, "ecs", "list-account-settings", "--name", "containerInsights", "--effective-settings")
	if len(out.Settings) != 1 || out.Settings[0].Value != "disabled" {
		t.Fatalf("after put-account-setting: %+v", out.Settings)
	}
	b.awsFails("InvalidParameterException", "", "ecs", "put-account-setting", "--name", "containerInsights", "--value", "sideways")
}

func TestCLIAuthentication(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())
	res := b.aws("--no-sign-request", "ecs", "list-clusters")
	if res.code == 0 || !strings.Contains(res.stderr, "(MissingAuthenticationTokenException)") {
		t.Errorf("unsigned: exit %d, stderr %q", res.code, res.stderr)
	}
	akid := b.adminCreds().AccessKeyID
	res = b.awsWithEnv([]string{"AWS_PROFILE=", "AWS_DEFAULT_REGION=us-east-1", "AWS_ACCESS_KEY_ID=" + akid, "AWS_SECRET_ACCESS_KEY=wrongwrongwrongwrongwrongwrongwrongwrong"},
		"ecs", "list-clusters")
	if res.code == 0 || !strings.Contains(res.stderr, "(InvalidSignatureException)") {
		t.Errorf("wrong secret: exit %d, stderr %q", res.code, res.stderr)
	}
	res = b.awsWithEnv([]string{"AWS_PROFILE=", "AWS_DEFAULT_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00", "AWS_SECRET_ACCESS_KEY=x"},
		"ecs", "list-clusters")
	if res.code == 0 || !strings.Contains(res.stderr, "(UnrecognizedClientException)") ||
		!strings.Contains(res.stderr, "The security token included in the request is invalid.") {
		t.Errorf("unknown key: exit %d, stderr %q", res.code, res.stderr)
	}

	// A clock 10 minutes behind: the CLI signs with a stale date.
	_, err := exec.LookPath("faketime")
	requirePrereq(t, "faketime (Debian package faketime)", err == nil)
	for _, offset := range []string{"-10m", "+10m"} {
		res = b.awsVia([]string{"faketime", "-f", offset}, nil, "ecs", "list-clusters")
		if res.code == 0 || !strings.Contains(res.stderr, "(InvalidSignatureException)") || !strings.Contains(res.stderr, "Signature ") {
			t.Errorf("clock %s: exit %d, stderr %q", offset, res.code, res.stderr)
		}
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	cliAvailable(t)
	dir := t.TempDir()
	b := startBerth(t, dir)
	b.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", "survivor")
	b.awsJSON(nil, "ecs", "register-task-definition", "--family", "keep", "--container-definitions", webContainers)
	b.awsJSON(nil, "ecs", "register-task-definition", "--family", "keep", "--container-definitions", webContainers)
	credsBefore, _ := os.ReadFile(filepath.Join(dir, "credentials"))
	account := b.account

	// SIGKILL: no chance to flush anything; acknowledged writes must survive.
	_ = b.stop(syscall.SIGKILL)
	b = startBerth(t, dir)
	if b.account != account {
		t.Errorf("account changed across restart: %s → %s", account, b.account)
	}
	credsAfter, _ := os.ReadFile(filepath.Join(dir, "credentials"))
	if string(credsBefore) != string(credsAfter) {
		t.Errorf("credentials changed across restart")
	}
	var desc struct{ Clusters []cluster }
	b.awsJSON(&desc, "ecs", "describe-clusters", "--clusters", "survivor")
	if len(desc.Clusters) != 1 || desc.Clusters[0].Status != "ACTIVE" {
		t.Errorf("cluster after SIGKILL restart: %+v", desc)
	}
	var td struct{ TaskDefinition taskDefinition }
	b.awsJSON(&td, "ecs", "describe-task-definition", "--task-definition", "keep")
	if td.TaskDefinition.Revision != 2 {
		t.Errorf("task definition after restart: revision %d, want 2", td.TaskDefinition.Revision)
	}

	// SIGTERM: a clean shutdown exits 0 and also keeps everything.
	b.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", "after-kill")
	if err := b.stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM exit: %v\n%s", err, b.output.String())
	}
	b = startBerth(t, dir)
	b.awsJSON(&desc, "ecs", "describe-clusters", "--clusters", "survivor", "after-kill")
	if len(desc.Clusters) != 2 {
		t.Errorf("clusters after SIGTERM restart: %+v", desc)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())
	b.awsJSON(nil, "ecs", "list-clusters")
	resp, err := http.Get(b.endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp.Body)
	if !strings.Contains(body, `berth_api_requests_total{action="ListClusters",code="200",service="ecs"}`) {
		t.Errorf("metrics lack the ListClusters counter:\n%s", body[:min(len(body), 2000)])
	}
	if !strings.Contains(body, `berth_api_request_duration_seconds_bucket{action="ListClusters"`) {
		t.Errorf("metrics lack the ListClusters latency histogram")
	}
}

// TestExternalEtcd points a second server at the first one's etcd with
// --etcd-endpoints: both serve the same account and state, which is also
// how several servers share one external etcd cluster.
func TestExternalEtcd(t *testing.T) {
	cliAvailable(t)
	a := startBerth(t, t.TempDir())
	raw, err := os.ReadFile(filepath.Join(a.dataDir, "etcd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var urls struct{ Client string }
	if err := json.Unmarshal(raw, &urls); err != nil || urls.Client == "" {
		t.Fatalf("etcd.json %q: %v", raw, err)
	}
	b := startCommand(t, "server", t.TempDir(), "--etcd-endpoints", urls.Client)
	if b.account != a.account {
		t.Fatalf("server on external etcd has account %s, want %s", b.account, a.account)
	}
	if _, err := os.Stat(filepath.Join(b.dataDir, "etcd")); !os.IsNotExist(err) {
		t.Errorf("server with --etcd-endpoints started an embedded etcd too (%v)", err)
	}
	a.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", "shared")
	var desc struct{ Clusters []cluster }
	waitFor(t, 10*time.Second, "the second server to see the cluster", func() bool {
		b.awsJSON(&desc, "ecs", "describe-clusters", "--clusters", "shared")
		return len(desc.Clusters) == 1
	})
	b.awsJSON(nil, "ecs", "register-task-definition", "--family", "via-b", "--container-definitions", webContainers)
	var td struct{ TaskDefinition taskDefinition }
	waitFor(t, 10*time.Second, "the first server to see the task definition", func() bool {
		res := a.aws("ecs", "describe-task-definition", "--task-definition", "via-b")
		return res.code == 0 && json.Unmarshal([]byte(res.stdout), &td) == nil && td.TaskDefinition.Revision == 1
	})
}
