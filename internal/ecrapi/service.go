// Package ecrapi is berth's Amazon ECR API: one handler per ECR action,
// taking and returning the AWS SDK's own input and output types. Repository
// records (ecr.Repository) live in the state store; images live in the
// registry's storage, reached through the Images port (internal/registry's
// *Registry satisfies it). It knows nothing about HTTP framing: New hands
// the handlers to the awsJson1_1 protocol (package awsjson).
//
// Every handler authorizes first (ecr:<Action> on the repository ARN, or
// "*" for actions without one), validates, then reads and writes the store
// with compare-and-swap transactions retried on conflict. Errors are errdefs
// kinds with ECR's messages; MapError turns them into ECR exception names
// once.
package ecrapi

import (
	"context"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/ecr/schemas"
	smithy "github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
)

// Wire identity of the ECR API (botocore's service model metadata).
const (
	TargetPrefix = "AmazonEC2ContainerRegistry_V20150921"
	SigningName  = "ecr"
	JSONVersion  = "1.1"
)

// Images is the port to the images a repository holds: the registry's
// storage view. The methods neither authorize nor check that the repository
// record exists; the handlers have. Errors carry ecr reasons
// (ecr.ErrImageNotFound, ecr.ErrImageTagAlreadyExists,
// ecr.ErrLayersNotFound) and errdefs kinds.
type Images interface {
	// ListImages returns every image of a repository.
	ListImages(ctx context.Context, repository string) ([]ecr.Image, error)
	// DescribeImage returns one image by tag or digest.
	DescribeImage(ctx context.Context, repository string, ref ecr.ImageRef) (ecr.Image, error)
	// GetManifest returns a manifest by tag or digest.
	GetManifest(ctx context.Context, repository string, ref ecr.ImageRef) (ecr.Manifest, error)
	// PutManifest stores a manifest, tags it when tag is set (refusing an
	// existing tag when immutable) and returns its digest. mediaType ""
	// means the manifest's own mediaType member.
	PutManifest(ctx context.Context, repository, tag, mediaType string, body []byte, immutable bool) (string, error)
	// DeleteImage deletes by digest (the manifest and its tags) or by tag
	// (the tag, and the manifest when no other tag is left on it).
	DeleteImage(ctx context.Context, repository string, ref ecr.ImageRef) (ecr.ImageRef, error)
	// LayerAvailability reports whether a blob is in the repository and
	// its size.
	LayerAvailability(ctx context.Context, repository, layerDigest string) (int64, bool, error)
	// HasImages reports whether the repository holds any manifest.
	HasImages(ctx context.Context, repository string) (bool, error)
	// DeleteRepositoryContents removes everything the repository holds.
	DeleteRepositoryContents(ctx context.Context, repository string) error
}

// Config is what the ECR API needs from the server.
type Config struct {
	Store      store.Store
	Authorizer iam.Authorizer
	Images     Images
	Clock      clock.Clock // nil means the wall clock
	Region     string
	AccountID  string
	Logger     *slog.Logger // nil discards
	// RegistryHost is the registry's host[:port] as `docker push` names it
	// (the server's listener): repositoryUri is RegistryHost/<name>.
	RegistryHost string
	// RegistryScheme is the scheme of GetAuthorizationToken's
	// proxyEndpoint: "https" (the default) or "http" for a plain-HTTP
	// loopback listener.
	RegistryScheme string
	// TokenKey signs authorization tokens (ecr.IssueToken); the registry
	// must verify with the same key.
	TokenKey []byte
}

// New returns the ECR API as an awsJson1_1 service.
func New(cfg Config) *awsjson.Service {
	h := newHandlers(cfg)
	return &awsjson.Service{
		TargetPrefix: TargetPrefix,
		SigningName:  SigningName,
		JSONVersion:  JSONVersion,
		Schema:       schemas.AmazonEC2ContainerRegistry_V20150921,
		Operations:   h.operations(),
		MapError:     h.mapError,
		Primitives:   primitiveShapes,
	}
}

// primitiveShapes are the ECR model's non-boxed primitives that responses
// carry: ECR always sends "scanOnPush", false included.
var primitiveShapes = []smithy.ShapeID{
	{Namespace: "com.amazonaws.ecr", Name: "ScanOnPushFlag"},
}

// handlers holds the ECR actions. Its methods have the signature
// func(context.Context, *ecr.XInput) (*ecr.XOutput, error).
type handlers struct {
	store    store.Store
	authz    iam.Authorizer
	images   Images
	clock    clock.Clock
	region   string
	account  string
	log      *slog.Logger
	host     string
	scheme   string
	tokenKey []byte
}

func newHandlers(cfg Config) *handlers {
	h := &handlers{
		store:    cfg.Store,
		authz:    cfg.Authorizer,
		images:   cfg.Images,
		clock:    cfg.Clock,
		region:   cfg.Region,
		account:  cfg.AccountID,
		log:      cfg.Logger,
		host:     cfg.RegistryHost,
		scheme:   cfg.RegistryScheme,
		tokenKey: cfg.TokenKey,
	}
	if h.clock == nil {
		h.clock = clock.Real{}
	}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.scheme == "" {
		h.scheme = "https"
	}
	if h.host == "" {
		h.host = ecr.RegistryHost(h.account, h.region)
	}
	return h
}

