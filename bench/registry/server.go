package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/bench/benchkit"
	"github.com/berth-dev/berth/internal/agent/node"
)

// env is one fresh server, its data directory and the clients' settings.
type env struct {
	o         options
	tmp       string // holds data/ (the server's), copy/ (the file copies) and server.log
	data      string
	srv       *benchkit.Proc
	host      string // host:port of the registry
	ecr       *ecr.Client
	password  string // the ECR authorization token's password for user AWS
	profiling bool
	profiles  int    // CPU profiles taken so far
	name      string // run name, for the profiles
}

// startEnv starts `berth server` (or `registry serve` with -profile) on a
// fresh data directory in the system's temporary directory, and fetches an
// ECR authorization token with the admin credentials.
func startEnv(ctx context.Context, o options, name string) (e *env, err error) {
	e = &env{o: o, name: name}
	if e.tmp, err = os.MkdirTemp("", "berth-registry-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if o.keep {
		fmt.Fprintf(os.Stderr, "registry: logs and data of %s in %s\n", name, e.tmp)
	}
	e.data = filepath.Join(e.tmp, "data")
	var profile []string
	if o.profileDir != "" {
		e.profiling = true
		profile = []string{"-cpuprofile", filepath.Join(o.profileDir, "cpu-"+name+"-%d.pprof")}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var endpoint string
	if e.srv, endpoint, err = benchkit.StartServer(wctx, o.berth, e.data, filepath.Join(e.tmp, "server.log"), profile); err != nil {
		return e, err
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return e, err
	}
	e.host = u.Host
	benchkit.Logf(o.verbose, "server up at %s (pid %d)", endpoint, e.srv.Pid())

	creds, err := benchkit.Credentials(e.data)
	if err != nil {
		return e, err
	}
	e.ecr = ecr.New(ecr.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  creds,
		HTTPClient:   &http.Client{Transport: node.BufferBodies(&http.Transport{})},
	})
	tok, err := e.ecr.GetAuthorizationToken(wctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return e, fmt.Errorf("GetAuthorizationToken: %w", err)
	}
	if len(tok.AuthorizationData) == 0 {
		return e, errors.New("GetAuthorizationToken: no authorizationData")
	}
	if e.password, err = decodeToken(aws.ToString(tok.AuthorizationData[0].AuthorizationToken)); err != nil {
		return e, err
	}
	return e, nil
}

// decodeToken returns the password of an ECR authorization token,
// base64("AWS:password").
func decodeToken(tok string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return "", fmt.Errorf("authorization token: %w", err)
	}
	user, pw, ok := strings.Cut(string(b), ":")
	if !ok || user != "AWS" || pw == "" {
		return "", errors.New("authorization token: not AWS:password")
	}
	return pw, nil
}

func (e *env) createRepository(ctx context.Context, repo string) error {
	_, err := e.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
	if err != nil {
		return fmt.Errorf("CreateRepository %s: %w", repo, err)
	}
	return nil
}

// ref is repo:tag in the registry, over plain HTTP.
func (e *env) ref(repoTag string) (name.Reference, error) {
	return name.ParseReference(e.host+"/"+repoTag, name.Insecure)
}

// remoteOptions are a client's: its own connections (a transport of its
// own, as separate nodes or docker daemons have), the token, -jobs.
func (e *env) remoteOptions(ctx context.Context, tr http.RoundTripper) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(&authn.Basic{Username: "AWS", Password: e.password}),
		remote.WithTransport(tr),
		remote.WithJobs(e.o.jobs),
		remote.WithRetryStatusCodes(), // a failure is a failure, not a slow success
	}
}

// newTransport is one client's transport. Compression is off: the layers
// are incompressible and a client must not pay for gzip framing either way.
func newTransport() *http.Transport {
	return &http.Transport{
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// serverCPU is the CPU seconds the server has used so far.
func (e *env) serverCPU() float64 {
	s, _ := benchkit.CPUSeconds(e.srv.Pid())
	return s
}

// diskUsage is the bytes of regular files under the data directory's
// registry storage.
func (e *env) registryBytes() int64 {
	var n int64
	_ = filepath.WalkDir(filepath.Join(e.data, "registry"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// profileStart and profileStop bracket a CPU profile of the in-process
// server (-profile), recording what it covers in DIR/index.txt; without
// -profile they do nothing.
func (e *env) profileStart() {
	if e.profiling {
		e.profiles++
		_ = e.srv.Signal(syscall.SIGUSR1)
	}
}

func (e *env) profileStop(ctx context.Context, what string) error {
	if !e.profiling {
		return nil
	}
	_ = e.srv.Signal(syscall.SIGUSR2)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := e.srv.WaitLine(wctx, regexp.MustCompile(fmt.Sprintf(`(?m)^profile (%d) written$`, e.profiles))); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(e.o.profileDir, "index.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "cpu-%s-%d.pprof\t%s\n", e.name, e.profiles, what)
	return f.Close()
}

// close stops the server gracefully and removes the temporary directory
// unless -keep.
func (e *env) close() {
	e.srv.Stop(syscall.SIGTERM, 20*time.Second)
	if !e.o.keep {
		os.RemoveAll(e.tmp)
	}
}
