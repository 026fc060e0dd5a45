package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// simulation is one `berth agent --simulated N` process.
type simulation struct {
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan error
}

// startSimulation joins cluster with a fresh token and runs n simulated
// container instances (cpu units and MiB each, zones dealt round-robin),
// with env's ECS_* settings; it waits until the server sees every one of
// them connected. Cleanup interrupts it, which deregisters them.
func (in *instance) startSimulation(cluster string, n, cpu, memory int, zones string, env ...string) *simulation {
	t := in.t
	t.Helper()
	// Instances already connected to the cluster (a local agent) count
	// apart from the simulated ones.
	connected := func() int {
		var list struct{ ContainerInstanceArns []string }
		res := in.aws("ecs", "list-container-instances", "--cluster", cluster, "--filter", "agentConnected == true")
		if res.code != 0 || json.Unmarshal([]byte(res.stdout), &list) != nil {
			return -1
		}
		return len(list.ContainerInstanceArns)
	}
	before := connected()
	tok := exec.Command(binary, "token", "create", "--data-dir", in.dataDir, "--cluster", cluster)
	var stderr bytes.Buffer
	tok.Stderr = &stderr
	token, err := tok.Output()
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, stderr.String())
	}
	conf := filepath.Join(t.TempDir(), "ecs.config")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &simulation{output: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(binary, "agent", "--config", conf, "--token", strings.TrimSpace(string(token)), "--log-level", "warn",
		"--simulated", fmt.Sprint(n), "--simulated-cpu", fmt.Sprint(cpu), "--simulated-memory", fmt.Sprint(memory), "--simulated-zones", zones)
	s.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("berth agent --simulated exited with %v\n%s", err, s.output.String())
			}
		case <-time.After(60 * time.Second):
			_ = s.cmd.Process.Kill()
			t.Errorf("berth agent --simulated did not stop within 60s of SIGINT\n%s", s.output.String())
		}
	})
	waitFor(t, 60*time.Second, fmt.Sprintf("%d simulated instances connected", n), func() bool {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("berth agent --simulated exited: %v\n%s", err, s.output.String())
		default:
		}
		return connected() == before+n
	})
	return s
}

// simInstance is what the placement test needs of an instance.
type simInstance struct {
	arn, id, zone, tier, stack string
	index                      int
}

