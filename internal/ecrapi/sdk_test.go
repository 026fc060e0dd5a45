package ecrapi

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/ecr"
)

// TestOverCachedStore runs the flows with reads from the watch-fed cache,
// as production does: every write must be visible to the next read, the
// registry's included.
func TestOverCachedStore(t *testing.T) {
	overCachedStore = true
	t.Cleanup(func() { overCachedStore = false })
	for name, fn := range map[string]func(*testing.T){
		"SDKRepositories":  TestSDKRepositories,
		"SDKPushAndImages": TestSDKPushAndImages,
		"SDKPolicies":      TestSDKPolicies,
	} {
		t.Run(name, fn)
	}
}

func TestSDKRepositories(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()

	created, err := c.CreateRepository(ctx, &sdk.CreateRepositoryInput{
		RepositoryName: aws.String("team/app"),
		Tags:           []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := created.Repository
	if aws.ToString(r.RepositoryArn) != repoARN("team/app") || aws.ToString(r.RepositoryUri) != e.host+"/team/app" ||
		aws.ToString(r.RegistryId) != testAccount || r.ImageTagMutability != types.ImageTagMutabilityMutable ||
		r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 || r.ImageScanningConfiguration == nil ||
		r.ImageScanningConfiguration.ScanOnPush || !aws.ToTime(r.CreatedAt).Equal(testStart) {
		t.Errorf("CreateRepository defaults: %+v", r)
	}
	_, err = c.CreateRepository(ctx, &sdk.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
	apiErr(t, err, "RepositoryAlreadyExistsException", "The repository with name 'team/app' already exists in the registry with id '123456789012'")
	_, err = c.CreateRepository(ctx, &sdk.CreateRepositoryInput{RepositoryName: aws.String("Team")})
	apiErr(t, err, "InvalidParameterException", "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '"+ecr.RepositoryNamePattern+"''")

	frozen, err := c.CreateRepository(ctx, &sdk.CreateRepositoryInput{
		RepositoryName:             aws.String("frozen"),
		ImageTagMutability:         types.ImageTagMutabilityImmutable,
		EncryptionConfiguration:    &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("arn:aws:kms:us-east-1:123456789012:key/k")},
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fr := frozen.Repository; fr.ImageTagMutability != types.ImageTagMutabilityImmutable || !fr.ImageScanningConfiguration.ScanOnPush ||
		fr.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms || aws.ToString(fr.EncryptionConfiguration.KmsKey) == "" {
		t.Errorf("recorded settings: %+v", fr)
	}
	for _, n := range []string{"a1", "b1", "c1"} {
		e.createRepository(n)
	}

	// All repositories, two a page, by name.
	var names []string
	p := sdk.NewDescribeRepositoriesPaginator(c, &sdk.DescribeRepositoriesInput{MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Repositories {
			names = append(names, aws.ToString(r.RepositoryName))
		}
	}
	if want := []string{"a1", "b1", "c1", "frozen", "team/app"}; !slices.Equal(names, want) || pages != 3 {
		t.Errorf("DescribeRepositories pages: %d, %v; want 3, %v", pages, names, want)
	}
	named, err := c.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{RepositoryNames: []string{"team/app", "a1"}})
	if err != nil || len(named.Repositories) != 2 || aws.ToString(named.Repositories[0].RepositoryName) != "team/app" {
		t.Fatalf("DescribeRepositories by name: %+v, %v", named, err)
	}
	_, err = c.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{RepositoryNames: []string{"a1", "nope"}})
	apiErr(t, err, "RepositoryNotFoundException", notFoundMessage("nope"))
	_, err = c.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{RepositoryNames: []string{"a1"}, MaxResults: aws.Int32(1)})
	apiErr(t, err, "InvalidParameterException", "")
	_, err = c.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{NextToken: aws.String("garbage!")})
	apiErr(t, err, "InvalidParameterException", "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid pagination token'")
	_, err = c.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{MaxResults: aws.Int32(1001)})
	apiErr(t, err, "InvalidParameterException", "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'")
	_, err = c.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{RepositoryNames: []string{"a1"}, RegistryId: aws.String("210987654321")})
	apiErr(t, err, "RepositoryNotFoundException", "The repository with name 'a1' does not exist in the registry with id '210987654321'")

	// Settings.
	mut, err := c.PutImageTagMutability(ctx, &sdk.PutImageTagMutabilityInput{RepositoryName: aws.String("a1"), ImageTagMutability: types.ImageTagMutabilityImmutable})
	if err != nil || mut.ImageTagMutability != types.ImageTagMutabilityImmutable {
		t.Fatalf("PutImageTagMutability: %+v, %v", mut, err)
	}
	_, err = c.PutImageTagMutability(ctx, &sdk.PutImageTagMutabilityInput{RepositoryName: aws.String("a1"), ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion})
	apiErr(t, err, "InvalidParameterException", "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'must be one of [MUTABLE, IMMUTABLE]'")
	if _, err := c.PutImageScanningConfiguration(ctx, &sdk.PutImageScanningConfigurationInput{RepositoryName: aws.String("a1"), ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}}); err != nil {
		t.Fatal(err)
	}
	a1, _ := c.DescribeRepositories(ctx, &sdk.DescribeRepositoriesInput{RepositoryNames: []string{"a1"}})
	if r := a1.Repositories[0]; r.ImageTagMutability != types.ImageTagMutabilityImmutable || !r.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("settings not kept: %+v", r)
	}

	// Tags.
	arn := aws.String(repoARN("team/app"))
	if _, err := c.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}, {Key: aws.String("team"), Value: aws.String("x")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &sdk.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "env" || aws.ToString(tags.Tags[0].Value) != "dev" {
		t.Errorf("tags: %+v, %v", tags, err)
	}
	_, err = c.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/x")})
	apiErr(t, err, "InvalidParameterException", "")
	_, err = c.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String(""), Value: aws.String("v")}}})
	apiErr(t, err, "InvalidTagParameterException", "")

	// Delete.
	del, err := c.DeleteRepository(ctx, &sdk.DeleteRepositoryInput{RepositoryName: aws.String("c1")})
	if err != nil || aws.ToString(del.Repository.RepositoryName) != "c1" {
		t.Fatalf("DeleteRepository: %+v, %v", del, err)
	}
	_, err = c.DeleteRepository(ctx, &sdk.DeleteRepositoryInput{RepositoryName: aws.String("c1")})
	apiErr(t, err, "RepositoryNotFoundException", notFoundMessage("c1"))
}

