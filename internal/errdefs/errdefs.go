// Package errdefs is berth's one internal error vocabulary.
//
// Code below the API edge wraps one of the kinds here with %w (or builds an
// *Error with a user-safe message); each API edge maps kinds to its own
// exception names exactly once, walking the chain with errors.Is/errors.As.
// Nothing ever compares error text.
package errdefs

import "errors"

// The kinds. Each is a sentinel: test with errors.Is.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConflict: the state changed underneath (a compare-and-swap lost) or
	// the request contradicts the current state.
	ErrConflict = errors.New("conflict")
	// ErrFailedPrecondition: the resource is not in a state that allows the
	// operation (a cluster that still has services, say).
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnauthenticated    = errors.New("unauthenticated")
	ErrAccessDenied       = errors.New("access denied")
	ErrThrottled          = errors.New("throttled")
	ErrLimitExceeded      = errors.New("limit exceeded")
	ErrUnavailable        = errors.New("unavailable")
	ErrInternal           = errors.New("internal")
)

// Error carries a kind, a message that is safe to show to the caller, and
// optionally a more specific reason (a sentinel a service edge can map to a
// precise exception name, e.g. ecs.ErrClusterNotFound) and an internal cause.
type Error struct {
	Kind    error  // one of the kinds above
	Reason  error  // optional, more specific sentinel
	Message string // user-safe text
	Cause   error  // optional internal cause; never shown to callers
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

// Unwrap exposes the kind, the reason and the cause to errors.Is/As.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 3)
	for _, err := range []error{e.Kind, e.Reason, e.Cause} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// New returns an *Error of the given kind with a user-safe message.
func New(kind error, message string) error {
	return &Error{Kind: kind, Message: message}
}

// WithReason returns an *Error of the given kind and reason.
func WithReason(kind, reason error, message string) error {
	return &Error{Kind: kind, Reason: reason, Message: message}
}

// InvalidArgument, NotFound, ... are shorthands for New(kind, msg).
func InvalidArgument(message string) error { return New(ErrInvalidArgument, message) }
func NotFound(message string) error        { return New(ErrNotFound, message) }
func AlreadyExists(message string) error   { return New(ErrAlreadyExists, message) }
func Conflict(message string) error        { return New(ErrConflict, message) }

// Internal wraps an unexpected failure; the caller sees only a generic text.
func Internal(cause error) error {
	return &Error{Kind: ErrInternal, Message: "internal error", Cause: cause}
}

// Message returns the outermost user-safe message in err's chain, or
// fallback when the chain carries none.
func Message(err error, fallback string) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return fallback
}

// Kind returns the first kind found in err's chain, or ErrInternal.
func Kind(err error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return ErrInternal
}

var kinds = []error{
	ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrConflict,
	ErrFailedPrecondition, ErrUnauthenticated, ErrAccessDenied, ErrThrottled,
	ErrLimitExceeded, ErrUnavailable, ErrInternal,
}
