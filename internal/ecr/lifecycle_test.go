package ecr

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

var lcNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// img is an image pushed daysAgo days before lcNow; its digest is its
// name, so that expectations read as the documentation's letters.
func img(name string, daysAgo float64, tags ...string) Image {
	return Image{Digest: name, Tags: tags, PushedAt: lcNow.Add(-time.Duration(daysAgo * float64(24*time.Hour)))}
}

func mustParse(t *testing.T, text string) LifecyclePolicy {
	t.Helper()
	p, err := ParseLifecyclePolicy(text)
	if err != nil {
		t.Fatalf("ParseLifecyclePolicy: %v", err)
	}
	return p
}

func rule(prio int, sel, countType string, count int, extra string) string {
	s := `{"rulePriority":` + itoa(prio) + `,"description":"rule","selection":{"tagStatus":"` + sel + `"` + extra +
		`,"countType":"` + countType + `"`
	if countType == CountSinceImagePushed {
		s += `,"countUnit":"days"`
	}
	return s + `,"countNumber":` + itoa(count) + `},"action":{"type":"expire"}}`
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func policy(rules ...string) string { return `{"rules":[` + strings.Join(rules, ",") + `]}` }

// TestEvaluateDocumentedExamples runs the examples of ECR's user guide
// ("Examples of lifecycle policies") and the evaluation rules it states.
func TestEvaluateDocumentedExamples(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		images []Image
		want   []string // expired, oldest first
	}{
		{
			name:   "image age: tagged prod* older than 14 days",
			policy: policy(rule(1, "tagged", CountSinceImagePushed, 14, `,"tagPatternList":["prod*"]`)),
			images: []Image{img("old-prod", 20, "prod-1"), img("new-prod", 3, "prod-2"), img("old-dev", 30, "dev-1"), img("untagged", 40)},
			want:   []string{"old-prod"},
		},
		{
			name:   "image count: keep one untagged image",
			policy: policy(rule(1, "untagged", CountImagesMoreThan, 1, "")),
			images: []Image{img("u1", 5), img("u2", 4), img("u3", 3), img("t", 10, "v1")},
			want:   []string{"u1", "u2"},
		},
		{
			// Rule 1 marks A; rule 2 sees A, B and C, would mark A and B,
			// but A is marked and B matched rule 1's tags: only A goes.
			name:   "multiple rules, example A",
			policy: policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["prod"]`), rule(2, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["beta"]`)),
			images: []Image{img("A", 10, "beta-1", "prod-1"), img("B", 9, "beta-2", "prod-2"), img("C", 8, "beta-3")},
			want:   []string{"A"},
		},
		{
			name:   "multiple rules, example B",
			policy: policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["prod"]`), rule(2, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["beta"]`)),
			images: []Image{img("A", 10, "beta-1", "prod-1"), img("B", 9, "beta-2", "prod-2"), img("C", 8, "beta-3", "prod-3")},
			want:   []string{"A", "B"},
		},
		{
			// Every prefix of the list must match some tag.
			name:   "multiple tags in one rule",
			policy: policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["alpha","beta"]`)),
			images: []Image{img("A", 10, "alpha-1", "beta-1", "gamma-1"), img("B", 9, "alpha-2"), img("C", 8, "alpha-3", "beta-3"), img("D", 7, "beta-4", "alpha-4")},
			want:   []string{"A", "C"},
		},
		{
			// Rule 1 marks A of the alpha images; rule 2 counts all four
			// (A as if not expired), keeps D and marks B and C.
			name:   "all images",
			policy: policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["alpha"]`), rule(2, "any", CountImagesMoreThan, 1, "")),
			images: []Image{img("A", 4, "alpha-1"), img("B", 3, "beta-1"), img("C", 2), img("D", 1, "alpha-2")},
			want:   []string{"A", "B", "C"},
		},
		{
			// A higher-priority rule that keeps many images protects them
			// from a lower-priority one (the "keep stable" pattern).
			name:   "protected by a higher-priority rule",
			policy: policy(rule(10, "tagged", CountImagesMoreThan, 9999, `,"tagPrefixList":["16."]`), rule(20, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["16"]`)),
			images: []Image{img("s1", 5, "16.1"), img("s2", 4, "16.2"), img("u1", 3, "16_1"), img("u2", 2, "16_2")},
			want:   []string{"u1"},
		},
		{
			name:   "rules apply by priority, not by order in the text",
			policy: policy(rule(5, "any", CountSinceImagePushed, 1, ""), rule(2, "untagged", CountImagesMoreThan, 5, "")),
			images: []Image{img("t-old", 10, "v1"), img("u-old", 10), img("u-new", 0.5)},
			want:   []string{"t-old"},
		},
		{
			name:   "age is strictly more than the days",
			policy: policy(rule(1, "untagged", CountSinceImagePushed, 2, "")),
			images: []Image{img("exactly", 2), img("older", 2.001), img("younger", 1.999)},
			want:   []string{"older"},
		},
		{
			name:   "pattern wildcards in the middle",
			policy: policy(rule(1, "tagged", CountSinceImagePushed, 1, `,"tagPatternList":["*test*1*"]`)),
			images: []Image{img("a", 4, "mytest-1"), img("b", 3, "test1"), img("c", 3, "test-2"), img("d", 0, "xtest1")},
			want:   []string{"a", "b"},
		},
		{
			name:   "equal push times: kept in digest order",
			policy: policy(rule(1, "any", CountImagesMoreThan, 1, "")),
			images: []Image{img("b", 1), img("a", 1), img("c", 1)},
			want:   []string{"c", "b"},
		},
		{
			name:   "nothing to do",
			policy: policy(rule(1, "any", CountImagesMoreThan, 10, "")),
			images: []Image{img("a", 100)},
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			got := ExpiredImages(p, tt.images, lcNow)
			if !slices.Equal(tt.want, got) {
				t.Errorf("expired %q, want %q", got, tt.want)
			}
			// The result does not depend on the order images come in.
			rev := slices.Clone(tt.images)
			slices.Reverse(rev)
			if again := ExpiredImages(p, rev, lcNow); !slices.Equal(again, got) {
				t.Errorf("reversed input gives %v, want %v", again, got)
			}
		})
	}
}

func TestEvaluateReportsRule(t *testing.T) {
	p := mustParse(t, policy(rule(1, "untagged", CountImagesMoreThan, 1, ""), rule(7, "any", CountSinceImagePushed, 30, "")))
	got := EvaluateLifecyclePolicy(p, []Image{img("u1", 2), img("u2", 1), img("t", 40, "v1")}, lcNow)
	want := []LifecycleExpiration{{Image: img("t", 40, "v1"), RulePriority: 7}, {Image: img("u1", 2), RulePriority: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMatchTagPattern(t *testing.T) {
	tests := []struct {
		pattern, tag string
		want         bool
	}{
		{"prod", "prod", true},
		{"prod", "prod1", false},
		{"prod*", "prod", true},
		{"prod*", "prod-1", true},
		{"*prod", "my-prod", true},
		{"*prod", "prod-x", false},
		{"*", "anything", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "a-b-c-c", true},
		{"a*b*c", "a-c-b", false},
		{"ab*ba", "aba", false}, // the prefix and suffix may not overlap
		{"*test*1*2*", "mytest-1-2-3", true},
	}
	for _, tt := range tests {
		if got := MatchTagPattern(tt.pattern, tt.tag); got != tt.want {
			t.Errorf("MatchTagPattern(%q, %q) = %v, want %v", tt.pattern, tt.tag, got, tt.want)
		}
	}
}

func TestParseLifecyclePolicy(t *testing.T) {
	valid := policy(rule(1, "tagged", CountSinceImagePushed, 14, `,"tagPatternList":["prod*"]`), rule(2, "untagged", CountImagesMoreThan, 1, ""))
	p := mustParse(t, valid)
	want := []LifecycleRule{
		{RulePriority: 1, Description: "rule", TagStatus: LifecycleTagged, TagPatternList: []string{"prod*"}, CountType: CountSinceImagePushed, CountUnit: CountUnitDays, CountNumber: 14, Action: LifecycleActionExpire},
		{RulePriority: 2, Description: "rule", TagStatus: LifecycleUntagged, CountType: CountImagesMoreThan, CountNumber: 1, Action: LifecycleActionExpire},
	}
	if diff := cmp.Diff(want, p.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}

	const prefix = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "
	bad := []struct {
		name, text, msg string
	}{
		{"not JSON", `{"rules":`, "Could not map policyString into LifecyclePolicy."},
		{"not an object", `[1]`, "Could not map policyString into LifecyclePolicy."},
		{"no rules", `{}`, `object has missing required properties (["rules"])`},
		{"unknown top-level", `{"rules":[],"x":1}`, `object instance has properties which are not allowed by the schema: (["x"])`},
		{"rules not a list", `{"rules":{}}`, `instance type (object) does not match any allowed primitive type (allowed: ["array"])`},
		{"empty rules", `{"rules":[]}`, "array is too short"},
		{"rule not an object", `{"rules":[1]}`, `instance type (integer) does not match any allowed primitive type (allowed: ["object"])`},
		{"missing rule members", `{"rules":[{"selection":{}}]}`, `object has missing required properties (["action","rulePriority"])`},
		{"unknown rule member", policy(strings.Replace(rule(1, "any", CountImagesMoreThan, 1, ""), `"description"`, `"notes"`, 1)), `not allowed by the schema: (["notes"])`},
		{"priority zero", policy(rule(0, "any", CountImagesMoreThan, 1, "")), "numeric instance is lower than the required minimum (minimum: 1, found: 0)"},
		{"priority not integer", policy(strings.Replace(rule(1, "any", CountImagesMoreThan, 1, ""), `"rulePriority":1`, `"rulePriority":1.5`, 1)), `allowed: ["integer"]`},
		{"count zero", policy(rule(1, "any", CountImagesMoreThan, 0, "")), "minimum: 1, found: 0"},
		{"bad tag status", policy(rule(1, "TAGGED", CountImagesMoreThan, 1, `,"tagPrefixList":["a"]`)), `instance value ("TAGGED") not found in enum (possible values: ["any","tagged","untagged"])`},
		{"bad count type", policy(rule(1, "any", "sinceImagePulled", 1, "")), `instance value ("sinceImagePulled") not found in enum`},
		{"bad count unit", policy(strings.Replace(rule(1, "any", CountSinceImagePushed, 1, ""), `"days"`, `"hours"`, 1)), `instance value ("hours") not found in enum (possible values: ["days"])`},
		{"missing count unit", policy(strings.Replace(rule(1, "any", CountSinceImagePushed, 1, ""), `,"countUnit":"days"`, ``, 1)), "countUnit is required"},
		{"count unit with count", policy(rule(1, "any", CountImagesMoreThan, 1, `,"countUnit":"days"`)), "countUnit cannot be specified"},
		{"tagged without list", policy(rule(1, "tagged", CountImagesMoreThan, 1, "")), "tagPrefixList or tagPatternList is required"},
		{"both lists", policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["a"],"tagPatternList":["a*"]`)), "cannot both be specified"},
		{"list on untagged", policy(rule(1, "untagged", CountImagesMoreThan, 1, `,"tagPrefixList":["a"]`)), "can only be specified when tagStatus is tagged"},
		{"empty prefix list", policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":[]`)), "array is too short"},
		{"empty prefix", policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":[""]`)), "string is too short"},
		{"five wildcards", policy(rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPatternList":["*a*b*c*d*"]`)), "more than 4 wildcards"},
		{"bad action", policy(strings.Replace(rule(1, "any", CountImagesMoreThan, 1, ""), `"expire"`, `"transition"`, 1)), `instance value ("transition") not found in enum (possible values: ["expire"])`},
		{"duplicate priorities", policy(rule(1, "untagged", CountImagesMoreThan, 1, ""), rule(1, "tagged", CountImagesMoreThan, 1, `,"tagPrefixList":["a"]`)), "rule priorities must be unique"},
		{"any not last", policy(rule(1, "any", CountImagesMoreThan, 1, ""), rule(2, "untagged", CountImagesMoreThan, 1, "")), "must have the highest rulePriority"},
		{"two untagged rules", policy(rule(1, "untagged", CountImagesMoreThan, 1, ""), rule(2, "untagged", CountSinceImagePushed, 1, "")), "only one rule may select untagged images"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLifecyclePolicy(tt.text)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err %v, want invalid argument", err)
			}
			msg := errdefs.Message(err, "")
			if !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, "'") || !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q, want %q in ECR's frame", msg, tt.msg)
			}
		})
	}
}

