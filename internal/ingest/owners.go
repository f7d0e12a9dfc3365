package ingest

import (
	"sync"

	"github.com/meshpulse/meshpulse/internal/store"
)

// Owners knows which domain owns each dataset: the domain of the product
// whose declaration claimed it first. Every replica resolves ownership the
// same way, from what is stored:
//
//   - a claim counts once it is stored (dataset_claims); a stored owner is
//     never displaced, so a declaration of another domain's dataset is
//     refused;
//   - claims two replicas accepted at the same time, neither seeing the
//     other's, are resolved by the earliest event time, then event id —
//     the same answer on every replica after its next reload;
//   - the claims of a batch being stored count, tentatively, for the records
//     polled after them on this replica, and vanish if that batch is dropped.
type Owners struct {
	mu        sync.RWMutex
	stored    map[string]store.Claim   // resolved stored owner per dataset
	pending   map[uint64][]store.Claim // claims of batches not stored yet, by batch
	tentative map[string]store.Claim   // earliest pending claim per dataset
}

// NewOwners returns an empty registry.
func NewOwners() *Owners {
	return &Owners{stored: map[string]store.Claim{}, pending: map[uint64][]store.Claim{}, tentative: map[string]store.Claim{}}
}

// Owner returns the owning domain of a dataset, or "" when none claims it.
func (o *Owners) Owner(dataset string) string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if c, ok := o.stored[dataset]; ok {
		return c.Domain
	}
	return o.tentative[dataset].Domain
}

// Propose records the claims of a batch that is not stored yet.
func (o *Owners) Propose(batch uint64, claims []store.Claim) {
	if len(claims) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending[batch] = append(o.pending[batch], claims...)
	for _, c := range claims {
		if t, ok := o.tentative[c.Dataset]; !ok || c.Before(t) {
			o.tentative[c.Dataset] = c
		}
	}
}

// Stored makes a batch's claims effective: it was inserted.
func (o *Owners) Stored(batch uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.pending[batch] {
		o.keep(c)
	}
	o.dropLocked(batch)
}

// Drop forgets the claims of batches that will not be stored.
func (o *Owners) Drop(batches ...uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropLocked(batches...)
}

func (o *Owners) dropLocked(batches ...uint64) {
	for _, b := range batches {
		delete(o.pending, b)
	}
	o.tentative = map[string]store.Claim{}
	for _, cs := range o.pending {
		for _, c := range cs {
			if t, ok := o.tentative[c.Dataset]; !ok || c.Before(t) {
				o.tentative[c.Dataset] = c
			}
		}
	}
}

// Load merges the owners resolved from ClickHouse: for each dataset the
// earliest of the loaded claim and any this replica stored since.
func (o *Owners) Load(resolved map[string]store.Claim) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.stored {
		if r, ok := resolved[c.Dataset]; !ok || c.Before(r) {
			resolved[c.Dataset] = c
		}
	}
	o.stored = resolved
}

func (o *Owners) keep(c store.Claim) {
	if s, ok := o.stored[c.Dataset]; !ok || c.Before(s) {
		o.stored[c.Dataset] = c
	}
}
