package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/manifestlist"
	"github.com/distribution/distribution/v3/manifest/ocischema"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
)

// The storage view: what the ECR API needs of the images a repository
// holds. It reads and writes the same storage as the /v2/ handler, through
// distribution's storage packages. These methods do not authorize or check
// that the repository record exists: the caller (the ECR API) has.

// The storage view's value types are ecr's, so that the ECR API and the
// lifecycle sweeper share them without importing this package; the aliases
// keep the names short here.
type (
	// Image describes one image (manifest) of a repository.
	Image = ecr.Image
	// Manifest is a stored manifest.
	Manifest = ecr.Manifest
	// ImageRef names an image by tag, digest, or both (which must agree).
	ImageRef = ecr.ImageRef
)

const repositoriesRoot = "/docker/registry/v2/repositories/"

// ListImages returns every image of a repository, ordered by digest.
func (r *Registry) ListImages(ctx context.Context, repository string) ([]Image, error) {
	ctx = r.libCtx(ctx)
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	var digests []digest.Digest
	err = ms.(distribution.ManifestEnumerator).Enumerate(ctx, func(d digest.Digest) error {
		digests = append(digests, d)
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, errdefs.Internal(err)
	}
	tags, err := r.tagsByDigest(ctx, repo)
	if err != nil {
		return nil, err
	}
	slices.Sort(digests)
	out := make([]Image, 0, len(digests))
	for _, d := range digests {
		img, err := r.describe(ctx, repository, ms, d, tags[d])
		if errors.Is(err, ecr.ErrImageNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// DescribeImage returns one image by tag or digest; a missing one is
// ecr.ImageNotFound.
func (r *Registry) DescribeImage(ctx context.Context, repository string, ref ImageRef) (Image, error) {
	ctx = r.libCtx(ctx)
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return Image{}, err
	}
	d, err := r.resolve(ctx, repo, ref)
	if err != nil {
		return Image{}, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return Image{}, errdefs.Internal(err)
	}
	tags, err := repo.Tags(ctx).Lookup(ctx, v1.Descriptor{Digest: d})
	if err != nil && !isRepositoryUnknown(err) {
		return Image{}, errdefs.Internal(err)
	}
	slices.Sort(tags)
	return r.describe(ctx, repository, ms, d, tags)
}

// GetManifest returns a manifest by tag or digest.
func (r *Registry) GetManifest(ctx context.Context, repository string, ref ImageRef) (Manifest, error) {
	ctx = r.libCtx(ctx)
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return Manifest{}, err
	}
	d, err := r.resolve(ctx, repo, ref)
	if err != nil {
		return Manifest{}, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return Manifest{}, errdefs.Internal(err)
	}
	m, err := ms.Get(ctx, d)
	if err != nil {
		return Manifest{}, r.manifestGetError(err, refString(ref), repository)
	}
	mt, body, err := m.Payload()
	if err != nil {
		return Manifest{}, errdefs.Internal(err)
	}
	// The storage view does not verify reads by itself.
	if got := d.Algorithm().FromBytes(body); got != d {
		return Manifest{}, errdefs.Internal(fmt.Errorf("manifest %s of %s is corrupt: content hashes to %s", d, repository, got))
	}
	return Manifest{Digest: d.String(), MediaType: mt, Body: body}, nil
}

// PutManifest stores a manifest and, when tag is set, points the tag at
// it, like a push. mediaType "" means the manifest's own mediaType field.
// When immutable is set, an existing tag is refused with
// ecr.ImageTagAlreadyExists. Layers the manifest references must exist in
// the repository (ecr.ErrLayersNotFound otherwise).
func (r *Registry) PutManifest(ctx context.Context, repository, tag, mediaType string, body []byte, immutable bool) (string, error) {
	ctx = r.libCtx(ctx)
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return "", err
	}
	if mediaType == "" {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		if err := json.Unmarshal(body, &probe); err != nil {
			return "", ecr.InvalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Invalid JSON syntax'")
		}
		mediaType = probe.MediaType
	}
	m, desc, err := distribution.UnmarshalManifest(mediaType, body)
	if err != nil {
		return "", ecr.InvalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: '" + err.Error() + "'")
	}
	mu := r.repoLock(repository)
	mu.Lock()
	defer mu.Unlock()
	if immutable && tag != "" {
		if err := r.checkTagFree(ctx, repository, tag); err != nil {
			return "", err
		}
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return "", errdefs.Internal(err)
	}
	var opts []distribution.ManifestServiceOption
	if tag != "" {
		opts = append(opts, distribution.WithTag(tag))
	}
	if _, err := ms.Put(ctx, m, opts...); err != nil {
		return "", r.manifestPutError(err, repository)
	}
	if tag != "" {
		if err := repo.Tags(ctx).Tag(ctx, tag, desc); err != nil {
			return "", errdefs.Internal(err)
		}
	}
	return desc.Digest.String(), nil
}

// DeleteImage deletes an image with BatchDeleteImage's meaning: by
// digest, the manifest and every tag on it; by tag, the tag, and the
// manifest too when no other tag is left on it. It returns the digest and
// tag it removed.
func (r *Registry) DeleteImage(ctx context.Context, repository string, ref ImageRef) (ImageRef, error) {
	ctx = r.libCtx(ctx)
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return ImageRef{}, err
	}
	mu := r.repoLock(repository)
	mu.Lock()
	defer mu.Unlock()
	d, err := r.resolve(ctx, repo, ref)
	if err != nil {
		return ImageRef{}, err
	}
	tagSvc := repo.Tags(ctx)
	tags, err := tagSvc.Lookup(ctx, v1.Descriptor{Digest: d})
	if err != nil && !isRepositoryUnknown(err) {
		return ImageRef{}, errdefs.Internal(err)
	}
	if ref.Tag != "" {
		if err := tagSvc.Untag(ctx, ref.Tag); err != nil && !isPathNotFound(err) {
			return ImageRef{}, errdefs.Internal(err)
		}
		if slices.ContainsFunc(tags, func(t string) bool { return t != ref.Tag }) {
			return ImageRef{Digest: d.String(), Tag: ref.Tag}, nil
		}
		tags = nil
	}
	for _, t := range tags {
		if err := tagSvc.Untag(ctx, t); err != nil && !isPathNotFound(err) {
			return ImageRef{}, errdefs.Internal(err)
		}
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return ImageRef{}, errdefs.Internal(err)
	}
	if err := ms.Delete(ctx, d); err != nil && !errors.Is(err, distribution.ErrBlobUnknown) {
		return ImageRef{}, errdefs.Internal(err)
	}
	return ImageRef{Digest: d.String(), Tag: ref.Tag}, nil
}

