package scheduler

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The cluster query language (ECS developer guide, "Cluster query
// language"): expressions of the form `subject operator [argument]`,
// combined with and/&&, or/||, not/! and parentheses (and binds tighter
// than or). ListContainerInstances' filter and memberOf placement
// constraints use it. Every subject and operator ECS documents is evaluated:
//
//	subjects:  attribute:<name>, agentConnected, agentVersion, ec2InstanceId,
//	           registeredAt, runningTasksCount, task:group
//	operators: == (equals), != (not_equals), > (greater_than),
//	           >= (greater_than_equal), < (less_than), <= (less_than_equal),
//	           exists, !exists (not_exists), in, !in (not_in) with a list
//	           [a, b], =~ (matches), !~ (not_matches)
//
// Each subject takes the operators ECS lists for it (attribute takes all);
// another is refused with InvalidParameterException. Patterns of =~ are
// matched against the whole value (Java's String.matches), in Go's RE2
// syntax, which is Java's for everything but back-references and
// look-arounds. A value holding a space, bracket, parenthesis or comma is
// written in quotes ('a b' or "a b").

// MaxExpressionLength is ECS's limit on an expression.
const MaxExpressionLength = 2000

// maxDepth bounds nesting, so that no input can exhaust the stack.
const maxDepth = 64

// Operators, by canonical name.
const (
	opEq        = "=="
	opNe        = "!="
	opGt        = ">"
	opGe        = ">="
	opLt        = "<"
	opLe        = "<="
	opExists    = "exists"
	opNotExists = "!exists"
	opIn        = "in"
	opNotIn     = "!in"
	opMatch     = "=~"
	opNotMatch  = "!~"
)

// wordOps maps the word forms of operators to canonical names.
var wordOps = map[string]string{
	"equals": opEq, "not_equals": opNe,
	"greater_than": opGt, "greater_than_equal": opGe,
	"less_than": opLt, "less_than_equal": opLe,
	"exists": opExists, "not_exists": opNotExists,
	"in": opIn, "not_in": opNotIn,
	"matches": opMatch, "not_matches": opNotMatch,
}

// negated is each operator's opposite, for explanations.
var negated = map[string]string{
	opEq: opNe, opNe: opEq, opGt: opLe, opGe: opLt, opLt: opGe, opLe: opGt,
	opExists: opNotExists, opNotExists: opExists, opIn: opNotIn, opNotIn: opIn,
	opMatch: opNotMatch, opNotMatch: opMatch,
}

// Expression is a parsed cluster query language expression. It is
// immutable and safe for concurrent use.
type Expression struct {
	src  string
	root node
	// dynamic is whether the value can change when a task is placed on
	// an instance (it reads task:group).
	dynamic bool
}

// String returns the expression as given.
func (e *Expression) String() string { return e.src }

// Match reports whether inst satisfies the expression.
func (e *Expression) Match(inst *Instance) bool { return e.root.eval(inst) }

// Explain says why inst does not satisfy the expression, e.g.
// "attribute:ecs.instance-type !~ t3.* (is m5.large)"; when it does,
// it says why it does.
func (e *Expression) Explain(inst *Instance) string {
	return e.root.why(inst, e.root.eval(inst))
}

type node interface {
	eval(*Instance) bool
	// why says why the node has the value truth on the instance.
	why(inst *Instance, truth bool) string
}

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }

func (n andNode) eval(i *Instance) bool { return n.l.eval(i) && n.r.eval(i) }
func (n orNode) eval(i *Instance) bool  { return n.l.eval(i) || n.r.eval(i) }
func (n notNode) eval(i *Instance) bool { return !n.x.eval(i) }

func (n andNode) why(i *Instance, truth bool) string {
	if !truth {
		if !n.l.eval(i) {
			return n.l.why(i, false)
		}
		return n.r.why(i, false)
	}
	return n.l.why(i, true) + " and " + n.r.why(i, true)
}

