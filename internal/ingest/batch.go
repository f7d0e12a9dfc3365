package ingest

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// batch is what the ingestor buffers between polls and a flush: rows ready
// for ClickHouse, dead letters, the records behind the rows (to isolate one
// that ClickHouse rejects), the ownership claims they make, and the offsets
// to commit once everything is stored. It belongs to the group generation
// it was polled in.
type batch struct {
	id     uint64 // unique per process, keys the batch's ownership claims
	gen    uint64 // assignment generation it was polled in
	parts  []*store.Batch
	rows   int
	bytes  int        // of the records behind the rows
	stored []accepted // records that produced rows, in poll order
	dead   []deadItem
	counts map[events.Family]int
	claims []store.Claim
	// first and next offset per partition: commit next once stored; rewind
	// to first if the batch is dropped while the partition stays ours.
	first map[topicPartition]int64
	next  map[topicPartition]kgo.EpochOffset
	since time.Time // when the first record arrived
}

// deadItem is a refused record; its dead letter is built when it is sent,
// so that it can be cut further if the topic refuses its size.
type deadItem struct {
	rec *kgo.Record
	ref *refusal
}

// accepted is a record that produced rows. It keeps where its rows are (to
// insert them alone if ClickHouse rejects the batch) and where the record
// is (to read it again for its dead letter then), but neither the decoded
// event nor the record: those would hold the batch's fetch buffers alive
// for the rare batch ClickHouse rejects.
type accepted struct {
	at      recordRef
	family  events.Family
	claimID string // event id of a product declaration, whose claims go if it is rejected
	rows    store.Span
}

// recordRef is where a record is in Kafka.
type recordRef struct {
	topic     string
	partition int32
	offset    int64
}

func refOf(r *kgo.Record) recordRef { return recordRef{r.Topic, r.Partition, r.Offset} }

type topicPartition struct {
	topic     string
	partition int32
}

func newBatch(id, gen uint64) *batch {
	return &batch{id: id, gen: gen, counts: map[events.Family]int{},
		first: map[topicPartition]int64{}, next: map[topicPartition]kgo.EpochOffset{}}
}

// add merges one poll's result.
func (b *batch) add(p *polled) {
	if b.empty() {
		b.since = time.Now()
	}
	for _, part := range p.parts {
		if part.Len() > 0 {
			b.parts = append(b.parts, part)
			b.rows += part.Len()
		}
	}
	b.stored = append(b.stored, p.stored...)
	b.bytes += p.bytes
	b.dead = append(b.dead, p.dead...)
	b.claims = append(b.claims, p.claims...)
	for f, n := range p.counts {
		b.counts[f] += n
	}
	for tp, o := range p.first {
		if _, ok := b.first[tp]; !ok {
			b.first[tp] = o
		}
	}
	for tp, o := range p.next {
		b.next[tp] = o
	}
}

func (b *batch) empty() bool { return len(b.next) == 0 }
func (b *batch) size() int   { return b.rows + len(b.dead) }

// full says the batch should go: BatchRows rows, or BatchBytes of records
// behind them (OpenLineage events are a few KiB each, usage events tens of
// bytes: rows alone would let large events fill the heap).
func (b *batch) full(c *Config) bool { return b.size() >= c.BatchRows || b.bytes >= c.BatchBytes }

// offsets is the commit request: the next offset of every partition.
func (b *batch) offsets() map[string]map[int32]kgo.EpochOffset {
	out := map[string]map[int32]kgo.EpochOffset{}
	for tp, o := range b.next {
		if out[tp.topic] == nil {
			out[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		out[tp.topic][tp.partition] = o
	}
	return out
}

// polled is what one poll produced.
type polled struct {
	parts  []*store.Batch
	stored []accepted
	bytes  int // of the accepted records
	dead   []deadItem
	claims []store.Claim
	counts map[events.Family]int
	first  map[topicPartition]int64
	next   map[topicPartition]kgo.EpochOffset
}

// rowsOf copies out the rows of some accepted records, for isolating a
// record ClickHouse rejects.
func rowsOf(items []accepted) *store.Batch {
	spans := make([]store.Span, len(items))
	for k, it := range items {
		spans[k] = it.rows
	}
	return store.Select(spans)
}

// addRows appends an authorised event's rows.
func addRows(b *store.Batch, ev events.Event, owner string) {
	switch e := ev.(type) {
	case *events.ProductMetadata:
		b.AddMetadata(e)
	case *events.LineageRun:
		b.AddLineage(e)
	case *events.UsageEvent:
		b.AddUsage(e, owner)
	case *events.QualityResult:
		b.AddQuality(e, owner)
	}
}
