// Package archtest holds the tests that enforce berth's architecture
// (DESIGN.md §9): dependencies point down the layers, only the named
// packages touch etcd and containerd, protocol and service packages stay
// apart, no grab-bag package names, and every package has a doc comment.
package archtest
