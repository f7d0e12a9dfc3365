package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The catalog's queries. {db} is the database; {wanted} is an external
// table of the URNs a query is about (column urn). Where a LIMIT cuts, the
// order is total, so that every engine and every refresh shows the same rows.
const (
	qProducts = `SELECT product_urn, domain, name, description, tags, owners, lifecycle, documentation_url, access_notes,
       output_datasets, input_datasets
FROM {db}.products FINAL`

	qDeclaredDatasets = `SELECT dataset_urn, product_urn, domain, description, field_names, field_types, field_descriptions,
       field_classifications, field_pii
FROM {db}.dataset_declarations FINAL`

	qObservedFields = `SELECT dataset_urn, argMaxIf(field_names, event_time_ms, has_schema = 1), argMaxIf(field_types, event_time_ms, has_schema = 1),
       argMaxIf(field_descriptions, event_time_ms, has_schema = 1), argMaxIf(description, event_time_ms, has_description = 1)
FROM {db}.openlineage_datasets {where}
GROUP BY dataset_urn`

	// Scores changed since a time (0: all). Without FINAL: a product may
	// come twice before a merge, and the newest wins in Go.
	qScores = `SELECT product_urn, domain, computed_at_ms, health, trust, health_band, trust_band, cause
FROM {db}.scores_current
WHERE computed_at_ms > ?`

	// Distinct consumers of each dataset over 30 days: the search boost.
	qUsage = `SELECT dataset_urn, uniq(consumer_user)
FROM {db}.usage_events
WHERE event_time >= now() - INTERVAL 30 DAY
GROUP BY dataset_urn`

	qProductScore = `SELECT health, trust, own_trust, health_band, trust_band, computed_at_ms, component_names, component_scores,
       component_weights, component_details, reasons, violations, problems, cause, root_cause_products, root_cause_hops,
       root_cause_bands, root_cause_signals
FROM {db}.scores_current FINAL
WHERE product_urn = ?`

	qHistory = `SELECT computed_at_ms, health, trust, health_band, trust_band, kind, cause
FROM {db}.score_history
WHERE product_urn = ? AND computed_at >= toDateTime(?)
ORDER BY computed_at_ms, kind
LIMIT 5000`

	qSparklines = `SELECT product_urn, computed_at_ms, trust
FROM {db}.score_history
WHERE product_urn IN (SELECT urn FROM wanted) AND computed_at >= now() - INTERVAL 7 DAY
ORDER BY product_urn, computed_at_ms`

	qConsumers = `SELECT consumer_domain, consumer_team, uniq(consumer_user) AS users, count() AS reads, max(event_time_ms)
FROM {db}.usage_events
WHERE dataset_urn IN (SELECT urn FROM wanted) AND event_time >= now() - INTERVAL 30 DAY
GROUP BY consumer_domain, consumer_team
ORDER BY reads DESC, consumer_domain, consumer_team
LIMIT 20`

	qChecks = `SELECT event_time_ms, dataset_urn, check_name, check_type, status, severity, message
FROM {db}.quality_results FINAL
WHERE dataset_urn IN (SELECT urn FROM wanted) AND event_time >= now() - INTERVAL 30 DAY
ORDER BY event_time_ms DESC, dataset_urn, check_name
LIMIT 20`

	qRuns = `SELECT event_time_ms, dataset_urn, job_urn, run_id, state
FROM {db}.dataset_runs FINAL
WHERE dataset_urn IN (SELECT urn FROM wanted) AND event_time >= now() - INTERVAL 30 DAY
ORDER BY event_time_ms DESC, dataset_urn, run_id, state
LIMIT 20`

	qDatasetOwner = `SELECT product_urn, domain
FROM {db}.dataset_claims
WHERE dataset_urn = ?
ORDER BY claimed_at_ms, event_id
LIMIT 1`

	qDatasetUsage = `SELECT toString(toDate(event_time)) AS day, count(), uniq(consumer_user)
FROM {db}.usage_events
WHERE dataset_urn = ? AND event_time >= now() - INTERVAL 30 DAY
GROUP BY day
ORDER BY day`

	qColumnLineage = `SELECT output_dataset, output_field, input_dataset, input_field, any(transformation)
FROM (
    SELECT column_output_datasets, column_output_fields, column_input_datasets, column_input_fields, column_transformations
    FROM {db}.lineage_runs
    WHERE event_time >= now() - INTERVAL 92 DAY AND (has(column_output_datasets, ?) OR has(column_input_datasets, ?))
)
ARRAY JOIN column_output_datasets AS output_dataset, column_output_fields AS output_field,
           column_input_datasets AS input_dataset, column_input_fields AS input_field, column_transformations AS transformation
WHERE output_dataset = ? OR input_dataset = ?
GROUP BY output_dataset, output_field, input_dataset, input_field
LIMIT 2000`
)

