// Package awsjson implements the awsJson1_0/1_1 protocols on the server side:
// routing by X-Amz-Target, decoding request bodies, encoding responses with
// the AWS SDK's own schema serializer, and the JSON error envelope.
package awsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	smithy "github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Operation binds one action of a service to its handler. Build it with Bind.
type Operation struct {
	// Name is the action name, the part of X-Amz-Target after the dot.
	Name string
	// Schema is the SDK's operation schema; the response is encoded with it.
	Schema *smithy.OperationSchema
	invoke func(ctx context.Context, body []byte) (smithy.Serializable, error)
	// response is Schema turned around: the SDK's serializer only writes
	// an operation's input, so the response shape goes in that slot.
	response *smithy.OperationSchema
}

// Bind makes an Operation from a typed handler. The request body is decoded
// into a new In (the SDK's XxxInput type); the handler's Out (the SDK's
// XxxOutput type) is encoded with the SDK schema serializer, so field names,
// omitted members and epoch-second timestamps are exactly what AWS sends.
func Bind[In any, Out smithy.Serializable](schema *smithy.OperationSchema, fn func(context.Context, *In) (Out, error)) Operation {
	return Operation{
		Name:     schema.ID().Name,
		Schema:   schema,
		response: smithy.NewOperationSchema(schema.Schema, schema.Output, nil),
		invoke: func(ctx context.Context, body []byte) (smithy.Serializable, error) {
			in := new(In)
			if err := decodeBody(body, in); err != nil {
				return nil, err
			}
			return fn(ctx, in)
		},
	}
}

// ErrSerialization marks a request body that is not valid JSON for the
// operation's input shape; the edge answers SerializationException.
var ErrSerialization = fmt.Errorf("serialization: %w", errdefs.ErrInvalidArgument)

func decodeBody(body []byte, in any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil // an empty body is an empty input, as AWS accepts it
	}
	if body[0] != '{' {
		return errdefs.WithReason(errdefs.ErrInvalidArgument, ErrSerialization, "Request body must be a JSON object")
	}
	if err := json.Unmarshal(body, in); err != nil {
		return errdefs.WithReason(errdefs.ErrInvalidArgument, ErrSerialization, serializationMessage(err))
	}
	return nil
}

func serializationMessage(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		if e.Field == "" {
			return fmt.Sprintf("Unexpected value of type %s", e.Value)
		}
		return fmt.Sprintf("Unexpected value of type %s for field %s", e.Value, wireField(e.Field))
	case *json.SyntaxError:
		return "Malformed JSON: " + e.Error()
	default:
		return "Malformed request body"
	}
}

// wireField turns encoding/json's Go field path (ContainerDefinitions.Cpu)
// into the member names the caller sent (containerDefinitions.cpu): SDK
// input types have no json tags, and the awsJson services name members in
// lowerCamel.
func wireField(path string) string {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToLower(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, ".")
}
