package agentconfig

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/berth-dev/berth/internal/errdefs"
)

// MaxFileSize bounds an ecs.config file. Real files are a few hundred bytes;
// the bound keeps a wrong path (a disk image, /dev/zero) from being slurped.
const MaxFileSize = 1 << 20

// Entry is one KEY=VALUE line of an ecs.config file.
type Entry struct {
	Key   string
	Value string
	Line  int // 1-based
}

// ParseFile parses the contents of an ecs.config file.
//
// The format is the common subset of the three readers an ecs.config meets
// on an ECS host (ecs-init's getEnvVars, systemd's EnvironmentFile and
// `docker run --env-file`), and it refuses what they disagree on:
//
//   - lines end in LF or CRLF; surrounding white space is trimmed;
//   - blank lines and lines whose first non-blank character is '#' or ';'
//     are skipped;
//   - every other line is KEY=VALUE, split at the first '='; white space
//     around the '=' is dropped; KEY is [A-Za-z_][A-Za-z0-9_]*;
//   - the value is literal: no escapes, no variable expansion, no inline
//     comments ("KEY=a # b" has the value "a # b");
//   - a value wrapped in one pair of matching quotes is an error, because
//     ecs-init keeps the quotes and systemd strips them;
//   - a line without '=', a NUL byte or invalid UTF-8 is an error;
//   - a key may repeat: the caller applies entries in order, so the last wins.
//
// Errors are of kind errdefs.ErrInvalidArgument and name the line.
func ParseFile(data []byte) ([]Entry, error) {
	if len(data) > MaxFileSize {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("file is %d bytes; an ecs.config may be at most %d", len(data), MaxFileSize))
	}
	var out []Entry
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		if bytes.IndexByte(raw, 0) >= 0 {
			return nil, lineErr(n, "contains a NUL byte")
		}
		if !utf8.Valid(raw) {
			return nil, lineErr(n, "is not valid UTF-8")
		}
		line := strings.TrimSpace(string(raw)) // also drops the CR of CRLF
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, lineErr(n, fmt.Sprintf("%q is not KEY=VALUE", truncate(line, 40)))
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !validKey(key) {
			return nil, lineErr(n, fmt.Sprintf("%q is not a variable name (want letters, digits and '_', not starting with a digit)", truncate(key, 40)))
		}
		if quoted(value) {
			return nil, lineErr(n, fmt.Sprintf("%s: the value is wrapped in quotes; ecs.config values are literal (ecs-init keeps quotes, systemd strips them), so write %s=value without quotes", key, key))
		}
		out = append(out, Entry{Key: key, Value: value, Line: n})
	}
	return out, nil
}

func lineErr(n int, msg string) error {
	return errdefs.InvalidArgument(fmt.Sprintf("line %d %s", n, msg))
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func quoted(v string) bool {
	return len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
