package testenv

import (
	"net"
	"path/filepath"
	"testing"
)

// recorder stands in for a testing.TB and records how Require ended it.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = true }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = true }

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ci          string
		ok          bool
		skip, fatal bool
	}{
		{name: "met", ci: "", ok: true},
		{name: "met under CI", ci: "true", ok: true},
		{name: "missing locally skips", ci: "", ok: false, skip: true},
		{name: "missing with CI=false skips", ci: "false", ok: false, skip: true},
		{name: "missing under CI fails", ci: "true", ok: false, fatal: true},
		{name: "missing under CI=1 fails", ci: "1", ok: false, fatal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			Require(r, "thing", tc.ok)
			if r.skipped != tc.skip || r.failed != tc.fatal {
				t.Errorf("skipped=%v failed=%v, want skipped=%v failed=%v", r.skipped, r.failed, tc.skip, tc.fatal)
			}
		})
	}
}

func TestContainerdChecksTheSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	t.Setenv("CI", "true")
	t.Setenv("BERTH_CONTAINERD_ADDRESS", sock)

	r := &recorder{TB: t}
	Containerd(r)
	if !r.failed {
		t.Fatal("a missing socket did not fail under CI")
	}

	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = &recorder{TB: t}
	if got := Containerd(r); got != sock || r.failed || r.skipped {
		t.Fatalf("Containerd = %q (failed=%v skipped=%v), want %q", got, r.failed, r.skipped, sock)
	}
}