// TestPlacementWithTheCLI runs six simulated container instances (three
// zones; ECS_INSTANCE_ATTRIBUTES adds stack=blue; PutAttributes gives the
// first three tier=small, the others tier=large) and checks that run-task
// with --placement-strategy and --placement-constraints lands where ECS
// would, that an impossible task returns failures with ECS's reason and
// berth's explanation, and that `berth explain-placement` with the same
// arguments prints the same explanation without placing anything.
func TestPlacementWithTheCLI(t *testing.T) {
	cliAvailable(t)
	b := startBerth(t, t.TempDir())
	const cluster = "place"
	b.awsJSON(nil, "ecs", "create-cluster", "--cluster-name", cluster)
	b.startSimulation(cluster, 6, 4096, 4096, "za,zb,zc", `ECS_INSTANCE_ATTRIBUTES={"stack":"blue"}`)
	b.registerTaskDef("small", `[{"name":"app","image":"nginx","cpu":128,"memory":256}]`)
	b.registerTaskDef("huge", `[{"name":"app","image":"nginx","memory":100000}]`)

	// The instances, by berth.simulated-index.
	var list struct{ ContainerInstanceArns []string }
	b.awsJSON(&list, "ecs", "list-container-instances", "--cluster", cluster)
	var desc struct {
		ContainerInstances []struct {
			ContainerInstanceArn string
			Attributes           []struct{ Name, Value string }
		}
	}
	b.awsJSON(&desc, append([]string{"ecs", "describe-container-instances", "--cluster", cluster, "--container-instances"}, list.ContainerInstanceArns...)...)
	insts := make([]simInstance, 6)
	for _, ci := range desc.ContainerInstances {
		s := simInstance{arn: ci.ContainerInstanceArn, id: ci.ContainerInstanceArn[strings.LastIndex(ci.ContainerInstanceArn, "/")+1:], index: -1}
		for _, a := range ci.Attributes {
			switch a.Name {
			case "berth.simulated-index":
				fmt.Sscan(a.Value, &s.index)
			case "ecs.availability-zone":
				s.zone = a.Value
			case "stack":
				s.stack = a.Value
			}
		}
		if s.index < 0 || s.index > 5 || insts[s.index].arn != "" || s.stack != "blue" {
			t.Fatalf("instance %s: %+v", ci.ContainerInstanceArn, ci.Attributes)
		}
		insts[s.index] = s
	}
	for i := range insts {
		insts[i].tier = "small"
		if i >= 3 {
			insts[i].tier = "large"
		}
		b.awsJSON(nil, "ecs", "put-attributes", "--cluster", cluster, "--attributes",
			"name=tier,value="+insts[i].tier+",targetType=container-instance,targetId="+insts[i].arn)
	}
	byARN := map[string]simInstance{}
	for _, s := range insts {
		byARN[s.arn] = s
	}

	// run places with the CLI and returns the instances the tasks went to.
	run := func(args ...string) ([]simInstance, []failure) {
		t.Helper()
		var out struct {
			Tasks    []struct{ TaskArn, ContainerInstanceArn string }
			Failures []failure
		}
		b.awsJSON(&out, append([]string{"ecs", "run-task", "--cluster", cluster}, args...)...)
		var on []simInstance
		for _, task := range out.Tasks {
			on = append(on, byARN[task.ContainerInstanceArn])
		}
		return on, out.Failures
	}

	t.Run("spread over zones", func(t *testing.T) {
		on, fails := run("--task-definition", "small", "--count", "5", "--group", "spread",
			"--placement-strategy", "type=spread,field=attribute:ecs.availability-zone", "type=spread,field=instanceId")
		perZone, perInstance := map[string]int{}, map[string]int{}
		for _, s := range on {
			perZone[s.zone]++
			perInstance[s.id]++
		}
		if len(on) != 5 || len(fails) != 0 || len(perZone) != 3 {
			t.Fatalf("placed %d on zones %v, failures %+v", len(on), perZone, fails)
		}
		for z, n := range perZone {
			if n < 1 || n > 2 {
				t.Errorf("zone %s has %d of 5 tasks: %v", z, n, perZone)
			}
		}
		for id, n := range perInstance {
			if n > 1 {
				t.Errorf("instance %s has %d tasks; spread instanceId breaks zone ties", id, n)
			}
		}
	})

	t.Run("memberOf", func(t *testing.T) {
		on, fails := run("--task-definition", "small", "--count", "6", "--group", "member",
			"--placement-constraints", `type=memberOf,expression="attribute:berth.simulated-index in [1, 3]"`)
		if len(on) != 6 || len(fails) != 0 {
			t.Fatalf("placed %d, failures %+v", len(on), fails)
		}
		for _, s := range on {
			if s.index != 1 && s.index != 3 {
				t.Errorf("a task landed on instance %d", s.index)
			}
		}
	})

	t.Run("distinctInstance", func(t *testing.T) {
		on, fails := run("--task-definition", "small", "--count", "3", "--group", "distinct",
			"--placement-constraints", "type=distinctInstance", "type=memberOf,expression=attribute:tier == small")
		seen := map[int]bool{}
		for _, s := range on {
			seen[s.index] = true
		}
		if len(on) != 3 || len(fails) != 0 || !seen[0] || !seen[1] || !seen[2] {
			t.Fatalf("placed on %v, failures %+v", on, fails)
		}
		// A fourth task of the group has nowhere to go; explain-placement
		// says why, instance by instance, as run-task's failures do.
		fourth := []string{"--task-definition", "small", "--group", "distinct",
			"--placement-constraints", "type=distinctInstance", "type=memberOf,expression=attribute:tier == small"}
		explained := berthOutput(t, append([]string{"explain-placement", "--data-dir", b.dataDir, "--cluster", cluster}, fourth...)...)
		on, fails = run(fourth...)
		if len(on) != 0 || len(fails) != 6 {
			t.Fatalf("fourth task placed on %v, failures %+v", on, fails)
		}
		for _, f := range fails {
			s := byARN[f.Arn]
			want, detail := "DistinctInstance placement constraint unsatisfied.", s.id+": distinctInstance: a task of group distinct runs here"
			if s.tier == "large" {
				want, detail = "MemberOf placement constraint unsatisfied.", s.id+": attribute:tier != small (is large)"
			}
			if f.Reason != want || f.Detail != detail {
				t.Errorf("failure %+v, want %s %q", f, want, detail)
			}
			if !strings.Contains(explained, f.Detail) {
				t.Errorf("explain-placement does not say %q:\n%s", f.Detail, explained)
			}
		}
	})

	t.Run("binpack", func(t *testing.T) {
		on, fails := run("--task-definition", "small", "--count", "3", "--group", "pack",
			"--placement-strategy", "type=binpack,field=memory")
		if len(on) != 3 || len(fails) != 0 || on[0].id != on[1].id || on[1].id != on[2].id {
			t.Fatalf("binpack placed on %v, failures %+v", on, fails)
		}
	})

	// An impossible task: no instance has the memory. Per instance ECS's
	// reason, and berth's explanation in detail; explain-placement with the
	// same arguments prints the same.
	impossible := []string{"--task-definition", "huge", "--count", "2",
		"--placement-strategy", "type=spread,field=attribute:ecs.availability-zone", "type=binpack,field=memory",
		"--placement-constraints", `type=memberOf,expression="attribute:ecs.availability-zone in [za, zb]"`}
	var before struct{ TaskArns []string }
	b.awsJSON(&before, "ecs", "list-tasks", "--cluster", cluster)
	explainArgs := append([]string{"explain-placement", "--data-dir", b.dataDir, "--cluster", cluster}, impossible...)
	explained := berthOutput(t, explainArgs...)
	var after struct{ TaskArns []string }
	b.awsJSON(&after, "ecs", "list-tasks", "--cluster", cluster)
	if len(after.TaskArns) != len(before.TaskArns) {
		t.Errorf("explain-placement placed tasks: %d before, %d after", len(before.TaskArns), len(after.TaskArns))
	}

	on, fails := run(impossible...)
	if len(on) != 0 || len(fails) != 6 {
		t.Fatalf("impossible task placed on %v, failures %+v", on, fails)
	}
	for _, f := range fails {
		// Resources are checked before constraints: every instance,
		// zc's included, lacks the memory first.
		s := byARN[f.Arn]
		if f.Reason != "RESOURCE:MEMORY" || !strings.HasPrefix(f.Detail, s.id+": memory 100000 needed, ") || !strings.HasSuffix(f.Detail, " free") {
			t.Errorf("failure %+v, want RESOURCE:MEMORY with an explanation", f)
		}
		if !strings.Contains(explained, "  "+f.Reason) || !strings.Contains(explained, f.Detail) {
			t.Errorf("explain-placement does not say %q %q:\n%s", f.Reason, f.Detail, explained)
		}
	}
	if !strings.Contains(explained, "0 of 2 tasks would be placed.") {
		t.Errorf("explain-placement:\n%s", explained)
	}

	// The JSON output says the same, instance by instance, and places
	// where run-task places when it can.
	var x struct {
		Placements []struct{ ContainerInstanceArn string }
		Failures   []failure
		Instances  []struct {
			ContainerInstanceArn string
			Placed               int
			Excluded             *struct{ Reason, Rule, Detail string }
		} `json:"containerInstances"`
	}
	if err := json.Unmarshal([]byte(berthOutput(t, append(explainArgs, "--output", "json")...)), &x); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(x.Failures) != fmt.Sprint(fails) || len(x.Instances) != 6 {
		t.Errorf("explain JSON failures %+v, run-task's %+v", x.Failures, fails)
	}
	packArgs := []string{"explain-placement", "--data-dir", b.dataDir, "--cluster", cluster, "--output", "json",
		"--task-definition", "small", "--count", "2", "--group", "pack", "--placement-strategy", "type=binpack,field=memory"}
	if err := json.Unmarshal([]byte(berthOutput(t, packArgs...)), &x); err != nil {
		t.Fatal(err)
	}
	on, _ = run("--task-definition", "small", "--count", "2", "--group", "pack", "--placement-strategy", "type=binpack,field=memory")
	if len(x.Placements) != 2 || len(on) != 2 || x.Placements[0].ContainerInstanceArn != on[0].arn || x.Placements[1].ContainerInstanceArn != on[1].arn {
		t.Errorf("explained %+v, run-task placed on %v", x.Placements, on)
	}
	if !slices.ContainsFunc(x.Instances, func(v struct {
		ContainerInstanceArn string
		Placed               int
		Excluded             *struct{ Reason, Rule, Detail string }
	}) bool {
		return v.ContainerInstanceArn == on[0].arn && v.Placed == 2
	}) {
		t.Errorf("verdicts %+v", x.Instances)
	}
}

// berthOutput runs the berth binary and returns its stdout; it must
// succeed.
func berthOutput(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
