package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshpulse/meshpulse/internal/chserver"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestAddrs(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:9000", []string{"127.0.0.1:9000"}},
		{"a:9000,b:9000", []string{"a:9000", "b:9000"}},
		{"a:9000, b:9000 ,", []string{"a:9000", "b:9000"}},
	} {
		if got := (store.Config{Addr: tc.addr}).Addrs(); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	migs, err := store.Migrations("x")
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) < 2 {
		t.Fatalf("want at least two migrations, got %d", len(migs))
	}
	for _, m := range migs {
		for _, s := range m.Statements {
			known := false
			for _, verb := range []string{"CREATE ", "INSERT INTO ", "DROP TABLE IF EXISTS "} {
				known = known || strings.HasPrefix(s, verb)
			}
			if !known || strings.Contains(s, "{db}") || strings.HasSuffix(s, ";") {
				t.Errorf("migration %d: odd statement %q", m.Version, s)
			}
		}
	}
}

func TestMigrateIsIdempotentAndRefusesNewerSchema(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	applied, err := store.Migrate(ctx, conn, cfg.Database)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migrate applied %v, %v; want nothing", applied, err)
	}
	if err := store.CheckSchema(ctx, conn, cfg.Database); err != nil {
		t.Fatalf("CheckSchema on a migrated database: %v", err)
	}
	if err := store.CheckSchema(ctx, conn, "no_such_database"); err == nil {
		t.Fatal("CheckSchema on a missing database passed")
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".schema_migrations (version, name)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(9999), "future"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx, conn, cfg.Database); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("migrate over a newer schema: %v", err)
	}
	if err := store.CheckSchema(ctx, conn, cfg.Database); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("CheckSchema over a newer schema: %v", err)
	}
}

// TestReplayDoesNotDouble inserts the same batch twice, as a crash between
// insert and offset commit would, and checks that nothing an analyst counts
// through the views is doubled.
func TestReplayDoesNotDouble(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	w := store.NewWriter(conn, cfg.Database)
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := &store.Batch{}
	for i := range 100 {
		b.AddUsage(&events.UsageEvent{
			Envelope:   events.Envelope{EventID: "00000000-0000-4000-8000-" + pad(i), EventTime: now, Emitter: "platform"},
			DatasetURN: "urn:mesh:dataset:wh:sales.orders", Consumer: events.Consumer{User: "u" + pad(i%7)},
			AccessKind: "query", RowsRead: 10,
		}, "sales")
		b.AddQuality(&events.QualityResult{
			Envelope:   events.Envelope{EventID: "10000000-0000-4000-8000-" + pad(i), EventTime: now, Emitter: "sales"},
			DatasetURN: "urn:mesh:dataset:wh:sales.orders", CheckName: "c", CheckType: "validity",
			Status: []string{"PASS", "FAIL"}[i%2], Severity: "high",
		}, "sales")
	}
	for range 2 {
		if err := w.Insert(ctx, []*store.Batch{b}); err != nil {
			t.Fatal(err)
		}
	}
	var reads, rows, users uint64
	var sumRows int64
	row := conn.QueryRow(ctx, "SELECT sum(reads), sum(rows_read), max(distinct_users) FROM "+cfg.Database+".usage_daily")
	if err := row.Scan(&reads, &sumRows, &users); err != nil {
		t.Fatal(err)
	}
	if reads != 100 || sumRows != 1000 || users != 7 {
		t.Fatalf("usage_daily after replay: reads=%d rows_read=%d users=%d, want 100, 1000, 7", reads, sumRows, users)
	}
	var checks, failed uint64
	if err := conn.QueryRow(ctx, "SELECT sum(checks), sum(failed) FROM "+cfg.Database+".quality_daily").Scan(&checks, &failed); err != nil {
		t.Fatal(err)
	}
	if checks != 100 || failed != 50 {
		t.Fatalf("quality_daily after replay: checks=%d failed=%d, want 100, 50", checks, failed)
	}
	_ = rows
}

