package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// record is what the CNI network keeps on disk per attachment, so Attach is
// idempotent and a restarted agent can still tear down what it set up.
type record struct {
	Attachment
	// Pending is true from just before the namespace and CNI ADD until the
	// attachment is complete. A pending record found later means a crash
	// in between: its ports tell CNI DEL which DNAT rules to remove.
	Pending bool `json:"pending,omitempty"`
	// Prepared marks a pending record whose namespace Prepare made for a
	// container that may already live in it: Attach completes it instead
	// of undoing it.
	Prepared bool `json:"prepared,omitempty"`
	// Adding is set just before CNI ADD runs on a prepared namespace; found
	// after a crash, it means an ADD may have half happened there, so Attach
	// runs CNI DEL in the namespace before adding again.
	Adding bool `json:"adding,omitempty"`
}

// decodeRecord parses and checks one record file.
func decodeRecord(data []byte) (record, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return record{}, errdefs.InvalidArgument("attachment record: " + err.Error())
	}
	if dec.More() {
		return record{}, errdefs.InvalidArgument("attachment record: trailing data")
	}
	req := Request{ID: r.ID, Mode: r.Mode, Ports: r.Ports}
	if err := req.Validate(); err != nil {
		return record{}, fmt.Errorf("attachment record: %w", err)
	}
	if r.IPv4 != "" {
		a, err := netip.ParseAddr(r.IPv4)
		if err != nil || !a.Is4() {
			return record{}, errdefs.InvalidArgument(fmt.Sprintf("attachment record: ipv4 %q", r.IPv4))
		}
	}
	return r, nil
}

// records stores one JSON file per attachment ID in dir.
type records struct{ dir string }

func (s records) path(id string) string { return filepath.Join(s.dir, id+".json") }

// load returns the record for id, or ok=false if there is none.
func (s records) load(id string) (r record, ok bool, err error) {
	data, err := os.ReadFile(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	r, err = decodeRecord(data)
	if err != nil {
		return record{}, false, fmt.Errorf("%s: %w", s.path(id), err)
	}
	if r.ID != id {
		return record{}, false, fmt.Errorf("%s: names attachment %q", s.path(id), r.ID)
	}
	return r, true, nil
}

// save writes r atomically (temporary file, fsync, rename).
func (s records) save(r record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, "."+r.ID+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(r.ID))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (s records) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// list returns every record in dir, skipping temporary files.
func (s records) list() ([]record, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []record
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, found, err := s.load(id)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, r)
		}
	}
	return out, nil
}