func TestLifecyclePreviewKey(t *testing.T) {
	if got := LifecyclePreviewKey("team/app"); got != "/v1/ecr/lifecyclepreviews/team%2Fapp" {
		t.Errorf("LifecyclePreviewKey = %q", got)
	}
	if strings.HasPrefix(LifecyclePreviewKey("x1"), RepositoriesPrefix) {
		t.Error("preview keys lie under the repositories prefix")
	}
}

// FuzzLifecyclePolicy: the parser never panics; what it accepts is a
// consistent policy that evaluates without panicking, expiring each image
// at most once and only images it was given.
func FuzzLifecyclePolicy(f *testing.F) {
	f.Add(policy(rule(1, "tagged", CountSinceImagePushed, 14, `,"tagPatternList":["prod*"]`), rule(2, "any", CountImagesMoreThan, 1, "")))
	f.Add(policy(rule(1, "untagged", CountImagesMoreThan, 2147483647, "")))
	f.Add(policy(rule(3, "tagged", CountSinceImagePushed, 2147483647, `,"tagPrefixList":["a","b"]`)))
	f.Add(`{"rules":[{"rulePriority":1e3,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1.0},"action":{"type":"expire"}}]}`)
	f.Add(`{"rules":[null]}`)
	f.Add(`{"rules":null}`)
	f.Add(`null`)
	images := []Image{img("a", 100, "prod-1"), img("b", 10), img("c", 1, "a1", "b1"), img("d", 0, "x")}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseLifecyclePolicy(text)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if len(p.Rules) == 0 {
			t.Fatal("accepted a policy without rules")
		}
		for i, r := range p.Rules {
			if i > 0 && p.Rules[i-1].RulePriority >= r.RulePriority {
				t.Fatalf("rules not in strict priority order: %+v", p.Rules)
			}
			if r.RulePriority < 1 || r.CountNumber < 1 || r.Action != LifecycleActionExpire {
				t.Fatalf("accepted rule %+v", r)
			}
			if (r.CountType == CountSinceImagePushed) != (r.CountUnit == CountUnitDays) {
				t.Fatalf("count type and unit disagree: %+v", r)
			}
			if (r.TagStatus == LifecycleTagged) != (len(r.TagPrefixList)+len(r.TagPatternList) > 0) {
				t.Fatalf("tag status and lists disagree: %+v", r)
			}
		}
		seen := map[string]bool{}
		for _, d := range ExpiredImages(p, images, lcNow) {
			if seen[d] || !slices.ContainsFunc(images, func(i Image) bool { return i.Digest == d }) {
				t.Fatalf("expired %q twice or out of nowhere", d)
			}
			seen[d] = true
		}
	})
}
