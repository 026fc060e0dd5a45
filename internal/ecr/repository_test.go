package ecr

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidateRepositoryName(t *testing.T) {
	tests := []struct {
		name string
		msg  string // "" when valid
	}{
		{"ab", ""},
		{"team/app", ""},
		{"a.b_c-d/e__f", "must satisfy regular expression"},
		{"a.b_c-d/e_f/g1", ""},
		{strings.Repeat("a", 256), ""},
		{"a", "must have length greater than or equal to 2"},
		{"", "must have length greater than or equal to 2"},
		{strings.Repeat("a", 257), "must have length less than or equal to 256"},
		{"Team/app", "must satisfy regular expression"},
		{"team//app", "must satisfy regular expression"},
		{"/app", "must satisfy regular expression"},
		{"app/", "must satisfy regular expression"},
		{"app-", "must satisfy regular expression"},
		{"-app", "must satisfy regular expression"},
		{"a..b", "must satisfy regular expression"},
		{"host:5000/app", "must satisfy regular expression"},
	}
	for _, tt := range tests {
		err := ValidateRepositoryName(tt.name)
		if tt.msg == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: got %v, want invalid argument", tt.name, err)
			continue
		}
		msg := errdefs.Message(err, "")
		if !strings.HasPrefix(msg, "Invalid parameter at 'repositoryName' failed to satisfy constraint: '") || !strings.Contains(msg, tt.msg) {
			t.Errorf("%q: message %q, want it to contain %q", tt.name, msg, tt.msg)
		}
	}
}

func TestRepositoryRecord(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	r := NewRepository("eu-west-1", "123456789012", "berth.example:8443", "team/app", now)
	if r.ARN != "arn:aws:ecr:eu-west-1:123456789012:repository/team/app" {
		t.Errorf("ARN %q", r.ARN)
	}
	if r.URI != "berth.example:8443/team/app" || r.RegistryID != "123456789012" {
		t.Errorf("URI %q registry %q", r.URI, r.RegistryID)
	}
	if r.Immutable() || r.ImageTagMutability != TagMutable || r.EncryptionConfiguration.EncryptionType != EncryptionAES256 {
		t.Errorf("defaults: %+v", r)
	}
	if r.CreatedAt.Location() != time.UTC || !r.CreatedAt.Equal(now) {
		t.Errorf("createdAt %v", r.CreatedAt)
	}
	if got := RepositoryARN("cn-north-1", "1", "x"); !strings.HasPrefix(got, "arn:aws-cn:ecr:") {
		t.Errorf("china ARN %q", got)
	}
	if got := RegistryHost("123456789012", "us-east-1"); got != "123456789012.dkr.ecr.us-east-1.amazonaws.com" {
		t.Errorf("RegistryHost %q", got)
	}
}

func TestRepositoryKeys(t *testing.T) {
	a, ab := RepositoryKey("a1"), RepositoryKey("a1/b")
	if a != "/v1/ecr/repositories/a1" || ab != "/v1/ecr/repositories/a1%2Fb" {
		t.Fatalf("keys %q %q", a, ab)
	}
	if strings.HasPrefix(ab, a+"/") {
		t.Errorf("%q lies under %q", ab, a)
	}
	for _, n := range []string{"a1", "a1/b", "x.y/z-w_v"} {
		got, ok := RepositoryNameFromKey(RepositoryKey(n))
		if !ok || got != n {
			t.Errorf("round trip of %q: %q %v", n, got, ok)
		}
	}
	if _, ok := RepositoryNameFromKey("/v1/ecs/clusters/x"); ok {
		t.Error("foreign key parsed")
	}
}

func TestValidateSettings(t *testing.T) {
	for _, v := range []string{TagMutable, TagImmutable} {
		if err := ValidateImageTagMutability(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	if err := ValidateImageTagMutability("mutable"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("lower-case mutability accepted: %v", err)
	}
	good := []EncryptionConfiguration{{EncryptionType: EncryptionAES256}, {EncryptionType: EncryptionKMS}, {EncryptionType: EncryptionKMSDSSE, KMSKey: "arn:aws:kms:us-east-1:1:key/x"}}
	for _, c := range good {
		if err := ValidateEncryptionConfiguration(c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := []EncryptionConfiguration{{}, {EncryptionType: "DES"}, {EncryptionType: EncryptionAES256, KMSKey: "k"}}
	for _, c := range bad {
		if err := ValidateEncryptionConfiguration(c); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v accepted: %v", c, err)
		}
	}
}

func TestErrorTexts(t *testing.T) {
	tests := []struct {
		err    error
		kind   error
		reason error
		msg    string
	}{
		{RepositoryNotFound("app", "123456789012"), errdefs.ErrNotFound, ErrRepositoryNotFound, "The repository with name 'app' does not exist in the registry with id '123456789012'"},
		{RepositoryAlreadyExists("app", "1"), errdefs.ErrAlreadyExists, ErrRepositoryAlreadyExists, "The repository with name 'app' already exists in the registry with id '1'"},
		{RepositoryNotEmpty("app", "1"), errdefs.ErrFailedPrecondition, ErrRepositoryNotEmpty, "The repository with name 'app' in registry with id '1' cannot be deleted because it still contains images"},
		{ImageTagAlreadyExists("v1", "app"), errdefs.ErrAlreadyExists, ErrImageTagAlreadyExists, "The image tag 'v1' already exists in the 'app' repository and cannot be overwritten because the tag is immutable."},
		{ImageNotFound("v1", "app", "1"), errdefs.ErrNotFound, ErrImageNotFound, "The image with reference 'v1' does not exist within the repository with name 'app' in the registry with id '1'"},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.kind) || !errors.Is(tt.err, tt.reason) || errdefs.Message(tt.err, "") != tt.msg {
			t.Errorf("%v: kind/reason/message wrong", tt.err)
		}
	}
}