func bind[In any, Out smithy.Serializable](op, req, resp *smithy.Schema, fn func(context.Context, *In) (Out, error)) awsjson.Operation {
	return awsjson.Bind(smithy.NewOperationSchema(op, req, resp), fn)
}

// operations lists every action the ECR API implements.
func (h *handlers) operations() []awsjson.Operation {
	return []awsjson.Operation{
		// Repositories.
		bind(schemas.CreateRepository, schemas.CreateRepositoryRequest, schemas.CreateRepositoryResponse, h.CreateRepository),
		bind(schemas.DescribeRepositories, schemas.DescribeRepositoriesRequest, schemas.DescribeRepositoriesResponse, h.DescribeRepositories),
		bind(schemas.DeleteRepository, schemas.DeleteRepositoryRequest, schemas.DeleteRepositoryResponse, h.DeleteRepository),
		bind(schemas.PutImageTagMutability, schemas.PutImageTagMutabilityRequest, schemas.PutImageTagMutabilityResponse, h.PutImageTagMutability),
		bind(schemas.PutImageScanningConfiguration, schemas.PutImageScanningConfigurationRequest, schemas.PutImageScanningConfigurationResponse, h.PutImageScanningConfiguration),
		bind(schemas.TagResource, schemas.TagResourceRequest, schemas.TagResourceResponse, h.TagResource),
		bind(schemas.UntagResource, schemas.UntagResourceRequest, schemas.UntagResourceResponse, h.UntagResource),
		bind(schemas.ListTagsForResource, schemas.ListTagsForResourceRequest, schemas.ListTagsForResourceResponse, h.ListTagsForResource),
		// Images.
		bind(schemas.ListImages, schemas.ListImagesRequest, schemas.ListImagesResponse, h.ListImages),
		bind(schemas.DescribeImages, schemas.DescribeImagesRequest, schemas.DescribeImagesResponse, h.DescribeImages),
		bind(schemas.BatchGetImage, schemas.BatchGetImageRequest, schemas.BatchGetImageResponse, h.BatchGetImage),
		bind(schemas.BatchDeleteImage, schemas.BatchDeleteImageRequest, schemas.BatchDeleteImageResponse, h.BatchDeleteImage),
		bind(schemas.PutImage, schemas.PutImageRequest, schemas.PutImageResponse, h.PutImage),
		bind(schemas.BatchCheckLayerAvailability, schemas.BatchCheckLayerAvailabilityRequest, schemas.BatchCheckLayerAvailabilityResponse, h.BatchCheckLayerAvailability),
		// Authorization.
		bind(schemas.GetAuthorizationToken, schemas.GetAuthorizationTokenRequest, schemas.GetAuthorizationTokenResponse, h.GetAuthorizationToken),
		// Policies.
		bind(schemas.SetRepositoryPolicy, schemas.SetRepositoryPolicyRequest, schemas.SetRepositoryPolicyResponse, h.SetRepositoryPolicy),
		bind(schemas.GetRepositoryPolicy, schemas.GetRepositoryPolicyRequest, schemas.GetRepositoryPolicyResponse, h.GetRepositoryPolicy),
		bind(schemas.DeleteRepositoryPolicy, schemas.DeleteRepositoryPolicyRequest, schemas.DeleteRepositoryPolicyResponse, h.DeleteRepositoryPolicy),
		bind(schemas.PutLifecyclePolicy, schemas.PutLifecyclePolicyRequest, schemas.PutLifecyclePolicyResponse, h.PutLifecyclePolicy),
		bind(schemas.GetLifecyclePolicy, schemas.GetLifecyclePolicyRequest, schemas.GetLifecyclePolicyResponse, h.GetLifecyclePolicy),
		bind(schemas.DeleteLifecyclePolicy, schemas.DeleteLifecyclePolicyRequest, schemas.DeleteLifecyclePolicyResponse, h.DeleteLifecyclePolicy),
		bind(schemas.StartLifecyclePolicyPreview, schemas.StartLifecyclePolicyPreviewRequest, schemas.StartLifecyclePolicyPreviewResponse, h.StartLifecyclePolicyPreview),
		bind(schemas.GetLifecyclePolicyPreview, schemas.GetLifecyclePolicyPreviewRequest, schemas.GetLifecyclePolicyPreviewResponse, h.GetLifecyclePolicyPreview),
	}
}

// mapError maps err with MapError and logs server faults with their cause,
// which the caller never sees.
func (h *handlers) mapError(err error) *awsapi.Error {
	e := MapError(err)
	if e.HTTPStatus >= 500 {
		h.log.Error("ecr request failed", "code", e.Code, "err", err)
	}
	return e
}
