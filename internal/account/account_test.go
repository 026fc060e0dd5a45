package account

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store/memstore"
)

func TestBootstrapCreatesOnceAndKeeps(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a, err := Bootstrap(ctx, st, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[1-9]\d{11}$`).MatchString(a.ID) || a.Region != DefaultRegion {
		t.Fatalf("account %+v", a)
	}
	key, err := AdminKey(ctx, st, a)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`).MatchString(key.AccessKeyID) || len(key.SecretAccessKey) != 40 {
		t.Fatalf("key %+v", key)
	}
	again, err := Bootstrap(ctx, st, DefaultRegion, now.Add(time.Hour))
	if err != nil || again != a {
		t.Fatalf("second bootstrap: %+v, %v; want %+v", again, err, a)
	}
	_, err = Bootstrap(ctx, st, "eu-west-1", now)
	if !errors.Is(err, ErrRegionMismatch) || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("other region: %v", err)
	}
}

func TestBootstrapConcurrentServersAgree(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := Bootstrap(ctx, st, "ap-south-1", time.Now())
			if err != nil {
				t.Error(err)
			}
			ids[i] = a.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("servers disagree on the account: %v", ids)
		}
	}
}

func TestLookupAccessKey(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	a, err := Bootstrap(ctx, st, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := AdminKey(ctx, st, a)
	keys := NewKeys(st, a)
	secret, p, err := keys.LookupAccessKey(ctx, key.AccessKeyID)
	if err != nil || secret != key.SecretAccessKey || p.ARN != a.AdminARN() || p.AccountID != a.ID || p.AccessKeyID != key.AccessKeyID {
		t.Fatalf("lookup: %q %+v %v", secret, p, err)
	}
	if _, _, err := keys.LookupAccessKey(ctx, "AKIANOPE"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestProfileFiles(t *testing.T) {
	dir := t.TempDir()
	f := FilesIn(dir)
	a := Account{ID: "123456789012", Region: "us-west-2"}
	k := AccessKey{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret"}
	if err := WriteProfileFiles(f, a, k, "http://127.0.0.1:7400", nil); err != nil {
		t.Fatal(err)
	}
	creds, _ := os.ReadFile(f.Credentials)
	conf, _ := os.ReadFile(f.Config)
	for _, want := range []string{"[berth]", "aws_access_key_id = AKIAEXAMPLE", "aws_secret_access_key = secret"} {
		if !strings.Contains(string(creds), want) {
			t.Errorf("credentials lack %q:\n%s", want, creds)
		}
	}
	for _, want := range []string{"[profile berth]", "region = us-west-2", "endpoint_url = http://127.0.0.1:7400"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	for _, p := range []string{f.Credentials, f.Config} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", p, st.Mode(), err)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if id, secret, err := ReadCredentials(f.Credentials); err != nil || id != "AKIAEXAMPLE" || secret != "secret" {
		t.Errorf("ReadCredentials: %q %q %v", id, secret, err)
	}
	lines := PasteLines(f, "http://127.0.0.1:7400")
	if !strings.Contains(lines, "AWS_SHARED_CREDENTIALS_FILE="+f.Credentials) || !strings.Contains(lines, "AWS_PROFILE=berth") {
		t.Errorf("paste lines: %s", lines)
	}
}

func TestProfileFilesOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root; covered in CI, which runs as root")
	}
	dir := t.TempDir()
	f := FilesIn(dir)
	if err := WriteProfileFiles(f, Account{ID: "1", Region: "us-east-1"}, AccessKey{AccessKeyID: "A", SecretAccessKey: "S"},
		"http://127.0.0.1:7400", &Owner{UID: 65534, GID: 65534}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.Credentials, f.Config} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: uid %d gid %d mode %v", p, sys.Uid, sys.Gid, st.Mode())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o711 {
		t.Errorf("data dir mode %v, want 0711", st.Mode())
	}
}
