package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Writer stores batches; store.Writer is the real one.
type Writer interface {
	Insert(ctx context.Context, parts []*store.Batch) error
	DatasetOwners(ctx context.Context) (map[string]string, error)
}

// Ingestor consumes the inbound topics into ClickHouse.
type Ingestor struct {
	cfg    Config
	client *kgo.Client
	codecs *events.Codecs
	writer Writer
	owners *Owners
	log    zerolog.Logger
	m      *Metrics

	// flushCtx outlives the Run context by ShutdownGrace, so that the batch
	// in flight at shutdown can still be finished.
	flushCtx    context.Context
	flushCancel context.CancelFunc

	mu       sync.Mutex
	pending  *pending
	inflight chan struct{} // closed when the running flush ends; nil if none
	ready    atomic.Bool

	// stats for tests and the dev console
	storedTotal atomic.Int64
	deadTotal   atomic.Int64
}

// pending is the buffer between polls and a flush.
type pending struct {
	parts   []*store.Batch
	dead    []*kgo.Record
	stored  map[events.Family]int
	offsets map[string]map[int32]kgo.EpochOffset
	rows    int
	since   time.Time // when the first record arrived
}

func newPending() *pending {
	return &pending{stored: map[events.Family]int{}, offsets: map[string]map[int32]kgo.EpochOffset{}}
}

func (p *pending) add(o *polled) {
	if p.rows == 0 && len(p.dead) == 0 && len(p.offsets) == 0 {
		p.since = time.Now()
	}
	for _, b := range o.parts {
		if b.Len() > 0 {
			p.parts = append(p.parts, b)
			p.rows += b.Len()
		}
	}
	p.dead = append(p.dead, o.dead...)
	for f, n := range o.stored {
		p.stored[f] += n
	}
	for t, ps := range o.offsets {
		if p.offsets[t] == nil {
			p.offsets[t] = map[int32]kgo.EpochOffset{}
		}
		for part, off := range ps {
			p.offsets[t][part] = off
		}
	}
}

func (p *pending) empty() bool { return len(p.offsets) == 0 }
func (p *pending) size() int   { return p.rows + len(p.dead) }

// New builds an ingestor. kafkaOpts carry brokers and authentication.
func New(cfg Config, kafkaOpts []kgo.Opt, writer Writer, codecs *events.Codecs, log zerolog.Logger, m *Metrics) (*Ingestor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	i := &Ingestor{cfg: cfg, codecs: codecs, writer: writer, owners: NewOwners(), log: log, m: m, pending: newPending()}
	opts := append(append([]kgo.Opt(nil), kafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.ConsumeTopics(events.InboundTopicPattern),
		kgo.ConsumeRegex(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(i.onRevoked),
		kgo.OnPartitionsLost(i.onLost),
		// New domains' topics are found within seconds, not the default 5 minutes.
		kgo.MetadataMaxAge(10*time.Second),
		// Fetched-but-unpolled data is part of the ingestor's memory: 16 MiB
		// per fetch instead of franz-go's 50 MiB keeps it within budget.
		kgo.FetchMaxBytes(16<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	i.client = cl
	return i, nil
}

// Ready reports whether the ingestor has started consuming.
func (i *Ingestor) Ready() bool { return i.ready.Load() }

// Totals returns records stored and dead-lettered so far.
func (i *Ingestor) Totals() (stored, dead int64) { return i.storedTotal.Load(), i.deadTotal.Load() }

// Run consumes until ctx ends, then finishes (or abandons, uncommitted)
// the batch in flight and leaves the group.
func (i *Ingestor) Run(ctx context.Context) error {
	i.flushCtx, i.flushCancel = context.WithCancel(context.WithoutCancel(ctx))
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(i.cfg.ShutdownGrace, i.flushCancel) })
	defer stopGrace()
	defer i.flushCancel()

	if err := i.loadOwners(ctx); err != nil {
		i.log.Warn().Err(err).Msg("dataset ownership not loaded; refreshing later")
	}
	go i.refreshOwners(ctx)
	i.ready.Store(true)
	i.log.Info().Str("group", i.cfg.Group).Str("topics", events.InboundTopicPattern).Msg("ingestor consuming")

	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, i.untilFlush())
		fetches := i.client.PollRecords(pollCtx, i.cfg.MaxPollRecords)
		cancel()
		if fetches.IsClientClosed() {
			return errors.New("kafka client closed")
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				i.log.Error().Err(err).Str("topic", t).Int32("partition", p).Msg("fetch error")
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				i.m.lag.WithLabelValues(p.Topic, partitionLabel(p.Partition)).Set(float64(p.HighWatermark - p.Records[n-1].Offset - 1))
			}
		})
		if recs := fetches.Records(); len(recs) > 0 {
			out := i.process(ctx, recs)
			i.mu.Lock()
			i.pending.add(out)
			i.mu.Unlock()
		}
		if i.flushDue() {
			i.startFlush()
		}
		i.client.AllowRebalance()
	}

	i.log.Info().Msg("ingestor stopping: finishing the batch in flight")
	i.flushAll()
	i.client.Close()
	return nil
}

