// Package ecr is berth's ECR domain: the repository record and its store
// keys, ECR's validation rules and error texts, the authorization tokens
// that GetAuthorizationToken issues and the registry accepts, repository and
// lifecycle policies (validation, and the lifecycle evaluator), and the
// image values the registry's storage view reports. It does no I/O:
// the ECR API reads and writes the records through the store, the registry
// (internal/registry) serves the images.
package ecr

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	awsarn "github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/berth-dev/berth/internal/arn"
)

// Namespace is the ARN service namespace of ECR.
const Namespace = "ecr"

// Image tag mutability settings.
const (
	TagMutable   = "MUTABLE"
	TagImmutable = "IMMUTABLE"
)

// Encryption types ECR records for a repository.
const (
	EncryptionAES256  = "AES256"
	EncryptionKMS     = "KMS"
	EncryptionKMSDSSE = "KMS_DSSE"
)

// Repository is the record of one ECR repository. Images themselves live
// in the registry's storage, not here.
type Repository struct {
	Name       string    `json:"name"`
	ARN        string    `json:"arn"`
	RegistryID string    `json:"registryId"` // the account id
	URI        string    `json:"uri"`        // <registry host>/<name>
	CreatedAt  time.Time `json:"createdAt"`
	// ImageTagMutability is TagMutable or TagImmutable; empty reads as
	// mutable.
	ImageTagMutability         string                     `json:"imageTagMutability,omitempty"`
	ImageScanningConfiguration ImageScanningConfiguration `json:"imageScanningConfiguration"`
	// EncryptionConfiguration is recorded and reported; the filesystem
	// storage does not encrypt (DESIGN.md §13).
	EncryptionConfiguration EncryptionConfiguration `json:"encryptionConfiguration"`
	Tags                    []Tag                   `json:"tags,omitempty"`
	// Policy is the repository policy text (SetRepositoryPolicy), "" when
	// none is set.
	Policy string `json:"policy,omitempty"`
	// LifecyclePolicy is the lifecycle policy text, "" when none is set.
	LifecyclePolicy string `json:"lifecyclePolicy,omitempty"`
}

// Immutable reports whether pushes may not move an existing tag.
func (r *Repository) Immutable() bool { return r.ImageTagMutability == TagImmutable }

// ImageScanningConfiguration is recorded only: berth does not scan.
type ImageScanningConfiguration struct {
	ScanOnPush bool `json:"scanOnPush"`
}

// EncryptionConfiguration of a repository.
type EncryptionConfiguration struct {
	EncryptionType string `json:"encryptionType"`
	KMSKey         string `json:"kmsKey,omitempty"`
}

// Tag is a resource tag of a repository.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// NewRepository returns the record of a new repository with ECR's defaults
// (MUTABLE tags, AES256 encryption, no scan on push). host is the registry
// host clients push to (host[:port]), which makes repositoryUri.
func NewRepository(region, accountID, host, name string, now time.Time) Repository {
	return Repository{
		Name:                    name,
		ARN:                     RepositoryARN(region, accountID, name),
		RegistryID:              accountID,
		URI:                     RepositoryURI(host, name),
		CreatedAt:               now.UTC(),
		ImageTagMutability:      TagMutable,
		EncryptionConfiguration: EncryptionConfiguration{EncryptionType: EncryptionAES256},
	}
}

// RepositoryARN returns arn:aws:ecr:<region>:<account>:repository/<name>.
func RepositoryARN(region, accountID, name string) string {
	return awsarn.ARN{
		Partition: arn.Partition(region),
		Service:   Namespace,
		Region:    region,
		AccountID: accountID,
		Resource:  "repository/" + name,
	}.String()
}

// RepositoryURI returns <host>/<name>, what `docker push` accepts.
func RepositoryURI(host, name string) string { return host + "/" + name }

// RegistryHost returns AWS's registry host name of an account and region,
// <account>.dkr.ecr.<region>.amazonaws.com. berth serves its registry on its
// own endpoint; this is for messages and the challenge realm when no host is
// configured.
func RegistryHost(accountID, region string) string {
	return accountID + ".dkr.ecr." + region + ".amazonaws.com"
}

// The store key layout of the ECR domain, under /v1/ecr/. Repository names
// contain slashes, so keys hold them path-escaped ('/' becomes %2F): a
// prefix listing of RepositoriesPrefix never spills into a namespace, and
// "a" is never a prefix of "a/b"'s key segment.
const (
	keyRoot = "/v1/ecr/"
	// RepositoriesPrefix holds one Repository record per repository.
	RepositoriesPrefix = keyRoot + "repositories/"
)

// RepositoryKey is the key of a repository's record.
func RepositoryKey(name string) string { return RepositoriesPrefix + url.PathEscape(name) }

// RepositoryNameFromKey inverts RepositoryKey.
func RepositoryNameFromKey(key string) (string, bool) {
	esc, ok := strings.CutPrefix(key, RepositoriesPrefix)
	if !ok || esc == "" {
		return "", false
	}
	name, err := url.PathUnescape(esc)
	return name, err == nil
}

// RepositoryNamePattern is ECR's pattern of repository names.
const RepositoryNamePattern = `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`

var repositoryNameRE = regexp.MustCompile(`^` + RepositoryNamePattern + `$`)

// Name length bounds of repositories.
const (
	MinRepositoryNameLength = 2
	MaxRepositoryNameLength = 256
)

// ValidateRepositoryName checks a repository name as ECR does, with its
// InvalidParameterException text.
func ValidateRepositoryName(name string) error {
	switch {
	case len(name) < MinRepositoryNameLength:
		return invalidConstraint("repositoryName", fmt.Sprintf("must have length greater than or equal to %d", MinRepositoryNameLength))
	case len(name) > MaxRepositoryNameLength:
		return invalidConstraint("repositoryName", fmt.Sprintf("must have length less than or equal to %d", MaxRepositoryNameLength))
	case !repositoryNameRE.MatchString(name):
		return invalidConstraint("repositoryName", "must satisfy regular expression '"+RepositoryNamePattern+"'")
	}
	return nil
}

// ValidateImageTagMutability accepts MUTABLE and IMMUTABLE.
func ValidateImageTagMutability(v string) error {
	if v == TagMutable || v == TagImmutable {
		return nil
	}
	return invalidConstraint("imageTagMutability", "must be one of [MUTABLE, IMMUTABLE]")
}

// ValidateEncryptionConfiguration checks what CreateRepository records.
func ValidateEncryptionConfiguration(c EncryptionConfiguration) error {
	switch c.EncryptionType {
	case EncryptionAES256:
		if c.KMSKey != "" {
			return InvalidParameter("Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: 'kmsKey can only be specified when encryptionType is KMS or KMS_DSSE'")
		}
	case EncryptionKMS, EncryptionKMSDSSE:
	default:
		return invalidConstraint("encryptionType", "must be one of [AES256, KMS, KMS_DSSE]")
	}
	return nil
}

func invalidConstraint(field, constraint string) error {
	return InvalidParameter("Invalid parameter at '" + field + "' failed to satisfy constraint: '" + constraint + "'")
}
