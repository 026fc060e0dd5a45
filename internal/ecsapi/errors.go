package ecsapi

import (
	"errors"

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

// errorRule maps one sentinel (an ecs reason or an errdefs kind) to an ECS
// exception.
type errorRule struct {
	match  error
	code   string
	status int
}

// errorTable is the one translation from berth's errors to ECS exceptions.
// Order matters: specific reasons come before the kinds they are carried
// with. Every ECS exception is a 400 client fault except
// AccessDeniedException (403) and ServerException (500), per the model.
var errorTable = []errorRule{
	{awsjson.ErrSerialization, "SerializationException", client},

	{ecs.ErrClusterNotFound, "ClusterNotFoundException", client},
	{ecs.ErrClusterContainsServices, "ClusterContainsServicesException", client},
	{ecs.ErrClusterContainsTasks, "ClusterContainsTasksException", client},
	{ecs.ErrClusterContainsContainerInstances, "ClusterContainsContainerInstancesException", client},
	{ecs.ErrClusterContainsCapacityProvider, "ClusterContainsCapacityProviderException", client},
	{ecs.ErrServiceNotFound, "ServiceNotFoundException", client},
	{ecs.ErrServiceNotActive, "ServiceNotActiveException", client},
	{ecs.ErrPlatformTaskDefinitionIncompatible, "PlatformTaskDefinitionIncompatibilityException", client},
	{ecs.ErrResourceNotFound, "ResourceNotFoundException", client},
	{ecs.ErrResourceInUse, "ResourceInUseException", client},
	{ecs.ErrClient, "ClientException", client},
	{ecs.ErrAttributeLimitExceeded, "AttributeLimitExceededException", client},
	{ecs.ErrTargetNotFound, "TargetNotFoundException", client},

	{errdefs.ErrAccessDenied, "AccessDeniedException", forbidden},
	{errdefs.ErrUnauthenticated, "AccessDeniedException", forbidden},
	{errdefs.ErrInvalidArgument, "InvalidParameterException", client},
	{errdefs.ErrAlreadyExists, "InvalidParameterException", client},
	{errdefs.ErrFailedPrecondition, "InvalidParameterException", client},
	{errdefs.ErrNotFound, "ResourceNotFoundException", client},
	{errdefs.ErrLimitExceeded, "LimitExceededException", client},
	{errdefs.ErrThrottled, "ThrottlingException", client},
	// A conflict that survived the handler's retries is transient: a server
	// fault, which the SDKs retry.
	{errdefs.ErrConflict, "ServerException", server},
	{errdefs.ErrUnavailable, "ServerException", server},
}

// serverFaultMessage is what a caller sees of an internal failure.
const serverFaultMessage = "Service encountered an internal error. Try again."

// MapError translates an error returned by an ECS handler into the ECS
// exception the caller sees. An *awsapi.Error passes through unchanged;
// anything unrecognised is a ServerException whose cause is not shown.
//
// When the chain holds an *errdefs.Error, only its kind and reason decide:
// its internal cause may wrap other kinds (a store's not-found inside an
// internal error) that must not leak into the answer.
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
