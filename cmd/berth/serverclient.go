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

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/jointoken"
)

// serverClient calls berth's own endpoints (SigV4 service "berth") as the
// admin of a server on this machine: the credentials come from
// DATA/credentials, the endpoint, region and CA from DATA/config.
type serverClient struct {
	dataDir  string
	endpoint string
	region   string
	creds    aws.Credentials
	http     *http.Client
}

// newServerClient reads the data directory's files; endpoint, when not
// empty, replaces the one in DATA/config.
func newServerClient(dataDir, endpoint string) (*serverClient, error) {
	files := account.FilesIn(dataDir)
	id, secret, err := account.ReadCredentials(files.Credentials)
	if err != nil {
		return nil, dataFileError("admin credentials", files.Credentials, dataDir, err)
	}
	prof, err := account.ReadProfileConfig(files.Config)
	if err != nil {
		return nil, dataFileError("server endpoint", files.Config, dataDir, err)
	}
	client, err := profileHTTPClient(prof.CABundle)
	if err != nil {
		return nil, err
	}
	c := &serverClient{dataDir: dataDir, endpoint: prof.EndpointURL, region: prof.Region,
		creds: aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, http: client}
	if endpoint != "" {
		c.endpoint = endpoint
	}
	return c, nil
}

// post sends req as JSON to path, signed, and decodes a 200 answer into
// resp. An error answer is "the server refused: <exception>: <message>".
func (c *serverClient) post(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	url := strings.TrimSuffix(c.endpoint, "/") + path
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", c.endpoint, err)
	}
	r.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, c.creds, r, hex.EncodeToString(sum[:]), jointoken.SigningName, c.region, time.Now()); err != nil {
		return err
	}
	res, err := c.http.Do(r)
	if err != nil {
		return fmt.Errorf("cannot reach the berth server at %s (is `berth server` or `berth up` running with --data-dir %s?): %w", c.endpoint, c.dataDir, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		var e jointoken.ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Type != "" {
			return fmt.Errorf("the server refused: %s: %s", e.Type, e.Message)
		}
		return fmt.Errorf("the server at %s answered %s (is it a berth server of this version?)", c.endpoint, res.Status)
	}
	if err := json.Unmarshal(b, resp); err != nil {
		return fmt.Errorf("the server at %s answered something unexpected (is it a berth server of this version?): %w", c.endpoint, err)
	}
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
