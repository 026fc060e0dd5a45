// Package apierror holds the one value every AWS wire protocol renders: an
// exception name, a caller-safe message and an HTTP status. It is a leaf so
// that the protocol packages (awsjson, awsquery) and the router above them
// can share it without an import cycle; package awsapi re-exports it as
// awsapi.Error.
package apierror

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
