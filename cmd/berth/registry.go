package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/server"
)

func newRegistryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Maintain berth's registry (ECR)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRegistryGCCmd())
	return cmd
}

func newRegistryGCCmd() *cobra.Command {
	dataDir, endpoint := config.DefaultDataDir(), ""
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs no image references (the server also does it every 6 hours)",
		Long: `Ask the running server to remove the registry's blobs that no manifest of
any repository references. Blobs younger than a day, and blobs requests are
using, are kept, so pushes in progress are safe. Run it beside the server: it
uses the admin credentials in DATA/credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newServerClient(dataDir, endpoint)
			if err != nil {
				return err
			}
			var stats registry.CollectStats
			if err := client.post(cmd.Context(), server.RegistryGCPath, struct{}{}, &stats); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d unreferenced blobs; kept %d referenced and %d recent or in use; purged %d stale uploads\n",
				stats.Deleted, stats.Referenced, stats.Spared, stats.UploadsPurged)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", dataDir, "the server's data directory (holds credentials and config)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "URL to reach the server at (default: endpoint_url in DATA/config)")
	return cmd
}
