package ecrapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
)

const repoPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`

// keepTwo keeps the two newest images, whatever their tags.
const keepTwo = `{"rules":[{"rulePriority":1,"description":"keep two","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`

func TestSDKPolicies(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()
	e.createRepository("app")
	repo := aws.String("app")

	// Repository policy.
	_, err := c.GetRepositoryPolicy(ctx, &sdk.GetRepositoryPolicyInput{RepositoryName: repo})
	apiErr(t, err, "RepositoryPolicyNotFoundException", "Repository policy does not exist for the repository with name 'app' in the registry with id '123456789012'")
	_, err = c.SetRepositoryPolicy(ctx, &sdk.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String(`{"Statement":[{"Effect":"Maybe"}]}`)})
	apiErr(t, err, "InvalidParameterException", "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
	set, err := c.SetRepositoryPolicy(ctx, &sdk.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String(repoPolicy)})
	if err != nil || aws.ToString(set.PolicyText) != repoPolicy || aws.ToString(set.RegistryId) != testAccount {
		t.Fatalf("SetRepositoryPolicy: %+v, %v", set, err)
	}
	got, err := c.GetRepositoryPolicy(ctx, &sdk.GetRepositoryPolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(got.PolicyText) != repoPolicy {
		t.Fatalf("GetRepositoryPolicy: %+v, %v", got, err)
	}
	del, err := c.DeleteRepositoryPolicy(ctx, &sdk.DeleteRepositoryPolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(del.PolicyText) != repoPolicy {
		t.Fatalf("DeleteRepositoryPolicy: %+v, %v", del, err)
	}
	_, err = c.DeleteRepositoryPolicy(ctx, &sdk.DeleteRepositoryPolicyInput{RepositoryName: repo})
	apiErr(t, err, "RepositoryPolicyNotFoundException", "")
	_, err = c.SetRepositoryPolicy(ctx, &sdk.SetRepositoryPolicyInput{RepositoryName: aws.String("nope"), PolicyText: aws.String(repoPolicy)})
	apiErr(t, err, "RepositoryNotFoundException", notFoundMessage("nope"))

	// Lifecycle policy.
	_, err = c.GetLifecyclePolicy(ctx, &sdk.GetLifecyclePolicyInput{RepositoryName: repo})
	apiErr(t, err, "LifecyclePolicyNotFoundException", "Lifecycle policy does not exist for the repository with name 'app' in the registry with id '123456789012'")
	_, err = c.PutLifecyclePolicy(ctx, &sdk.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(`{"rules":[]}`)})
	apiErr(t, err, "InvalidParameterException", "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length greater than or equal to 100'")
	bad := strings.Replace(keepTwo, `"any"`, `"some"`, 1)
	_, err = c.PutLifecyclePolicy(ctx, &sdk.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(bad)})
	apiErr(t, err, "InvalidParameterException", `Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: instance value ("some") not found in enum (possible values: ["any","tagged","untagged"])'`)
	put, err := c.PutLifecyclePolicy(ctx, &sdk.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(keepTwo)})
	if err != nil || aws.ToString(put.LifecyclePolicyText) != keepTwo {
		t.Fatalf("PutLifecyclePolicy: %+v, %v", put, err)
	}
	lp, err := c.GetLifecyclePolicy(ctx, &sdk.GetLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(lp.LifecyclePolicyText) != keepTwo {
		t.Fatalf("GetLifecyclePolicy: %+v, %v", lp, err)
	}

	// Preview: three images pushed one after the other; the oldest goes.
	_, err = c.GetLifecyclePolicyPreview(ctx, &sdk.GetLifecyclePolicyPreviewInput{RepositoryName: repo})
	apiErr(t, err, "LifecyclePolicyPreviewNotFoundException", "")
	tok, err := c.GetAuthorizationToken(ctx, &sdk.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	_, password, _ := strings.Cut(decodeB64(t, aws.ToString(tok.AuthorizationData[0].AuthorizationToken)), ":")
	var digests []string
	for i := range 3 {
		img := randomImage(t)
		ref, _ := name.ParseReference(fmt.Sprintf("%s/app:v%d", e.host, i), name.Insecure)
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: password})); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, digestOf(t, img))
		e.waitPastPush("app", digests[i])
	}
	start, err := c.StartLifecyclePolicyPreview(ctx, &sdk.StartLifecyclePolicyPreviewInput{RepositoryName: repo})
	if err != nil || start.Status != types.LifecyclePolicyPreviewStatusInProgress || aws.ToString(start.LifecyclePolicyText) != keepTwo {
		t.Fatalf("StartLifecyclePolicyPreview: %+v, %v", start, err)
	}
	prev, err := c.GetLifecyclePolicyPreview(ctx, &sdk.GetLifecyclePolicyPreviewInput{RepositoryName: repo})
	if err != nil {
		t.Fatal(err)
	}
	if prev.Status != types.LifecyclePolicyPreviewStatusComplete || aws.ToInt32(prev.Summary.ExpiringImageTotalCount) != 1 ||
		len(prev.PreviewResults) != 1 || aws.ToString(prev.PreviewResults[0].ImageDigest) != digests[0] ||
		aws.ToInt32(prev.PreviewResults[0].AppliedRulePriority) != 1 || prev.PreviewResults[0].Action.Type != types.ImageActionTypeExpire ||
		!slices.Equal(prev.PreviewResults[0].ImageTags, []string{"v0"}) {
		t.Errorf("GetLifecyclePolicyPreview: %+v", prev)
	}

	deleted, err := c.DeleteLifecyclePolicy(ctx, &sdk.DeleteLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(deleted.LifecyclePolicyText) != keepTwo {
		t.Fatalf("DeleteLifecyclePolicy: %+v, %v", deleted, err)
	}
	_, err = c.DeleteLifecyclePolicy(ctx, &sdk.DeleteLifecyclePolicyInput{RepositoryName: repo})
	apiErr(t, err, "LifecyclePolicyNotFoundException", "")
	_, err = c.StartLifecyclePolicyPreview(ctx, &sdk.StartLifecyclePolicyPreviewInput{RepositoryName: repo})
	apiErr(t, err, "LifecyclePolicyNotFoundException", "")
}

