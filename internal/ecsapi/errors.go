package ecsapi

import (
	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
)

// HTTP statuses of ECS exceptions (the package speaks no HTTP itself).
const (
	client    = 400
	forbidden = 403
	server    = 500
)

// errorTable is the one translation from berth's errors to ECS exceptions.
// Order matters: specific reasons come before the kinds they are carried
// with. Every ECS exception is a 400 client fault except
// AccessDeniedException (403) and ServerException (500), per the model.
var errorTable = []awsapi.ErrorRule{
	{Match: awsjson.ErrSerialization, Code: "SerializationException", Status: client},

	{Match: ecs.ErrClusterNotFound, Code: "ClusterNotFoundException", Status: client},
	{Match: ecs.ErrClusterContainsServices, Code: "ClusterContainsServicesException", Status: client},
	{Match: ecs.ErrClusterContainsTasks, Code: "ClusterContainsTasksException", Status: client},
	{Match: ecs.ErrClusterContainsContainerInstances, Code: "ClusterContainsContainerInstancesException", Status: client},
	{Match: ecs.ErrClusterContainsCapacityProvider, Code: "ClusterContainsCapacityProviderException", Status: client},
	{Match: ecs.ErrServiceNotFound, Code: "ServiceNotFoundException", Status: client},
	{Match: ecs.ErrServiceNotActive, Code: "ServiceNotActiveException", Status: client},
	{Match: ecs.ErrPlatformTaskDefinitionIncompatible, Code: "PlatformTaskDefinitionIncompatibilityException", Status: client},
	{Match: ecs.ErrResourceNotFound, Code: "ResourceNotFoundException", Status: client},
	{Match: ecs.ErrResourceInUse, Code: "ResourceInUseException", Status: client},
	{Match: ecs.ErrClient, Code: "ClientException", Status: client},
	{Match: ecs.ErrAttributeLimitExceeded, Code: "AttributeLimitExceededException", Status: client},
	{Match: ecs.ErrTargetNotFound, Code: "TargetNotFoundException", Status: client},

	{Match: errdefs.ErrAccessDenied, Code: "AccessDeniedException", Status: forbidden},
	{Match: errdefs.ErrUnauthenticated, Code: "AccessDeniedException", Status: forbidden},
	{Match: errdefs.ErrInvalidArgument, Code: "InvalidParameterException", Status: client},
	{Match: errdefs.ErrAlreadyExists, Code: "InvalidParameterException", Status: client},
	{Match: errdefs.ErrFailedPrecondition, Code: "InvalidParameterException", Status: client},
	{Match: errdefs.ErrNotFound, Code: "ResourceNotFoundException", Status: client},
	{Match: errdefs.ErrLimitExceeded, Code: "LimitExceededException", Status: client},
	{Match: errdefs.ErrThrottled, Code: "ThrottlingException", Status: client},
	// A conflict that survived the handler's retries is transient: a server
	// fault, which the SDKs retry.
	{Match: errdefs.ErrConflict, Code: "ServerException", Status: server},
	{Match: errdefs.ErrUnavailable, Code: "ServerException", Status: server},
}

// serverFaultMessage is what a caller sees of an internal failure.
const serverFaultMessage = "Service encountered an internal error. Try again."

// MapError translates an error returned by an ECS handler into the ECS
// exception the caller sees. An *awsapi.Error passes through unchanged;
// anything unrecognised is a ServerException whose cause is not shown.
func MapError(err error) *awsapi.Error {
	return awsapi.MapByTable(err, errorTable, awsapi.ErrorRule{Code: "ServerException", Status: server}, serverFaultMessage)
}
