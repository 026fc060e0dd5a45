package agentconfig

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// RegistryAuth is the credentials for one registry from
// ECS_ENGINE_AUTH_DATA. Its String and GoString hide the password, so a
// logged Config does not leak it.
type RegistryAuth struct {
	Username string
	Password string
	Email    string
}

func (a RegistryAuth) String() string {
	return fmt.Sprintf("{Username:%s Password:<redacted>}", a.Username)
}

// GoString keeps %#v from printing the password.
func (a RegistryAuth) GoString() string { return "agentconfig.RegistryAuth" + a.String() }

// RegistryHost normalizes a registry reference as ECS_ENGINE_AUTH_DATA keys
// and image names write it: the scheme and any path are dropped, the host is
// lower-cased, and Docker Hub's aliases become "docker.io". So
// "https://index.docker.io/v1/" and "docker.io" name the same registry.
func RegistryHost(ref string) string {
	h := strings.TrimSpace(ref)
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	h = strings.ToLower(h)
	switch h {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "docker.io":
		return "docker.io"
	}
	return h
}

// parseEngineAuth parses ECS_ENGINE_AUTH_DATA in the given format. Errors
// never quote the data: it holds passwords.
func parseEngineAuth(typ AuthType, data string) (map[string]RegistryAuth, error) {
	out := map[string]RegistryAuth{}
	add := func(key string, a RegistryAuth) error {
		host := RegistryHost(key)
		if host == "" {
			return fmt.Errorf("registry %q: want a registry host such as registry.example.com", truncate(key, 60))
		}
		if _, dup := out[host]; dup {
			return fmt.Errorf("registry %s is given twice", host)
		}
		if a.Username == "" {
			return fmt.Errorf("registry %s: the username is empty", host)
		}
		out[host] = a
		return nil
	}
	var fields []string
	var example string
	switch typ {
	case AuthDocker:
		// serveraddress is accepted, as by the ECS agent, and unused.
		fields, example = []string{"username", "password", "email", "serveraddress"}, `{"registry":{"username":"…","password":"…"}}`
	case AuthDockercfg:
		fields, example = []string{"auth", "email"}, `{"registry":{"auth":"base64(user:password)","email":"…"}} (the contents of a .dockercfg)`
	default:
		return nil, fmt.Errorf("unknown ECS_ENGINE_AUTH_TYPE %q", typ)
	}
	var m map[string]map[string]string
	if err := strictJSON(data, &m); err != nil || m == nil {
		return nil, fmt.Errorf("for ECS_ENGINE_AUTH_TYPE=%s want a JSON object %s%s", typ, example, jsonHint(err))
	}
	for _, k := range sortedKeys(m) {
		e := m[k]
		for _, f := range sortedKeys(e) {
			if !slices.Contains(fields, f) {
				return nil, fmt.Errorf("registry %s: unknown field %q; for ECS_ENGINE_AUTH_TYPE=%s the fields are %s", RegistryHost(k), truncate(f, 40), typ, strings.Join(fields, ", "))
			}
		}
		a := RegistryAuth{Username: e["username"], Password: e["password"], Email: e["email"]}
		if typ == AuthDockercfg {
			raw, err := base64.StdEncoding.DecodeString(e["auth"])
			if err != nil {
				return nil, fmt.Errorf("registry %s: auth is not base64", RegistryHost(k))
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("registry %s: auth does not decode to user:password", RegistryHost(k))
			}
			a.Username, a.Password = user, pass
		}
		if err := add(k, a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jsonHint explains a JSON error without quoting the input: an unknown
// field is named (field names are not secret), anything else is summarized.
func jsonHint(err error) string {
	if err == nil {
		return ""
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf(" (JSON syntax error at byte %d)", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf(" (a %s where a different type belongs)", te.Value)
	}
	return ""
}
