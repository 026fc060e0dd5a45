package registry

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/ecr"
)

// MemRepositories is an in-memory Repositories, for tests and tools that
// run a registry without a store.
type MemRepositories struct {
	mu    sync.Mutex
	repos map[string]ecr.Repository
}

var _ Repositories = (*MemRepositories)(nil)

// NewMemRepositories returns a MemRepositories holding repos.
func NewMemRepositories(repos ...ecr.Repository) *MemRepositories {
	m := &MemRepositories{repos: make(map[string]ecr.Repository)}
	for _, r := range repos {
		m.Put(r)
	}
	return m
}

// Put adds or replaces a repository record.
func (m *MemRepositories) Put(r ecr.Repository) {
	m.mu.Lock()
	m.repos[r.Name] = r
	m.mu.Unlock()
}

// Delete removes a repository record.
func (m *MemRepositories) Delete(name string) {
	m.mu.Lock()
	delete(m.repos, name)
	m.mu.Unlock()
}

// Lookup implements Repositories.
func (m *MemRepositories) Lookup(_ context.Context, name string) (ecr.Repository, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.repos[name]
	return r, ok, nil
}

// List implements Repositories.
func (m *MemRepositories) List(context.Context) ([]ecr.Repository, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ecr.Repository, 0, len(m.repos))
	for _, r := range m.repos {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ecr.Repository) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
