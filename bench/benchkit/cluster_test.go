package benchkit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestUpLine(t *testing.T) {
	out := "berth is up: account 000000000000, region us-east-1, API http://127.0.0.1:4567\nPaste these lines"
	m := upLine.FindStringSubmatch(out)
	if m == nil || m[1] != "http://127.0.0.1:4567" {
		t.Errorf("upLine matched %q", m)
	}
}

func TestCredentials(t *testing.T) {
	data := t.TempDir()
	creds := "# Written by berth\n[berth]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cret\n"
	if err := os.WriteFile(filepath.Join(data, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Credentials(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Retrieve(context.Background())
	if err != nil || got.AccessKeyID != "AKIAEXAMPLE" || got.SecretAccessKey != "s3cret" {
		t.Errorf("Retrieve = %+v, %v", got, err)
	}
	if _, err := Credentials(t.TempDir()); err == nil {
		t.Error("credentials read from an empty data directory")
	}
}