// TestSDKPushAndImages pushes images with go-containerregistry, logged in
// with the token from GetAuthorizationToken, then works with them through
// the ECR API.
func TestSDKPushAndImages(t *testing.T) {
	e := newEnv(t)
	c := e.sdkClient(adminARN)
	ctx := context.Background()
	e.createRepository("team/app")

	tok, err := c.GetAuthorizationToken(ctx, &sdk.GetAuthorizationTokenInput{})
	if err != nil || len(tok.AuthorizationData) != 1 {
		t.Fatalf("GetAuthorizationToken: %+v, %v", tok, err)
	}
	ad := tok.AuthorizationData[0]
	if aws.ToString(ad.ProxyEndpoint) != "http://"+e.host || !aws.ToTime(ad.ExpiresAt).Equal(testStart.Add(12*time.Hour)) {
		t.Errorf("authorization data: endpoint %s expires %v", aws.ToString(ad.ProxyEndpoint), aws.ToTime(ad.ExpiresAt))
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	user, password, _ := strings.Cut(string(raw), ":")
	if user != "AWS" {
		t.Fatalf("user %q", user)
	}
	if p, err := ecr.VerifyToken(testTokenKey, password, e.clock.Now()); err != nil || p != adminARN {
		t.Fatalf("token is for %q (%v), want the caller", p, err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	push := func(ref string, img v1.Image) {
		t.Helper()
		r, err := name.ParseReference(e.host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img, auth); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	imgA, imgB, imgC := randomImage(t), randomImage(t), randomImage(t)
	dA, dB, dC := digestOf(t, imgA), digestOf(t, imgB), digestOf(t, imgC)
	push("team/app:v1", imgA)
	push("team/app:latest", imgA)
	push("team/app:v2", imgB)
	push("team/app@"+dC, imgC) // untagged

	// ListImages: one id per tag, untagged images by digest.
	var ids []types.ImageIdentifier
	lp := sdk.NewListImagesPaginator(c, &sdk.ListImagesInput{RepositoryName: aws.String("team/app"), MaxResults: aws.Int32(1)})
	for lp.HasMorePages() {
		out, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ImageIds) > 1 {
			t.Fatalf("page of %d with maxResults 1", len(out.ImageIds))
		}
		ids = append(ids, out.ImageIds...)
	}
	if got, want := idStrings(ids), sortedIDs(dA+":latest", dA+":v1", dB+":v2", dC+":"); !slices.Equal(got, want) {
		t.Errorf("ListImages = %v, want %v", got, want)
	}
	for status, want := range map[types.TagStatus][]string{
		types.TagStatusTagged:   sortedIDs(dA+":latest", dA+":v1", dB+":v2"),
		types.TagStatusUntagged: {dC + ":"},
	} {
		out, err := c.ListImages(ctx, &sdk.ListImagesInput{RepositoryName: aws.String("team/app"), Filter: &types.ListImagesFilter{TagStatus: status}})
		if err != nil || !slices.Equal(idStrings(out.ImageIds), want) {
			t.Errorf("ListImages %s = %v, %v; want %v", status, idStrings(out.ImageIds), err, want)
		}
	}

	// DescribeImages.
	all, err := c.DescribeImages(ctx, &sdk.DescribeImagesInput{RepositoryName: aws.String("team/app")})
	if err != nil || len(all.ImageDetails) != 3 {
		t.Fatalf("DescribeImages: %+v, %v", all, err)
	}
	mA, _ := imgA.Manifest()
	wantSize := mA.Config.Size
	for _, l := range mA.Layers {
		wantSize += l.Size
	}
	for _, d := range all.ImageDetails {
		if aws.ToString(d.RepositoryName) != "team/app" || aws.ToString(d.RegistryId) != testAccount || d.ImagePushedAt == nil ||
			aws.ToString(d.ImageManifestMediaType) != string(mA.MediaType) || aws.ToString(d.ArtifactMediaType) != string(mA.Config.MediaType) {
			t.Errorf("detail %+v", d)
		}
		if aws.ToString(d.ImageDigest) == dA && (!slices.Equal(d.ImageTags, []string{"latest", "v1"}) || aws.ToInt64(d.ImageSizeInBytes) != wantSize) {
			t.Errorf("image A: tags %v size %d, want [latest v1] %d", d.ImageTags, aws.ToInt64(d.ImageSizeInBytes), wantSize)
		}
	}
	one, err := c.DescribeImages(ctx, &sdk.DescribeImagesInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v2")}}})
	if err != nil || len(one.ImageDetails) != 1 || aws.ToString(one.ImageDetails[0].ImageDigest) != dB {
		t.Errorf("DescribeImages v2: %+v, %v", one, err)
	}
	_, err = c.DescribeImages(ctx, &sdk.DescribeImagesInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}})
	apiErr(t, err, "ImageNotFoundException", "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'team/app' in the registry with id '123456789012'")
	untagged, err := c.DescribeImages(ctx, &sdk.DescribeImagesInput{RepositoryName: aws.String("team/app"), Filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusUntagged}})
	if err != nil || len(untagged.ImageDetails) != 1 || aws.ToString(untagged.ImageDetails[0].ImageDigest) != dC || untagged.ImageDetails[0].ImageTags != nil {
		t.Errorf("DescribeImages UNTAGGED: %+v, %v", untagged, err)
	}

	// BatchGetImage, with ECR's failures.
	rawA, _ := imgA.RawManifest()
	got, err := c.BatchGetImage(ctx, &sdk.BatchGetImageInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{
		{ImageTag: aws.String("v1")},
		{ImageDigest: aws.String(dB)},
		{ImageTag: aws.String("nope")},
		{ImageTag: aws.String("v1"), ImageDigest: aws.String(dB)},
		{ImageDigest: aws.String("sha256:not hex")},
		{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Images) != 2 || aws.ToString(got.Images[0].ImageManifest) != string(rawA) ||
		aws.ToString(got.Images[0].ImageId.ImageDigest) != dA || aws.ToString(got.Images[0].ImageId.ImageTag) != "v1" ||
		aws.ToString(got.Images[1].ImageId.ImageDigest) != dB || got.Images[1].ImageId.ImageTag != nil {
		t.Errorf("BatchGetImage images: %+v", got.Images)
	}
	var codes []types.ImageFailureCode
	for _, f := range got.Failures {
		codes = append(codes, f.FailureCode)
	}
	if want := []types.ImageFailureCode{types.ImageFailureCodeImageNotFound, types.ImageFailureCodeImageTagDoesNotMatchDigest, types.ImageFailureCodeInvalidImageDigest, types.ImageFailureCodeMissingDigestAndTag}; !slices.Equal(codes, want) {
		t.Errorf("failure codes %v, want %v", codes, want)
	}
	if aws.ToString(got.Failures[0].FailureReason) != "Requested image not found" || aws.ToString(got.Failures[0].ImageId.ImageTag) != "nope" {
		t.Errorf("not-found failure: %+v", got.Failures[0])
	}
	accepted, err := c.BatchGetImage(ctx, &sdk.BatchGetImageInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}},
		AcceptedMediaTypes: []string{"application/vnd.docker.distribution.manifest.v1+json"}})
	if err != nil || len(accepted.Images) != 0 || len(accepted.Failures) != 1 {
		t.Errorf("BatchGetImage with a media type the image is not: %+v, %v", accepted, err)
	}

	// PutImage: a new tag on an existing manifest (retag), then the same
	// again.
	put, err := c.PutImage(ctx, &sdk.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawA)), ImageTag: aws.String("v3")})
	if err != nil || aws.ToString(put.Image.ImageId.ImageDigest) != dA || aws.ToString(put.Image.ImageManifestMediaType) != string(mA.MediaType) {
		t.Fatalf("PutImage retag: %+v, %v", put, err)
	}
	_, err = c.PutImage(ctx, &sdk.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawA)), ImageTag: aws.String("v3")})
	apiErr(t, err, "ImageAlreadyExistsException", "Image with digest '"+dA+"' and tag 'v3' already exists in the repository with name 'team/app' in registry with id '123456789012'")
	_, err = c.PutImage(ctx, &sdk.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawA)), ImageTag: aws.String("v4"), ImageDigest: aws.String(dB)})
	apiErr(t, err, "ImageDigestDoesNotMatchException", "")
	// A manifest whose layers are not in the repository.
	rawX, _ := randomImage(t).RawManifest()
	_, err = c.PutImage(ctx, &sdk.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawX)), ImageTag: aws.String("x")})
	apiErr(t, err, "LayersNotFoundException", "")
	// In an IMMUTABLE repository an existing tag cannot move.
	if _, err := c.PutImageTagMutability(ctx, &sdk.PutImageTagMutabilityInput{RepositoryName: aws.String("team/app"), ImageTagMutability: types.ImageTagMutabilityImmutable}); err != nil {
		t.Fatal(err)
	}
	rawB, _ := imgB.RawManifest()
	_, err = c.PutImage(ctx, &sdk.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(string(rawB)), ImageTag: aws.String("v1")})
	apiErr(t, err, "ImageTagAlreadyExistsException", "The image tag 'v1' already exists in the 'team/app' repository and cannot be overwritten because the tag is immutable.")
	if _, err := c.PutImageTagMutability(ctx, &sdk.PutImageTagMutabilityInput{RepositoryName: aws.String("team/app"), ImageTagMutability: types.ImageTagMutabilityMutable}); err != nil {
		t.Fatal(err)
	}

	// BatchCheckLayerAvailability.
	layer := mA.Layers[0]
	missing := "sha256:" + strings.Repeat("0", 64)
	layers, err := c.BatchCheckLayerAvailability(ctx, &sdk.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String("team/app"), LayerDigests: []string{layer.Digest.String(), missing, "bogus"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(layers.Layers) != 2 || layers.Layers[0].LayerAvailability != types.LayerAvailabilityAvailable || aws.ToInt64(layers.Layers[0].LayerSize) != layer.Size ||
		layers.Layers[1].LayerAvailability != types.LayerAvailabilityUnavailable ||
		len(layers.Failures) != 1 || layers.Failures[0].FailureCode != types.LayerFailureCodeInvalidLayerDigest {
		t.Errorf("BatchCheckLayerAvailability: %+v", layers)
	}

	// BatchDeleteImage: a tag, then a digest with all its tags.
	dels, err := c.BatchDeleteImage(ctx, &sdk.BatchDeleteImageInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{
		{ImageTag: aws.String("latest")}, {ImageDigest: aws.String(dB)}, {ImageTag: aws.String("gone")},
	}})
	if err != nil || len(dels.ImageIds) != 2 || len(dels.Failures) != 1 || dels.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound {
		t.Fatalf("BatchDeleteImage: %+v, %v", dels, err)
	}
	after, _ := c.ListImages(ctx, &sdk.ListImagesInput{RepositoryName: aws.String("team/app")})
	if got, want := idStrings(after.ImageIds), sortedIDs(dA+":v1", dA+":v3", dC+":"); !slices.Equal(got, want) {
		t.Errorf("after deletes: %v, want %v", got, want)
	}

	// DeleteRepository: refused while images remain, unless forced.
	_, err = c.DeleteRepository(ctx, &sdk.DeleteRepositoryInput{RepositoryName: aws.String("team/app")})
	apiErr(t, err, "RepositoryNotEmptyException", "The repository with name 'team/app' in registry with id '123456789012' cannot be deleted because it still contains images")
	if _, err := c.DeleteRepository(ctx, &sdk.DeleteRepositoryInput{RepositoryName: aws.String("team/app"), Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ListImages(ctx, &sdk.ListImagesInput{RepositoryName: aws.String("team/app")})
	apiErr(t, err, "RepositoryNotFoundException", notFoundMessage("team/app"))
	// The registry refuses pushes to it too, and a new repository of the
	// same name starts empty.
	r, _ := name.ParseReference(e.host+"/team/app:v9", name.Insecure)
	if err := remote.Write(r, imgA, auth); err == nil {
		t.Error("push to a deleted repository succeeded")
	}
	e.createRepository("team/app")
	if has, err := e.reg.HasImages(ctx, "team/app"); err != nil || has {
		t.Errorf("recreated repository has images: %v, %v", has, err)
	}
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func idStrings(ids []types.ImageIdentifier) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, aws.ToString(id.ImageDigest)+":"+aws.ToString(id.ImageTag))
	}
	return out
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
