package registry

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// CollectStats reports what one Collect did.
type CollectStats struct {
	Referenced    int // blobs some manifest references (kept)
	Deleted       int // unreferenced blobs removed
	Spared        int // unreferenced blobs kept because they are recent or in use
	UploadsPurged int // unfinished uploads older than UploadMaxAge removed
}

// Collect removes blobs no manifest of any repository references, and
// unfinished uploads older than UploadMaxAge. It is safe while pushes
// run:
//   - uploads in progress live in repository _uploads directories, which
//     the sweep never enters (only UploadMaxAge purges them);
//   - a blob is removed only when its data is older than GCGracePeriod
//     AND no request of this process touched it (stat, read, write, or
//     commit of its data) within GCGracePeriod. A push HEADs or uploads
//     each layer and its manifest PUT stats each one, so a blob a push is
//     about to reference counts as used;
//   - the touched-check and the deletion of each blob happen under the
//     same lock as the recording of touches, so a request racing the
//     deletion either protects the blob or finds it missing and uploads it
//     again, which clients do on a 404;
//   - a manifest written after marking began is not seen by the mark, but
//     its own blob and its layers were touched by that very push.
//
// Untagged manifests are kept (ECR lists them as untagged images;
// lifecycle policies expire them). Other processes sharing the storage
// (several servers on S3) are protected by the grace period only.
func (r *Registry) Collect(ctx context.Context) (CollectStats, error) {
	r.gcMu.Lock()
	defer r.gcMu.Unlock()
	var st CollectStats
	start := r.clock.Now()
	cutoff := start.Add(-r.cfg.GCGracePeriod)

	ctx = r.libCtx(ctx)
	purged, err := r.purgeUploads(ctx, start.Add(-r.cfg.UploadMaxAge))
	st.UploadsPurged = purged
	if err != nil {
		return st, err
	}

	marked, links, err := r.mark(ctx)
	if err != nil {
		return st, err
	}
	st.Referenced = len(marked)

	var candidates []digest.Digest
	err = r.gcView.Blobs().Enumerate(ctx, func(d digest.Digest) error {
		if _, ok := marked[d]; !ok {
			candidates = append(candidates, d)
		}
		return ctx.Err()
	})
	if err != nil && !isPathNotFound(err) {
		return st, fmt.Errorf("registry gc: enumerating blobs: %w", err)
	}

	vacuum := storage.NewVacuum(ctx, r.inner)
	for _, d := range candidates {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		fi, err := r.inner.Stat(ctx, blobDataPath(d))
		if err != nil || fi.ModTime().After(cutoff) {
			st.Spared++ // young, or half-written by a commit in progress
			continue
		}
		removed, err := r.sweepBlob(ctx, vacuum, d, cutoff, links[d])
		if err != nil {
			return st, err
		}
		if removed {
			st.Deleted++
		} else {
			st.Spared++
		}
	}

	r.touches.mu.Lock()
	r.touches.forgetBeforeLocked(cutoff)
	r.touches.mu.Unlock()
	if st.Deleted > 0 || st.UploadsPurged > 0 {
		r.log.Info("registry garbage collected", "deleted", st.Deleted, "spared", st.Spared,
			"referenced", st.Referenced, "uploadsPurged", st.UploadsPurged)
	}
	return st, nil
}

// sweepBlob removes one unreferenced blob, and the repository layer links
// to it, unless a request used it since cutoff.
func (r *Registry) sweepBlob(ctx context.Context, vacuum storage.Vacuum, d digest.Digest, cutoff time.Time, repos []string) (bool, error) {
	r.touches.mu.Lock()
	defer r.touches.mu.Unlock()
	if r.touches.usedSinceLocked(d, cutoff) {
		return false, nil
	}
	for _, repo := range repos {
		if err := vacuum.RemoveLayer(repo, d); err != nil && !isPathNotFound(err) {
			return false, fmt.Errorf("registry gc: unlinking %s from %s: %w", d, repo, err)
		}
	}
	if err := vacuum.RemoveBlob(d.String()); err != nil && !isPathNotFound(err) {
		return false, fmt.Errorf("registry gc: deleting %s: %w", d, err)
	}
	if r.files != nil {
		r.files.forget(d)
	}
	return true, nil
}

