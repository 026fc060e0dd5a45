package fakenetwork_test

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/agent/network"
	"github.com/berth-dev/berth/internal/agent/network/fakenetwork"
	"github.com/berth-dev/berth/internal/agent/network/networktest"
)

func TestConformance(t *testing.T) {
	networktest.Run(t, func(t *testing.T) network.Network { return fakenetwork.New() })
}

func TestInjectedFailuresAndCounts(t *testing.T) {
	n := fakenetwork.New()
	boom := errors.New("boom")
	req := network.Request{ID: "c1", Mode: network.ModeBridge}

	n.FailAttach(boom)
	if _, err := n.Attach(t.Context(), req); !errors.Is(err, boom) {
		t.Fatalf("Attach with FailAttach = %v, want boom", err)
	}
	if _, ok := n.Get("c1"); ok {
		t.Fatal("a failed Attach left an attachment")
	}
	n.FailAttach(nil)
	att, err := n.Attach(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := n.Get("c1"); !ok || got.IPv4 != att.IPv4 {
		t.Fatalf("Get(c1) = %+v, %v; want %+v", got, ok, att)
	}

	n.FailDetach(boom)
	if err := n.Detach(t.Context(), att); !errors.Is(err, boom) {
		t.Fatalf("Detach with FailDetach = %v, want boom", err)
	}
	if list, _ := n.List(t.Context()); len(list) != 1 {
		t.Fatalf("after a failed Detach List = %+v, want the attachment", list)
	}
	n.FailDetach(nil)
	for range 2 {
		if err := n.Detach(t.Context(), att); err != nil {
			t.Fatal(err)
		}
	}
	if a, d := n.Counts(); a != 1 || d != 1 {
		t.Fatalf("Counts = %d attaches, %d detaches; want 1, 1", a, d)
	}
}
