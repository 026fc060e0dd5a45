package ecrapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Limits of the image actions (the ECR API reference).
const (
	maxBatchImageIDs   = 100
	maxLayerDigests    = 100
	maxMediaTypes      = 100
	maxImageTagLength  = 300
	maxManifestLength  = 4194304
	maxLayerDigestSize = 1000
)

// digestPattern is ECR's imageDigest / layerDigest pattern.
var digestPattern = regexp.MustCompile(`^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$`)

// Failure reasons of the batch actions, in ECR's words.
const (
	reasonNotFound        = "Requested image not found"
	reasonInvalidDigest   = "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"
	reasonInvalidTag      = "Invalid request parameters: image tag should have a length between 1 and 300"
	reasonMissingID       = "Invalid request parameters: image id should specify an image digest or an image tag"
	reasonTagDigest       = "Invalid request parameters: image tag does not match the image digest"
	reasonMediaType       = "Requested image's media type is not one of the accepted media types"
	reasonInvalidLayer    = "Invalid layer digest"
	reasonMissingLayer    = "The layer digest is missing"
	invalidImageIDsLength = "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length "
)

// imageFailure is why one imageId of a batch cannot be served.
type imageFailure struct {
	code   types.ImageFailureCode
	reason string
}

// checkImageID validates one imageId as the batch actions do.
func checkImageID(id types.ImageIdentifier) (ecr.ImageRef, *imageFailure) {
	ref := ecr.ImageRef{Digest: aws.ToString(id.ImageDigest), Tag: aws.ToString(id.ImageTag)}
	switch {
	case id.ImageDigest == nil && id.ImageTag == nil:
		return ref, &imageFailure{types.ImageFailureCodeMissingDigestAndTag, reasonMissingID}
	case id.ImageDigest != nil && !digestPattern.MatchString(ref.Digest):
		return ref, &imageFailure{types.ImageFailureCodeInvalidImageDigest, reasonInvalidDigest}
	case id.ImageTag != nil && (ref.Tag == "" || utf8.RuneCountInString(ref.Tag) > maxImageTagLength):
		return ref, &imageFailure{types.ImageFailureCodeInvalidImageTag, reasonInvalidTag}
	}
	return ref, nil
}

func imageIDToAPI(ref ecr.ImageRef) *types.ImageIdentifier {
	id := &types.ImageIdentifier{}
	if ref.Digest != "" {
		id.ImageDigest = aws.String(ref.Digest)
	}
	if ref.Tag != "" {
		id.ImageTag = aws.String(ref.Tag)
	}
	return id
}

func failureToAPI(id types.ImageIdentifier, f *imageFailure) types.ImageFailure {
	return types.ImageFailure{ImageId: &id, FailureCode: f.code, FailureReason: aws.String(f.reason)}
}

// checkBatchLength validates the length of a batch's imageIds.
func checkBatchLength(n int) error {
	switch {
	case n == 0:
		return ecr.InvalidParameter(invalidImageIDsLength + "greater than or equal to 1'")
	case n > maxBatchImageIDs:
		return ecr.InvalidParameter(fmt.Sprintf(invalidImageIDsLength+"less than or equal to %d'", maxBatchImageIDs))
	}
	return nil
}

// tagStatus validates a filter's tagStatus ("" is ANY).
func tagStatus(s types.TagStatus) (types.TagStatus, error) {
	switch s {
	case "":
		return types.TagStatusAny, nil
	case types.TagStatusTagged, types.TagStatusUntagged, types.TagStatusAny:
		return s, nil
	}
	return "", ecr.InvalidParameter("Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]'")
}

// imageFilter reads the filter ListImages and DescribeImages share: the
// tag status (ANY when absent) and whether the image status hides every
// image.
func imageFilter(ts types.TagStatus, is types.ImageStatusFilter) (types.TagStatus, bool, error) {
	status, err := tagStatus(ts)
	if err != nil {
		return "", false, err
	}
	hide, err := imageStatusHides(is)
	return status, hide, err
}

