package ecr

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

// Repository policies: SetRepositoryPolicy stores an IAM resource policy
// for a repository. It is validated here as a policy document; evaluating
// it on access arrives with IAM policy evaluation.

// MaxRepositoryPolicyLength is the longest policy text ECR accepts.
const MaxRepositoryPolicyLength = 10240

// invalidRepositoryPolicy is ECR's one answer to any malformed policy.
func invalidRepositoryPolicy() error {
	return InvalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
}

var (
	policyVersions = []string{"2012-10-17", "2008-10-17"}
	policyTopKeys  = []string{"Version", "Id", "Statement"}
	statementKeys  = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
	principalKinds = []string{"AWS", "Service", "Federated", "CanonicalUser"}
	actionPattern  = regexp.MustCompile(`^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$`)
)

// ValidateRepositoryPolicy checks that text is a resource policy document:
// a JSON object with an optional Version ("2012-10-17" or "2008-10-17"), an
// optional Id and a Statement (one object or a non-empty list), each
// statement with an Effect of Allow or Deny, exactly one of Principal and
// NotPrincipal ("*" or a map of AWS/Service/Federated/CanonicalUser to one
// or more strings), exactly one of Action and NotAction (service:action
// patterns or "*"), optional Resource/NotResource strings and an optional
// Condition map. Anything else is ECR's InvalidParameterException.
func ValidateRepositoryPolicy(text string) error {
	if text == "" || len(text) > MaxRepositoryPolicyLength {
		return invalidRepositoryPolicy()
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &doc); err != nil || doc == nil {
		return invalidRepositoryPolicy()
	}
	if !onlyKeys(doc, policyTopKeys) {
		return invalidRepositoryPolicy()
	}
	if v, ok := doc["Version"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil || !slices.Contains(policyVersions, s) {
			return invalidRepositoryPolicy()
		}
	}
	if v, ok := doc["Id"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return invalidRepositoryPolicy()
		}
	}
	raw, ok := doc["Statement"]
	if !ok {
		return invalidRepositoryPolicy()
	}
	var stmts []json.RawMessage
	if json.Unmarshal(raw, &stmts) != nil {
		stmts = []json.RawMessage{raw} // a single statement object
	}
	if len(stmts) == 0 {
		return invalidRepositoryPolicy()
	}
	sids := map[string]bool{}
	for _, s := range stmts {
		if !validStatement(s, sids) {
			return invalidRepositoryPolicy()
		}
	}
	return nil
}

func validStatement(raw json.RawMessage, sids map[string]bool) bool {
	var st map[string]json.RawMessage
	if json.Unmarshal(raw, &st) != nil || st == nil || !onlyKeys(st, statementKeys) {
		return false
	}
	if v, ok := st["Sid"]; ok {
		var sid string
		if json.Unmarshal(v, &sid) != nil || sids[sid] && sid != "" {
			return false // statement ids must be unique
		}
		sids[sid] = true
	}
	var effect string
	if json.Unmarshal(st["Effect"], &effect) != nil || effect != "Allow" && effect != "Deny" {
		return false
	}
	if !exactlyOne(st, "Principal", "NotPrincipal") || !validPrincipal(st["Principal"]) && !validPrincipal(st["NotPrincipal"]) {
		return false
	}
	if !exactlyOne(st, "Action", "NotAction") {
		return false
	}
	actions, ok := stringOrList(firstOf(st, "Action", "NotAction"))
	if !ok {
		return false
	}
	for _, a := range actions {
		if !actionPattern.MatchString(a) {
			return false
		}
	}
	if _, has := st["Resource"]; has && hasKey(st, "NotResource") {
		return false
	}
	for _, k := range []string{"Resource", "NotResource"} {
		if v, has := st[k]; has {
			if _, ok := stringOrList(v); !ok {
				return false
			}
		}
	}
	if c, has := st["Condition"]; has && !validCondition(c) {
		return false
	}
	return true
}

func validPrincipal(raw json.RawMessage) bool {
	if raw == nil {
		return false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s == "*"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return false
	}
	for k, v := range m {
		if !slices.Contains(principalKinds, k) {
			return false
		}
		vals, ok := stringOrList(v)
		if !ok {
			return false
		}
		for _, p := range vals {
			if strings.TrimSpace(p) == "" {
				return false
			}
		}
	}
	return true
}

// validCondition accepts {operator: {key: value or [values]}} with string,
// number or boolean values.
func validCondition(raw json.RawMessage) bool {
	var ops map[string]map[string]json.RawMessage
	if json.Unmarshal(raw, &ops) != nil || ops == nil {
		return false
	}
	for op, keys := range ops {
		if op == "" || len(keys) == 0 {
			return false
		}
		for k, v := range keys {
			if k == "" || !scalarOrList(v) {
				return false
			}
		}
	}
	return true
}

func scalarOrList(raw json.RawMessage) bool {
	var vals []any
	if json.Unmarshal(raw, &vals) != nil {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return false
		}
		vals = []any{v}
	}
	if len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		switch v.(type) {
		case string, float64, bool:
		default:
			return false
		}
	}
	return true
}

// stringOrList decodes a policy element that is one string or a non-empty
// list of strings.
func stringOrList(raw json.RawMessage) ([]string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, s != ""
	}
	var ss []string
	if json.Unmarshal(raw, &ss) != nil || len(ss) == 0 {
		return nil, false
	}
	return ss, !slices.Contains(ss, "")
}

func onlyKeys(m map[string]json.RawMessage, allowed []string) bool {
	for k := range m {
		if !slices.Contains(allowed, k) {
			return false
		}
	}
	return true
}

func hasKey(m map[string]json.RawMessage, k string) bool {
	_, ok := m[k]
	return ok
}

func exactlyOne(m map[string]json.RawMessage, a, b string) bool {
	return hasKey(m, a) != hasKey(m, b)
}

func firstOf(m map[string]json.RawMessage, a, b string) json.RawMessage {
	if v, ok := m[a]; ok {
		return v
	}
	return m[b]
}
