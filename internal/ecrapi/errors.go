package ecrapi

import (
	"errors"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
)

// HTTP statuses of ECR exceptions (the package speaks no HTTP itself).
const (
	client = 400
	server = 500
)

// errorRule maps one sentinel (an ecr reason or an errdefs kind) to an ECR
// exception.
type errorRule struct {
	match  error
	code   string
	status int
}

// errorTable is the one translation from berth's errors to ECR exceptions.
// Order matters: specific reasons come before the kinds they are carried
// with. Every ECR exception is a 400 client fault except ServerException
// (500), per the model; ECR answers a denied action with
// AccessDeniedException, 400 like the rest.
var errorTable = []errorRule{
	{awsjson.ErrSerialization, "SerializationException", client},

	{ecr.ErrRepositoryNotFound, "RepositoryNotFoundException", client},
	{ecr.ErrRepositoryAlreadyExists, "RepositoryAlreadyExistsException", client},
	{ecr.ErrRepositoryNotEmpty, "RepositoryNotEmptyException", client},
	{ecr.ErrRepositoryPolicyNotFound, "RepositoryPolicyNotFoundException", client},
	{ecr.ErrLifecyclePolicyNotFound, "LifecyclePolicyNotFoundException", client},
	{ecr.ErrLifecyclePolicyPreviewNotFound, "LifecyclePolicyPreviewNotFoundException", client},
	{ecr.ErrImageNotFound, "ImageNotFoundException", client},
	{ecr.ErrImageAlreadyExists, "ImageAlreadyExistsException", client},
	{ecr.ErrImageTagAlreadyExists, "ImageTagAlreadyExistsException", client},
	{ecr.ErrImageDigestDoesNotMatch, "ImageDigestDoesNotMatchException", client},
	{ecr.ErrLayersNotFound, "LayersNotFoundException", client},
	{ecr.ErrInvalidTagParameter, "InvalidTagParameterException", client},
	{ecr.ErrTooManyTags, "TooManyTagsException", client},

	{errdefs.ErrAccessDenied, "AccessDeniedException", client},
	{errdefs.ErrUnauthenticated, "AccessDeniedException", client},
	{errdefs.ErrInvalidArgument, "InvalidParameterException", client},
	{errdefs.ErrAlreadyExists, "InvalidParameterException", client},
	{errdefs.ErrFailedPrecondition, "InvalidParameterException", client},
	{errdefs.ErrNotFound, "InvalidParameterException", client},
	{errdefs.ErrLimitExceeded, "LimitExceededException", client},
	{errdefs.ErrThrottled, "ThrottlingException", client},
	// A conflict that survived the handler's retries is transient: a server
	// fault, which the SDKs retry.
	{errdefs.ErrConflict, "ServerException", server},
	{errdefs.ErrUnavailable, "ServerException", server},
}

// serverFaultMessage is what a caller sees of an internal failure.
const serverFaultMessage = "Service encountered an internal error. Try again."

// MapError translates an error returned by an ECR handler into the ECR
// exception the caller sees. An *awsapi.Error passes through unchanged;
// anything unrecognised is a ServerException whose cause is not shown.
//
// When the chain holds an *errdefs.Error, only its kind and reason decide:
// its internal cause may wrap other kinds that must not leak into the
// answer.
func MapError(err error) *awsapi.Error {
	var wire *awsapi.Error
	if errors.As(err, &wire) {
		return wire
	}
	class := err
	var e *errdefs.Error
	if errors.As(err, &e) {
		class = errors.Join(e.Kind, e.Reason)
	}
	for _, r := range errorTable {
		if !errors.Is(class, r.match) {
			continue
		}
		msg := errdefs.Message(err, r.code)
		if r.status >= server {
			msg = serverFaultMessage
		}
		return &awsapi.Error{Code: r.code, Message: msg, HTTPStatus: r.status}
	}
	return &awsapi.Error{Code: "ServerException", Message: serverFaultMessage, HTTPStatus: server}
}
