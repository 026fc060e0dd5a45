package ecr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Lifecycle policies: ECR's JSON rules that expire images by count or age.
// ParseLifecyclePolicy validates the text as PutLifecyclePolicy does;
// EvaluateLifecyclePolicy applies a policy to a repository's images with
// ECR's semantics (see its comment). Both are pure.

// Lifecycle policy vocabulary.
const (
	LifecycleTagged   = "tagged"
	LifecycleUntagged = "untagged"
	LifecycleAny      = "any"

	CountImagesMoreThan   = "imageCountMoreThan"
	CountSinceImagePushed = "sinceImagePushed"
	CountUnitDays         = "days"

	LifecycleActionExpire = "expire"
)

// MaxLifecycleWildcards is ECR's limit on '*' in one tagPatternList entry.
const MaxLifecycleWildcards = 4

// LifecyclePolicy is a parsed lifecycle policy. Rules are sorted by
// RulePriority, lowest (applied first) first.
type LifecyclePolicy struct {
	Rules []LifecycleRule
}

// LifecycleRule is one rule of a lifecycle policy.
type LifecycleRule struct {
	RulePriority int
	Description  string
	// TagStatus is LifecycleTagged, LifecycleUntagged or LifecycleAny.
	TagStatus      string
	TagPrefixList  []string
	TagPatternList []string
	// CountType is CountImagesMoreThan or CountSinceImagePushed; CountUnit
	// is CountUnitDays for the latter, "" for the former.
	CountType   string
	CountUnit   string
	CountNumber int
	// Action is always LifecycleActionExpire.
	Action string
}

// lifecycleInvalid is PutLifecyclePolicy's InvalidParameterException.
func lifecycleInvalid(detail string) error {
	return InvalidParameter("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: " + detail + "'")
}

// ParseLifecyclePolicy parses and validates a lifecycle policy text as ECR
// does, failing with InvalidParameterException and a message in ECR's
// form. The API checks the text's length (100 to 30720 characters) itself.
func ParseLifecyclePolicy(text string) (LifecyclePolicy, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &probe); err != nil || probe == nil {
		return LifecyclePolicy{}, lifecycleInvalid("Could not map policyString into LifecyclePolicy.")
	}
	top, err := jsonObject([]byte(text), []string{"rules"}, []string{"rules"})
	if err != nil {
		return LifecyclePolicy{}, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(top["rules"], &raws); err != nil {
		return LifecyclePolicy{}, lifecycleInvalid(`instance type (` + jsonType(top["rules"]) + `) does not match any allowed primitive type (allowed: ["array"])`)
	}
	if len(raws) == 0 {
		return LifecyclePolicy{}, lifecycleInvalid("array is too short: must have at least 1 elements but instance has 0 elements")
	}
	p := LifecyclePolicy{Rules: make([]LifecycleRule, 0, len(raws))}
	for _, raw := range raws {
		r, err := parseLifecycleRule(raw)
		if err != nil {
			return LifecyclePolicy{}, err
		}
		p.Rules = append(p.Rules, r)
	}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].RulePriority < p.Rules[j].RulePriority })
	untagged, anyRules := 0, 0
	for i, r := range p.Rules {
		if i > 0 && p.Rules[i-1].RulePriority == r.RulePriority {
			return LifecyclePolicy{}, lifecycleInvalid(fmt.Sprintf("rulePriority %d is used by more than one rule; rule priorities must be unique", r.RulePriority))
		}
		switch r.TagStatus {
		case LifecycleUntagged:
			untagged++
		case LifecycleAny:
			anyRules++
			if i != len(p.Rules)-1 {
				return LifecyclePolicy{}, lifecycleInvalid("a rule with tagStatus 'any' must have the highest rulePriority")
			}
		}
	}
	if untagged > 1 {
		return LifecyclePolicy{}, lifecycleInvalid("only one rule may select untagged images")
	}
	if anyRules > 1 {
		return LifecyclePolicy{}, lifecycleInvalid("only one rule may have tagStatus 'any'")
	}
	return p, nil
}

