package scheduler

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestExpressions(t *testing.T) {
	i := inst("i-1", 1024, 1024)
	i.Attributes = []Attribute{{"ecs.instance-type", "t2.small"}, {"ecs.availability-zone", "us-east-1a"}, {"gpu", ""}}
	i.EC2InstanceID = "i-0abc"
	i.RunningTasksCount = 2
	i.Groups = map[string]int{"service:production": 1}
	tests := []struct {
		expr string
		want bool
	}{
		{"attribute:ecs.instance-type == t2.small", true},
		{"attribute:ecs.instance-type equals t2.small", true},
		{"attribute:ecs.instance-type == t2.medium", false},
		{"attribute:ecs.instance-type != t2.medium", true},
		{"attribute:ecs.instance-type not_equals t2.small", false},
		{"attribute:missing != x", true},
		{"attribute:missing == x", false},
		{"attribute:gpu exists", true},
		{"attribute:gpu == ''", true},
		{"attribute:missing exists", false},
		{"attribute:missing !exists", true},
		{"attribute:gpu not_exists", false},
		{"attribute:ecs.instance-type == t2.small and attribute:ecs.availability-zone == us-east-1b", false},
		{"attribute:ecs.instance-type == t2.small && attribute:ecs.availability-zone == us-east-1a", true},
		{"attribute:ecs.instance-type == t2.large or attribute:ecs.availability-zone == us-east-1a", true},
		{"attribute:ecs.instance-type == t2.large || attribute:gpu !exists", false},
		{"not attribute:gpu exists", false},
		{"!(attribute:gpu exists)", false},
		{"not(task:group == database)", true},
		{"task:group == service:production", true},
		{"agentConnected == true", true},
		{"agentConnected == false", false},
		{"ec2InstanceId == i-0abc", true},
		{"runningTasksCount == 2", true},
		{"runningTasksCount != 2", false},
		// and binds tighter than or.
		{"attribute:gpu exists or attribute:a exists and attribute:b exists", true},
		{"(attribute:gpu exists or attribute:a exists) and attribute:b exists", false},
		{`attribute:ecs.instance-type == "t2.small"`, true},
	}
	for _, tt := range tests {
		e, err := ParseExpression(tt.expr)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		if got := e.Match(&i); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.expr, got, tt.want)
		}
		if e.String() != tt.expr {
			t.Errorf("String() = %q", e.String())
		}
	}
}

func TestExpressionErrors(t *testing.T) {
	tests := []struct {
		expr string
		msg  string // substring of the message
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"attribute:", "needs an attribute name"},
		{"attribute:a", "needs an operator"},
		{"attribute:a ==", "needs a value"},
		{"attribute:a == b and", "ends early"},
		{"(attribute:a exists", "not closed"},
		{"attribute:a exists)", `unexpected ")"`},
		{"colour == red", "unknown subject"},
		{"attribute:a likes b", "not an operator"},
		{"attribute:a in [x, y", "not closed"},
		{"attribute:a in []", "empty"},
		{"attribute:a in x", "need a list"},
		{`attribute:a == "x`, "unterminated"},
		{"runningTasksCount == many", "compares with a number"},
		{"agentConnected == yes", "true or false"},
		{strings.Repeat("(", 100) + "attribute:a exists" + strings.Repeat(")", 100), "nests deeper"},
		{strings.Repeat("a", MaxExpressionLength+1), "longer than"},
		// Valid ECS syntax that berth does not evaluate yet: refused, not ignored.
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", "operator in is not supported"},
		{"attribute:ecs.availability-zone !in [us-east-1a]", "operator !in is not supported"},
		{"attribute:ecs.instance-type =~ g2.*", "operator =~ is not supported"},
		{"runningTasksCount > 1", "operator > is not supported"},
		{"registeredAt < 2018-06-18", "subject registeredAt"},
		{"agentVersion == 1.0", "subject agentVersion"},
		{"task:group exists", "exists with task:group"},
	}
	for _, tt := range tests {
		_, err := ParseExpression(tt.expr)
		if err == nil {
			t.Errorf("%q parsed", tt.expr)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: error %v is not invalid-argument", tt.expr, err)
		}
		if !strings.Contains(errdefs.Message(err, ""), tt.msg) {
			t.Errorf("%q: message %q lacks %q", tt.expr, errdefs.Message(err, ""), tt.msg)
		}
	}
}

// FuzzParseExpression: any input parses or fails with an invalid-argument
// error, never panics; what parses can be evaluated.
func FuzzParseExpression(f *testing.F) {
	for _, s := range []string{
		"attribute:ecs.instance-type == t2.small",
		"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
		"not(task:group == database)",
		"!(attribute:a exists) || agentConnected == true",
		"runningTasksCount == 3",
		`attribute:a == "x y"`,
		"((((",
		"attribute:a !",
	} {
		f.Add(s)
	}
	i := inst("i-1", 1, 1)
	i.Attributes = []Attribute{{"a", "x y"}}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpression(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		e.Match(&i)
	})
}
