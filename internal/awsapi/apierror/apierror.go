// Package apierror holds the one value every AWS wire protocol renders: an
// exception name, a caller-safe message and an HTTP status. It is a leaf so
// that the protocol packages (awsjson, awsquery) and the router above them
// can share it without an import cycle; package awsapi re-exports it as
// awsapi.Error.
package apierror

import "errors"

// Error is an error as it goes on the wire: an exception name, a message and
// an HTTP status. Service edges produce it from errdefs kinds; protocols
// render it in their envelope. A handler may also return one directly.
type Error struct {
	Code       string // e.g. "ClusterNotFoundException"
	Message    string
	HTTPStatus int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status returns e.HTTPStatus, or 400 when it is unset: every AWS exception
// that is not explicitly a server fault is a client fault.
func (e *Error) Status() int {
	if e.HTTPStatus == 0 {
		return 400
	}
	return e.HTTPStatus
}

// InternalFailureMessage is AWS's text for an unexpected server failure; the
// cause is never shown to the caller.
const InternalFailureMessage = "The request processing has failed because of an unknown error, exception or failure."

// Resolve maps err to its wire form, asking in order: the protocol's table
// (authentication and framing errors), an *Error already in the chain, the
// service's table, and the protocol's table by errdefs kind. A nil table is
// skipped; byKind must answer.
func Resolve(err error, protocol, service, byKind func(error) *Error) *Error {
	if protocol != nil {
		if e := protocol(err); e != nil {
			return e
		}
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	if service != nil {
		if e := service(err); e != nil {
			return e
		}
	}
	return byKind(err)
}
