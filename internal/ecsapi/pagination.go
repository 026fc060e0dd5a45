package ecsapi

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/internal/ecs"
)

// pageLimits are a List action's default and maximum page sizes.
type pageLimits struct {
	def, max int32
}

// Page sizes from the ECS API reference.
var (
	listLimits            = pageLimits{def: 100, max: 100}
	accountSettingsLimits = pageLimits{def: 10, max: 10}
)

// tokenPrefix versions the token format so that a later change can tell
// old tokens apart.
const tokenPrefix = "1:"

// A nextToken is the sort key of the last item returned, so a page starts
// right after it even when items were added or removed in between (no item
// is skipped or repeated, unlike an offset).
func encodeToken(key string) *string {
	return aws.String(base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + key)))
}

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), tokenPrefix) {
		return "", ecs.InvalidParameter("Invalid nextToken.")
	}
	return strings.TrimPrefix(string(b), tokenPrefix), nil
}

// paginate returns one page of items, which are sorted by key, ascending
// or, when desc, descending. maxResults (nil: the default) must be within
// lim; nextToken must come from an earlier page.
func paginate[T any](items []T, key func(T) string, desc bool, maxResults *int32, nextToken *string, lim pageLimits) ([]T, *string, error) {
	size := lim.def
	if maxResults != nil {
		size = *maxResults
		if size < 1 || size > lim.max {
			return nil, nil, ecs.InvalidParameter(fmt.Sprintf("maxResults must be between 1 and %d.", lim.max))
		}
	}
	start := 0
	if tok := aws.ToString(nextToken); tok != "" {
		after, err := decodeToken(tok)
		if err != nil {
			return nil, nil, err
		}
		start = sort.Search(len(items), func(i int) bool {
			if desc {
				return key(items[i]) < after
			}
			return key(items[i]) > after
		})
	}
	end := min(start+int(size), len(items))
	page := items[start:end]
	if end < len(items) {
		return page, encodeToken(key(items[end-1])), nil
	}
	return page, nil, nil
}