// TestAuthorization checks that every action asks the authorizer for
// ecr:<Action> on the repository's ARN ("*" for GetAuthorizationToken),
// and that a denial is AccessDeniedException.
func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	e.createRepository("team/app")
	ctx := e.ctx
	repo := aws.String("team/app")
	arn := repoARN("team/app")
	id := []types.ImageIdentifier{{ImageTag: aws.String("v1")}}
	calls := []struct {
		action   string
		resource string
		call     func() error
	}{
		{"CreateRepository", repoARN("other"), func() error {
			_, err := e.h.CreateRepository(ctx, &sdk.CreateRepositoryInput{RepositoryName: aws.String("other")})
			return err
		}},
		{"DescribeRepositories", arn, func() error {
			_, err := e.h.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{RepositoryNames: []string{"team/app"}})
			return err
		}},
		{"DescribeRepositories", "*", func() error {
			_, err := e.h.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{})
			return err
		}},
		{"ListImages", arn, func() error { _, err := e.h.ListImages(ctx, &sdk.ListImagesInput{RepositoryName: repo}); return err }},
		{"DescribeImages", arn, func() error {
			_, err := e.h.DescribeImages(ctx, &sdk.DescribeImagesInput{RepositoryName: repo})
			return err
		}},
		{"BatchGetImage", arn, func() error {
			_, err := e.h.BatchGetImage(ctx, &sdk.BatchGetImageInput{RepositoryName: repo, ImageIds: id})
			return err
		}},
		{"BatchDeleteImage", arn, func() error {
			_, err := e.h.BatchDeleteImage(ctx, &sdk.BatchDeleteImageInput{RepositoryName: repo, ImageIds: id})
			return err
		}},
		{"BatchCheckLayerAvailability", arn, func() error {
			_, err := e.h.BatchCheckLayerAvailability(ctx, &sdk.BatchCheckLayerAvailabilityInput{RepositoryName: repo, LayerDigests: []string{"sha256:00"}})
			return err
		}},
		{"PutImageTagMutability", arn, func() error {
			_, err := e.h.PutImageTagMutability(ctx, &sdk.PutImageTagMutabilityInput{RepositoryName: repo, ImageTagMutability: types.ImageTagMutabilityMutable})
			return err
		}},
		{"SetRepositoryPolicy", arn, func() error {
			_, err := e.h.SetRepositoryPolicy(ctx, &sdk.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String(repoPolicy)})
			return err
		}},
		{"GetRepositoryPolicy", arn, func() error {
			_, err := e.h.GetRepositoryPolicy(ctx, &sdk.GetRepositoryPolicyInput{RepositoryName: repo})
			return err
		}},
		{"PutLifecyclePolicy", arn, func() error {
			_, err := e.h.PutLifecyclePolicy(ctx, &sdk.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(keepTwo)})
			return err
		}},
		{"GetLifecyclePolicy", arn, func() error {
			_, err := e.h.GetLifecyclePolicy(ctx, &sdk.GetLifecyclePolicyInput{RepositoryName: repo})
			return err
		}},
		{"ListTagsForResource", arn, func() error {
			_, err := e.h.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			return err
		}},
		{"GetAuthorizationToken", "*", func() error {
			_, err := e.h.GetAuthorizationToken(ctx, &sdk.GetAuthorizationTokenInput{})
			return err
		}},
		{"DeleteRepository", arn, func() error {
			_, err := e.h.DeleteRepository(ctx, &sdk.DeleteRepositoryInput{RepositoryName: repo, Force: true})
			return err
		}},
	}
	for _, c := range calls {
		action := "ecr:" + c.action
		e.authz.set(action)
		err := c.call()
		wantErr(t, err, "AccessDeniedException", "User: "+adminARN+" is not authorized to perform: "+action+" on resource: "+c.resource+" because no identity-based policy allows the "+action+" action")
		if rec := e.authz.recorded(); len(rec) == 0 || rec[0] != (authCall{action, c.resource}) {
			t.Errorf("%s asked %v first, want %s on %s", c.action, rec, action, c.resource)
		}
		e.authz.set("")
		if err := c.call(); err != nil && code(err) == "AccessDeniedException" {
			t.Errorf("%s denied when allowed: %v", c.action, err)
		}
	}
	// The action names the registry uses are the same strings.
	for _, a := range []string{ecr.ActionGetAuthorizationToken, ecr.ActionBatchGetImage, ecr.ActionPutImage, ecr.ActionBatchDeleteImage, ecr.ActionListImages, ecr.ActionDescribeImages, ecr.ActionDescribeRepositories, ecr.ActionBatchCheckLayerAvailability} {
		op, _ := strings.CutPrefix(a, "ecr:")
		if _, ok := New(e.config()).Operation(op); !ok {
			t.Errorf("registry action %s is no operation of the API", a)
		}
	}

	// Someone the authorizer knows nothing of gets no token.
	_, err := e.sdkClient(aliceARN).GetAuthorizationToken(context.Background(), &sdk.GetAuthorizationTokenInput{})
	apiErr(t, err, "AccessDeniedException", "User: "+aliceARN+" is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action")
}