var (
	ruleProps      = []string{"rulePriority", "description", "selection", "action"}
	ruleRequired   = []string{"action", "rulePriority", "selection"}
	selectionProps = []string{"tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit", "countNumber"}
	selectionReq   = []string{"countNumber", "countType", "tagStatus"}
)

func parseLifecycleRule(raw json.RawMessage) (LifecycleRule, error) {
	m, err := jsonObject(raw, ruleProps, ruleRequired)
	if err != nil {
		return LifecycleRule{}, err
	}
	var r LifecycleRule
	if r.RulePriority, err = jsonInt(m["rulePriority"], 1); err != nil {
		return LifecycleRule{}, err
	}
	if d, ok := m["description"]; ok {
		if r.Description, err = jsonString(d); err != nil {
			return LifecycleRule{}, err
		}
	}
	sel, err := jsonObject(m["selection"], selectionProps, selectionReq)
	if err != nil {
		return LifecycleRule{}, err
	}
	if r.TagStatus, err = jsonEnum(sel["tagStatus"], LifecycleAny, LifecycleTagged, LifecycleUntagged); err != nil {
		return LifecycleRule{}, err
	}
	if r.CountType, err = jsonEnum(sel["countType"], CountImagesMoreThan, CountSinceImagePushed); err != nil {
		return LifecycleRule{}, err
	}
	if u, ok := sel["countUnit"]; ok {
		if r.CountUnit, err = jsonEnum(u, CountUnitDays); err != nil {
			return LifecycleRule{}, err
		}
	}
	if r.CountNumber, err = jsonInt(sel["countNumber"], 1); err != nil {
		return LifecycleRule{}, err
	}
	_, hasPrefixes := sel["tagPrefixList"]
	_, hasPatterns := sel["tagPatternList"]
	if hasPrefixes {
		if r.TagPrefixList, err = jsonStrings(sel["tagPrefixList"]); err != nil {
			return LifecycleRule{}, err
		}
	}
	if hasPatterns {
		if r.TagPatternList, err = jsonStrings(sel["tagPatternList"]); err != nil {
			return LifecycleRule{}, err
		}
		for _, p := range r.TagPatternList {
			if strings.Count(p, "*") > MaxLifecycleWildcards {
				return LifecycleRule{}, lifecycleInvalid(fmt.Sprintf("tagPatternList entry '%s' has more than %d wildcards", p, MaxLifecycleWildcards))
			}
		}
	}
	switch {
	case hasPrefixes && hasPatterns:
		return LifecycleRule{}, lifecycleInvalid("tagPrefixList and tagPatternList cannot both be specified in a rule")
	case r.TagStatus == LifecycleTagged && !hasPrefixes && !hasPatterns:
		return LifecycleRule{}, lifecycleInvalid("tagPrefixList or tagPatternList is required when tagStatus is tagged")
	case r.TagStatus != LifecycleTagged && (hasPrefixes || hasPatterns):
		return LifecycleRule{}, lifecycleInvalid("tagPrefixList and tagPatternList can only be specified when tagStatus is tagged")
	case r.CountType == CountSinceImagePushed && r.CountUnit == "":
		return LifecycleRule{}, lifecycleInvalid("countUnit is required when countType is sinceImagePushed")
	case r.CountType == CountImagesMoreThan && r.CountUnit != "":
		return LifecycleRule{}, lifecycleInvalid("countUnit cannot be specified when countType is imageCountMoreThan")
	}
	act, err := jsonObject(m["action"], []string{"type"}, []string{"type"})
	if err != nil {
		return LifecycleRule{}, err
	}
	if r.Action, err = jsonEnum(act["type"], LifecycleActionExpire); err != nil {
		return LifecycleRule{}, err
	}
	return r, nil
}

// LifecycleExpiration is one image a policy expires, with the rule that
// expires it.
type LifecycleExpiration struct {
	Image        Image
	RulePriority int
}

