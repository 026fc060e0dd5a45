package ecr

import "time"

// The storage view's value types: what the registry's storage reports of a
// repository's images and what the ECR API and the lifecycle sweeper read.
// They live here, not in internal/registry, so that those packages share
// them without importing the registry.

// Image describes one image (manifest) of a repository as DescribeImages
// reports it.
type Image struct {
	Digest string
	Tags   []string // sorted
	// SizeBytes is ECR's imageSizeInBytes: the config and layer blobs of
	// an image manifest (compressed, as pushed); for an index, the largest
	// of its images.
	SizeBytes int64
	// PushedAt is when the manifest was last written to the repository.
	PushedAt  time.Time
	MediaType string // the manifest's media type
	// ArtifactMediaType is the config's media type, for image manifests.
	ArtifactMediaType string
}

// Manifest is a stored manifest.
type Manifest struct {
	Digest    string
	MediaType string
	Body      []byte
}

// ImageRef names an image by tag, digest, or both (which must agree).
type ImageRef struct {
	Digest string
	Tag    string
}
