package ecr

import (
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Reasons: sentinels carried in errdefs.Error.Reason so that the ECR API
// and the registry can name ECR's precise exception or registry error code.
// Each is used with the kind noted.
var (
	ErrRepositoryNotFound      = errors.New("repository not found")        // with errdefs.ErrNotFound
	ErrRepositoryAlreadyExists = errors.New("repository already exists")   // with errdefs.ErrAlreadyExists
	ErrRepositoryNotEmpty      = errors.New("repository not empty")        // with errdefs.ErrFailedPrecondition
	ErrImageNotFound           = errors.New("image not found")             // with errdefs.ErrNotFound
	ErrImageTagAlreadyExists   = errors.New("image tag already exists")    // with errdefs.ErrAlreadyExists
	ErrLayersNotFound          = errors.New("layers not found")            // with errdefs.ErrNotFound
	ErrTokenExpired            = errors.New("authorization token expired") // with errdefs.ErrUnauthenticated
	ErrTokenInvalid            = errors.New("authorization token invalid") // with errdefs.ErrUnauthenticated
)

// InvalidParameter returns an invalid-argument error that ECR reports as
// InvalidParameterException.
func InvalidParameter(message string) error { return errdefs.InvalidArgument(message) }

// RepositoryNotFound is RepositoryNotFoundException; the registry answers
// a push or pull of a missing repository with the same text under NAME_UNKNOWN.
func RepositoryNotFound(name, registryID string) error {
	return errdefs.WithReason(errdefs.ErrNotFound, ErrRepositoryNotFound,
		fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", name, registryID))
}

// RepositoryAlreadyExists is RepositoryAlreadyExistsException.
func RepositoryAlreadyExists(name, registryID string) error {
	return errdefs.WithReason(errdefs.ErrAlreadyExists, ErrRepositoryAlreadyExists,
		fmt.Sprintf("The repository with name '%s' already exists in the registry with id '%s'", name, registryID))
}

// RepositoryNotEmpty is RepositoryNotEmptyException (DeleteRepository
// without force on a repository that has images).
func RepositoryNotEmpty(name, registryID string) error {
	return errdefs.WithReason(errdefs.ErrFailedPrecondition, ErrRepositoryNotEmpty,
		fmt.Sprintf("The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", name, registryID))
}

// ImageTagAlreadyExists is ImageTagAlreadyExistsException, and TAG_INVALID
// on a registry push, for a tag of an IMMUTABLE repository that exists
// already. ECR refuses even when the tag would keep its digest.
func ImageTagAlreadyExists(tag, repository string) error {
	return errdefs.WithReason(errdefs.ErrAlreadyExists, ErrImageTagAlreadyExists,
		fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.", tag, repository))
}

// ImageNotFound is ImageNotFoundException for an image reference (a tag or
// a digest) of a repository.
func ImageNotFound(reference, repository, registryID string) error {
	return errdefs.WithReason(errdefs.ErrNotFound, ErrImageNotFound,
		fmt.Sprintf("The image with reference '%s' does not exist within the repository with name '%s' in the registry with id '%s'", reference, repository, registryID))
}

// TokenExpiredMessage is what ECR's registry says (403 DENIED) to a client
// presenting an expired authorization token.
const TokenExpiredMessage = "Your authorization token has expired. Reauthenticate and try again."

// NotAuthorizedMessage is what ECR's registry says (401 UNAUTHORIZED) to a
// request without valid credentials.
const NotAuthorizedMessage = "Not Authorized"

// ImageIDNotFound is ImageNotFoundException as the ECR API words it,
// naming the imageId the caller sent ('null' for a missing member).
func ImageIDNotFound(ref ImageRef, repository, registryID string) error {
	return errdefs.WithReason(errdefs.ErrNotFound, ErrImageNotFound,
		fmt.Sprintf("The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
			orNull(ref.Digest), orNull(ref.Tag), repository, registryID))
}

// ImageAlreadyExists is ImageAlreadyExistsException: PutImage of a
// manifest (and tag) the repository already holds.
func ImageAlreadyExists(digest, tag, repository, registryID string) error {
	return errdefs.WithReason(errdefs.ErrAlreadyExists, ErrImageAlreadyExists,
		fmt.Sprintf("Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'",
			digest, orNull(tag), repository, registryID))
}

// ImageDigestDoesNotMatch is ImageDigestDoesNotMatchException: PutImage
// with an imageDigest that is not the manifest's.
func ImageDigestDoesNotMatch(given, computed string) error {
	return errdefs.WithReason(errdefs.ErrInvalidArgument, ErrImageDigestDoesNotMatch,
		fmt.Sprintf("Provided image digest '%s' does not match the calculated image digest '%s'", given, computed))
}

// RepositoryPolicyNotFound is RepositoryPolicyNotFoundException.
func RepositoryPolicyNotFound(name, registryID string) error {
	return errdefs.WithReason(errdefs.ErrNotFound, ErrRepositoryPolicyNotFound,
		fmt.Sprintf("Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", name, registryID))
}

// LifecyclePolicyNotFound is LifecyclePolicyNotFoundException.
func LifecyclePolicyNotFound(name, registryID string) error {
	return errdefs.WithReason(errdefs.ErrNotFound, ErrLifecyclePolicyNotFound,
		fmt.Sprintf("Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", name, registryID))
}

// LifecyclePolicyPreviewNotFound is LifecyclePolicyPreviewNotFoundException.
func LifecyclePolicyPreviewNotFound(name, registryID string) error {
	return errdefs.WithReason(errdefs.ErrNotFound, ErrLifecyclePolicyPreviewNotFound,
		fmt.Sprintf("There is no dry run for the repository with name '%s' in the registry with id '%s'", name, registryID))
}

// Reasons of the ECR API's further exceptions (as the sentinels above).
var (
	ErrImageAlreadyExists             = errors.New("image already exists")               // with errdefs.ErrAlreadyExists
	ErrImageDigestDoesNotMatch        = errors.New("image digest does not match")        // with errdefs.ErrInvalidArgument
	ErrRepositoryPolicyNotFound       = errors.New("repository policy not found")        // with errdefs.ErrNotFound
	ErrLifecyclePolicyNotFound        = errors.New("lifecycle policy not found")         // with errdefs.ErrNotFound
	ErrLifecyclePolicyPreviewNotFound = errors.New("lifecycle policy preview not found") // with errdefs.ErrNotFound
	ErrInvalidTagParameter            = errors.New("invalid tag parameter")              // with errdefs.ErrInvalidArgument
	ErrTooManyTags                    = errors.New("too many tags")                      // with errdefs.ErrLimitExceeded
)

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}
