package registry

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/clock"
)

// passthroughDriverName is the storage "driver" handlers.NewApp is
// configured with: it hands back the driver New built (wrapped in a
// trackingDriver), so that the registry app, the storage view and garbage
// collection share one driver. Driver factories are process-global, hence
// the one registration in init.
const passthroughDriverName = "berth-passthrough"

const passthroughDriverParam = "driver"

func init() {
	factory.Register(passthroughDriverName, passthroughFactory{})
}

type passthroughFactory struct{}

func (passthroughFactory) Create(_ context.Context, p map[string]any) (storagedriver.StorageDriver, error) {
	d, ok := p[passthroughDriverParam].(storagedriver.StorageDriver)
	if !ok {
		return nil, errors.New("registry: passthrough driver without a driver")
	}
	return d, nil
}

// blobsRoot is where distribution keeps blob data:
// <blobsRoot><alg>/<first two hex>/<hex>/data.
const blobsRoot = "/docker/registry/v2/blobs/"

// blobDigestOfPath returns the digest whose data lives at p, if p is a blob
// data path.
func blobDigestOfPath(p string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(p, blobsRoot)
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, "/data")
	if !ok {
		return "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || len(parts[1]) != 2 || !strings.HasPrefix(parts[2], parts[1]) {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
	return d, d.Validate() == nil
}

// touches records when each blob was last used by a request of this
// process, so that garbage collection spares blobs a push may be about to
// reference. Every driver call that reads, stats or writes a blob's data
// records the blob before it runs; Collect checks and deletes each
// candidate while holding mu, so a request either touched the blob before
// the check (and the blob is kept) or runs after the deletion (and sees
// the blob missing, which clients answer by uploading it again).
type touches struct {
	clock clock.Clock
	mu    sync.Mutex
	last  map[digest.Digest]time.Time
}

func newTouches(c clock.Clock) *touches {
	return &touches{clock: c, last: make(map[digest.Digest]time.Time)}
}

func (t *touches) touch(p string) {
	d, ok := blobDigestOfPath(p)
	if !ok {
		return
	}
	t.mu.Lock()
	t.last[d] = t.clock.Now()
	t.mu.Unlock()
}

// usedSinceLocked reports whether d was touched at or after since. The
// caller holds mu.
func (t *touches) usedSinceLocked(d digest.Digest, since time.Time) bool {
	ts, ok := t.last[d]
	return ok && !ts.Before(since)
}

// forgetBeforeLocked drops records older than since, which no longer
// protect anything. The caller holds mu.
func (t *touches) forgetBeforeLocked(since time.Time) {
	for d, ts := range t.last {
		if ts.Before(since) {
			delete(t.last, d)
		}
	}
}

// trackingDriver records blob use in touches and otherwise forwards to
// the real driver.
type trackingDriver struct {
	storagedriver.StorageDriver
	t *touches
}

func (d *trackingDriver) GetContent(ctx context.Context, p string) ([]byte, error) {
	d.t.touch(p)
	return d.StorageDriver.GetContent(ctx, p)
}

func (d *trackingDriver) PutContent(ctx context.Context, p string, content []byte) error {
	d.t.touch(p)
	return d.StorageDriver.PutContent(ctx, p, content)
}

func (d *trackingDriver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	d.t.touch(p)
	return d.StorageDriver.Reader(ctx, p, offset)
}

func (d *trackingDriver) Writer(ctx context.Context, p string, appendTo bool) (storagedriver.FileWriter, error) {
	d.t.touch(p)
	return d.StorageDriver.Writer(ctx, p, appendTo)
}

func (d *trackingDriver) Stat(ctx context.Context, p string) (storagedriver.FileInfo, error) {
	d.t.touch(p)
	return d.StorageDriver.Stat(ctx, p)
}

func (d *trackingDriver) Move(ctx context.Context, src, dst string) error {
	d.t.touch(dst)
	return d.StorageDriver.Move(ctx, src, dst)
}
