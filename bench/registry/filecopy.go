package main

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The peers of a push and a pull: copies of the image's layer bytes from
// one file to another in the filesystem of the server's data directory.
// The source is written and fsynced before any timing (so it is read back
// from the page cache, as a pull reads the blobs a push just wrote); a
// copy is timed from opening the source until the destination is fsynced
// and closed, as the registry fsyncs each blob it stores before it
// answers the upload.

// copyKind is one way of copying.
type copyKind int

const (
	// copyKernel is io.Copy from *os.File to *os.File, which Go turns into
	// copy_file_range(2): the kernel copies page to page, as cp does
	// (coreutils ≥ 9). The peer the target is set against.
	copyKernel copyKind = iota
	// copyUser is io.Copy through its 32 KiB buffer in user space
	// (read(2)/write(2)), what the registry itself does with the bytes
	// between socket and file.
	copyUser
	// copyUserNoSync is copyUser without the fsync: the page cache alone.
	copyUserNoSync
	// copyUserHash is copyUser hashing the bytes with SHA-256 as it goes:
	// the work a registry cannot skip, since it must verify the digest of
	// what it is sent.
	copyUserHash
	numCopyKinds
)

func (k copyKind) String() string {
	switch k {
	case copyKernel:
		return "file copy (io.Copy = copy_file_range, fsync)"
	case copyUser:
		return "file copy (read/write 32 KiB, fsync)"
	case copyUserNoSync:
		return "file copy (read/write 32 KiB, no fsync)"
	case copyUserHash:
		return "file copy (read/write 32 KiB + SHA-256, fsync)"
	}
	return "?"
}

// writeSource writes the layers one after another to path and fsyncs it.
func writeSource(path string, layers [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for _, l := range layers {
		if _, err := f.Write(l); err != nil {
			f.Close()
			return err
		}
	}
	return errors.Join(f.Sync(), f.Close())
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo so that io.Copy copies
// through its own buffer.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// timedCopy copies src to dst (created) the kind's way and returns the
// time it took, the part of it the fsync took, and the bytes copied.
func timedCopy(kind copyKind, src, dst string) (took, fsync time.Duration, n int64, err error) {
	t0 := time.Now()
	in, err := os.Open(src)
	if err != nil {
		return 0, 0, 0, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return 0, 0, 0, err
	}
	switch kind {
	case copyKernel:
		n, err = io.Copy(out, in)
	case copyUserHash:
		h := sha256.New()
		n, err = io.Copy(onlyWriter{io.MultiWriter(out, h)}, onlyReader{in})
		_ = h.Sum(nil)
	default:
		n, err = io.Copy(onlyWriter{out}, onlyReader{in})
	}
	t1 := time.Now()
	if err == nil && kind != copyUserNoSync {
		err = out.Sync()
	}
	fsync = time.Since(t1)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return time.Since(t0), fsync, n, err
}

// syncFS flushes the filesystem holding dir (syncfs(2)): done before every
// timed operation, outside its time, so that none pays for the writeback,
// journal commits or discards of what came before it (the mount has
// `discard`, and every round deletes hundreds of MiB).
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// copyRound writes the source once and times one copy of each kind,
// returning each one's time and the part of it its fsync took.
func copyRound(dir string, layers [][]byte) (took, fsync [numCopyKinds]time.Duration, err error) {
	src := filepath.Join(dir, "source")
	if err := writeSource(src, layers); err != nil {
		return took, fsync, err
	}
	defer os.Remove(src)
	var want int64
	for _, l := range layers {
		want += int64(len(l))
	}
	// One untimed copy first. Memory this VM has not touched for a while
	// costs up to ten times more to write the first time (seen as
	// copy_file_range's memcpy running at 340 instead of 1,800 MiB/s in
	// later rounds); after the warm-up each timed copy, and the push that
	// follows them, writes into page-cache memory the previous copy just
	// freed.
	if _, _, _, err := timedCopy(copyKernel, src, filepath.Join(dir, "copy")); err != nil {
		return took, fsync, err
	}
	os.Remove(filepath.Join(dir, "copy"))
	for k := range numCopyKinds {
		if err := syncFS(dir); err != nil {
			return took, fsync, err
		}
		dst := filepath.Join(dir, "copy")
		d, s, n, err := timedCopy(k, src, dst)
		os.Remove(dst)
		if err != nil {
			return took, fsync, err
		}
		if n != want {
			return took, fsync, errors.New("file copy: short copy")
		}
		took[k], fsync[k] = d, s
	}
	return took, fsync, nil
}
