package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string // built once in TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", binary, "../cmd/berth")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requirePrereq skips the test when a prerequisite is missing, except under
// CI=true, where a missing prerequisite fails it: a skipped suite must never
// pass for a green one.
func requirePrereq(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing: %s (CI=true: failing instead of skipping)", what)
	}
	t.Skipf("prerequisite missing: %s", what)
}

const awsCLI = "/usr/bin/aws" // Debian's awscli package: the real AWS CLI v2

// instance is one running `berth up`.
type instance struct {
	t        *testing.T
	env      []string // extra environment of the berth process
	dataDir  string
	cmd      *exec.Cmd
	endpoint string
	account  string
	output   *syncBuffer
	done     chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var upLine = regexp.MustCompile(`berth is up: account (\d{12}), region ([a-z0-9-]+), API (https?://\S+)`)

// startBerth runs `berth up` without its local agent on a free loopback
// port in dataDir and waits until /healthz answers. Tests of the agent use
// startBerthWithAgent.
func startBerth(t *testing.T, dataDir string, args ...string) *instance {
	t.Helper()
	return startCommand(t, "up", dataDir, append([]string{"--agent=false"}, args...)...)
}

// startCommand runs `berth <sub>` (up or server) like startBerth.
func startCommand(t *testing.T, sub, dataDir string, args ...string) *instance {
	t.Helper()
	return startCommandEnv(t, sub, dataDir, nil, args...)
}

// startCommandEnv is startCommand with extra environment variables for the
// berth process (ECS_* settings of the local agent).
func startCommandEnv(t *testing.T, sub, dataDir string, env []string, args ...string) *instance {
	t.Helper()
	in := &instance{t: t, dataDir: dataDir, env: env, output: &syncBuffer{}, done: make(chan error, 1)}
	all := append([]string{sub, "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...)
	in.cmd = exec.Command(binary, all...)
	in.cmd.Env = append(os.Environ(), in.env...)
	in.cmd.Stderr = in.output
	stdout, err := in.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			in.output.Write([]byte(line + "\n"))
			if m := upLine.FindStringSubmatch(line); m != nil {
				found <- m
			}
		}
	}()
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(func() { in.stop(syscall.SIGKILL) })

	select {
	case m := <-found:
		in.account, in.endpoint = m[1], m[3]
	case err := <-in.done:
		in.done <- err
		t.Fatalf("berth up exited before it was ready: %v\n%s", err, in.output.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("berth up not ready after 60s\n%s", in.output.String())
	}
	client := http.DefaultClient
	if strings.HasPrefix(in.endpoint, "https://") {
		// Off loopback berth serves TLS from its own CA (DATA/tls/ca.pem).
		pem, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	waitFor(t, 30*time.Second, "healthz", func() bool {
		resp, err := client.Get(in.endpoint + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return in
}

// stop sends sig and waits for the process to exit; it returns the exit
// error (nil for status 0).
func (in *instance) stop(sig syscall.Signal) error {
	if in.cmd.ProcessState != nil {
		return nil
	}
	_ = in.cmd.Process.Signal(sig)
	select {
	case err := <-in.done:
		in.done <- err
		return err
	case <-time.After(30 * time.Second):
		_ = in.cmd.Process.Kill()
		in.t.Errorf("berth did not exit within 30s of %v\n%s", sig, in.output.String())
		return fmt.Errorf("timeout")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-time.After(delay)
	}
}

// awsEnv is the environment a user gets by pasting berth's lines, isolated
// from the machine's own AWS configuration.
func (in *instance) awsEnv(extra ...string) []string {
	home := filepath.Join(in.dataDir, "home")
	_ = os.MkdirAll(home, 0o700)
	env := map[string]string{
		"PATH":                        os.Getenv("PATH"),
		"HOME":                        home,
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(in.dataDir, "credentials"),
		"AWS_CONFIG_FILE":             filepath.Join(in.dataDir, "config"),
		"AWS_PROFILE":                 "berth",
		"AWS_PAGER":                   "",
	}
	// extra entries override; an empty value removes the variable.
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" && k != "AWS_PAGER" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// cliResult is the outcome of one aws CLI invocation.
type cliResult struct {
	stdout, stderr string
	code           int
}

// aws runs the real AWS CLI against this instance.
func (in *instance) aws(args ...string) cliResult {
	return in.awsWithEnv(nil, args...)
}

func (in *instance) awsWithEnv(extraEnv []string, args ...string) cliResult {
	in.t.Helper()
	return in.awsVia(nil, extraEnv, args...)
}

// awsVia runs the CLI through a wrapper command (e.g. faketime).
func (in *instance) awsVia(wrapper, extraEnv []string, args ...string) cliResult {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append(append(append([]string{}, wrapper...), awsCLI, "--endpoint-url", in.endpoint, "--output", "json", "--cli-read-timeout", "30"), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = in.awsEnv(extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			res.code = ee.ExitCode()
		} else {
			in.t.Fatalf("aws %v: %v", args, err)
		}
	}
	return res
}

// awsJSON runs the CLI, requires success and decodes its JSON output.
func (in *instance) awsJSON(v any, args ...string) {
	in.t.Helper()
	res := in.aws(args...)
	if res.code != 0 {
		in.t.Fatalf("aws %s: exit %d\nstderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	if v == nil {
		return
	}
	reflect.ValueOf(v).Elem().SetZero() // callers reuse variables; stale fields must not survive
	if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
		in.t.Fatalf("aws %s: decode %q: %v", strings.Join(args, " "), res.stdout, err)
	}
}

// awsFails runs the CLI, requires failure, and checks the error line the
// CLI prints: "An error occurred (<code>) when calling the <Op> operation: <msg>".
func (in *instance) awsFails(wantCode, wantMsg string, args ...string) {
	in.t.Helper()
	res := in.aws(args...)
	if res.code == 0 {
		in.t.Fatalf("aws %s: succeeded, want %s\n%s", strings.Join(args, " "), wantCode, res.stdout)
	}
	want := fmt.Sprintf("An error occurred (%s)", wantCode)
	if !strings.Contains(res.stderr, want) {
		in.t.Fatalf("aws %s: stderr %q does not contain %q", strings.Join(args, " "), res.stderr, want)
	}
	if wantMsg != "" && !strings.Contains(res.stderr, "operation: "+wantMsg) {
		in.t.Fatalf("aws %s: stderr %q does not contain message %q", strings.Join(args, " "), res.stderr, wantMsg)
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cliAvailable(t *testing.T) {
	t.Helper()
	_, err := os.Stat(awsCLI)
	requirePrereq(t, "the AWS CLI v2 at "+awsCLI+" (Debian package awscli)", err == nil)
}
