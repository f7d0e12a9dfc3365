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

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Writer stores batches; store.Writer is the real one.
type Writer interface {
	Insert(ctx context.Context, parts []*store.Batch) error
	DatasetOwners(ctx context.Context) (map[string]store.Claim, error)
}

// Ingestor consumes the inbound topics into ClickHouse.
type Ingestor struct {
	cfg    Config
	client *kgo.Client
	// kafkaOpts (brokers, authentication) open the short-lived client that
	// reads a rejected record again for its dead letter.
	kafkaOpts []kgo.Opt
	codecs    *events.Codecs
	ol        *openlineage.Spec
	rules     openlineage.NamespaceRules
	writer    Writer
	owners    *Owners
	log       zerolog.Logger
	m         *Metrics
	health    *health

	// flushBase outlives the Run context by ShutdownGrace, so that the
	// batch in flight at shutdown can still be finished.
	flushBase context.Context

	gen      atomic.Uint64 // group generation; bumped by every revoke and loss
	commitMu sync.Mutex    // a commit and the end of a generation exclude each other
	batchIDs atomic.Uint64

	mu       sync.Mutex
	pending  *batch
	inflight *inflight
	assigned map[string][]int32
	rewind   map[topicPartition]int64
	paused   []string
	abort    context.CancelFunc // cancels the decoding of the current poll

	ready       atomic.Bool
	storedTotal atomic.Int64
	deadTotal   atomic.Int64
}

// inflight is the flush running in the background.
type inflight struct {
	b      *batch
	cancel context.CancelFunc
	done   chan struct{}
}

// New builds an ingestor. kafkaOpts carry brokers and authentication.
func New(cfg Config, kafkaOpts []kgo.Opt, writer Writer, codecs *events.Codecs, log zerolog.Logger, m *Metrics) (*Ingestor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	ol, err := openlineage.LoadSpec()
	if err != nil {
		return nil, err
	}
	rules, _ := openlineage.ParseNamespaceRules(cfg.OpenLineageNamespaces) // checked by Validate
	i := &Ingestor{cfg: cfg, codecs: codecs, ol: ol, rules: rules, writer: writer, owners: NewOwners(), log: log, m: m,
		health: newHealth(cfg.StallTimeout), assigned: map[string][]int32{}, rewind: map[topicPartition]int64{}}
	i.pending = i.newBatch()
	i.kafkaOpts = append([]kgo.Opt(nil), kafkaOpts...)
	opts := append(append([]kgo.Opt(nil), kafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.heartbeat()),
		kgo.ConsumeTopics(events.InboundTopicPattern),
		kgo.ConsumeRegex(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(i.onAssigned),
		kgo.OnPartitionsRevoked(i.onRevoked),
		kgo.OnPartitionsLost(i.onLost),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { i.abortPoll() }),
		// New domains' topics are found within seconds, not the default 5 minutes.
		kgo.MetadataMaxAge(10*time.Second),
		// Fetched-but-unpolled data is part of the ingestor's memory: 16 MiB
		// per fetch instead of franz-go's 50 MiB keeps it within budget.
		kgo.FetchMaxBytes(16<<20),
		kgo.FetchMaxPartitionBytes(cfg.fetchPartitionBytes()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// Dead letters are cut to DeadLetterMaxBytes before they are sent.
		kgo.ProducerBatchMaxBytes(int32(max(cfg.DeadLetterMaxBytes+(64<<10), 1<<20))),
		kafka.Logger(log),
	)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	i.client = cl
	return i, nil
}

func (i *Ingestor) newBatch() *batch { return newBatch(i.batchIDs.Add(1), i.gen.Load()) }

// Ready reports whether the ingestor has started consuming.
func (i *Ingestor) Ready() bool { return i.ready.Load() }

// Totals returns records stored and dead-lettered so far.
func (i *Ingestor) Totals() (stored, dead int64) { return i.storedTotal.Load(), i.deadTotal.Load() }

// Run consumes until ctx ends, then finishes the batch in flight within
// ShutdownGrace (or leaves it uncommitted) and leaves the group.
func (i *Ingestor) Run(ctx context.Context) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	i.flushBase = base

	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	go i.watchLag(bg, 5*time.Second)
	i.ready.Store(true)
	i.log.Info().Str("group", i.cfg.Group).Str("topics", events.InboundTopicPattern).Msg("ingestor consuming")

	// No record is judged before ownership is known: until it loads (a
	// ClickHouse that is not up yet), the replica keeps its place in the
	// group (membership runs on its own) and waits.
	for backoff := 200 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		err := i.loadOwners(ctx)
		if err == nil {
			break
		}
		i.health.failing("ownership", err)
		i.log.Warn().Err(err).Dur("retry_in", backoff).Msg("dataset ownership not loaded yet; waiting before judging any record")
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	go i.refreshOwners(bg)

	for ctx.Err() == nil {
		if err := i.pollOnce(ctx); err != nil {
			return err
		}
	}
	return i.shutdown(cancelBase)
}

// pollOnce is one turn of the loop: poll, decode into the pending buffer,
// start a flush when one is due, pause fetching while the buffer is full,
// and let a waiting rebalance through.
func (i *Ingestor) pollOnce(ctx context.Context) error {
	defer i.client.AllowRebalance()
	pollCtx, cancel := context.WithTimeout(ctx, i.pollTimeout())
	fetches := i.client.PollRecords(pollCtx, i.cfg.MaxPollRecords)
	cancel()
	if fetches.IsClientClosed() {
		return errors.New("kafka client closed")
	}
	fetches.EachError(i.fetchError)
	recs := i.applyRewinds(fetches.Records())
	if len(recs) > 0 {
		pctx, abort := context.WithCancel(ctx)
		i.mu.Lock()
		i.abort = abort
		i.mu.Unlock()
		out, ok := i.process(pctx, recs)
		i.mu.Lock()
		i.abort = nil
		i.mu.Unlock()
		abort()
		if !ok {
			// Decoding waited on an outage (the schema registry) and a
			// rebalance or shutdown came: nothing of this poll is kept, and
			// its partitions are read again from its first record.
			i.rewindPoll(recs)
			return nil
		}
		i.mu.Lock()
		i.pending.add(out)
		i.mu.Unlock()
		i.owners.Propose(i.pending.id, out.claims)
	}
	i.maybeFlush()
	return nil
}