func (n orNode) why(i *Instance, truth bool) string {
	if truth {
		if n.l.eval(i) {
			return n.l.why(i, true)
		}
		return n.r.why(i, true)
	}
	return n.l.why(i, false) + " and " + n.r.why(i, false)
}

func (n notNode) why(i *Instance, truth bool) string { return n.x.why(i, !truth) }

// Subjects.
const (
	subjAttribute      = "attribute"
	subjAgentConnected = "agentConnected"
	subjAgentVersion   = "agentVersion"
	subjEC2InstanceID  = "ec2InstanceId"
	subjRegisteredAt   = "registeredAt"
	subjRunningTasks   = "runningTasksCount"
	subjTaskGroup      = "task:group"
)

// subjectOps are the operators each subject takes (developer guide,
// "Cluster query language"); attribute takes every operator. ECS lists
// none for task:group; berth gives it those of a string set.
var subjectOps = map[string]string{
	subjAgentConnected: "== != in !in =~ !~",
	subjAgentVersion:   "== != > >= < <=",
	subjEC2InstanceID:  "== != in !in =~ !~",
	subjRegisteredAt:   "== != > >= < <=",
	subjRunningTasks:   "== != > >= < <=",
	subjTaskGroup:      "== != in !in =~ !~",
}

// condNode is `subject op [args]`.
type condNode struct {
	subject string
	attr    string // the attribute name for subject attribute
	op      string
	args    []string // one argument, or the list of in / not_in
	re      *regexp.Regexp
	// prefix is set when the pattern is a literal followed by .* (t3.*),
	// which is matched without the regexp engine.
	prefix    string
	hasPrefix bool
	num       int64     // runningTasksCount's argument
	at        time.Time // registeredAt's argument
}

// value returns the subject's value on inst and whether it has one.
// task:group has many values and is handled apart.
func (n *condNode) value(inst *Instance) (string, bool) {
	switch n.subject {
	case subjAttribute:
		return inst.Attribute(n.attr)
	case subjAgentConnected:
		return strconv.FormatBool(inst.AgentConnected), true
	case subjAgentVersion:
		return inst.AgentVersion, inst.AgentVersion != ""
	case subjEC2InstanceID:
		return inst.EC2InstanceID, inst.EC2InstanceID != ""
	case subjRegisteredAt:
		return inst.RegisteredAt.UTC().Format(time.RFC3339), !inst.RegisteredAt.IsZero()
	case subjRunningTasks:
		return strconv.Itoa(inst.RunningTasksCount), true
	}
	return "", false
}

func (n *condNode) eval(inst *Instance) bool {
	if n.subject == subjTaskGroup {
		return n.evalGroups(inst)
	}
	v, ok := n.value(inst)
	switch n.op {
	case opExists:
		return ok
	case opNotExists:
		return !ok
	case opNe, opNotIn, opNotMatch:
		// Negative operators hold where the subject is absent.
		return !ok || !n.test(v, positive(n.op))
	}
	return ok && n.test(v, n.op)
}

// positive maps a negative operator to its positive form.
func positive(op string) string {
	switch op {
	case opNe:
		return opEq
	case opNotIn:
		return opIn
	case opNotMatch:
		return opMatch
	}
	return op
}

// test applies a positive operator to a present value.
func (n *condNode) test(v, op string) bool {
	switch op {
	case opEq:
		return n.compare(v) == 0
	case opGt:
		return n.compare(v) > 0
	case opGe:
		return n.compare(v) >= 0
	case opLt:
		return n.compare(v) < 0
	case opLe:
		return n.compare(v) <= 0
	case opIn:
		return slices.Contains(n.args, v)
	case opMatch:
		return n.match(v)
	}
	return false
}

func (n *condNode) match(v string) bool {
	if n.hasPrefix {
		// . matches anything but a newline.
		return strings.HasPrefix(v, n.prefix) && !strings.Contains(v[len(n.prefix):], "\n")
	}
	return n.re.MatchString(v)
}

