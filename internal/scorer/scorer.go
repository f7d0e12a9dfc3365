package scorer

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/score"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Emitter is the emitter name of score events.
const Emitter = "scorer"

// HeaderReplica names the replica that published a ScoreChanged record.
const HeaderReplica = "mesh.scorer.replica"

// eventIDSpace namespaces the deterministic ScoreChanged ids.
var eventIDSpace = uuid.MustParse("8f0b6d5e-3c1a-4f7e-9a52-6d1c0e2b7a41")

// Scorer scores products continuously.
type Scorer struct {
	cfg    Config
	pol    *score.Policy
	conn   driver.Conn
	db     string
	client *kgo.Client
	codecs *events.Codecs
	log    zerolog.Logger
	m      *Metrics
	parts  int32 // partitions of mesh.scores = shards

	mu     sync.Mutex
	shards map[int32]*shard

	// Model state, touched only by the tick loop.
	snap      *snapshot
	partial   map[string]score.Partial
	current   map[string]*result
	watermark time.Time
	lastFull  time.Time
	readySeen int

	published  atomic.Int64
	fullPasses atomic.Int64
}

// shard is one partition of mesh.scores owned by this replica: the last
// alert of each of its products, rebuilt from the topic on assignment.
type shard struct {
	end     int64 // high watermark at assignment; ready once read up to it
	ready   bool
	alerted map[string]*events.ScoreChanged
}

// result is the latest computed score of a product.
type result struct {
	health, trust         float64
	healthBand, trustBand string
	reasons               []string
	upstreamReason        string
}

// New builds a scorer. kafkaOpts carry brokers and authentication.
func New(cfg Config, pol *score.Policy, kafkaOpts []kgo.Opt, conn driver.Conn, db string, codecs *events.Codecs, log zerolog.Logger, m *Metrics) (*Scorer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	s := &Scorer{cfg: cfg, pol: pol, conn: conn, db: db, codecs: codecs, log: log, m: m,
		shards: map[int32]*shard{}, partial: map[string]score.Partial{}, current: map[string]*result{}}
	opts := append(append([]kgo.Opt(nil), kafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(events.TopicScores),
		// Offsets are never committed: every assignment rebuilds the shard's
		// alert state by reading its partition from the start.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onDropped),
		kgo.OnPartitionsLost(s.onDropped),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s.client = cl
	return s, nil
}

// Partition is the shard of a product: its partition of mesh.scores.
func Partition(product string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(product))
	return int32(h.Sum32() % uint32(partitions))
}

// FullPasses counts the full passes this replica completed.
func (s *Scorer) FullPasses() int64 { return s.fullPasses.Load() }

// Published counts the ScoreChanged events this replica published.
func (s *Scorer) Published() int64 { return s.published.Load() }

// Owned lists the partitions this replica owns and has finished loading.
func (s *Scorer) Owned() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int32
	for p, sh := range s.shards {
		if sh.ready {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Run scores until ctx ends.
func (s *Scorer) Run(ctx context.Context) error {
	defer s.client.Close()
	topics, err := kadm.NewClient(s.client).ListTopics(ctx, events.TopicScores)
	if err != nil {
		return fmt.Errorf("describe %s: %w", events.TopicScores, err)
	}
	td, ok := topics[events.TopicScores]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return fmt.Errorf("topic %s does not exist; create it with meshpulse migrate", events.TopicScores)
	}
	s.parts = int32(len(td.Partitions))
	s.log.Info().Str("replica", s.cfg.Replica).Int32("shards", s.parts).Msg("scorer started")

	go s.consume(ctx)
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

// consume keeps group membership and rebuilds the alert state of newly
// assigned shards from the topic.
func (s *Scorer) consume(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := s.client.PollFetches(ctx)
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			s.mu.Lock()
			defer s.mu.Unlock()
			sh := s.shards[r.Partition]
			if sh == nil || sh.ready {
				return // our own alerts, already in the state
			}
			if ev, err := s.codecs.Decode(ctx, r.Value); err == nil {
				if sc, ok := ev.(*events.ScoreChanged); ok {
					sh.alerted[sc.ProductURN] = sc
				}
			}
			if r.Offset+1 >= sh.end {
				sh.ready = true
			}
		})
	}
}

func (s *Scorer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	parts := assigned[events.TopicScores]
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, events.TopicScores)
	if err != nil {
		s.log.Error().Err(err).Msg("list end offsets of mesh.scores")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		sh := &shard{alerted: map[string]*events.ScoreChanged{}}
		if o, ok := ends.Lookup(events.TopicScores, p); ok && o.Err == nil {
			sh.end = o.Offset
		}
		sh.ready = sh.end == 0
		s.shards[p] = sh
	}
	s.log.Info().Ints32("partitions", parts).Msg("shards assigned")
}

