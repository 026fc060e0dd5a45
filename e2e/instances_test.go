package e2e

import (
	"strings"
	"testing"
)

// TestCLIContainerInstancesAndTasks drives the container-instance and task
// actions through the real CLI. No agent runs yet, so the instance never
// connects: RunTask places nothing and says AGENT, as ECS does for an
// instance whose agent is disconnected.
func TestCLIContainerInstancesAndTasks(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())
	b.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", "work")
	b.awsJSON(nil, "ecs", "register-task-definition", "--family", "web", "--container-definitions", webContainers)

	// No instance at all: ECS's InvalidParameterException.
	b.awsFails("InvalidParameterException", "No Container Instances were found in your cluster.",
		"ecs", "run-task", "--cluster", "work", "--task-definition", "web")

	var reg struct {
		ContainerInstance struct {
			ContainerInstanceArn string
			Status               string
			AgentConnected       bool
			RegisteredResources  []struct {
				Name         string
				IntegerValue int
			}
			Attributes []struct{ Name, Value string }
		}
	}
	b.awsJSON(&reg, "ecs", "register-container-instance", "--cluster", "work",
		"--total-resources", "name=CPU,type=INTEGER,integerValue=2048", "name=MEMORY,type=INTEGER,integerValue=4096",
		"--attributes", "name=ecs.os-type,value=linux", "name=stack,value=blue")
	ci := reg.ContainerInstance
	if !strings.Contains(ci.ContainerInstanceArn, ":container-instance/work/") || ci.Status != "ACTIVE" || ci.AgentConnected {
		t.Fatalf("register-container-instance: %+v", ci)
	}
	cpu := 0
	for _, r := range ci.RegisteredResources {
		if r.Name == "CPU" {
			cpu = r.IntegerValue
		}
	}
	if cpu != 2048 {
		t.Errorf("registered CPU %d, want 2048", cpu)
	}

	var list struct{ ContainerInstanceArns []string }
	b.awsJSON(&list, "ecs", "list-container-instances", "--cluster", "work", "--filter", "attribute:stack == blue")
	if len(list.ContainerInstanceArns) != 1 {
		t.Errorf("filter stack == blue: %v", list.ContainerInstanceArns)
	}
	b.awsJSON(&list, "ecs", "list-container-instances", "--cluster", "work", "--filter", "attribute:stack == green")
	if len(list.ContainerInstanceArns) != 0 {
		t.Errorf("filter stack == green: %v", list.ContainerInstanceArns)
	}

	b.awsJSON(nil, "ecs", "put-attributes", "--cluster", "work", "--attributes",
		"name=rack,value=r1,targetType=container-instance,targetId="+ci.ContainerInstanceArn)
	var attrs struct {
		Attributes []struct{ Name, Value string }
	}
	b.awsJSON(&attrs, "ecs", "list-attributes", "--cluster", "work", "--target-type", "container-instance", "--attribute-name", "rack")
	if len(attrs.Attributes) != 1 || attrs.Attributes[0].Value != "r1" {
		t.Errorf("list-attributes rack: %+v", attrs)
	}

	// The instance exists but its agent is not connected: failures, AGENT.
	var run struct {
		Tasks    []struct{ TaskArn string }
		Failures []failure
	}
	b.awsJSON(&run, "ecs", "run-task", "--cluster", "work", "--task-definition", "web", "--count", "2")
	if len(run.Tasks) != 0 || len(run.Failures) == 0 || run.Failures[0].Reason != "AGENT" {
		t.Errorf("run-task with a disconnected agent: %+v", run)
	}

	var upd struct {
		ContainerInstances []struct{ Status string }
	}
	b.awsJSON(&upd, "ecs", "update-container-instances-state", "--cluster", "work",
		"--container-instances", ci.ContainerInstanceArn, "--status", "DRAINING")
	if len(upd.ContainerInstances) != 1 || upd.ContainerInstances[0].Status != "DRAINING" {
		t.Errorf("update-container-instances-state: %+v", upd)
	}
	var desc struct {
		ContainerInstances []struct {
			Status         string
			AgentConnected bool
		}
		Failures []failure
	}
	b.awsJSON(&desc, "ecs", "describe-container-instances", "--cluster", "work",
		"--container-instances", ci.ContainerInstanceArn, "0123456789abcdef0123456789abcdef")
	if len(desc.ContainerInstances) != 1 || desc.ContainerInstances[0].Status != "DRAINING" ||
		len(desc.Failures) != 1 || desc.Failures[0].Reason != "MISSING" {
		t.Errorf("describe-container-instances: %+v", desc)
	}

	var tasks struct{ TaskArns []string }
	b.awsJSON(&tasks, "ecs", "list-tasks", "--cluster", "work")
	if len(tasks.TaskArns) != 0 {
		t.Errorf("list-tasks: %v", tasks.TaskArns)
	}
	var dt struct{ Failures []failure }
	b.awsJSON(&dt, "ecs", "describe-tasks", "--cluster", "work", "--tasks", "0123456789abcdef0123456789abcdef")
	if len(dt.Failures) != 1 || dt.Failures[0].Reason != "MISSING" {
		t.Errorf("describe-tasks of an unknown task: %+v", dt)
	}

	var dereg struct{ ContainerInstance struct{ Status string } }
	b.awsJSON(&dereg, "ecs", "deregister-container-instance", "--cluster", "work", "--container-instance", ci.ContainerInstanceArn)
	if dereg.ContainerInstance.Status != "INACTIVE" {
		t.Errorf("deregister: %+v", dereg)
	}
	// With the instance gone and no tasks, the cluster can be deleted.
	b.awsJSON(nil, "ecs", "delete-cluster", "--cluster", "work")
}
