package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth"

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// layers ranks berth's packages: a package may import berth packages of a
// lower rank only (the same rank is allowed inside one subtree, e.g.
// store/watchcache importing store). First matching prefix wins.
var layers = []struct {
	prefix string
	rank   int
}{
	{"internal/errdefs", 0}, {"internal/clock", 0}, {"internal/atomicfile", 1}, {"internal/version", 0}, {"internal/testenv", 0},
	{"internal/arn", 1}, {"internal/config", 1}, {"internal/testimage", 1}, {"internal/jointoken", 1},
	{"internal/tlsca", 2}, // imports jointoken: one implementation of the CA pin
	{"internal/iam", 2}, {"internal/ecs", 2}, {"internal/ecr", 2},
	{"internal/scheduler", 3}, {"internal/agentproto", 3},
	{"internal/store/storetest", 5}, {"internal/store/", 4}, {"internal/store", 3}, {"internal/embedetcd", 4},
	{"internal/awsapi", 6}, {"internal/account", 6},
	{"internal/controller", 7}, {"internal/ecsapi", 7}, {"internal/ecrapi", 7}, {"internal/elbapi", 7}, {"internal/iamapi", 7},
	{"internal/registry", 7}, {"internal/lb", 7}, {"internal/agent", 8}, {"internal/acs", 8},
	{"internal/server", 9}, {"internal/testcluster", 10}, {"internal/archtest", 11},
	{"cmd/", 12}, {"e2e", 12}, {"bench/benchkit", 11}, {"bench", 12},
}

func rankOf(t testing.TB, importPath string) int {
	rel := strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
	for _, l := range layers {
		if strings.HasSuffix(l.prefix, "/") && strings.HasPrefix(rel, l.prefix) ||
			rel == l.prefix || strings.HasPrefix(rel, l.prefix+"/") {
			return l.rank
		}
	}
	t.Errorf("package %s has no layer: add it to the layers table in archtest", importPath)
	return -1
}

func subtree(p string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
	parts := strings.SplitN(rel, "/", 3)
	if len(parts) >= 2 {
		return parts[0] + "/" + parts[1]
	}
	return rel
}

func TestImportsPointDown(t *testing.T) {
	checkLayers(t, listPackages(t))
}

// TestCheckersCatchViolations feeds the checkers packages that break each
// rule, so the rules above cannot pass vacuously.
func TestCheckersCatchViolations(t *testing.T) {
	bad := []pkg{
		{ImportPath: module + "/internal/ecs", Name: "ecs", Doc: "x", Imports: []string{module + "/internal/server", "net/http"}},
		{ImportPath: module + "/internal/store/memstore", Name: "memstore", Doc: "x", Imports: []string{"go.etcd.io/etcd/client/v3"}},
		{ImportPath: module + "/internal/util", Name: "util"},
	}
	for name, check := range map[string]func(testing.TB, []pkg){
		"layers": checkLayers, "restricted": checkRestricted, "forbidden": checkForbidden, "names": checkNamesAndDocs,
	} {
		rec := &recorder{TB: t}
		check(rec, bad)
		if rec.errors == 0 {
			t.Errorf("%s checker found nothing wrong in deliberately bad packages", name)
		}
	}
	if r := rankOf(t, module+"/internal/store"); r != 3 {
		t.Errorf("rank of internal/store = %d, want 3", r)
	}
	if r := rankOf(t, module+"/internal/store/memstore"); r != 4 {
		t.Errorf("rank of internal/store/memstore = %d, want 4", r)
	}
}

type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Errorf(string, ...any) { r.errors++ }

func checkLayers(t testing.TB, pkgs []pkg) {
	for _, p := range pkgs {
		from := rankOf(t, p.ImportPath)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := rankOf(t, imp)
			if to > from || to == from && subtree(imp) != subtree(p.ImportPath) {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies must point down", p.ImportPath, from, imp, to)
			}
		}
	}
}

