//go:build deadlocks || race

package network

import "github.com/sasha-s/go-deadlock"

// go-cni swaps its mutex for go-deadlock's in race builds. go-deadlock tells
// goroutines apart with petermattis/goid, which reads 0 for every goroutine
// on this Go release, so two concurrent Setup calls look like one goroutine
// taking a read lock twice and the detector calls os.Exit. The race
// detector still watches go-cni; only the broken lock-order check is off.
func init() { deadlock.Opts.Disable = true }
