// Package ecs is berth's ECS domain: the records it stores for clusters, task
// definitions, account settings and tags, their invariants and validation,
// with ECS's defaults and messages. It does no I/O. Records reuse the AWS
// SDK's data types (github.com/aws/aws-sdk-go-v2/service/ecs/types) where the
// wire model is the domain model (container definitions, say), so nothing is
// typed twice.
package ecs

import (
	"errors"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Reasons: sentinels carried in errdefs.Error.Reason so that the ECS API edge
// can name the precise exception. Each is used with the kind noted.
var (
	ErrClusterNotFound                    = errors.New("cluster not found")                        // with errdefs.ErrNotFound
	ErrClusterContainsServices            = errors.New("cluster contains services")                // with errdefs.ErrFailedPrecondition
	ErrClusterContainsTasks               = errors.New("cluster contains tasks")                   // with errdefs.ErrFailedPrecondition
	ErrClusterContainsContainerInstances  = errors.New("cluster contains container instances")     // with errdefs.ErrFailedPrecondition
	ErrClusterContainsCapacityProvider    = errors.New("cluster contains capacity provider")       // with errdefs.ErrFailedPrecondition
	ErrResourceNotFound                   = errors.New("resource not found")                       // with errdefs.ErrNotFound
	ErrResourceInUse                      = errors.New("resource in use")                          // with errdefs.ErrFailedPrecondition
	ErrServiceNotFound                    = errors.New("service not found")                        // with errdefs.ErrNotFound
	ErrServiceNotActive                   = errors.New("service not active")                       // with errdefs.ErrFailedPrecondition
	ErrPlatformTaskDefinitionIncompatible = errors.New("platform task definition incompatibility") // with errdefs.ErrInvalidArgument
	// ErrClient marks a request error that ECS reports as ClientException
	// rather than InvalidParameterException (most task-definition
	// validation, unknown task definitions).
	ErrClient = errors.New("client exception")
)

// ClientError returns an invalid-argument error that ECS reports as
// ClientException.
func ClientError(message string) error {
	return errdefs.WithReason(errdefs.ErrInvalidArgument, ErrClient, message)
}

// InvalidParameter returns an invalid-argument error that ECS reports as
// InvalidParameterException.
func InvalidParameter(message string) error {
	return errdefs.InvalidArgument(message)
}
