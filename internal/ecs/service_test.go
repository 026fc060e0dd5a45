package ecs

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestDeploymentArithmetic checks ECS's worked examples
// (ecs-behaviour.md §4.3): ceil for the minimum, floor for the maximum.
func TestDeploymentArithmetic(t *testing.T) {
	for _, tc := range []struct {
		desired, minPct, maxPct int32
		keep, total             int
	}{
		{4, 50, 200, 2, 8},  // may stop 2 old first, start 4 new
		{2, 75, 200, 2, 4},  // ceil(1.5) = 2: cannot stop any old task first
		{3, 100, 125, 3, 3}, // floor(3.75) = 3: cannot start an extra task (deadlock)
		{4, 100, 200, 4, 8}, // the default
		{1, 0, 100, 0, 1},   // stop old, then start new
		{0, 100, 200, 0, 0}, // nothing desired
		{5, 33, 150, 2, 7},  // ceil(1.65) = 2, floor(7.5) = 7
		{10, 100, 100, 10, 10},
	} {
		t.Run(fmt.Sprintf("%d_%d_%d", tc.desired, tc.minPct, tc.maxPct), func(t *testing.T) {
			if got := MinHealthyTasks(tc.desired, tc.minPct); got != tc.keep {
				t.Errorf("MinHealthyTasks = %d, want %d", got, tc.keep)
			}
			if got := MaxTotalTasks(tc.desired, tc.maxPct); got != tc.total {
				t.Errorf("MaxTotalTasks = %d, want %d", got, tc.total)
			}
		})
	}
}

// TestBreakerThreshold checks the classic formula against ECS's examples
// and the thresholdConfiguration types.
func TestBreakerThreshold(t *testing.T) {
	for _, tc := range []struct {
		desired int32
		cfg     *types.ThresholdConfiguration
		want    int
	}{
		{1, nil, 10}, {25, nil, 13}, {400, nil, 200}, {800, nil, 200}, {20, nil, 10}, {21, nil, 11}, {0, nil, 10},
		{4, &types.ThresholdConfiguration{Type: types.ThresholdTypeCount, Value: 2}, 2},
		{4, &types.ThresholdConfiguration{Type: types.ThresholdTypeCount, Value: 0}, 1},
		{4, &types.ThresholdConfiguration{Type: types.ThresholdTypeBoundedPercent, Value: 50}, 3},
		{10, &types.ThresholdConfiguration{Type: types.ThresholdTypeBoundedPercent, Value: 50}, 5},
		{1000, &types.ThresholdConfiguration{Type: types.ThresholdTypeBoundedPercent, Value: 50}, 200},
		{1000, &types.ThresholdConfiguration{Type: types.ThresholdTypeUnboundedPercent, Value: 50}, 500},
		{3, &types.ThresholdConfiguration{Type: types.ThresholdTypeUnboundedPercent, Value: 10}, 1},
	} {
		if got := BreakerThreshold(tc.desired, tc.cfg); got != tc.want {
			t.Errorf("BreakerThreshold(%d, %+v) = %d, want %d", tc.desired, tc.cfg, got, tc.want)
		}
	}
}

func TestThrottleDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{
		0: 0, 1: 0, 5: 0, 6: 5 * time.Second, 7: 10 * time.Second, 10: 80 * time.Second,
		13: 640 * time.Second, 14: 15 * time.Minute, 100: 15 * time.Minute,
	} {
		if got := ThrottleDelay(n); got != want {
			t.Errorf("ThrottleDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestServiceEvents(t *testing.T) {
	var s ServiceRecord
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if !s.AddEvent("steady", "1", EventSteadyState("web"), now) {
		t.Fatal("first event not recorded")
	}
	if s.AddEvent("steady", "2", EventSteadyState("web"), now.Add(time.Hour)) {
		t.Error("a repeat within 6 hours was recorded")
	}
	if !s.AddEvent("steady", "3", EventSteadyState("web"), now.Add(EventRepeatAfter)) {
		t.Error("a repeat after 6 hours was suppressed")
	}
	s.ForgetEvent("steady")
	if !s.AddEvent("steady", "4", EventSteadyState("web"), now.Add(EventRepeatAfter+time.Minute)) {
		t.Error("a forgotten kind was suppressed")
	}
	for i := range 2 * MaxServiceEvents {
		s.AddEvent(fmt.Sprint("k", i), fmt.Sprint(i), fmt.Sprint("m", i), now)
	}
	if len(s.Service.Events) != MaxServiceEvents {
		t.Fatalf("%d events, want %d", len(s.Service.Events), MaxServiceEvents)
	}
	if got := aws.ToString(s.Service.Events[0].Message); got != fmt.Sprint("m", 2*MaxServiceEvents-1) {
		t.Errorf("newest event first: got %q", got)
	}
	if got := EventStarted("web", []string{"a1", "b2"}); got != "(service web) has started 2 tasks: (task a1) (task b2)." {
		t.Errorf("started: %q", got)
	}
	if got := EventStopped("web", []string{"a1"}); got != "(service web) has stopped 1 running tasks: (task a1)." {
		t.Errorf("stopped: %q", got)
	}
}

func TestNewDeploymentID(t *testing.T) {
	re := regexp.MustCompile(`^ecs-svc/[1-9][0-9]{18}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewDeploymentID()
		if !re.MatchString(id) {
			t.Fatalf("deployment id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestStartDeploymentAndCounts(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	td := func(rev int32) *types.TaskDefinition {
		return &types.TaskDefinition{Family: aws.String("web"), Revision: rev,
			TaskDefinitionArn: aws.String(fmt.Sprintf("arn:aws:ecs:us-east-1:1:task-definition/web:%d", rev))}
	}
	s := ServiceRecord{Name: "web", Cluster: "default"}
	d1 := NewDeployment(NewDeploymentInput{TaskDefinition: td(1), DesiredCount: 2, Now: now})
	s.StartDeployment(d1, now)
	d2 := NewDeployment(NewDeploymentInput{TaskDefinition: td(2), DesiredCount: 2, Now: now})
	s.StartDeployment(d2, now)
	if s.Primary().ID() != d2.ID() || s.Deployments[1].Status() != DeploymentActive || s.Primary().Status() != DeploymentPrimary {
		t.Fatalf("deployments after a second start: %+v", s.Deployments)
	}
	if aws.ToString(s.Service.TaskDefinition) != aws.ToString(td(2).TaskDefinitionArn) {
		t.Errorf("service task definition %q", aws.ToString(s.Service.TaskDefinition))
	}
	task := func(dep, last, desired string) *TaskRecord {
		return &TaskRecord{Task: types.Task{StartedBy: aws.String(dep), LastStatus: aws.String(last), DesiredStatus: aws.String(desired)}}
	}
	tasks := []*TaskRecord{
		task(d1.ID(), "RUNNING", "RUNNING"),
		task(d1.ID(), "RUNNING", "STOPPED"), // stopping, still running
		task(d2.ID(), "PENDING", "RUNNING"),
		task(d2.ID(), "PENDING", "STOPPED"), // asked to stop before it ran
		task(d2.ID(), "STOPPED", "STOPPED"),
		task(d2.ID(), "RUNNING", "RUNNING"),
	}
	out := s.ToAPI(tasks, false)
	if out.RunningCount != 3 || out.PendingCount != 1 {
		t.Errorf("service counts running %d pending %d, want 3 1", out.RunningCount, out.PendingCount)
	}
	if d := out.Deployments[0]; d.RunningCount != 1 || d.PendingCount != 1 {
		t.Errorf("primary counts %d %d, want 1 1", d.RunningCount, d.PendingCount)
	}
	if d := out.Deployments[1]; d.RunningCount != 2 || d.PendingCount != 0 {
		t.Errorf("active counts %d %d, want 2 0", d.RunningCount, d.PendingCount)
	}
	if out.Events == nil || out.Tags != nil {
		t.Errorf("events must be [] and tags absent without include TAGS: %v %v", out.Events, out.Tags)
	}
}
