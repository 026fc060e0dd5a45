package ecrapi

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsarn "github.com/aws/aws-sdk-go-v2/aws/arn"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// maxDescribeRepositories is DescribeRepositories' limit on names.
const maxDescribeRepositories = 100

// repositoryToAPI is the wire form of a repository record. The URI is
// made from the registry host the server has now, so that it stays what
// `docker push` accepts when the listener moves.
func (h *handlers) repositoryToAPI(r ecr.Repository) types.Repository {
	mut := r.ImageTagMutability
	if mut == "" {
		mut = ecr.TagMutable
	}
	enc := &types.EncryptionConfiguration{EncryptionType: types.EncryptionType(r.EncryptionConfiguration.EncryptionType)}
	if enc.EncryptionType == "" {
		enc.EncryptionType = types.EncryptionTypeAes256
	}
	if r.EncryptionConfiguration.KMSKey != "" {
		enc.KmsKey = aws.String(r.EncryptionConfiguration.KMSKey)
	}
	return types.Repository{
		CreatedAt:                  aws.Time(r.CreatedAt),
		EncryptionConfiguration:    enc,
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: r.ImageScanningConfiguration.ScanOnPush},
		ImageTagMutability:         types.ImageTagMutability(mut),
		RegistryId:                 aws.String(r.RegistryID),
		RepositoryArn:              aws.String(r.ARN),
		RepositoryName:             aws.String(r.Name),
		RepositoryUri:              aws.String(ecr.RepositoryURI(h.host, r.Name)),
	}
}

// checkMutability validates imageTagMutability ("" is MUTABLE). The
// *_WITH_EXCLUSION settings and their filters are not supported.
func checkMutability(m types.ImageTagMutability, filters []types.ImageTagMutabilityExclusionFilter) (string, error) {
	if m == "" {
		m = types.ImageTagMutabilityMutable
	}
	if err := ecr.ValidateImageTagMutability(string(m)); err != nil {
		return "", err
	}
	if len(filters) > 0 {
		return "", ecr.InvalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'can only be specified when imageTagMutability is MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION'")
	}
	return string(m), nil
}

func tagsFromAPI(in []types.Tag) []ecr.Tag {
	out := make([]ecr.Tag, 0, len(in))
	for _, t := range in {
		out = append(out, ecr.Tag{Key: aws.ToString(t.Key), Value: aws.ToString(t.Value)})
	}
	return out
}

func tagsToAPI(in []ecr.Tag) []types.Tag {
	out := make([]types.Tag, 0, len(in))
	for _, t := range in {
		out = append(out, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	return out
}

// foreignRegistry refuses to create in a registry other than the caller's.
func foreignRegistry() error {
	return ecr.InvalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'must be the id of the caller's registry'")
}

// CreateRepository creates a repository with ECR's defaults: MUTABLE tags,
// AES256 encryption, no scan on push. Encryption and scanning settings are
// recorded and reported; berth neither encrypts with KMS nor scans.
func (h *handlers) CreateRepository(ctx context.Context, in *sdk.CreateRepositoryInput) (*sdk.CreateRepositoryOutput, error) {
	t, err := h.target(ctx, "CreateRepository", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		// Tagging on create needs ecr:TagResource too.
		if err := h.authorize(ctx, "TagResource", t.arn); err != nil {
			return nil, err
		}
	}
	if t.registry != h.account {
		return nil, foreignRegistry()
	}
	mut, err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	enc := ecr.EncryptionConfiguration{EncryptionType: ecr.EncryptionAES256}
	if c := in.EncryptionConfiguration; c != nil {
		enc = ecr.EncryptionConfiguration{EncryptionType: string(c.EncryptionType), KMSKey: aws.ToString(c.KmsKey)}
		if err := ecr.ValidateEncryptionConfiguration(enc); err != nil {
			return nil, err
		}
	}
	tags := tagsFromAPI(in.Tags)
	if err := ecr.ValidateTags(tags, 0); err != nil {
		return nil, err
	}
	key := ecr.RepositoryKey(t.name)
	var rec ecr.Repository
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		_, _, found, err := getRepository(ctx, h.store, t.name)
		if err != nil {
			return nil, nil, err
		}
		if found {
			return nil, nil, ecr.RepositoryAlreadyExists(t.name, t.registry)
		}
		rec = ecr.NewRepository(h.region, h.account, h.host, t.name, h.now())
		rec.ImageTagMutability = mut
		rec.EncryptionConfiguration = enc
		if in.ImageScanningConfiguration != nil {
			rec.ImageScanningConfiguration.ScanOnPush = in.ImageScanningConfiguration.ScanOnPush
		}
		if len(tags) > 0 {
			rec.Tags = tags
		}
		op, err := store.PutJSON(key, rec)
		if err != nil {
			return nil, nil, err
		}
		return []store.Cond{{Key: key, ModRevision: 0}}, []store.Op{op}, nil
	})
	if err != nil {
		return nil, err
	}
	out := h.repositoryToAPI(rec)
	return &sdk.CreateRepositoryOutput{Repository: &out}, nil
}