func (s *Server) q(query string) string { return strings.ReplaceAll(query, "{db}", s.db) }

// withURNs attaches the external table wanted holding urns.
func withURNs(ctx context.Context, urns []string) (context.Context, error) {
	t, err := ext.NewTable("wanted", ext.Column("urn", "String"))
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

func scanAll(ctx context.Context, conn driver.Conn, query string, args []any, row func(driver.Rows) error) error {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *Server) loadProducts(ctx context.Context) (map[string]productInfo, error) {
	out := map[string]productInfo{}
	err := scanAll(ctx, s.conn, s.q(qProducts), nil, func(r driver.Rows) error {
		var p productInfo
		if err := r.Scan(&p.URN, &p.Domain, &p.Name, &p.Description, &p.Tags, &p.Owners, &p.Lifecycle, &p.DocURL, &p.AccessNotes, &p.Outputs, &p.Inputs); err != nil {
			return err
		}
		out[p.URN] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	return out, nil
}

// loadDatasets reads every dataset the mesh knows of, declared (by their
// owning product) and observed (OpenLineage schema facets).
func (s *Server) loadDatasets(ctx context.Context) (map[string]datasetInfo, error) {
	owners := map[string]string{}
	if err := scanAll(ctx, s.conn, s.q(`SELECT dataset_urn, product_urn FROM {db}.dataset_owners`), nil, func(r driver.Rows) error {
		var ds, p string
		if err := r.Scan(&ds, &p); err != nil {
			return err
		}
		owners[ds] = p
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load dataset owners: %w", err)
	}
	out := map[string]datasetInfo{}
	err := scanAll(ctx, s.conn, s.q(qDeclaredDatasets), nil, func(r driver.Rows) error {
		var d datasetInfo
		var names, types, descs, classes []string
		var pii []uint8
		if err := r.Scan(&d.URN, &d.Product, &d.Domain, &d.Description, &names, &types, &descs, &classes, &pii); err != nil {
			return err
		}
		if owner, ok := owners[d.URN]; ok && owner != d.Product {
			return nil // a losing claim: the owner's declaration is the dataset's
		}
		for i := range names {
			d.Fields = append(d.Fields, fieldInfo{Name: names[i], Type: at(types, i), Description: at(descs, i),
				Classification: at(classes, i), PII: i < len(pii) && pii[i] == 1, Source: "declared"})
		}
		out[d.URN] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load datasets: %w", err)
	}
	err = scanAll(ctx, s.conn, strings.ReplaceAll(s.q(qObservedFields), "{where}", ""), nil, func(r driver.Rows) error {
		var urn, desc string
		var names, types, descs []string
		if err := r.Scan(&urn, &names, &types, &descs, &desc); err != nil {
			return err
		}
		d, ok := out[urn]
		if !ok {
			d = datasetInfo{URN: urn, Product: owners[urn], Description: desc}
		}
		if d.Description == "" {
			d.Description = desc
		}
		if len(d.Fields) == 0 {
			for i := range names {
				d.Fields = append(d.Fields, fieldInfo{Name: names[i], Type: at(types, i), Description: at(descs, i), Source: "openlineage"})
			}
		}
		out[urn] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load observed fields: %w", err)
	}
	return out, nil
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// loadScores reads the scores computed after sinceMs, the newest per product.
func (s *Server) loadScores(ctx context.Context, sinceMs int64) (map[string]Score, error) {
	out := map[string]Score{}
	err := scanAll(ctx, s.conn, s.q(qScores), []any{sinceMs}, func(r driver.Rows) error {
		var sc Score
		if err := r.Scan(&sc.Product, &sc.Domain, &sc.At, &sc.Health, &sc.Trust, &sc.HealthBand, &sc.TrustBand, &sc.Cause); err != nil {
			return err
		}
		if old, ok := out[sc.Product]; !ok || sc.At > old.At {
			out[sc.Product] = sc
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load scores: %w", err)
	}
	return out, nil
}

// pollScores applies the scores computed since the newest one seen and
// returns those that changed.
func (s *Server) pollScores(ctx context.Context) ([]Score, error) {
	s.mesh.mu.RLock()
	var since int64
	for _, sc := range s.mesh.scores {
		since = max(since, sc.At)
	}
	s.mesh.mu.RUnlock()
	// A scorer writes a tick's rows at once; a margin catches rows of the
	// same tick that became visible after the previous read.
	scores, err := s.loadScores(ctx, since-int64(5*time.Second/time.Millisecond))
	if err != nil {
		return nil, err
	}
	return s.mesh.setScores(scores), nil
}

// loadUsage is each product's distinct consumers over its outputs.
func (s *Server) loadUsage(ctx context.Context) (map[string]int, error) {
	byDataset := map[string]int{}
	err := scanAll(ctx, s.conn, s.q(qUsage), nil, func(r driver.Rows) error {
		var ds string
		var n uint64
		if err := r.Scan(&ds, &n); err != nil {
			return err
		}
		byDataset[ds] = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load usage: %w", err)
	}
	return byDataset, nil
}

// Query is one statement the catalog runs, with the kinds of its ?
// arguments ("product", "dataset", "since") and whether it reads the
// external table wanted; the test on current ClickHouse runs them all.
type Query struct {
	Name   string
	SQL    string
	Args   []string
	Wanted bool
}

// Queries lists the catalog's statements rendered for database db.
func Queries(db string) []Query {
	r := func(s string) string { return strings.ReplaceAll(s, "{db}", db) }
	return []Query{
		{Name: "products", SQL: r(qProducts)},
		{Name: "declared datasets", SQL: r(qDeclaredDatasets)},
		{Name: "observed fields", SQL: strings.ReplaceAll(r(qObservedFields), "{where}", "")},
		{Name: "scores", SQL: r(qScores), Args: []string{"since"}},
		{Name: "usage", SQL: r(qUsage)},
		{Name: "product score", SQL: r(qProductScore), Args: []string{"product"}},
		{Name: "history", SQL: r(qHistory), Args: []string{"product", "since"}},
		{Name: "sparklines", SQL: r(qSparklines), Wanted: true},
		{Name: "consumers", SQL: r(qConsumers), Wanted: true},
		{Name: "checks", SQL: r(qChecks), Wanted: true},
		{Name: "runs", SQL: r(qRuns), Wanted: true},
		{Name: "dataset owner", SQL: r(qDatasetOwner), Args: []string{"dataset"}},
		{Name: "dataset usage", SQL: r(qDatasetUsage), Args: []string{"dataset"}},
		{Name: "column lineage", SQL: r(qColumnLineage), Args: []string{"dataset", "dataset", "dataset", "dataset"}},
		{Name: "dataset owners", SQL: r(`SELECT dataset_urn, product_urn FROM {db}.dataset_owners`)},
	}
}
