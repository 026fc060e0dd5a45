// Package ecrlifecycle applies ECR lifecycle policies: on a schedule it
// lists the repositories that have one, evaluates it against their images
// (ecr.EvaluateLifecyclePolicy) and deletes the images it expires.
//
// It is level-driven: each sweep reads the repository records (through a
// store.Reader, in production the watch-fed cache) and the images as they
// are now, so nothing depends on having seen an event; a sweep that fails is
// retried at the next interval. Deleting by digest is idempotent, so
// several servers may sweep at once. An image pushed after the listing is
// not considered until the next sweep; one tagged between the listing and
// its delete may still go, a window of one sweep's duration (ECR itself
// expires images up to a day after they qualify).
package ecrlifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/controller/periodic"
	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/store"
)

// DefaultInterval is how often the policies are applied. ECR expires
// images "within 24 hours" of a policy allowing it; an hour is well inside.
const DefaultInterval = time.Hour

// Images is the part of the registry's storage view the sweeper needs;
// internal/registry's *Registry satisfies it.
type Images interface {
	ListImages(ctx context.Context, repository string) ([]ecr.Image, error)
	DeleteImage(ctx context.Context, repository string, ref ecr.ImageRef) (ecr.ImageRef, error)
}

// Config configures a Sweeper.
type Config struct {
	Store    store.Reader  // repository records; in production the cached store
	Images   Images        // required
	Clock    clock.Clock   // nil means the wall clock; ages are measured with it
	Interval time.Duration // 0 means DefaultInterval
	Logger   *slog.Logger  // nil discards
}

// Sweeper applies lifecycle policies.
type Sweeper struct {
	st       store.Reader
	images   Images
	clock    clock.Clock
	interval time.Duration
	log      *slog.Logger
}

// New returns a Sweeper.
func New(cfg Config) *Sweeper {
	s := &Sweeper{st: cfg.Store, images: cfg.Images, clock: cfg.Clock, interval: cfg.Interval, log: cfg.Logger}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.interval <= 0 {
		s.interval = DefaultInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s
}

// Run sweeps at once and then every interval until ctx ends; it returns
// nil then. Its owner starts it in a goroutine and stops it by cancelling
// ctx, then waits for it to return.
func (s *Sweeper) Run(ctx context.Context) error {
	periodic.Run(ctx, s.interval, s.log, "ecr lifecycle sweep", slog.LevelInfo, s.Sweep)
	return nil
}

// Sweep applies every repository's lifecycle policy once and returns how
// many images it deleted. A repository whose policy or images cannot be
// read is skipped (and reported in the error) without stopping the others.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	kvs, _, err := s.st.List(ctx, ecr.RepositoriesPrefix)
	if err != nil {
		return 0, fmt.Errorf("list repositories: %w", err)
	}
	total := 0
	var errs []error
	for _, kv := range kvs {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		n, err := s.sweepRepository(ctx, kv)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

func (s *Sweeper) sweepRepository(ctx context.Context, kv store.KV) (int, error) {
	rec, err := decode(kv)
	if err != nil {
		return 0, err
	}
	if rec.LifecyclePolicy == "" {
		return 0, nil
	}
	policy, err := ecr.ParseLifecyclePolicy(rec.LifecyclePolicy)
	if err != nil {
		// PutLifecyclePolicy validated it; a stored policy that no longer
		// parses is left alone rather than guessed at.
		return 0, fmt.Errorf("lifecycle policy of %s: %w", rec.Name, err)
	}
	imgs, err := s.images.ListImages(ctx, rec.Name)
	if errors.Is(err, ecr.ErrRepositoryNotFound) {
		return 0, nil // deleted meanwhile
	}
	if err != nil {
		return 0, fmt.Errorf("list images of %s: %w", rec.Name, err)
	}
	n := 0
	for _, e := range ecr.EvaluateLifecyclePolicy(policy, imgs, s.clock.Now()) {
		_, err := s.images.DeleteImage(ctx, rec.Name, ecr.ImageRef{Digest: e.Image.Digest})
		switch {
		case err == nil:
			n++
			s.log.Debug("ecr lifecycle policy expired an image", "repository", rec.Name, "digest", e.Image.Digest, "rulePriority", e.RulePriority)
		case errors.Is(err, ecr.ErrImageNotFound), errors.Is(err, ecr.ErrRepositoryNotFound):
			// Deleted meanwhile (by a user or another server).
		default:
			return n, fmt.Errorf("delete %s@%s: %w", rec.Name, e.Image.Digest, err)
		}
	}
	return n, nil
}

func decode(kv store.KV) (ecr.Repository, error) {
	var r ecr.Repository
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return r, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	return r, nil
}
