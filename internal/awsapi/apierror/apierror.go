// Package apierror holds the one value every AWS wire protocol renders: an
// exception name, a caller-safe message and an HTTP status. It is a leaf so
// that the protocol packages (awsjson, awsquery) and the router above them
// can share it without an import cycle; package awsapi re-exports it as
// awsapi.Error.
package apierror

import (
	"errors"

	"github.com/berth-dev/berth/internal/errdefs"
)

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

// Rule maps one sentinel (a service's reason or an errdefs kind) to an
// exception of a service.
type Rule struct {
	Match  error
	Code   string
	Status int
}

// MapByTable translates err with the first rule of table whose sentinel it
// carries. An *Error in the chain passes through unchanged; anything
// unmatched is fallback. A server fault (status ≥ 500) shows
// serverMessage, never the cause.
//
// When the chain holds an *errdefs.Error, only its kind and reason decide:
// its internal cause may wrap other kinds (a store's not-found inside an
// internal error) that must not leak into the answer.
func MapByTable(err error, table []Rule, fallback Rule, serverMessage string) *Error {
	var wire *Error
	if errors.As(err, &wire) {
		return wire
	}
	class := err
	var e *errdefs.Error
	if errors.As(err, &e) {
		class = errors.Join(e.Kind, e.Reason)
	}
	for _, r := range table {
		if !errors.Is(class, r.Match) {
			continue
		}
		msg := errdefs.Message(err, r.Code)
		if r.Status >= 500 {
			msg = serverMessage
		}
		return &Error{Code: r.Code, Message: msg, HTTPStatus: r.Status}
	}
	return &Error{Code: fallback.Code, Message: serverMessage, HTTPStatus: fallback.Status}
}
