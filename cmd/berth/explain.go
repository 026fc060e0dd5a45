package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/scheduler"
)

type explainFlags struct {
	dataDir, endpoint, output string
	cluster, taskDefinition   string
	count                     int32
	strategies, constraints   []string
	group, launchType         string
	overrides                 string
}

// explainListFlags take several values after one flag, as the AWS CLI's
// list parameters do: --placement-strategy A B.
var explainListFlags = []string{"placement-strategy", "placement-constraints"}

func newExplainCmd() *cobra.Command {
	fl := explainFlags{dataDir: config.DefaultDataDir(), count: 1, output: "table"}
	cmd := &cobra.Command{
		Use:   "explain-placement",
		Short: "Show where run-task would place tasks, and why each instance is excluded, without placing anything",
		Long: `Show where 'aws ecs run-task' would place tasks and, for every container
instance of the cluster, how many it would take and which rule excludes it
(e.g. "memory 512 needed, 256 free", "attribute:ecs.instance-type !~ t3.* (is m5.large)").
Nothing is placed. It takes run-task's placement arguments, in JSON or the AWS
CLI shorthand:

  berth explain-placement --cluster prod --task-definition web --count 3 \
    --placement-strategy type=spread,field=attribute:ecs.availability-zone type=binpack,field=memory \
    --placement-constraints 'type=memberOf,expression="attribute:ecs.instance-type =~ t3.*"'

Run it beside the server (it reads the admin credentials from DATA/credentials
and the endpoint from DATA/config, as 'berth token create' does). The caller
needs ecs:RunTask on the task definition, as for run-task (docs/placement.md).`,
		// Flags are parsed in RunE: a list flag takes every value up to the
		// next flag, which pflag cannot express.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if slices.Contains(args, "-h") || slices.Contains(args, "--help") {
				return cmd.Help()
			}
			if err := cmd.Flags().Parse(groupListArgs(args, explainListFlags)); err != nil {
				return err
			}
			if rest := cmd.Flags().Args(); len(rest) > 0 {
				return fmt.Errorf("unexpected argument %q", rest[0])
			}
			return runExplain(cmd, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.cluster, "cluster", "", "cluster to place in (default: default)")
	f.StringVar(&fl.taskDefinition, "task-definition", "", "family, family:revision or ARN of the task definition (required)")
	f.Int32Var(&fl.count, "count", fl.count, "number of tasks (1-10)")
	f.StringArrayVar(&fl.strategies, "placement-strategy", nil, "placement strategies: type=binpack|spread|random,field=… (shorthand, several after one flag) or JSON")
	f.StringArrayVar(&fl.constraints, "placement-constraints", nil, "placement constraints: type=distinctInstance or type=memberOf,expression=… (shorthand, several after one flag) or JSON")
	f.StringVar(&fl.group, "group", "", "task group (default: family:<family>)")
	f.StringVar(&fl.launchType, "launch-type", "", "EC2 or EXTERNAL (default EC2)")
	f.StringVar(&fl.overrides, "overrides", "", "run-task's overrides, JSON (e.g. a container's memory)")
	f.StringVar(&fl.output, "output", fl.output, "table or json")
	f.StringVar(&fl.dataDir, "data-dir", fl.dataDir, "the server's data directory (holds credentials and config)")
	f.StringVar(&fl.endpoint, "endpoint", "", "URL to reach the server at (default: endpoint_url in DATA/config)")
	return cmd
}

