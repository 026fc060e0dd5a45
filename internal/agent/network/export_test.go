package network

import "context"

// Internals the external tests (package network_test) need.
var (
	RequiredPlugins = requiredPlugins
	FindPlugin      = findPlugin
	IsNetNS         = isNetNS
	RemoveNetNS     = removeNetNS
	LoopbackHas     = loopbackHas
	FileExists      = fileExists
)

func (c *CNI) NetName() string              { return c.netName }
func (c *CNI) NetNSPathOf(id string) string { return c.netnsPath(id) }
func (c *CNI) HasRecord(id string) bool     { _, found, _ := c.records.load(id); return found }

// InterruptAttach does what Attach does up to CNI ADD and stops there, as
// an agent that dies at that point would.
func (c *CNI) InterruptAttach(ctx context.Context, att Attachment) error {
	att.NetNSPath = c.netnsPath(att.ID)
	if err := c.records.save(record{Attachment: att, Pending: true}); err != nil {
		return err
	}
	_, err := c.add(ctx, att)
	return err
}
