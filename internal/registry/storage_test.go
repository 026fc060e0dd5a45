package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestStorageView(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	img := mustImage(t, 1000, 2)
	if err := e.push("team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	m, _ := img.Manifest()
	wantSize := m.Config.Size
	for _, l := range m.Layers {
		wantSize += l.Size
	}
	dg := mustDigest(t, img).String()

	// A second tag through the view, as ECR's PutImage does.
	got, err := e.reg.PutManifest(ctx, "team/app", "v2", "", raw, false)
	if err != nil || got != dg {
		t.Fatalf("PutManifest = %q, %v", got, err)
	}
	images, err := e.reg.ListImages(ctx, "team/app")
	if err != nil || len(images) != 1 {
		t.Fatalf("ListImages = %+v, %v", images, err)
	}
	im := images[0]
	if im.Digest != dg || !slices.Equal(im.Tags, []string{"v1", "v2"}) || im.SizeBytes != wantSize ||
		im.MediaType != string(mt) || im.ArtifactMediaType != string(m.Config.MediaType) ||
		im.PushedAt.Before(before) || im.PushedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("image %+v; want digest %s size %d media type %s", im, dg, wantSize, mt)
	}
	for _, ref := range []ImageRef{{Tag: "v1"}, {Digest: dg}, {Tag: "v2", Digest: dg}} {
		d, err := e.reg.DescribeImage(ctx, "team/app", ref)
		if err != nil || d.Digest != dg || len(d.Tags) != 2 {
			t.Errorf("DescribeImage(%+v) = %+v, %v", ref, d, err)
		}
	}
	for _, ref := range []ImageRef{{Tag: "nope"}, {Digest: digest.FromString("x").String()}, {Tag: "v1", Digest: digest.FromString("x").String()}} {
		if _, err := e.reg.DescribeImage(ctx, "team/app", ref); !errors.Is(err, ecr.ErrImageNotFound) {
			t.Errorf("DescribeImage(%+v): %v, want image not found", ref, err)
		}
	}
	if _, err := e.reg.DescribeImage(ctx, "team/app", ImageRef{Digest: "sha256:zz"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad digest: %v", err)
	}
	man, err := e.reg.GetManifest(ctx, "team/app", ImageRef{Tag: "v2"})
	if err != nil || !bytes.Equal(man.Body, raw) || man.Digest != dg || man.MediaType != string(mt) {
		t.Fatalf("GetManifest = %+v, %v", man, err)
	}
	if size, ok, err := e.reg.LayerAvailability(ctx, "team/app", m.Layers[0].Digest.String()); err != nil || !ok || size != m.Layers[0].Size {
		t.Fatalf("LayerAvailability = %d %v %v", size, ok, err)
	}
	if _, ok, err := e.reg.LayerAvailability(ctx, "other", m.Layers[0].Digest.String()); err != nil || ok {
		t.Fatalf("layer of another repository available: %v %v", ok, err)
	}

	if has, err := e.reg.HasImages(ctx, "team/app"); err != nil || !has {
		t.Fatalf("HasImages with an image = %v, %v", has, err)
	}
	// By tag: the image stays while another tag holds it.
	del, err := e.reg.DeleteImage(ctx, "team/app", ImageRef{Tag: "v1"})
	if err != nil || del.Digest != dg || del.Tag != "v1" {
		t.Fatalf("DeleteImage(v1) = %+v, %v", del, err)
	}
	if d, err := e.reg.DescribeImage(ctx, "team/app", ImageRef{Digest: dg}); err != nil || !slices.Equal(d.Tags, []string{"v2"}) {
		t.Fatalf("after untagging v1: %+v, %v", d, err)
	}
	if _, err := e.reg.DeleteImage(ctx, "team/app", ImageRef{Tag: "v2"}); err != nil {
		t.Fatal(err)
	}
	if has, err := e.reg.HasImages(ctx, "team/app"); err != nil || has {
		t.Fatalf("last tag removed, image kept: %v %v", has, err)
	}
	// By digest: every tag goes.
	if err := e.push("team/app:v3", img); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.PutManifest(ctx, "team/app", "v4", string(mt), raw, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.DeleteImage(ctx, "team/app", ImageRef{Digest: dg}); err != nil {
		t.Fatal(err)
	}
	if images, err := e.reg.ListImages(ctx, "team/app"); err != nil || len(images) != 0 {
		t.Fatalf("after deleting by digest: %+v %v", images, err)
	}
	if resp := e.request("GET", "/v2/team/app/manifests/v4", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("tag v4 survived its manifest: %d", resp.StatusCode)
	}
	if _, err := e.reg.DeleteImage(ctx, "team/app", ImageRef{Tag: "v3"}); !errors.Is(err, ecr.ErrImageNotFound) {
		t.Fatalf("deleting a missing image: %v", err)
	}

	// A manifest whose layers are not in the repository.
	_, err = e.reg.PutManifest(ctx, "other", "x", string(mt), raw, false)
	if !errors.Is(err, ecr.ErrLayersNotFound) || !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("manifest without layers: %v", err)
	}
	if _, err := e.reg.PutManifest(ctx, "other", "x", "", []byte("{"), false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestStorageViewIndexAndRepositoryRemoval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	idx, err := random.Index(600, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(e.ref("team/app:multi"), idx, e.remoteAuth()); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	var largest int64
	for _, child := range im.Manifests {
		img, _ := idx.Image(child.Digest)
		m, _ := img.Manifest()
		size := m.Config.Size
		for _, l := range m.Layers {
			size += l.Size
		}
		largest = max(largest, size)
	}
	d, err := e.reg.DescribeImage(ctx, "team/app", ImageRef{Tag: "multi"})
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := idx.MediaType()
	if d.SizeBytes != largest || d.MediaType != string(mt) {
		t.Fatalf("index described as %+v; want size %d (largest image), media type %s", d, largest, mt)
	}
	images, _ := e.reg.ListImages(ctx, "team/app")
	if len(images) != 4 {
		t.Fatalf("index and its 3 images: got %d images", len(images))
	}

	if err := e.reg.DeleteRepositoryContents(ctx, "team/app"); err != nil {
		t.Fatal(err)
	}
	if has, err := e.reg.HasImages(ctx, "team/app"); err != nil || has {
		t.Fatalf("after force delete: %v %v", has, err)
	}
	if err := e.reg.DeleteRepositoryContents(ctx, "team/app"); err != nil {
		t.Fatalf("deleting an empty repository: %v", err)
	}
	if err := e.reg.DeleteRepositoryContents(ctx, "../etc"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("path outside the repositories accepted: %v", err)
	}
	if err := remote.WriteIndex(e.ref("team/app:multi"), idx, e.remoteAuth()); err != nil {
		t.Fatalf("push after force delete: %v", err)
	}
}

// corrupt changes one byte of a stored blob in place, keeping its size and,
// for JSON, its validity (a hex digit becomes another).
func (e *env) corrupt(t *testing.T, d string) {
	t.Helper()
	p := filepath.Join(e.root, filepath.FromSlash(blobDataPath(digest.Digest(d))))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("sha256:"))
	if i < 0 {
		i = len(b) / 2
	} else {
		i += len("sha256:")
	}
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptContentIsNotServed(t *testing.T) {
	e := newEnv(t)
	img := mustImage(t, 4096, 1)
	if err := e.push("team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	layer := m.Layers[0].Digest.String()

	// Intact content is served whole.
	resp := e.request("GET", "/v2/team/app/blobs/"+layer, nil, nil)
	if body, err := io.ReadAll(resp.Body); err != nil || int64(len(body)) != m.Layers[0].Size {
		t.Fatalf("intact blob: %d bytes, %v", len(body), err)
	}

	// A range of an intact blob is served.
	resp = e.request("GET", "/v2/team/app/blobs/"+layer, nil, map[string]string{"Range": "bytes=0-9"})
	if body, err := io.ReadAll(resp.Body); resp.StatusCode != http.StatusPartialContent || err != nil || len(body) != 10 {
		t.Fatalf("range: %d %d %v", resp.StatusCode, len(body), err)
	}

	// A blob changed on disk is checked again before it is served, and
	// refused whole (ranges too) without a byte of it.
	e.corrupt(t, layer)
	for _, hdr := range []map[string]string{nil, {"Range": "bytes=0-9"}} {
		resp = e.request("GET", "/v2/team/app/blobs/"+layer, nil, hdr)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusInternalServerError || bytes.Contains(body, []byte{0}) {
			t.Fatalf("corrupt blob (%v): %d, %d bytes; want 500 and no content", hdr, resp.StatusCode, len(body))
		}
	}

	dg := mustDigest(t, img).String()
	e.corrupt(t, dg)
	// A manifest is small enough that nothing has left the server's
	// buffers when it aborts: the client sees the connection close.
	req, _ := http.NewRequest("GET", e.srv.URL+"/v2/team/app/manifests/v1", nil)
	req.SetBasicAuth("AWS", e.token(adminARN))
	req.Header.Set("Accept", string(m.MediaType))
	if resp, err := e.srv.Client().Do(req); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("corrupt manifest served whole (status %d)", resp.StatusCode)
		}
	}
	if _, err := e.reg.GetManifest(context.Background(), "team/app", ImageRef{Tag: "v1"}); !errors.Is(err, errdefs.ErrInternal) {
		t.Fatalf("storage view served a corrupt manifest: %v", err)
	}
}

func TestVerifyingWriter(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 50)
	for _, chunk := range []int{1, 7, 63, 64, 65, 500} {
		for _, good := range []bool{true, false} {
			out, ok := runVerifyingWriter(data, chunk, good)
			switch {
			case good && (!ok || !bytes.Equal(out, data)):
				t.Errorf("chunk %d: good content: ok=%v, %d bytes out", chunk, ok, len(out))
			case !good && (ok || len(out) != len(data)-holdBack || !bytes.Equal(out, data[:len(out)])):
				t.Errorf("chunk %d: bad content: ok=%v, %d bytes out", chunk, ok, len(out))
			}
		}
	}
}

func runVerifyingWriter(data []byte, chunk int, good bool) ([]byte, bool) {
	rec := &recorder{header: http.Header{}}
	d := digest.FromBytes(data)
	if !good {
		d = digest.FromString("other")
	}
	rec.header.Set("Docker-Content-Digest", d.String())
	v := &verifyingWriter{ResponseWriter: rec}
	v.WriteHeader(http.StatusOK) // as http.ServeContent and the manifest handler do
	for rest := data; len(rest) > 0; {
		n := min(chunk, len(rest))
		if w, err := v.Write(rest[:n]); err != nil || w != n {
			return nil, false
		}
		rest = rest[n:]
	}
	ok := v.finish()
	return rec.body.Bytes(), ok
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

func FuzzVerifyingWriter(f *testing.F) {
	f.Add([]byte("hello"), uint8(3), true)
	f.Add(bytes.Repeat([]byte{1}, 200), uint8(64), false)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, good bool) {
		out, ok := runVerifyingWriter(data, int(chunk)+1, good)
		if good {
			if !ok || !bytes.Equal(out, data) {
				t.Fatalf("good content altered: ok=%v", ok)
			}
			return
		}
		if ok || len(out) != max(0, len(data)-holdBack) || !bytes.Equal(out, data[:len(out)]) {
			t.Fatalf("bad content: ok=%v, %d of %d bytes out", ok, len(out), len(data))
		}
	})
}