// mark returns the blobs some manifest references (manifests themselves
// included) and, for every blob a repository links as a layer, the
// repositories that link it. It reads the real driver, so marking touches
// nothing.
func (r *Registry) mark(ctx context.Context) (map[digest.Digest]struct{}, map[digest.Digest][]string, error) {
	marked := make(map[digest.Digest]struct{})
	links := make(map[digest.Digest][]string)
	err := r.gcView.(distribution.RepositoryEnumerator).Enumerate(ctx, func(name string) error {
		named, err := reference.WithName(name)
		if err != nil {
			return nil // not a repository distribution could have written
		}
		repo, err := r.gcView.Repository(ctx, named)
		if err != nil {
			return err
		}
		ms, err := repo.Manifests(ctx)
		if err != nil {
			return err
		}
		err = ms.(distribution.ManifestEnumerator).Enumerate(ctx, func(d digest.Digest) error {
			return markManifest(ctx, ms, d, marked, 0)
		})
		if err != nil && !isPathNotFound(err) {
			return fmt.Errorf("manifests of %s: %w", name, err)
		}
		err = repo.Blobs(ctx).(distribution.ManifestEnumerator).Enumerate(ctx, func(d digest.Digest) error {
			links[d] = append(links[d], name)
			return nil
		})
		if err != nil && !isPathNotFound(err) {
			return fmt.Errorf("layers of %s: %w", name, err)
		}
		return ctx.Err()
	})
	if err != nil && !isPathNotFound(err) {
		return nil, nil, fmt.Errorf("registry gc: marking: %w", err)
	}
	return marked, links, nil
}

// markManifest marks a manifest and what it references, following child
// manifests of indexes. A manifest that vanished meanwhile (deleted by a
// request) is skipped; one that cannot be read stops the collection, as
// its references are unknown.
func markManifest(ctx context.Context, ms distribution.ManifestService, d digest.Digest, marked map[digest.Digest]struct{}, depth int) error {
	marked[d] = struct{}{}
	m, err := ms.Get(ctx, d)
	if err != nil {
		var unknown distribution.ErrManifestUnknownRevision
		if errors.As(err, &unknown) || isPathNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading manifest %s: %w", d, err)
	}
	for _, ref := range m.References() {
		if _, seen := marked[ref.Digest]; seen {
			continue
		}
		marked[ref.Digest] = struct{}{}
		if depth < 8 {
			if ok, _ := ms.Exists(ctx, ref.Digest); ok {
				if err := markManifest(ctx, ms, ref.Digest, marked, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// purgeUploads removes unfinished uploads started before olderThan. (It is
// distribution's storage.PurgeUploads without its logging to the global
// logrus logger.) An upload without a readable startedat file is left
// alone, as distribution does.
func (r *Registry) purgeUploads(ctx context.Context, olderThan time.Time) (int, error) {
	var stale []string
	err := r.inner.Walk(ctx, strings.TrimSuffix(repositoriesRoot, "/"), func(fi storagedriver.FileInfo) error {
		p := fi.Path()
		base := path.Base(p)
		if fi.IsDir() && (base == "_manifests" || base == "_layers") {
			return storagedriver.ErrSkipDir
		}
		if fi.IsDir() || base != "startedat" || path.Base(path.Dir(path.Dir(p))) != "_uploads" {
			return nil
		}
		b, err := r.inner.GetContent(ctx, p)
		if err != nil {
			return nil
		}
		started, err := time.Parse(time.RFC3339, string(b))
		if err == nil && started.Before(olderThan) {
			stale = append(stale, path.Dir(p))
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		// Uploads finishing under the walk remove their directories; try
		// again at the next collection.
		r.log.Debug("registry gc: listing uploads", "err", err)
		return 0, nil
	}
	n := 0
	for _, dir := range stale {
		if err := r.inner.Delete(ctx, dir); err != nil && !isPathNotFound(err) {
			return n, fmt.Errorf("registry gc: purging upload %s: %w", dir, err)
		}
		n++
	}
	return n, nil
}

func blobDataPath(d digest.Digest) string {
	enc := d.Encoded()
	return blobsRoot + d.Algorithm().String() + "/" + enc[:2] + "/" + enc + "/data"
}

// Collector runs Collect on a schedule. Its goroutine is owned by the
// Collector: Stop (or the Registry's Close) ends it and waits.
type Collector struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartCollector runs Collect every interval until ctx ends, Stop is
// called or the Registry is closed.
func (r *Registry) StartCollector(ctx context.Context, interval time.Duration) (*Collector, error) {
	if interval <= 0 {
		return nil, errdefs.InvalidArgument("registry: collector interval must be positive")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errdefs.New(errdefs.ErrFailedPrecondition, errClosed.Error())
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Collector{cancel: cancel, done: make(chan struct{})}
	r.collectors = append(r.collectors, c)
	go func() {
		defer close(c.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := r.Collect(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("registry garbage collection failed", "err", err)
			}
		}
	}()
	return c, nil
}

// Stop ends the collector and waits for a running Collect to return.
func (c *Collector) Stop() {
	c.once.Do(c.cancel)
	<-c.done
}