// EvaluateLifecyclePolicy returns the images p expires at now, oldest
// first, with ECR's semantics:
//   - rules apply in rulePriority order, lowest first;
//   - a rule selects images by tag status and, for tagged, by every entry of
//     tagPrefixList (a prefix of some tag) or tagPatternList (matching some
//     tag, '*' a wildcard);
//   - imageCountMoreThan N keeps the N most recently pushed selected images
//     and expires the rest; sinceImagePushed N days expires selected images
//     pushed more than N days before now;
//   - an image selected by a rule can be expired by no lower-priority rule
//     (it is expired by exactly one or zero rules), yet lower-priority rules
//     still count it as if it were not expired.
func EvaluateLifecyclePolicy(p LifecyclePolicy, images []Image, now time.Time) []LifecycleExpiration {
	// Newest first; equal push times in digest order, so that the result
	// does not depend on the order of images.
	order := slices.Clone(images)
	slices.SortFunc(order, func(a, b Image) int {
		if c := b.PushedAt.Compare(a.PushedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	rules := slices.Clone(p.Rules)
	slices.SortStableFunc(rules, func(a, b LifecycleRule) int { return a.RulePriority - b.RulePriority })
	claimed := make(map[string]bool)  // selected by a higher-priority rule
	expiredBy := make(map[string]int) // digest → rule priority
	for _, r := range rules {
		var selected []Image
		for _, img := range order {
			if r.selects(img) {
				selected = append(selected, img)
			}
		}
		var candidates []Image
		switch r.CountType {
		case CountImagesMoreThan:
			if len(selected) > r.CountNumber {
				candidates = selected[r.CountNumber:]
			}
		case CountSinceImagePushed:
			age := time.Duration(min(r.CountNumber, math.MaxInt64/int(24*time.Hour))) * 24 * time.Hour
			for _, img := range selected {
				if now.Sub(img.PushedAt) > age {
					candidates = append(candidates, img)
				}
			}
		}
		for _, img := range candidates {
			if !claimed[img.Digest] {
				if _, done := expiredBy[img.Digest]; !done {
					expiredBy[img.Digest] = r.RulePriority
				}
			}
		}
		for _, img := range selected {
			claimed[img.Digest] = true
		}
	}
	var out []LifecycleExpiration
	for i := len(order) - 1; i >= 0; i-- {
		if prio, ok := expiredBy[order[i].Digest]; ok {
			out = append(out, LifecycleExpiration{Image: order[i], RulePriority: prio})
			delete(expiredBy, order[i].Digest) // an image listed twice goes once
		}
	}
	return out
}

// ExpiredImages returns the digests of the images p expires at now, oldest
// first (see EvaluateLifecyclePolicy).
func ExpiredImages(p LifecyclePolicy, images []Image, now time.Time) []string {
	exp := EvaluateLifecyclePolicy(p, images, now)
	out := make([]string, len(exp))
	for i, e := range exp {
		out[i] = e.Image.Digest
	}
	return out
}

// selects reports whether the rule's tag selection matches img.
func (r LifecycleRule) selects(img Image) bool {
	switch r.TagStatus {
	case LifecycleAny:
		return true
	case LifecycleUntagged:
		return len(img.Tags) == 0
	case LifecycleTagged:
		if len(img.Tags) == 0 {
			return false
		}
		for _, p := range r.TagPrefixList {
			if !slices.ContainsFunc(img.Tags, func(t string) bool { return strings.HasPrefix(t, p) }) {
				return false
			}
		}
		for _, p := range r.TagPatternList {
			if !slices.ContainsFunc(img.Tags, func(t string) bool { return MatchTagPattern(p, t) }) {
				return false
			}
		}
		return true
	}
	return false
}

// MatchTagPattern reports whether tag matches pattern, where '*' matches
// any run of characters (none included) and everything else itself.
func MatchTagPattern(pattern, tag string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == tag
	}
	if !strings.HasPrefix(tag, parts[0]) {
		return false
	}
	tag = tag[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(tag, mid)
		if i < 0 {
			return false
		}
		tag = tag[i+len(mid):]
	}
	return len(tag) >= len(last) && strings.HasSuffix(tag, last)
}

// JSON helpers that report problems in the words of ECR's schema
// validator.

// jsonObject decodes raw as an object with only the allowed members and
// every required one.
func jsonObject(raw []byte, allowed, required []string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, lifecycleInvalid(`instance type (` + jsonType(raw) + `) does not match any allowed primitive type (allowed: ["object"])`)
	}
	var extra, missing []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, lifecycleInvalid("object has missing required properties ([" + quoteList(missing) + "])")
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return nil, lifecycleInvalid("object instance has properties which are not allowed by the schema: ([" + quoteList(extra) + "])")
	}
	return m, nil
}

