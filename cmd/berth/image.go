package main

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/config"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images in berth's registry",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newImageImportCmd())
	return cmd
}

type imageImportFlags struct {
	repository string
	dataDir    string
	endpoint   string
}

func newImageImportCmd() *cobra.Command {
	fl := imageImportFlags{dataDir: config.DefaultDataDir()}
	cmd := &cobra.Command{
		Use:   "import FILE --repository NAME:TAG",
		Short: "Load a docker-archive or OCI-layout tarball into a repository of berth's registry",
		Long: `Load an image from a tarball into a repository of berth's registry, for
machines without internet. FILE is what ` + "`docker save`" + ` writes (a docker archive)
or a tar of an OCI image layout (` + "`skopeo copy … oci-archive:FILE`" + `). Run it beside
the server: it uses the admin credentials in DATA/credentials. The repository
must exist, as with a push to ECR:
  aws ecr create-repository --repository-name NAME
  berth image import app.tar --repository NAME:TAG`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageImport(cmd, args[0], fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.repository, "repository", "", "NAME:TAG (or NAME, meaning NAME:latest) of the repository to load the image into")
	f.StringVar(&fl.dataDir, "data-dir", fl.dataDir, "the server's data directory (holds credentials and config)")
	f.StringVar(&fl.endpoint, "endpoint", "", "URL to reach the server at (default: endpoint_url in DATA/config)")
	_ = cmd.MarkFlagRequired("repository")
	return cmd
}

func runImageImport(cmd *cobra.Command, file string, fl imageImportFlags) error {
	client, err := newServerClient(fl.dataDir, fl.endpoint)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
	defer cancel()
	u, err := url.Parse(client.endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the server endpoint %q is not a URL", client.endpoint)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	repo, tag, _ := strings.Cut(fl.repository, ":")
	if tag == "" {
		tag = "latest"
	}
	ref, err := name.NewTag(u.Host+"/"+repo+":"+tag, opts...)
	if err != nil {
		return fmt.Errorf("--repository %q: %w", fl.repository, err)
	}
	tmp, err := os.MkdirTemp("", "berth-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // an OCI layout is read from it while pushing
	img, index, err := readImageArchive(file, tmp)
	if err != nil {
		return err
	}
	password, err := registryPassword(ctx, client)
	if err != nil {
		return err
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(&authn.Basic{Username: "AWS", Password: password}),
		remote.WithTransport(transportOf(client.http)),
	}
	var digest v1.Hash
	if index != nil {
		err = remote.WriteIndex(ref, index, ropts...)
		if err == nil {
			digest, err = index.Digest()
		}
	} else {
		err = remote.Write(ref, img, ropts...)
		if err == nil {
			digest, err = img.Digest()
		}
	}
	if err != nil {
		return fmt.Errorf("push to %s: %w", ref, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", ref.Context().Name(), digest)
	return nil
}

// transportOf is the client's transport (the CA of DATA/config), or the
// default one.
func transportOf(c *http.Client) http.RoundTripper {
	if c != nil && c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// registryPassword asks the server for an ECR authorization token as the
// admin (GetAuthorizationToken) and returns its password part.
func registryPassword(ctx context.Context, c *serverClient) (string, error) {
	api := ecr.New(ecr.Options{
		Region:       c.region,
		BaseEndpoint: aws.String(c.endpoint),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c.creds, nil }),
		HTTPClient:   c.http,
	})
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", fmt.Errorf("get a registry token from %s: %w", c.endpoint, err)
	}
	if len(out.AuthorizationData) == 0 {
		return "", fmt.Errorf("the server at %s gave no registry token", c.endpoint)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return "", fmt.Errorf("the registry token is not base64: %w", err)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" {
		return "", errors.New("the registry token is not AWS:<password>")
	}
	return password, nil
}

// readImageArchive opens a docker archive (manifest.json) as an image, or
// an OCI-layout tarball (oci-layout, index.json), extracted into dir, as
// its one image or, with several, as an index.
func readImageArchive(file, dir string) (v1.Image, v1.ImageIndex, error) {
	names, err := tarNames(file)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case names["manifest.json"]:
		img, err := tarball.ImageFromPath(file, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: a docker archive, but: %w", file, err)
		}
		return img, nil, nil
	case names["oci-layout"] && names["index.json"]:
		if err := untar(file, dir); err != nil {
			return nil, nil, err
		}
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: an OCI layout, but: %w", file, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(m.Manifests) == 1 && m.Manifests[0].MediaType.IsImage() {
			img, err := idx.Image(m.Manifests[0].Digest)
			return img, nil, err
		}
		if len(m.Manifests) == 1 && m.Manifests[0].MediaType.IsIndex() {
			inner, err := idx.ImageIndex(m.Manifests[0].Digest)
			return nil, inner, err
		}
		return nil, idx, nil
	}
	return nil, nil, fmt.Errorf("%s is neither a docker archive (manifest.json) nor an OCI layout (oci-layout, index.json)", file)
}

func tarNames(file string) (map[string]bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s is not a tar archive: %w", file, err)
		}
		names[strings.TrimPrefix(filepath.Clean(h.Name), "./")] = true
	}
}

// untar extracts the regular files and directories of a tarball into dir,
// refusing paths that leave it.
func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		target := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
