package scorer

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/lineage"
)

// The queries the scorer runs. They are constants with the database, the
// time bounds and (as an external table) the datasets of interest as the
// only parameters; queries_test.go snapshots them and runs them on every
// supported ClickHouse. Aggregations are insensitive to replayed rows
// (argMax, uniqExact, uniq), so the append logs are read without FINAL.
const (
	queryProducts = `SELECT product_urn, domain, description, tags, owners, documentation_url, access_notes,
       output_datasets, input_datasets, freshness_slo_seconds, min_quality_pass_rate
FROM {db}.products FINAL {only_products}`

	// Each product's own declaration of its outputs (completeness).
	queryDeclarations = `SELECT dataset_urn, product_urn, schema_ref, field_names, field_descriptions, field_classifications, field_pii
FROM {db}.dataset_declarations FINAL {only_products}`

	queryOwners = `SELECT dataset_urn, product_urn FROM {db}.dataset_owners`

	queryEdges = `SELECT input_dataset, output_dataset FROM {db}.lineage_edges FINAL {only_outputs}`

	queryChecks = `SELECT dataset_urn, check_name, argMax(status, event_time_ms) AS status, argMax(severity, event_time_ms) AS severity
FROM {db}.quality_results
WHERE event_time >= toDateTime(?) {only}
GROUP BY dataset_urn, check_name`

	queryRuns = `SELECT dataset_urn,
       uniqExactIf(run_id, state = 'COMPLETE' AND event_time >= toDateTime(?)) AS ok,
       uniqExactIf(run_id, state IN ('FAIL', 'ABORT') AND event_time >= toDateTime(?)) AS failed,
       maxIf(event_time_ms, state = 'COMPLETE') AS last_success_ms
FROM {db}.dataset_runs
WHERE event_time >= toDateTime(?) {only}
GROUP BY dataset_urn`

	// Distinct consumers in the adoption window [cur, now] and in the one
	// before it [prev, cur), counted over the log. uniq counts exactly below
	// 65,536 distinct values per group (its hash set only starts sampling
	// beyond) and costs far less than uniqExact. Arguments: cur, cur, prev.
	queryUsage = `SELECT dataset_urn,
       uniqIf(consumer_user, event_time >= toDateTime(?)) AS consumers,
       uniqIf(consumer_user, event_time < toDateTime(?)) AS previous
FROM {db}.usage_events
WHERE event_time >= toDateTime(?) {only}
GROUP BY dataset_urn`

	// The same from the daily uniq states (usage_consumers_daily), for a
	// log with many reads per consumer and day. Whole days come from the
	// states (every day after prev's, except cur's, which the window
	// boundary splits); reads on prev's day and on cur's day from the log.
	// The two parts overlap when both windows fall in one day, which uniq
	// does not mind: a consumer counted twice is counted once.
	// Arguments: cur, prev, cur, cur, prev, prev, cur.
	queryUsageDaily = `SELECT dataset_urn, uniqMergeIf(state, current) AS consumers, uniqMergeIf(state, NOT current) AS previous
FROM (
  SELECT dataset_urn, day > toDate(toDateTime(?)) AS current, consumers AS state
  FROM {db}.usage_consumers_daily
  WHERE day > toDate(toDateTime(?)) AND day != toDate(toDateTime(?)) {only}
  UNION ALL
  SELECT dataset_urn, event_time >= toDateTime(?) AS current, uniqState(consumer_user) AS state
  FROM {db}.usage_events
  WHERE event_time >= toDateTime(?)
    AND (toDate(event_time) = toDate(toDateTime(?)) OR toDate(event_time) = toDate(toDateTime(?))) {only}
  GROUP BY dataset_urn, current
)
GROUP BY dataset_urn`

	// How many rows each of the two usage tables holds, to choose the query
	// (on a cluster, the local tables of the server asked).
	queryUsageRows = `SELECT table, sum(rows) FROM system.parts
WHERE database = ? AND active
  AND table IN ('usage_events', 'usage_consumers_daily', 'usage_events_local', 'usage_consumers_daily_local')
GROUP BY table`

	// The scores other replicas computed for their share (trust flows
	// across shares).
	queryRemote = `SELECT product_urn, health, own_trust, health_band, problems
FROM {db}.scores_current FINAL {only_products}`
)

// datasetsTable is the external table that carries a set of URNs to a query.
const datasetsTable = "wanted"

// Query is one SQL statement the scorer runs, rendered for a database.
type Query struct {
	Name string
	SQL  string // with ? placeholders for its Args
	Args []string
}

