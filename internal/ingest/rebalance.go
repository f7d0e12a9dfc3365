package ingest

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Group membership, STYLE practices 5 and 13: what the ingestor buffered
// belongs to the generation it was polled in.
//
//   - revoke: store and commit the buffer within RevokeGrace (the group
//     waits for us); past it, drop the buffer uncommitted, so a ClickHouse
//     outage cannot hold the whole group and get this member kicked out;
//   - lost (the group moved on without us): drop the buffer, uncommitted;
//   - either way the generation ends, so no flush of it can commit later,
//     and partitions we keep are rewound to their first dropped offset.
//
// The callbacks run while the poll loop is parked (BlockRebalanceOnPoll),
// so they own the pending buffer; the flush in flight runs concurrently and
// is waited for or cancelled.

func (i *Ingestor) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	i.mu.Lock()
	for t, ps := range assigned {
		i.assigned[t] = append(i.assigned[t], ps...)
	}
	i.mu.Unlock()
	i.log.Info().Interface("assigned", assigned).Msg("partitions assigned")
}

func (i *Ingestor) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(i.flushBase, i.cfg.RevokeGrace)
	defer cancel()
	err := i.finish(ctx)
	if err != nil {
		i.log.Warn().Err(err).Interface("revoked", revoked).Dur("grace", i.cfg.RevokeGrace).
			Msg("partitions revoked before the buffer could be stored; dropping it uncommitted (the new owner reads it again)")
		i.drop(revoked)
	} else {
		i.endGeneration(revoked, nil)
	}
	i.log.Info().Interface("revoked", revoked).Dur("took", time.Since(start)).Msg("partitions revoked")
}

func (i *Ingestor) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	i.log.Warn().Interface("lost", lost).Msg("partitions lost (the group moved on without this replica); dropping the uncommitted buffer and rejoining")
	i.drop(lost)
}

// finish waits for the flush in flight and flushes the pending buffer,
// within ctx.
func (i *Ingestor) finish(ctx context.Context) error {
	if err := i.waitInflight(ctx); err != nil {
		return err
	}
	i.mu.Lock()
	b := i.pending
	i.pending = i.newBatch()
	i.mu.Unlock()
	if err := i.flush(ctx, b); err != nil {
		i.mu.Lock()
		i.pending = b // still ours to drop
		i.mu.Unlock()
		return err
	}
	return nil
}

// drop cancels the flush in flight and discards the pending buffer, ending
// the generation. Partitions this replica keeps are rewound to the first
// offset that was dropped.
func (i *Ingestor) drop(gone map[string][]int32) {
	i.mu.Lock()
	fl, b := i.inflight, i.pending
	i.pending = i.newBatch()
	i.mu.Unlock()
	var dropped []*batch
	if fl != nil {
		fl.cancel()
		// A cancelled flush ends at its next retry or ClickHouse call; its
		// generation is ended below, so it cannot commit whenever it ends.
		select {
		case <-fl.done:
		case <-time.After(time.Second):
		}
		dropped = append(dropped, fl.b)
	}
	dropped = append(dropped, b)
	i.endGeneration(gone, dropped)
}

// endGeneration starts a new generation: batches of the old one can no
// longer commit. Dropped batches lose their ownership claims, and their
// partitions that are still assigned are rewound by the poll loop.
func (i *Ingestor) endGeneration(gone map[string][]int32, dropped []*batch) {
	i.commitMu.Lock()
	i.gen.Add(1)
	i.commitMu.Unlock()

	i.mu.Lock()
	defer i.mu.Unlock()
	for t, ps := range gone {
		kept := slices.DeleteFunc(slices.Clone(i.assigned[t]), func(p int32) bool { return slices.Contains(ps, p) })
		if len(kept) == 0 {
			delete(i.assigned, t)
		} else {
			i.assigned[t] = kept
		}
	}
	for _, b := range dropped {
		if b == nil {
			continue
		}
		i.owners.Drop(b.id)
		for tp, first := range b.first {
			if !slices.Contains(i.assigned[tp.topic], tp.partition) {
				continue
			}
			if at, ok := i.rewind[tp]; !ok || first < at {
				i.rewind[tp] = first
			}
		}
	}
	i.pending.gen = i.gen.Load()
}

// applyRewinds runs in the poll loop (SetOffsets wants the polling
// goroutine, while no rebalance can run): it moves rewound partitions back
// and drops what the last poll returned for them.
func (i *Ingestor) applyRewinds(recs []*kgo.Record) []*kgo.Record {
	i.mu.Lock()
	rw := i.rewind
	i.rewind = map[topicPartition]int64{}
	i.mu.Unlock()
	if len(rw) == 0 {
		return recs
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	for tp, o := range rw {
		if set[tp.topic] == nil {
			set[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		set[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	i.client.SetOffsets(set)
	i.log.Info().Interface("rewound", set).Msg("partitions rewound to their first uncommitted record")
	return slices.DeleteFunc(recs, func(r *kgo.Record) bool {
		_, ok := rw[topicPartition{r.Topic, r.Partition}]
		return ok
	})
}

func (i *Ingestor) assignedPartitions() map[string][]int32 {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := maps.Clone(i.assigned)
	for t, ps := range out {
		out[t] = slices.Clone(ps)
	}
	return out
}
