package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestMapError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   string
		status int
		msg    string
	}{
		{"cluster not found", errdefs.WithReason(errdefs.ErrNotFound, ecs.ErrClusterNotFound, "Cluster not found."),
			"ClusterNotFoundException", 400, "Cluster not found."},
		{"wrapped", fmt.Errorf("delete: %w", errdefs.WithReason(errdefs.ErrFailedPrecondition, ecs.ErrClusterContainsTasks, "busy")),
			"ClusterContainsTasksException", 400, "busy"},
		{"services", errdefs.WithReason(errdefs.ErrFailedPrecondition, ecs.ErrClusterContainsServices, "m"), "ClusterContainsServicesException", 400, "m"},
		{"instances", errdefs.WithReason(errdefs.ErrFailedPrecondition, ecs.ErrClusterContainsContainerInstances, "m"), "ClusterContainsContainerInstancesException", 400, "m"},
		{"capacity provider", errdefs.WithReason(errdefs.ErrFailedPrecondition, ecs.ErrClusterContainsCapacityProvider, "m"), "ClusterContainsCapacityProviderException", 400, "m"},
		{"service not found", errdefs.WithReason(errdefs.ErrNotFound, ecs.ErrServiceNotFound, "Service not found."), "ServiceNotFoundException", 400, "Service not found."},
		{"service not active", errdefs.WithReason(errdefs.ErrFailedPrecondition, ecs.ErrServiceNotActive, "Service was not ACTIVE."), "ServiceNotActiveException", 400, "Service was not ACTIVE."},
		{"platform", errdefs.WithReason(errdefs.ErrInvalidArgument, ecs.ErrPlatformTaskDefinitionIncompatible, "m"), "PlatformTaskDefinitionIncompatibilityException", 400, "m"},
		{"resource not found", errdefs.WithReason(errdefs.ErrNotFound, ecs.ErrResourceNotFound, "m"), "ResourceNotFoundException", 400, "m"},
		{"resource in use", errdefs.WithReason(errdefs.ErrFailedPrecondition, ecs.ErrResourceInUse, "m"), "ResourceInUseException", 400, "m"},
		{"client", ecs.ClientError("Unable to describe task definition."), "ClientException", 400, "Unable to describe task definition."},
		{"invalid parameter", ecs.InvalidParameter("bad"), "InvalidParameterException", 400, "bad"},
		{"bare kind", fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), "InvalidParameterException", 400, "InvalidParameterException"},
		{"already exists", errdefs.AlreadyExists("dup"), "InvalidParameterException", 400, "dup"},
		{"access denied", errdefs.New(errdefs.ErrAccessDenied, "User: x is not authorized"), "AccessDeniedException", 403, "User: x is not authorized"},
		{"limit", errdefs.New(errdefs.ErrLimitExceeded, "too many"), "LimitExceededException", 400, "too many"},
		{"throttled", errdefs.New(errdefs.ErrThrottled, "slow down"), "ThrottlingException", 400, "slow down"},
		{"conflict", errdefs.Conflict("lost the race"), "ServerException", 500, serverFaultMessage},
		{"unavailable", errdefs.New(errdefs.ErrUnavailable, "etcd down"), "ServerException", 500, serverFaultMessage},
		{"internal hides its cause", errdefs.Internal(errdefs.NotFound("key /v1/ecs/x not found")), "ServerException", 500, serverFaultMessage},
		{"plain error", errors.New("boom"), "ServerException", 500, serverFaultMessage},
		{"context", context.Canceled, "ServerException", 500, serverFaultMessage},
		{"wire error passes", &awsapi.Error{Code: "X", Message: "y", HTTPStatus: 418}, "X", 418, "y"},
	}
	for _, tt := range tests {
		got := MapError(tt.err)
		if got.Code != tt.code || got.HTTPStatus != tt.status || got.Message != tt.msg {
			t.Errorf("%s: MapError = %+v, want %s %d %q", tt.name, got, tt.code, tt.status, tt.msg)
		}
	}
}

// TestEveryActionAuthorizesFirst sends every action, with an empty body,
// as a principal the authorizer denies: each must answer
// AccessDeniedException before it looks at its input.
func TestEveryActionAuthorizesFirst(t *testing.T) {
	e := newEnv(t)
	svc := New(testConfig(e.store, e.clock))
	ctx := asPrincipal("arn:aws:iam::123456789012:user/mallory")
	if len(svc.Operations) != 39 {
		t.Errorf("%d operations, want 39", len(svc.Operations))
	}
	for i := range svc.Operations {
		op := &svc.Operations[i]
		rec := httptest.NewRecorder()
		err := svc.Handle(ctx, rec, op, []byte(`{}`))
		if rec.Code != http.StatusForbidden || code(err) != "AccessDeniedException" {
			t.Errorf("%s: status %d, error %v", op.Name, rec.Code, err)
		}
	}
}