// Queries lists every query the scorer runs, rendered for database db, with
// the kind of each argument ("time": unix seconds) and, when filtered, the
// external table "wanted" (column urn) it reads. Tests run them on every
// supported ClickHouse.
func Queries(db string) []Query {
	ts := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "time"
		}
		return out
	}
	return []Query{
		{"products", q(queryProducts, db, false), nil},
		{"products (changed)", q(queryProducts, db, true), []string{"wanted"}},
		{"declarations", q(queryDeclarations, db, false), nil},
		{"declarations (changed)", q(queryDeclarations, db, true), []string{"wanted"}},
		{"owners", q(queryOwners, db, false), nil},
		{"edges", q(queryEdges, db, false), nil},
		{"edges (changed)", q(queryEdges, db, true), []string{"wanted"}},
		{"checks (all)", q(queryChecks, db, false), ts(1)},
		{"checks (share)", q(queryChecks, db, true), append(ts(1), "wanted")},
		{"runs (all)", q(queryRuns, db, false), ts(3)},
		{"runs (share)", q(queryRuns, db, true), append(ts(3), "wanted")},
		{"usage (all)", q(queryUsage, db, false), ts(3)},
		{"usage (share)", q(queryUsage, db, true), append(ts(3), "wanted")},
		{"usage from daily states (all)", q(queryUsageDaily, db, false), ts(7)},
		{"usage from daily states (share)", q(queryUsageDaily, db, true), append(ts(7), "wanted")},
		{"remote scores", q(queryRemote, db, false), nil},
		{"remote scores (changed)", q(queryRemote, db, true), []string{"wanted"}},
		{"clock", "SELECT now()", nil},
	}
}

// q fills in the database and, for a filtered load, the filter on the
// external table of wanted URNs.
func q(query, db string, filtered bool) string {
	only, onlyProducts, onlyOutputs := "", "", ""
	if filtered {
		in := " IN (SELECT urn FROM " + datasetsTable + ")"
		only = "AND dataset_urn" + in
		onlyProducts, onlyOutputs = "WHERE product_urn"+in, "WHERE output_dataset"+in
	}
	return strings.NewReplacer("{db}", db, "{only}", only,
		"{only_products}", onlyProducts, "{only_outputs}", onlyOutputs).Replace(query)
}

// wanted returns a context carrying urns as the external table the
// filtered queries read, or ctx itself when urns is nil (no filter).
func wanted(ctx context.Context, urns []string) (context.Context, error) {
	if urns == nil {
		return ctx, nil
	}
	t, err := ext.NewTable(datasetsTable, ext.Column("urn", "String"))
	if err != nil {
		return nil, err
	}
	for _, u := range urns {
		if err := t.Append(u); err != nil {
			return nil, err
		}
	}
	return clickhouse.Context(ctx, clickhouse.WithExternalTable(t)), nil
}

// freshnessHorizon bounds how far back the last successful run is searched.
const freshnessHorizon = 30 * 24 * time.Hour

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// product is what the scorer keeps of a product's declaration.
type product struct {
	urn, domain     string
	outputs, inputs []string
	meta            model.Metadata
	// declared is each output's declaration as this product made it.
	declared map[string]declaration
}

type declaration struct {
	schemaRef                     bool
	fields, described, classified int
	snakeCase, pii                int
}

