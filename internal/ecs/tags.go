package ecs

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Tag limits from the ECS API reference (TagResource).
const (
	MaxTags           = 50
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
	// reservedTagPrefix, in any case, is AWS's: users may neither set nor
	// remove keys or values that start with it.
	reservedTagPrefix = "aws:"
)

func reserved(s string) bool {
	return len(s) >= len(reservedTagPrefix) && strings.EqualFold(s[:len(reservedTagPrefix)], reservedTagPrefix)
}

// ValidateTags checks tags given to CreateCluster, RegisterTaskDefinition or
// TagResource: keys of 1–128 and values of 0–256 characters, no reserved
// aws: prefix, each key at most once, at most 50 tags.
func ValidateTags(tags []types.Tag) error {
	if len(tags) > MaxTags {
		return InvalidParameter(fmt.Sprintf("Too many tags: a resource can have at most %d tags.", MaxTags))
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return InvalidParameter("Tag keys and values must be valid UTF-8.")
		}
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKeyLength {
			return InvalidParameter(fmt.Sprintf("Tag keys must be between 1 and %d characters.", MaxTagKeyLength))
		}
		if utf8.RuneCountInString(v) > MaxTagValueLength {
			return InvalidParameter(fmt.Sprintf("Tag values must be at most %d characters.", MaxTagValueLength))
		}
		if reserved(k) || reserved(v) {
			return InvalidParameter("Tag keys and values cannot start with the reserved prefix 'aws:'.")
		}
		if seen[k] {
			return InvalidParameter("Duplicate tag key: " + k + ". Each tag key must be unique.")
		}
		seen[k] = true
	}
	return nil
}

// MergeTags returns existing with add applied: a key already present takes
// the new value, new keys are appended. The result may hold at most MaxTags
// tags.
func MergeTags(existing, add []types.Tag) ([]types.Tag, error) {
	out := slices.Clone(existing)
	for _, t := range add {
		i := slices.IndexFunc(out, func(e types.Tag) bool { return aws.ToString(e.Key) == aws.ToString(t.Key) })
		if i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, InvalidParameter(fmt.Sprintf("Too many tags: a resource can have at most %d tags.", MaxTags))
	}
	return out, nil
}

// RemoveTags returns existing without the tags whose keys are listed. Keys
// with the reserved aws: prefix cannot be removed; absent keys are ignored,
// as in ECS.
func RemoveTags(existing []types.Tag, keys []string) ([]types.Tag, error) {
	for _, k := range keys {
		if reserved(k) {
			return nil, InvalidParameter("Tag keys with the reserved prefix 'aws:' cannot be removed.")
		}
	}
	out := slices.DeleteFunc(slices.Clone(existing), func(t types.Tag) bool {
		return slices.Contains(keys, aws.ToString(t.Key))
	})
	return out, nil
}