// LayerAvailability reports whether a blob is available in a repository
// and its size (BatchCheckLayerAvailability).
func (r *Registry) LayerAvailability(ctx context.Context, repository, layerDigest string) (int64, bool, error) {
	ctx = r.libCtx(ctx)
	d, err := digest.Parse(layerDigest)
	if err != nil {
		return 0, false, ecr.InvalidParameter("Invalid parameter at 'layerDigest' failed to satisfy constraint: 'must be a valid digest'")
	}
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return 0, false, err
	}
	desc, err := repo.Blobs(ctx).Stat(ctx, d)
	switch {
	case err == nil:
		return desc.Size, true, nil
	case errors.Is(err, distribution.ErrBlobUnknown) || isPathNotFound(err):
		return 0, false, nil
	default:
		return 0, false, errdefs.Internal(err)
	}
}

// HasImages reports whether a repository holds any manifest (DeleteRepository
// without force refuses such a repository).
func (r *Registry) HasImages(ctx context.Context, repository string) (bool, error) {
	ctx = r.libCtx(ctx)
	repo, err := r.viewRepository(ctx, r.view, repository)
	if err != nil {
		return false, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return false, errdefs.Internal(err)
	}
	// The filesystem driver wraps the walk function's error in a
	// driver.Error that errors.Is cannot see through: remember the find
	// instead of recognizing the stop error.
	found := false
	errStop := errors.New("found")
	err = ms.(distribution.ManifestEnumerator).Enumerate(ctx, func(digest.Digest) error {
		found = true
		return errStop
	})
	switch {
	case found:
		return true, nil
	case err == nil || isPathNotFound(err):
		return false, nil
	default:
		return false, errdefs.Internal(err)
	}
}

// DeleteRepositoryContents removes everything a repository holds: tags,
// manifests, layer links and unfinished uploads (DeleteRepository with
// force). Blobs no other repository references go at the next Collect.
func (r *Registry) DeleteRepositoryContents(ctx context.Context, repository string) error {
	ctx = r.libCtx(ctx)
	if err := ecr.ValidateRepositoryName(repository); err != nil {
		return err
	}
	mu := r.repoLock(repository)
	mu.Lock()
	defer mu.Unlock()
	err := r.inner.Delete(ctx, repositoriesRoot+repository)
	if err != nil && !isPathNotFound(err) {
		return errdefs.Internal(err)
	}
	return nil
}

// resolve turns an ImageRef into the manifest digest it names.
func (r *Registry) resolve(ctx context.Context, repo distribution.Repository, ref ImageRef) (digest.Digest, error) {
	name := repo.Named().Name()
	var want digest.Digest
	if ref.Digest != "" {
		d, err := digest.Parse(ref.Digest)
		if err != nil {
			return "", ecr.InvalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'must be a valid digest'")
		}
		want = d
	}
	if ref.Tag == "" {
		if want == "" {
			return "", ecr.InvalidParameter("Invalid parameter at 'imageId' failed to satisfy constraint: 'must have an imageTag or an imageDigest'")
		}
		ms, err := repo.Manifests(ctx)
		if err != nil {
			return "", errdefs.Internal(err)
		}
		ok, err := ms.Exists(ctx, want)
		if err != nil && !isPathNotFound(err) {
			return "", errdefs.Internal(err)
		}
		if !ok {
			return "", ecr.ImageNotFound(refString(ref), name, r.cfg.AccountID)
		}
		return want, nil
	}
	desc, err := repo.Tags(ctx).Get(ctx, ref.Tag)
	var unknown distribution.ErrTagUnknown
	switch {
	case errors.As(err, &unknown) || isPathNotFound(err):
		return "", ecr.ImageNotFound(refString(ref), name, r.cfg.AccountID)
	case err != nil:
		return "", errdefs.Internal(err)
	case want != "" && desc.Digest != want:
		return "", ecr.ImageNotFound(refString(ref), name, r.cfg.AccountID)
	}
	return desc.Digest, nil
}