func TestReferrers(t *testing.T) {
	e := newEnv(t)
	img := mustImage(t, 256, 1)
	if err := e.push("team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	subject := mustDigest(t, img).String()
	subjectManifest, _ := img.Manifest()
	empty := []byte("{}")
	if resp := e.request("POST", "/v2/team/app/blobs/uploads/?digest="+sha(empty), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload start: %d", resp.StatusCode)
	} else if put := e.request("PUT", withQuery(resp.Header.Get("Location"), "digest="+sha(empty)), empty, map[string]string{"Content-Type": "application/octet-stream"}); put.StatusCode != http.StatusCreated {
		t.Fatalf("empty config: %d", put.StatusCode)
	}
	artifact := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + sha(empty) + `","size":2},` +
		`"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + sha(empty) + `","size":2}],` +
		`"subject":{"mediaType":"` + string(subjectManifest.MediaType) + `","digest":"` + subject + `","size":1},` +
		`"annotations":{"org.example":"yes"}}`)
	resp := e.request("PUT", "/v2/team/app/manifests/"+sha(artifact), artifact, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != subject {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("artifact push: %d OCI-Subject %q %s", resp.StatusCode, resp.Header.Get("OCI-Subject"), body)
	}
	list := func(q string) (v1Index, *http.Response) {
		resp := e.request("GET", "/v2/team/app/referrers/"+subject+q, nil, nil)
		var idx v1Index
		if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
			t.Fatalf("referrers%s: %d %v", q, resp.StatusCode, err)
		}
		return idx, resp
	}
	idx, resp := list("")
	if resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 1 {
		t.Fatalf("referrers: %q %+v", resp.Header.Get("Content-Type"), idx)
	}
	if m := idx.Manifests[0]; m.Digest != sha(artifact) || m.ArtifactType != "application/vnd.example.sbom" || m.Size != int64(len(artifact)) || m.Annotations["org.example"] != "yes" {
		t.Fatalf("descriptor %+v", m)
	}
	idx, resp = list("?artifactType=application/other")
	if len(idx.Manifests) != 0 || resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered: %+v %q", idx, resp.Header.Get("OCI-Filters-Applied"))
	}
	// An unknown subject has no referrers, which is not a 404.
	if resp := e.request("GET", "/v2/team/app/referrers/"+sha([]byte("nothing")), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("unknown subject: %d", resp.StatusCode)
	}
	if resp := e.request("GET", "/v2/team/app/referrers/sha256:zz", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad digest: %d", resp.StatusCode)
	}
	if resp := e.request("GET", "/v2/team/nope/referrers/"+subject, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing repository: %d", resp.StatusCode)
	}
}

