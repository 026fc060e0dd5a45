package ecs

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/berth-dev/berth/internal/errdefs"
)

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func manyTags(n int) []types.Tag {
	var out []types.Tag
	for i := range n {
		out = append(out, tag("k"+strings.Repeat("x", i), "v"))
	}
	return out
}

var ignoreSerde = cmpopts.IgnoreUnexported(types.Tag{})

func TestValidateTags(t *testing.T) {
	tests := []struct {
		name string
		tags []types.Tag
		ok   bool
	}{
		{"none", nil, true},
		{"simple", []types.Tag{tag("env", "prod"), tag("team", "")}, true},
		{"max", manyTags(MaxTags), true},
		{"too many", manyTags(MaxTags + 1), false},
		{"empty key", []types.Tag{tag("", "v")}, false},
		{"nil key", []types.Tag{{Value: aws.String("v")}}, false},
		{"long key", []types.Tag{tag(strings.Repeat("k", 129), "v")}, false},
		{"key 128 runes", []types.Tag{tag(strings.Repeat("é", 128), "v")}, true},
		{"long value", []types.Tag{tag("k", strings.Repeat("v", 257))}, false},
		{"value 256", []types.Tag{tag("k", strings.Repeat("v", 256))}, true},
		{"aws key", []types.Tag{tag("aws:x", "v")}, false},
		{"AWS key", []types.Tag{tag("AwS:x", "v")}, false},
		{"aws value", []types.Tag{tag("k", "aws:v")}, false},
		{"awsx is fine", []types.Tag{tag("awsx", "v")}, true},
		{"duplicate", []types.Tag{tag("k", "1"), tag("k", "2")}, false},
	}
	for _, tt := range tests {
		err := ValidateTags(tt.tags)
		if (err == nil) != tt.ok {
			t.Errorf("%s: ValidateTags = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, ErrClient)) {
			t.Errorf("%s: %v is not an InvalidParameter error", tt.name, err)
		}
	}
}

func TestMergeAndRemoveTags(t *testing.T) {
	got, err := MergeTags([]types.Tag{tag("a", "1"), tag("b", "2")}, []types.Tag{tag("b", "3"), tag("c", "4")})
	if err != nil {
		t.Fatal(err)
	}
	want := []types.Tag{tag("a", "1"), tag("b", "3"), tag("c", "4")}
	if diff := cmp.Diff(want, got, ignoreSerde); diff != "" {
		t.Errorf("MergeTags (-want +got):\n%s", diff)
	}
	if _, err := MergeTags(manyTags(MaxTags), []types.Tag{tag("new", "v")}); err == nil {
		t.Error("MergeTags beyond the limit succeeded")
	}
	got, err = RemoveTags(want, []string{"b", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]types.Tag{tag("a", "1"), tag("c", "4")}, got, ignoreSerde); diff != "" {
		t.Errorf("RemoveTags (-want +got):\n%s", diff)
	}
	if len(want) != 3 {
		t.Error("RemoveTags modified its input")
	}
	if _, err := RemoveTags(want, []string{"aws:cloudformation:stack-name"}); err == nil {
		t.Error("RemoveTags of a reserved key succeeded")
	}
}
