// Package awsapi is the protocol-neutral core of berth's AWS-compatible API:
// the request context (request id, authenticated principal), the wire error
// value, and the Router that reads a request, identifies the service and
// protocol, authenticates it with SigV4 and hands it to the service.
// Protocol packages (awsjson, awsquery) know nothing about ECS; service
// packages (ecsapi, …) know nothing about HTTP framing.
package awsapi

import (
	"context"

	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/iam"
)

// Error is an error as it goes on the wire: an exception name, a message and
// an HTTP status. Service edges produce it from errdefs kinds; protocols
// render it in their envelope. It lives in the leaf package apierror so that
// the protocol packages, which this package imports, can use it too.
type Error = apierror.Error

// ErrorRule maps a service's sentinel to one of its exceptions (a row of
// the table MapByTable reads).
type ErrorRule = apierror.Rule

// MapByTable translates a service handler's error through its table; see
// apierror.MapByTable.
func MapByTable(err error, table []ErrorRule, fallback ErrorRule, serverMessage string) *Error {
	return apierror.MapByTable(err, table, fallback, serverMessage)
}

type ctxKey int

const (
	principalKey ctxKey = iota
	requestIDKey
)

// WithPrincipal returns ctx carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p iam.Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the authenticated caller carried by ctx.
func PrincipalFrom(ctx context.Context) (iam.Principal, bool) {
	p, ok := ctx.Value(principalKey).(iam.Principal)
	return p, ok
}

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestIDFrom returns the request id carried by ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}
