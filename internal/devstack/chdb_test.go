//go:build chdb

// This file runs only with -tags chdb and CHDB_LIB_PATH set (make
// test-chdb): chdb-go loads libchdb.so when the package starts.

package devstack

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chdb-io/chdb-go/chdb"

	"github.com/meshpulse/meshpulse/internal/catalog"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/internal/testmesh"
)

// TestCurrentClickHouseAgrees runs every migration, every query the scorer
// runs and every README query on a current ClickHouse engine (chDB) over
// the same data as the 18.16 server, and requires equal results.
func TestCurrentClickHouseAgrees(t *testing.T) {
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		testenv.Unavailable(t, "clickhouse-client is needed to export the 18.16 data")
	}
	// Data on 18.16, through the real write paths: the demo mesh through
	// the ingestor, and the scorer's history.
	sc, stop := testmesh.DemoData(t)
	ctx := context.Background()
	conn, err := store.OpenInDatabase(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM product_scores_latest").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d products scored", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop() // nothing may change between the export and the queries

	host, port, _ := strings.Cut(sc.Addr, ":")
	old := func(query string) (string, error) {
		out, err := exec.Command(client, "--host", host, "--port", port, "--database", sc.Database,
			"--query", query, "--format", "TSV").CombinedOutput()
		return string(out), err
	}

	sess, err := chdb.NewSession(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	cur := func(query string) (string, error) {
		res, err := sess.Query(query, "TSV")
		if err != nil {
			return "", err
		}
		return res.String(), nil
	}
	version, _ := cur("SELECT version()")
	t.Logf("chDB ClickHouse %s", strings.TrimSpace(version))

	// 1. Migrations.
	db := sc.Database
	migs, err := store.Migrations(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cur("CREATE DATABASE IF NOT EXISTS " + db); err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		for i, stmt := range m.Statements {
			if _, err := cur(stmt); err != nil {
				t.Fatalf("migration %04d_%s statement %d on current ClickHouse: %v\n%s", m.Version, m.Name, i+1, err, stmt)
			}
		}
	}
	// 2. The same rows: exported from 18.16 as Values, inserted as they are.
	// Every table (not the views), so that a table a later migration adds
	// cannot be forgotten here.
	tables, err := old("SELECT name FROM system.tables WHERE database = '" + db + "' AND engine NOT LIKE '%View' ORDER BY name")
	if err != nil {
		t.Fatalf("list tables: %v\n%s", err, tables)
	}
	for _, table := range strings.Fields(tables) {
		if table == "schema_migrations" {
			continue // written by the migrations themselves on both sides
		}
		if table == "usage_consumers_daily" {
			continue // filled from usage_events by its materialized view on both sides
		}
		values, err := old("SELECT * FROM " + table + " FORMAT Values")
		if err != nil {
			t.Fatalf("export %s: %v\n%s", table, err, values)
		}
		if strings.TrimSpace(values) == "" {
			continue
		}
		if _, err := cur("INSERT INTO " + db + "." + table + " VALUES " + values); err != nil {
			t.Fatalf("insert %s into current ClickHouse: %v", table, err)
		}
	}
	// 3. Queries: the scorer's with fixed arguments, and the README's.
	now := time.Now().Add(time.Minute).Unix()
	type query struct{ name, sql string }
	var queries []query
	for _, q := range scorer.Queries(db) {
		if q.Name == "clock" {
			continue // now() differs by design
		}
		sql := q.SQL
		for _, a := range q.Args {
			if a == "wanted" {
				// The external table the scorer sends with the query (the
				// clients here cannot send one): the same URNs inline.
				sql = strings.ReplaceAll(sql, "(SELECT urn FROM wanted)", "(SELECT arrayJoin(['urn:mesh:dataset:warehouse:sales.orders', "+
					"'urn:mesh:dataset:warehouse:finance.ledger', 'urn:mesh:product:sales:orders', 'urn:mesh:product:finance:ledger']) AS urn)")
				continue
			}
			sql = strings.Replace(sql, "?", fmt.Sprint(now-30*24*3600), 1)
		}
		queries = append(queries, query{"scorer: " + q.Name, sql})
	}
	inline := "(SELECT arrayJoin(['urn:mesh:dataset:warehouse:sales.orders', 'urn:mesh:dataset:warehouse:finance.ledger', " +
		"'urn:mesh:product:sales:orders', 'urn:mesh:product:finance:ledger']) AS urn)"
	for _, q := range catalog.Queries(db) {
		sql := q.SQL
		if q.Wanted {
			sql = strings.ReplaceAll(sql, "(SELECT urn FROM wanted)", inline)
		}
		for _, a := range q.Args {
			v := map[string]string{"product": "'urn:mesh:product:sales:orders'", "dataset": "'urn:mesh:dataset:warehouse:sales.orders'",
				"since": "0"}[a]
			sql = strings.Replace(sql, "?", v, 1)
		}
		if q.Name == "scores" {
			// Read without FINAL by design (the newest row wins in Go): the
			// parts merged differ between the engines, the rows may not.
			sql = strings.Replace(sql, "scores_current\n", "scores_current FINAL\n", 1)
		}
		queries = append(queries, query{"catalog: " + q.Name, sql})
	}
	// The views of the OpenLineage migration (empty in the demo data, but
	// they must exist and answer alike).
	for _, v := range []string{"openlineage_datasets_current", "openlineage_dataset_fields", "dataset_aliases", "column_lineage"} {
		queries = append(queries, query{"view " + v, "SELECT * FROM " + db + "." + v})
	}
	for _, q := range testmesh.ReadmeQueries(t) {
		queries = append(queries, query{"README", q})
	}
	if _, err := cur("USE " + db); err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		want, err := old(q.sql)
		if err != nil {
			t.Fatalf("%s on 18.16: %v\n%s\n%s", q.name, err, want, q.sql)
		}
		got, err := cur(q.sql)
		if err != nil {
			t.Fatalf("%s on current ClickHouse: %v\n%s", q.name, err, q.sql)
		}
		if normalise(got) != normalise(want) {
			t.Errorf("%s differs:\n%s\n18.16:\n%s\ncurrent:\n%s", q.name, q.sql, want, got)
			continue
		}
		if strings.TrimSpace(want) == "" && q.name == "README" {
			t.Errorf("README query returned nothing on either engine:\n%s", q.sql)
		}
		t.Logf("%s: %d equal rows", q.name, strings.Count(want, "\n"))
	}
}

// normalise sorts the lines, so that row order where a query does not fix
// it does not count as a difference.
func normalise(tsv string) string {
	lines := strings.Split(strings.TrimSpace(tsv), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
