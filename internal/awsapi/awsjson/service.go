package awsjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	smithyjson "github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Service is one awsJson service (ECS, ECR, CloudWatch Logs, …): its target
// prefix, signing name, operations and error mapping. Fill it in, then do
// not change it once it serves requests.
type Service struct {
	// TargetPrefix is the part of X-Amz-Target before the dot, e.g.
	// "AmazonEC2ContainerServiceV20141113". Empty means Schema's shape name,
	// which is the same thing for every SDK service schema.
	TargetPrefix string
	// SigningName is the service name in the SigV4 credential scope, e.g.
	// "ecs". Requests signed for another service are rejected.
	SigningName string
	// JSONVersion is "1.1" (the default) or "1.0".
	JSONVersion string
	// Schema is the SDK's service schema (schemas.<ServiceShape>).
	Schema     *smithy.ServiceSchema
	Operations []Operation
	// MapError turns a handler error into the service's exception, or
	// returns nil to leave it to the generic mapping by errdefs kind.
	// Protocol-level errors (signature, serialization, unknown operation)
	// never reach it.
	MapError func(error) *apierror.Error
	// Primitives are the service's non-boxed primitive shapes (ECS:
	// Integer, Boolean, Long, Double). Members targeting them are always
	// sent, zero included, as AWS does; see zerofill.go.
	Primitives []smithy.ShapeID

	once        sync.Once
	primitives  map[smithy.ShapeID]bool
	ops         map[string]*Operation
	proto       *smithyjson.Protocol
	contentType string
}

func (s *Service) setup() {
	s.once.Do(func() {
		s.ops = make(map[string]*Operation, len(s.Operations))
		for i := range s.Operations {
			op := &s.Operations[i]
			s.ops[op.Name] = op
		}
		s.contentType = contentType(s.JSONVersion)
		if len(s.Primitives) > 0 {
			s.primitives = make(map[smithy.ShapeID]bool, len(s.Primitives))
			for _, id := range s.Primitives {
				s.primitives[id] = true
			}
		}
		if s.Schema != nil {
			if s.JSONVersion == "1.0" {
				s.proto = smithyjson.New10(s.Schema)
			} else {
				s.proto = smithyjson.New11(s.Schema)
			}
		}
	})
}

func contentType(version string) string {
	if version == "" {
		version = "1.1"
	}
	return "application/x-amz-json-" + version
}

// Prefix returns the X-Amz-Target prefix the service answers to.
func (s *Service) Prefix() string {
	if s.TargetPrefix != "" || s.Schema == nil {
		return s.TargetPrefix
	}
	return s.Schema.ID().Name
}

// Operation returns the operation named name (the part of X-Amz-Target after
// the dot).
func (s *Service) Operation(name string) (*Operation, bool) {
	s.setup()
	op, ok := s.ops[name]
	return op, ok
}

// ErrUnknownOperation marks an X-Amz-Target that names no operation of any
// service; the edge answers UnknownOperationException.
var ErrUnknownOperation = fmt.Errorf("unknown operation: %w", errdefs.ErrInvalidArgument)

// UnknownOperation returns the error for an X-Amz-Target nobody serves.
func UnknownOperation(target string) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Reason: ErrUnknownOperation,
		Cause: fmt.Errorf("no operation for X-Amz-Target %q", target)}
}

