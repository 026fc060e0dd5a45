package testimage

import (
	"archive/tar"
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestBuildWritesARunnableImage(t *testing.T) {
	path := BuildSpec(t, Spec{
		Ref:        "berth.test/probe:v1",
		Cmd:        []string{"sleep"},
		Env:        []string{"PATH=/bin", "A=1"},
		User:       "nobody",
		WorkingDir: "/tmp",
		StopSignal: "SIGINT",
		Files:      map[string]string{"/www/index.html": "hi"},
	})
	tag, _ := name.NewTag("berth.test/probe:v1")
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	c := cf.Config
	if diff := cmp.Diff([]string{ProbePath}, c.Entrypoint); diff != "" {
		t.Errorf("entrypoint: %s", diff)
	}
	if diff := cmp.Diff([]string{"sleep"}, c.Cmd); diff != "" {
		t.Errorf("cmd: %s", diff)
	}
	if c.User != "nobody" || c.WorkingDir != "/tmp" || c.StopSignal != "SIGINT" || len(c.Env) != 2 {
		t.Errorf("config = %+v", c)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	found := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h
	}
	for _, want := range []string{"probe", "etc/passwd", "etc/group", "tmp/", "www/", "www/index.html"} {
		if found[want] == nil {
			t.Errorf("layer lacks %s", want)
		}
	}
	if h := found["probe"]; h != nil && h.Mode&0o111 == 0 {
		t.Errorf("probe mode %o is not executable", h.Mode)
	}
	if h := found["tmp/"]; h != nil && h.Mode&0o1000 == 0 {
		t.Errorf("tmp mode %o lacks the sticky bit", h.Mode)
	}
}

func TestBuildSource(t *testing.T) {
	path := BuildSource(t, "package main\nimport \"os\"\nfunc main() { os.Exit(7) }\n", "berth.test/seven:v1")
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/app"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint: %s", diff)
	}
}

func TestBuildSourceReportsCompileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := compile(dir, "main.go"); err == nil {
		t.Fatal("compiling a missing file succeeded")
	}
}

// The probe's vocabulary is what the runtime conformance suite relies on, so
// check it directly on the host.
func TestProbeVerbs(t *testing.T) {
	bin := ProbeBinary(t)
	for _, tc := range []struct {
		args     []string
		code     int
		contains string
	}{
		{args: []string{"exit", "3"}, code: 3},
		{args: []string{"exit", "0", "10ms"}, code: 0},
		{args: []string{"exit", "x"}, code: 2},
		{args: []string{"print", "hi"}, code: 0, contains: "stdout: hi\nstderr: hi"},
		{args: []string{"info", "a"}, code: 0, contains: "args=a"},
		{args: []string{"touch", filepath.Join(t.TempDir(), "f")}, code: 0},
		{args: []string{"touch", "/nonexistent/dir/f"}, code: 1},
		{args: []string{"cat", "/nonexistent"}, code: 1},
		{args: []string{"info"}, code: 0, contains: "seccomp="},
		{args: []string{"healthcheck", "/nonexistent"}, code: 1},
		{args: []string{"healthcheck", "/"}, code: 0},
		{args: []string{"alloc", "4"}, code: -1, contains: "allocated 4 MiB"},
		{args: []string{"no-such-verb"}, code: 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			if tc.code == -1 { // long-running: read the first line, then stop it
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				line, _ := bufio.NewReader(out).ReadString('\n')
				_ = cmd.Process.Signal(syscall.SIGTERM)
				if err := cmd.Wait(); err != nil {
					t.Errorf("after SIGTERM: %v", err)
				}
				if !strings.Contains(line, tc.contains) {
					t.Errorf("first line %q lacks %q", line, tc.contains)
				}
				return
			}
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != tc.code {
				t.Errorf("exit code %d, want %d (output %q)", got, tc.code, out)
			}
			if !strings.Contains(string(out), tc.contains) {
				t.Errorf("output %q lacks %q", out, tc.contains)
			}
		})
	}
}

func TestProbeSignals(t *testing.T) {
	bin := ProbeBinary(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"sleep"}, 0},
		{[]string{"serve", "-port", "0"}, 0},
		{[]string{"sigterm-exit", "42"}, 42},
	} {
		cmd := exec.Command(bin, tc.args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); !strings.HasPrefix(line, "ready") {
			t.Fatalf("%v: first line %q", tc.args, line)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if got := cmd.ProcessState.ExitCode(); got != tc.code {
			t.Errorf("%v: exit code %d after SIGTERM, want %d", tc.args, got, tc.code)
		}
	}
}

func TestProbeServe(t *testing.T) {
	bin := ProbeBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(bin, "serve", "-port", port)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); !strings.HasPrefix(line, "ready") {
		t.Fatalf("first line %q", line)
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://127.0.0.1:" + port + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := get("/"); !strings.HasPrefix(body, "hello from ") {
		t.Errorf("/ = %q", body)
	}
	if body := get("/env"); !strings.Contains(body, "PATH=") {
		t.Errorf("/env = %q", body)
	}
	get("/exit?code=5")
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after /exit")
	}
	if got := cmd.ProcessState.ExitCode(); got != 5 {
		t.Errorf("exit code %d, want 5", got)
	}
}
