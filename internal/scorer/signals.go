package scorer

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshpulse/meshpulse/internal/score"
	"github.com/meshpulse/meshpulse/pkg/lineage"
)

// The queries the scorer runs. They are constants, with the database and
// the time bounds as the only parameters; queries_test.go snapshots them
// and runs them on ClickHouse. Aggregations are chosen to be insensitive to
// replayed rows (argMax, uniqExact), so they read without FINAL where they can.
const (
	queryProducts = `SELECT product_urn, domain, description, tags, owners, documentation_url, access_notes,
       output_datasets, input_datasets, freshness_slo_seconds, min_quality_pass_rate
FROM {db}.products FINAL`

	queryDatasets = `SELECT dataset_urn, product_urn, schema_ref, field_names, field_descriptions, field_classifications, field_pii
FROM {db}.datasets`

	queryChecks = `SELECT dataset_urn, check_name, argMax(status, event_time_ms) AS status, argMax(severity, event_time_ms) AS severity
FROM {db}.quality_results
WHERE event_time >= toDateTime(?) {only}
GROUP BY dataset_urn, check_name`

	queryRuns = `SELECT ds,
       uniqExactIf(run_id, state = 'COMPLETE' AND event_time >= toDateTime(?)) AS ok,
       uniqExactIf(run_id, state IN ('FAIL', 'ABORT') AND event_time >= toDateTime(?)) AS failed,
       maxIf(event_time_ms, state = 'COMPLETE') AS last_success_ms
FROM {db}.lineage_runs
ARRAY JOIN outputs AS ds
WHERE event_time >= toDateTime(?) {only_ds}
GROUP BY ds`

	queryUsage = `SELECT dataset_urn,
       uniqExactIf(consumer_user, event_time >= toDateTime(?)) AS consumers,
       uniqExactIf(consumer_user, event_time < toDateTime(?)) AS previous
FROM {db}.usage_events
WHERE event_time >= toDateTime(?) {only}
GROUP BY dataset_urn`

	// queryChanged lists the datasets and products whose signals arrived
	// since a watermark (ingested_at is the server's insert time).
	queryChanged = `SELECT DISTINCT urn FROM (
  SELECT dataset_urn AS urn FROM {db}.quality_results WHERE ingested_at >= toDateTime(?)
  UNION ALL
  SELECT dataset_urn AS urn FROM {db}.usage_events WHERE ingested_at >= toDateTime(?)
  UNION ALL
  SELECT arrayJoin(outputs) AS urn FROM {db}.lineage_runs WHERE ingested_at >= toDateTime(?)
  UNION ALL
  SELECT product_urn AS urn FROM {db}.products WHERE ingested_at >= toDateTime(?)
)`

	queryLastScores = `SELECT product_urn, health, trust, health_band, trust_band FROM {db}.product_scores_latest`
)

// Query is one SQL statement the scorer runs, rendered for a database.
type Query struct {
	Name string
	SQL  string // with ? placeholders for its Args
	Args []string
}

// Queries lists every query the scorer runs, rendered for database db, with
// the kind of each argument ("time": unix seconds, "datasets": an array of
// URNs). Tests run them on every supported ClickHouse.
func Queries(db string) []Query {
	ts := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "time"
		}
		return out
	}
	with := func(a []string) []string { return append(a, "datasets") }
	return []Query{
		{"products", q(queryProducts, db, false), nil},
		{"datasets", q(queryDatasets, db, false), nil},
		{"checks (full pass)", q(queryChecks, db, false), ts(1)},
		{"checks (changed datasets)", q(queryChecks, db, true), with(ts(1))},
		{"runs (full pass)", q(queryRuns, db, false), ts(3)},
		{"runs (changed datasets)", q(queryRuns, db, true), with(ts(3))},
		{"usage (full pass)", q(queryUsage, db, false), ts(3)},
		{"usage (changed datasets)", q(queryUsage, db, true), with(ts(3))},
		{"changed since watermark", q(queryChanged, db, false), ts(4)},
		{"lineage products", "SELECT product_urn, output_datasets, input_datasets FROM " + db + ".products FINAL", nil},
		{"lineage edges", "SELECT input_dataset, output_dataset FROM " + db + ".lineage_edges FINAL", nil},
		{"clock", "SELECT now()", nil},
	}
}

