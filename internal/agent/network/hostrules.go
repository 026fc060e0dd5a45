package network

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// The bridge's host rules, installed once per bridge (as Docker does for
// docker0) instead of per container by CNI plugins: the bridge plugin's
// ipMasq makes a NAT chain per container and the firewall plugin FORWARD
// rules per container, each a few iptables calls at every start and stop
// (about 40 ms of a 80 ms attach, docs/benchmarks.md). Two static rules
// per bridge do the same work for every container:
//
//   - nat POSTROUTING: traffic from the bridge's subnet leaving by another
//     interface is masqueraded (tasks reach the world through the host);
//   - filter FORWARD: traffic into and out of the bridge is accepted, so
//     tasks work on hosts whose FORWARD policy is DROP (Docker sets that).
//
// Every rule carries a comment naming the bridge, so RemoveHostRules finds
// exactly its own.

// hostRules returns the rules (table, chain, rule spec) for the bridge.
func (c *CNI) hostRules() [][]string {
	tag := []string{"-m", "comment", "--comment", "berth bridge " + c.cfg.BridgeName}
	return [][]string{
		append([]string{"nat", "POSTROUTING", "-s", c.cfg.Subnet, "!", "-o", c.cfg.BridgeName, "-j", "MASQUERADE"}, tag...),
		append([]string{"filter", "FORWARD", "-o", c.cfg.BridgeName, "-j", "ACCEPT"}, tag...),
		append([]string{"filter", "FORWARD", "-i", c.cfg.BridgeName, "-j", "ACCEPT"}, tag...),
	}
}

// ensureHostRules installs the bridge's host rules unless present.
func (c *CNI) ensureHostRules(ctx context.Context) error {
	for _, r := range c.hostRules() {
		table, chain, spec := r[0], r[1], r[2:]
		if iptables(ctx, append([]string{"-t", table, "-C", chain}, spec...)...) == nil {
			continue
		}
		if err := iptables(ctx, append([]string{"-t", table, "-I", chain, "1"}, spec...)...); err != nil {
			return err
		}
	}
	return nil
}

// RemoveHostRules deletes the bridge's host rules (tests, and an operator
// retiring a bridge); missing rules are fine.
func (c *CNI) RemoveHostRules(ctx context.Context) error {
	for _, r := range c.hostRules() {
		table, chain, spec := r[0], r[1], r[2:]
		for iptables(ctx, append([]string{"-t", table, "-C", chain}, spec...)...) == nil {
			if err := iptables(ctx, append([]string{"-t", table, "-D", chain}, spec...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

func iptables(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("network: iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
