package scorer

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// mesh is what a replica knows of the whole mesh: every product's
// declaration and the lineage graph, the own score of every product
// (computed for its share, read from the other replicas' for the rest), the
// trust flow of every product, and a fingerprint of what it last wrote for
// its own. Components and reasons live only for the pass that writes them.
type mesh struct {
	products map[string]*product
	owners   map[string]string // dataset -> owning product
	edges    map[[2]string]bool
	lin      *model.Lineage
	own      []ownScore   // by lineage index
	flows    []model.Flow // by lineage index
	written  map[string]string
	bands    model.Bands
	// sig is the signals of this replica's datasets as of the last pass
	// that read them: a full pass reads them all, an incremental one only
	// the families the feed names.
	sig *signalSet
}

// ownScore is a product's score before lineage, as propagation and root
// causes need it.
type ownScore struct {
	known      bool
	health     float64
	ownTrust   float64
	healthBand string // the band its numbers and caps give, for root causes
	problems   []string
}

func (m *mesh) ownOf(i int32) model.Own {
	o := m.own[i]
	return model.Own{Trust: o.ownTrust, Known: o.known}
}

// scoreOf is what is known of any product's own score.
func (m *mesh) scoreOf(p string) (remote, bool) {
	i, ok := m.lin.Index(p)
	if !ok {
		return remote{}, false
	}
	o := m.own[i]
	return remote{healthKnown: o.known, health: o.health, ownTrust: o.ownTrust, healthBand: o.healthBand, problems: o.problems}, true
}

func (m *mesh) setOwn(p string, part model.Partial) bool {
	i, ok := m.lin.Index(p)
	if !ok {
		return false
	}
	band := model.Unknown
	if part.HealthKnown {
		band = model.AtMost(model.Band(part.Health, "", m.bands), part.HealthCap)
	}
	next := ownScore{known: part.HealthKnown, health: part.Health, ownTrust: part.OwnTrust, healthBand: band, problems: part.Problems}
	changed := !sameOwn(m.own[i], next)
	m.own[i] = next
	return changed
}

func (m *mesh) setRemote(p string, r remote) bool {
	i, ok := m.lin.Index(p)
	if !ok {
		return false
	}
	next := ownScore{known: r.healthKnown, health: r.health, ownTrust: r.ownTrust, healthBand: r.healthBand, problems: r.problems}
	changed := !sameOwn(m.own[i], next)
	m.own[i] = next
	return changed
}

func sameOwn(a, b ownScore) bool {
	return a.known == b.known && a.health == b.health && a.ownTrust == b.ownTrust && a.healthBand == b.healthBand &&
		slices.Equal(a.problems, b.problems)
}

// newMesh builds the graph over the loaded declarations; own scores and
// flows of products already known carry over.
func newMesh(products map[string]*product, owners map[string]string, edges map[[2]string]bool, bands model.Bands, prev *mesh) *mesh {
	list := make([][2]string, 0, len(edges))
	for e := range edges {
		list = append(list, e)
	}
	g := buildGraph(products, owners, list)
	m := &mesh{products: products, owners: owners, edges: edges, bands: bands, written: map[string]string{}}
	m.lin = model.NewLineage(g.Products(), g.DirectUpstream)
	m.own, m.flows = make([]ownScore, m.lin.Len()), make([]model.Flow, m.lin.Len())
	if prev != nil {
		for i, p := range m.lin.Names {
			if j, ok := prev.lin.Index(p); ok {
				m.own[i], m.flows[i] = prev.own[j], prev.flows[j]
			}
		}
	}
	return m
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

// evaluate scores products from their signals, on every core.
func (s *Scorer) evaluate(sig *signalSet, products []string, now time.Time) []model.Partial {
	m := s.mesh
	out := make([]model.Partial, len(products))
	parallel(len(products), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			out[k] = model.Evaluate(sig.signalsOf(m.products[products[k]]), s.pol, now)
		}
	})
	return out
}