// untilFlush bounds a poll so a non-empty buffer is flushed on time.
func (i *Ingestor) untilFlush() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.pending.empty() {
		return time.Second
	}
	return max(time.Until(i.pending.since.Add(i.cfg.FlushInterval)), time.Millisecond)
}

func (i *Ingestor) flushDue() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return !i.pending.empty() && (i.pending.size() >= i.cfg.BatchRows || time.Since(i.pending.since) >= i.cfg.FlushInterval)
}

// startFlush hands the buffer to a background flush, so the next poll is
// decoded while this batch is inserted. Only one flush runs at a time: that
// keeps commits in order and memory at two batches.
func (i *Ingestor) startFlush() {
	i.waitInflight()
	i.mu.Lock()
	b := i.pending
	i.pending = newPending()
	done := make(chan struct{})
	i.inflight = done
	i.mu.Unlock()
	go func() {
		defer close(done)
		i.flush(i.flushCtx, b)
	}()
}

// flushAll waits for the running flush and flushes the buffer synchronously.
func (i *Ingestor) flushAll() {
	i.waitInflight()
	i.mu.Lock()
	b := i.pending
	i.pending = newPending()
	i.mu.Unlock()
	i.flush(i.flushCtx, b)
}

func (i *Ingestor) waitInflight() {
	i.mu.Lock()
	ch := i.inflight
	i.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// flush stores one batch: dead letters, then rows, then the offsets. Each
// step is retried until it succeeds or ctx ends; if ctx ends first, nothing
// is committed and the records are consumed again after a restart.
func (i *Ingestor) flush(ctx context.Context, b *pending) {
	if b.empty() {
		return
	}
	start := time.Now()
	if len(b.dead) > 0 {
		if err := retry(ctx, i.log, i.m, "dead_letter", func() error {
			return i.client.ProduceSync(ctx, b.dead...).FirstErr()
		}); err != nil {
			i.log.Warn().Err(err).Int("dead_letters", len(b.dead)).Msg("batch abandoned before dead letters were written; not committed")
			return
		}
	}
	if b.rows > 0 {
		if err := retry(ctx, i.log, i.m, "insert", func() error { return i.writer.Insert(ctx, b.parts) }); err != nil {
			i.log.Warn().Err(err).Int("rows", b.rows).Msg("batch abandoned before it was stored; not committed")
			return
		}
	}
	i.m.insertSeconds.Observe(time.Since(start).Seconds())
	if err := retry(ctx, i.log, i.m, "commit", func() error { return i.commit(ctx, b.offsets) }); err != nil {
		i.log.Warn().Err(err).Msg("stored batch not committed; it will be replayed and deduplicated")
		return
	}
	var stored int
	for f, n := range b.stored {
		i.m.records.WithLabelValues(string(f), "stored").Add(float64(n))
		stored += n
	}
	for _, r := range b.dead {
		reason := headerValue(r, HeaderReason)
		i.m.deadLetters.WithLabelValues(reason).Inc()
		i.log.Warn().Str("reason", reason).Str("topic", headerValue(r, HeaderTopic)).
			Str("offset", headerValue(r, HeaderOffset)).Str("error", headerValue(r, HeaderError)).Msg("dead-lettered")
	}
	i.storedTotal.Add(int64(stored))
	i.deadTotal.Add(int64(len(b.dead)))
	i.m.flushRows.Observe(float64(stored + len(b.dead)))
	i.log.Debug().Int("stored", stored).Int("dead_letters", len(b.dead)).Dur("took", time.Since(start)).Msg("flushed")
}

func (i *Ingestor) commit(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
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
	if cerr != nil {
		return cerr
	}
	for t, ps := range offsets {
		for p, o := range ps {
			i.m.committed.WithLabelValues(t, partitionLabel(p)).Set(float64(o.Offset))
		}
	}
	return nil
}

// onRevoked runs when partitions move to another replica: everything
// buffered is stored and committed first, so the new owner starts after it.
func (i *Ingestor) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	i.log.Info().Interface("revoked", revoked).Msg("partitions revoked; flushing")
	i.flushAll()
}

// onLost runs when the group session expired: the partitions may already
// be consumed elsewhere, so the buffer is dropped, not committed.
func (i *Ingestor) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	i.log.Warn().Interface("lost", lost).Msg("partitions lost; dropping the uncommitted buffer")
	i.waitInflight()
	i.mu.Lock()
	i.pending = newPending()
	i.mu.Unlock()
}

func (i *Ingestor) loadOwners(ctx context.Context) error {
	stored, err := i.writer.DatasetOwners(ctx)
	if err != nil {
		return err
	}
	i.owners.Merge(stored)
	return nil
}

func (i *Ingestor) refreshOwners(ctx context.Context) {
	t := time.NewTicker(i.cfg.OwnersRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := i.loadOwners(ctx); err != nil && ctx.Err() == nil {
				i.log.Warn().Err(err).Msg("refresh dataset ownership")
			}
		}
	}
}

// retry runs fn with exponential backoff until it succeeds or ctx ends.
func retry(ctx context.Context, log zerolog.Logger, m *Metrics, stage string, fn func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.flushErrors.WithLabelValues(stage).Inc()
		log.Error().Err(err).Str("stage", stage).Dur("retry_in", backoff).Msg("flush failed; retrying")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
