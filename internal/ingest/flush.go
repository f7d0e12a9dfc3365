package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// ReasonRejected is the dead-letter reason of a record ClickHouse refused
// to store (found by splitting the batch until only it failed).
const ReasonRejected = "rejected_by_clickhouse"

// errStale says a batch belongs to a group generation that has ended: it
// must not be committed (the partitions' owner reads it again).
var errStale = errors.New("batch of an ended group generation")

// flush stores one batch, dead-letters what it must, makes the batch's
// ownership claims effective and commits. Outages are retried until they
// pass or ctx ends (the batch's generation ended, or the shutdown grace
// ran out); then nothing is committed and the records are read again.
func (i *Ingestor) flush(ctx context.Context, b *batch) error {
	if b.empty() {
		return nil
	}
	start := time.Now()
	if b.rows > 0 {
		poison, err := i.insert(ctx, b)
		if err != nil {
			return err
		}
		if len(poison) > 0 {
			if err := i.rejectStored(ctx, b, poison); err != nil {
				return err
			}
		}
		i.m.insertSeconds.Observe(time.Since(start).Seconds())
	}
	if err := i.sendDeadLetters(ctx, b.dead); err != nil {
		return err
	}
	if err := i.announce(ctx, b); err != nil {
		return err
	}
	i.owners.Stored(b.id)
	if err := i.commit(ctx, b); err != nil {
		return err
	}
	stored := 0
	for f, n := range b.counts {
		i.m.records.WithLabelValues(string(f), "stored").Add(float64(n))
		stored += n
	}
	for _, d := range b.dead {
		i.m.deadLetters.WithLabelValues(d.ref.reason).Inc()
		i.m.records.WithLabelValues(familyOfTopic(d.rec.Topic), "dead_letter").Inc()
		i.log.Warn().Str("reason", d.ref.reason).Str("topic", d.rec.Topic).Int32("partition", d.rec.Partition).
			Int64("offset", d.rec.Offset).Str("error", truncate(d.ref.msg, 500)).Msg("dead-lettered")
	}
	i.storedTotal.Add(int64(stored))
	i.deadTotal.Add(int64(len(b.dead)))
	i.m.flushRows.Observe(float64(stored + len(b.dead)))
	i.log.Debug().Int("stored", stored).Int("dead_letters", len(b.dead)).Dur("took", time.Since(start)).Msg("flushed")
	return nil
}

// insert stores the batch's rows. If ClickHouse rejects the data (not an
// outage), the batch is split in halves until the records it rejects are
// alone; those are returned, everything else is stored.
func (i *Ingestor) insert(ctx context.Context, b *batch) ([]rejected, error) {
	err := i.retry(ctx, "insert", func() error { return asPermanent(i.writer.Insert(ctx, b.parts), insertDataError) })
	if err == nil {
		return nil, nil
	}
	var perm *permanentError
	if !errors.As(err, &perm) {
		return nil, err
	}
	i.log.Warn().Err(perm.err).Int("records", len(b.stored)).Msg("clickhouse rejected the batch's data; isolating the records it refuses")
	var poison []rejected
	var bisect func(items []accepted) error
	bisect = func(items []accepted) error {
		err := i.retry(ctx, "insert", func() error {
			return asPermanent(i.writer.Insert(ctx, []*store.Batch{rowsOf(items)}), insertDataError)
		})
		if !errors.As(err, &perm) {
			return err // nil, or the context ended
		}
		if len(items) == 1 {
			poison = append(poison, rejected{items[0], perm.err})
			return nil
		}
		mid := len(items) / 2
		if err := bisect(items[:mid]); err != nil {
			return err
		}
		return bisect(items[mid:])
	}
	if err := bisect(b.stored); err != nil {
		return nil, err
	}
	return poison, nil
}

type rejected struct {
	item accepted
	err  error
}

// rejectStored moves records ClickHouse refused to the dead letters (read
// again from Kafka: the batch kept only where they are), and takes back the
// ownership claims of a refused declaration.
func (i *Ingestor) rejectStored(ctx context.Context, b *batch, poison []rejected) error {
	dropClaims := map[string]bool{}
	for _, p := range poison {
		rec, note, err := i.reread(ctx, p.item.at)
		if err != nil {
			return err
		}
		b.dead = append(b.dead, deadItem{rec: rec, ref: refuse(ReasonRejected, "%v%s", p.err, note)})
		b.counts[p.item.family]--
		if p.item.claimID != "" {
			dropClaims[p.item.claimID] = true
		}
	}
	if len(dropClaims) == 0 {
		return nil
	}
	var keep []store.Claim
	for _, c := range b.claims {
		if !dropClaims[c.EventID] {
			keep = append(keep, c)
		}
	}
	i.owners.Drop(b.id)
	i.owners.Propose(b.id, keep)
	return nil
}