// fullPass scores this replica's whole share with fresh signals; with
// reload, declarations and the graph are read again first.
func (s *Scorer) fullPass(ctx context.Context, sh share, now time.Time, reload bool) (PassStats, error) {
	ph := newPhases()
	if reload {
		products, err := loadProducts(ctx, s.conn, s.db, nil)
		if err != nil {
			return PassStats{}, err
		}
		ph.done("load declarations")
		owners, err := loadOwners(ctx, s.conn, s.db)
		if err != nil {
			return PassStats{}, err
		}
		edges, err := loadEdges(ctx, s.conn, s.db, nil)
		if err != nil {
			return PassStats{}, err
		}
		edgeSet := make(map[[2]string]bool, len(edges))
		for _, e := range edges {
			edgeSet[e] = true
		}
		prev := s.mesh
		s.mesh = newMesh(products, owners, edgeSet, s.pol.Bands, prev)
		if prev != nil && sh.gen == s.lastGen {
			s.mesh.written = prev.written // the same share: write only what changed
		}
		if prev != nil {
			s.mesh.sig = prev.sig
		}
		ph.done("load graph")
	}
	m := s.mesh
	mine := m.share(sh, s.parts)
	var datasets []string
	if !sh.all {
		datasets = m.outputsOf(mine)
	}
	sig, err := loadSignals(ctx, s.conn, s.db, s.pol, now, datasets, ph)
	if err != nil {
		return PassStats{}, err
	}
	m.sig = sig
	partials := s.evaluate(sig, mine, now)
	for k, p := range mine {
		m.setOwn(p, partials[k])
		// The components are most of a partial's memory and only the
		// rows written need them: publish evaluates those again.
		partials[k].Components = nil
	}
	ph.done("evaluate")
	if !sh.all {
		theirs, err := loadRemote(ctx, s.conn, s.db, nil)
		if err != nil {
			return PassStats{}, err
		}
		for p, r := range theirs {
			if !sh.owns(p, s.parts) {
				m.setRemote(p, r)
			}
		}
		ph.done("load other shares")
	}
	m.lin.Propagate(nil, m.ownOf, m.flows, s.pol.UpstreamMargin)
	ph.done("propagate")
	scored, alerts, err := s.publish(ctx, sh, mine, partials, now, true, ph)
	return PassStats{Affected: len(mine), Scored: scored, Alerts: alerts, Phases: ph.list}, err
}