// imageStatusHides reports whether an imageStatus filter excludes every
// image: berth's images are all ACTIVE (it has no archive storage class).
func imageStatusHides(s types.ImageStatusFilter) (bool, error) {
	switch s {
	case "", types.ImageStatusFilterActive, types.ImageStatusFilterAny:
		return false, nil
	case types.ImageStatusFilterArchived:
		return true, nil
	}
	return false, ecr.InvalidParameter("Invalid parameter at 'filter.imageStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [ACTIVE, ARCHIVED, ANY]'")
}

func tagStatusKeeps(status types.TagStatus, tagged bool) bool {
	return status == types.TagStatusAny || (status == types.TagStatusTagged) == tagged
}

// ListImages lists a repository's image ids: one {imageDigest, imageTag}
// per tag and one {imageDigest} per untagged image.
func (h *handlers) ListImages(ctx context.Context, in *sdk.ListImagesInput) (*sdk.ListImagesOutput, error) {
	t, err := h.target(ctx, "ListImages", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	var ts types.TagStatus
	var is types.ImageStatusFilter
	if f := in.Filter; f != nil {
		ts, is = f.TagStatus, f.ImageStatus
	}
	status, hide, err := imageFilter(ts, is)
	if err != nil {
		return nil, err
	}
	if _, _, err := h.repository(ctx, t); err != nil {
		return nil, err
	}
	var ids []ecr.ImageRef
	if !hide {
		imgs, err := h.images.ListImages(ctx, t.name)
		if err != nil {
			return nil, err
		}
		for _, img := range imgs {
			if len(img.Tags) == 0 {
				if tagStatusKeeps(status, false) {
					ids = append(ids, ecr.ImageRef{Digest: img.Digest})
				}
				continue
			}
			if tagStatusKeeps(status, true) {
				for _, tag := range img.Tags {
					ids = append(ids, ecr.ImageRef{Digest: img.Digest, Tag: tag})
				}
			}
		}
	}
	key := func(r ecr.ImageRef) string { return r.Digest + "\x00" + r.Tag }
	slices.SortFunc(ids, func(a, b ecr.ImageRef) int { return strings.Compare(key(a), key(b)) })
	page, next, err := paginate(ids, key, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &sdk.ListImagesOutput{ImageIds: make([]types.ImageIdentifier, 0, len(page)), NextToken: next}
	for _, r := range page {
		out.ImageIds = append(out.ImageIds, *imageIDToAPI(r))
	}
	return out, nil
}

func imageDetail(img ecr.Image, t repoTarget) types.ImageDetail {
	d := types.ImageDetail{
		ImageDigest:      aws.String(img.Digest),
		ImageSizeInBytes: aws.Int64(img.SizeBytes),
		RegistryId:       aws.String(t.registry),
		RepositoryName:   aws.String(t.name),
	}
	if len(img.Tags) > 0 {
		d.ImageTags = slices.Clone(img.Tags)
	}
	if !img.PushedAt.IsZero() {
		d.ImagePushedAt = aws.Time(img.PushedAt.UTC())
	}
	if img.MediaType != "" {
		d.ImageManifestMediaType = aws.String(img.MediaType)
	}
	if img.ArtifactMediaType != "" {
		d.ArtifactMediaType = aws.String(img.ArtifactMediaType)
	}
	return d
}

// DescribeImages describes the images named by imageIds (any missing one
// fails the call with ImageNotFoundException, as in ECR) or, without them,
// every image a page at a time.
func (h *handlers) DescribeImages(ctx context.Context, in *sdk.DescribeImagesInput) (*sdk.DescribeImagesOutput, error) {
	t, err := h.target(ctx, "DescribeImages", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	var ts types.TagStatus
	var is types.ImageStatusFilter
	if f := in.Filter; f != nil {
		ts, is = f.TagStatus, f.ImageStatus
	}
	status, hide, err := imageFilter(ts, is)
	if err != nil {
		return nil, err
	}
	if len(in.ImageIds) > 0 {
		if err := checkBatchLength(len(in.ImageIds)); err != nil {
			return nil, err
		}
		if in.MaxResults != nil || aws.ToString(in.NextToken) != "" {
			return nil, ecr.InvalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'maxResults and nextToken cannot be used with imageIds'")
		}
	}
	if _, _, err := h.repository(ctx, t); err != nil {
		return nil, err
	}
	if len(in.ImageIds) > 0 {
		out := &sdk.DescribeImagesOutput{ImageDetails: []types.ImageDetail{}}
		seen := map[string]bool{}
		for _, id := range in.ImageIds {
			ref, fail := checkImageID(id)
			if fail != nil {
				return nil, ecr.InvalidParameter("Invalid parameter at 'imageIds' failed to satisfy constraint: '" + strings.TrimPrefix(fail.reason, "Invalid request parameters: ") + "'")
			}
			img, err := h.images.DescribeImage(ctx, t.name, ref)
			if errors.Is(err, ecr.ErrImageNotFound) {
				return nil, ecr.ImageIDNotFound(ref, t.name, t.registry)
			}
			if err != nil {
				return nil, err
			}
			if seen[img.Digest] {
				continue
			}
			seen[img.Digest] = true
			out.ImageDetails = append(out.ImageDetails, imageDetail(img, t))
		}
		return out, nil
	}
	var imgs []ecr.Image
	if !hide {
		all, err := h.images.ListImages(ctx, t.name)
		if err != nil {
			return nil, err
		}
		for _, img := range all {
			if tagStatusKeeps(status, len(img.Tags) > 0) {
				imgs = append(imgs, img)
			}
		}
	}
	slices.SortFunc(imgs, func(a, b ecr.Image) int { return strings.Compare(a.Digest, b.Digest) })
	page, next, err := paginate(imgs, func(i ecr.Image) string { return i.Digest }, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &sdk.DescribeImagesOutput{ImageDetails: make([]types.ImageDetail, 0, len(page)), NextToken: next}
	for _, img := range page {
		out.ImageDetails = append(out.ImageDetails, imageDetail(img, t))
	}
	return out, nil
}

// resolveRef finds the manifest digest ref names, telling apart a tag
// that names another digest (ImageTagDoesNotMatchDigest) from a missing
// image. A nil failure and "" digest never come together.
func (h *handlers) resolveRef(ctx context.Context, repository string, ref ecr.ImageRef) (string, *imageFailure, error) {
	probe := ref
	if ref.Tag != "" {
		probe = ecr.ImageRef{Tag: ref.Tag}
	}
	img, err := h.images.DescribeImage(ctx, repository, probe)
	switch {
	case errors.Is(err, ecr.ErrImageNotFound):
		return "", &imageFailure{types.ImageFailureCodeImageNotFound, reasonNotFound}, nil
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return "", &imageFailure{types.ImageFailureCodeInvalidImageDigest, reasonInvalidDigest}, nil
	case err != nil:
		return "", nil, err
	case ref.Digest != "" && ref.Tag != "" && img.Digest != ref.Digest:
		return "", &imageFailure{types.ImageFailureCodeImageTagDoesNotMatchDigest, reasonTagDigest}, nil
	}
	return img.Digest, nil, nil
}

// BatchGetImage returns the manifests of up to 100 images; what cannot be
// served is reported per imageId in failures.
func (h *handlers) BatchGetImage(ctx context.Context, in *sdk.BatchGetImageInput) (*sdk.BatchGetImageOutput, error) {
	t, err := h.target(ctx, "BatchGetImage", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if err := checkBatchLength(len(in.ImageIds)); err != nil {
		return nil, err
	}
	if len(in.AcceptedMediaTypes) > maxMediaTypes {
		return nil, ecr.InvalidParameter(fmt.Sprintf("Invalid parameter at 'acceptedMediaTypes' failed to satisfy constraint: 'Member must have length less than or equal to %d'", maxMediaTypes))
	}
	if _, _, err := h.repository(ctx, t); err != nil {
		return nil, err
	}
	out := &sdk.BatchGetImageOutput{Images: []types.Image{}, Failures: []types.ImageFailure{}}
	for _, id := range in.ImageIds {
		ref, fail := checkImageID(id)
		if fail != nil {
			out.Failures = append(out.Failures, failureToAPI(id, fail))
			continue
		}
		dg, fail, err := h.resolveRef(ctx, t.name, ref)
		if err != nil {
			return nil, err
		}
		if fail != nil {
			out.Failures = append(out.Failures, failureToAPI(id, fail))
			continue
		}
		m, err := h.images.GetManifest(ctx, t.name, ecr.ImageRef{Digest: dg})
		if errors.Is(err, ecr.ErrImageNotFound) {
			out.Failures = append(out.Failures, failureToAPI(id, &imageFailure{types.ImageFailureCodeImageNotFound, reasonNotFound}))
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, m.MediaType) {
			out.Failures = append(out.Failures, failureToAPI(id, &imageFailure{types.ImageFailureCodeImageNotFound, reasonMediaType}))
			continue
		}
		out.Images = append(out.Images, types.Image{
			ImageId:                imageIDToAPI(ecr.ImageRef{Digest: m.Digest, Tag: ref.Tag}),
			ImageManifest:          aws.String(string(m.Body)),
			ImageManifestMediaType: aws.String(m.MediaType),
			RegistryId:             aws.String(t.registry),
			RepositoryName:         aws.String(t.name),
		})
	}
	return out, nil
}

// BatchDeleteImage deletes up to 100 images: by digest the image and all
// its tags, by tag the tag (and the image with its last tag).
func (h *handlers) BatchDeleteImage(ctx context.Context, in *sdk.BatchDeleteImageInput) (*sdk.BatchDeleteImageOutput, error) {
	t, err := h.target(ctx, "BatchDeleteImage", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if err := checkBatchLength(len(in.ImageIds)); err != nil {
		return nil, err
	}
	if _, _, err := h.repository(ctx, t); err != nil {
		return nil, err
	}
	out := &sdk.BatchDeleteImageOutput{ImageIds: []types.ImageIdentifier{}, Failures: []types.ImageFailure{}}
	for _, id := range in.ImageIds {
		ref, fail := checkImageID(id)
		if fail == nil && ref.Tag != "" && ref.Digest != "" {
			_, fail, err = h.resolveRef(ctx, t.name, ref)
			if err != nil {
				return nil, err
			}
		}
		if fail != nil {
			out.Failures = append(out.Failures, failureToAPI(id, fail))
			continue
		}
		gone, err := h.images.DeleteImage(ctx, t.name, ref)
		switch {
		case errors.Is(err, ecr.ErrImageNotFound):
			out.Failures = append(out.Failures, failureToAPI(id, &imageFailure{types.ImageFailureCodeImageNotFound, reasonNotFound}))
		case errors.Is(err, errdefs.ErrInvalidArgument):
			out.Failures = append(out.Failures, failureToAPI(id, &imageFailure{types.ImageFailureCodeInvalidImageDigest, reasonInvalidDigest}))
		case err != nil:
			return nil, err
		default:
			out.ImageIds = append(out.ImageIds, *imageIDToAPI(gone))
		}
	}
	return out, nil
}

// manifestDigest is the sha256 digest ECR computes of a manifest.
func manifestDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PutImage stores a manifest (its layers must be in the repository) and
// tags it when imageTag is set. The same manifest under the same tag is
// ImageAlreadyExistsException; in an IMMUTABLE repository an existing tag
// is ImageTagAlreadyExistsException.
func (h *handlers) PutImage(ctx context.Context, in *sdk.PutImageInput) (*sdk.PutImageOutput, error) {
	t, err := h.target(ctx, "PutImage", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	body := aws.ToString(in.ImageManifest)
	switch {
	case body == "":
		return nil, ecr.InvalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
	case len(body) > maxManifestLength:
		return nil, ecr.InvalidParameter(fmt.Sprintf("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length less than or equal to %d'", maxManifestLength))
	}
	tag := aws.ToString(in.ImageTag)
	if in.ImageTag != nil && (tag == "" || utf8.RuneCountInString(tag) > maxImageTagLength) {
		return nil, ecr.InvalidParameter(fmt.Sprintf("Invalid parameter at 'imageTag' failed to satisfy constraint: 'Member must have length between 1 and %d'", maxImageTagLength))
	}
	rec, _, err := h.repository(ctx, t)
	if err != nil {
		return nil, err
	}
	computed := manifestDigest([]byte(body))
	if d := aws.ToString(in.ImageDigest); d != "" && d != computed {
		return nil, ecr.ImageDigestDoesNotMatch(d, computed)
	}
	mediaType := aws.ToString(in.ImageManifestMediaType)
	if mediaType == "" {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal([]byte(body), &probe) == nil {
			mediaType = probe.MediaType
		}
	}
	probe := ecr.ImageRef{Tag: tag}
	if tag == "" {
		probe = ecr.ImageRef{Digest: computed}
	}
	existing, err := h.images.DescribeImage(ctx, t.name, probe)
	switch {
	case err == nil && existing.Digest == computed:
		return nil, ecr.ImageAlreadyExists(computed, tag, t.name, t.registry)
	case err != nil && !errors.Is(err, ecr.ErrImageNotFound):
		return nil, err
	}
	dg, err := h.images.PutManifest(ctx, t.name, tag, mediaType, []byte(body), rec.Immutable())
	if err != nil {
		return nil, err
	}
	return &sdk.PutImageOutput{Image: &types.Image{
		ImageId:                imageIDToAPI(ecr.ImageRef{Digest: dg, Tag: tag}),
		ImageManifest:          aws.String(body),
		ImageManifestMediaType: aws.String(mediaType),
		RegistryId:             aws.String(t.registry),
		RepositoryName:         aws.String(t.name),
	}}, nil
}

// BatchCheckLayerAvailability reports, for up to 100 layer digests, whether
// each is in the repository (AVAILABLE with its size, or UNAVAILABLE);
// malformed digests are failures.
func (h *handlers) BatchCheckLayerAvailability(ctx context.Context, in *sdk.BatchCheckLayerAvailabilityInput) (*sdk.BatchCheckLayerAvailabilityOutput, error) {
	t, err := h.target(ctx, "BatchCheckLayerAvailability", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	switch n := len(in.LayerDigests); {
	case n == 0:
		return nil, ecr.InvalidParameter("Invalid parameter at 'layerDigests' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
	case n > maxLayerDigests:
		return nil, ecr.InvalidParameter(fmt.Sprintf("Invalid parameter at 'layerDigests' failed to satisfy constraint: 'Member must have length less than or equal to %d'", maxLayerDigests))
	}
	if _, _, err := h.repository(ctx, t); err != nil {
		return nil, err
	}
	out := &sdk.BatchCheckLayerAvailabilityOutput{Layers: []types.Layer{}, Failures: []types.LayerFailure{}}
	for _, d := range in.LayerDigests {
		fail := func(code types.LayerFailureCode, reason string) {
			out.Failures = append(out.Failures, types.LayerFailure{LayerDigest: aws.String(d), FailureCode: code, FailureReason: aws.String(reason)})
		}
		switch {
		case d == "":
			fail(types.LayerFailureCodeMissingLayerDigest, reasonMissingLayer)
			continue
		case len(d) > maxLayerDigestSize || !digestPattern.MatchString(d):
			fail(types.LayerFailureCodeInvalidLayerDigest, reasonInvalidLayer)
			continue
		}
		size, ok, err := h.images.LayerAvailability(ctx, t.name, d)
		switch {
		case errors.Is(err, errdefs.ErrInvalidArgument):
			fail(types.LayerFailureCodeInvalidLayerDigest, reasonInvalidLayer)
		case err != nil:
			return nil, err
		case ok:
			out.Layers = append(out.Layers, types.Layer{LayerDigest: aws.String(d), LayerAvailability: types.LayerAvailabilityAvailable, LayerSize: aws.Int64(size)})
		default:
			out.Layers = append(out.Layers, types.Layer{LayerDigest: aws.String(d), LayerAvailability: types.LayerAvailabilityUnavailable})
		}
	}
	return out, nil
}
