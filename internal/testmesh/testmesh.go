// Package testmesh gives integration tests a mesh played through the real
// services (the demo's domains, ingested and scored) and the README's
// queries to ask of it. Tests only.
package testmesh

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/app"
	"github.com/meshpulse/meshpulse/internal/demo"
	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// ReadmeQueries returns the SQL statements of the README's sql blocks.
func ReadmeQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		for _, stmt := range strings.Split(m[1], ";") {
			var lines []string
			for _, l := range strings.Split(stmt, "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
					lines = append(lines, l)
				}
			}
			if len(lines) > 0 {
				out = append(out, strings.Join(lines, " "))
			}
		}
	}
	return out
}

// DemoData plays the demo mesh for a few seconds through the real ingestor
// and scorer into a fresh database, and returns its config and a function
// that stops the ingestor and the scorer (also called when the test ends).
func DemoData(t *testing.T) (store.Config, func()) {
	t.Helper()
	sc, _ := testenv.ClickHouse(t)
	return DemoDataInto(t, sc)
}

// DemoDataInto is DemoData into the database sc names (migrated by the
// services themselves: a cluster's when sc.Cluster is set).
func DemoDataInto(t *testing.T, sc store.Config) (store.Config, func()) {
	t.Helper()
	seeds := testenv.Kafka(t)
	brokers := strings.Join(seeds, ",")
	ic := app.IngestorConfig{
		Migrate: true,
		Kafka:   kafka.Config{Brokers: brokers, Partitions: 3, Replication: 1},
		Store:   sc,
		Ingest:  ingest.Defaults(),
		Domains: strings.Join(demo.Domains, ","),
	}
	ic.Ingest.FlushInterval = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.RunIngestor(ctx, ic, log, app.NewRegistry(), func(*ingest.Ingestor) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	scfg := app.ScorerConfig{Kafka: ic.Kafka, Store: sc, Scorer: scorer.Defaults(), Migrate: true}
	scfg.Scorer.Tick = 200 * time.Millisecond
	scorerDone := make(chan error, 1)
	go func() { scorerDone <- app.RunScorer(ctx, scfg, log, app.NewRegistry(), nil) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			if err := <-scorerDone; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codecs, _ := events.NewCodecs()
	gen, err := demo.New(demo.Config{Tick: 50 * time.Millisecond, ReadsPerTick: 20}, cl, codecs, log)
	if err != nil {
		t.Fatal(err)
	}
	genCtx, stopGen := context.WithTimeout(ctx, 3*time.Second)
	defer stopGen()
	if err := gen.Run(genCtx); err != nil {
		t.Fatal(err)
	}
	return sc, stop
}

// CountRows runs a query and counts the rows it returns.
func CountRows(ctx context.Context, conn driver.Conn, q string) (int, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// AddHistory writes a score history row for product at each time, as a
// scorer would have on that day: for retention tests.
func AddHistory(t *testing.T, conn driver.Conn, db, product string, at ...time.Time) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+".score_history (product_urn, domain, computed_at, computed_at_ms, health_band, trust_band, kind)")
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range at {
		if err := b.Append(product, "sales", ts.Truncate(time.Second), ts.UnixMilli(), "unknown", "unknown", "snapshot"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// HistoryMonths counts the score history rows of product by month
// (YYYYMM).
func HistoryMonths(t *testing.T, conn driver.Conn, db, product string) map[uint32]uint64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT toYYYYMM(computed_at) AS month, count() FROM "+db+".score_history WHERE product_urn = ? GROUP BY month", product)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint32]uint64{}
	for rows.Next() {
		var m uint32
		var n uint64
		if err := rows.Scan(&m, &n); err != nil {
			t.Fatal(err)
		}
		out[m] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