func jsonInt(raw json.RawMessage, minimum int) (int, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, lifecycleInvalid(`instance type (` + jsonType(raw) + `) does not match any allowed primitive type (allowed: ["integer"])`)
	}
	v, err := strconv.ParseInt(n.String(), 10, 32)
	if err != nil {
		if f, ferr := n.Float64(); ferr == nil && f == math.Trunc(f) && math.Abs(f) < 1<<31 {
			v = int64(f) // 3.0 is an integer to a JSON schema
		} else {
			return 0, lifecycleInvalid(`instance type (number) does not match any allowed primitive type (allowed: ["integer"])`)
		}
	}
	if v < int64(minimum) {
		return 0, lifecycleInvalid(fmt.Sprintf("numeric instance is lower than the required minimum (minimum: %d, found: %d)", minimum, v))
	}
	return int(v), nil
}

func jsonString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", lifecycleInvalid(`instance type (` + jsonType(raw) + `) does not match any allowed primitive type (allowed: ["string"])`)
	}
	return s, nil
}

func jsonEnum(raw json.RawMessage, values ...string) (string, error) {
	s, err := jsonString(raw)
	if err != nil {
		return "", err
	}
	if !slices.Contains(values, s) {
		sorted := slices.Clone(values)
		slices.Sort(sorted)
		return "", lifecycleInvalid(fmt.Sprintf(`instance value ("%s") not found in enum (possible values: %s)`, s, "["+quoteList(sorted)+"]"))
	}
	return s, nil
}

func jsonStrings(raw json.RawMessage) ([]string, error) {
	var ss []string
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, lifecycleInvalid(`instance type (` + jsonType(raw) + `) does not match any allowed primitive type (allowed: ["array"]) or an item is not a string`)
	}
	if len(ss) == 0 {
		return nil, lifecycleInvalid("array is too short: must have at least 1 elements but instance has 0 elements")
	}
	for _, s := range ss {
		if s == "" {
			return nil, lifecycleInvalid("string is too short (length: 0, required minimum: 1)")
		}
	}
	return ss, nil
}

// jsonType names the JSON type of raw as a schema validator does.
func jsonType(raw []byte) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "null"
	}
	switch t[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	if bytes.ContainsAny(t, ".eE") {
		return "number"
	}
	return "integer"
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		b, _ := json.Marshal(s)
		q[i] = string(b)
	}
	return strings.Join(q, ",")
}

// LifecyclePreviewsPrefix holds the policy text of each repository's
// lifecycle policy preview (StartLifecyclePolicyPreview), one
// LifecyclePreview per repository, keyed like RepositoryKey.
const LifecyclePreviewsPrefix = keyRoot + "lifecyclepreviews/"

// LifecyclePreviewKey is the key of a repository's preview.
func LifecyclePreviewKey(name string) string {
	return LifecyclePreviewsPrefix + strings.TrimPrefix(RepositoryKey(name), RepositoriesPrefix)
}

// LifecyclePreview is a started lifecycle policy preview: the policy to
// evaluate against the repository's images when the preview is read.
type LifecyclePreview struct {
	PolicyText string    `json:"policyText"`
	StartedAt  time.Time `json:"startedAt"`
}