// incremental rescores what the change feed names, and everything
// downstream of it.
func (s *Scorer) incremental(ctx context.Context, sh share, now time.Time) (PassStats, error) {
	ch := s.changes.take()
	if ch.empty() {
		return PassStats{}, nil
	}
	ph := newPhases()
	m := s.mesh
	var roots []string // products whose own score or place in the graph may have changed
	if len(ch.products) > 0 || len(ch.edges) > 0 {
		products := m.products
		if len(ch.products) > 0 {
			fresh, err := loadProducts(ctx, s.conn, s.db, keys(ch.products))
			if err != nil {
				return PassStats{}, err
			}
			products = make(map[string]*product, len(m.products)+len(fresh))
			for k, v := range m.products {
				products[k] = v
			}
			for urn, p := range fresh {
				products[urn] = p
				roots = append(roots, urn)
			}
		}
		edges, grew := m.edges, false
		if len(ch.edges) > 0 {
			more, err := loadEdges(ctx, s.conn, s.db, keys(ch.edges))
			if err != nil {
				return PassStats{}, err
			}
			for _, e := range more {
				if !edges[e] {
					if !grew {
						edges = make(map[[2]string]bool, len(m.edges)+len(more))
						for k := range m.edges {
							edges[k] = true
						}
						grew = true
					}
					edges[e] = true
				}
			}
		}
		if len(ch.products) > 0 || grew {
			owners := m.owners
			if len(ch.products) > 0 { // claims change with declarations
				var err error
				if owners, err = loadOwners(ctx, s.conn, s.db); err != nil {
					return PassStats{}, err
				}
			}
			next := newMesh(products, owners, edges, s.pol.Bands, m)
			next.written = m.written
			s.mesh, m = next, next
			if grew {
				for ds := range ch.edges {
					if p := m.owners[ds]; p != "" {
						roots = append(roots, p)
					}
				}
			}
		}
		ph.done("declarations and graph")
	}
	for ds := range ch.datasets {
		if p := m.owners[ds]; p != "" {
			roots = append(roots, p)
		}
	}
	// Other replicas' products whose own score changed.
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
			if m.setRemote(p, r) {
				roots = append(roots, p)
			}
		}
		ph.done("load other shares")
	}
	var idx []int32
	for _, p := range roots {
		if i, ok := m.lin.Index(p); ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return PassStats{}, nil
	}
	// Trust flows down: everything downstream of a root is propagated
	// again. Own products whose own signals changed (the roots) are
	// evaluated; a downstream product is evaluated and its verdict redone
	// only when its flow changed or a direct upstream is a root (its
	// reasons name them). The others' scores cannot have changed.
	closure := m.lin.Downstream(idx)
	isRoot := make([]bool, m.lin.Len())
	for _, i := range idx {
		isRoot[i] = true
	}
	var mine []string // own roots
	var rest []int32  // the other own products of the closure
	for _, i := range closure {
		p := m.lin.Names[i]
		if !sh.owns(p, s.parts) || m.products[p] == nil {
			continue
		}
		if isRoot[i] {
			mine = append(mine, p)
		} else {
			rest = append(rest, i)
		}
	}
	// Only the families the feed named are read again, for this replica's
	// datasets; everything else comes from the signals already read.
	own := func(ds []string) []string {
		out := []string{}
		for _, d := range ds {
			if p := m.owners[d]; p != "" && sh.owns(p, s.parts) {
				out = append(out, d)
			}
		}
		return out
	}
	checks, runs, usage := own(ch.family(kafka.ChangeQuality)), own(ch.family(kafka.ChangeRuns)), own(ch.family(kafka.ChangeUsage))
	// A product new to this replica has nothing read yet: all of its outputs.
	if m.sig == nil || !m.sig.all {
		for _, i := range append(idx, rest...) {
			if prod := m.products[m.lin.Names[i]]; prod != nil {
				for _, ds := range prod.outputs {
					if !m.sig.has(ds) {
						checks, runs, usage = append(checks, ds), append(runs, ds), append(usage, ds)
					}
				}
			}
		}
	}
	ph.done("affected products")
	// Where consumers are counted was chosen by the last full pass.
	daily := m.sig != nil && m.sig.usageDaily
	fresh, err := loadFamilies(ctx, s.conn, s.db, s.pol, now, dedupe(checks), dedupe(runs), dedupe(usage), daily, ph)
	if err != nil {
		return PassStats{}, err
	}
	if m.sig == nil {
		m.sig = &signalSet{checks: map[string][]model.CheckResult{}, runs: map[string]runStats{}, usage: map[string][2]int{}}
	}
	m.sig.merge(fresh, checks, runs, usage)
	partials := s.evaluate(m.sig, mine, now)
	for k, p := range mine {
		m.setOwn(p, partials[k])
	}
	before := make([]model.Flow, len(closure))
	for k, i := range closure {
		before[k] = m.flows[i]
	}
	m.lin.Propagate(closure, m.ownOf, m.flows, s.pol.UpstreamMargin)
	moved := make([]bool, m.lin.Len())
	for k, i := range closure {
		moved[i] = m.flows[i] != before[k]
	}
	var touched []string
	for _, i := range rest {
		hit := moved[i]
		for _, u := range m.lin.Parents(i) {
			hit = hit || isRoot[u]
		}
		if hit {
			touched = append(touched, m.lin.Names[i])
		}
	}
	partials = append(partials, s.evaluate(m.sig, touched, now)...)
	mine = append(mine, touched...)
	ph.done("evaluate and propagate")
	scored, alerts, err := s.publish(ctx, sh, mine, partials, now, false, ph)
	return PassStats{Affected: len(roots), Scored: scored, Alerts: alerts, Phases: ph.list}, err
}

