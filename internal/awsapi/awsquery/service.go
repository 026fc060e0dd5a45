package awsquery

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"

	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Handler serves one action. Its result is XML-encoded (encoding/xml) as
// the content of <ActionResult>; a nil result gives an empty element, which
// SDK clients accept both for actions with an (empty) output and for
// actions without one. Lists in the result must be wrapped the awsQuery
// way, e.g. `xml:"Tags>member"`.
type Handler func(ctx context.Context, p Params) (any, error)

// Service is one awsQuery service (IAM, STS, ELBv2). Fill it in, then do
// not change it once it serves requests.
type Service struct {
	// SigningName is the service in the SigV4 credential scope ("sts");
	// the router routes form requests by it.
	SigningName string
	// Version is the API version the service implements ("2011-06-15");
	// a request naming another version finds no operation, as on AWS.
	Version string
	// XMLNamespace goes on the response's root element, e.g.
	// "https://sts.amazonaws.com/doc/2011-06-15/".
	XMLNamespace string
	Actions      map[string]Handler
	// MapError turns a handler error into the service's error code, or
	// returns nil to leave it to the generic mapping by errdefs kind.
	// Protocol errors (signature, unknown action, malformed form) never
	// reach it.
	MapError func(error) *apierror.Error
}

// ErrInvalidAction marks an Action (or Version) the service does not have;
// the edge answers InvalidAction.
var ErrInvalidAction = fmt.Errorf("invalid action: %w", errdefs.ErrInvalidArgument)

// InvalidAction returns AWS's error for an unknown action or version.
func InvalidAction(action, version string) error {
	if version == "" {
		version = "NO_VERSION_SPECIFIED"
	}
	return errdefs.WithReason(errdefs.ErrInvalidArgument, ErrInvalidAction,
		fmt.Sprintf("Could not find operation %s for version %s", action, version))
}

// Resolve returns the handler for p's Action and Version.
func (s *Service) Resolve(p Params) (Handler, error) {
	h, ok := s.Actions[p.Action()]
	if !ok || h == nil || (s.Version != "" && p.Version() != s.Version) {
		return nil, InvalidAction(p.Action(), p.Version())
	}
	return h, nil
}

// Handle runs the action p names and writes its XML response, or the error
// envelope. It returns the handler's (or the encoder's) error for the
// caller to log; the response is already written.
func (s *Service) Handle(ctx context.Context, w http.ResponseWriter, requestID string, p Params) error {
	h, err := s.Resolve(p)
	if err != nil {
		s.WriteError(w, requestID, err)
		return err
	}
	result, err := h(ctx, p)
	if err != nil {
		s.WriteError(w, requestID, err)
		return err
	}
	b, err := encodeResponse(p.Action(), s.XMLNamespace, result, requestID)
	if err != nil {
		err = errdefs.Internal(fmt.Errorf("awsquery: encode %s response: %w", p.Action(), err))
		s.WriteError(w, requestID, err)
		return err
	}
	writeXML(w, http.StatusOK, b)
	return nil
}

