package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"
)

// fileBlobs serves blob GETs of the filesystem driver straight from the
// blob's data file: http.ServeContent on an *os.File lets the kernel send
// it (sendfile) instead of distribution's buffered copy, and the digest is
// checked once per file version instead of on every read. A file changed
// on disk (another size, mtime or inode) is checked again before it is
// served; one that does not match its digest is never served.
type fileBlobs struct {
	root string // the driver's root directory

	mu       sync.Mutex
	verified map[digest.Digest]fileVersion
}

// fileVersion identifies the content of a file without reading it.
type fileVersion struct {
	size, mtimeNs int64
	ino           uint64
}

func versionOf(fi os.FileInfo) fileVersion {
	v := fileVersion{size: fi.Size(), mtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v.ino = st.Ino
	}
	return v
}

// dataPath is where distribution's layout keeps a blob's bytes, relative
// to the driver (for touches) and on disk.
func (f *fileBlobs) dataPath(d digest.Digest) (driverPath, diskPath string) {
	enc := d.Encoded()
	driverPath = fmt.Sprintf("/docker/registry/v2/blobs/%s/%s/%s/data", d.Algorithm(), enc[:2], enc)
	return driverPath, filepath.Join(f.root, filepath.FromSlash(driverPath))
}

// serve answers a blob GET from the file; false means "not handled here"
// (no such file, a digest it cannot check): the caller lets distribution
// answer, which also renders the registry's errors.
func (f *fileBlobs) serve(w http.ResponseWriter, req *http.Request, d digest.Digest, touch func(string)) (bool, error) {
	if !d.Algorithm().Available() || d.Validate() != nil {
		return false, nil
	}
	driverPath, diskPath := f.dataPath(d)
	touch(driverPath)
	file, err := os.Open(diskPath)
	if err != nil {
		return false, nil
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return false, nil
	}
	if err := f.verify(req.Context(), file, d, versionOf(fi)); err != nil {
		return true, err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	http.ServeContent(w, req, "", fi.ModTime(), file)
	return true, nil
}

// verify hashes the file unless this version of it was verified already.
func (f *fileBlobs) verify(ctx context.Context, file *os.File, d digest.Digest, v fileVersion) error {
	f.mu.Lock()
	ok := f.verified[d] == v
	f.mu.Unlock()
	if ok {
		return nil
	}
	verifier := d.Verifier()
	if _, err := io.Copy(verifier, readerWithContext{ctx, file}); err != nil {
		return err
	}
	if !verifier.Verified() {
		return fmt.Errorf("blob %s: content on disk does not match its digest", d)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	f.mu.Lock()
	f.verified[d] = v
	f.mu.Unlock()
	return nil
}

// verifiedAtUpload records the current version of d's file as verified:
// distribution checked the content against d when the upload completed.
func (f *fileBlobs) verifiedAtUpload(d digest.Digest) {
	if d.Validate() != nil {
		return
	}
	_, diskPath := f.dataPath(d)
	fi, err := os.Stat(diskPath)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.verified[d] = versionOf(fi)
	f.mu.Unlock()
}

// forget drops what is known of d (deleted by garbage collection).
func (f *fileBlobs) forget(d digest.Digest) {
	f.mu.Lock()
	delete(f.verified, d)
	f.mu.Unlock()
}

// readerWithContext stops a long hash when the request is gone.
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
