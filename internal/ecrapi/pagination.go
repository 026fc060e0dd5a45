package ecrapi

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/ecr"
)

// Page sizes of ECR's list and describe actions: maxResults from 1 to
// 1000; without it, a page holds up to 100 results.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// tokenPrefix versions the token format so that a later change can tell
// old tokens apart.
const tokenPrefix = "1:"

// A nextToken is the sort key of the last item returned, so a page starts
// right after it even when items were added or removed in between.
func encodeToken(key string) *string {
	return aws.String(base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + key)))
}

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), tokenPrefix) {
		return "", ecr.InvalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid pagination token'")
	}
	return strings.TrimPrefix(string(b), tokenPrefix), nil
}

// checkMaxResults validates maxResults (nil: the default page size).
func checkMaxResults(maxResults *int32) (int, error) {
	if maxResults == nil {
		return defaultPageSize, nil
	}
	n := *maxResults
	switch {
	case n < 1:
		return 0, ecr.InvalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value greater than or equal to 1'")
	case n > maxPageSize:
		return 0, ecr.InvalidParameter(fmt.Sprintf("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to %d'", maxPageSize))
	}
	return int(n), nil
}

// paginate returns one page of items, which are sorted by key ascending.
// maxResults (nil: the default) must be within bounds; nextToken must come
// from an earlier page.
func paginate[T any](items []T, key func(T) string, maxResults *int32, nextToken *string) ([]T, *string, error) {
	size, err := checkMaxResults(maxResults)
	if err != nil {
		return nil, nil, err
	}
	start := 0
	if tok := aws.ToString(nextToken); tok != "" {
		after, err := decodeToken(tok)
		if err != nil {
			return nil, nil, err
		}
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > after })
	}
	end := min(start+size, len(items))
	page := items[start:end]
	if end < len(items) {
		return page, encodeToken(key(items[end-1])), nil
	}
	return page, nil, nil
}