// compare orders the value against the argument: runningTasksCount as a
// number, registeredAt as a time, agentVersion by version, attributes as
// numbers when both are numbers and as strings otherwise.
func (n *condNode) compare(v string) int {
	switch n.subject {
	case subjRunningTasks:
		x, _ := strconv.ParseInt(v, 10, 64)
		return cmp.Compare(x, n.num)
	case subjRegisteredAt:
		t, _ := time.Parse(time.RFC3339, v)
		return t.Compare(n.at)
	case subjAgentVersion:
		return compareVersions(v, n.args[0])
	case subjAttribute:
		if n.op != opEq && n.op != opNe {
			x, errX := strconv.ParseFloat(v, 64)
			y, errY := strconv.ParseFloat(n.args[0], 64)
			if errX == nil && errY == nil {
				return cmp.Compare(x, y)
			}
		}
	}
	return strings.Compare(v, n.args[0])
}

// compareVersions orders dotted versions part by part, numerically where
// both parts are numbers (1.14.5 < 1.100.0); a leading v is ignored.
func compareVersions(a, b string) int {
	pa := strings.Split(strings.TrimPrefix(a, "v"), ".")
	pb := strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := "0", "0"
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		xn, errX := strconv.ParseUint(x, 10, 64)
		yn, errY := strconv.ParseUint(y, 10, 64)
		var c int
		if errX == nil && errY == nil {
			c = cmp.Compare(xn, yn)
		} else {
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// evalGroups: task:group is true for == / in / =~ when a task of a named
// (or matching) group runs on the instance; the negative operators are
// their negation.
func (n *condNode) evalGroups(inst *Instance) bool {
	pos := positive(n.op)
	found := false
	switch pos {
	case opEq, opIn:
		for _, g := range n.args {
			if inst.Groups[g] > 0 {
				found = true
				break
			}
		}
	case opMatch:
		for g, c := range inst.Groups {
			if c > 0 && n.match(g) {
				found = true
				break
			}
		}
	}
	return found == (pos == n.op)
}

func (n *condNode) subjectText() string {
	if n.subject == subjAttribute {
		return "attribute:" + n.attr
	}
	return n.subject
}

func (n *condNode) argText() string {
	switch n.op {
	case opExists, opNotExists:
		return ""
	case opIn, opNotIn:
		return " [" + strings.Join(n.args, ", ") + "]"
	}
	return " " + n.args[0]
}

func (n *condNode) why(inst *Instance, truth bool) string {
	op := n.op
	if !truth {
		op = negated[op]
	}
	s := n.subjectText() + " " + op + n.argText()
	if n.subject == subjTaskGroup {
		var gs []string
		for g, c := range inst.Groups {
			if c > 0 {
				gs = append(gs, g)
			}
		}
		if len(gs) == 0 {
			return s + " (no tasks)"
		}
		slices.Sort(gs)
		if len(gs) > 5 {
			gs = append(gs[:5], "…")
		}
		return s + " (groups " + strings.Join(gs, ", ") + ")"
	}
	v, ok := n.value(inst)
	switch {
	case !ok:
		return s + " (not set)"
	case v == "":
		return s
	}
	return s + " (is " + v + ")"
}

func invalid(format string, args ...any) error {
	return errdefs.InvalidArgument("Invalid expression: " + fmt.Sprintf(format, args...) + ".")
}

// registeredAtLayouts are the date formats ECS documents for registeredAt.
var registeredAtLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"}

// compile checks a condition's operator against its subject and prepares
// its argument.
func (n *condNode) compile() error {
	if ops, ok := subjectOps[n.subject]; ok && !slices.Contains(strings.Fields(ops), n.op) {
		return invalid("the operator %s cannot be used with %s", n.op, n.subject)
	}
	switch n.subject {
	case subjRunningTasks:
		v, err := strconv.ParseInt(n.args[0], 10, 64)
		if err != nil {
			return invalid("runningTasksCount compares with a number, not %q", n.args[0])
		}
		n.num = v
	case subjRegisteredAt:
		var err error
		for _, l := range registeredAtLayouts {
			var t time.Time
			if t, err = time.Parse(l, n.args[0]); err == nil {
				n.at = t
				break
			}
		}
		if err != nil {
			return invalid("registeredAt compares with a date such as 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 or 2018-06-18, not %q", n.args[0])
		}
	case subjAgentConnected:
		for _, a := range n.args {
			if n.op != opMatch && n.op != opNotMatch && a != "true" && a != "false" {
				return invalid("agentConnected compares with true or false, not %q", a)
			}
		}
	}
	if n.op == opMatch || n.op == opNotMatch {
		re, err := regexp.Compile("^(?:" + n.args[0] + ")$")
		if err != nil {
			return invalid("%q is not a valid regular expression", n.args[0])
		}
		n.re = re
		if lit, ok := strings.CutSuffix(n.args[0], ".*"); ok && regexp.QuoteMeta(lit) == lit {
			n.prefix, n.hasPrefix = lit, true
		}
	}
	return nil
}

// ParseExpression parses a cluster query language expression and checks
// that berth can evaluate it. Errors are of kind errdefs.ErrInvalidArgument
// (InvalidParameterException).
func ParseExpression(s string) (*Expression, error) {
	if strings.TrimSpace(s) == "" {
		return nil, invalid("the expression is empty")
	}
	if len(s) > MaxExpressionLength {
		return nil, invalid("the expression is longer than %d characters", MaxExpressionLength)
	}
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	root, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, invalid("unexpected %q", p.toks[p.pos].text)
	}
	return &Expression{src: s, root: root, dynamic: p.dynamic}, nil
}

// token kinds.
const (
	tokWord = iota
	tokOp   // an operator symbol: == != > >= < <= =~ !~ ! && ||
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
	tokComma
)

type token struct {
	kind int
	text string
}

var symbolOps = []string{"==", "!=", ">=", "<=", "=~", "!~", "&&", "||", ">", "<", "!"}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '(':
			toks = append(toks, token{tokLParen, "("})
			i++
			continue
		case c == ')':
			toks = append(toks, token{tokRParen, ")"})
			i++
			continue
		case c == '[':
			toks = append(toks, token{tokLBracket, "["})
			i++
			continue
		case c == ']':
			toks = append(toks, token{tokRBracket, "]"})
			i++
			continue
		case c == ',':
			toks = append(toks, token{tokComma, ","})
			i++
			continue
		case c == '"' || c == '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, invalid("unterminated quoted value")
			}
			toks = append(toks, token{tokWord, s[i+1 : i+1+end]})
			i += end + 2
			continue
		}
		if op := symbolAt(s, i); op != "" {
			toks = append(toks, token{tokOp, op})
			i += len(op)
			continue
		}
		start := i
		for i < len(s) && !strings.ContainsRune(" \t\n\r()[],\"'", rune(s[i])) && symbolAt(s, i) == "" {
			i++
		}
		if i == start { // a byte no token can hold
			return nil, invalid("unexpected character %q", s[i])
		}
		toks = append(toks, token{tokWord, s[start:i]})
	}
	return toks, nil
}

