package scheduler

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The cluster query language (ECS developer guide, "Cluster query
// language"): expressions of the form `subject operator [argument]`,
// combined with and/&&, or/||, not/! and parentheses. ListContainerInstances'
// filter and memberOf placement constraints use it.
//
// The parser reads the whole language: every subject form and every
// operator (==, equals, !=, not_equals, >, >=, <, <=, greater_than…,
// exists, !exists, not_exists, in, !in, not_in with [a, b] lists, =~,
// matches, !~, not_matches). Evaluation supports a subset so far; an
// expression that uses anything outside it is refused with
// InvalidParameterException naming what is unsupported, never ignored:
//
//	subjects:  attribute:<name>, agentConnected, ec2InstanceId,
//	           runningTasksCount, task:group
//	operators: == (equals), != (not_equals), exists, !exists (not_exists)
//
// The placement issue widens the subset in supported() and eval() only.

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

// Expression is a parsed cluster query language expression.
type Expression struct {
	src  string
	root node
}

// String returns the expression as given.
func (e *Expression) String() string { return e.src }

// Match reports whether inst satisfies the expression.
func (e *Expression) Match(inst *Instance) bool { return e.root.eval(inst) }

type node interface {
	eval(*Instance) bool
	// check returns an error for the first part evaluation does not support.
	check() error
}

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }

// condNode is `subject op [args]`.
type condNode struct {
	subject string // "attribute", "agentConnected", …
	attr    string // the attribute name for subject "attribute"
	op      string
	args    []string // one argument, or the list of in / not_in
}

func (n andNode) eval(i *Instance) bool { return n.l.eval(i) && n.r.eval(i) }
func (n orNode) eval(i *Instance) bool  { return n.l.eval(i) || n.r.eval(i) }
func (n notNode) eval(i *Instance) bool { return !n.x.eval(i) }

func (n andNode) check() error { return firstErr(n.l.check(), n.r.check()) }
func (n orNode) check() error  { return firstErr(n.l.check(), n.r.check()) }
func (n notNode) check() error { return n.x.check() }

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// knownSubjects are the subjects of the language, exactly as written.
var knownSubjects = map[string]bool{
	"agentConnected": true, "agentVersion": true, "ec2InstanceId": true,
	"registeredAt": true, "runningTasksCount": true, "task:group": true,
}

func (n condNode) check() error {
	switch n.subject {
	case "attribute", "agentConnected", "ec2InstanceId", "runningTasksCount", "task:group":
	default:
		return unsupported("the subject %s", n.subject)
	}
	switch n.op {
	case opEq, opNe:
	case opExists, opNotExists:
		if n.subject != "attribute" {
			return unsupported("%s with %s", n.op, n.subject)
		}
	default:
		return unsupported("the operator %s", n.op)
	}
	if n.subject == "runningTasksCount" && len(n.args) == 1 {
		if _, err := strconv.Atoi(n.args[0]); err != nil {
			return invalid("runningTasksCount compares with a number, not %q", n.args[0])
		}
	}
	if n.subject == "agentConnected" && len(n.args) == 1 && n.args[0] != "true" && n.args[0] != "false" {
		return invalid("agentConnected compares with true or false, not %q", n.args[0])
	}
	return nil
}

func (n condNode) eval(inst *Instance) bool {
	switch n.op {
	case opExists, opNotExists:
		_, ok := inst.Attribute(n.attr)
		return ok == (n.op == opExists)
	case opEq, opNe:
		return n.equal(inst) == (n.op == opEq)
	}
	return false
}

func (n condNode) equal(inst *Instance) bool {
	arg := n.args[0]
	switch n.subject {
	case "attribute":
		v, ok := inst.Attribute(n.attr)
		return ok && v == arg
	case "agentConnected":
		return strconv.FormatBool(inst.AgentConnected) == arg
	case "ec2InstanceId":
		return inst.EC2InstanceID == arg
	case "runningTasksCount":
		want, _ := strconv.Atoi(arg)
		return inst.RunningTasksCount == want
	case "task:group":
		return inst.Groups[arg] > 0
	}
	return false
}

func unsupported(format string, args ...any) error {
	return errdefs.InvalidArgument("Unsupported expression: " + fmt.Sprintf(format, args...) + " is not supported yet by berth.")
}

func invalid(format string, args ...any) error {
	return errdefs.InvalidArgument("Invalid expression: " + fmt.Sprintf(format, args...) + ".")
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
	if err := root.check(); err != nil {
		return nil, err
	}
	return &Expression{src: s, root: root}, nil
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
	toks []token
	pos  int
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
	n := condNode{subject: subj.text}
	if name, ok := strings.CutPrefix(subj.text, "attribute:"); ok {
		if name == "" {
			return nil, invalid("attribute: needs an attribute name")
		}
		n.subject, n.attr = "attribute", name
	} else if !knownSubjects[subj.text] {
		return nil, invalid("unknown subject %q", subj.text)
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
		return n, nil
	case opIn, opNotIn:
		list, err := p.parseList()
		if err != nil {
			return nil, err
		}
		n.args = list
		return n, nil
	}
	arg, ok := p.peek()
	if !ok || arg.kind != tokWord {
		return nil, invalid("%s %s needs a value", subj.text, n.op)
	}
	p.pos++
	n.args = []string{arg.text}
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
