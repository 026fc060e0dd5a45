// Package account owns berth's first-start bootstrap: the account id, the
// region, the admin IAM user and its access key, and the AWS shared
// credentials/config files written into the data directory. It also serves
// access-key lookups to SigV4 verification. A later IAM issue extends the
// user and key records; their keys are reserved under /v1/iam/.
package account

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
)

// Store keys owned by this package (see docs/architecture/store-keys.md).
const (
	accountKey      = "/v1/account"
	userKeyPrefix   = "/v1/iam/users/"
	accessKeyPrefix = "/v1/iam/accesskeys/"
)

// AdminUserName is the name of the user created at first start.
const AdminUserName = "admin"

// DefaultRegion is the region of an account created without --region.
const DefaultRegion = "us-east-1"

// Account is the bootstrap record: created once, never changed.
type Account struct {
	ID        string    `json:"id"`
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"createdAt"`
	// AdminAccessKeyID names the access key written to DATA/credentials.
	AdminAccessKeyID string `json:"adminAccessKeyId"`
}

// User is an IAM user record.
type User struct {
	UserName string `json:"userName"`
	// Path is the IAM path, e.g. /berth/instances/ for the users of joined
	// agents; empty means "/". The ARN carries it.
	Path       string    `json:"path,omitempty"`
	UserID     string    `json:"userId"`
	ARN        string    `json:"arn"`
	CreateDate time.Time `json:"createDate"`
}

// AccessKey is an IAM access key record. The secret is stored as is: etcd's
// data directory is as sensitive as DATA/credentials (see docs/adr).
type AccessKey struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	UserName        string    `json:"userName"`
	Status          string    `json:"status"` // Active | Inactive
	CreateDate      time.Time `json:"createDate"`
}

// ErrRegionMismatch is returned when a data directory created for one
// region is started with another.
var ErrRegionMismatch = errors.New("region mismatch")

// Bootstrap returns the account stored in st, creating it (with its admin
// user and access key, in one transaction) on first start. region "" means
// "the stored region, or DefaultRegion at first start".
func Bootstrap(ctx context.Context, st store.Store, region string, now time.Time) (Account, error) {
	for attempt := 0; attempt < 5; attempt++ {
		acct, _, err := store.GetJSON[Account](ctx, st, accountKey)
		switch {
		case err == nil:
			if region != "" && region != acct.Region {
				return Account{}, errdefs.WithReason(errdefs.ErrInvalidArgument, ErrRegionMismatch, fmt.Sprintf(
					"the data directory belongs to region %s; start it with --region %s or without --region", acct.Region, acct.Region))
			}
			return acct, nil
		case !errors.Is(err, errdefs.ErrNotFound):
			return Account{}, err
		}
		acct, err = create(ctx, st, region, now)
		if errors.Is(err, errdefs.ErrConflict) {
			continue // another server created it first: read theirs
		}
		return acct, err
	}
	return Account{}, errdefs.Conflict("could not create or read the account record")
}

func create(ctx context.Context, st store.Store, region string, now time.Time) (Account, error) {
	if region == "" {
		region = DefaultRegion
	}
	id, err := randomDigits(12)
	if err != nil {
		return Account{}, err
	}
	akid, secret, err := newAccessKey()
	if err != nil {
		return Account{}, err
	}
	userID, err := randomID("AIDA")
	if err != nil {
		return Account{}, err
	}
	now = now.UTC()
	acct := Account{ID: id, Region: region, CreatedAt: now, AdminAccessKeyID: akid}
	user := User{UserName: AdminUserName, UserID: userID, ARN: UserARN(id, AdminUserName), CreateDate: now}
	key := AccessKey{AccessKeyID: akid, SecretAccessKey: secret, UserName: AdminUserName, Status: "Active", CreateDate: now}
	var ops []store.Op
	for k, v := range map[string]any{accountKey: acct, userKeyPrefix + AdminUserName: user, accessKeyPrefix + akid: key} {
		op, err := store.PutJSON(k, v)
		if err != nil {
			return Account{}, err
		}
		ops = append(ops, op)
	}
	if _, err := st.Txn(ctx, []store.Cond{{Key: accountKey}}, ops); err != nil {
		return Account{}, err
	}
	return acct, nil
}

// UserARN returns the ARN of an IAM user.
func UserARN(accountID, userName string) string {
	return "arn:aws:iam::" + accountID + ":user/" + userName
}

// AdminARN returns the ARN of the account's admin user.
func (a Account) AdminARN() string { return UserARN(a.ID, AdminUserName) }

// AdminKey reads the admin's access key.
func AdminKey(ctx context.Context, r store.Reader, a Account) (AccessKey, error) {
	k, _, err := store.GetJSON[AccessKey](ctx, r, accessKeyPrefix+a.AdminAccessKeyID)
	return k, err
}

// Keys looks access keys up for SigV4 verification, on every request. It
// reads through a Reader that in a server is the watch-fed cache, and
// decodes each record once per change, so a lookup costs neither a round
// trip nor a JSON decode.
type Keys struct {
	reader  store.Reader
	account Account
	keys    store.Memo[AccessKey]
	users   store.Memo[User]
}

// NewKeys returns a Keys reading from r for account a.
func NewKeys(r store.Reader, a Account) *Keys {
	return &Keys{reader: r, account: a}
}

// LookupAccessKey returns the secret and the principal of an active key, or
// an error of kind errdefs.ErrNotFound.
func (k *Keys) LookupAccessKey(ctx context.Context, accessKeyID string) (string, iam.Principal, error) {
	key, _, err := k.keys.Get(ctx, k.reader, accessKeyPrefix+accessKeyID)
	if err != nil {
		return "", iam.Principal{}, err
	}
	if key.Status != "Active" {
		return "", iam.Principal{}, errdefs.NotFound("access key is inactive")
	}
	user, _, err := k.users.Get(ctx, k.reader, userKeyPrefix+key.UserName)
	if err != nil {
		return "", iam.Principal{}, err
	}
	return key.SecretAccessKey, iam.Principal{
		AccountID: k.account.ID, ARN: user.ARN, UserID: user.UserID, AccessKeyID: accessKeyID,
	}, nil
}

func randomDigits(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		lo := int64(0)
		if i == 0 {
			lo = 1 // no leading zero: some tools parse account ids as numbers
		}
		d, err := rand.Int(rand.Reader, big.NewInt(10-lo))
		if err != nil {
			return "", errdefs.Internal(err)
		}
		b[i] = byte('0' + lo + d.Int64())
	}
	return string(b), nil
}

// randomID returns prefix followed by 16 characters of upper-case base32,
// the shape of AWS access key ids (AKIA…) and unique ids (AIDA…).
func randomID(prefix string) (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", errdefs.Internal(err)
	}
	return prefix + base32.StdEncoding.EncodeToString(b), nil
}

func newAccessKey() (id, secret string, err error) {
	if id, err = randomID("AKIA"); err != nil {
		return "", "", err
	}
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		return "", "", errdefs.Internal(err)
	}
	return id, base64.StdEncoding.EncodeToString(b), nil // 40 characters, as AWS secrets
}