func writeXML(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

func encodeResponse(action, ns string, result any, requestID string) ([]byte, error) {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	root := xml.StartElement{Name: xml.Name{Space: ns, Local: action + "Response"}}
	if err := enc.EncodeToken(root); err != nil {
		return nil, err
	}
	resultStart := xml.StartElement{Name: xml.Name{Local: action + "Result"}}
	if isNil(result) {
		if err := enc.EncodeToken(resultStart); err != nil {
			return nil, err
		}
		if err := enc.EncodeToken(resultStart.End()); err != nil {
			return nil, err
		}
	} else if err := enc.EncodeElement(result, resultStart); err != nil {
		return nil, err
	}
	if err := enc.EncodeElement(responseMetadata{requestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return nil, err
	}
	if err := enc.EncodeToken(root.End()); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

type errorResponse struct {
	XMLName xml.Name
	Error   struct {
		Type    string
		Code    string
		Message string
	}
	RequestID string `xml:"RequestId"`
}

// WriteError writes err in the awsQuery error envelope:
// <ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error><RequestId/></ErrorResponse>.
// A nil *Service writes the protocol-level mapping only, without a
// namespace (for requests no service could be identified for).
func (s *Service) WriteError(w http.ResponseWriter, requestID string, err error) {
	var (
		mapErr func(error) *apierror.Error
		ns     string
	)
	if s != nil {
		mapErr, ns = s.MapError, s.XMLNamespace
	}
	e := ToAPIError(err, mapErr)
	var r errorResponse
	r.XMLName = xml.Name{Space: ns, Local: "ErrorResponse"}
	r.Error.Type = "Sender"
	if e.Status() >= 500 {
		r.Error.Type = "Receiver"
	}
	r.Error.Code, r.Error.Message, r.RequestID = e.Code, e.Message, requestID
	b, _ := xml.Marshal(r) // strings only: cannot fail
	writeXML(w, e.Status(), b)
}

// InternalFailureMessage is AWS's text for an unexpected server failure.
const InternalFailureMessage = apierror.InternalFailureMessage

// ToAPIError maps err to the error code an awsQuery service answers with (see
// apierror.Resolve for the order).
func ToAPIError(err error, mapErr func(error) *apierror.Error) *apierror.Error {
	return apierror.Resolve(err, protocolError, mapErr, kindError)
}

func protocolError(err error) *apierror.Error {
	msg := func(fallback string) string { return errdefs.Message(err, fallback) }
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		// The query services word this one differently from the JSON ones.
		return &apierror.Error{Code: "MissingAuthenticationToken", Message: "Request is missing Authentication Token", HTTPStatus: http.StatusForbidden}
	case errors.Is(err, sigv4.ErrUnknownAccessKey):
		return &apierror.Error{Code: "InvalidClientTokenId", Message: msg("The security token included in the request is invalid."), HTTPStatus: http.StatusForbidden}
	case errors.Is(err, sigv4.ErrSignatureMismatch), errors.Is(err, sigv4.ErrExpired):
		return &apierror.Error{Code: "SignatureDoesNotMatch", Message: msg(""), HTTPStatus: http.StatusForbidden}
	case errors.Is(err, sigv4.ErrIncompleteSignature):
		return &apierror.Error{Code: "IncompleteSignature", Message: msg(""), HTTPStatus: http.StatusForbidden}
	case errors.Is(err, ErrInvalidAction):
		return &apierror.Error{Code: "InvalidAction", Message: msg(""), HTTPStatus: http.StatusBadRequest}
	case errors.Is(err, ErrMalformedQuery):
		return &apierror.Error{Code: "MalformedQueryString", Message: msg(""), HTTPStatus: http.StatusBadRequest}
	}
	return nil
}

// kindError is the generic mapping for services that leave a kind unmapped.
func kindError(err error) *apierror.Error {
	code, status := "InternalFailure", http.StatusInternalServerError
	switch errdefs.Kind(err) {
	case errdefs.ErrInvalidArgument, errdefs.ErrFailedPrecondition:
		code, status = "ValidationError", http.StatusBadRequest
	case errdefs.ErrNotFound:
		code, status = "ResourceNotFound", http.StatusBadRequest
	case errdefs.ErrAlreadyExists:
		code, status = "AlreadyExists", http.StatusBadRequest
	case errdefs.ErrConflict:
		code, status = "ConcurrentModification", http.StatusConflict
	case errdefs.ErrUnauthenticated:
		code, status = "InvalidClientTokenId", http.StatusForbidden
	case errdefs.ErrAccessDenied:
		code, status = "AccessDenied", http.StatusForbidden
	case errdefs.ErrThrottled:
		code, status = "Throttling", http.StatusBadRequest
	case errdefs.ErrLimitExceeded:
		code, status = "LimitExceeded", http.StatusBadRequest
	case errdefs.ErrUnavailable:
		code, status = "ServiceUnavailable", http.StatusServiceUnavailable
	}
	if code == "InternalFailure" {
		return &apierror.Error{Code: code, Message: InternalFailureMessage, HTTPStatus: status}
	}
	return &apierror.Error{Code: code, Message: errdefs.Message(err, ""), HTTPStatus: status}
}
