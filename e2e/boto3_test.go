package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// boto3Script drives ECS services and ECR through boto3 (Debian package
// python3-boto3) as a Python user would: botocore's own waiters included.
const boto3Script = `
import base64, sys, boto3
s = boto3.session.Session()
ecs = s.client("ecs", endpoint_url=sys.argv[1])
ecr = s.client("ecr", endpoint_url=sys.argv[1])

ecs.register_task_definition(family="py", containerDefinitions=[{
    "name": "app", "image": "nginx:1.27", "memory": 64,
    "healthCheck": {"command": ["CMD", "true"], "interval": 5, "timeout": 2, "retries": 1}}])
svc = ecs.create_service(cluster="boto", serviceName="py", taskDefinition="py", desiredCount=3)["service"]
assert svc["status"] == "ACTIVE" and svc["deployments"][0]["status"] == "PRIMARY", svc
ecs.get_waiter("services_stable").wait(cluster="boto", services=["py"], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
d = ecs.describe_services(cluster="boto", services=["py", "nope"])
assert d["services"][0]["runningCount"] == 3, d
assert d["failures"][0]["reason"] == "MISSING", d
arns = ecs.list_services(cluster="boto")["serviceArns"]
assert any(a.endswith("/boto/py") for a in arns), arns
ecs.update_service(cluster="boto", service="py", desiredCount=0)
ecs.delete_service(cluster="boto", service="py")
ecs.get_waiter("services_inactive").wait(cluster="boto", services=["py"], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
try:
    ecs.update_service(cluster="boto", service="py", desiredCount=1)
    raise SystemExit("update of a deleted service succeeded")
except ecs.exceptions.ServiceNotActiveException:
    pass

repo = ecr.create_repository(repositoryName="py/app")["repository"]
assert repo["repositoryUri"].endswith("/py/app"), repo
try:
    ecr.create_repository(repositoryName="py/app")
    raise SystemExit("a second create succeeded")
except ecr.exceptions.RepositoryAlreadyExistsException:
    pass
tok = ecr.get_authorization_token()["authorizationData"][0]
user, _, pw = base64.b64decode(tok["authorizationToken"]).decode().partition(":")
assert user == "AWS" and pw and tok["expiresAt"], tok
assert ecr.describe_images(repositoryName="py/app")["imageDetails"] == []
ecr.delete_repository(repositoryName="py/app")
print("ok")
`

// TestBoto3ServicesAndRegistry runs boto3 against berth with simulated
// agents: services (waiters, MISSING failures, ServiceNotActiveException)
// and ECR (repositories, authorization tokens, modelled exceptions).
func TestBoto3ServicesAndRegistry(t *testing.T) {
	cliAvailable(t)
	_, err := exec.Command("python3", "-c", "import boto3").CombinedOutput()
	requirePrereq(t, "python3 with boto3 (Debian package python3-boto3)", err == nil)
	b := startBerth(t, t.TempDir())
	b.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", "boto")
	b.startSimulation("boto", 2, 4096, 4096, "us-east-1a,us-east-1b")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-c", boto3Script, b.endpoint)
	cmd.Env = b.awsEnv("AWS_DEFAULT_REGION=us-east-1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "ok") {
		t.Fatalf("boto3: %v\n%s\nberth output:\n%s", err, out.String(), b.output.String())
	}
}