// Handle decodes body into op's input, runs the handler and writes the
// response, or the error envelope. It returns the handler's (or the
// encoder's) error for the caller to log; the response is already written.
func (s *Service) Handle(ctx context.Context, w http.ResponseWriter, op *Operation, body []byte) error {
	s.setup()
	if op.invoke == nil {
		err := errdefs.Internal(fmt.Errorf("awsjson: operation %q was not built with Bind", op.Name))
		s.WriteError(w, err)
		return err
	}
	out, err := op.invoke(ctx, body)
	if err != nil {
		s.WriteError(w, err)
		return err
	}
	b, err := s.encode(ctx, op, out)
	if err != nil {
		err = errdefs.Internal(fmt.Errorf("awsjson: encode %s response: %w", op.Name, err))
		s.WriteError(w, err)
		return err
	}
	h := w.Header()
	h.Set("Content-Type", s.contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// encode writes out with the SDK's own awsJson serializer, the only public
// path to its shape serializer: the response is "serialized as a request"
// into a throwaway smithy request and read back. This is an off-label use of
// a client API; the round-trip tests pin it.
func (s *Service) encode(ctx context.Context, op *Operation, out smithy.Serializable) ([]byte, error) {
	if isNil(out) {
		return []byte("{}"), nil
	}
	if s.proto == nil {
		return nil, errors.New("service has no Schema")
	}
	if s.primitives != nil {
		out = zeroFill{inner: out, primitives: s.primitives}
	}
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	if err := s.proto.SerializeRequest(ctx, op.response, out, req); err != nil {
		return nil, err
	}
	stream := req.GetStream()
	if stream == nil {
		return []byte("{}"), nil
	}
	return io.ReadAll(stream)
}

func isNil(v smithy.Serializable) bool {
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

// WriteError writes err in the awsJson error envelope: the status, header
// X-Amzn-ErrorType and body {"__type": code, "message": text}. A nil
// *Service writes the protocol-level mapping only (for requests no service
// could be identified for).
func (s *Service) WriteError(w http.ResponseWriter, err error) {
	var mapErr func(error) *apierror.Error
	ct := contentType("")
	if s != nil {
		s.setup()
		mapErr, ct = s.MapError, s.contentType
	}
	e := ToAPIError(err, mapErr)
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("X-Amzn-ErrorType", e.Code)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status())
	_, _ = w.Write(b)
}

// InternalFailureMessage is AWS's text for an unexpected server failure.
const InternalFailureMessage = apierror.InternalFailureMessage

// ToAPIError maps err to the exception an awsJson service answers with (see
// apierror.Resolve for the order).
func ToAPIError(err error, mapErr func(error) *apierror.Error) *apierror.Error {
	return apierror.Resolve(err, protocolError, mapErr, kindError)
}

func protocolError(err error) *apierror.Error {
	msg := func(fallback string) string { return errdefs.Message(err, fallback) }
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		return &apierror.Error{Code: "MissingAuthenticationTokenException", Message: msg("Missing Authentication Token"), HTTPStatus: http.StatusForbidden}
	case errors.Is(err, sigv4.ErrUnknownAccessKey):
		return &apierror.Error{Code: "UnrecognizedClientException", Message: msg("The security token included in the request is invalid."), HTTPStatus: http.StatusForbidden}
	case errors.Is(err, sigv4.ErrSignatureMismatch), errors.Is(err, sigv4.ErrExpired):
		return &apierror.Error{Code: "InvalidSignatureException", Message: msg(""), HTTPStatus: http.StatusForbidden}
	case errors.Is(err, sigv4.ErrIncompleteSignature):
		return &apierror.Error{Code: "IncompleteSignatureException", Message: msg(""), HTTPStatus: http.StatusForbidden}
	case errors.Is(err, ErrSerialization):
		return &apierror.Error{Code: "SerializationException", Message: msg(""), HTTPStatus: http.StatusBadRequest}
	case errors.Is(err, ErrUnknownOperation):
		return &apierror.Error{Code: "UnknownOperationException", HTTPStatus: http.StatusBadRequest}
	}
	return nil
}

// kindError is the generic mapping for services that leave a kind unmapped.
func kindError(err error) *apierror.Error {
	code, status := "InternalFailure", http.StatusInternalServerError
	switch errdefs.Kind(err) {
	case errdefs.ErrInvalidArgument:
		code, status = "ValidationException", http.StatusBadRequest
	case errdefs.ErrNotFound:
		code, status = "ResourceNotFoundException", http.StatusBadRequest
	case errdefs.ErrAlreadyExists:
		code, status = "ResourceAlreadyExistsException", http.StatusBadRequest
	case errdefs.ErrConflict, errdefs.ErrFailedPrecondition:
		code, status = "ConflictException", http.StatusBadRequest
	case errdefs.ErrUnauthenticated:
		code, status = "UnrecognizedClientException", http.StatusForbidden
	case errdefs.ErrAccessDenied:
		code, status = "AccessDeniedException", http.StatusBadRequest
	case errdefs.ErrThrottled:
		code, status = "ThrottlingException", http.StatusBadRequest
	case errdefs.ErrLimitExceeded:
		code, status = "LimitExceededException", http.StatusBadRequest
	case errdefs.ErrUnavailable:
		code, status = "ServiceUnavailableException", http.StatusServiceUnavailable
	}
	if status >= 500 && code == "InternalFailure" {
		return &apierror.Error{Code: code, Message: InternalFailureMessage, HTTPStatus: status}
	}
	return &apierror.Error{Code: code, Message: errdefs.Message(err, ""), HTTPStatus: status}
}

// SplitTarget splits an X-Amz-Target header into service prefix and
// operation name at the last dot.
func SplitTarget(target string) (prefix, name string, ok bool) {
	i := strings.LastIndexByte(target, '.')
	if i <= 0 || i == len(target)-1 {
		return "", "", false
	}
	return target[:i], target[i+1:], true
}