// tagsByDigest maps each manifest digest of a repository to its tags.
func (r *Registry) tagsByDigest(ctx context.Context, repo distribution.Repository) (map[digest.Digest][]string, error) {
	svc := repo.Tags(ctx)
	all, err := svc.All(ctx)
	if err != nil {
		if isRepositoryUnknown(err) || isPathNotFound(err) {
			return nil, nil
		}
		return nil, errdefs.Internal(err)
	}
	out := make(map[digest.Digest][]string)
	for _, t := range all {
		desc, err := svc.Get(ctx, t)
		var unknown distribution.ErrTagUnknown
		if errors.As(err, &unknown) {
			continue // untagged meanwhile
		}
		if err != nil {
			return nil, errdefs.Internal(err)
		}
		out[desc.Digest] = append(out[desc.Digest], t)
	}
	for _, ts := range out {
		slices.Sort(ts)
	}
	return out, nil
}

func (r *Registry) describe(ctx context.Context, repository string, ms distribution.ManifestService, d digest.Digest, tags []string) (Image, error) {
	m, err := ms.Get(ctx, d)
	if err != nil {
		return Image{}, r.manifestGetError(err, d.String(), repository)
	}
	mt, _, err := m.Payload()
	if err != nil {
		return Image{}, errdefs.Internal(err)
	}
	img := Image{Digest: d.String(), Tags: tags, MediaType: mt, SizeBytes: imageSize(ctx, ms, m, 0)}
	if t, ok := m.(interface{ Target() v1.Descriptor }); ok {
		img.ArtifactMediaType = t.Target().MediaType
	}
	link := path.Join(repositoriesRoot, repository, "_manifests/revisions", d.Algorithm().String(), d.Encoded(), "link")
	if fi, err := r.inner.Stat(ctx, link); err == nil {
		img.PushedAt = fi.ModTime().UTC()
	}
	return img, nil
}

// imageSize is ECR's imageSizeInBytes: the sum of an image manifest's
// blobs, the largest image of an index.
func imageSize(ctx context.Context, ms distribution.ManifestService, m distribution.Manifest, depth int) int64 {
	var size int64
	switch m.(type) {
	case *ocischema.DeserializedImageIndex, *manifestlist.DeserializedManifestList:
		if depth > 2 {
			return 0
		}
		for _, child := range m.References() {
			cm, err := ms.Get(ctx, child.Digest)
			if err != nil {
				continue // a child stored elsewhere, or an artifact
			}
			size = max(size, imageSize(ctx, ms, cm, depth+1))
		}
	default:
		for _, ref := range m.References() {
			size += ref.Size
		}
	}
	return size
}

func (r *Registry) manifestGetError(err error, ref, repository string) error {
	var unknownRev distribution.ErrManifestUnknownRevision
	var unknown distribution.ErrManifestUnknown
	if errors.As(err, &unknownRev) || errors.As(err, &unknown) || errors.Is(err, distribution.ErrBlobUnknown) || isPathNotFound(err) {
		return ecr.ImageNotFound(ref, repository, r.cfg.AccountID)
	}
	return errdefs.Internal(err)
}

func (r *Registry) manifestPutError(err error, repository string) error {
	var verr distribution.ErrManifestVerification
	if !errors.As(err, &verr) {
		return errdefs.Internal(err)
	}
	var missing []string
	for _, e := range verr {
		var blob distribution.ErrManifestBlobUnknown
		if errors.As(e, &blob) {
			missing = append(missing, blob.Digest.String())
		}
	}
	if len(missing) > 0 {
		return errdefs.WithReason(errdefs.ErrNotFound, ecr.ErrLayersNotFound, fmt.Sprintf(
			"Layers with digests '[%s]' required for pushing image into repository with name '%s' in the registry with id '%s' do not exist",
			strings.Join(missing, ", "), repository, r.cfg.AccountID))
	}
	return ecr.InvalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: '" + err.Error() + "'")
}

func refString(ref ImageRef) string {
	switch {
	case ref.Tag != "" && ref.Digest != "":
		return ref.Tag + "@" + ref.Digest
	case ref.Tag != "":
		return ref.Tag
	default:
		return ref.Digest
	}
}

func isPathNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}

func isRepositoryUnknown(err error) bool {
	var ru distribution.ErrRepositoryUnknown
	return errors.As(err, &ru)
}