func pad(i int) string {
	s := "000000000000" + itoa(i)
	return s[len(s)-12:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestUsersKeepAnalystsReadOnly: on the private server the ingestor and the
// scorer write with users of their own, and the analyst user can read the
// views but neither insert nor change the schema.
func TestUsersKeepAnalystsReadOnly(t *testing.T) {
	if os.Getenv("MESHPULSE_TEST_CLICKHOUSE") != "" {
		t.Skip("the users exist on the private server of internal/chserver only")
	}
	cfg, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	as := func(user, password string) driver.Conn {
		c := cfg
		c.User, c.Password = user, password
		conn, err := store.OpenInDatabase(ctx, c)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	b := &store.Batch{}
	b.AddQuality(&events.QualityResult{Envelope: events.Envelope{EventID: "20000000-0000-4000-8000-000000000001", EventTime: time.Now(), Emitter: "sales"},
		DatasetURN: "urn:mesh:dataset:wh:sales.orders", CheckName: "c", CheckType: "validity", Status: "PASS", Severity: "low"}, "sales")
	if err := store.NewWriter(as(chserver.IngestorUser, chserver.IngestorPassword), cfg.Database).Insert(ctx, []*store.Batch{b}); err != nil {
		t.Fatalf("ingestor user cannot write: %v", err)
	}
	analyst := as(chserver.AnalystUser, chserver.AnalystPassword)
	var n uint64
	if err := analyst.QueryRow(ctx, "SELECT sum(checks) FROM quality_daily").Scan(&n); err != nil || n != 1 {
		t.Fatalf("analyst reads %d checks, %v", n, err)
	}
	if err := store.NewWriter(analyst, cfg.Database).Insert(ctx, []*store.Batch{b}); err == nil {
		t.Fatal("analyst user could insert")
	}
	if err := analyst.Exec(ctx, "DROP TABLE "+cfg.Database+".quality_results"); err == nil {
		t.Fatal("analyst user could drop a table")
	}
	scorer := as(chserver.ScorerUser, chserver.ScorerPassword)
	if err := scorer.QueryRow(ctx, "SELECT count() FROM products_current").Scan(&n); err != nil {
		t.Fatalf("scorer user cannot read: %v", err)
	}
}

// TestUpgradeKeepsDatasets replays an upgrade from the schema of migration 2
// (one datasets row per dataset) to the ownership schema: declarations and
// claims are carried over and the datasets view shows the same rows.
func TestUpgradeKeepsDatasets(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	ctx := context.Background()
	cfg := store.Config{Addr: addr, Database: "upgrade_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", ""), User: "default"}
	conn, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
	if _, err := store.MigrateUpTo(ctx, conn, cfg.Database, 2); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".datasets (dataset_urn, product_urn, domain, platform, field_names, field_types, field_descriptions, field_classifications, field_pii, event_id, event_time, event_time_ms)")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, d := range []string{"urn:mesh:dataset:wh:a", "urn:mesh:dataset:wh:b"} {
		if err := b.Append(d, "urn:mesh:product:sales:p", "sales", "wh", []string{"id", "email"}, []string{"string", "string"},
			[]string{"", ""}, []string{"internal", "restricted"}, []uint8{0, 1}, "e-"+d, now, now.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	// Reads stored before the daily consumer states existed are counted by
	// the migration that adds them.
	u, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".usage_events (event_id, event_time, event_time_ms, dataset_urn, consumer_user)")
	if err != nil {
		t.Fatal(err)
	}
	for k, user := range []string{"ann", "bob", "ann"} {
		if err := u.Append(fmt.Sprint("u-", k), now, now.UnixMilli(), "urn:mesh:dataset:wh:a", user); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Send(); err != nil {
		t.Fatal(err)
	}
	if applied, err := store.Migrate(ctx, conn, cfg.Database); err != nil || len(applied) == 0 {
		t.Fatalf("upgrade applied %v: %v", applied, err)
	}
	for q, want := range map[string]uint64{
		"SELECT count() FROM {db}.datasets":                              2,
		"SELECT count() FROM {db}.dataset_fields WHERE field_pii = 1":    2,
		"SELECT count() FROM {db}.dataset_owners WHERE domain = 'sales'": 2,
		"SELECT count() FROM {db}.dataset_declarations FINAL":            2,
		"SELECT uniqMerge(consumers) FROM {db}.usage_consumers_daily":    2,
	} {
		var n uint64
		if err := conn.QueryRow(ctx, strings.ReplaceAll(q, "{db}", cfg.Database)).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d, %v; want %d", q, n, err, want)
		}
	}
}
