package ecrapi

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// Lifecycle policy text length bounds (the API reference).
const (
	minLifecyclePolicyLength = 100
	maxLifecyclePolicyLength = 30720
)

// SetRepositoryPolicy stores a repository policy after checking it is a
// policy document. It is not evaluated yet: that arrives with IAM policy
// evaluation.
func (h *handlers) SetRepositoryPolicy(ctx context.Context, in *sdk.SetRepositoryPolicyInput) (*sdk.SetRepositoryPolicyOutput, error) {
	t, err := h.target(ctx, "SetRepositoryPolicy", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	text := aws.ToString(in.PolicyText)
	if err := ecr.ValidateRepositoryPolicy(text); err != nil {
		return nil, err
	}
	if _, err := h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		changed := r.Policy != text
		r.Policy = text
		return changed, nil
	}); err != nil {
		return nil, err
	}
	return &sdk.SetRepositoryPolicyOutput{PolicyText: aws.String(text), RegistryId: aws.String(t.registry), RepositoryName: aws.String(t.name)}, nil
}

// GetRepositoryPolicy returns the repository policy.
func (h *handlers) GetRepositoryPolicy(ctx context.Context, in *sdk.GetRepositoryPolicyInput) (*sdk.GetRepositoryPolicyOutput, error) {
	t, err := h.target(ctx, "GetRepositoryPolicy", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	r, _, err := h.repository(ctx, t)
	if err != nil {
		return nil, err
	}
	if r.Policy == "" {
		return nil, ecr.RepositoryPolicyNotFound(t.name, t.registry)
	}
	return &sdk.GetRepositoryPolicyOutput{PolicyText: aws.String(r.Policy), RegistryId: aws.String(t.registry), RepositoryName: aws.String(t.name)}, nil
}

// DeleteRepositoryPolicy removes the repository policy and returns it.
func (h *handlers) DeleteRepositoryPolicy(ctx context.Context, in *sdk.DeleteRepositoryPolicyInput) (*sdk.DeleteRepositoryPolicyOutput, error) {
	t, err := h.target(ctx, "DeleteRepositoryPolicy", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	var old string
	if _, err := h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		if r.Policy == "" {
			return false, ecr.RepositoryPolicyNotFound(t.name, t.registry)
		}
		old, r.Policy = r.Policy, ""
		return true, nil
	}); err != nil {
		return nil, err
	}
	return &sdk.DeleteRepositoryPolicyOutput{PolicyText: aws.String(old), RegistryId: aws.String(t.registry), RepositoryName: aws.String(t.name)}, nil
}

// checkLifecycleText validates a lifecycle policy text's length and
// content.
func checkLifecycleText(text string) (ecr.LifecyclePolicy, error) {
	switch {
	case len(text) < minLifecyclePolicyLength:
		return ecr.LifecyclePolicy{}, ecr.InvalidParameter(fmt.Sprintf("Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length greater than or equal to %d'", minLifecyclePolicyLength))
	case len(text) > maxLifecyclePolicyLength:
		return ecr.LifecyclePolicy{}, ecr.InvalidParameter(fmt.Sprintf("Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length less than or equal to %d'", maxLifecyclePolicyLength))
	}
	return ecr.ParseLifecyclePolicy(text)
}

// PutLifecyclePolicy stores a lifecycle policy; the lifecycle sweeper
// (internal/controller/ecrlifecycle) applies it.
func (h *handlers) PutLifecyclePolicy(ctx context.Context, in *sdk.PutLifecyclePolicyInput) (*sdk.PutLifecyclePolicyOutput, error) {
	t, err := h.target(ctx, "PutLifecyclePolicy", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	text := aws.ToString(in.LifecyclePolicyText)
	if _, err := checkLifecycleText(text); err != nil {
		return nil, err
	}
	if _, err := h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		changed := r.LifecyclePolicy != text
		r.LifecyclePolicy = text
		return changed, nil
	}); err != nil {
		return nil, err
	}
	return &sdk.PutLifecyclePolicyOutput{LifecyclePolicyText: aws.String(text), RegistryId: aws.String(t.registry), RepositoryName: aws.String(t.name)}, nil
}

// GetLifecyclePolicy returns the lifecycle policy.
func (h *handlers) GetLifecyclePolicy(ctx context.Context, in *sdk.GetLifecyclePolicyInput) (*sdk.GetLifecyclePolicyOutput, error) {
	t, err := h.target(ctx, "GetLifecyclePolicy", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	r, _, err := h.repository(ctx, t)
	if err != nil {
		return nil, err
	}
	if r.LifecyclePolicy == "" {
		return nil, ecr.LifecyclePolicyNotFound(t.name, t.registry)
	}
	return &sdk.GetLifecyclePolicyOutput{LifecyclePolicyText: aws.String(r.LifecyclePolicy), RegistryId: aws.String(t.registry), RepositoryName: aws.String(t.name)}, nil
}

// DeleteLifecyclePolicy removes the lifecycle policy and returns it.
func (h *handlers) DeleteLifecyclePolicy(ctx context.Context, in *sdk.DeleteLifecyclePolicyInput) (*sdk.DeleteLifecyclePolicyOutput, error) {
	t, err := h.target(ctx, "DeleteLifecyclePolicy", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	var old string
	if _, err := h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		if r.LifecyclePolicy == "" {
			return false, ecr.LifecyclePolicyNotFound(t.name, t.registry)
		}
		old, r.LifecyclePolicy = r.LifecyclePolicy, ""
		return true, nil
	}); err != nil {
		return nil, err
	}
	return &sdk.DeleteLifecyclePolicyOutput{LifecyclePolicyText: aws.String(old), RegistryId: aws.String(t.registry), RepositoryName: aws.String(t.name)}, nil
}

