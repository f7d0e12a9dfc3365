package scorer

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/pkg/events"
	"github.com/meshpulse/meshpulse/pkg/lineage"
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
	mesh     *mesh
	lastGen  uint64
	lastFull time.Time
	snapDay  string

	published  atomic.Int64
	fullPasses atomic.Int64
}

// mesh is what a replica knows of the whole mesh: every product's
// declaration and the graph, the own scores of every product (computed for
// its share, read from the other replicas' for the rest), the trust flow of
// every product, and what it last wrote for its own.
type mesh struct {
	products map[string]*product
	owners   map[string]string // dataset -> owning product
	edges    [][2]string
	graph    *lineage.Graph
	partial  map[string]model.Partial // own share
	remote   map[string]remote        // the other shares
	flow     map[string]model.Flow
	written  map[string]string // product -> fingerprint of the last row written
	bands    model.Bands
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
	s.parts = parts
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
		s.changes.take() // the full pass reads everything they name
		stats, err = s.fullPass(ctx, sh, now)
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

// fullPass reloads the mesh and scores this replica's whole share.
func (s *Scorer) fullPass(ctx context.Context, sh share, now time.Time) (PassStats, error) {
	products, err := loadProducts(ctx, s.conn, s.db, nil)
	if err != nil {
		return PassStats{}, err
	}
	graph, owners, edges, err := loadGraph(ctx, s.conn, s.db, products)
	if err != nil {
		return PassStats{}, err
	}
	m := &mesh{products: products, owners: owners, edges: edges, graph: graph, partial: map[string]model.Partial{},
		remote: map[string]remote{}, flow: map[string]model.Flow{}, written: map[string]string{}, bands: s.pol.Bands}
	if s.mesh != nil && sh.gen == s.lastGen {
		m.written = s.mesh.written // same share: write only what changed
	}
	mine := m.share(sh, s.parts)
	var datasets []string
	if !sh.all {
		datasets = m.outputsOf(mine)
	}
	sig, err := loadSignals(ctx, s.conn, s.db, s.pol, now, datasets)
	if err != nil {
		return PassStats{}, err
	}
	for _, p := range mine {
		m.partial[p] = model.Evaluate(sig.signalsOf(products[p]), s.pol, now)
	}
	if !sh.all {
		if m.remote, err = loadRemote(ctx, s.conn, s.db, nil); err != nil {
			return PassStats{}, err
		}
	}
	all := graph.Products()
	m.flow = model.Propagate(graph, all, m.own, m.flowOf, s.pol.UpstreamMargin)
	s.mesh = m
	scored, alerts, err := s.publish(ctx, sh, mine, now, true)
	return PassStats{Affected: len(mine), Scored: scored, Alerts: alerts}, err
}

// incremental rescores the products the change feed names, and what
// depends on them.
func (s *Scorer) incremental(ctx context.Context, sh share, now time.Time) (PassStats, error) {
	ch := s.changes.take()
	if ch.empty() {
		return PassStats{}, nil
	}
	m := s.mesh
	changed := map[string]bool{} // products whose own score or place in the graph changed
	graphChanged := false
	if len(ch.products) > 0 {
		fresh, err := loadProducts(ctx, s.conn, s.db, keys(ch.products))
		if err != nil {
			return PassStats{}, err
		}
		for urn := range ch.products {
			if p, ok := fresh[urn]; ok {
				m.products[urn] = p
				changed[urn] = true
			}
		}
		graphChanged = true
	}
	if len(ch.edges) > 0 {
		edges, err := loadEdges(ctx, s.conn, s.db, keys(ch.edges))
		if err != nil {
			return PassStats{}, err
		}
		m.edges = mergeEdges(m.edges, edges)
		graphChanged = true
	}
	if graphChanged {
		// Owners change with declarations: read them again with the graph.
		g, owners, edges, err := loadGraph(ctx, s.conn, s.db, m.products)
		if err != nil {
			return PassStats{}, err
		}
		m.graph, m.owners, m.edges = g, owners, edges
		for ds := range ch.edges {
			if p := m.owners[ds]; p != "" {
				changed[p] = true
			}
		}
	}
	// Own products whose signals or declaration changed: evaluate again.
	var rescore []string
	for ds := range ch.datasets {
		if p := m.owners[ds]; p != "" && sh.owns(p, s.parts) {
			rescore = append(rescore, p)
		}
	}
	for p := range ch.products {
		if sh.owns(p, s.parts) {
			rescore = append(rescore, p)
		}
	}
	slices.Sort(rescore)
	rescore = slices.Compact(rescore)
	sig, err := loadSignals(ctx, s.conn, s.db, s.pol, now, m.outputsOf(rescore))
	if err != nil {
		return PassStats{}, err
	}
	for _, p := range rescore {
		if prod := m.products[p]; prod != nil {
			before := m.partial[p]
			m.partial[p] = model.Evaluate(sig.signalsOf(prod), s.pol, now)
			if ownChanged(before, m.partial[p]) {
				changed[p] = true
			}
		}
	}
	// Products another replica rescored: read their own scores.
	var theirs []string
	for p := range ch.scores {
		if !sh.owns(p, s.parts) {
			theirs = append(theirs, p)
		}
	}
	if len(theirs) > 0 {
		got, err := loadRemote(ctx, s.conn, s.db, theirs)
		if err != nil {
			return PassStats{}, err
		}
		for p, r := range got {
			m.remote[p] = r
			changed[p] = true
		}
	}
	if len(changed) == 0 && len(rescore) == 0 {
		return PassStats{}, nil
	}
	// Trust flows down: recompute the changed products and everything
	// downstream of them, with the rest as the boundary.
	closure := map[string]bool{}
	for p := range changed {
		closure[p] = true
		for _, d := range m.graph.Downstream(p, -1) {
			closure[d.URN] = true
		}
	}
	for _, p := range rescore {
		closure[p] = true
	}
	set := keys(closure)
	for p, f := range model.Propagate(m.graph, set, m.own, m.flowOf, s.pol.UpstreamMargin) {
		m.flow[p] = f
	}
	var mine []string
	for _, p := range set {
		if sh.owns(p, s.parts) && m.products[p] != nil {
			mine = append(mine, p)
		}
	}
	scored, alerts, err := s.publish(ctx, sh, mine, now, false)
	return PassStats{Affected: len(rescore) + len(theirs), Scored: scored, Alerts: alerts}, err
}

// publish turns the computed scores of some own products into verdicts,
// writes the ones that changed (current scores, history), publishes the
// alerts, and announces own scores that changed to the other replicas.
func (s *Scorer) publish(ctx context.Context, sh share, products []string, now time.Time, full bool) (int, int, error) {
	m := s.mesh
	sort.Strings(products)
	var rows []scoreRow
	var alerts []*events.ScoreChanged
	var notices []*kgo.Record
	snapshot := full && now.Format("2006-01-02") != s.snapDay
	for _, p := range products {
		part, ok := m.partial[p]
		if !ok {
			continue
		}
		shd := sh.shards[Partition(p, s.parts)]
		last := shd.alerted[p]
		v := m.verdict(p, part, last, s.pol)
		row := scoreRow{v: v, at: now, kind: "change"}
		fp := row.fingerprint()
		if m.written[p] == fp && !snapshot {
			continue
		}
		if m.written[p] == fp {
			row.kind = "snapshot"
		}
		if prev, ok := m.written[p]; !ok || ownPart(prev) != ownPart(fp) {
			notices = append(notices, kafka.ChangeRecord(p, kafka.ChangeScore))
		}
		m.written[p] = fp
		rows = append(rows, row)
		if ev := alertFor(v, last, s.pol.For(v.domain).AlertThreshold, now); ev != nil {
			alerts = append(alerts, ev)
		}
	}
	if err := writeScores(ctx, s.conn, s.db, rows); err != nil {
		for _, r := range rows {
			delete(m.written, r.v.product) // written again next time
		}
		return 0, 0, err
	}
	if snapshot {
		s.snapDay = now.Format("2006-01-02")
		if err := dropOldHistory(ctx, s.conn, s.db, now, s.cfg.HistoryRetention, sh); err != nil {
			s.log.Warn().Err(err).Msg("history retention")
		}
	}
	if len(notices) > 0 && !sh.all {
		if err := s.client.ProduceSync(ctx, notices...).FirstErr(); err != nil {
			s.log.Warn().Err(err).Msg("announce changed scores to the other replicas (their next full pass catches up)")
		}
	}
	if len(alerts) > 0 {
		recs := make([]*kgo.Record, len(alerts))
		for i, ev := range alerts {
			b, err := s.codecs.Encode(ev)
			if err != nil {
				return 0, 0, err
			}
			recs[i] = &kgo.Record{Topic: events.TopicScores, Partition: Partition(ev.ProductURN, s.parts), Key: []byte(ev.ProductURN), Value: b,
				Headers: []kgo.RecordHeader{{Key: HeaderReplica, Value: []byte(s.cfg.Replica)}, {Key: HeaderGroup, Value: []byte(s.cfg.Group)}}}
		}
		if err := s.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return 0, 0, fmt.Errorf("publish %d score changes: %w", len(recs), err)
		}
		s.mu.Lock()
		for _, ev := range alerts {
			if shd := sh.shards[Partition(ev.ProductURN, s.parts)]; shd != nil {
				shd.alerted[ev.ProductURN] = ev
			}
		}
		s.mu.Unlock()
		s.published.Add(int64(len(alerts)))
		s.m.alerts.Add(float64(len(alerts)))
	}
	return len(rows), len(alerts), nil
}

