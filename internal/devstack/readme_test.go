package devstack

import (
	"context"
	"os"
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

func TestMain(m *testing.M) { testenv.Main(m) }

// ReadmeQueries returns the SQL statements of the README's sql blocks.
func readmeQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
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

// demoData plays the demo mesh for a few seconds through the real ingestor
// and scorer into a fresh database, and returns its config and a function
// that stops the ingestor and the scorer (also called when the test ends).
func demoData(t *testing.T) (store.Config, func()) {
	t.Helper()
	seeds := testenv.Kafka(t)
	sc, _ := testenv.ClickHouse(t)
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

// TestReadmeQueriesOnDemoData plays the demo mesh through the real ingestor
// and scorer and runs every query of the README: each must return rows.
func TestReadmeQueriesOnDemoData(t *testing.T) {
	queries := readmeQueries(t)
	if len(queries) < 12 {
		t.Fatalf("found %d README queries", len(queries))
	}
	sc, _ := demoData(t)
	ctx := context.Background()
	conn, err := store.OpenInDatabase(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for _, q := range queries {
		for {
			n, err := countRows(ctx, conn, q)
			if err != nil {
				t.Fatalf("README query failed: %v\n%s", err, q)
			}
			if n > 0 {
				t.Logf("%d rows: %s", n, q)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("README query returned no rows on demo data:\n%s", q)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	line, err := Summary(ctx, conn, sc.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(line)
}

func countRows(ctx context.Context, conn driver.Conn, q string) (int, error) {
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
