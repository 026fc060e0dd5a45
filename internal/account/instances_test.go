package account

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/jointoken"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
)

func bootstrapped(t *testing.T) (store.Store, Account, time.Time) {
	t.Helper()
	st := memstore.New()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a, err := Bootstrap(context.Background(), st, "", now)
	if err != nil {
		t.Fatal(err)
	}
	return st, a, now
}

func TestJoinTokenRedeemsIntoInstanceUsers(t *testing.T) {
	ctx := context.Background()
	st, a, now := bootstrapped(t)
	tok, secret, err := CreateJoinToken(ctx, st, "prod", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Cluster != "prod" || !tok.ExpiresAt.Equal(now.Add(DefaultJoinTokenTTL)) || jointoken.ValidateID(tok.ID) != nil {
		t.Fatalf("token %+v", tok)
	}
	// Only the hash is stored.
	kv, err := st.Get(ctx, joinTokenPrefix+tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kv.Value), secret) || !strings.Contains(string(kv.Value), jointoken.HashSecret(secret)) {
		t.Fatalf("stored record %s", kv.Value)
	}

	keys := NewKeys(st, a)
	seen := map[string]bool{}
	// One token joins several agents, each with its own identity.
	for i := 0; i < 3; i++ {
		c, err := RedeemJoinToken(ctx, st, a, tok.ID, secret, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^i-[0-9a-f]{16}$`).MatchString(c.UserName) || c.Cluster != "prod" ||
			c.ARN != "arn:aws:iam::"+a.ID+":user/berth/instances/"+c.UserName || seen[c.UserName] || seen[c.AccessKeyID] {
			t.Fatalf("credentials %+v", c)
		}
		seen[c.UserName], seen[c.AccessKeyID] = true, true
		gotSecret, p, err := keys.LookupAccessKey(ctx, c.AccessKeyID)
		if err != nil {
			t.Fatal(err)
		}
		if gotSecret != c.SecretAccessKey || p.ARN != c.ARN || p.AccountID != a.ID || !strings.HasPrefix(p.UserID, "AIDA") {
			t.Fatalf("lookup: %q %+v", gotSecret, p)
		}
		authz := iam.Builtin{AdminARN: a.AdminARN(), InstanceARNPrefix: iam.InstanceARNPrefix(a.ID)}
		if err := authz.Authorize(ctx, p, "ecs:RegisterContainerInstance", "*"); err != nil {
			t.Fatalf("instance may not register: %v", err)
		}
		if err := authz.Authorize(ctx, p, "ecs:DeleteCluster", "*"); !errors.Is(err, errdefs.ErrAccessDenied) {
			t.Fatalf("instance may delete clusters: %v", err)
		}
		u, _, err := store.GetJSON[User](ctx, st, userKeyPrefix+c.UserName)
		if err != nil || u.Path != iam.InstancePath {
			t.Fatalf("user %+v, %v", u, err)
		}
	}
}

func TestRedeemRefusesBadTokens(t *testing.T) {
	ctx := context.Background()
	st, a, now := bootstrapped(t)
	tok, secret, err := CreateJoinToken(ctx, st, "", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Cluster != "default" {
		t.Fatalf("cluster %q", tok.Cluster)
	}
	other, _ := jointoken.NewSecret()
	unknown, _ := jointoken.NewID()
	tests := []struct {
		name, id, secret string
		at               time.Time
		want             string
	}{
		{"unknown id", unknown, secret, now, "is not known to this server"},
		{"malformed id", "../../account", secret, now, "id is malformed"},
		{"wrong secret", tok.ID, other, now, "secret of join token " + tok.ID + " is wrong"},
		{"empty secret", tok.ID, "", now, "is wrong"},
		{"expired", tok.ID, secret, now.Add(time.Hour), "expired at 2026-11-22T11:00:00Z"},
		{"wrong secret of an expired token says nothing of expiry", tok.ID, other, now.Add(2 * time.Hour), "is wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RedeemJoinToken(ctx, st, a, tt.id, tt.secret, tt.at)
			if !errors.Is(err, errdefs.ErrAccessDenied) || !strings.Contains(errdefs.Message(err, ""), tt.want) {
				t.Fatalf("got %v, want access denied containing %q", err, tt.want)
			}
		})
	}
	users, _, err := st.List(ctx, userKeyPrefix)
	if err != nil || len(users) != 1 {
		t.Fatalf("users after refused joins: %d, %v", len(users), err)
	}
}

func TestCreateJoinTokenValidatesAndSweeps(t *testing.T) {
	ctx := context.Background()
	st, _, now := bootstrapped(t)
	for _, tt := range []struct {
		cluster string
		ttl     time.Duration
	}{
		{"a/b", time.Hour}, {strings.Repeat("x", 256), time.Hour},
		{"ok", time.Second}, {"ok", -time.Hour}, {"ok", MaxJoinTokenTTL + time.Second},
	} {
		if _, _, err := CreateJoinToken(ctx, st, tt.cluster, tt.ttl, now); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("CreateJoinToken(%q, %s): %v, want invalid argument", tt.cluster, tt.ttl, err)
		}
	}
	old, _, err := CreateJoinToken(ctx, st, "", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	live, _, err := CreateJoinToken(ctx, st, "", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	// A later creation removes the expired token and keeps the live one.
	fresh, _, err := CreateJoinToken(ctx, st, "", time.Hour, now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	toks, _, err := store.ListJSON[JoinToken](ctx, st, joinTokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, tk := range toks {
		ids[tk.ID] = true
	}
	if len(toks) != 2 || ids[old.ID] || !ids[live.ID] || !ids[fresh.ID] {
		t.Fatalf("tokens after sweep: %+v", toks)
	}
}

func TestRedeemConcurrently(t *testing.T) {
	ctx := context.Background()
	st, a, now := bootstrapped(t)
	tok, secret, err := CreateJoinToken(ctx, st, "", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	names := make([]string, 16)
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := RedeemJoinToken(ctx, st, a, tok.ID, secret, now)
			if err != nil {
				t.Error(err)
				return
			}
			names[i] = c.UserName
		}()
	}
	wg.Wait()
	users, _, err := st.List(ctx, userKeyPrefix)
	if err != nil || len(users) != 1+len(names) {
		t.Fatalf("%d users, %v; want %d", len(users), err, 1+len(names))
	}
}

func TestRedeemRevokedMeanwhile(t *testing.T) {
	ctx := context.Background()
	st, a, now := bootstrapped(t)
	tok, secret, err := CreateJoinToken(ctx, st, "", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Txn(ctx, nil, []store.Op{store.Delete(joinTokenPrefix + tok.ID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := RedeemJoinToken(ctx, st, a, tok.ID, secret, now); !errors.Is(err, errdefs.ErrAccessDenied) {
		t.Fatalf("deleted token redeemed: %v", err)
	}
}

func TestReadConfig(t *testing.T) {
	f := FilesIn(t.TempDir())
	acct := Account{ID: "123456789012", Region: "eu-west-1"}
	if err := WriteProfileFiles(f, acct, AccessKey{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s"}, "http://127.0.0.1:7401", nil); err != nil {
		t.Fatal(err)
	}
	region, endpoint, err := ReadConfig(f.Config)
	if err != nil || region != "eu-west-1" || endpoint != "http://127.0.0.1:7401" {
		t.Fatalf("ReadConfig: %q %q %v", region, endpoint, err)
	}
	if _, _, err := ReadConfig(f.Credentials); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ReadConfig of a credentials file: %v", err)
	}
	if _, _, err := ReadConfig(f.Config + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadConfig of a missing file: %v", err)
	}
}

func TestCreateInstanceUser(t *testing.T) {
	ctx := context.Background()
	st, a, now := bootstrapped(t)
	c, err := CreateInstanceUser(ctx, st, a, "", now)
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := NewKeys(st, a).LookupAccessKey(ctx, c.AccessKeyID)
	if err != nil || p.ARN != c.ARN || c.Cluster != "default" || !strings.HasPrefix(c.ARN, iam.InstanceARNPrefix(a.ID)+"i-") {
		t.Fatalf("credentials %+v, principal %+v, %v", c, p, err)
	}
	if _, err := CreateInstanceUser(ctx, st, a, "no/slash", now); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad cluster: %v", err)
	}
}