func (s *Scorer) onDropped(_ context.Context, _ *kgo.Client, dropped map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range dropped[events.TopicScores] {
		delete(s.shards, p)
	}
	s.log.Info().Ints32("partitions", dropped[events.TopicScores]).Msg("shards dropped")
}

// ownedShard returns the ready shard a product belongs to, or nil.
func (s *Scorer) ownedShard(product string) *shard {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh := s.shards[Partition(product, s.parts)]; sh != nil && sh.ready {
		return sh
	}
	return nil
}

// tick rescores what changed, or everything on a full pass.
func (s *Scorer) tick(ctx context.Context) error {
	owned := s.Owned()
	if len(owned) == 0 {
		return nil
	}
	var serverNow time.Time
	if err := s.conn.QueryRow(ctx, "SELECT now()").Scan(&serverNow); err != nil {
		return fmt.Errorf("clickhouse clock: %w", err)
	}
	start := time.Now()
	now := start.UTC()
	full := s.snap == nil || now.Sub(s.lastFull) >= s.cfg.FullPass || len(owned) != s.readySeen
	var affected []string
	if full {
		snap, err := loadMeta(ctx, s.conn, s.db)
		if err != nil {
			return err
		}
		if err := snap.loadSignals(ctx, s.conn, s.db, s.pol, now, nil); err != nil {
			return err
		}
		s.snap, s.lastFull, s.readySeen = snap, now, len(owned)
		affected = snap.graph.Products()
	} else {
		changed, err := changedSince(ctx, s.conn, s.db, s.watermark)
		if err != nil {
			return err
		}
		if len(changed) == 0 {
			s.watermark = serverNow.Add(-2 * time.Second)
			return nil
		}
		var datasets, products []string
		for _, u := range changed {
			if strings.HasPrefix(u, "urn:mesh:product:") {
				products = append(products, u)
			} else {
				datasets = append(datasets, u)
			}
		}
		if len(products) > 0 { // declarations changed: reload them and the graph
			snap, err := loadMeta(ctx, s.conn, s.db)
			if err != nil {
				return err
			}
			snap.checks, snap.runs, snap.usage = s.snap.checks, s.snap.runs, s.snap.usage
			s.snap = snap
		}
		if err := s.snap.loadSignals(ctx, s.conn, s.db, s.pol, now, datasets); err != nil {
			return err
		}
		set := map[string]bool{}
		for _, p := range products {
			set[p] = true
		}
		for _, ds := range datasets {
			if p := s.snap.graph.Owner(ds); p != "" {
				set[p] = true
			}
		}
		for p := range set {
			affected = append(affected, p)
		}
	}
	// Overlap the watermark: rows stored during this tick are seen again.
	s.watermark = serverNow.Add(-2 * time.Second)

	scored, alerts, err := s.score(ctx, affected, now)
	if err != nil {
		return err
	}
	kind := "incremental"
	if full {
		kind = "full"
		s.fullPasses.Add(1)
	}
	if s.cfg.OnPass != nil {
		s.cfg.OnPass(PassStats{Full: full, Affected: len(affected), Scored: scored, Alerts: alerts, Took: time.Since(start)})
	}
	s.m.passSeconds.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	s.m.scored.WithLabelValues(kind).Add(float64(scored))
	s.log.Debug().Str("pass", kind).Int("affected", len(affected)).Int("scored", scored).Int("alerts", alerts).
		Dur("took", time.Since(start)).Msg("tick")
	return nil
}

// score evaluates the affected products, propagates trust to everything
// downstream, writes the owned products' scores to history and publishes
// their alerts. It returns how many products were written and alerted.
func (s *Scorer) score(ctx context.Context, affected []string, now time.Time) (int, int, error) {
	g := s.snap.graph
	for _, p := range affected {
		if prod := s.snap.products[p]; prod != nil {
			s.partial[p] = score.Evaluate(s.snap.signals(prod), s.pol, now)
		}
	}
	scope := map[string]bool{}
	for _, p := range affected {
		scope[p] = true
		for _, d := range g.Downstream(p, -1) {
			scope[d.URN] = true
		}
	}
	ordered, cyclic := g.TopoOrder()
	var order []string
	for _, p := range ordered {
		if scope[p] {
			order = append(order, p)
		}
	}
	var cyc []string
	for _, p := range cyclic {
		if scope[p] {
			cyc = append(cyc, p)
		}
	}
	// Products on a cycle are relaxed to a fixed point: the cap only ever
	// lowers trust, so this terminates; 10 rounds bound it regardless.
	for _, p := range order {
		s.propagate(p)
	}
	for range 10 {
		changed := false
		for _, p := range cyc {
			before := s.current[p]
			s.propagate(p)
			if before == nil || s.current[p].trust != before.trust {
				changed = true
			}
		}
		if !changed {
			break
		}
	}

	var rows []historyRow
	var alerts []*events.ScoreChanged
	var alertShards []*shard
	for _, p := range append(order, cyc...) {
		sh := s.ownedShard(p)
		if sh == nil {
			continue
		}
		r, part := s.current[p], s.partial[p]
		if r == nil {
			// In the graph (a dataset edge names it) but not declared yet.
			continue
		}
		rows = append(rows, historyRow{product: p, domain: part.Domain, at: now, r: r, partial: part})
		if ev := s.alertFor(p, part.Domain, r, sh.alerted[p], now); ev != nil {
			alerts = append(alerts, ev)
			alertShards = append(alertShards, sh)
		}
	}
	if err := writeHistory(ctx, s.conn, s.db, rows); err != nil {
		return 0, 0, err
	}
	if len(alerts) > 0 {
		recs := make([]*kgo.Record, len(alerts))
		for i, ev := range alerts {
			b, err := s.codecs.Encode(ev)
			if err != nil {
				return 0, 0, err
			}
			recs[i] = &kgo.Record{Topic: events.TopicScores, Partition: Partition(ev.ProductURN, s.parts), Key: []byte(ev.ProductURN), Value: b,
				Headers: []kgo.RecordHeader{{Key: HeaderReplica, Value: []byte(s.cfg.Replica)}}}
		}
		if err := s.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return 0, 0, fmt.Errorf("publish %d score changes: %w", len(recs), err)
		}
		s.mu.Lock()
		for i, ev := range alerts {
			alertShards[i].alerted[ev.ProductURN] = ev
		}
		s.mu.Unlock()
		s.published.Add(int64(len(alerts)))
		s.m.alerts.Add(float64(len(alerts)))
	}
	return len(rows), len(alerts), nil
}