// symbolAt returns the operator symbol starting at s[i], if any. A single
// '=', '&' or '|' is not a symbol; inside a word (t2.*) nothing else is
// either, except where a symbol follows.
func symbolAt(s string, i int) string {
	for _, op := range symbolOps {
		if strings.HasPrefix(s[i:], op) {
			return op
		}
	}
	return ""
}

type parser struct {
	toks    []token
	pos     int
	dynamic bool // a task:group condition was read
}

func (p *parser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *parser) isWord(t token, words ...string) bool {
	if t.kind != tokWord {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			return true
		}
	}
	return false
}

func (p *parser) parseOr(depth int) (node, error) {
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	for {
		t, ok := p.peek()
		if !ok || !(t.kind == tokOp && t.text == "||" || p.isWord(t, "or")) {
			return l, nil
		}
		p.pos++
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
}

func (p *parser) parseAnd(depth int) (node, error) {
	l, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	for {
		t, ok := p.peek()
		if !ok || !(t.kind == tokOp && t.text == "&&" || p.isWord(t, "and")) {
			return l, nil
		}
		p.pos++
		r, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
}

func (p *parser) parseUnary(depth int) (node, error) {
	if depth > maxDepth {
		return nil, invalid("the expression nests deeper than %d levels", maxDepth)
	}
	t, ok := p.peek()
	if !ok {
		return nil, invalid("the expression ends early")
	}
	switch {
	case t.kind == tokOp && t.text == "!" || p.isWord(t, "not"):
		p.pos++
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	case t.kind == tokLParen:
		p.pos++
		x, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if t, ok := p.peek(); !ok || t.kind != tokRParen {
			return nil, invalid("a parenthesis is not closed")
		}
		p.pos++
		return x, nil
	case t.kind == tokWord:
		return p.parseCond()
	default:
		return nil, invalid("unexpected %q", t.text)
	}
}

func (p *parser) parseCond() (node, error) {
	subj := p.toks[p.pos]
	p.pos++
	n := &condNode{subject: subj.text}
	if name, ok := strings.CutPrefix(subj.text, "attribute:"); ok {
		if name == "" {
			return nil, invalid("attribute: needs an attribute name")
		}
		n.subject, n.attr = subjAttribute, name
	} else if _, ok := subjectOps[subj.text]; !ok {
		return nil, invalid("unknown subject %q", subj.text)
	}
	if n.subject == subjTaskGroup {
		p.dynamic = true
	}
	t, ok := p.peek()
	if !ok {
		return nil, invalid("%s needs an operator", subj.text)
	}
	p.pos++
	switch {
	case t.kind == tokOp && t.text == "!":
		// !exists, !in
		next, ok := p.peek()
		if ok && p.isWord(next, "exists") {
			p.pos++
			n.op = opNotExists
		} else if ok && p.isWord(next, "in") {
			p.pos++
			n.op = opNotIn
		} else {
			return nil, invalid("unexpected ! after %s", subj.text)
		}
	case t.kind == tokOp && t.text != "&&" && t.text != "||":
		n.op = t.text
	case t.kind == tokWord && wordOps[strings.ToLower(t.text)] != "":
		n.op = wordOps[strings.ToLower(t.text)]
	default:
		return nil, invalid("%q is not an operator", t.text)
	}
	switch n.op {
	case opExists, opNotExists:
	case opIn, opNotIn:
		list, err := p.parseList()
		if err != nil {
			return nil, err
		}
		n.args = list
	default:
		arg, ok := p.peek()
		if !ok || arg.kind != tokWord {
			return nil, invalid("%s %s needs a value", subj.text, n.op)
		}
		p.pos++
		n.args = []string{arg.text}
	}
	if err := n.compile(); err != nil {
		return nil, err
	}
	return n, nil
}

func (p *parser) parseList() ([]string, error) {
	if t, ok := p.peek(); !ok || t.kind != tokLBracket {
		return nil, invalid("in and not_in need a list such as [a, b]")
	}
	p.pos++
	var out []string
	for {
		t, ok := p.peek()
		if !ok {
			return nil, invalid("a list is not closed")
		}
		p.pos++
		switch {
		case t.kind == tokRBracket && len(out) == 0:
			return nil, invalid("a list is empty")
		case t.kind == tokWord:
			out = append(out, t.text)
		default:
			return nil, invalid("unexpected %q in a list", t.text)
		}
		t, ok = p.peek()
		if !ok {
			return nil, invalid("a list is not closed")
		}
		p.pos++
		if t.kind == tokRBracket {
			return out, nil
		}
		if t.kind != tokComma {
			return nil, invalid("unexpected %q in a list", t.text)
		}
	}
}
