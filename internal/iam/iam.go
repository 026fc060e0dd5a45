// Package iam holds berth's identity and authorization model: who made a
// request (Principal) and whether they may perform an action on a resource
// (Authorizer). It does no I/O. Full IAM policy evaluation (explicit deny >
// allow > implicit deny) arrives in a later issue behind the same Authorizer
// interface; until then Builtin lets the account's admin do everything, the
// instance users of joined agents what AWS's container-instance role allows,
// and nobody else anything (AdminOnly is the same without instances).
package iam

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Principal is an authenticated caller.
type Principal struct {
	AccountID   string // 12 digits
	ARN         string // e.g. arn:aws:iam::123456789012:user/admin
	UserID      string // AIDA… style unique id
	AccessKeyID string // the key the request was signed with
}

// Authorizer decides whether p may perform action (e.g. "ecs:CreateCluster")
// on resource (an ARN, or "*" for actions without a resource). It returns
// nil or an error of kind errdefs.ErrAccessDenied.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, action, resource string) error
}

// AdminOnly allows every action to the principal whose ARN is AdminARN and
// denies everything to everyone else.
type AdminOnly struct {
	AdminARN string
}

var _ Authorizer = AdminOnly{}

// Authorize implements Authorizer.
func (a AdminOnly) Authorize(_ context.Context, p Principal, action, resource string) error {
	if p.ARN != "" && p.ARN == a.AdminARN {
		return nil
	}
	return AccessDenied(p, action, resource)
}

// AccessDenied builds the error AWS returns when an identity policy does not
// allow an action, with AWS's wording.
func AccessDenied(p Principal, action, resource string) error {
	return errdefs.New(errdefs.ErrAccessDenied, fmt.Sprintf(
		"User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
		p.ARN, action, resource, action))
}
