package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
)

// The OCI 1.1 referrers API, which distribution v3.1.2 lacks and ECR
// serves: GET /v2/<name>/referrers/<digest> lists the manifests of the
// repository whose subject is <digest>. berth finds them by reading the
// repository's manifests, which is fine at berth's scale and needs no
// index to keep consistent.

var specsVersioned = specs.Versioned{SchemaVersion: 2}

// maxManifestBytes is distribution's limit on a pushed manifest.
const maxManifestBytes = 4 << 20

// parseReferrersPath splits /v2/<name>/referrers/<digest>.
func parseReferrersPath(p string) (name, dgst string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/referrers/")
	if i <= 0 {
		return "", "", false
	}
	name, dgst = rest[:i], rest[i+len("/referrers/"):]
	if dgst == "" || strings.Contains(dgst, "/") || !reference.NameRegexp.MatchString(name) ||
		reference.NameRegexp.FindString(name) != name {
		return "", "", false
	}
	return name, dgst, true
}

func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, p iam.Principal, name, subject string) {
	if req.Method != http.MethodGet {
		writeMethodNotAllowed(w)
		return
	}
	ctx := req.Context()
	// Listing referrers reads manifests, as BatchGetImage does.
	if err := r.cfg.Authorizer.Authorize(ctx, p, ecr.ActionBatchGetImage, r.repositoryARN(name)); err != nil {
		r.writeError(w, req, err)
		return
	}
	if _, err := r.lookup(ctx, name); err != nil {
		r.writeError(w, req, err)
		return
	}
	d, err := digest.Parse(subject)
	if err != nil {
		_ = errcode.ServeJSON(w, errcode.ErrorCodeDigestInvalid)
		return
	}
	artifactType := req.URL.Query().Get("artifactType")
	descs, err := r.referrers(ctx, name, d, artifactType)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", v1.MediaTypeImageIndex)
	_ = jsonEncode(w, v1.Index{
		Versioned: specsVersioned,
		MediaType: v1.MediaTypeImageIndex,
		Manifests: descs,
	})
}

// referrers returns descriptors of the manifests of a repository whose
// subject is d, ordered by digest, optionally only those of one artifact
// type.
func (r *Registry) referrers(ctx context.Context, repository string, d digest.Digest, artifactType string) ([]v1.Descriptor, error) {
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	out := []v1.Descriptor{}
	err = ms.(distribution.ManifestEnumerator).Enumerate(ctx, func(md digest.Digest) error {
		m, err := ms.Get(ctx, md)
		if err != nil {
			return nil // deleted meanwhile, or not a manifest distribution reads
		}
		mt, body, err := m.Payload()
		if err != nil {
			return nil
		}
		var probe manifestProbe
		if json.Unmarshal(body, &probe) != nil || probe.Subject == nil || probe.Subject.Digest != d {
			return nil
		}
		at := probe.ArtifactType
		if at == "" && probe.Config != nil {
			at = probe.Config.MediaType
		}
		if artifactType != "" && at != artifactType {
			return nil
		}
		out = append(out, v1.Descriptor{MediaType: mt, Digest: md, Size: int64(len(body)), ArtifactType: at, Annotations: probe.Annotations})
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, errdefs.Internal(err)
	}
	slices.SortFunc(out, func(a, b v1.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// manifestProbe reads the fields of an image manifest or index that the
// referrers API reports.
type manifestProbe struct {
	ArtifactType string            `json:"artifactType"`
	Config       *v1.Descriptor    `json:"config"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// subjectOf reads the body of a manifest PUT (putting it back for the
// app) and returns its subject digest, if any.
func subjectOf(req *http.Request) (digest.Digest, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return "", nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestBytes+1))
	_ = req.Body.Close()
	if err != nil {
		return "", errdefs.InvalidArgument("reading manifest: " + err.Error())
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var probe manifestProbe
	if json.Unmarshal(body, &probe) != nil || probe.Subject == nil {
		return "", nil // the app judges the manifest
	}
	return probe.Subject.Digest, nil
}

// subjectHeaderWriter adds OCI-Subject to a successful manifest PUT, which
// tells clients the registry handles referrers.
type subjectHeaderWriter struct {
	http.ResponseWriter
	subject digest.Digest
	started bool
}

func (s *subjectHeaderWriter) WriteHeader(code int) {
	if !s.started {
		s.started = true
		if code == http.StatusCreated {
			s.Header().Set("OCI-Subject", s.subject.String())
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *subjectHeaderWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(p)
}

func (s *subjectHeaderWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