// allowed lists, for import-path prefixes of outside modules, the only berth
// packages that may import them.
var allowed = map[string][]string{
	"go.etcd.io/etcd":                                  {"internal/store/etcdstore", "internal/embedetcd"},
	"github.com/containerd/":                           {"internal/agent/runtime/containerd"},
	"github.com/containerd/go-cni":                     {"internal/agent/network"},
	"github.com/aws/smithy-go/transport/http/protocol": {"internal/awsapi/awsjson"},
	"github.com/distribution/distribution/v3":          {"internal/registry"},
}

func TestOnlyNamedPackagesImportRestrictedModules(t *testing.T) {
	checkRestricted(t, listPackages(t))
}

func checkRestricted(t testing.TB, pkgs []pkg) {
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			// The longest matching prefix rules, so a narrower entry
			// (go-cni) can name other packages than a broader one.
			best := ""
			for prefix := range allowed {
				if strings.HasPrefix(imp, prefix) && len(prefix) > len(best) {
					best = prefix
				}
			}
			if best == "" {
				continue
			}
			ok := false
			for _, w := range allowed[best] {
				if rel == w || strings.HasPrefix(rel, w+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s; only %v may", p.ImportPath, imp, allowed[best])
			}
		}
	}
}

// forbidden lists imports a package subtree must never have, with the reason.
var forbidden = []struct {
	pkgPrefix, importPrefix, why string
	exact                        bool // match the import path exactly, not its subpackages
}{
	{"internal/ecs", "net/http", "the domain does no I/O", false},
	{"internal/ecs", "os", "the domain does no I/O", false},
	{"internal/ecs", module + "/internal/store", "the domain does no I/O", false},
	{"internal/ecs", "github.com/aws/aws-sdk-go-v2/service/ecs", "the domain may use the SDK's data types (…/ecs/types) but not its client", true},
	{"internal/ecr", "net/http", "the domain does no I/O", false},
	{"internal/ecr", "os", "the domain does no I/O", false},
	{"internal/ecr", module + "/internal/store", "the domain does no I/O", false},
	{"internal/iam", "net/http", "policy evaluation does no I/O", false},
	{"internal/scheduler", "net/http", "placement is a pure function", false},
	{"internal/awsapi", module + "/internal/ecs", "protocols know nothing about ECS", false},
	{"internal/awsapi", module + "/internal/ecsapi", "protocols know nothing about ECS", false},
	{"internal/ecsapi", "net/http", "services know nothing about HTTP framing", false},
	{"internal/lb", module + "/internal/ecsapi", "the data plane imports no control-plane package", false},
	{"internal/lb", module + "/internal/controller", "the data plane imports no control-plane package", false},
	{"internal/lb", module + "/internal/store", "the data plane imports no control-plane package", false},
	{"internal/agent", module + "/internal/ecsapi", "the agent meets the server only through agentproto", false},
	{"internal/agent", module + "/internal/server", "the agent meets the server only through agentproto", false},
	{"internal/agent", module + "/internal/controller", "the agent meets the server only through agentproto", false},
}

func TestForbiddenImports(t *testing.T) {
	checkForbidden(t, listPackages(t))
}

func checkForbidden(t testing.TB, pkgs []pkg) {
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, f := range forbidden {
			if rel != f.pkgPrefix && !strings.HasPrefix(rel, f.pkgPrefix+"/") {
				continue
			}
			for _, imp := range p.Imports {
				if imp == f.importPrefix || !f.exact && strings.HasPrefix(imp, f.importPrefix+"/") {
					t.Errorf("%s imports %s: %s", p.ImportPath, imp, f.why)
				}
			}
		}
	}
}

func TestPackageNamesAndDocs(t *testing.T) {
	checkNamesAndDocs(t, listPackages(t))
}

func checkNamesAndDocs(t testing.TB, pkgs []pkg) {
	banned := map[string]bool{"util": true, "utils": true, "common": true, "helpers": true, "helper": true, "types": true, "misc": true, "models": true, "shared": true}
	var missing []string
	for _, p := range pkgs {
		if banned[path.Base(p.ImportPath)] || banned[p.Name] {
			t.Errorf("package %s: grab-bag name; name packages for their one job", p.ImportPath)
		}
		if strings.TrimSpace(p.Doc) == "" {
			missing = append(missing, p.ImportPath)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("package %s has no doc comment", m)
	}
}