// verdict assembles a product's published score.
func (m *mesh) verdict(p string, part model.Partial, last *events.ScoreChanged, pol *model.Policy) verdict {
	f := m.flow[p]
	v := verdict{product: p, domain: part.Domain, partial: part, healthKnown: part.HealthKnown, reasons: part.Reasons}
	if part.HealthKnown {
		v.health, v.ownTrust = part.Health, part.OwnTrust
		v.trust = part.OwnTrust
		if f.Known && f.Trust < v.trust {
			v.trust = f.Trust
		}
	}
	v.healthBand, v.trustBand = bands(part, v.trust, last, pol.Bands)
	if f.Capped(p) {
		causeTrust := 0.0
		if r, ok := m.scoreOf(f.Cause); ok {
			causeTrust = r.ownTrust
		}
		v.reasons = append(append([]string(nil), v.reasons...), model.UpstreamReason(f, causeTrust, pol.UpstreamMargin))
	}
	if part.HealthKnown && model.Worse(v.trustBand, model.Band(v.trust, "", pol.Bands)) && v.trustBand == v.healthBand {
		v.reasons = append(append([]string(nil), v.reasons...), "trust band held at the health band ("+v.healthBand+")")
	}
	v.causes, v.cause = rootCauses(p, v, f, m.scoreOf, m.graph.DirectUpstream(p))
	for _, c := range v.causes {
		if c.Hops > 0 && c.ProductURN != f.Cause {
			v.reasons = append(append([]string(nil), v.reasons...),
				fmt.Sprintf("upstream %s (%s up) is %s", model.Short(c.ProductURN), hopsText(c.Hops), c.HealthBand))
		}
	}
	return v
}

