package ecr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidateRepositoryPolicy(t *testing.T) {
	const pull = `{"Version":"2012-10-17","Statement":[{"Sid":"AllowPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`
	valid := []string{
		pull,
		`{"Version":"2008-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*"}}`,
		`{"Statement":[{"Effect":"Allow","Principal":{"Service":["codebuild.amazonaws.com"]},"NotAction":"ecr:DeleteRepository","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"},"Bool":{"aws:SecureTransport":[true]}}}]}`,
		`{"Version":"2012-10-17","Id":"p1","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":["arn:aws:iam::1:user/a","arn:aws:iam::1:user/b"]},"Action":"*","Resource":"*"}]}`,
	}
	for _, text := range valid {
		if err := ValidateRepositoryPolicy(text); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	invalid := []struct{ name, text string }{
		{"empty", ""},
		{"not JSON", "{"},
		{"not an object", `["x"]`},
		{"too long", `{"Statement":[` + strings.Repeat(" ", MaxRepositoryPolicyLength) + `]}`},
		{"bad version", `{"Version":"2020-01-01","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}`},
		{"unknown top-level", `{"Version":"2012-10-17","Statements":[]}`},
		{"no statement", `{"Version":"2012-10-17"}`},
		{"empty statements", `{"Version":"2012-10-17","Statement":[]}`},
		{"statement not an object", stmt(`"x"`)},
		{"no effect", stmt(`{"Principal":"*","Action":"ecr:*"}`)},
		{"bad effect", stmt(`{"Effect":"allow","Principal":"*","Action":"ecr:*"}`)},
		{"no principal", stmt(`{"Effect":"Allow","Action":"ecr:*"}`)},
		{"both principals", stmt(`{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"ecr:*"}`)},
		{"principal string not *", stmt(`{"Effect":"Allow","Principal":"alice","Action":"ecr:*"}`)},
		{"unknown principal kind", stmt(`{"Effect":"Allow","Principal":{"User":"a"},"Action":"ecr:*"}`)},
		{"empty principal", stmt(`{"Effect":"Allow","Principal":{"AWS":[]},"Action":"ecr:*"}`)},
		{"no action", stmt(`{"Effect":"Allow","Principal":"*"}`)},
		{"both actions", stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","NotAction":"ecr:PutImage"}`)},
		{"malformed action", stmt(`{"Effect":"Allow","Principal":"*","Action":"PutImage"}`)},
		{"empty action list", stmt(`{"Effect":"Allow","Principal":"*","Action":[]}`)},
		{"unknown statement key", stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Actions":"x"}`)},
		{"both resources", stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*","NotResource":"*"}`)},
		{"condition not a map", stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":"x"}`)},
		{"condition value an object", stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"k":{"a":1}}}}`)},
		{"duplicate sid", stmt(`{"Sid":"a","Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"a","Effect":"Deny","Principal":"*","Action":"ecr:*"}`)},
	}
	for _, tt := range invalid {
		err := ValidateRepositoryPolicy(tt.text)
		if !errors.Is(err, errdefs.ErrInvalidArgument) ||
			errdefs.Message(err, "") != "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'" {
			t.Errorf("%s: got %v", tt.name, err)
		}
	}
}

// FuzzRepositoryPolicy: the validator never panics, and what it accepts is
// a JSON object with a Statement.
func FuzzRepositoryPolicy(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":["ecr:BatchGetImage"]}]}`)
	f.Add(`{"Statement":{"Effect":"Deny","Principal":"*","NotAction":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":false}}}}`)
	f.Add(`{"Statement":[null]}`)
	f.Add(`{"Statement":{"Effect":"Allow","Principal":{"AWS":[null]},"Action":"*"}}`)
	f.Fuzz(func(t *testing.T, text string) {
		err := ValidateRepositoryPolicy(text)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(text), &doc) != nil || doc["Statement"] == nil {
			t.Fatalf("accepted %q", text)
		}
	})
}

func TestValidateTags(t *testing.T) {
	tests := []struct {
		name     string
		tags     []Tag
		existing int
		reason   error
	}{
		{"fine", []Tag{{Key: "env", Value: "prod"}, {Key: "team"}}, 0, nil},
		{"empty key", []Tag{{Key: ""}}, 0, ErrInvalidTagParameter},
		{"long key", []Tag{{Key: strings.Repeat("k", MaxTagKeyLength+1)}}, 0, ErrInvalidTagParameter},
		{"long value", []Tag{{Key: "k", Value: strings.Repeat("v", MaxTagValueLength+1)}}, 0, ErrInvalidTagParameter},
		{"duplicate", []Tag{{Key: "k"}, {Key: "k"}}, 0, ErrInvalidTagParameter},
		{"too many with existing", []Tag{{Key: "k"}}, MaxTags, ErrTooManyTags},
		{"exactly the limit", []Tag{{Key: "k"}}, MaxTags - 1, nil},
	}
	for _, tt := range tests {
		err := ValidateTags(tt.tags, tt.existing)
		if tt.reason == nil && err != nil || tt.reason != nil && !errors.Is(err, tt.reason) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.reason)
		}
	}
}

func TestAPIErrorTexts(t *testing.T) {
	tests := []struct {
		err    error
		reason error
		msg    string
	}{
		{ImageIDNotFound(ImageRef{Tag: "v1"}, "app", "1"), ErrImageNotFound, "The image with imageId {imageDigest:'null', imageTag:'v1'} does not exist within the repository with name 'app' in the registry with id '1'"},
		{ImageAlreadyExists("sha256:ab", "latest", "app", "1"), ErrImageAlreadyExists, "Image with digest 'sha256:ab' and tag 'latest' already exists in the repository with name 'app' in registry with id '1'"},
		{RepositoryPolicyNotFound("app", "1"), ErrRepositoryPolicyNotFound, "Repository policy does not exist for the repository with name 'app' in the registry with id '1'"},
		{LifecyclePolicyNotFound("app", "1"), ErrLifecyclePolicyNotFound, "Lifecycle policy does not exist for the repository with name 'app' in the registry with id '1'"},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.reason) || errdefs.Message(tt.err, "") != tt.msg {
			t.Errorf("%v: want reason %v and message %q", tt.err, tt.reason, tt.msg)
		}
	}
}