func TestValidationBeforeStore(t *testing.T) {
	e := newEnv(t)
	e.createRepository("app")
	ctx := e.ctx
	tests := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"bad name", func() error {
			_, err := e.h.ListImages(ctx, &sdk.ListImagesInput{RepositoryName: aws.String("a")})
			return err
		}, "InvalidParameterException", "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'"},
		{"bad registry id", func() error {
			_, err := e.h.ListImages(ctx, &sdk.ListImagesInput{RepositoryName: aws.String("app"), RegistryId: aws.String("12")})
			return err
		}, "InvalidParameterException", ""},
		{"foreign registry create", func() error {
			_, err := e.h.CreateRepository(ctx, &sdk.CreateRepositoryInput{RepositoryName: aws.String("x1"), RegistryId: aws.String("210987654321")})
			return err
		}, "InvalidParameterException", ""},
		{"bad filter", func() error {
			_, err := e.h.ListImages(ctx, &sdk.ListImagesInput{RepositoryName: aws.String("app"), Filter: &types.ListImagesFilter{TagStatus: "SOME"}})
			return err
		}, "InvalidParameterException", "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]'"},
		{"no image ids", func() error {
			_, err := e.h.BatchGetImage(ctx, &sdk.BatchGetImageInput{RepositoryName: aws.String("app")})
			return err
		}, "InvalidParameterException", "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'"},
		{"too many image ids", func() error {
			_, err := e.h.BatchDeleteImage(ctx, &sdk.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: make([]types.ImageIdentifier, 101)})
			return err
		}, "InvalidParameterException", "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length less than or equal to 100'"},
		{"describe with ids and maxResults", func() error {
			_, err := e.h.DescribeImages(ctx, &sdk.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v")}}, MaxResults: aws.Int32(1)})
			return err
		}, "InvalidParameterException", ""},
		{"empty manifest", func() error {
			_, err := e.h.PutImage(ctx, &sdk.PutImageInput{RepositoryName: aws.String("app")})
			return err
		}, "InvalidParameterException", "Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length greater than or equal to 1'"},
		{"manifest not JSON", func() error {
			_, err := e.h.PutImage(ctx, &sdk.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String("{"), ImageTag: aws.String("v")})
			return err
		}, "InvalidParameterException", ""},
		{"missing repository", func() error {
			_, err := e.h.DescribeImages(ctx, &sdk.DescribeImagesInput{RepositoryName: aws.String("nope")})
			return err
		}, "RepositoryNotFoundException", notFoundMessage("nope")},
		{"too many tags", func() error {
			tags := make([]types.Tag, 51)
			for i := range tags {
				tags[i] = types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")}
			}
			_, err := e.h.CreateRepository(ctx, &sdk.CreateRepositoryInput{RepositoryName: aws.String("tagged"), Tags: tags})
			return err
		}, "TooManyTagsException", ""},
		{"bad encryption", func() error {
			_, err := e.h.CreateRepository(ctx, &sdk.CreateRepositoryInput{RepositoryName: aws.String("enc"), EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: "DES"}})
			return err
		}, "InvalidParameterException", "Invalid parameter at 'encryptionType' failed to satisfy constraint: 'must be one of [AES256, KMS, KMS_DSSE]'"},
		{"too many registry ids", func() error {
			_, err := e.h.GetAuthorizationToken(ctx, &sdk.GetAuthorizationTokenInput{RegistryIds: make([]string, 11)})
			return err
		}, "InvalidParameterException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.call(), tt.code, tt.msg)
		})
	}
}

