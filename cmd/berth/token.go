package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
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
	files := account.FilesIn(fl.dataDir)
	id, secret, err := account.ReadCredentials(files.Credentials)
	if err != nil {
		return dataFileError("admin credentials", files.Credentials, fl.dataDir, err)
	}
	prof, err := account.ReadProfileConfig(files.Config)
	if err != nil {
		return dataFileError("server endpoint", files.Config, fl.dataDir, err)
	}
	region, endpoint := prof.Region, prof.EndpointURL
	client, err := profileHTTPClient(prof.CABundle)
	if err != nil {
		return err
	}
	if fl.endpoint != "" {
		endpoint = fl.endpoint
	}
	if fl.ttl <= 0 {
		return fmt.Errorf("--ttl must be positive, e.g. 24h; got %s", fl.ttl)
	}
	body, err := json.Marshal(jointoken.CreateRequest{Cluster: fl.cluster, TTLSeconds: int64(fl.ttl / time.Second), ServerURL: fl.serverURL})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	url := strings.TrimSuffix(endpoint, "/") + jointoken.TokensPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), jointoken.SigningName, region, time.Now()); err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the berth server at %s (is `berth server` or `berth up` running with --data-dir %s?): %w", endpoint, fl.dataDir, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e jointoken.ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Type != "" {
			return fmt.Errorf("the server refused: %s: %s", e.Type, e.Message)
		}
		return fmt.Errorf("the server at %s answered %s (is it a berth server of this version?)", endpoint, resp.Status)
	}
	var out jointoken.CreateResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return fmt.Errorf("the server at %s answered with no token (is it a berth server of this version?)", endpoint)
	}
	fmt.Fprintln(cmd.OutOrStdout(), out.Token)
	fmt.Fprintf(cmd.ErrOrStderr(), "Join token %s for cluster %s, valid until %s. It joins any number of agents until then:\n  berth agent --token <the token above>\n",
		out.TokenID, out.Cluster, out.ExpiresAt.Local().Format(time.RFC1123))
	return nil
}

// profileHTTPClient trusts what DATA/config says, as the AWS CLI does: only
// the ca_bundle's certificates when it names one (a server serving TLS with
// its own CA), the system's roots otherwise.
func profileHTTPClient(caBundle string) (*http.Client, error) {
	if caBundle == "" {
		return http.DefaultClient, nil
	}
	pemBytes, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, dataFileError("server's CA certificate (ca_bundle)", caBundle, filepath.Dir(filepath.Dir(caBundle)), err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("the ca_bundle %s holds no PEM certificate", caBundle)
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
	}}, nil
}

// dataFileError explains a missing or unreadable file of the data directory.
func dataFileError(what, path, dataDir string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no %s at %s: start the server once with `berth server --data-dir %s` (or `berth up`) to create them, or pass the server's --data-dir", what, path, dataDir)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("cannot read the %s at %s: permission denied (run as the user who started the server, or with sudo)", what, path)
	}
	return fmt.Errorf("read the %s: %w", what, err)
}
