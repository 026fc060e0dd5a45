package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testimage"
)

// requireSkopeo finds skopeo (Debian package skopeo; scripts/deps.sh
// installs it): skip locally, fail under CI=true.
func requireSkopeo(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("skopeo")
	requirePrereq(t, "skopeo (Debian package skopeo)", err == nil)
	return p
}

// skopeo runs skopeo with an auth file of its own; no network but the
// loopback registry.
type skopeoCLI struct {
	t        *testing.T
	path     string
	authfile string
}

func (s skopeoCLI) run(stdin string, args ...string) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path, args...)
	cmd.Env = append(os.Environ(), "REGISTRY_AUTH_FILE="+s.authfile)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s skopeoCLI) must(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.run(stdin, args...)
	if err != nil {
		s.t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func registryStatus(t *testing.T, url, user, password string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

// TestRegistryWithStockTools is issue 6's end-to-end walk: aws ecr
// create-repository and get-login-password, `berth image import`, skopeo
// login/copy/inspect against berth's registry, the ECR API's view of the
// images, refusals (anonymous, wrong token, immutable tag), and a task
// whose image lives in berth's registry running with no registry auth
// configured on the node; docker login/push/pull when a Docker engine
// runs here.
func TestRegistryWithStockTools(t *testing.T) {
	requireAgentPrereqs(t)
	sk := skopeoCLI{t: t, path: requireSkopeo(t), authfile: filepath.Join(t.TempDir(), "auth.json")}
	b := startBerthWithAgent(t, t.TempDir())
	host := strings.TrimPrefix(b.endpoint, "http://")

	var repo struct {
		Repository struct{ RepositoryUri, RepositoryArn, ImageTagMutability string }
	}
	b.awsJSON(&repo, "ecr", "create-repository", "--repository-name", "team/probe")
	if repo.Repository.RepositoryUri != host+"/team/probe" || repo.Repository.ImageTagMutability != "MUTABLE" {
		t.Fatalf("create-repository: %+v", repo)
	}
	res := b.aws("ecr", "get-login-password")
	if res.code != 0 {
		t.Fatalf("get-login-password: %s", res.stderr)
	}
	password := strings.TrimSpace(res.stdout)
	sk.must(password, "login", "--tls-verify=false", "--username", "AWS", "--password-stdin", host)

	// Refusals before anything else: no credentials, a wrong token.
	code, hdr := registryStatus(t, b.endpoint+"/v2/team/probe/tags/list", "", "")
	if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("anonymous: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if code, _ := registryStatus(t, b.endpoint+"/v2/team/probe/tags/list", "AWS", "not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, _ := registryStatus(t, b.endpoint+"/v2/team/probe/tags/list", "AWS", password); code != http.StatusOK {
		t.Errorf("the token from get-login-password: %d, want 200", code)
	}

	// berth image import loads a docker archive; skopeo pushes another tag.
	tar := testimage.Build(t, "berth.test/e2e/registry:1")
	imp := exec.Command(binary, "image", "import", tar, "--repository", "team/probe:1", "--data-dir", b.dataDir)
	out, err := imp.CombinedOutput()
	if err != nil {
		t.Fatalf("berth image import: %v\n%s", err, out)
	}
	imported := strings.TrimSpace(string(out))
	if !strings.HasPrefix(imported, host+"/team/probe@sha256:") {
		t.Fatalf("berth image import printed %q", imported)
	}
	digest := strings.TrimPrefix(imported, host+"/team/probe@")
	sk.must("", "copy", "--dest-tls-verify=false", "docker-archive:"+tar, "docker://"+host+"/team/probe:2")
	var inspect struct{ Digest string }
	if err := json.Unmarshal([]byte(sk.must("", "inspect", "--tls-verify=false", "docker://"+host+"/team/probe:1")), &inspect); err != nil {
		t.Fatal(err)
	}
	if inspect.Digest != digest {
		t.Errorf("skopeo inspect digest %s, berth image import said %s", inspect.Digest, digest)
	}
	// A pull through skopeo verifies every blob's digest.
	sk.must("", "copy", "--src-tls-verify=false", "docker://"+host+"/team/probe:1", "oci:"+filepath.Join(t.TempDir(), "layout")+":x")

	var images struct {
		ImageDetails []struct {
			ImageDigest            string
			ImageTags              []string
			ImageSizeInBytes       int64
			ImageManifestMediaType string
		}
	}
	b.awsJSON(&images, "ecr", "describe-images", "--repository-name", "team/probe")
	if len(images.ImageDetails) == 0 || images.ImageDetails[0].ImageSizeInBytes <= 0 {
		t.Fatalf("describe-images: %+v", images)
	}
	tags := map[string]bool{}
	for _, d := range images.ImageDetails {
		for _, tg := range d.ImageTags {
			tags[tg] = true
		}
	}
	if !tags["1"] || !tags["2"] {
		t.Errorf("describe-images tags %v, want 1 and 2", tags)
	}

	// IMMUTABLE: an existing tag cannot be overwritten.
	b.awsJSON(nil, "ecr", "put-image-tag-mutability", "--repository-name", "team/probe", "--image-tag-mutability", "IMMUTABLE")
	if out, err := sk.run("", "copy", "--dest-tls-verify=false", "docker-archive:"+testimage.BuildSpec(t, testimage.Spec{Ref: "berth.test/e2e/other:1", Cmd: []string{"sleep"}}),
		"docker://"+host+"/team/probe:1"); err == nil || !strings.Contains(out, "immutable") {
		t.Errorf("overwriting an immutable tag: err %v\n%s", err, out)
	}
	// A push to a repository that does not exist is refused as ECR does.
	if out, err := sk.run("", "copy", "--dest-tls-verify=false", "docker-archive:"+tar, "docker://"+host+"/nope:1"); err == nil || !strings.Contains(out, "does not exist") {
		t.Errorf("push to a missing repository: err %v\n%s", err, out)
	}

	// A task whose image is in berth's registry runs: the agent logs in
	// with its own identity (nothing configured on the node).
	b.registerTaskDef("fromreg", fmt.Sprintf(`[{"name":"web","image":%q,"memory":32,"essential":true,
		"portMappings":[{"containerPort":8080,"hostPort":0}]}]`, host+"/team/probe:1"))
	arns := b.runTask("--task-definition", "fromreg")
	tk := b.waitTasks(2*time.Minute, "the task from berth's registry RUNNING", running, arns...)[0]
	if tk.Containers[0].ImageDigest != digest {
		t.Errorf("task image digest %q, want %q", tk.Containers[0].ImageDigest, digest)
	}
	port := tk.Containers[0].NetworkBindings[0].HostPort
	if code, _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || code != 200 {
		t.Errorf("the task's port %d: %d %v", port, code, err)
	}
	b.awsJSON(nil, "ecs", "stop-task", "--task", arns[0])
	b.waitTasks(time.Minute, "STOPPED", stopped, arns...)

	// Garbage collection runs on demand (nothing is unreferenced and old).
	gc := exec.Command(binary, "registry", "gc", "--data-dir", b.dataDir)
	if out, err := gc.CombinedOutput(); err != nil || !strings.Contains(string(out), "deleted 0 unreferenced blobs") {
		t.Errorf("berth registry gc: %v\n%s", err, out)
	}

	// docker, where an engine runs on this machine.
	if exec.Command("docker", "info").Run() != nil {
		t.Log("no Docker engine: docker login/push/pull not checked")
		return
	}
	dockerDo := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command("docker", args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dockerDo(password, "login", "--username", "AWS", "--password-stdin", host)
	dockerDo("", "pull", host+"/team/probe:2")
	dockerDo("", "tag", host+"/team/probe:2", host+"/team/probe:docker")
	dockerDo("", "push", host+"/team/probe:docker")
}
