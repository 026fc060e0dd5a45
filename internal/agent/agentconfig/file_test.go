package agentconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"empty", "", nil},
		{"one line no newline", "ECS_CLUSTER=a", []Entry{{"ECS_CLUSTER", "a", 1}}},
		{"LF", "A=1\nB=2\n", []Entry{{"A", "1", 1}, {"B", "2", 2}}},
		{"CRLF", "A=1\r\nB=2\r\n", []Entry{{"A", "1", 1}, {"B", "2", 2}}},
		{"blank and white lines", "\n  \n\t\nA=1\n\n", []Entry{{"A", "1", 4}}},
		{"comments", "# a comment\n  # indented=comment\n; systemd comment\nA=1", []Entry{{"A", "1", 4}}},
		{"spaces around =", "  A =  1  \nB\t=\t2", []Entry{{"A", "1", 1}, {"B", "2", 2}}},
		{"empty value", "A=", []Entry{{"A", "", 1}}},
		{"split at first =", "ECS_ENGINE_AUTH_DATA={\"r\":{\"auth\":\"dTpw==\"}}", []Entry{{"ECS_ENGINE_AUTH_DATA", `{"r":{"auth":"dTpw=="}}`, 1}}},
		{"inline # is literal", "A=x # not a comment", []Entry{{"A", "x # not a comment", 1}}},
		{"duplicates kept in order", "A=1\nA=2", []Entry{{"A", "1", 1}, {"A", "2", 2}}},
		{"inner quotes are literal", `A=["json-file","none"]`, []Entry{{"A", `["json-file","none"]`, 1}}},
		{"one quote is literal", `A="x`, []Entry{{"A", `"x`, 1}}},
		{"lower-case key", "a_b1=x", []Entry{{"a_b1", "x", 1}}},
		{"unicode value", "A=héllo", []Entry{{"A", "héllo", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFile([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name, in, mention string
	}{
		{"no =", "A=1\nECS_CLUSTER\n", "line 2"},
		{"empty key", "=x", "line 1"},
		{"key with space", "export ECS_CLUSTER=x", "export ECS_CLUSTER"},
		{"key starting with digit", "1A=x", "1A"},
		{"key with dash", "ECS-CLUSTER=x", "ECS-CLUSTER"},
		{"double-quoted value", `ECS_CLUSTER="prod"`, "ECS_CLUSTER"},
		{"single-quoted value", `ECS_CLUSTER='prod'`, "quotes"},
		{"NUL", "A=1\x00", "NUL"},
		{"invalid UTF-8", "A=\xff", "UTF-8"},
		{"too big", strings.Repeat("#", MaxFileSize+1), "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"", "ECS_CLUSTER=a\n", "A=1\r\nB = 2\r\n", "# c\n; d\n\nA=", `A="x"`, "A", "=", "A=b=c",
		"ECS_INSTANCE_ATTRIBUTES={\"a\":\"b\"}\n", "A=\xff", "A\x00=1", " \t\r\n", "A='", "_=_",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseFile(data)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// Every entry is well formed, and writing the entries back out and
		// parsing them again gives the same keys and values.
		var b strings.Builder
		for _, e := range entries {
			if !validKey(e.Key) || e.Value != strings.TrimSpace(e.Value) || quoted(e.Value) || strings.ContainsAny(e.Value, "\n\x00") {
				t.Fatalf("bad entry %+v", e)
			}
			b.WriteString(e.Key + "=" + e.Value + "\n")
		}
		again, err := ParseFile([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again) != len(entries) {
			t.Fatalf("re-parse gave %d entries, want %d", len(again), len(entries))
		}
		for i := range again {
			if again[i].Key != entries[i].Key || again[i].Value != entries[i].Value {
				t.Fatalf("re-parse entry %d = %+v, want %+v", i, again[i], entries[i])
			}
		}
	})
}