// freshnessHorizon bounds how far back the last successful run is searched.
const freshnessHorizon = 30 * 24 * time.Hour

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// product is what the scorer keeps of a product's declaration.
type product struct {
	urn, domain string
	outputs     []string
	meta        score.Metadata
}

// snapshot is one load of everything the model needs.
type snapshot struct {
	products map[string]*product
	graph    *lineage.Graph
	checks   map[string][]score.CheckResult // by dataset
	runs     map[string]runStats            // by dataset
	usage    map[string][2]int              // by dataset: consumers now, before
}

type runStats struct {
	ok, failed  int
	lastSuccess time.Time
}

// q fills in the database and, for an incremental load, the dataset filter.
func q(query, db string, filtered bool) string {
	only, onlyDS := "", ""
	if filtered {
		only, onlyDS = "AND dataset_urn IN (SELECT arrayJoin(?))", "AND ds IN (SELECT arrayJoin(?))"
	}
	return strings.NewReplacer("{db}", db, "{only}", only, "{only_ds}", onlyDS).Replace(query)
}

// loadMeta reads every product's declaration and the lineage graph.
func loadMeta(ctx context.Context, conn driver.Conn, db string) (*snapshot, error) {
	s := &snapshot{products: map[string]*product{}, checks: map[string][]score.CheckResult{},
		runs: map[string]runStats{}, usage: map[string][2]int{}}
	if err := s.loadProducts(ctx, conn, db); err != nil {
		return nil, err
	}
	g, err := lineage.LoadClickHouse(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	s.graph = g
	return s, nil
}

// loadSignals reads checks, runs and usage as of now, for the given
// datasets only, or for all when datasets is nil, into the snapshot.
func (s *snapshot) loadSignals(ctx context.Context, conn driver.Conn, db string, pol *score.Policy, now time.Time, datasets []string) error {
	filtered := datasets != nil
	if filtered {
		if len(datasets) == 0 {
			return nil
		}
		for _, ds := range datasets {
			delete(s.checks, ds)
			delete(s.runs, ds)
			delete(s.usage, ds)
		}
	} else {
		s.checks, s.runs, s.usage = map[string][]score.CheckResult{}, map[string]runStats{}, map[string][2]int{}
	}
	args := func(a ...any) []any {
		if filtered {
			a = append(a, datasets)
		}
		return a
	}
	unix := func(t time.Time) int64 { return t.Unix() }

	rows, err := conn.Query(ctx, q(queryChecks, db, filtered), args(unix(now.Add(-pol.Windows.Quality.Duration)))...)
	if err != nil {
		return fmt.Errorf("load checks: %w", err)
	}
	for rows.Next() {
		var c score.CheckResult
		if err := rows.Scan(&c.Dataset, &c.Check, &c.Status, &c.Severity); err != nil {
			rows.Close()
			return err
		}
		s.checks[c.Dataset] = append(s.checks[c.Dataset], c)
	}
	rows.Close()

	runsFrom := unix(now.Add(-pol.Windows.Runs.Duration))
	rows, err = conn.Query(ctx, q(queryRuns, db, filtered), args(runsFrom, runsFrom, unix(now.Add(-freshnessHorizon)))...)
	if err != nil {
		return fmt.Errorf("load runs: %w", err)
	}
	for rows.Next() {
		var ds string
		var ok, failed uint64
		var last int64
		if err := rows.Scan(&ds, &ok, &failed, &last); err != nil {
			rows.Close()
			return err
		}
		st := runStats{ok: int(ok), failed: int(failed)}
		if last > 0 {
			st.lastSuccess = time.UnixMilli(last).UTC()
		}
		s.runs[ds] = st
	}
	rows.Close()

	w := pol.Windows.Adoption.Duration
	rows, err = conn.Query(ctx, q(queryUsage, db, filtered), args(unix(now.Add(-w)), unix(now.Add(-w)), unix(now.Add(-2*w)))...)
	if err != nil {
		return fmt.Errorf("load usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ds string
		var cur, prev uint64
		if err := rows.Scan(&ds, &cur, &prev); err != nil {
			return err
		}
		s.usage[ds] = [2]int{int(cur), int(prev)}
	}
	return rows.Err()
}

// changedSince lists the URNs (datasets and products) with signals stored
// at or after the watermark.
func changedSince(ctx context.Context, conn driver.Conn, db string, watermark time.Time) ([]string, error) {
	w := watermark.Unix()
	rows, err := conn.Query(ctx, q(queryChanged, db, false), w, w, w, w)
	if err != nil {
		return nil, fmt.Errorf("load changes: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *snapshot) loadProducts(ctx context.Context, conn driver.Conn, db string) error {
	rows, err := conn.Query(ctx, q(queryProducts, db, false))
	if err != nil {
		return fmt.Errorf("load products: %w", err)
	}
	for rows.Next() {
		var (
			p                 product
			desc, doc, access string
			tags, owners, ins []string
			freshness         *int64
			minPass           *float64
		)
		if err := rows.Scan(&p.urn, &p.domain, &desc, &tags, &owners, &doc, &access, &p.outputs, &ins, &freshness, &minPass); err != nil {
			rows.Close()
			return err
		}
		p.meta = score.Metadata{Description: desc, Tags: tags, Owners: owners, DocumentationURL: doc, AccessNotes: access,
			Outputs: len(p.outputs), HasSLO: freshness != nil || minPass != nil}
		if freshness != nil {
			p.meta.FreshnessSLO = time.Duration(*freshness) * time.Second
		}
		if minPass != nil {
			p.meta.MinPassRate = *minPass
		}
		s.products[p.urn] = &p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = conn.Query(ctx, q(queryDatasets, db, false))
	if err != nil {
		return fmt.Errorf("load datasets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ds, prod, schemaRef   string
			names, descs, classes []string
			pii                   []uint8
		)
		if err := rows.Scan(&ds, &prod, &schemaRef, &names, &descs, &classes, &pii); err != nil {
			return err
		}
		p := s.products[prod]
		if p == nil || !contains(p.outputs, ds) {
			continue // no longer declared by that product
		}
		m := &p.meta
		if schemaRef != "" {
			m.OutputsWithSchema++
		}
		m.Fields += len(names)
		for i, n := range names {
			if descs[i] != "" {
				m.FieldsDescribed++
			}
			if classes[i] != "" {
				m.FieldsClassified++
			}
			if pii[i] == 1 {
				m.PIIFields++
			}
			if snakeCase.MatchString(n) {
				m.FieldsSnakeCase++
			}
		}
	}
	return rows.Err()
}

// signals assembles one product's signals from the snapshot.
func (s *snapshot) signals(p *product) score.Signals {
	sig := score.Signals{Product: p.urn, Domain: p.domain, Meta: p.meta}
	consumers := map[bool]int{}
	for _, ds := range p.outputs {
		sig.Checks = append(sig.Checks, s.checks[ds]...)
		r := s.runs[ds]
		sig.RunsOK += r.ok
		sig.RunsFailed += r.failed
		if r.lastSuccess.After(sig.LastSuccess) {
			sig.LastSuccess = r.lastSuccess
		}
		u := s.usage[ds]
		consumers[true] += u[0]
		consumers[false] += u[1]
	}
	// Consumers are counted per dataset; a product with several outputs
	// sums them (a consumer of two outputs counts twice, a documented
	// simplification that favours products with several outputs only mildly).
	sig.Consumers, sig.PrevConsumers = consumers[true], consumers[false]
	return sig
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
