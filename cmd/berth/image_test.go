package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/internal/account"
)

// TestImageImport loads a docker archive and an OCI-layout tarball into a
// repository of an in-process server and finds them with the ECR API.
func TestImageImport(t *testing.T) {
	srv, cfg := startTestServer(t, "127.0.0.1:0")
	id, secret, err := account.ReadCredentials(srv.Files().Credentials)
	if err != nil {
		t.Fatal(err)
	}
	api := ecr.New(ecr.Options{
		Region: srv.Account().Region, BaseEndpoint: aws.String(srv.Endpoint()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		}),
	})
	ctx := context.Background()
	dir := t.TempDir()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	docker := filepath.Join(dir, "docker.tar")
	ref, _ := name.NewTag("example.test/app:1")
	if err := tarball.WriteToFile(docker, ref, img); err != nil {
		t.Fatal(err)
	}
	ociDir := filepath.Join(dir, "oci")
	lp, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := random.Image(512, 1)
	if err := lp.AppendImage(other); err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(dir, "oci.tar")
	tarDir(t, ociDir, oci)

	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		cmd := newRootCmd(&out, &errb)
		cmd.SetArgs(append(args, "--data-dir", cfg.DataDir))
		err := cmd.ExecuteContext(ctx)
		return out.String() + errb.String(), err
	}
	if out, err := run("image", "import", docker, "--repository", "app:1"); err == nil || !strings.Contains(out+err.Error(), "does not exist") {
		t.Fatalf("import into a missing repository: %v\n%s", err, out)
	}
	if _, err := api.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	out, err := run("image", "import", docker, "--repository", "app:1")
	if err != nil {
		t.Fatalf("import the docker archive: %v\n%s", err, out)
	}
	want, _ := img.Digest()
	if !strings.Contains(out, "@"+want.String()) {
		t.Errorf("import printed %q, want the digest %s", out, want)
	}
	if out, err := run("image", "import", oci, "--repository", "app:oci"); err != nil {
		t.Fatalf("import the OCI layout: %v\n%s", err, out)
	}
	list, err := api.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, id := range list.ImageIds {
		tags[aws.ToString(id.ImageTag)] = aws.ToString(id.ImageDigest)
	}
	otherDigest, _ := other.Digest()
	if tags["1"] != want.String() || tags["oci"] != otherDigest.String() {
		t.Errorf("images %v", tags)
	}
	if out, err := run("image", "import", filepath.Join(dir, "missing.tar"), "--repository", "app:2"); err == nil {
		t.Errorf("a missing file was imported: %s", out)
	}
}

// tarDir writes dir's files into a tarball at dst.
func tarDir(t *testing.T, dir, dst string) {
	t.Helper()
	var buf bytes.Buffer
	tw := newTarWriter(&buf)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return tw.add(rel, b)
	})
	if err == nil {
		err = tw.close()
	}
	if err == nil {
		err = os.WriteFile(dst, buf.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzReadImageArchive feeds arbitrary files to the archive reader: it
// must answer an error or an image, never panic or write outside its
// directory.
func FuzzReadImageArchive(f *testing.F) {
	var buf bytes.Buffer
	tw := newTarWriter(&buf)
	_ = tw.add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	_ = tw.add("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`))
	_ = tw.add("../escape", []byte("x"))
	_ = tw.close()
	f.Add(buf.Bytes())
	buf.Reset()
	tw = newTarWriter(&buf)
	_ = tw.add("manifest.json", []byte(`[{"Config":"c","RepoTags":["a:1"],"Layers":["l"]}]`))
	_ = tw.close()
	f.Add(buf.Bytes())
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, "in.tar")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		img, idx, err := readImageArchive(file, out)
		if err == nil && img == nil && idx == nil {
			t.Fatal("no error and no image")
		}
		if img != nil {
			_, _ = img.Manifest()
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "in.tar" && e.Name() != "out" {
				t.Fatalf("wrote %s outside its directory", e.Name())
			}
		}
	})
}

// tarWriter builds small tarballs for the tests.
type tarWriter struct{ tw *tar.Writer }

func newTarWriter(w io.Writer) *tarWriter { return &tarWriter{tw: tar.NewWriter(w)} }

func (w *tarWriter) add(name string, b []byte) error {
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := w.tw.Write(b)
	return err
}

func (w *tarWriter) close() error { return w.tw.Close() }
