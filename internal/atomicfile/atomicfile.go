// Package atomicfile writes whole files so that a reader sees the old
// content or the new, never a mix, and a crash never leaves a torn file:
// write a temporary file beside the target, sync it, rename it over.
package atomicfile

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Write replaces path with data, created with mode.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return errdefs.Internal(err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return errdefs.Internal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return errdefs.Internal(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return errdefs.Internal(err)
	}
	if err := tmp.Close(); err != nil {
		return errdefs.Internal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errdefs.Internal(err)
	}
	return nil
}
