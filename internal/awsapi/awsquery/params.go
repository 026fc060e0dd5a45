// Package awsquery implements the awsQuery protocol on the server side, the
// one IAM, STS and ELBv2 speak: form-encoded parameters in (Action=,
// Version=, lists as Foo.member.N, maps as Foo.entry.N.key/value, struct
// members as Foo.Bar), XML out (<ActionResponse><ActionResult>…), and the
// <ErrorResponse> envelope. It is reflection-free on the way in: handlers
// read what they need through Params.
package awsquery

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Params are the parameters of one request, addressed by their dotted
// paths. A Params returned by Sub or List is a view of the same request
// rooted at a prefix; paths given to it are relative to that prefix.
type Params struct {
	m    map[string]string
	base string // "" at the root, else e.g. "Tags.member.2"
}

// ErrMalformedQuery marks a form body or query string that does not parse;
// the edge answers MalformedQueryString.
var ErrMalformedQuery = fmt.Errorf("malformed query string: %w", errdefs.ErrInvalidArgument)

// ParseForm parses an application/x-www-form-urlencoded body. When a key
// repeats, the first value counts.
func ParseForm(body []byte) (Params, error) {
	p := Params{m: make(map[string]string)}
	if err := p.add(string(body)); err != nil {
		return Params{}, err
	}
	return p, nil
}

// ParseRequest returns the parameters of r: those of its URL query, then
// those of its body when it is form-encoded (a body parameter wins over a
// query parameter of the same name). body is r's body, already read.
func ParseRequest(r *http.Request, body []byte) (Params, error) {
	p := Params{m: make(map[string]string)}
	if len(body) > 0 && isForm(r.Header.Get("Content-Type")) {
		if err := p.add(string(body)); err != nil {
			return Params{}, err
		}
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return Params{}, malformed(err)
		}
		for k, vs := range q {
			if _, ok := p.m[k]; !ok && len(vs) > 0 {
				p.m[k] = vs[0]
			}
		}
	}
	return p, nil
}

func isForm(contentType string) bool {
	if contentType == "" {
		return true // curl and some SDKs leave it off; the body can only be a form here
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

func (p Params) add(form string) error {
	q, err := url.ParseQuery(form)
	if err != nil {
		return malformed(err)
	}
	for k, vs := range q {
		if _, ok := p.m[k]; !ok && len(vs) > 0 {
			p.m[k] = vs[0]
		}
	}
	return nil
}

func malformed(err error) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Reason: ErrMalformedQuery,
		Message: "The query string contains a syntax error.", Cause: err}
}

func (p Params) key(path string) string {
	switch {
	case path == "":
		return p.base
	case p.base == "":
		return path
	}
	return p.base + "." + path
}

// Action returns the Action parameter of the request.
func (p Params) Action() string { return p.m["Action"] }

// Version returns the Version parameter of the request.
func (p Params) Version() string { return p.m["Version"] }

// Get returns the value at path, or "". Get("") is the value of the view
// itself: a scalar list element, say.
func (p Params) Get(path string) string { return p.m[p.key(path)] }

// Lookup returns the value at path and whether it was sent at all.
func (p Params) Lookup(path string) (string, bool) {
	v, ok := p.m[p.key(path)]
	return v, ok
}

// Has reports whether anything was sent at path or below it; an empty list
// travels as "Foo=" and counts.
func (p Params) Has(path string) bool {
	k := p.key(path)
	if _, ok := p.m[k]; ok {
		return true
	}
	prefix := k + "."
	for key := range p.m {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// Sub returns the view rooted at path, for reading a structure's members:
// p.Sub("LoadBalancerAttributes").
func (p Params) Sub(path string) Params {
	return Params{m: p.m, base: p.key(path)}
}

// List returns the elements of the list at path, ordered by index: for
// Tags.member.1.Key=a&Tags.member.2.Key=b, List("Tags.member") returns two
// views with Get("Key") = "a", "b". Pass "Foo.member" for a wrapped list and
// "Foo" for a flattened one. Indices must be positive decimals without
// leading zeros; gaps are allowed, other keys are ignored.
func (p Params) List(path string) []Params {
	prefix := p.key(path) + "."
	type elem struct {
		n    int
		base string
	}
	seen := make(map[string]bool)
	var elems []elem
	for key := range p.m {
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if seen[idx] {
			continue
		}
		seen[idx] = true
		n, ok := index(idx)
		if !ok {
			continue
		}
		elems = append(elems, elem{n: n, base: prefix + idx})
	}
	sort.Slice(elems, func(i, j int) bool { return elems[i].n < elems[j].n })
	out := make([]Params, len(elems))
	for i, e := range elems {
		out[i] = Params{m: p.m, base: e.base}
	}
	return out
}

func index(s string) (int, bool) {
	if s == "" || s[0] == '0' || len(s) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// Strings returns the values of a list of scalars:
// Strings("TransitiveTagKeys.member").
func (p Params) Strings(path string) []string {
	elems := p.List(path)
	if len(elems) == 0 {
		return nil
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		if v, ok := e.Lookup(""); ok {
			out = append(out, v)
		}
	}
	return out
}

// Map returns the map at path sent as path.N.key / path.N.value:
// Map("Attributes.entry"). Entries without a key are skipped.
func (p Params) Map(path string) map[string]string {
	elems := p.List(path)
	if len(elems) == 0 {
		return nil
	}
	out := make(map[string]string, len(elems))
	for _, e := range elems {
		if k, ok := e.Lookup("key"); ok {
			out[k] = e.Get("value")
		}
	}
	return out
}