// own is a product's own trust for propagation.
func (m *mesh) own(p string) model.Own {
	if part, ok := m.partial[p]; ok {
		return model.Own{Trust: part.OwnTrust, Known: part.HealthKnown}
	}
	if r, ok := m.remote[p]; ok {
		return model.Own{Trust: r.ownTrust, Known: r.healthKnown}
	}
	return model.Own{}
}

func (m *mesh) flowOf(p string) (model.Flow, bool) {
	f, ok := m.flow[p]
	return f, ok
}

// scoreOf is what is known of any product's own score, as root causes name it.
func (m *mesh) scoreOf(p string) (remote, bool) {
	if part, ok := m.partial[p]; ok {
		band := model.Unknown
		if part.HealthKnown {
			band = model.AtMost(model.Band(part.Health, "", m.bands), part.HealthCap)
		}
		return remote{healthKnown: part.HealthKnown, health: part.Health, ownTrust: part.OwnTrust, healthBand: band, problems: part.Problems}, true
	}
	r, ok := m.remote[p]
	return r, ok
}

// share lists the declared products of this replica's share.
func (m *mesh) share(sh share, partitions int32) []string {
	var out []string
	for p := range m.products {
		if sh.owns(p, partitions) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (m *mesh) outputsOf(products []string) []string {
	out := []string{}
	for _, p := range products {
		if prod := m.products[p]; prod != nil {
			out = append(out, prod.outputs...)
		}
	}
	return out
}

func ownChanged(a, b model.Partial) bool {
	return a.HealthKnown != b.HealthKnown || a.Health != b.Health || a.OwnTrust != b.OwnTrust ||
		a.HealthCap != b.HealthCap || !slices.Equal(a.Problems, b.Problems)
}

func mergeEdges(have, more [][2]string) [][2]string {
	seen := make(map[[2]string]bool, len(have))
	for _, e := range have {
		seen[e] = true
	}
	for _, e := range more {
		if !seen[e] {
			have = append(have, e)
			seen[e] = true
		}
	}
	return have
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