// loadProducts reads product declarations: all of them (urns nil) or those
// named.
func loadProducts(ctx context.Context, conn driver.Conn, db string, urns []string) (map[string]*product, error) {
	qctx, err := wanted(ctx, urns)
	if err != nil {
		return nil, err
	}
	out := map[string]*product{}
	rows, err := conn.Query(qctx, q(queryProducts, db, urns != nil))
	if err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	for rows.Next() {
		var (
			p                 product
			desc, doc, access string
			tags, owners      []string
			freshness         *int64
			minPass           *float64
		)
		if err := rows.Scan(&p.urn, &p.domain, &desc, &tags, &owners, &doc, &access, &p.outputs, &p.inputs, &freshness, &minPass); err != nil {
			rows.Close()
			return nil, err
		}
		p.urn, p.domain = intern(p.urn), intern(p.domain)
		internAll(p.outputs)
		internAll(p.inputs)
		p.meta = model.Metadata{Description: desc, Tags: tags, Owners: owners, DocumentationURL: doc, AccessNotes: access,
			HasSLO: freshness != nil || minPass != nil}
		if freshness != nil {
			p.meta.FreshnessSLO = time.Duration(*freshness) * time.Second
		}
		if minPass != nil {
			p.meta.MinPassRate = *minPass
		}
		p.declared = map[string]declaration{}
		out[p.urn] = &p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(qctx, q(queryDeclarations, db, urns != nil))
	if err != nil {
		return nil, fmt.Errorf("load declarations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ds, prod, schemaRef   string
			names, descs, classes []string
			pii                   []uint8
		)
		if err := rows.Scan(&ds, &prod, &schemaRef, &names, &descs, &classes, &pii); err != nil {
			return nil, err
		}
		p := out[prod]
		if p == nil {
			continue
		}
		d := declaration{schemaRef: schemaRef != "", fields: len(names)}
		for i, n := range names {
			if descs[i] != "" {
				d.described++
			}
			if classes[i] != "" {
				d.classified++
			}
			if pii[i] == 1 {
				d.pii++
			}
			if snakeCase.MatchString(n) {
				d.snakeCase++
			}
		}
		p.declared[ds] = d
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, p := range out {
		p.summarise()
	}
	return out, nil
}

// summarise folds the declarations of the outputs the product still
// declares into its metadata.
func (p *product) summarise() {
	m := &p.meta
	m.Outputs = len(p.outputs)
	m.OutputsWithSchema, m.Fields, m.FieldsDescribed, m.FieldsClassified, m.FieldsSnakeCase, m.PIIFields = 0, 0, 0, 0, 0, 0
	for _, ds := range p.outputs {
		d, ok := p.declared[ds]
		if !ok {
			continue
		}
		if d.schemaRef {
			m.OutputsWithSchema++
		}
		m.Fields += d.fields
		m.FieldsDescribed += d.described
		m.FieldsClassified += d.classified
		m.FieldsSnakeCase += d.snakeCase
		m.PIIFields += d.pii
	}
}

// loadOwners reads the owning product of every claimed dataset.
func loadOwners(ctx context.Context, conn driver.Conn, db string) (map[string]string, error) {
	owners := map[string]string{}
	rows, err := conn.Query(ctx, q(queryOwners, db, false))
	if err != nil {
		return nil, fmt.Errorf("load owners: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ds, p string
		if err := rows.Scan(&ds, &p); err != nil {
			return nil, err
		}
		owners[intern(ds)] = intern(p)
	}
	return owners, rows.Err()
}

// loadEdges reads dataset edges: all, or those into the given outputs.
func loadEdges(ctx context.Context, conn driver.Conn, db string, outputs []string) ([][2]string, error) {
	qctx, err := wanted(ctx, outputs)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(qctx, q(queryEdges, db, outputs != nil))
	if err != nil {
		return nil, fmt.Errorf("load lineage edges: %w", err)
	}
	defer rows.Close()
	var edges [][2]string
	for rows.Next() {
		var in, out string
		if err := rows.Scan(&in, &out); err != nil {
			return nil, err
		}
		edges = append(edges, [2]string{intern(in), intern(out)})
	}
	return edges, rows.Err()
}

// buildGraph makes the product graph: a dataset belongs to its owner (the
// earliest claim), so a losing declaration draws no edge.
func buildGraph(products map[string]*product, owners map[string]string, edges [][2]string) *lineage.Graph {
	g := lineage.New()
	for urn, p := range products {
		var outs []string
		for _, o := range p.outputs {
			if owner, ok := owners[o]; !ok || owner == urn {
				outs = append(outs, o)
			}
		}
		g.AddProduct(urn, outs, p.inputs)
	}
	for _, e := range edges {
		g.AddDatasetEdge(e[0], e[1])
	}
	g.Build()
	return g
}

// signalSet is the signals of some datasets as of a time.
type signalSet struct {
	checks map[string][]model.CheckResult // by dataset
	runs   map[string]runStats
	usage  map[string][2]int // consumers now, before
	all    bool              // read for every dataset
	read   map[string]bool   // datasets read, unless all
	// usageDaily: consumers are counted from the daily states (chosen by
	// the full pass, kept by the ticks that merge into this set).
	usageDaily bool
}

type runStats struct {
	ok, failed  int
	lastSuccess time.Time
}

// loadSignals reads checks, runs and usage as of now for the given
// datasets, or for all when datasets is nil, having chosen where usage is
// counted. The three queries run at once.
func loadSignals(ctx context.Context, conn driver.Conn, db string, pol *model.Policy, now time.Time, datasets []string, ph *phases) (*signalSet, error) {
	daily, err := usageFromDaily(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("choose where to count consumers: %w", err)
	}
	s, err := loadFamilies(ctx, conn, db, pol, now, datasets, datasets, datasets, daily, ph)
	if err != nil {
		return nil, err
	}
	s.all = datasets == nil
	s.read = map[string]bool{}
	for _, ds := range datasets {
		s.read[ds] = true
	}
	return s, nil
}

// loadFamilies reads each signal family for its own datasets (nil: all;
// empty: none of that family), usage from the daily states or the log. The
// queries run at once.
func loadFamilies(ctx context.Context, conn driver.Conn, db string, pol *model.Policy, now time.Time, checks, runs, usage []string, daily bool, ph *phases) (*signalSet, error) {
	s := &signalSet{checks: map[string][]model.CheckResult{}, runs: map[string]runStats{}, usage: map[string][2]int{}, usageDaily: daily}
	unix := func(t time.Time) int64 { return t.Unix() }
	var wg sync.WaitGroup
	errs := make([]error, 3)
	took := make([]time.Duration, 3)
	run := func(i int, datasets []string, fn func(qctx context.Context, filtered bool) error) {
		if datasets != nil && len(datasets) == 0 {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			qctx, err := wanted(ctx, datasets)
			if err == nil {
				err = fn(qctx, datasets != nil)
			}
			errs[i], took[i] = err, time.Since(start)
		}()
	}
	run(0, checks, func(qctx context.Context, filtered bool) error {
		return scan(qctx, conn, q(queryChecks, db, filtered), []any{unix(now.Add(-pol.Windows.Quality.Duration))}, func(rows driver.Rows) error {
			var c model.CheckResult
			if err := rows.Scan(&c.Dataset, &c.Check, &c.Status, &c.Severity); err != nil {
				return err
			}
			c.Dataset, c.Check, c.Status, c.Severity = intern(c.Dataset), intern(c.Check), intern(c.Status), intern(c.Severity)
			s.checks[c.Dataset] = append(s.checks[c.Dataset], c)
			return nil
		})
	})
	run(1, runs, func(qctx context.Context, filtered bool) error {
		from := unix(now.Add(-pol.Windows.Runs.Duration))
		return scan(qctx, conn, q(queryRuns, db, filtered), []any{from, from, unix(now.Add(-freshnessHorizon))}, func(rows driver.Rows) error {
			var ds string
			var ok, failed uint64
			var last int64
			if err := rows.Scan(&ds, &ok, &failed, &last); err != nil {
				return err
			}
			ds = intern(ds)
			st := runStats{ok: int(ok), failed: int(failed)}
			if last > 0 {
				st.lastSuccess = time.UnixMilli(last).UTC()
			}
			s.runs[ds] = st
			return nil
		})
	})
	usageFrom := "log"
	if daily {
		usageFrom = "daily states"
	}
	run(2, usage, func(qctx context.Context, filtered bool) error {
		return loadUsage(qctx, conn, db, pol, now, filtered, daily, s.usage)
	})
	wg.Wait()
	ph.done(fmt.Sprintf("load signals (checks %.3fs, runs %.3fs, usage %.3fs from the %s, at once)", took[0].Seconds(), took[1].Seconds(), took[2].Seconds(), usageFrom))
	for i, what := range []string{"checks", "runs", "usage"} {
		if errs[i] != nil {
			return nil, fmt.Errorf("load %s: %w", what, errs[i])
		}
	}
	return s, nil
}

// readsPerStateForDaily is how many reads of the log per daily state make
// the states the cheaper way to count consumers. Measured on ClickHouse
// 18.16 (BENCHMARKS.md): the log costs about 150 ns a read, a state about
// 1.7 µs to merge, and the windows' edge days are read from the log either
// way; below this, counting the log is faster.
const readsPerStateForDaily = 12

// usageFromDaily chooses where consumers are counted: from the daily
// states when the log holds many reads per state (a large mesh's usage:
// many reads per consumer and day), else from the log itself. A full
// pass chooses; the ticks after it follow its choice.
func usageFromDaily(ctx context.Context, conn driver.Conn, db string) (bool, error) {
	rows, err := conn.Query(ctx, queryUsageRows, db)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	n := map[string]uint64{}
	for rows.Next() {
		var table string
		var count uint64
		if err := rows.Scan(&table, &count); err != nil {
			return false, err
		}
		n[strings.TrimSuffix(table, store.LocalSuffix)] += count
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	return n["usage_consumers_daily"] > 0 && n["usage_events"] >= readsPerStateForDaily*n["usage_consumers_daily"], nil
}

// loadUsage reads distinct consumers now and before by dataset into out,
// from the daily states or from the log.
func loadUsage(ctx context.Context, conn driver.Conn, db string, pol *model.Policy, now time.Time, filtered, daily bool, out map[string][2]int) error {
	w := pol.Windows.Adoption.Duration
	cur, prev := now.Add(-w).Unix(), now.Add(-2*w).Unix()
	query, args := q(queryUsage, db, filtered), []any{cur, cur, prev}
	if daily {
		query, args = q(queryUsageDaily, db, filtered), []any{cur, prev, cur, cur, prev, prev, cur}
	}
	return scan(ctx, conn, query, args, func(rows driver.Rows) error {
		var ds string
		var now, before uint64
		if err := rows.Scan(&ds, &now, &before); err != nil {
			return err
		}
		out[intern(ds)] = [2]int{int(now), int(before)}
		return nil
	})
}

// has reports whether a dataset's signals were read (it may have none).
func (s *signalSet) has(ds string) bool { return s != nil && (s.all || s.read[ds]) }

// merge replaces the cached signals of the datasets read again.
func (s *signalSet) merge(fresh *signalSet, checks, runs, usage []string) {
	if s.read == nil {
		s.read = map[string]bool{}
	}
	for _, list := range [][]string{checks, runs, usage} {
		for _, ds := range list {
			s.read[ds] = true
		}
	}
	for _, ds := range checks {
		delete(s.checks, ds)
		if v, ok := fresh.checks[ds]; ok {
			s.checks[ds] = v
		}
	}
	for _, ds := range runs {
		delete(s.runs, ds)
		if v, ok := fresh.runs[ds]; ok {
			s.runs[ds] = v
		}
	}
	for _, ds := range usage {
		delete(s.usage, ds)
		if v, ok := fresh.usage[ds]; ok {
			s.usage[ds] = v
		}
	}
}

// scan runs a query and hands each row to fn.
func scan(ctx context.Context, conn driver.Conn, query string, args []any, fn func(driver.Rows) error) error {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// signalsOf assembles one product's signals.
func (s *signalSet) signalsOf(p *product) model.Signals {
	sig := model.Signals{Product: p.urn, Domain: p.domain, Meta: p.meta}
	var now, before int
	for _, ds := range p.outputs {
		sig.Checks = append(sig.Checks, s.checks[ds]...)
		r := s.runs[ds]
		sig.RunsOK += r.ok
		sig.RunsFailed += r.failed
		if r.lastSuccess.After(sig.LastSuccess) {
			sig.LastSuccess = r.lastSuccess
		}
		u := s.usage[ds]
		now += u[0]
		before += u[1]
	}
	// Consumers are counted per dataset; a product with several outputs
	// sums them (a consumer of two outputs counts twice, a documented
	// simplification that favours products with several outputs only mildly).
	sig.Consumers, sig.PrevConsumers = now, before
	return sig
}

// remote is a score another replica computed (its share).
type remote struct {
	healthKnown bool
	health      float64
	ownTrust    float64
	healthBand  string
	problems    []string
}

// loadRemote reads scores of other replicas' products: all or those named.
func loadRemote(ctx context.Context, conn driver.Conn, db string, urns []string) (map[string]remote, error) {
	out := map[string]remote{}
	if urns != nil && len(urns) == 0 {
		return out, nil
	}
	qctx, err := wanted(ctx, urns)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(qctx, q(queryRemote, db, urns != nil))
	if err != nil {
		return nil, fmt.Errorf("load scores of other replicas: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			urn, band     string
			health, trust *float64
			problems      []string
		)
		if err := rows.Scan(&urn, &health, &trust, &band, &problems); err != nil {
			return nil, err
		}
		r := remote{healthBand: band, problems: problems}
		if health != nil && trust != nil {
			r.healthKnown, r.health, r.ownTrust = true, *health, *trust
		}
		out[urn] = r
	}
	return out, rows.Err()
}

// intern returns the one copy of s: the same URN is a key of several of
// the scorer's maps (products, owners, each signal family, the lineage
// index), and at 100,000 products one copy instead of five is a sizeable
// part of the heap. A map under a lock rather than the unique package:
// unique.Make took 1.2 µs a call (its weak references), a third of a warm
// full pass at 100,000 products (BENCHMARKS.md); the map takes tens of
// nanoseconds. It forgets everything once it holds maxInterned strings
// (URNs of products long gone), which costs sharing, not correctness.
func intern(s string) string {
	interned.mu.Lock()
	defer interned.mu.Unlock()
	if v, ok := interned.m[s]; ok {
		return v
	}
	if len(interned.m) >= maxInterned {
		interned.m = make(map[string]string)
	}
	interned.m[s] = s
	return s
}

const maxInterned = 4 << 20

var interned = struct {
	mu sync.Mutex
	m  map[string]string
}{m: make(map[string]string)}

func internAll(ss []string) {
	for i, s := range ss {
		ss[i] = intern(s)
	}
}