type v1Index struct {
	Manifests []struct {
		Digest       string            `json:"digest"`
		Size         int64             `json:"size"`
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"manifests"`
}

func TestParseReferrersPath(t *testing.T) {
	tests := []struct {
		path, name, dgst string
		ok               bool
	}{
		{"/v2/team/app/referrers/sha256:abc", "team/app", "sha256:abc", true},
		{"/v2/a/referrers/referrers/x", "a/referrers", "x", true},
		{"/v2/team/app/referrers/", "", "", false},
		{"/v2/referrers/x", "", "", false},
		{"/v2/Team/referrers/x", "", "", false},
		{"/v2/team/app/referrers/a/b", "", "", false},
		{"/v3/team/referrers/x", "", "", false},
	}
	for _, tt := range tests {
		name, dgst, ok := parseReferrersPath(tt.path)
		if ok != tt.ok || name != tt.name || dgst != tt.dgst {
			t.Errorf("%s: %q %q %v", tt.path, name, dgst, ok)
		}
	}
}

func FuzzParseReferrersPath(f *testing.F) {
	f.Add("/v2/team/app/referrers/sha256:abc")
	f.Add("/v2//referrers/x")
	f.Fuzz(func(t *testing.T, p string) {
		name, dgst, ok := parseReferrersPath(p)
		if ok && "/v2/"+name+"/referrers/"+dgst != p {
			t.Fatalf("%q split into %q %q", p, name, dgst)
		}
	})
}