// DescribeRepositories describes the named repositories (any missing one
// fails the call, as in ECR) or, without names, every repository a page at
// a time.
func (h *handlers) DescribeRepositories(ctx context.Context, in *sdk.DescribeRepositoriesInput) (*sdk.DescribeRepositoriesOutput, error) {
	if len(in.RepositoryNames) == 0 {
		if err := h.authorize(ctx, "DescribeRepositories", anyResource); err != nil {
			return nil, err
		}
		reg, err := h.registryID(in.RegistryId)
		if err != nil {
			return nil, err
		}
		var recs []ecr.Repository
		if reg == h.account {
			if recs, err = h.listRepositories(ctx); err != nil {
				return nil, err
			}
		}
		page, next, err := paginate(recs, func(r ecr.Repository) string { return r.Name }, in.MaxResults, in.NextToken)
		if err != nil {
			return nil, err
		}
		out := &sdk.DescribeRepositoriesOutput{Repositories: make([]types.Repository, 0, len(page)), NextToken: next}
		for _, r := range page {
			out.Repositories = append(out.Repositories, h.repositoryToAPI(r))
		}
		return out, nil
	}
	var targets []repoTarget
	for _, name := range in.RepositoryNames {
		t, err := h.target(ctx, "DescribeRepositories", in.RegistryId, aws.String(name))
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	if len(targets) > maxDescribeRepositories {
		return nil, ecr.InvalidParameter("Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member must have length less than or equal to 100'")
	}
	if in.MaxResults != nil || aws.ToString(in.NextToken) != "" {
		return nil, ecr.InvalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'maxResults and nextToken cannot be used with repositoryNames'")
	}
	out := &sdk.DescribeRepositoriesOutput{Repositories: make([]types.Repository, 0, len(targets))}
	seen := map[string]bool{}
	for _, t := range targets {
		if seen[t.name] {
			continue
		}
		seen[t.name] = true
		r, _, err := h.repository(ctx, t)
		if err != nil {
			return nil, err
		}
		out.Repositories = append(out.Repositories, h.repositoryToAPI(r))
	}
	return out, nil
}

// listRepositories returns every repository record, sorted by name.
func (h *handlers) listRepositories(ctx context.Context) ([]ecr.Repository, error) {
	recs, _, err := store.ListJSON[ecr.Repository](ctx, h.store, ecr.RepositoriesPrefix)
	if err != nil {
		return nil, storeError(err)
	}
	slices.SortFunc(recs, func(a, b ecr.Repository) int { return strings.Compare(a.Name, b.Name) })
	return recs, nil
}

// DeleteRepository deletes a repository. Without force a repository that
// holds images is refused (RepositoryNotEmptyException); with force its
// images go first, then the record, so that a failure leaves a repository
// that can be deleted again rather than images without a repository.
func (h *handlers) DeleteRepository(ctx context.Context, in *sdk.DeleteRepositoryInput) (*sdk.DeleteRepositoryOutput, error) {
	t, err := h.target(ctx, "DeleteRepository", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if _, _, err := h.repository(ctx, t); err != nil {
		return nil, err
	}
	if in.Force {
		if err := h.images.DeleteRepositoryContents(ctx, t.name); err != nil {
			return nil, err
		}
	} else {
		has, err := h.images.HasImages(ctx, t.name)
		if err != nil {
			return nil, err
		}
		if has {
			return nil, ecr.RepositoryNotEmpty(t.name, t.registry)
		}
	}
	var rec ecr.Repository
	err = h.commit(ctx, func() ([]store.Cond, []store.Op, error) {
		r, rev, err := h.repository(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		rec = r
		key := ecr.RepositoryKey(t.name)
		return []store.Cond{{Key: key, ModRevision: rev}},
			[]store.Op{store.Delete(key), store.Delete(ecr.LifecyclePreviewKey(t.name))}, nil
	})
	if err != nil {
		return nil, err
	}
	out := h.repositoryToAPI(rec)
	return &sdk.DeleteRepositoryOutput{Repository: &out}, nil
}

// PutImageTagMutability sets MUTABLE or IMMUTABLE; the registry enforces
// IMMUTABLE on the next push.
func (h *handlers) PutImageTagMutability(ctx context.Context, in *sdk.PutImageTagMutabilityInput) (*sdk.PutImageTagMutabilityOutput, error) {
	t, err := h.target(ctx, "PutImageTagMutability", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if in.ImageTagMutability == "" {
		return nil, ecr.InvalidParameter("Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must not be null'")
	}
	mut, err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	r, err := h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		if r.ImageTagMutability == mut {
			return false, nil
		}
		r.ImageTagMutability = mut
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return &sdk.PutImageTagMutabilityOutput{
		ImageTagMutability: types.ImageTagMutability(r.ImageTagMutability),
		RegistryId:         aws.String(t.registry),
		RepositoryName:     aws.String(t.name),
	}, nil
}

// PutImageScanningConfiguration records scanOnPush (berth does not scan).
func (h *handlers) PutImageScanningConfiguration(ctx context.Context, in *sdk.PutImageScanningConfigurationInput) (*sdk.PutImageScanningConfigurationOutput, error) {
	t, err := h.target(ctx, "PutImageScanningConfiguration", in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if in.ImageScanningConfiguration == nil {
		return nil, ecr.InvalidParameter("Invalid parameter at 'imageScanningConfiguration' failed to satisfy constraint: 'Member must not be null'")
	}
	scan := in.ImageScanningConfiguration.ScanOnPush
	if _, err := h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		if r.ImageScanningConfiguration.ScanOnPush == scan {
			return false, nil
		}
		r.ImageScanningConfiguration.ScanOnPush = scan
		return true, nil
	}); err != nil {
		return nil, err
	}
	return &sdk.PutImageScanningConfigurationOutput{
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: scan},
		RegistryId:                 aws.String(t.registry),
		RepositoryName:             aws.String(t.name),
	}, nil
}

// resourceTarget resolves a tagging action's resourceArn, which must be a
// repository ARN of this region, and authorizes action on it.
func (h *handlers) resourceTarget(ctx context.Context, action string, resourceARN *string) (repoTarget, error) {
	s := aws.ToString(resourceARN)
	a, err := awsarn.Parse(s)
	name, ok := strings.CutPrefix(a.Resource, "repository/")
	if err != nil || a.Service != ecr.Namespace || !ok || a.Region != h.region || !registryIDPattern.MatchString(a.AccountID) || ecr.ValidateRepositoryName(name) != nil {
		if err := h.authorize(ctx, action, anyResource); err != nil {
			return repoTarget{}, err
		}
		return repoTarget{}, ecr.InvalidParameter("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'")
	}
	return h.target(ctx, action, aws.String(a.AccountID), aws.String(name))
}

// TagResource adds or replaces tags of a repository.
func (h *handlers) TagResource(ctx context.Context, in *sdk.TagResourceInput) (*sdk.TagResourceOutput, error) {
	t, err := h.resourceTarget(ctx, "TagResource", in.ResourceArn)
	if err != nil {
		return nil, err
	}
	tags := tagsFromAPI(in.Tags)
	if len(tags) == 0 {
		return nil, ecr.InvalidParameter("Invalid parameter at 'tags' failed to satisfy constraint: 'Member must not be null'")
	}
	_, err = h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		kept := slices.DeleteFunc(slices.Clone(r.Tags), func(old ecr.Tag) bool {
			return slices.ContainsFunc(tags, func(n ecr.Tag) bool { return n.Key == old.Key })
		})
		if err := ecr.ValidateTags(tags, len(kept)); err != nil {
			return false, err
		}
		r.Tags = append(kept, tags...)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return &sdk.TagResourceOutput{}, nil
}

// UntagResource removes tags of a repository by key.
func (h *handlers) UntagResource(ctx context.Context, in *sdk.UntagResourceInput) (*sdk.UntagResourceOutput, error) {
	t, err := h.resourceTarget(ctx, "UntagResource", in.ResourceArn)
	if err != nil {
		return nil, err
	}
	_, err = h.updateRepository(ctx, t, func(r *ecr.Repository) (bool, error) {
		n := len(r.Tags)
		r.Tags = slices.DeleteFunc(r.Tags, func(old ecr.Tag) bool { return slices.Contains(in.TagKeys, old.Key) })
		return len(r.Tags) != n, nil
	})
	if err != nil {
		return nil, err
	}
	return &sdk.UntagResourceOutput{}, nil
}

// ListTagsForResource lists the tags of a repository.
func (h *handlers) ListTagsForResource(ctx context.Context, in *sdk.ListTagsForResourceInput) (*sdk.ListTagsForResourceOutput, error) {
	t, err := h.resourceTarget(ctx, "ListTagsForResource", in.ResourceArn)
	if err != nil {
		return nil, err
	}
	r, _, err := h.repository(ctx, t)
	if err != nil {
		return nil, err
	}
	return &sdk.ListTagsForResourceOutput{Tags: tagsToAPI(r.Tags)}, nil
}

// Repositories reads repository records from the store for the registry:
// it implements internal/registry's Repositories port.
type Repositories struct {
	Store store.Store
}

// Lookup returns the record of the repository called name. A cached store
// is synced before a repository is reported missing, so that a push right
// after CreateRepository through another server is accepted.
func (r Repositories) Lookup(ctx context.Context, name string) (ecr.Repository, bool, error) {
	if ecr.ValidateRepositoryName(name) != nil {
		return ecr.Repository{}, false, nil
	}
	return lookupErr(getRepository(ctx, r.Store, name))
}

func lookupErr(rec ecr.Repository, _ int64, found bool, err error) (ecr.Repository, bool, error) {
	return rec, found, err
}

// List returns every repository record, sorted by name.
func (r Repositories) List(ctx context.Context) ([]ecr.Repository, error) {
	recs, _, err := store.ListJSON[ecr.Repository](ctx, r.Store, ecr.RepositoriesPrefix)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	slices.SortFunc(recs, func(a, b ecr.Repository) int { return strings.Compare(a.Name, b.Name) })
	return recs, nil
}