func runExplain(cmd *cobra.Command, fl explainFlags) error {
	if fl.output != "table" && fl.output != "json" {
		return fmt.Errorf("--output must be table or json, got %q", fl.output)
	}
	in, err := explainInput(fl)
	if err != nil {
		return err
	}
	client, err := newServerClient(fl.dataDir, fl.endpoint)
	if err != nil {
		return err
	}
	var x ecsapi.PlacementExplanation
	if err := client.post(cmd.Context(), ecsapi.ExplainPlacementPath, in, &x); err != nil {
		return err
	}
	if fl.output == "json" {
		b, err := json.MarshalIndent(&x, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		return err
	}
	return printExplanation(cmd.OutOrStdout(), &x)
}

// explainInput is the RunTask request the flags describe.
func explainInput(fl explainFlags) (*ecs.RunTaskInput, error) {
	if fl.taskDefinition == "" {
		return nil, fmt.Errorf("--task-definition is required")
	}
	in := &ecs.RunTaskInput{TaskDefinition: aws.String(fl.taskDefinition), Count: aws.Int32(fl.count), LaunchType: types.LaunchType(fl.launchType)}
	if fl.cluster != "" {
		in.Cluster = aws.String(fl.cluster)
	}
	if fl.group != "" {
		in.Group = aws.String(fl.group)
	}
	for _, s := range fl.strategies {
		items, err := parseListArg[types.PlacementStrategy]("--placement-strategy", s, []string{"type", "field"}, func(kv map[string]string) types.PlacementStrategy {
			st := types.PlacementStrategy{Type: types.PlacementStrategyType(kv["type"])}
			if v, ok := kv["field"]; ok {
				st.Field = aws.String(v)
			}
			return st
		})
		if err != nil {
			return nil, err
		}
		in.PlacementStrategy = append(in.PlacementStrategy, items...)
	}
	for _, s := range fl.constraints {
		items, err := parseListArg[types.PlacementConstraint]("--placement-constraints", s, []string{"type", "expression"}, func(kv map[string]string) types.PlacementConstraint {
			c := types.PlacementConstraint{Type: types.PlacementConstraintType(kv["type"])}
			if v, ok := kv["expression"]; ok {
				c.Expression = aws.String(v)
			}
			return c
		})
		if err != nil {
			return nil, err
		}
		in.PlacementConstraints = append(in.PlacementConstraints, items...)
	}
	if fl.overrides != "" {
		b, err := argContent(fl.overrides)
		if err != nil {
			return nil, err
		}
		in.Overrides = new(types.TaskOverride)
		if err := decodeStrict(b, in.Overrides); err != nil {
			return nil, fmt.Errorf("--overrides: %w", err)
		}
	}
	return in, nil
}

// groupListArgs rewrites the AWS CLI's list syntax, where a list flag takes
// every following value up to the next flag (--placement-strategy A B),
// into one flag per value (--placement-strategy A --placement-strategy B).
func groupListArgs(args, lists []string) []string {
	out := make([]string, 0, len(args))
	current := "" // the list flag the next bare value belongs to
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			current = ""
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			out = append(out, a)
			if slices.Contains(lists, name) {
				current = name
				if !hasValue && i+1 < len(args) {
					out = append(out, args[i+1])
					i++
				}
			}
			continue
		}
		if current != "" {
			out = append(out, "--"+current)
		}
		out = append(out, a)
	}
	return out
}

// parseListArg parses one value of a list parameter: a JSON array of
// objects, one JSON object, or the AWS CLI shorthand key=value,key=value
// with the given keys (file://path reads the value from a file).
func parseListArg[T any](flag, s string, keys []string, fromShorthand func(map[string]string) T) ([]T, error) {
	b, err := argContent(s)
	if err != nil {
		return nil, err
	}
	switch t := bytes.TrimSpace(b); {
	case len(t) > 0 && t[0] == '[':
		var items []T
		if err := decodeStrict(t, &items); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		return items, nil
	case len(t) > 0 && t[0] == '{':
		var item T
		if err := decodeStrict(t, &item); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		return []T{item}, nil
	}
	kv, err := parseShorthand(string(b), keys)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, s, err)
	}
	return []T{fromShorthand(kv)}, nil
}

// argContent is a parameter's text, read from the file a file:// value
// names, as the AWS CLI does.
func argContent(s string) ([]byte, error) {
	if path, ok := strings.CutPrefix(s, "file://"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s, err)
		}
		return b, nil
	}
	return []byte(s), nil
}

// decodeStrict decodes JSON into an SDK type (member names match without
// regard to case, as the SDK types have no tags) and refuses unknown
// members, so that a typo is an error rather than a silent default.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if d.More() {
		return fmt.Errorf("invalid JSON: more than one value")
	}
	return nil
}

// parseShorthand parses the AWS CLI shorthand of one structure:
// key=value pairs separated by commas. A value may be quoted ('…' or "…")
// to hold commas; a comma-separated part that does not start with one of
// keys continues the previous value, so an unquoted expression such as
// "attribute:zone in [a, b]" survives the shell having removed its quotes.
func parseShorthand(s string, keys []string) (map[string]string, error) {
	kv := map[string]string{}
	last := ""
	for _, part := range splitShorthand(s) {
		key, value, ok := strings.Cut(part, "=")
		key = strings.TrimSpace(key)
		if !ok || !slices.Contains(keys, key) {
			if last == "" {
				return nil, fmt.Errorf("expected %s=…, got %q", strings.Join(keys, "=…,"), part)
			}
			kv[last] += "," + part
			continue
		}
		if _, dup := kv[key]; dup {
			return nil, fmt.Errorf("%s given twice", key)
		}
		kv[key] = value
		last = key
	}
	for k, v := range kv {
		kv[k] = unquote(strings.TrimSpace(v))
	}
	return kv, nil
}