// propagate computes a product's trust from its own and its upstream's.
func (s *Scorer) propagate(p string) {
	part, ok := s.partial[p]
	if !ok {
		return
	}
	up := map[string]float64{}
	for _, u := range s.snap.graph.DirectUpstream(p) {
		if r := s.current[u]; r != nil {
			up[u] = r.trust
		}
	}
	trust, why := score.ApplyUpstream(part.OwnTrust, up, s.pol.UpstreamMargin)
	prev := s.current[p]
	var prevH, prevT string
	if prev != nil {
		prevH, prevT = prev.healthBand, prev.trustBand
	} else if sh := s.ownedShard(p); sh != nil && sh.alerted[p] != nil {
		prevH, prevT = sh.alerted[p].NewHealthBand, sh.alerted[p].NewTrustBand
	}
	reasons := part.Reasons
	if why != "" {
		reasons = append(append([]string(nil), reasons...), why)
	}
	s.current[p] = &result{
		health: part.Health, trust: trust,
		healthBand: score.Band(part.Health, prevH, s.pol.Bands), trustBand: score.Band(trust, prevT, s.pol.Bands),
		reasons: reasons, upstreamReason: why,
	}
}

// alertFor decides whether a new score is news against the last alert.
func (s *Scorer) alertFor(p, domain string, r *result, last *events.ScoreChanged, now time.Time) *events.ScoreChanged {
	threshold := s.pol.For(domain).AlertThreshold
	ev := &events.ScoreChanged{
		Envelope:   events.Envelope{EventTime: now.Truncate(time.Millisecond), Emitter: Emitter},
		ProductURN: p, Domain: domain,
		NewHealth: r.health, NewTrust: r.trust, NewHealthBand: r.healthBand, NewTrustBand: r.trustBand,
		Reasons: r.reasons,
	}
	for _, c := range s.partial[p].Components {
		ev.Components = append(ev.Components, events.ScoreComponent{Name: c.Name, Score: c.Score, Weight: c.Weight, Detail: c.Detail})
	}
	prevID := ""
	switch {
	case last == nil:
		ev.Cause = "first score"
	case last.NewHealthBand == r.healthBand && last.NewTrustBand == r.trustBand &&
		math.Abs(last.NewHealth-r.health) <= threshold && math.Abs(last.NewTrust-r.trust) <= threshold:
		return nil
	default:
		prevID = last.EventID
		ev.OldHealth, ev.OldTrust = &last.NewHealth, &last.NewTrust
		ev.OldHealthBand, ev.OldTrustBand = last.NewHealthBand, last.NewTrustBand
		ev.Cause = cause(last, r)
	}
	// Deterministic: the same transition from the same previous alert gets
	// the same id, so a replayed or duplicated scorer cannot alert twice.
	key := fmt.Sprintf("%s|%s|%.1f|%.1f|%s|%s", p, prevID, r.health, r.trust, r.healthBand, r.trustBand)
	ev.EventID = uuid.NewSHA1(eventIDSpace, []byte(key)).String()
	return ev
}

func cause(last *events.ScoreChanged, r *result) string {
	worse := r.trust < last.NewTrust || r.health < last.NewHealth
	switch {
	case worse && r.upstreamReason != "":
		return r.upstreamReason
	case worse && len(r.reasons) > 0:
		return r.reasons[0]
	case !worse:
		return "recovered"
	}
	return "score moved"
}
