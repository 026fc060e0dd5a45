package containerd_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/containerd/log"

	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/runtime/containerd"
	"github.com/berth-dev/berth/internal/agent/runtime/runtimetest"
	"github.com/berth-dev/berth/internal/testenv"
)

// testNamespace keeps the suite's images and containers apart from a real
// agent's ("berth") on the same machine.
const testNamespace = "berth-test"

func TestMain(m *testing.M) {
	// The client logs every failed registry request at info level; the
	// suite provokes many on purpose.
	_ = log.SetLevel("warn")
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the conformance suite runs real containers")
	}
	testenv.Root(t)
	addr := testenv.Containerd(t)
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		rt, err := containerd.New(context.Background(), containerd.Options{Address: addr, Namespace: testNamespace})
		if err != nil {
			t.Fatalf("containerd.New: %v", err)
		}
		return rt
	}, runtimetest.Options{})
}

func TestNewFailsWithoutDaemon(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := containerd.New(ctx, containerd.Options{Address: t.TempDir() + "/none.sock"})
	if err == nil {
		t.Fatal("New succeeded against a socket nobody listens on")
	}
}