// splitShorthand splits at the commas outside quotes; a backslash escapes
// the next character.
func splitShorthand(s string) []string {
	var parts []string
	var cur strings.Builder
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case quote != 0:
			if r == quote {
				quote = 0
			}
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
			cur.WriteRune(r)
		case r == ',':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(parts, cur.String())
}

// unquote removes one pair of matching quotes around a whole value.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// printExplanation writes the explanation as a table for people.
func printExplanation(w io.Writer, x *ecsapi.PlacementExplanation) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Cluster\t%s\n", x.Cluster)
	fmt.Fprintf(tw, "Task definition\t%s (group %s)\n", x.TaskDefinitionArn, x.Group)
	fmt.Fprintf(tw, "Each task needs\t%s\n", resourcesText(x.Demand))
	var ss []string
	for _, s := range x.Strategies {
		if s.Field == "" {
			ss = append(ss, s.Type)
		} else {
			ss = append(ss, s.Type+"("+s.Field+")")
		}
	}
	fmt.Fprintf(tw, "Strategies\t%s\n", strings.Join(ss, ", "))
	cs := []string{}
	for _, c := range x.Constraints {
		if c.Expression == "" {
			cs = append(cs, c.Type)
		} else {
			cs = append(cs, c.Type+"("+c.Expression+")")
		}
	}
	if len(cs) == 0 {
		cs = []string{"none"}
	}
	fmt.Fprintf(tw, "Constraints\t%s\n", strings.Join(cs, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\n%d of %d tasks would be placed", len(x.Placements), x.Count)
	if x.Random && len(x.Placements) > 0 {
		fmt.Fprint(w, " (one random draw: run-task draws anew)")
	}
	fmt.Fprintln(w, ".")
	if len(x.Placements) > 0 {
		ids := make([]string, len(x.Placements))
		for i, p := range x.Placements {
			ids[i] = p.ContainerInstanceID
		}
		fmt.Fprintf(w, "In order: %s\n", strings.Join(ids, ", "))
	}

	var attrs []string
	for _, s := range x.Strategies {
		if name, ok := strings.CutPrefix(s.Field, "attribute:"); ok && s.Type == string(types.PlacementStrategyTypeSpread) && !slices.Contains(attrs, name) {
			attrs = append(attrs, name)
		}
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "CONTAINER INSTANCE\tSTATUS\tAGENT\tCPU FREE\tMEMORY FREE"
	for _, a := range attrs {
		header += "\t" + strings.ToUpper(a)
	}
	fmt.Fprintln(tw, header+"\tTASKS\tEXCLUDED BY\tWHY")
	for _, v := range x.Instances {
		agent := "connected"
		if !v.AgentConnected {
			agent = "disconnected"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%d\t%d", v.ContainerInstanceID, v.Status, agent, v.Remaining.CPU, v.Remaining.Memory)
		for _, a := range attrs {
			val, ok := v.Attributes[a]
			if !ok {
				val = "(not set)"
			}
			row += "\t" + val
		}
		by, why := "-", "-"
		if e := v.Excluded; e != nil {
			by, why = excludedBy(e), e.Detail
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", row, v.Placed, by, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(x.Failures) > 0 {
		fmt.Fprintln(w, "\nrun-task would return these failures:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range x.Failures {
			fmt.Fprintf(tw, "  %s\t%s\n", f.Reason, f.Detail)
		}
		return tw.Flush()
	}
	return nil
}

// excludedBy is a short name of the rule that excluded an instance: ECS's
// reason, or the constraint's type where ECS's reason is a sentence.
func excludedBy(e *ecsapi.ExcludedBecause) string {
	switch e.Rule {
	case scheduler.RuleMemberOf, scheduler.RuleDistinctInstance:
		return e.Rule
	}
	return e.Reason
}

// resourcesText is "cpu 256, memory 512 MiB, ports 80/tcp".
func resourcesText(r ecsapi.ExplainedResources) string {
	s := fmt.Sprintf("cpu %d, memory %d MiB", r.CPU, r.Memory)
	var ps []string
	for _, p := range r.Ports {
		ps = append(ps, fmt.Sprintf("%d/tcp", p))
	}
	for _, p := range r.PortsUDP {
		ps = append(ps, fmt.Sprintf("%d/udp", p))
	}
	if len(ps) > 0 {
		s += ", ports " + strings.Join(ps, " ")
	}
	return s
}
