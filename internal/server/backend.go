package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/embedetcd"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/etcdstore"
)

// backend is the state store and, when embedded, the etcd server under it.
type backend struct {
	store store.Store
	etcd  *embedetcd.Server // nil with --etcd-endpoints
}

// etcdURLs are the embedded etcd's URLs, chosen at first start and kept in
// the data directory so that a restart finds its member where it left it.
type etcdURLs struct {
	Client string `json:"client"`
	Peer   string `json:"peer"`
}

func openBackend(ctx context.Context, cfg config.Server, log *slog.Logger) (*backend, error) {
	b := &backend{}
	endpoints := cfg.EtcdEndpoints
	if len(endpoints) == 0 {
		urls, err := loadEtcdURLs(filepath.Join(cfg.DataDir, "etcd.json"))
		if err != nil {
			return nil, err
		}
		b.etcd, err = embedetcd.Start(ctx, embedetcd.Config{
			Dir:       filepath.Join(cfg.DataDir, "etcd"),
			Name:      "berth",
			ClientURL: urls.Client,
			PeerURL:   urls.Peer,
		})
		if err != nil {
			return nil, fmt.Errorf("start embedded etcd: %w", err)
		}
		endpoints = b.etcd.Endpoints()
		if urls.Client == "" {
			if err := saveEtcdURLs(filepath.Join(cfg.DataDir, "etcd.json"), b.etcd); err != nil {
				b.close()
				return nil, err
			}
		}
		log.Debug("embedded etcd ready", "endpoints", endpoints)
	}
	st, err := etcdstore.New(ctx, etcdstore.Config{Endpoints: endpoints, Prefix: cfg.EtcdPrefix, DialTimeout: 5 * time.Second})
	if err != nil {
		b.close()
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	b.store = st
	return b, nil
}

func loadEtcdURLs(path string) (etcdURLs, error) {
	var u etcdURLs
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return u, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

func saveEtcdURLs(path string, e *embedetcd.Server) error {
	b, err := json.Marshal(etcdURLs{Client: e.ClientURL(), Peer: e.PeerURL()})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// failed reports a fatal error of the embedded etcd; nil channel otherwise.
func (b *backend) failed() <-chan error {
	if b.etcd == nil {
		return nil
	}
	return b.etcd.Err()
}

func (b *backend) close() error {
	var errs []error
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	if b.etcd != nil {
		errs = append(errs, b.etcd.Close())
	}
	return errors.Join(errs...)
}
