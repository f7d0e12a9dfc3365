package ingest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Dead-letter headers. The record keeps its original key, value and headers.
const (
	HeaderReason    = "mesh.dlq.reason"
	HeaderError     = "mesh.dlq.error"
	HeaderTopic     = "mesh.dlq.topic"
	HeaderPartition = "mesh.dlq.partition"
	HeaderOffset    = "mesh.dlq.offset"
	HeaderTime      = "mesh.dlq.time"
)

// decoded is one record after the parallel decode step.
type decoded struct {
	ev      events.Event
	emitter string
	ref     *refusal
}

// polled is what one poll produced: rows per worker, dead letters, and the
// offsets to commit once they are stored.
type polled struct {
	parts   []*store.Batch
	dead    []*kgo.Record
	stored  map[events.Family]int
	offsets map[string]map[int32]kgo.EpochOffset
}

// process turns polled records into rows and dead letters. Decoding and
// normalising run on all workers; metadata is authorised in record order
// first, because it changes who owns which dataset for the records after it.
func (i *Ingestor) process(ctx context.Context, recs []*kgo.Record) *polled {
	dec := make([]decoded, len(recs))
	i.parallel(len(recs), func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			dec[j] = i.decode(ctx, recs[j])
		}
	})

	for j := range dec {
		if md, ok := dec[j].ev.(*events.ProductMetadata); ok && dec[j].ref == nil {
			if _, ref := authorise(dec[j].emitter, md, i.owners); ref != nil {
				dec[j].ref = ref
				continue
			}
			outs := make([]string, len(md.Outputs))
			for k, o := range md.Outputs {
				outs[k] = o.DatasetURN
			}
			i.owners.Claim(md.Domain, outs)
		}
	}

	n := i.cfg.workers()
	out := &polled{parts: make([]*store.Batch, n), stored: map[events.Family]int{}}
	dead := make([][]*kgo.Record, n)
	stored := make([]map[events.Family]int, n)
	i.parallel(len(recs), func(w, lo, hi int) {
		b := &store.Batch{}
		st := map[events.Family]int{}
		for j := lo; j < hi; j++ {
			d := &dec[j]
			if d.ref == nil {
				d.ref = add(b, d, i.owners)
			}
			if d.ref != nil {
				dead[w] = append(dead[w], deadLetter(recs[j], d.ref))
				continue
			}
			st[d.ev.Family()]++
		}
		out.parts[w], stored[w] = b, st
	})
	for w := range n {
		out.dead = append(out.dead, dead[w]...)
		for f, c := range stored[w] {
			out.stored[f] += c
		}
	}
	out.offsets = map[string]map[int32]kgo.EpochOffset{}
	for _, r := range recs {
		p := out.offsets[r.Topic]
		if p == nil {
			p = map[int32]kgo.EpochOffset{}
			out.offsets[r.Topic] = p
		}
		p[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	}
	return out
}

// add authorises a decoded event and appends its rows.
func add(b *store.Batch, d *decoded, owners ownerLookup) *refusal {
	if md, ok := d.ev.(*events.ProductMetadata); ok {
		b.AddMetadata(md) // authorised in record order by process
		return nil
	}
	owner, ref := authorise(d.emitter, d.ev, owners)
	if ref != nil {
		return ref
	}
	switch e := d.ev.(type) {
	case *events.LineageRun:
		b.AddLineage(e)
	case *events.UsageEvent:
		b.AddUsage(e, owner)
	case *events.QualityResult:
		b.AddQuality(e, owner)
	}
	return nil
}

// decode reads and validates one record. A schema registry that does not
// answer is retried here rather than dead-lettering good records.
func (i *Ingestor) decode(ctx context.Context, r *kgo.Record) decoded {
	emitter, family, err := events.ParseTopic(r.Topic)
	if err != nil {
		return decoded{ref: refuse(ReasonWrongFamily, "%v", err)}
	}
	var ev events.Event
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		ev, err = i.codecs.Decode(ctx, r.Value)
		if err == nil || !events.IsTemporary(err) || ctx.Err() != nil {
			break
		}
		i.log.Warn().Err(err).Msg("schema registry lookup failed; retrying")
		time.Sleep(backoff)
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
	if err := ev.Validate(); err != nil {
		reason := events.ReasonInvalidEvent
		var ve *events.ValidationError
		if errors.As(err, &ve) {
			reason = ve.Reason()
		}
		return decoded{emitter: emitter, ref: refuse(reason, "%v", err)}
	}
	return decoded{ev: ev, emitter: emitter}
}

// deadLetter wraps the original record for mesh.deadletter.
func deadLetter(r *kgo.Record, ref *refusal) *kgo.Record {
	headers := append(append([]kgo.RecordHeader(nil), r.Headers...),
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(ref.reason)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(ref.msg)},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderTime, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	)
	return &kgo.Record{Topic: events.TopicDeadLetter, Key: r.Key, Value: r.Value, Headers: headers}
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
