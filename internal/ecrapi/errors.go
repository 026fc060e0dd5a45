package ecrapi

import (
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

// errorTable is the one translation from berth's errors to ECR exceptions.
// Order matters: specific reasons come before the kinds they are carried
// with. Every ECR exception is a 400 client fault except ServerException
// (500), per the model; ECR answers a denied action with
// AccessDeniedException, 400 like the rest.
var errorTable = []awsapi.ErrorRule{
	{Match: awsjson.ErrSerialization, Code: "SerializationException", Status: client},

	{Match: ecr.ErrRepositoryNotFound, Code: "RepositoryNotFoundException", Status: client},
	{Match: ecr.ErrRepositoryAlreadyExists, Code: "RepositoryAlreadyExistsException", Status: client},
	{Match: ecr.ErrRepositoryNotEmpty, Code: "RepositoryNotEmptyException", Status: client},
	{Match: ecr.ErrRepositoryPolicyNotFound, Code: "RepositoryPolicyNotFoundException", Status: client},
	{Match: ecr.ErrLifecyclePolicyNotFound, Code: "LifecyclePolicyNotFoundException", Status: client},
	{Match: ecr.ErrLifecyclePolicyPreviewNotFound, Code: "LifecyclePolicyPreviewNotFoundException", Status: client},
	{Match: ecr.ErrImageNotFound, Code: "ImageNotFoundException", Status: client},
	{Match: ecr.ErrImageAlreadyExists, Code: "ImageAlreadyExistsException", Status: client},
	{Match: ecr.ErrImageTagAlreadyExists, Code: "ImageTagAlreadyExistsException", Status: client},
	{Match: ecr.ErrImageDigestDoesNotMatch, Code: "ImageDigestDoesNotMatchException", Status: client},
	{Match: ecr.ErrLayersNotFound, Code: "LayersNotFoundException", Status: client},
	{Match: ecr.ErrInvalidTagParameter, Code: "InvalidTagParameterException", Status: client},
	{Match: ecr.ErrTooManyTags, Code: "TooManyTagsException", Status: client},

	{Match: errdefs.ErrAccessDenied, Code: "AccessDeniedException", Status: client},
	{Match: errdefs.ErrUnauthenticated, Code: "AccessDeniedException", Status: client},
	{Match: errdefs.ErrInvalidArgument, Code: "InvalidParameterException", Status: client},
	{Match: errdefs.ErrAlreadyExists, Code: "InvalidParameterException", Status: client},
	{Match: errdefs.ErrFailedPrecondition, Code: "InvalidParameterException", Status: client},
	{Match: errdefs.ErrNotFound, Code: "InvalidParameterException", Status: client},
	{Match: errdefs.ErrLimitExceeded, Code: "LimitExceededException", Status: client},
	{Match: errdefs.ErrThrottled, Code: "ThrottlingException", Status: client},
	// A conflict that survived the handler's retries is transient: a server
	// fault, which the SDKs retry.
	{Match: errdefs.ErrConflict, Code: "ServerException", Status: server},
	{Match: errdefs.ErrUnavailable, Code: "ServerException", Status: server},
}

// serverFaultMessage is what a caller sees of an internal failure.
const serverFaultMessage = "Service encountered an internal error. Try again."

// MapError translates an error returned by an ECR handler into the ECR
// exception the caller sees. An *awsapi.Error passes through unchanged;
// anything unrecognised is a ServerException whose cause is not shown.
func MapError(err error) *awsapi.Error {
	return awsapi.MapByTable(err, errorTable, awsapi.ErrorRule{Code: "ServerException", Status: server}, serverFaultMessage)
}
