package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/account"
)

// adminCreds reads the access key berth wrote into the data directory.
func (in *instance) adminCreds() aws.Credentials {
	in.t.Helper()
	id, secret, err := account.ReadCredentials(filepath.Join(in.dataDir, "credentials"))
	if err != nil {
		in.t.Fatal(err)
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
}

func (in *instance) ecsClient(creds aws.Credentials) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(in.endpoint),
		Credentials:      aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		RetryMaxAttempts: 1,
	})
}

func TestSDKClustersAndTaskDefinitions(t *testing.T) {
	b := startBerth(t, t.TempDir())
	ctx := context.Background()
	c := b.ecsClient(b.adminCreds())

	out, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("sdk"),
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Cluster.Status) != "ACTIVE" || !strings.HasSuffix(aws.ToString(out.Cluster.ClusterArn), ":cluster/sdk") {
		t.Fatalf("create: %+v", out.Cluster)
	}
	// Default cluster when no name is given.
	def, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{})
	if err != nil || aws.ToString(def.Cluster.ClusterName) != "default" {
		t.Fatalf("create default: %v %+v", err, def)
	}
	desc, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"sdk", "missing"},
		Include: []types.ClusterField{types.ClusterFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Clusters) != 1 || len(desc.Clusters[0].Tags) != 1 || len(desc.Failures) != 1 || aws.ToString(desc.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe: %+v", desc)
	}

	var names []string
	p := ecs.NewListClustersPaginator(c, &ecs.ListClustersInput{MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, page.ClusterArns...)
	}
	if len(names) != 2 {
		t.Errorf("paginated clusters: %v", names)
	}

	_, err = c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("nope")})
	var cnf *types.ClusterNotFoundException
	if !errors.As(err, &cnf) || cnf.ErrorMessage() != "Cluster not found." {
		t.Errorf("delete unknown: %v", err)
	}

	// Task definitions, including DeleteTaskDefinitions (which Debian's
	// awscli 2.9.19 predates).
	reg := func() *types.TaskDefinition {
		out, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String("sdk-td"),
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String("app"), Image: aws.String("registry.local/app:1"), Memory: aws.Int32(64),
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.TaskDefinition
	}
	td1, td2 := reg(), reg()
	if td1.Revision != 1 || td2.Revision != 2 || td1.RegisteredAt == nil || time.Since(*td1.RegisteredAt) > time.Minute {
		t.Fatalf("revisions/registeredAt: %d %d %v", td1.Revision, td2.Revision, td1.RegisteredAt)
	}
	_, err = c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"sdk-td:1"}})
	if err != nil {
		t.Fatalf("delete ACTIVE: %v", err)
	}
	if _, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("sdk-td:1")}); err != nil {
		t.Fatal(err)
	}
	del, err := c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"sdk-td:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.TaskDefinitions) != 1 || del.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress {
		t.Errorf("delete INACTIVE: %+v", del)
	}
	if td3 := reg(); td3.Revision != 3 {
		t.Errorf("revision after delete: %d, want 3", td3.Revision)
	}
	_, err = c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("bad"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("x"), Memory: aws.Int32(64)}},
	})
	var ce *types.ClientException
	if !errors.As(err, &ce) || ce.ErrorMessage() != "Container.image should not be null or empty." {
		t.Errorf("invalid definition: %v", err)
	}
}

func TestSDKAuthentication(t *testing.T) {
	b := startBerth(t, t.TempDir())
	ctx := context.Background()
	good := b.adminCreds()

	bad := good
	// Change the first character (to one it is not: a secret may start with x).
	bad.SecretAccessKey = map[bool]string{true: "y", false: "x"}[good.SecretAccessKey[0] == 'x'] + good.SecretAccessKey[1:]
	_, err := b.ecsClient(bad).ListClusters(ctx, &ecs.ListClustersInput{})
	if code := apiCode(err); code != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v", err)
	}
	_, err = b.ecsClient(aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: "s"}).ListClusters(ctx, &ecs.ListClustersInput{})
	if code := apiCode(err); code != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v", err)
	}

	// Raw requests for what an SDK will not send on its own.
	send := func(target, body string, signAt time.Time, sign bool) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, b.endpoint+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		if sign {
			sum := sha256.Sum256([]byte(body))
			if err := v4.NewSigner().SignHTTP(ctx, good, req, hex.EncodeToString(sum[:]), "ecs", "us-east-1", signAt); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		raw := readAll(t, resp.Body)
		_ = json.Unmarshal([]byte(raw), &env)
		if resp.Header.Get("x-amzn-RequestId") == "" {
			t.Errorf("%s: no x-amzn-RequestId header", target)
		}
		return resp.StatusCode, env.Type, env.Message
	}
	const list = "AmazonEC2ContainerServiceV20141113.ListClusters"
	if status, code, _ := send(list, "{}", time.Now(), false); status != 403 || code != "MissingAuthenticationTokenException" {
		t.Errorf("no signature: %d %s", status, code)
	}
	status, code, msg := send(list, "{}", time.Now().Add(-10*time.Minute), true)
	if status != 403 || code != "InvalidSignatureException" || !strings.HasPrefix(msg, "Signature expired") {
		t.Errorf("stale date: %d %s %q", status, code, msg)
	}
	if status, code, _ := send(list, "{}", time.Now(), true); status != 200 || code != "" {
		t.Errorf("good raw request: %d %s", status, code)
	}
	if status, code, _ := send("AmazonEC2ContainerServiceV20141113.NoSuchAction", "{}", time.Now(), true); status != 400 || code != "UnknownOperationException" {
		t.Errorf("unknown operation: %d %s", status, code)
	}
	if status, code, _ := send(list, "{not json", time.Now(), true); status != 400 || code != "SerializationException" {
		t.Errorf("malformed JSON: %d %s", status, code)
	}
	big := `{"clusterName":"` + strings.Repeat("a", 11<<20) + `"}`
	if status, _, _ := send("AmazonEC2ContainerServiceV20141113.CreateCluster", big, time.Now(), true); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", status)
	}
}

func apiCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
