// Package testimage builds runnable OCI images for tests from Go source,
// with no downloads: it compiles a static Go program (CGO_ENABLED=0) and
// packs it with go-containerregistry into a one-layer image written as a
// docker-archive tarball, which containerd's Import (and `ctr images import`)
// accept.
//
// The usual image is the probe (./probe), a multipurpose program whose
// behaviour is chosen by its arguments; see its package comment.
//
// Compiled binaries are cached under the user's cache directory, keyed by
// the source and the Go version, so a test binary pays for `go build` once
// and later runs pay nothing.
package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ProbePath is where the probe binary sits in images built by Build.
const ProbePath = "/probe"

// Spec describes an image around one binary. Zero fields take the defaults
// noted on them.
type Spec struct {
	Ref        string   // image reference written into the archive (required)
	Binary     string   // path of the program in the image; default ProbePath
	Entrypoint []string // default [Binary]
	Cmd        []string // the probe's default: serve -port 8080
	Env        []string // default PATH=/usr/local/bin:/usr/bin:/bin
	User       string
	WorkingDir string
	StopSignal string
	Labels     map[string]string
	// Files adds regular files (path in the image → content).
	Files map[string]string
}

// Build returns the path of a docker-archive tarball of the probe image
// tagged ref, with the default configuration (entrypoint /probe, command
// "serve -port 8080").
func Build(t testing.TB, ref string) string {
	t.Helper()
	return BuildSpec(t, Spec{Ref: ref})
}

// BuildSpec is Build with a configuration.
func BuildSpec(t testing.TB, spec Spec) string {
	t.Helper()
	bin, err := probeBinary()
	if err != nil {
		t.Fatalf("testimage: building the probe: %v", err)
	}
	if spec.Cmd == nil && spec.Entrypoint == nil {
		spec.Cmd = []string{"serve", "-port", "8080"}
	}
	return pack(t, bin, spec)
}

// BuildFrom compiles the main package in goSourceDir (inside a Go module or
// stdlib-only) and returns a tarball of an image running it.
func BuildFrom(t testing.TB, goSourceDir, ref string) string {
	t.Helper()
	bin, err := compile(goSourceDir, ".")
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return pack(t, bin, Spec{Ref: ref, Binary: "/app"})
}

// BuildSource compiles one stdlib-only Go source file (package main) and
// returns a tarball of an image running it.
func BuildSource(t testing.TB, src, ref string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := compile(dir, "main.go")
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return pack(t, bin, Spec{Ref: ref, Binary: "/app"})
}

func pack(t testing.TB, bin string, spec Spec) string {
	t.Helper()
	img, err := Image(bin, spec)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	if err := Write(out, spec.Ref, img); err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return out
}

// Write writes img as a docker-archive tarball tagged ref.
func Write(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	return tarball.WriteToFile(path, tag, img)
}

var probe struct {
	once sync.Once
	path string
	err  error
}

// ProbeBinary returns the path of the compiled probe, building it once per
// process (and once per source version across processes).
func ProbeBinary(t testing.TB) string {
	t.Helper()
	p, err := probeBinary()
	if err != nil {
		t.Fatalf("testimage: building the probe: %v", err)
	}
	return p
}

func probeBinary() (string, error) {
	probe.once.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			probe.err = fmt.Errorf("cannot locate the probe's source")
			return
		}
		probe.path, probe.err = compile(filepath.Join(filepath.Dir(file), "probe"), ".")
	})
	return probe.path, probe.err
}

// compile builds target (a package path or file relative to dir) into the
// cache and returns the binary's path.
func compile(dir, target string) (string, error) {
	key, err := sourceKey(dir)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	cacheDir := filepath.Join(cache, "berth-testimage")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, key)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	// Build beside the final name and rename, so concurrent test binaries
	// never see a half-written file.
	tmp, err := os.CreateTemp(cacheDir, key+".tmp*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), target)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %v: %s", target, dir, err, stderr.String())
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

// sourceKey hashes the Go files in dir, the Go version and the target
// architecture.
func sourceKey(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), runtime.GOARCH)
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") && e.Name() != "go.mod" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", e.Name(), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// Image packs the binary at bin into a one-layer image configured by spec.
func Image(bin string, spec Spec) (v1.Image, error) {
	if spec.Binary == "" {
		spec.Binary = ProbePath
	}
	if !strings.HasPrefix(spec.Binary, "/") {
		return nil, fmt.Errorf("binary path %q must be absolute", spec.Binary)
	}
	if spec.Entrypoint == nil {
		spec.Entrypoint = []string{spec.Binary}
	}
	if spec.Env == nil {
		spec.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	program, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(spec.Binary, program, spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config = v1.Config{
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		User:       spec.User,
		WorkingDir: spec.WorkingDir,
		StopSignal: spec.StopSignal,
		Labels:     spec.Labels,
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs returns the uncompressed layer: the program, a few directories a
// runtime expects, and passwd/group files with root and nobody.
func rootfs(binPath string, program []byte, files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]int64{"bin": 0o755, "dev": 0o755, "etc": 0o755, "proc": 0o555, "sys": 0o555,
		"run": 0o755, "tmp": 0o1777, "var": 0o755, "var/tmp": 0o1777, "home": 0o755, "home/nobody": 0o755}
	all := map[string]fileEntry{
		"etc/passwd":                     {mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/false\n")},
		"etc/group":                      {mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		strings.TrimPrefix(binPath, "/"): {mode: 0o755, data: program},
	}
	for p, c := range files {
		all[strings.TrimPrefix(filepath.Clean("/"+p), "/")] = fileEntry{mode: 0o644, data: []byte(c)}
	}
	// Parent directories of every file must exist in the layer.
	for p := range all {
		for d := filepath.Dir(p); d != "." && d != "/"; d = filepath.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	dirNames := make([]string, 0, len(dirs))
	for d := range dirs {
		dirNames = append(dirNames, d)
	}
	slices.Sort(dirNames) // parents sort before children
	for _, d := range dirNames {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: dirs[d], ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	fileNames := make([]string, 0, len(all))
	for p := range all {
		fileNames = append(fileNames, p)
	}
	slices.Sort(fileNames)
	for _, p := range fileNames {
		f := all[p]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type fileEntry struct {
	mode int64
	data []byte
}
