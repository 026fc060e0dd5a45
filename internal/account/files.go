package account

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Profile is the AWS CLI profile berth writes.
const Profile = "berth"

// Files are the paths of the shared AWS files in a data directory.
type Files struct {
	Credentials string
	Config      string
	// CABundle, when set, is the CA certificate a TLS-serving server's
	// certificate chains to (DATA/tls/ca.pem); the config file names it as
	// ca_bundle, which the AWS CLI and SDKs honour. Empty for plain HTTP.
	CABundle string
}

// FilesIn returns the shared-file paths inside dataDir (CABundle unset:
// the server sets it when it serves TLS).
func FilesIn(dataDir string) Files {
	return Files{Credentials: filepath.Join(dataDir, "credentials"), Config: filepath.Join(dataDir, "config")}
}

// Owner is who may read the shared files besides the server's own user:
// berth started with sudo hands them to the user who ran sudo, so that the
// pasted lines work in that user's shell.
type Owner struct {
	UID, GID int
}

// WriteProfileFiles writes DATA/credentials and DATA/config in the AWS
// shared-file format, profile "berth", readable by their owner only. They
// are rewritten at every start from the stored key, so the endpoint they
// name is always the current one. With owner set, the files belong to that
// user and the data directory becomes traversable (0711, not listable) so
// the user can reach them; everything else in it stays the server's.
func WriteProfileFiles(f Files, acct Account, key AccessKey, endpointURL string, owner *Owner) error {
	creds := fmt.Sprintf(`# Written by berth: the admin access key of account %s.
[%s]
aws_access_key_id = %s
aws_secret_access_key = %s
`, acct.ID, Profile, key.AccessKeyID, key.SecretAccessKey)
	conf := fmt.Sprintf(`# Written by berth at every start.
[profile %s]
region = %s
output = json
endpoint_url = %s
`, Profile, acct.Region, endpointURL)
	if f.CABundle != "" {
		conf += fmt.Sprintf("ca_bundle = %s\n", f.CABundle)
	}
	for path, content := range map[string]string{f.Credentials: creds, f.Config: conf} {
		if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
			return err
		}
		if owner != nil {
			if err := os.Chown(path, owner.UID, owner.GID); err != nil {
				return errdefs.Internal(err)
			}
		}
	}
	if owner != nil {
		if err := os.Chmod(filepath.Dir(f.Credentials), 0o711); err != nil {
			return errdefs.Internal(err)
		}
	}
	return nil
}

// PasteLines returns the shell lines a user pastes to point the AWS CLI at
// berth.
func PasteLines(f Files, endpointURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "export AWS_SHARED_CREDENTIALS_FILE=%s AWS_CONFIG_FILE=%s AWS_PROFILE=%s\n", f.Credentials, f.Config, Profile)
	fmt.Fprintf(&b, "export AWS_ENDPOINT_URL=%s\n", endpointURL)
	fmt.Fprintf(&b, "aws --endpoint-url %s ecs list-clusters\n", endpointURL)
	return b.String()
}

// ReadCredentials reads the access key of profile "berth" back from a
// credentials file written by WriteProfileFiles (tools and tests use it).
func ReadCredentials(path string) (accessKeyID, secret string, err error) {
	kv, err := readSection(path, "["+Profile+"]")
	if err != nil {
		return "", "", err
	}
	accessKeyID, secret = kv["aws_access_key_id"], kv["aws_secret_access_key"]
	if accessKeyID == "" || secret == "" {
		return "", "", errdefs.InvalidArgument(path + ": no access key for profile " + Profile)
	}
	return accessKeyID, secret, nil
}

// ReadConfig reads the region and endpoint URL of profile "berth" back from
// a config file written by WriteProfileFiles.
func ReadConfig(path string) (region, endpointURL string, err error) {
	p, err := ReadProfileConfig(path)
	return p.Region, p.EndpointURL, err
}

// ProfileConfig is what profile "berth" of DATA/config says.
type ProfileConfig struct {
	Region, EndpointURL string
	// CABundle is the ca_bundle path; empty when the server serves plain
	// HTTP.
	CABundle string
}

// ReadProfileConfig reads profile "berth" back from a config file written
// by WriteProfileFiles (`berth token create` finds and trusts a running
// server through it).
func ReadProfileConfig(path string) (ProfileConfig, error) {
	kv, err := readSection(path, "[profile "+Profile+"]")
	if err != nil {
		return ProfileConfig{}, err
	}
	p := ProfileConfig{Region: kv["region"], EndpointURL: kv["endpoint_url"], CABundle: kv["ca_bundle"]}
	if p.Region == "" || p.EndpointURL == "" {
		return ProfileConfig{}, errdefs.InvalidArgument(path + ": no region or endpoint_url for profile " + Profile)
	}
	return p, nil
}

// readSection returns the key = value pairs of one [section] of an AWS
// shared file.
func readSection(path, header string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			in = line == header
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && in {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out, nil
}