// reread reads one record again at its position, for the dead letter of a
// record ClickHouse rejected. Kafka not answering is retried like any
// outage; a record no longer there (retention deleted it meanwhile) gets a
// dead letter without its value, and a note saying so.
func (i *Ingestor) reread(ctx context.Context, at recordRef) (*kgo.Record, string, error) {
	var rec *kgo.Record
	var note string
	gone := func() {
		rec = &kgo.Record{Topic: at.topic, Partition: at.partition, Offset: at.offset}
		note = " (the record is no longer in Kafka; its value could not be kept)"
	}
	err := i.retry(ctx, "dead_letter", func() error {
		cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), i.kafkaOpts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{at.topic: {at.partition: kgo.NewOffset().At(at.offset)}}),
			kgo.FetchMaxPartitionBytes(i.cfg.fetchPartitionBytes()))...)
		if err != nil {
			return err
		}
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for pctx.Err() == nil {
			fetches := cl.PollFetches(pctx)
			var fetchErr error
			fetches.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					fetchErr = err
				}
			})
			if errors.Is(fetchErr, kerr.OffsetOutOfRange) {
				gone()
				return nil
			}
			if fetchErr != nil {
				return fetchErr
			}
			past := false
			fetches.EachRecord(func(r *kgo.Record) {
				switch {
				case r.Offset == at.offset:
					rec = r
				case r.Offset > at.offset:
					past = true
				}
			})
			if rec != nil {
				return nil
			}
			if past {
				gone()
				return nil
			}
		}
		return fmt.Errorf("read %s/%d@%d again: %w", at.topic, at.partition, at.offset, pctx.Err())
	})
	return rec, note, err
}

// sendDeadLetters produces the dead letters, each at most once. A dead
// letter the topic refuses for its size is cut down and sent again.
func (i *Ingestor) sendDeadLetters(ctx context.Context, items []deadItem) error {
	if len(items) == 0 {
		return nil
	}
	sent := make([]bool, len(items))
	limit := i.cfg.DeadLetterMaxBytes
	return i.retry(ctx, "dead_letter", func() error {
		var recs []*kgo.Record
		var idx []int
		for k, d := range items {
			if !sent[k] {
				recs = append(recs, deadLetter(d.rec, d.ref, limit))
				idx = append(idx, k)
			}
		}
		var firstErr error
		shrink := false
		for k, res := range i.client.ProduceSync(ctx, recs...) {
			switch {
			case res.Err == nil:
				sent[idx[k]] = true
			case tooLarge(res.Err):
				shrink = true
			case firstErr == nil:
				firstErr = res.Err
			}
		}
		if shrink && limit > 1<<10 {
			limit /= 2
			i.log.Warn().Int("max_bytes", limit).Msg("a dead letter was too large for mesh.deadletter; cutting it further")
			if firstErr == nil {
				firstErr = fmt.Errorf("dead letter too large; retrying at %d bytes", limit)
			}
		}
		if firstErr != nil && authorizationError(firstErr) {
			firstErr = fmt.Errorf("not authorised to write %s (the ingestor's principal needs Write on it): %w", events.TopicDeadLetter, firstErr)
		}
		return firstErr
	})
}

// announce names on the change feed what the stored batch changed, so the
// scorer finds it without scanning: datasets with new signals, products with
// new declarations, datasets with new lineage edges. It runs after the
// insert (the scorer reads what is named) and before the commit (a crash in
// between replays the batch and names it again).
func (i *Ingestor) announce(ctx context.Context, b *batch) error {
	kinds := map[string]byte{}
	for _, part := range b.parts {
		for kind, flag := range map[int]byte{store.TouchedQuality: kafka.ChangeQuality, store.TouchedUsage: kafka.ChangeUsage,
			store.TouchedRuns: kafka.ChangeRuns, store.TouchedLineage: kafka.ChangeLineage, store.TouchedProducts: kafka.ChangeDeclaration} {
			for _, urn := range part.Touched(kind) {
				kinds[urn] |= flag
			}
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(kinds))
	for urn, kind := range kinds {
		recs = append(recs, kafka.ChangeRecord(urn, kind))
	}
	return i.retry(ctx, "announce", func() error {
		err := i.client.ProduceSync(ctx, recs...).FirstErr()
		if err != nil && authorizationError(err) {
			err = fmt.Errorf("not authorised to write %s (the ingestor's principal needs Write on it): %w", kafka.TopicChanges, err)
		}
		return err
	})
}

// commit commits the batch's offsets, unless its generation has ended. It
// holds commitMu so a revoke cannot end the generation mid-commit.
func (i *Ingestor) commit(ctx context.Context, b *batch) error {
	offsets := b.offsets()
	return i.retry(ctx, "commit", func() error {
		i.commitMu.Lock()
		defer i.commitMu.Unlock()
		if b.gen != i.gen.Load() {
			return asPermanent(errStale, func(error) bool { return true })
		}
		var cerr error
		i.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
						cerr = fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, e)
					}
				}
			}
		})
		if membershipError(cerr) {
			return asPermanent(fmt.Errorf("%w: %w", errStale, cerr), func(error) bool { return true })
		}
		if cerr != nil {
			return cerr
		}
		for tp, o := range b.next {
			i.m.committed.WithLabelValues(tp.topic, partitionLabel(tp.partition)).Set(float64(o.Offset))
		}
		i.health.progress()
		return nil
	})
}

// permanentError stops a retry loop: retrying the same thing cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func asPermanent(err error, isPermanent func(error) bool) error {
	if err != nil && isPermanent(err) {
		return &permanentError{err}
	}
	return err
}

// retry runs fn with exponential backoff until it succeeds, returns a
// permanent error, or ctx ends.
func (i *Ingestor) retry(ctx context.Context, stage string, fn func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		var perm *permanentError
		if err == nil || errors.As(err, &perm) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		i.m.flushErrors.WithLabelValues(stage).Inc()
		i.health.failing(stage, err)
		i.log.Error().Err(err).Str("stage", stage).Dur("retry_in", backoff).Msg("flush failed; retrying")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func familyOfTopic(topic string) string {
	if _, f, err := events.ParseTopic(topic); err == nil {
		return string(f)
	}
	return "unknown"
}
