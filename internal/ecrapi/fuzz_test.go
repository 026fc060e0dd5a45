package ecrapi

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/errdefs"
)

// FuzzPageToken: any nextToken a client sends either starts a page within
// the items or is InvalidParameterException; it never panics.
func FuzzPageToken(f *testing.F) {
	items := []string{"a", "b", "c", "d"}
	f.Add(*encodeToken("b"), int32(2))
	f.Add("", int32(0))
	f.Add("MTo", int32(1001))
	f.Add("!!", int32(1))
	f.Fuzz(func(t *testing.T, token string, maxResults int32) {
		page, next, err := paginate(items, func(s string) string { return s }, aws.Int32(maxResults), aws.String(token))
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if len(page) > int(maxResults) || len(page) > len(items) {
			t.Fatalf("page of %d with maxResults %d", len(page), maxResults)
		}
		if next != nil && len(page) == 0 {
			t.Fatal("an empty page with a next token")
		}
	})
}
