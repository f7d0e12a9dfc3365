package store

import (
	"strings"
	"testing"
)

// TestClusterRewrite: each kind of statement the migrations use, and its
// clustered form.
func TestClusterRewrite(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want []string
		err  string
	}{
		{"replacing table with a version, sharded by its sorting key",
			"CREATE TABLE IF NOT EXISTS db.products (\n    product_urn String,\n    event_time_ms Int64\n) ENGINE = ReplacingMergeTree(event_time_ms)\nORDER BY product_urn",
			[]string{
				"CREATE TABLE IF NOT EXISTS db.products_local ON CLUSTER mesh (\n    product_urn String,\n    event_time_ms Int64\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/products_local', '{replica}', event_time_ms)\nORDER BY product_urn",
				"CREATE TABLE IF NOT EXISTS db.products ON CLUSTER mesh AS db.products_local\nENGINE = Distributed(mesh, db, products_local, cityHash64(product_urn))",
			}, ""},
		{"append log with a partition and settings, the event's identity in the key",
			"CREATE TABLE IF NOT EXISTS db.usage_events (\n    dataset_urn String, event_time DateTime, event_id String\n) ENGINE = ReplacingMergeTree()\nPARTITION BY toYYYYMM(event_time)\nORDER BY (dataset_urn, event_time, event_id)\nSETTINGS index_granularity = 512",
			[]string{
				"CREATE TABLE IF NOT EXISTS db.usage_events_local ON CLUSTER mesh (\n    dataset_urn String, event_time DateTime, event_id String\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/usage_events_local', '{replica}')\nPARTITION BY toYYYYMM(event_time)\nORDER BY (dataset_urn, event_time, event_id)\nSETTINGS index_granularity = 512",
				"CREATE TABLE IF NOT EXISTS db.usage_events ON CLUSTER mesh AS db.usage_events_local\nENGINE = Distributed(mesh, db, usage_events_local, cityHash64(dataset_urn, event_time, event_id))",
			}, ""},
		{"view over the Distributed tables",
			"CREATE VIEW IF NOT EXISTS db.usage_daily AS\nSELECT count() FROM db.usage_events FINAL",
			[]string{"CREATE VIEW IF NOT EXISTS db.usage_daily ON CLUSTER mesh AS\nSELECT count() FROM db.usage_events FINAL"}, ""},
		{"materialized view from local to local",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS db.daily_mv TO db.daily AS\nSELECT dataset_urn FROM db.usage_events GROUP BY dataset_urn",
			[]string{"CREATE MATERIALIZED VIEW IF NOT EXISTS db.daily_mv ON CLUSTER mesh TO db.daily_local AS\nSELECT dataset_urn FROM db.usage_events_local GROUP BY dataset_urn"}, ""},
		{"dropping a table drops its local part",
			"DROP TABLE IF EXISTS db.usage_events",
			[]string{"DROP TABLE IF EXISTS db.usage_events ON CLUSTER mesh", "DROP TABLE IF EXISTS db.usage_events_local ON CLUSTER mesh"}, ""},
		{"dropping a view",
			"DROP TABLE IF EXISTS db.usage_daily",
			[]string{"DROP TABLE IF EXISTS db.usage_daily ON CLUSTER mesh"}, ""},
		{"backfill once, through the Distributed tables",
			"INSERT INTO db.dataset_runs (dataset_urn) SELECT ds FROM db.lineage_runs ARRAY JOIN outputs AS ds",
			[]string{"INSERT INTO db.dataset_runs (dataset_urn) SELECT ds FROM db.lineage_runs ARRAY JOIN outputs AS ds"}, ""},
		{"a table without a sorting key cannot be sharded",
			"CREATE TABLE IF NOT EXISTS db.x (a String) ENGINE = ReplacingMergeTree()", nil, "no ORDER BY"},
		{"anything else is refused, not passed through",
			"ALTER TABLE db.products ADD COLUMN x String", nil, "no clustered form"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rw, err := newClusterRewriter("mesh")
			if err != nil {
				t.Fatal(err)
			}
			// The tables of the earlier migrations.
			rw.tables["usage_events"], rw.tables["daily"] = true, true
			got, err := rw.rewrite(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n;\n") != strings.Join(c.want, "\n;\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n;\n"), strings.Join(c.want, "\n;\n"))
			}
		})
	}
}

// TestEveryMigrationHasAClusteredForm: the embedded migrations rewrite
// without error, and no statement of the clustered schema creates a
// non-replicated table.
func TestEveryMigrationHasAClusteredForm(t *testing.T) {
	migs, err := ClusterMigrations("meshpulse", "mesh")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		for _, stmt := range m.Statements {
			if strings.HasPrefix(stmt, "CREATE") && !strings.Contains(stmt, " ON CLUSTER mesh") {
				t.Errorf("migration %d: not ON CLUSTER: %.100s", m.Version, stmt)
			}
			if strings.Contains(stmt, "MergeTree(") && !strings.Contains(stmt, "ENGINE = Replicated") {
				t.Errorf("migration %d: a table that is not replicated: %.100s", m.Version, stmt)
			}
		}
	}
	if _, err := newClusterRewriter("mesh; DROP"); err == nil {
		t.Error("a cluster name that is not an identifier was accepted")
	}
}
