package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// ReasonRecordTooLarge refuses a record larger than MaxRecordBytes unread.
const ReasonRecordTooLarge = "record_too_large"

// decoded is one record after the parallel decode step.
type decoded struct {
	ev      events.Event
	ol      *openlineage.Mapped // an OpenLineage record, instead of ev
	emitter string
	ref     *refusal
	owner   string
	owners  []string // an OpenLineage record's quality results' owners
	retry   bool     // decoding waited on an outage and was abandoned
}

// process turns polled records into rows and dead letters. Decoding and
// normalising run on all workers; metadata is authorised in record order
// first, because it changes who owns which dataset for the records after
// it. It reports false when ctx ended while decoding waited on an outage
// (the schema registry): then nothing of the poll may be kept.
func (i *Ingestor) process(ctx context.Context, recs []*kgo.Record) (*polled, bool) {
	now := time.Now()
	dec := make([]decoded, len(recs))
	i.parallel(len(recs), func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			dec[j] = i.decode(ctx, recs[j], now)
		}
	})
	for j := range dec {
		if dec[j].retry {
			return nil, false
		}
	}

	out := &polled{counts: map[events.Family]int{}, first: map[topicPartition]int64{}, next: map[topicPartition]kgo.EpochOffset{}}
	// Claims made earlier in this poll count for the records after them.
	owners := &pollOwners{base: i.owners, claimed: map[string]string{}}
	for j := range dec {
		md, ok := dec[j].ev.(*events.ProductMetadata)
		if !ok || dec[j].ref != nil {
			continue
		}
		if _, ref := authorise(dec[j].emitter, md, owners); ref != nil {
			dec[j].ref = ref
			continue
		}
		for _, o := range md.Outputs {
			if owners.Owner(o.DatasetURN) == "" {
				owners.claimed[o.DatasetURN] = md.Domain
			}
			out.claims = append(out.claims, store.ClaimOf(md, o.DatasetURN))
		}
	}

	n := i.cfg.workers()
	out.parts = make([]*store.Batch, n)
	dead := make([][]deadItem, n)
	stored := make([][]accepted, n)
	counts := make([]map[events.Family]int, n)
	size := make([]int, n)
	i.parallel(len(recs), func(w, lo, hi int) {
		b := &store.Batch{}
		st := map[events.Family]int{}
		for j := lo; j < hi; j++ {
			d := &dec[j]
			if d.ref == nil {
				if d.ol != nil {
					d.owners, d.ref = authoriseOpenLineage(d.emitter, d.ol, owners)
				} else if _, isMeta := d.ev.(*events.ProductMetadata); !isMeta {
					d.owner, d.ref = authorise(d.emitter, d.ev, owners)
				}
			}
			if d.ref != nil {
				dead[w] = append(dead[w], deadItem{rec: recs[j], ref: d.ref})
				continue
			}
			a := accepted{at: refOf(recs[j]), rows: store.Span{Part: b, From: b.Mark()}}
			if d.ol != nil {
				a.family = events.FamilyOpenLineage
				addOpenLineageRows(b, d.ol, d.owners)
			} else {
				a.family = d.ev.Family()
				if md, ok := d.ev.(*events.ProductMetadata); ok {
					a.claimID = md.EventID
				}
				addRows(b, d.ev, d.owner)
			}
			a.rows.To = b.Mark()
			size[w] += len(recs[j].Value)
			stored[w] = append(stored[w], a)
			st[a.family]++
		}
		out.parts[w], counts[w] = b, st
	})
	for w := range n {
		out.dead = append(out.dead, dead[w]...)
		out.stored = append(out.stored, stored[w]...)
		out.bytes += size[w]
		for f, c := range counts[w] {
			out.counts[f] += c
		}
	}
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		if _, ok := out.first[tp]; !ok {
			out.first[tp] = r.Offset
		}
		out.next[tp] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	}
	return out, true
}

// pollOwners is Owners with the claims made earlier in the same poll.
type pollOwners struct {
	base    *Owners
	claimed map[string]string // written before the parallel step, then only read
}

func (p *pollOwners) Owner(ds string) string {
	if o := p.base.Owner(ds); o != "" {
		return o
	}
	return p.claimed[ds]
}

// decode reads and validates one record. A schema registry that does not
// answer is retried here rather than dead-lettering good records; if ctx
// ends first the record is marked for a retry, never refused.
func (i *Ingestor) decode(ctx context.Context, r *kgo.Record, now time.Time) decoded {
	emitter, family, err := events.ParseTopic(r.Topic)
	if err != nil {
		return decoded{ref: refuse(ReasonWrongFamily, "%v", err)}
	}
	if len(r.Value) > i.cfg.MaxRecordBytes {
		return decoded{emitter: emitter, ref: refuse(ReasonRecordTooLarge, "record of %d bytes is larger than the limit of %d", len(r.Value), i.cfg.MaxRecordBytes)}
	}
	if family == events.FamilyOpenLineage {
		return i.decodeOpenLineage(r.Value, emitter, now)
	}
	var ev events.Event
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		ev, err = i.codecs.Decode(ctx, r.Value)
		if err == nil || !events.IsTemporary(err) {
			break
		}
		i.health.failing("decode", err)
		i.log.Warn().Err(err).Msg("schema registry lookup failed; retrying")
		select {
		case <-ctx.Done():
			return decoded{retry: true}
		case <-time.After(backoff):
		}
	}
	if err != nil {
		var de *events.DecodeError
		if errors.As(err, &de) {
			return decoded{emitter: emitter, ref: &refusal{reason: de.Reason, msg: de.Err.Error()}}
		}
		return decoded{emitter: emitter, ref: refuse(events.ReasonMalformedBody, "%v", err)}
	}
	if ev.Family() != family {
		return decoded{emitter: emitter, ref: refuse(ReasonWrongFamily, "a %s event on %s topic %s", ev.Family(), family, r.Topic)}
	}
	if err := ev.ValidateWith(i.cfg.Limits, now); err != nil {
		reason := events.ReasonInvalidEvent
		var ve *events.ValidationError
		if errors.As(err, &ve) {
			reason = ve.Reason()
		}
		return decoded{emitter: emitter, ref: refuse(reason, "%v", err)}
	}
	return decoded{ev: ev, emitter: emitter}
}

// parallel splits [0, n) into one contiguous range per worker.
func (i *Ingestor) parallel(n int, fn func(worker, lo, hi int)) {
	w := i.cfg.workers()
	var wg sync.WaitGroup
	for k := range w {
		lo, hi := n*k/w, n*(k+1)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(k, lo, hi)
		}()
	}
	wg.Wait()
}
