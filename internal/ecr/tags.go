package ecr

import (
	"fmt"
	"unicode/utf8"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Tag limits of ECR repositories (the AWS tagging rules).
const (
	MaxTags           = 50
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
)

// ValidateTags checks tags as ECR does: keys of 1 to 128 characters, values
// of up to 256, no key twice (InvalidTagParameterException), and at most 50
// (TooManyTagsException). existing counts tags the resource already has
// that the new ones do not replace.
func ValidateTags(tags []Tag, existing int) error {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch n := utf8.RuneCountInString(t.Key); {
		case n == 0:
			return invalidTag("Invalid parameter at 'tags.key' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
		case n > MaxTagKeyLength:
			return invalidTag(fmt.Sprintf("Invalid parameter at 'tags.key' failed to satisfy constraint: 'Member must have length less than or equal to %d'", MaxTagKeyLength))
		}
		if utf8.RuneCountInString(t.Value) > MaxTagValueLength {
			return invalidTag(fmt.Sprintf("Invalid parameter at 'tags.value' failed to satisfy constraint: 'Member must have length less than or equal to %d'", MaxTagValueLength))
		}
		if seen[t.Key] {
			return invalidTag("Duplicate tag key '" + t.Key + "'")
		}
		seen[t.Key] = true
	}
	if len(tags)+existing > MaxTags {
		return errdefs.WithReason(errdefs.ErrLimitExceeded, ErrTooManyTags,
			fmt.Sprintf("A resource can have no more than %d tags", MaxTags))
	}
	return nil
}

func invalidTag(msg string) error {
	return errdefs.WithReason(errdefs.ErrInvalidArgument, ErrInvalidTagParameter, msg)
}
