package scorer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Scorer scores products continuously.
type Scorer struct {
	cfg    Config
	pol    *model.Policy
	conn   driver.Conn
	db     string
	client *kgo.Client // member of the group on mesh.scores; publishes
	feed   *kgo.Client // reads mesh.changes, every partition
	codecs *events.Codecs
	log    zerolog.Logger
	m      *Metrics
	parts  int32 // partitions of mesh.scores = shards

	changes changeFeed

	// tickMu: a tick and the end of an assignment exclude each other.
	tickMu sync.Mutex

	mu        sync.Mutex
	shards    map[int32]*shard
	positions map[int32]int64 // next offset read, by partition
	assignGen uint64

	// Mesh state, touched only under tickMu.
	mesh       *mesh
	lastGen    uint64
	lastFull   time.Time
	lastReload time.Time
	snapDay    string

	published  atomic.Int64
	fullPasses atomic.Int64
}

// New builds a scorer. kafkaOpts carry brokers and authentication.
func New(cfg Config, pol *model.Policy, kafkaOpts []kgo.Opt, conn driver.Conn, db string, codecs *events.Codecs, log zerolog.Logger, m *Metrics) (*Scorer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	s := &Scorer{cfg: cfg, pol: pol, conn: conn, db: db, codecs: codecs, log: log, m: m,
		shards: map[int32]*shard{}, positions: map[int32]int64{}, changes: changeFeed{pending: newChangeSet()}}
	opts := append(append([]kgo.Opt(nil), kafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(events.TopicScores),
		// Offsets are never committed: every assignment rebuilds the shard's
		// alert state by reading its partition from the start.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(max(cfg.SessionTimeout/10, 500*time.Millisecond)),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onDropped),
		kgo.OnPartitionsLost(s.onDropped),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kafka.Logger(log),
		kgo.WithHooks(cfg.KafkaHooks...),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	feed, err := kgo.NewClient(append(append([]kgo.Opt(nil), kafkaOpts...),
		kgo.ConsumeTopics(kafka.TopicChanges), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kafka.Logger(log))...)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s.client, s.feed = cl, feed
	return s, nil
}

// RequestFullPass makes the next tick a full pass (benchmarks measure one).
func (s *Scorer) RequestFullPass() {
	s.tickMu.Lock()
	s.lastFull = time.Time{}
	s.tickMu.Unlock()
}

// FullPasses counts the full passes this replica completed.
func (s *Scorer) FullPasses() int64 { return s.fullPasses.Load() }

// Published counts the ScoreChanged events this replica published.
func (s *Scorer) Published() int64 { return s.published.Load() }

// Run scores until ctx ends.
func (s *Scorer) Run(ctx context.Context) error {
	defer s.client.Close()
	defer s.feed.Close()
	parts, err := checkTopic(ctx, s.client)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.parts = parts
	s.mu.Unlock()
	s.log.Info().Str("replica", s.cfg.Replica).Str("group", s.cfg.Group).Int32("shards", s.parts).Msg("scorer started")

	go s.consume(ctx)
	go s.follow(ctx)
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			s.m.errors.Inc()
			s.log.Error().Err(err).Msg("scoring tick failed; retrying next tick")
		}
	}
}

// tick rescores what changed, or this replica's whole share on a full pass
// (the first after any assignment change, then every FullPass).
func (s *Scorer) tick(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	sh := s.currentShare()
	if len(sh.parts) == 0 {
		return nil
	}
	start := time.Now()
	now := start.UTC()
	full := s.mesh == nil || sh.gen != s.lastGen || now.Sub(s.lastFull) >= s.cfg.FullPass
	var stats PassStats
	var err error
	if full {
		// The full pass reads everything the feed named; declarations and
		// the graph are reloaded on a new share and every ReloadEvery.
		s.changes.take()
		reload := s.mesh == nil || sh.gen != s.lastGen || now.Sub(s.lastReload) >= s.cfg.ReloadEvery
		stats, err = s.fullPass(ctx, sh, now, reload)
		if err == nil && reload {
			s.lastReload = now
		}
		if err == nil {
			s.lastGen, s.lastFull = sh.gen, now
			s.fullPasses.Add(1)
		}
	} else {
		stats, err = s.incremental(ctx, sh, now)
	}
	if err != nil {
		return err
	}
	if stats.Affected == 0 && !full {
		return nil
	}
	stats.Full, stats.Took = full, time.Since(start)
	kind := "incremental"
	if full {
		kind = "full"
	}
	if s.cfg.OnPass != nil {
		s.cfg.OnPass(stats)
	}
	s.m.passSeconds.WithLabelValues(kind).Observe(stats.Took.Seconds())
	s.m.scored.WithLabelValues(kind).Add(float64(stats.Scored))
	s.log.Debug().Str("pass", kind).Int("affected", stats.Affected).Int("scored", stats.Scored).Int("alerts", stats.Alerts).
		Dur("took", stats.Took).Msg("tick")
	return nil
}

// phases times the steps of a pass.
type phases struct {
	list []Phase
	last time.Time
}

func newPhases() *phases { return &phases{last: time.Now()} }

func (p *phases) done(name string) {
	now := time.Now()
	p.list = append(p.list, Phase{name, now.Sub(p.last)})
	p.last = now
}

// add records a step timed apart (its parts interleaved with others').
func (p *phases) add(name string, took time.Duration) {
	p.list = append(p.list, Phase{name, took})
	p.last = time.Now()
}