func TestMapError(t *testing.T) {
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{ecr.RepositoryNotFound("a", "1"), "RepositoryNotFoundException", 400},
		{ecr.RepositoryAlreadyExists("a", "1"), "RepositoryAlreadyExistsException", 400},
		{ecr.RepositoryNotEmpty("a", "1"), "RepositoryNotEmptyException", 400},
		{ecr.ImageNotFound("v", "a", "1"), "ImageNotFoundException", 400},
		{ecr.ImageTagAlreadyExists("v", "a"), "ImageTagAlreadyExistsException", 400},
		{ecr.ImageAlreadyExists("d", "v", "a", "1"), "ImageAlreadyExistsException", 400},
		{ecr.ImageDigestDoesNotMatch("a", "b"), "ImageDigestDoesNotMatchException", 400},
		{ecr.RepositoryPolicyNotFound("a", "1"), "RepositoryPolicyNotFoundException", 400},
		{ecr.LifecyclePolicyNotFound("a", "1"), "LifecyclePolicyNotFoundException", 400},
		{ecr.LifecyclePolicyPreviewNotFound("a", "1"), "LifecyclePolicyPreviewNotFoundException", 400},
		{errdefs.WithReason(errdefs.ErrNotFound, ecr.ErrLayersNotFound, "x"), "LayersNotFoundException", 400},
		{ecr.InvalidParameter("x"), "InvalidParameterException", 400},
		{errdefs.New(errdefs.ErrAccessDenied, "no"), "AccessDeniedException", 400},
		{errdefs.WithReason(errdefs.ErrInvalidArgument, awsjson.ErrSerialization, "bad"), "SerializationException", 400},
		{errdefs.Internal(errors.New("disk on fire")), "ServerException", 500},
		{errdefs.Conflict("raced"), "ServerException", 500},
		{errors.New("plain"), "ServerException", 500},
		{&awsapi.Error{Code: "X", Message: "y", HTTPStatus: 418}, "X", 418},
	}
	for _, tt := range tests {
		got := MapError(tt.err)
		if got.Code != tt.code || got.HTTPStatus != tt.status {
			t.Errorf("%v: %s %d, want %s %d", tt.err, got.Code, got.HTTPStatus, tt.code, tt.status)
		}
		if tt.status == 500 && strings.Contains(got.Message, "fire") {
			t.Errorf("a server fault shows its cause: %q", got.Message)
		}
	}
}
