// Package benchkit is what the whole-system benchmark programs
// (bench/placement, bench/services, bench/registry) share: their child
// processes and the CPU time and memory read from /proc, the control plane
// run in-process with CPU profiles (`PROGRAM serve`), the start-up of a
// server and a simulated fleet, and the small report helpers. Each program
// keeps what only it measures and prints.
package benchkit
