package scorer

import (
	"context"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
)

// Change detection does not scan: the ingestor, once a batch is stored,
// names on mesh.changes the datasets whose signals changed, the products
// whose declarations changed and the datasets that got new lineage edges;
// the scorer names the products whose own score changed (other replicas
// propagate trust from them). Every replica reads every partition of the
// topic from where it was when it started (its first full pass covers the
// past). A full pass every -full-pass catches up with whatever the feed may
// have missed, and with windows that move when nothing arrives.

// changeSet is what the feed said since the last tick.
type changeSet struct {
	datasets map[string]byte // dataset -> which signal families changed
	products map[string]bool // new declarations
	edges    map[string]bool // output datasets with new lineage edges
	scores   map[string]bool // products whose own score another replica changed
}

func newChangeSet() changeSet {
	return changeSet{datasets: map[string]byte{}, products: map[string]bool{}, edges: map[string]bool{}, scores: map[string]bool{}}
}

func (c changeSet) empty() bool {
	return len(c.datasets)+len(c.products)+len(c.edges)+len(c.scores) == 0
}

// family lists the datasets whose given signal family changed.
func (c changeSet) family(flag byte) []string {
	var out []string
	for ds, what := range c.datasets {
		if what&flag != 0 {
			out = append(out, ds)
		}
	}
	sort.Strings(out)
	return out
}

// changeFeed accumulates the feed between ticks.
type changeFeed struct {
	mu      sync.Mutex
	pending changeSet
}

func (f *changeFeed) add(r *kgo.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	urn := string(r.Key)
	what := kafka.ChangeKind(r.Value)
	if sig := what & kafka.ChangeSignals; sig != 0 {
		f.pending.datasets[urn] |= sig
	}
	if what&kafka.ChangeLineage != 0 {
		f.pending.edges[urn] = true
	}
	if what&kafka.ChangeDeclaration != 0 {
		f.pending.products[urn] = true
	}
	if what&kafka.ChangeScore != 0 {
		f.pending.scores[urn] = true
	}
}

func (f *changeFeed) take() changeSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.pending
	f.pending = newChangeSet()
	return c
}

// follow reads mesh.changes until ctx ends.
func (s *Scorer) follow(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := s.feed.PollFetches(ctx)
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				s.log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("reading the change feed")
			}
		})
		fetches.EachRecord(s.changes.add)
	}
}
