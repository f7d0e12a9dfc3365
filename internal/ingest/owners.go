package ingest

import (
	"maps"
	"sync"
)

// Owners knows which domain owns each dataset: the domain of the product
// that declares it as an output. It is loaded from ClickHouse at start,
// refreshed periodically (other replicas store declarations too) and updated
// as this replica accepts metadata.
type Owners struct {
	mu      sync.RWMutex
	dataset map[string]string
}

// NewOwners returns an empty registry.
func NewOwners() *Owners { return &Owners{dataset: map[string]string{}} }

// Owner returns the owning domain of a dataset, or "" when none declares it.
func (o *Owners) Owner(dataset string) string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.dataset[dataset]
}

// Claim records that domain declares datasets.
func (o *Owners) Claim(domain string, datasets []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range datasets {
		o.dataset[d] = domain
	}
}

// Merge adds stored ownership; claims already known here win, since they
// may not be stored yet.
func (o *Owners) Merge(stored map[string]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	merged := maps.Clone(stored)
	maps.Copy(merged, o.dataset)
	o.dataset = merged
}
