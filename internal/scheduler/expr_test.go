package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestExpressions(t *testing.T) {
	i := inst("i-1", 1024, 1024)
	i.Attributes = []Attribute{{"ecs.instance-type", "t2.small"}, {"ecs.availability-zone", "us-east-1a"}, {"gpu", ""}}
	i.Attributes = append(i.Attributes, Attribute{"stack", "prod"}, Attribute{"disk-gb", "100"})
	i.EC2InstanceID = "i-0abc"
	i.RunningTasksCount = 2
	i.AgentVersion = "1.14.5"
	i.RegisteredAt = time.Date(2018, 6, 18, 22, 28, 28, 0, time.UTC)
	i.Groups = map[string]int{"service:production": 1, "family:web": 0}
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
		// The developer guide's examples.
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true},
		{"attribute:ecs.availability-zone in [us-east-1b, us-east-1c]", false},
		{"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d", true},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", false},
		{"attribute:ecs.instance-type in [t2.small, t2.medium]", true},
		{"attribute:stack == prod", true},
		{"attribute:stack != prod", false},
		{"runningTasksCount == 1", false},
		{"agentVersion < 1.14.5", false},
		{"agentVersion <= 1.14.5", true},
		{"agentVersion < 1.100.0", true},
		{"agentVersion > 1.9", true},
		{"registeredAt < 2018-02-13", false},
		{"registeredAt > 2018-02-13", true},
		{"registeredAt == 2018-06-18T22:28:28+00:00", true},
		{"registeredAt == 2018-06-18T22:28:28Z", true},
		{"registeredAt >= 2018-06-18T22:28:28", true},
		{"registeredAt < 2018-06-19", true},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", false},
		{"ec2InstanceId in ['i-abcd1234', 'i-0abc']", true},
		// Every operator, in both spellings.
		{"attribute:ecs.availability-zone not_in [us-east-1b]", true},
		{"attribute:ecs.availability-zone !in [us-east-1a]", false},
		{"attribute:missing not_in [x]", true},
		{"attribute:missing in [x]", false},
		{`attribute:ecs.instance-type matches 't2\.(small|medium)'`, true}, // parentheses only in quotes
		{"attribute:ecs.instance-type =~ t2", false},                       // the whole value must match
		{"attribute:ecs.instance-type =~ .*small", true},
		{"attribute:ecs.instance-type !~ t3.*", true},
		{"attribute:ecs.instance-type not_matches t2.*", false},
		{"attribute:missing !~ t2.*", true},
		{"attribute:missing =~ .*", false},
		{"attribute:disk-gb > 20", true}, // numerically, not as strings
		{"attribute:disk-gb greater_than 100", false},
		{"attribute:disk-gb >= 100", true},
		{"attribute:disk-gb less_than 1000", true},
		{"attribute:disk-gb less_than_equal 99", false},
		{"attribute:stack < zzz", true}, // as strings
		{"attribute:missing > 1", false},
		{"runningTasksCount > 1", true},
		{"runningTasksCount greater_than_equal 3", false},
		{"runningTasksCount < 3", true},
		{"runningTasksCount <= 1", false},
		{"agentConnected != false", true},
		{"agentConnected in [true]", true},
		{"agentConnected =~ t.*", true},
		{"ec2InstanceId =~ i-0.*", true},
		{"ec2InstanceId !~ i-0.*", false},
		{"ec2InstanceId not_in [i-0abc]", false},
		{"task:group in [database, service:production]", true},
		{"task:group not_in [database]", true},
		{"task:group == family:web", false}, // a group with no tasks left
		{"task:group =~ service:.*", true},
		{"task:group !~ service:.*", false},
		{"task:group != service:production", false},
		{"NOT attribute:gpu exists AND attribute:stack == prod OR attribute:stack == dev", false},
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
		// Operators a subject does not take (developer guide).
		{"task:group exists", "the operator exists cannot be used with task:group"},
		{"ec2InstanceId > i-1", "the operator > cannot be used with ec2InstanceId"},
		{"agentVersion =~ 1.*", "the operator =~ cannot be used with agentVersion"},
		{"registeredAt in [2018-06-18]", "the operator in cannot be used with registeredAt"},
		{"runningTasksCount !~ 1", "the operator !~ cannot be used with runningTasksCount"},
		{"registeredAt < yesterday", "registeredAt compares with a date"},
		{"attribute:a =~ (", "needs a value"},
		{"attribute:a =~ 'a(b'", "not a valid regular expression"},
		{"agentConnected in [true, maybe]", "true or false"},
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

func TestExplain(t *testing.T) {
	i := inst("i-1", 1, 1)
	i.Attributes = []Attribute{{"ecs.instance-type", "m5.large"}, {"ecs.availability-zone", "us-east-1a"}, {"gpu", ""}}
	i.RunningTasksCount = 4
	i.Groups = map[string]int{"database": 2}
	tests := []struct{ expr, want string }{
		{"attribute:ecs.instance-type =~ t3.*", "attribute:ecs.instance-type !~ t3.* (is m5.large)"},
		{"attribute:ecs.instance-type == t3.large", "attribute:ecs.instance-type != t3.large (is m5.large)"},
		{"attribute:stack == prod", "attribute:stack != prod (not set)"},
		{"attribute:gpu !exists", "attribute:gpu exists"},
		{"attribute:ecs.availability-zone in [us-east-1b, us-east-1c]", "attribute:ecs.availability-zone !in [us-east-1b, us-east-1c] (is us-east-1a)"},
		{"runningTasksCount < 3", "runningTasksCount >= 3 (is 4)"},
		{"not(task:group == database)", "task:group == database (groups database)"},
		{"task:group == web", "task:group != web (groups database)"},
		// and: the first part that fails; or: every part.
		{"attribute:ecs.availability-zone == us-east-1a and attribute:ecs.instance-type =~ t3.*", "attribute:ecs.instance-type !~ t3.* (is m5.large)"},
		{"attribute:ecs.instance-type == t3.large or attribute:gpu !exists", "attribute:ecs.instance-type != t3.large (is m5.large) and attribute:gpu exists"},
		{"not(attribute:gpu exists and runningTasksCount > 1)", "attribute:gpu exists and runningTasksCount > 1 (is 4)"},
		// A match explains why it matches.
		{"attribute:ecs.instance-type =~ m5.*", "attribute:ecs.instance-type =~ m5.* (is m5.large)"},
	}
	for _, tt := range tests {
		e, err := ParseExpression(tt.expr)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if got := e.Explain(&i); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.expr, got, tt.want)
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
		e.Explain(&i)
	})
}