// publishChunk is how many products publish handles at a time: their
// verdicts, score rows, alerts and encoded records are built, written and
// dropped before the next ones, so a full pass over a large share holds
// one chunk's worth of them, not the share's.
const publishChunk = 2_500

// publish turns the scores of own products into verdicts, writes the ones
// that changed (all of them on the day's first full pass: the daily
// snapshot) to current scores and history, publishes the alerts, and
// announces own scores that changed to the other replicas, chunk by chunk. A chunk that fails stops the pass; what the
// earlier chunks wrote and published stays, the rest is written next pass.
func (s *Scorer) publish(ctx context.Context, sh share, products []string, partials []model.Partial, now time.Time, full bool, ph *phases) (int, int, error) {
	snapshot := full && now.Format("2006-01-02") != s.snapDay
	var took publishTimes
	scored, alerted := 0, 0
	for lo := 0; lo < len(products); lo += publishChunk {
		hi := min(lo+publishChunk, len(products))
		n, a, err := s.publishSome(ctx, sh, products[lo:hi], partials[lo:hi], now, snapshot, &took)
		scored, alerted = scored+n, alerted+a
		if err != nil {
			return scored, alerted, err
		}
	}
	ph.add("verdicts", took.verdicts)
	ph.add("write scores", took.write)
	ph.add("publish", took.publish)
	if snapshot {
		s.snapDay = now.Format("2006-01-02")
		if err := dropOldHistory(ctx, s.conn, s.db, now, s.cfg.HistoryRetention, sh); err != nil {
			s.log.Warn().Err(err).Msg("history retention")
		}
	}
	return scored, alerted, nil
}

// publishTimes adds up the steps of publish over its chunks.
type publishTimes struct{ verdicts, write, publish time.Duration }

