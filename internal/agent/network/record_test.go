package network

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestDecodeRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want record
		ok   bool
	}{
		{name: "bridge", ok: true,
			in: `{"id":"c1","mode":"bridge","netnsPath":"/run/berth/netns/x_c1","ipv4":"10.213.0.2","ports":[{"containerPort":80,"hostPort":49153,"protocol":"tcp"}]}`,
			want: record{Attachment: Attachment{ID: "c1", Mode: ModeBridge, NetNSPath: "/run/berth/netns/x_c1", IPv4: "10.213.0.2",
				Ports: []PortMapping{{ContainerPort: 80, HostPort: 49153, Protocol: "tcp"}}}}},
		{name: "pending", ok: true, in: `{"id":"c1","mode":"bridge","pending":true}`,
			want: record{Attachment: Attachment{ID: "c1", Mode: ModeBridge}, Pending: true}},
		{name: "host", ok: true, in: `{"id":"c1","mode":"host","netnsPath":"host"}`,
			want: record{Attachment: Attachment{ID: "c1", Mode: ModeHost, NetNSPath: "host"}}},
		{name: "not json", in: `{`},
		{name: "unknown field", in: `{"id":"c1","mode":"bridge","extra":1}`},
		{name: "trailing data", in: `{"id":"c1","mode":"bridge"} {}`},
		{name: "path id", in: `{"id":"../c1","mode":"bridge"}`},
		{name: "bad mode", in: `{"id":"c1","mode":"awsvpc"}`},
		{name: "bad port", in: `{"id":"c1","mode":"bridge","ports":[{"containerPort":80,"hostPort":0,"protocol":"tcp"}]}`},
		{name: "port out of range", in: `{"id":"c1","mode":"bridge","ports":[{"containerPort":80,"hostPort":70000,"protocol":"tcp"}]}`},
		{name: "ipv6", in: `{"id":"c1","mode":"bridge","ipv4":"fd00::2"}`},
		{name: "not an ip", in: `{"id":"c1","mode":"bridge","ipv4":"ten"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeRecord([]byte(tc.in))
			if !tc.ok {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("decodeRecord = %+v, %v; want ErrInvalidArgument", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecords(t *testing.T) {
	s := records{dir: t.TempDir()}
	a := record{Attachment: Attachment{ID: "a", Mode: ModeBridge, IPv4: "10.0.0.2"}}
	b := record{Attachment: Attachment{ID: "b", Mode: ModeHost, NetNSPath: "host"}, Pending: true}
	for _, r := range []record{b, a} {
		if err := s.save(r); err != nil {
			t.Fatal(err)
		}
	}
	// A temporary file from an interrupted save is not a record.
	if err := os.WriteFile(filepath.Join(s.dir, ".c.123.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.list()
	if err != nil || !cmp.Equal(got, []record{a, b}) {
		t.Fatalf("list = %+v, %v; want [a b]", got, err)
	}
	if r, found, err := s.load("a"); err != nil || !found || !cmp.Equal(r, a) {
		t.Fatalf("load(a) = %+v, %v, %v", r, found, err)
	}
	if _, found, err := s.load("zz"); found || err != nil {
		t.Fatalf("load(zz) = %v, %v; want not found", found, err)
	}
	for range 2 {
		if err := s.remove("a"); err != nil {
			t.Fatal(err)
		}
	}
	// A record filed under another ID's name is refused, not trusted.
	if err := os.WriteFile(s.path("x"), []byte(`{"id":"b","mode":"host"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.load("x"); err == nil {
		t.Fatal("load(x) accepted a record of b")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, seed := range []string{
		`{"id":"c1","mode":"bridge","netnsPath":"/run/berth/netns/x_c1","ipv4":"10.213.0.2","ports":[{"containerPort":80,"hostPort":49153,"protocol":"tcp"}]}`,
		`{"id":"c1","mode":"bridge","pending":true,"ports":[{"containerPort":53,"hostPort":5353,"protocol":"udp"}]}`,
		`{"id":"c1","mode":"none"}`,
		`{"id":"../x","mode":"host"}`,
		`[]`, ``, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v is not ErrInvalidArgument", err)
			}
			return
		}
		// What decodes is valid, and survives a round trip unchanged.
		if err := (Request{ID: r.ID, Mode: r.Mode, Ports: r.Ports}).Validate(); err != nil {
			t.Fatalf("decoded an invalid record %+v: %v", r, err)
		}
		dir := t.TempDir()
		s := records{dir: dir}
		if err := s.save(r); err != nil {
			t.Fatal(err)
		}
		back, found, err := s.load(r.ID)
		if err != nil || !found || !cmp.Equal(r, back, cmp.Comparer(func(a, b []PortMapping) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })) {
			t.Fatalf("round trip: %+v -> %+v, %v, %v", r, back, err, found)
		}
	})
}
