package registry

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ecr"
)

// TestDistributionSpecConformance runs the OCI distribution-spec
// conformance suite (github.com/opencontainers/distribution-spec/conformance,
// a `tool` of berth's go.mod, built from the module cache or the Go module
// proxy) against the registry on a loopback listener: the pull, push,
// content discovery and content management workflows, logged in with an
// ECR authorization token.
func TestDistributionSpecConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the OCI conformance suite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "conformance")
	build := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/opencontainers/distribution-spec/conformance")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance suite: %v\n%s", err, out)
	}

	e := newEnv(t)
	e.repos.Put(newRepo("conformance/repo1", ecr.TagMutable))
	e.repos.Put(newRepo("conformance/repo2", ecr.TagMutable))
	results := t.TempDir()
	run := exec.CommandContext(ctx, bin)
	run.Dir = results
	run.Env = append(os.Environ(),
		"OCI_RESULTS_DIR="+results,
		"OCI_REGISTRY="+e.host,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_USERNAME="+ecr.AuthorizationUser,
		"OCI_PASSWORD="+e.token(adminARN),
		"OCI_LOG=warn",
		// ECR, like distribution, stores sha256 digests only: a blob pushed
		// as sha512 is answered with its sha256 digest.
		"OCI_DATA_SHA512=false",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	)
	out, err := run.CombinedOutput()
	// The suite exits 0 when it cannot even start; only its results file
	// tells that it ran.
	report, rerr := os.ReadFile(filepath.Join(results, "results.yaml"))
	if err != nil || rerr != nil {
		t.Fatalf("conformance suite failed: %v (results: %v)\n%s\n--- results.yaml\n%s", err, rerr, out, head(string(report), 6000))
	}
	t.Logf("conformance suite passed:\n%s\n--- results.yaml\n%s", out, report)
}

func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n…"
}