// publishSome is publish for one chunk of products.
func (s *Scorer) publishSome(ctx context.Context, sh share, products []string, partials []model.Partial, now time.Time, snapshot bool, took *publishTimes) (int, int, error) {
	m := s.mesh
	start := time.Now()
	verdicts := make([]verdict, len(products))
	lasts := make([]*lastAlert, len(products))
	s.mu.Lock()
	for k, p := range products {
		if shd := sh.shards[Partition(p, s.parts)]; shd != nil {
			lasts[k] = shd.alerted[p]
		}
	}
	s.mu.Unlock()
	parallel(len(products), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			verdicts[k] = m.verdict(products[k], partials[k], lasts[k], s.pol)
		}
	})
	var rows []scoreRow
	var wrote []int // the index of each row's verdict
	var notices []*kgo.Record
	for k, v := range verdicts {
		p := v.product
		row := scoreRow{v: v, at: now, kind: "change"}
		fp := row.fingerprint()
		prev, written := m.written[p]
		if prev == fp && !snapshot {
			continue
		}
		if prev == fp {
			row.kind = "snapshot"
		}
		if !written || ownPart(prev) != ownPart(fp) {
			notices = append(notices, kafka.ChangeRecord(p, kafka.ChangeScore))
		}
		m.written[p] = fp
		rows = append(rows, row)
		wrote = append(wrote, k)
	}
	// A full pass drops its partials' components after evaluating (see
	// fullPass); the rows written get them back from the same signals.
	parallel(len(rows), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			if v := &rows[k].v; v.partial.Components == nil {
				v.partial.Components = model.Evaluate(m.sig.signalsOf(m.products[v.product]), s.pol, now).Components
			}
		}
	})
	var alerts []*events.ScoreChanged
	for k, row := range rows {
		if ev := alertFor(row.v, lasts[wrote[k]], s.pol.For(row.v.domain).AlertThreshold, now); ev != nil {
			alerts = append(alerts, ev)
		}
	}
	took.verdicts += time.Since(start)
	start = time.Now()
	if err := writeScores(ctx, s.conn, s.db, rows); err != nil {
		for _, r := range rows {
			delete(m.written, r.v.product) // written again next time
		}
		return 0, 0, err
	}
	took.write += time.Since(start)
	start = time.Now()
	defer func() { took.publish += time.Since(start) }()
	if len(notices) > 0 && !sh.all {
		if err := s.client.ProduceSync(ctx, notices...).FirstErr(); err != nil {
			s.log.Warn().Err(err).Msg("announce changed scores to the other replicas (their next full pass catches up)")
		}
	}
	if len(alerts) == 0 {
		return len(rows), 0, nil
	}
	recs := make([]*kgo.Record, len(alerts))
	var encErr error
	var mu sync.Mutex
	parallel(len(alerts), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			ev := alerts[k]
			b, err := s.codecs.Encode(ev)
			if err != nil {
				mu.Lock()
				encErr = err
				mu.Unlock()
				return
			}
			recs[k] = &kgo.Record{Topic: events.TopicScores, Partition: Partition(ev.ProductURN, s.parts), Key: []byte(ev.ProductURN), Value: b,
				Headers: []kgo.RecordHeader{{Key: HeaderReplica, Value: []byte(s.cfg.Replica)}, {Key: HeaderGroup, Value: []byte(s.cfg.Group)}}}
		}
	})
	if encErr != nil {
		return len(rows), 0, encErr
	}
	if err := s.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return len(rows), 0, fmt.Errorf("publish %d score changes: %w", len(recs), err)
	}
	s.mu.Lock()
	for _, ev := range alerts {
		if shd := sh.shards[Partition(ev.ProductURN, s.parts)]; shd != nil {
			shd.alerted[ev.ProductURN] = lastOf(ev)
		}
	}
	s.mu.Unlock()
	s.published.Add(int64(len(alerts)))
	s.m.alerts.Add(float64(len(alerts)))
	return len(rows), len(alerts), nil
}

// verdict assembles a product's published score.
func (m *mesh) verdict(p string, part model.Partial, last *lastAlert, pol *model.Policy) verdict {
	var f model.Flow
	if i, ok := m.lin.Index(p); ok {
		f = m.flows[i]
	}
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
		v.reasons = append(append([]string(nil), v.reasons...), model.UpstreamReason(f, causeTrust))
	}
	if part.HealthKnown && model.Worse(v.trustBand, model.Band(v.trust, "", pol.Bands)) && v.trustBand == v.healthBand {
		v.reasons = append(append([]string(nil), v.reasons...), "trust band held at the health band ("+v.healthBand+")")
	}
	v.causes, v.cause = rootCauses(p, v, f, m.scoreOf, m.lin.Upstream(p))
	for _, c := range v.causes {
		if c.Hops > 0 && c.ProductURN != f.Cause {
			v.reasons = append(append([]string(nil), v.reasons...),
				fmt.Sprintf("upstream %s (%s up) is %s", model.Short(c.ProductURN), hopsText(c.Hops), c.HealthBand))
		}
	}
	return v
}

// parallel splits [0, n) into one range per CPU.
func parallel(n int, fn func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), max(n/256, 1))
	var wg sync.WaitGroup
	for k := range w {
		lo, hi := n*k/w, n*(k+1)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dedupe sorts and removes repeats; never nil (nil would mean "every
// dataset" to the queries).
func dedupe(ss []string) []string {
	slices.Sort(ss)
	if ss = slices.Compact(ss); ss == nil {
		return []string{}
	}
	return ss
}
