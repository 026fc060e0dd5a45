package ecrapi

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/ecr"
)

// maxRegistryIDs is GetAuthorizationToken's limit on registryIds.
const maxRegistryIDs = 10

// GetAuthorizationToken issues a registry token for the caller: user "AWS"
// and the token, base64 encoded, valid for 12 hours. The token carries the
// caller's principal, so that the registry authorizes each push and pull
// as the caller. One authorizationData per registryId asked for (the
// deprecated parameter), else one.
func (h *handlers) GetAuthorizationToken(ctx context.Context, in *sdk.GetAuthorizationTokenInput) (*sdk.GetAuthorizationTokenOutput, error) {
	if err := h.authorize(ctx, "GetAuthorizationToken", anyResource); err != nil {
		return nil, err
	}
	if len(in.RegistryIds) > maxRegistryIDs {
		return nil, ecr.InvalidParameter("Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must have length less than or equal to 10'")
	}
	for _, id := range in.RegistryIds {
		if !registryIDPattern.MatchString(id) {
			return nil, ecr.InvalidParameter("Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must satisfy regular expression pattern: [0-9]{12}'")
		}
	}
	p, _ := awsapi.PrincipalFrom(ctx)
	tok, expires, err := ecr.IssueToken(h.tokenKey, p.ARN, h.clock.Now())
	if err != nil {
		return nil, err
	}
	data := types.AuthorizationData{
		AuthorizationToken: aws.String(ecr.AuthorizationData(tok)),
		ExpiresAt:          aws.Time(expires),
		ProxyEndpoint:      aws.String(h.scheme + "://" + h.host),
	}
	n := max(len(in.RegistryIds), 1)
	out := &sdk.GetAuthorizationTokenOutput{AuthorizationData: make([]types.AuthorizationData, n)}
	for i := range out.AuthorizationData {
		out.AuthorizationData[i] = data
	}
	return out, nil
}