// StartLifecyclePolicyPreview records the policy to preview (the given
// text, else the repository's policy). The preview is evaluated against
// the images when GetLifecyclePolicyPreview reads it, so it is complete at
// once.
func (h *handlers) StartLifecyclePolicyPreview(ctx context.Context, in *sdk.StartLifecyclePolicyPreviewInput) (*sdk.StartLifecyclePolicyPreviewOutput, error) {
	t, err := h.target(ctx, "StartLifecyclePolicyPreview", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	text := aws.ToString(in.LifecyclePolicyText)
	if in.LifecyclePolicyText != nil {
		if _, err := checkLifecycleText(text); err != nil {
			return nil, err
		}
	}
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		r, rev, err := h.repository(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		if in.LifecyclePolicyText == nil {
			if r.LifecyclePolicy == "" {
				return nil, nil, ecr.LifecyclePolicyNotFound(t.name, t.registry)
			}
			text = r.LifecyclePolicy
		}
		op, err := store.PutJSON(ecr.LifecyclePreviewKey(t.name), ecr.LifecyclePreview{PolicyText: text, StartedAt: h.now()})
		if err != nil {
			return nil, nil, err
		}
		// The repository's revision guards against writing a preview for
		// a repository deleted meanwhile.
		return []store.Cond{{Key: ecr.RepositoryKey(t.name), ModRevision: rev}}, []store.Op{op}, nil
	})
	if err != nil {
		return nil, err
	}
	return &sdk.StartLifecyclePolicyPreviewOutput{
		LifecyclePolicyText: aws.String(text),
		RegistryId:          aws.String(t.registry),
		RepositoryName:      aws.String(t.name),
		Status:              types.LifecyclePolicyPreviewStatusInProgress,
	}, nil
}

// GetLifecyclePolicyPreview evaluates the started preview against the
// repository's images now: the images the policy would expire, with the
// rule that expires each.
func (h *handlers) GetLifecyclePolicyPreview(ctx context.Context, in *sdk.GetLifecyclePolicyPreviewInput) (*sdk.GetLifecyclePolicyPreviewOutput, error) {
	t, err := h.target(ctx, "GetLifecyclePolicyPreview", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	status := types.TagStatusAny
	if in.Filter != nil {
		if status, err = tagStatus(in.Filter.TagStatus); err != nil {
			return nil, err
		}
	}
	if len(in.ImageIds) > 0 {
		if err := checkBatchLength(len(in.ImageIds)); err != nil {
			return nil, err
		}
		if in.MaxResults != nil || aws.ToString(in.NextToken) != "" {
			return nil, ecr.InvalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'maxResults and nextToken cannot be used with imageIds'")
		}
	}
	if _, _, err := h.repository(ctx, t); err != nil {
		return nil, err
	}
	prev, _, err := store.GetJSON[ecr.LifecyclePreview](ctx, h.store, ecr.LifecyclePreviewKey(t.name))
	switch {
	case errdefs.Kind(err) == errdefs.ErrNotFound:
		return nil, ecr.LifecyclePolicyPreviewNotFound(t.name, t.registry)
	case err != nil:
		return nil, storeError(err)
	}
	policy, err := ecr.ParseLifecyclePolicy(prev.PolicyText)
	if err != nil {
		return nil, errdefs.Internal(fmt.Errorf("stored preview policy of %s: %w", t.name, err))
	}
	imgs, err := h.images.ListImages(ctx, t.name)
	if err != nil {
		return nil, err
	}
	expired := ecr.EvaluateLifecyclePolicy(policy, imgs, h.clock.Now())
	var wanted []ecr.LifecycleExpiration
	for _, e := range expired {
		if !tagStatusKeeps(status, len(e.Image.Tags) > 0) {
			continue
		}
		if len(in.ImageIds) > 0 && !slices.ContainsFunc(in.ImageIds, func(id types.ImageIdentifier) bool {
			return aws.ToString(id.ImageDigest) == e.Image.Digest || id.ImageTag != nil && slices.Contains(e.Image.Tags, *id.ImageTag)
		}) {
			continue
		}
		wanted = append(wanted, e)
	}
	slices.SortFunc(wanted, func(a, b ecr.LifecycleExpiration) int { return strings.Compare(a.Image.Digest, b.Image.Digest) })
	page, next := wanted, (*string)(nil)
	if len(in.ImageIds) == 0 {
		if page, next, err = paginate(wanted, func(e ecr.LifecycleExpiration) string { return e.Image.Digest }, in.MaxResults, in.NextToken); err != nil {
			return nil, err
		}
	}
	out := &sdk.GetLifecyclePolicyPreviewOutput{
		LifecyclePolicyText: aws.String(prev.PolicyText),
		RegistryId:          aws.String(t.registry),
		RepositoryName:      aws.String(t.name),
		Status:              types.LifecyclePolicyPreviewStatusComplete,
		NextToken:           next,
		PreviewResults:      make([]types.LifecyclePolicyPreviewResult, 0, len(page)),
		Summary:             &types.LifecyclePolicyPreviewSummary{ExpiringImageTotalCount: aws.Int32(int32(len(expired)))},
	}
	for _, e := range page {
		r := types.LifecyclePolicyPreviewResult{
			Action:              &types.LifecyclePolicyRuleAction{Type: types.ImageActionTypeExpire},
			AppliedRulePriority: aws.Int32(int32(e.RulePriority)),
			ImageDigest:         aws.String(e.Image.Digest),
			ImageTags:           slices.Clone(e.Image.Tags),
		}
		if !e.Image.PushedAt.IsZero() {
			r.ImagePushedAt = aws.Time(e.Image.PushedAt.UTC())
		}
		out.PreviewResults = append(out.PreviewResults, r)
	}
	return out, nil
}