// pollTimeout bounds a poll so a due flush starts on time.
func (i *Ingestor) pollTimeout() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case len(i.paused) > 0:
		return 50 * time.Millisecond
	case i.pending.empty():
		return time.Second
	}
	return max(time.Until(i.pending.since.Add(i.cfg.FlushInterval)), time.Millisecond)
}

// maybeFlush starts a flush when one is due and none is running; with one
// running and the buffer full, it pauses fetching (the loop keeps polling,
// so the member keeps its place in the group) until that flush ends.
func (i *Ingestor) maybeFlush() {
	i.mu.Lock()
	defer i.mu.Unlock()
	busy := i.inflight != nil
	if busy {
		select {
		case <-i.inflight.done:
			busy, i.inflight = false, nil
		default:
		}
	}
	full := i.pending.full(&i.cfg)
	due := !i.pending.empty() && (full || time.Since(i.pending.since) >= i.cfg.FlushInterval)
	switch {
	case busy && full && len(i.paused) == 0:
		i.paused = i.client.PauseFetchTopics(i.client.GetConsumeTopics()...)
		i.m.paused.Set(1)
	case !busy && len(i.paused) > 0:
		i.client.ResumeFetchTopics(i.paused...)
		i.paused = nil
		i.m.paused.Set(0)
	}
	if busy || !due {
		return
	}
	b := i.pending
	i.pending = i.newBatch()
	ctx, cancel := context.WithCancel(i.flushBase)
	fl := &inflight{b: b, cancel: cancel, done: make(chan struct{})}
	i.inflight = fl
	go func() {
		defer close(fl.done)
		defer cancel()
		if err := i.flush(ctx, b); err != nil {
			i.log.Warn().Err(err).Int("rows", b.rows).Int("dead_letters", len(b.dead)).
				Msg("batch not committed; its records will be read again")
		}
	}()
}

// waitInflight waits for the running flush, within ctx.
func (i *Ingestor) waitInflight(ctx context.Context) error {
	i.mu.Lock()
	fl := i.inflight
	i.mu.Unlock()
	if fl == nil {
		return nil
	}
	select {
	case <-fl.done:
		i.mu.Lock()
		if i.inflight == fl {
			i.inflight = nil
		}
		i.mu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush in flight not done: %w", ctx.Err())
	}
}

// abortPoll stops the decoding of the current poll (a rebalance is waiting).
func (i *Ingestor) abortPoll() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.abort != nil {
		i.abort()
	}
}

// rewindPoll makes the partitions of an abandoned poll start again from the
// poll's first record.
func (i *Ingestor) rewindPoll(recs []*kgo.Record) {
	i.mu.Lock()
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		if at, ok := i.rewind[tp]; !ok || r.Offset < at {
			i.rewind[tp] = r.Offset
		}
	}
	i.mu.Unlock()
	i.applyRewinds(nil)
}

// shutdown finishes the flush in flight and the buffer within the grace,
// then leaves the group; the grace bounds the whole of it.
func (i *Ingestor) shutdown(cancelBase context.CancelFunc) error {
	deadline := time.Now().Add(i.cfg.ShutdownGrace)
	i.log.Info().Dur("grace", i.cfg.ShutdownGrace).Msg("ingestor stopping: finishing the batch in flight")
	ctx, cancel := context.WithDeadline(i.flushBase, deadline)
	if err := i.finish(ctx); err != nil {
		i.log.Warn().Err(err).Msg("shutdown grace ended before the buffer was stored; left uncommitted, it will be read again")
	}
	cancel()
	cancelBase()
	// Leaving the group hands the partitions over at once instead of after
	// the session timeout; it is bounded by what is left of the grace.
	closed := make(chan struct{})
	go func() {
		i.client.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(max(time.Until(deadline), time.Second)):
		i.log.Warn().Msg("leaving the group did not finish within the shutdown grace")
	}
	return nil
}

func (i *Ingestor) fetchError(topic string, p int32, err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		i.log.Error().Err(err).Str("topic", topic).Msg("topic does not exist; create it with: meshpulse migrate -kafka … -clickhouse … -domains <domain>")
	case authorizationError(err):
		i.log.Error().Err(err).Str("topic", topic).Str("group", i.cfg.Group).
			Msg("not authorised: the ingestor's principal needs Read and Describe on mesh.* topics and Read on its group")
	default:
		i.log.Error().Err(err).Str("topic", topic).Int32("partition", p).Msg("fetch error")
	}
}

// Owner is the domain this replica believes owns a dataset ("" for none).
func (i *Ingestor) Owner(dataset string) string { return i.owners.Owner(dataset) }

// RefreshOwners reloads ownership from ClickHouse now (it also happens
// every OwnersRefresh).
func (i *Ingestor) RefreshOwners(ctx context.Context) error { return i.loadOwners(ctx) }

// Assigned lists the partitions this replica holds.
func (i *Ingestor) Assigned() map[string][]int32 { return i.assignedPartitions() }

func (i *Ingestor) loadOwners(ctx context.Context) error {
	stored, err := i.writer.DatasetOwners(ctx)
	if err != nil {
		return err
	}
	i.owners.Load(stored)
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
