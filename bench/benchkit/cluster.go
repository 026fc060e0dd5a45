package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/account"
)

// Cluster is the cluster the simulated instances join.
const Cluster = "bench"

var upLine = regexp.MustCompile(`(?m)^berth is up: .* API (http[^ ,\n]*)`)

// StartServer starts a control plane on the data directory data, listening
// on a free loopback port and logging at warn level to logPath, and waits
// until ctx ends for it to print its API endpoint, which it returns. With
// profile nil the server is `berth server` of the berth binary; otherwise
// it is this program's `serve` subcommand (Serve) with profile as its
// profiling flags. On an error the server is stopped.
func StartServer(ctx context.Context, berth, data, logPath string, profile []string) (*Proc, string, error) {
	argv := []string{berth, "server"}
	if profile != nil {
		self, err := os.Executable()
		if err != nil {
			return nil, "", err
		}
		argv = append([]string{self, "serve"}, profile...)
	}
	argv = append(argv, "--data-dir", data, "--listen", "127.0.0.1:0", "--log-level", "warn")
	srv, err := StartProc("server", logPath, nil, argv...)
	if err != nil {
		return nil, "", err
	}
	endpoint, err := srv.WaitLine(ctx, upLine)
	if err != nil {
		srv.Stop(syscall.SIGTERM, 20*time.Second)
		return nil, "", err
	}
	return srv, endpoint, nil
}

// Simulation is the fleet of `berth agent --simulated`.
type Simulation struct {
	Instances int
	CPU       int // CPU units of each instance
	Memory    int // MiB of each instance
}

// Fleet is a control plane with a simulated fleet joined to it.
type Fleet struct {
	Server, Agent *Proc
	Endpoint      string    // the server's API
	Up            time.Time // when the server printed that it is up (its controllers start then)
	Credentials   aws.CredentialsProvider
}

// StartFleet starts a control plane (StartServer) on the data directory
// dir/data, logging to dir/server.log, creates a join token and starts
// `berth agent --simulated` with its configuration, state and log
// (agent.log) in dir. The agent's Started is when the agent itself was
// started, after the token. It does not wait for the instances to connect.
// On an error, whatever was started is stopped.
func StartFleet(ctx context.Context, berth, dir string, profile []string, sim Simulation, verbose bool) (f *Fleet, err error) {
	f = &Fleet{}
	defer func() {
		if err != nil {
			f.Stop()
			f = nil
		}
	}()
	data := filepath.Join(dir, "data")
	if f.Server, f.Endpoint, err = StartServer(ctx, berth, data, filepath.Join(dir, "server.log"), profile); err != nil {
		return f, err
	}
	f.Up = time.Now()
	Logf(verbose, "server up at %s (pid %d)", f.Endpoint, f.Server.Pid())
	if f.Agent, err = startAgent(ctx, berth, dir, data, f.Endpoint, sim); err != nil {
		return f, err
	}
	f.Credentials, err = Credentials(data)
	return f, err
}

// Stop throws the simulation away with a kill, which spares the
// deregistration calls, and shuts the server down gracefully. A nil f is
// stopped already.
func (f *Fleet) Stop() {
	if f == nil {
		return
	}
	f.Agent.Stop(syscall.SIGKILL, 5*time.Second)
	f.Server.Stop(syscall.SIGTERM, 20*time.Second)
}

func startAgent(ctx context.Context, berth, dir, data, endpoint string, sim Simulation) (*Proc, error) {
	token, err := createToken(ctx, berth, data, endpoint)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "ecs.config")
	if err := os.WriteFile(cfgPath, nil, 0o600); err != nil {
		return nil, err
	}
	return StartProc("agent", filepath.Join(dir, "agent.log"), []string{"ECS_DATADIR=" + filepath.Join(dir, "agent")},
		berth, "agent", "--server", endpoint, "--token", token, "--config", cfgPath, "--log-level", "info",
		"--simulated", fmt.Sprint(sim.Instances), "--simulated-cpu", fmt.Sprint(sim.CPU),
		"--simulated-memory", fmt.Sprint(sim.Memory))
}

func createToken(ctx context.Context, berth, data, endpoint string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := execOutput(ctx, berth, "token", "create", "--cluster", Cluster, "--data-dir", data, "--endpoint", endpoint)
	if err != nil {
		return "", fmt.Errorf("berth token create: %w", err)
	}
	return strings.TrimSpace(out), nil
}

func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Credentials are the admin credentials the server wrote into its data
// directory data.
func Credentials(data string) (aws.CredentialsProvider, error) {
	id, secret, err := account.ReadCredentials(filepath.Join(data, "credentials"))
	if err != nil {
		return nil, err
	}
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }), nil
}

// ConnectedInstances lists Cluster's instances and, once there are at
// least want, counts those ACTIVE with their agent connected (describing
// them before would only load the server while the simulation registers).
func ConnectedInstances(ctx context.Context, c *ecs.Client, want int) (arns []string, connected int, err error) {
	arns, err = listInstances(ctx, c)
	if err == nil && len(arns) >= want {
		err = DescribeInstances(ctx, c, arns, func(ci types.ContainerInstance) {
			if ci.AgentConnected && aws.ToString(ci.Status) == "ACTIVE" {
				connected++
			}
		})
	}
	return arns, connected, err
}

func listInstances(ctx context.Context, c *ecs.Client) ([]string, error) {
	var arns []string
	p := ecs.NewListContainerInstancesPaginator(c, &ecs.ListContainerInstancesInput{
		Cluster: aws.String(Cluster), MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		arns = append(arns, page.ContainerInstanceArns...)
	}
	return arns, nil
}

// DescribeInstances describes arns of Cluster, 100 at a time.
func DescribeInstances(ctx context.Context, c *ecs.Client, arns []string, each func(types.ContainerInstance)) error {
	for i := 0; i < len(arns); i += 100 {
		out, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{
			Cluster: aws.String(Cluster), ContainerInstances: arns[i:min(i+100, len(arns))],
		})
		if err != nil {
			return err
		}
		for _, ci := range out.ContainerInstances {
			each(ci)
		}
	}
	return nil
}
