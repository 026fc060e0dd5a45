// Command berth runs the berth control plane and node agent: Amazon ECS on
// your own machines. Subcommands only parse flags and call into internal/;
// no logic lives here.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/version"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec)) // the subcommand already said why
		}
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

// exitCode lets a subcommand choose the process's exit status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Amazon ECS on your own machines",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServerCmd(false), newServerCmd(true), newAgentCmd(), newTokenCmd(), newExplainCmd(), newLogsCmd(), newImageCmd(), newRegistryCmd(), newVersionCmd())
	return root
}

func newServerCmd(up bool) *cobra.Command {
	cfg := config.Defaults()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (ECS API on embedded or external etcd)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, cfg)
		},
	}
	var agent agentFlags
	withAgent := true
	if up {
		cmd.Use = "up"
		cmd.Short = "Run everything on this machine: the control plane and a local agent in cluster default"
		cmd.Flags().BoolVar(&withAgent, "agent", true, "run a local agent (needs root, containerd and the CNI plugins); its ECS_* settings come from the environment")
		agent.register(cmd, false)
		cmd.RunE = func(cmd *cobra.Command, _ []string) error {
			if !withAgent {
				return runServer(cmd, cfg)
			}
			return runUp(cmd, cfg, agent)
		}
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for state, credentials and config")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "API listener address (host:port)")
	f.StringVar(&cfg.Region, "region", cfg.Region, "region of the account (default: the stored one, or us-east-1 at first start)")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "external etcd client URLs (comma-separated); default: embedded etcd")
	f.StringVar(&cfg.EtcdPrefix, "etcd-prefix", cfg.EtcdPrefix, "key prefix for everything berth writes to etcd")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest accepted API request body")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	return cmd
}

func runServer(cmd *cobra.Command, cfg config.Server) error {
	ctx, stop, _, srv, err := startServer(cmd, cfg)
	defer stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "berth is up: account %s, region %s, API %s\n%s\nPaste these lines into your shell:\n\n%s\n",
		srv.Account().ID, srv.Account().Region, srv.Endpoint(), tlsNote(srv), account.PasteLines(srv.Files(), srv.Endpoint()))
	return srv.Run(ctx)
}

// startServer starts the control plane with a context that ends on SIGINT
// or SIGTERM; the caller defers stop.
func startServer(cmd *cobra.Command, cfg config.Server) (ctx context.Context, stop context.CancelFunc, log *slog.Logger, srv *server.Server, err error) {
	ctx, stop = signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	cfg.FilesOwner = sudoUser()
	if log, err = newLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat); err != nil {
		return ctx, stop, nil, nil, err
	}
	srv, err = server.Start(ctx, cfg, log)
	return ctx, stop, log, srv, err
}

// tlsNote says where the CA of a TLS listener is, or nothing for plain
// HTTP on loopback.
func tlsNote(srv *server.Server) string {
	if srv.CAPin() == "" {
		return ""
	}
	return fmt.Sprintf("TLS: certificates from berth's own CA %s (pin %s); the config file names it as ca_bundle,\nand join tokens (`berth token create`) carry its pin.\n",
		srv.Files().CABundle, srv.CAPin())
}

// sudoUser is the user who ran `sudo berth …`, who gets the shared AWS
// files; nil when berth was not started through sudo as root.
func sudoUser() *config.FileOwner {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || uid == 0 {
		return nil
	}
	return &config.FileOwner{UID: uid, GID: gid}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print berth's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "berth %s (ECS API %s)\n", version.Version, version.APIVersion)
		},
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
