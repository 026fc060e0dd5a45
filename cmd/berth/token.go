package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/jointoken"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage join tokens, with which agents join a server",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTokenCreateCmd())
	return cmd
}

type tokenCreateFlags struct {
	cluster   string
	ttl       time.Duration
	dataDir   string
	endpoint  string
	serverURL string
}

func newTokenCreateCmd() *cobra.Command {
	fl := tokenCreateFlags{cluster: "default", ttl: account.DefaultJoinTokenTTL, dataDir: config.DefaultDataDir()}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Print a new join token (run beside a server; uses its admin credentials)",
		Long: `Print a new join token on stdout. Run it on the server's machine: it reads the
admin credentials from DATA/credentials and the server's endpoint from
DATA/config. A token joins any number of agents until it expires:
  berth agent --token TOKEN`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenCreate(cmd, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.cluster, "cluster", fl.cluster, "cluster the agents join")
	f.DurationVar(&fl.ttl, "ttl", fl.ttl, "how long the token stays valid (1m to 8760h)")
	f.StringVar(&fl.dataDir, "data-dir", fl.dataDir, "the server's data directory (holds credentials and config)")
	f.StringVar(&fl.endpoint, "endpoint", "", "URL to reach the server at (default: endpoint_url in DATA/config)")
	f.StringVar(&fl.serverURL, "server-url", "", "URL the agents reach the server at, written into the token (default: the server's own endpoint)")
	return cmd
}

func runTokenCreate(cmd *cobra.Command, fl tokenCreateFlags) error {
	client, err := newServerClient(fl.dataDir, fl.endpoint)
	if err != nil {
		return err
	}
	if fl.ttl <= 0 {
		return fmt.Errorf("--ttl must be positive, e.g. 24h; got %s", fl.ttl)
	}
	var out jointoken.CreateResponse
	req := jointoken.CreateRequest{Cluster: fl.cluster, TTLSeconds: int64(fl.ttl / time.Second), ServerURL: fl.serverURL}
	if err := client.post(cmd.Context(), jointoken.TokensPath, req, &out); err != nil {
		return err
	}
	if out.Token == "" {
		return fmt.Errorf("the server at %s answered with no token (is it a berth server of this version?)", client.endpoint)
	}
	fmt.Fprintln(cmd.OutOrStdout(), out.Token)
	fmt.Fprintf(cmd.ErrOrStderr(), "Join token %s for cluster %s, valid until %s. It joins any number of agents until then:\n  berth agent --token <the token above>\n",
		out.TokenID, out.Cluster, out.ExpiresAt.Local().Format(time.RFC1123))
	return nil
}
