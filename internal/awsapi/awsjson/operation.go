// Package awsjson implements the awsJson1_0/1_1 protocols on the server side:
// routing by X-Amz-Target, decoding request bodies, encoding responses with
// the AWS SDK's own schema serializer, and the JSON error envelope.
package awsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

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
}

// Bind makes an Operation from a typed handler. The request body is decoded
// into a new In (the SDK's XxxInput type); the handler's Out (the SDK's
// XxxOutput type) is encoded with the SDK schema serializer, so field names,
// omitted members and epoch-second timestamps are exactly what AWS sends.
func Bind[In any, Out smithy.Serializable](schema *smithy.OperationSchema, fn func(context.Context, *In) (Out, error)) Operation {
	return Operation{
		Name:   schema.ID().Name,
		Schema: schema,
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
	if err := json.Unmarshal(body, in); err != nil {
		return errdefs.WithReason(errdefs.ErrInvalidArgument, ErrSerialization, serializationMessage(err))
	}
	return nil
}

func serializationMessage(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("Unexpected value of type %s for field %s", e.Value, e.Field)
	case *json.SyntaxError:
		return "Malformed JSON: " + e.Error()
	default:
		return "Malformed request body"
	}
}
