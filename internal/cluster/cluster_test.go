//go:build cluster

// Package cluster_test proves the clustered schema (meshpulse migrate
// -cluster) on a real local ClickHouse cluster: two shards of two replicas
// of clickhouse-server coordinated by ZooKeeper, started by
// scripts/clickhouse-cluster (make test-cluster starts it and names its
// directory in MESHPULSE_TEST_CLUSTER). Each test prints its figures for
// RELIABILITY.md and BENCHMARKS.md as lines starting with CLUSTER.
package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/app"
	"github.com/meshpulse/meshpulse/internal/catalog"
	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/internal/testmesh"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func report(t *testing.T, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	fmt.Println("CLUSTER " + t.Name() + ": " + line)
}

// chCluster is the cluster scripts/clickhouse-cluster started.
type chCluster struct {
	dir   string
	nodes map[string]string // s1r1 -> 127.0.0.1:port
	names []string          // s1r1, s1r2, s2r1, ...
}

func cluster(t *testing.T) *chCluster {
	t.Helper()
	dir := os.Getenv("MESHPULSE_TEST_CLUSTER")
	if dir == "" {
		testenv.Unavailable(t, "MESHPULSE_TEST_CLUSTER is not set: start a cluster with scripts/clickhouse-cluster start DIR and name DIR there (make test-cluster does both)")
	}
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		testenv.Unavailable(t, "no cluster in %s: %v", dir, err)
	}
	defer f.Close()
	c := &chCluster{dir: dir, nodes: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "NODE_") {
			name := strings.TrimPrefix(k, "NODE_")
			c.nodes[name] = v
			c.names = append(c.names, name)
		}
	}
	sort.Strings(c.names)
	if len(c.names) < 4 {
		t.Fatalf("the cluster in %s has %d servers; the tests need two shards of two replicas", dir, len(c.names))
	}
	return c
}

// config is a store configuration for a new database on the cluster: every
// server listed, the first that answers used.
func (c *chCluster) config(t *testing.T) store.Config {
	var addrs []string
	for _, n := range c.names {
		addrs = append(addrs, c.nodes[n])
	}
	return store.Config{Addr: strings.Join(addrs, ","), Database: "cl_" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), User: "default", Cluster: "mesh"}
}

// migrate creates the clustered schema of sc and drops it when the test ends.
func (c *chCluster) migrate(t *testing.T, sc store.Config) driver.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := store.Open(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := store.MigrateFor(ctx, conn, sc); err != nil {
		t.Fatalf("migrate -cluster: %v", err)
	}
	report(t, "clustered schema migrated ON CLUSTER in %.1fs", time.Since(start).Seconds())
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+sc.Database+" ON CLUSTER mesh")
		conn.Close()
	})
	return conn
}

// node opens one server of the cluster.
func (c *chCluster) node(t *testing.T, name string) driver.Conn {
	t.Helper()
	conn, err := store.Open(context.Background(), store.Config{Addr: c.nodes[name], Database: "default", User: "default"})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// script runs scripts/clickhouse-cluster on this cluster.
func (c *chCluster) script(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.ModuleRoot(t), "scripts", "clickhouse-cluster"), append([]string{args[0], c.dir}, args[1:]...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse-cluster %v: %v\n%s", args, err, out)
	}
}

func count(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestClusterReadmeQueries: the demo mesh played through the real ingestor
// and scorer into the clustered schema; every README query returns rows,
// and every server knows every migration.
func TestClusterReadmeQueries(t *testing.T) {
	c := cluster(t)
	sc := c.config(t)
	c.migrate(t, sc)
	testmesh.DemoDataInto(t, sc)
	ctx := context.Background()
	conn, err := store.OpenInDatabase(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	queries := testmesh.ReadmeQueries(t)
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range queries {
		for {
			n, err := testmesh.CountRows(ctx, conn, q)
			if err != nil {
				t.Fatalf("README query failed on the cluster: %v\n%s", err, q)
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("README query returned no rows on the cluster:\n%s", q)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	catalogPages(t, sc)
	migs, _ := store.Migrations(sc.Database)
	for _, name := range c.names {
		if got := count(t, c.node(t, name), "SELECT uniqExact(version) FROM "+sc.Database+".schema_migrations"); got != uint64(len(migs)) {
			t.Errorf("%s knows %d migrations, want %d", name, got, len(migs))
		}
	}
	report(t, "%d README queries and the catalog's pages answered on 2 shards x 2 replicas; every server lists the %d migrations", len(queries), len(migs))
}

// catalogPages runs the catalog over the cluster's database: its mesh
// page, a product page and a search answer from the Distributed tables.
func catalogPages(t *testing.T, sc store.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := store.Open(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kcfg := coreBroker(t)
	codecs, _ := events.NewCodecs()
	cat, err := catalog.New(catalog.Config{Listen: "127.0.0.1:0", Refresh: time.Hour, LivePoll: 2 * time.Second}, conn, sc.Database, kcfg.Opts(), codecs,
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- cat.Run(ctx, func(a string) { addr <- a }) }()
	base := "http://" + <-addr
	for deadline := time.Now().Add(time.Minute); !cat.Ready(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the catalog was not ready in a minute")
		}
	}
	for path, want := range map[string]string{
		"/api/mesh": "urn:mesh:product:sales:orders",
		"/api/products/" + url.PathEscape("urn:mesh:product:sales:orders"): `"history"`,
		"/api/search?q=ordrs": "urn:mesh:product:sales:orders",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("catalog on the cluster: %s answered %s without %s: %.300s", path, resp.Status, want, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("catalog: %v", err)
	}
}

// TestClusterScoresEqualOneServer: the same mesh written to the cluster and
// to one server; the scorer's first full pass gives the same scores.
func TestClusterScoresEqualOneServer(t *testing.T) {
	c := cluster(t)
	csc := c.config(t)
	cconn := c.migrate(t, csc)
	ssc, sconn := testenv.ClickHouse(t)
	now := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Minute)
	for _, w := range []*store.Writer{store.NewWriter(cconn, csc.Database), store.NewWriter(sconn, ssc.Database)} {
		if err := w.Insert(context.Background(), []*store.Batch{smallMesh(now, 300)}); err != nil {
			t.Fatal(err)
		}
	}
	// A month of score history older than the retention, and one within:
	// the first full pass drops the first from every shard.
	const retired = "urn:mesh:product:sales:retired"
	old, kept := now.AddDate(0, -15, 0), now.AddDate(0, -2, 0)
	testmesh.AddHistory(t, cconn, csc.Database, retired, old, kept)
	clustered := scoreOnce(t, cconn, csc.Database, func() {
		// Reads through the Distributed table go to any replica of each
		// shard; the scorer's inserts reached one. Wait for the others.
		for _, name := range c.names {
			if err := c.node(t, name).Exec(context.Background(), "SYSTEM SYNC REPLICA "+csc.Database+".scores_current_local"); err != nil {
				t.Fatalf("%s: sync replica: %v", name, err)
			}
		}
	})
	month := func(ts time.Time) uint32 { return uint32(ts.Year()*100 + int(ts.Month())) }
	if got := testmesh.HistoryMonths(t, cconn, csc.Database, retired); got[month(old)] != 0 || got[month(kept)] != 1 {
		t.Fatalf("score history on the cluster after the first pass: %v; want month %d dropped and %d kept", got, month(old), month(kept))
	}
	for _, name := range c.names {
		var n uint64
		if err := c.node(t, name).QueryRow(context.Background(), "SELECT count() FROM "+csc.Database+".score_history_local WHERE toYYYYMM(computed_at) = ?", month(old)).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d history rows of month %d left (%v)", name, n, month(old), err)
		}
	}
	report(t, "score history older than the retention dropped on every server (month %d), newer kept", month(old))
	single := scoreOnce(t, sconn, ssc.Database, func() {})
	if len(single) != 300 {
		t.Fatalf("one server scored %d products, want 300", len(single))
	}
	diff := 0
	for p, s := range single {
		if clustered[p] != s {
			diff++
			if diff <= 5 {
				t.Errorf("%s: cluster %q, one server %q", p, clustered[p], s)
			}
		}
	}
	if len(clustered) != len(single) || diff > 0 {
		t.Fatalf("scores differ: %d products on the cluster, %d on one server, %d different", len(clustered), len(single), diff)
	}
	distinct := map[string]bool{}
	for _, s := range single {
		distinct[s] = true
	}
	if len(distinct) < 10 {
		t.Fatalf("only %d different scores among %d products: the mesh does not exercise the model", len(distinct), len(single))
	}
	report(t, "%d products scored (%d different scores): health, trust and bands equal on the cluster and on one server", len(single), len(distinct))
}

// smallMesh is 300 products in three layers with checks, runs and reads
// over ten days, none of them near a window's border.
func smallMesh(now time.Time, n int) *store.Batch {
	b := &store.Batch{}
	ds := func(i int) string { return events.DatasetURN("warehouse", fmt.Sprintf("domain%d.p_%d", i%5, i)) }
	for i := range n {
		var inputs []string
		if i >= n/3 {
			inputs = []string{ds(i - n/3), ds((i * 7) % (n / 3))}
		}
		b.AddMetadata(&events.ProductMetadata{Envelope: events.Envelope{EventID: fmt.Sprint("m", i), EventTime: now.Add(-10 * 24 * time.Hour)},
			ProductURN: events.ProductURN(fmt.Sprintf("domain%d", i%5), fmt.Sprintf("p_%d", i)), Domain: fmt.Sprintf("domain%d", i%5),
			Name: fmt.Sprintf("p_%d", i), Description: "generated", Owners: []string{"o"}, Lifecycle: "active", Inputs: inputs,
			SLO:     &events.SLO{FreshnessSeconds: ptr(int64(86400))},
			Outputs: []events.OutputDataset{{DatasetURN: ds(i), Fields: []events.DatasetField{{Name: "id", Type: "string"}}}}})
		for d := range 10 {
			day := now.Add(-time.Duration(d) * 24 * time.Hour)
			for k := range 3 {
				status := "PASS"
				if (i+d+k)%17 == 0 {
					status = "FAIL"
				}
				b.AddQuality(&events.QualityResult{Envelope: events.Envelope{EventID: fmt.Sprint("q", i, "_", d, "_", k), EventTime: day.Add(-time.Duration(k) * time.Hour)},
					DatasetURN: ds(i), CheckName: fmt.Sprint("check_", k), CheckType: "validity", Status: status, Severity: "high"}, "")
			}
			state := "COMPLETE"
			if (i+d)%13 == 0 {
				state = "FAIL"
			}
			b.AddLineage(&events.LineageRun{Envelope: events.Envelope{EventID: fmt.Sprint("r", i, "_", d), EventTime: day},
				JobURN: events.JobURN(fmt.Sprintf("domain%d", i%5), fmt.Sprintf("build_%d", i)), RunID: fmt.Sprint(i, "_", d), State: state,
				Inputs: inputs, Outputs: []string{ds(i)}})
			for u := range i % 7 {
				b.AddUsage(&events.UsageEvent{Envelope: events.Envelope{EventID: fmt.Sprint("u", i, "_", d, "_", u), EventTime: day.Add(-time.Duration(u) * time.Minute)},
					DatasetURN: ds(i), Consumer: events.Consumer{User: fmt.Sprint("user_", (i+u)%11)}, AccessKind: "query"}, "")
			}
		}
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// coreBroker is an in-process broker with meshpulse's own topics, closed
// when the test ends: for services the test runs beside the cluster.
func coreBroker(t *testing.T) kafka.Config {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	kcfg := kafka.Config{Brokers: strings.Join(kc.ListenAddrs(), ","), Partitions: 1, Replication: 1}
	cl, err := kgo.NewClient(kcfg.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(context.Background(), cl, 1, 1, kafka.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	return kcfg
}

// scoreOnce runs a scorer until its first full pass and returns each
// product's health, trust and bands as written to scores_current.
func scoreOnce(t *testing.T, conn driver.Conn, db string, settle func()) map[string]string {
	t.Helper()
	kcfg := coreBroker(t)
	cfg := scorer.Defaults()
	cfg.Tick = 100 * time.Millisecond
	passed := make(chan struct{})
	var once sync.Once
	cfg.OnPass = func(p scorer.PassStats) {
		if p.Full {
			once.Do(func() { close(passed) })
		}
	}
	pol := model.DefaultPolicy()
	codecs, _ := events.NewCodecs()
	s, err := scorer.New(cfg, &pol, kcfg.Opts(), conn, db, codecs, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-passed:
	case err := <-done:
		t.Fatalf("scorer stopped: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("no full pass in 2 minutes")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	settle()
	rows, err := conn.Query(context.Background(), "SELECT product_urn, health, trust, health_band, trust_band FROM "+db+".scores_current FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p, hb, tb string
		var h, tr *float64
		if err := rows.Scan(&p, &h, &tr, &hb, &tb); err != nil {
			t.Fatal(err)
		}
		out[p] = fmt.Sprintf("health %s trust %s %s/%s", num(h), num(tr), hb, tb)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func num(f *float64) string {
	if f == nil {
		return "unknown"
	}
	return strconv.FormatFloat(*f, 'f', 1, 64)
}

// TestClusterReplicaKills: 1,000,000 events through two ingestor replicas
// into the cluster; one replica of each shard is killed (SIGKILL) during the
// load and started again. Afterwards every event is stored once, on both
// replicas of its shard, and the analyst's counts are exact.
func TestClusterReplicaKills(t *testing.T) {
	const events1M = 1_000_000
	c := cluster(t)
	sc := c.config(t)
	conn := c.migrate(t, sc)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, "mesh.platform.usage"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := strings.Join(kc.ListenAddrs(), ",")
	kcfg := kafka.Config{Brokers: brokers, Partitions: 12, Replication: 1}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer ingestors(ctx, t, 2, kcfg, sc, "")()
	defer cancel()

	// The load, as fast as the broker takes it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var load loader
	start := time.Now()
	go load.run(ctx, cl, "mesh.platform.usage", "platform", events1M, 0)
	acked, failed := &load.acked, &load.failed

	stored := func() uint64 { // through the Distributed table: any live replica of each shard
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+sc.Database+".usage_events").Scan(&n)
		return n
	}
	waitStored := func(n uint64, limit time.Duration) {
		deadline := time.Now().Add(limit)
		for stored() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d rows stored after %s, waiting for %d", stored(), limit, n)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	victims := []string{"s1r1", "s2r2"} // s1r1 is also the server the services are connected to
	waitStored(events1M*3/10, 10*time.Minute)
	killedAt := time.Now()
	for _, v := range victims {
		c.script(t, "kill", v)
	}
	report(t, "killed %v (SIGKILL) at %d rows stored, %.1fs into the load", victims, stored(), time.Since(start).Seconds())
	atKill := stored()
	time.Sleep(20 * time.Second)
	during := stored() - atKill
	for _, v := range victims {
		c.script(t, "restart", v)
	}
	report(t, "restarted them after %.1fs; %d rows stored while they were down (%.0f rows/s)", time.Since(killedAt).Seconds(), during, float64(during)/time.Since(killedAt).Seconds())

	// Every acknowledged event queryable, once. Counted by event id: a
	// replay after a kill stores rows twice until merges collapse them, so
	// the raw count can pass the acknowledged one with events still missing.
	deadline := time.Now().Add(10 * time.Minute)
	for acked.Load()+failed.Load() < events1M || distinctEvents(ctx, conn, sc.Database) < uint64(acked.Load()) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 minutes: acked %d, failed %d, distinct events stored %d", acked.Load(), failed.Load(), distinctEvents(ctx, conn, sc.Database))
		}
		time.Sleep(500 * time.Millisecond)
	}
	took := time.Since(start)
	if failed.Load() > 0 {
		t.Fatalf("%d records not acknowledged by the broker", failed.Load())
	}
	db := sc.Database
	distinct := count(t, conn, "SELECT uniqExact(event_id) FROM "+db+".usage_events")
	final := count(t, conn, "SELECT count() FROM "+db+".usage_events FINAL")
	raw := stored()
	report(t, "produced=%d stored=%d lost=%d duplicates_visible=%d (raw rows %d before merges), in %.1fs (%.0f events/s end to end)",
		events1M, distinct, events1M-int64(distinct), int64(final)-int64(distinct), raw, took.Seconds(), events1M/took.Seconds())
	if distinct != events1M || final != distinct {
		t.Fatalf("not exactly once through the Distributed table: distinct %d, FINAL %d, want %d", distinct, final, events1M)
	}

	// Both replicas of each shard hold the same events, each once.
	perShard := map[string]uint64{}
	for _, name := range c.names {
		n := c.node(t, name)
		if err := n.Exec(ctx, "SYSTEM SYNC REPLICA "+db+".usage_events_local"); err != nil {
			t.Fatalf("%s: sync replica: %v", name, err)
		}
		local := count(t, n, "SELECT uniqExact(event_id) FROM "+db+".usage_events_local")
		localFinal := count(t, n, "SELECT count() FROM "+db+".usage_events_local FINAL")
		if localFinal != local {
			t.Errorf("%s: %d events, %d rows through FINAL", name, local, localFinal)
		}
		shard := name[:2]
		if prev, ok := perShard[shard]; ok && prev != local {
			t.Errorf("shard %s: replicas hold %d and %d events", shard, prev, local)
		}
		perShard[shard] = local
		report(t, "%s holds %d events of its shard, each once", name, local)
	}
	var sum uint64
	for _, n := range perShard {
		sum += n
	}
	if sum != events1M {
		t.Errorf("the shards hold %d events together, want %d", sum, events1M)
	}
	// What an analyst counts, through the views.
	reads := count(t, conn, "SELECT toUInt64(sum(reads)) FROM "+db+".usage_daily")
	if reads != events1M {
		t.Errorf("usage_daily counts %d reads, want %d", reads, events1M)
	}
	report(t, "analyst counts exact: usage_events FINAL %d, usage_daily reads %d; shards %v", final, reads, perShard)
}

// kafka3 is the three-broker Apache Kafka that scripts/kafka-up started
// (make test-cluster names its directory in MESHPULSE_TEST_KAFKA3).
func kafka3(t *testing.T) (dir, brokers string) {
	t.Helper()
	dir = os.Getenv("MESHPULSE_TEST_KAFKA3")
	if dir == "" {
		testenv.Unavailable(t, "MESHPULSE_TEST_KAFKA3 is not set: start three brokers with scripts/kafka-up start DIR --brokers 3 and name DIR there (make test-cluster does both)")
	}
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		testenv.Unavailable(t, "no Kafka in %s: %v", dir, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "BROKERS="); ok {
			brokers = v
		}
	}
	if strings.Count(brokers, ",") != 2 {
		t.Fatalf("%s has brokers %q; the test needs three", dir, brokers)
	}
	return dir, brokers
}

// TestKafkaBrokerKill: events produced with acks=all to topics of
// replication 3 and min.insync.replicas 2 while two ingestor replicas store
// them; one broker of three is killed (SIGKILL) during the load and started
// again 30 s later. Nothing is lost, nothing is visible twice, and the
// throughput before, during and after is printed.
func TestKafkaBrokerKill(t *testing.T) {
	// A steady load this machine sustains, offered until the figures are
	// taken (the kill and the restart fall inside it), at most maxEvents.
	const maxEvents, rate = 3_000_000, 10_000
	dir, brokers := kafka3(t)
	sc, conn := testenv.ClickHouse(t)
	kcfg := kafka.Config{Brokers: brokers, Partitions: 12, Replication: 3}
	// A domain (and so topics) of its own: the brokers outlive the test.
	domain := "kill" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	topic := events.Topic(domain, events.FamilyUsage)
	group := "meshpulse-" + domain
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer ingestors(ctx, t, 2, kcfg, sc, group)()
	defer cancel()

	// The producer: acks=all and idempotent (franz-go's defaults), so a
	// retry after the broker's death does not write a record twice.
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, 12, 3, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A client of its own: cl is closed by then.
		if admin, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...)); err == nil {
			_, _ = kadm.NewClient(admin).DeleteTopics(context.Background(), topic)
			admin.Close()
		}
	})
	var load loader
	start := time.Now()
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		load.run(ctx, cl, topic, domain, maxEvents, rate)
	}()
	acked, failed := &load.acked, &load.failed
	stored := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+sc.Database+".usage_events").Scan(&n)
		return n
	}
	// The rates of stored and of acknowledged records over a span.
	span := func(d time.Duration) (float64, float64) {
		from, ackFrom, at := stored(), acked.Load(), time.Now()
		time.Sleep(d)
		secs := time.Since(at).Seconds()
		return float64(stored()-from) / secs, float64(acked.Load()-ackFrom) / secs
	}
	// Until a fifth is stored and the ingestors keep up (less than a
	// second behind), so that "before" is the steady state.
	for stored() < 10*rate || int64(stored()) < acked.Load()-rate {
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("only %d rows stored after 5 minutes", stored())
		}
		time.Sleep(250 * time.Millisecond)
	}
	before, ackBefore := span(5 * time.Second)
	kafkaUp := filepath.Join(testenv.ModuleRoot(t), "scripts", "kafka-up")
	if out, err := exec.Command(kafkaUp, "kill", dir, "2").CombinedOutput(); err != nil {
		t.Fatalf("kill broker 2: %v\n%s", err, out)
	}
	killed, killedAt, ackAtKill := time.Now(), stored(), acked.Load()
	// How long storing stops: until a second's worth more is stored.
	resumed := time.Duration(-1)
	for time.Since(killed) < 30*time.Second {
		if resumed < 0 && stored() >= killedAt+rate {
			resumed = time.Since(killed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	down := time.Since(killed).Seconds()
	during, ackDuring := float64(stored()-killedAt)/down, float64(acked.Load()-ackAtKill)/down
	if out, err := exec.Command(kafkaUp, "restart", dir, "2").CombinedOutput(); err != nil {
		t.Fatalf("restart broker 2: %v\n%s", err, out)
	}
	after, ackAfter := span(5 * time.Second)
	load.stop.Store(true)
	<-loaded
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	total := acked.Load() + failed.Load()
	report(t, "broker 2 of 3 killed at %d rows stored, restarted %.0f s later; offered %d/s: stored %.0f/s before, %.0f/s while it was down (%.2f of before; storing stopped for %.1f s after the kill), %.0f/s after; acknowledged %.0f, %.0f and %.0f/s",
		killedAt, down, rate, before, during, during/before, resumed.Seconds(), after, ackBefore, ackDuring, ackAfter)

	// By event id, as in TestClusterReplicaKills: replays make the raw
	// count pass the acknowledged one early.
	deadline := time.Now().Add(5 * time.Minute)
	for acked.Load()+failed.Load() < total || distinctEvents(ctx, conn, sc.Database) < uint64(acked.Load()) {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 minutes: acked %d, failed %d, distinct events stored %d", acked.Load(), failed.Load(), distinctEvents(ctx, conn, sc.Database))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if failed.Load() > 0 {
		t.Fatalf("%d records not acknowledged by the brokers", failed.Load())
	}
	distinct := count(t, conn, "SELECT uniqExact(event_id) FROM "+sc.Database+".usage_events")
	final := count(t, conn, "SELECT count() FROM "+sc.Database+".usage_events FINAL")
	report(t, "produced=%d stored=%d lost=%d duplicates_visible=%d (raw rows %d before merges)",
		total, distinct, total-int64(distinct), int64(final)-int64(distinct), stored())
	if int64(distinct) != total || final != distinct {
		var sample string
		_ = conn.QueryRow(ctx, "SELECT toString(groupArray(tuple(event_id, dataset_urn, event_time_ms, emitter))) FROM (SELECT * FROM "+sc.Database+
			".usage_events WHERE event_id IN (SELECT event_id FROM "+sc.Database+".usage_events GROUP BY event_id HAVING count() > 1) ORDER BY event_id LIMIT 6)").Scan(&sample)
		t.Fatalf("not exactly once: distinct %d, FINAL %d, want %d; rows of repeated event ids: %s", distinct, final, total, sample)
	}
}

// distinctEvents counts the usage events stored, each event id once
// (0 while the query fails, as during a kill).
func distinctEvents(ctx context.Context, conn driver.Conn, db string) uint64 {
	var n uint64
	_ = conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+db+".usage_events").Scan(&n)
	return n
}

// ingestors runs n ingestor replicas in one consumer group (group, or the
// default) until ctx ends; the function it returns waits for them.
func ingestors(ctx context.Context, t *testing.T, n int, kcfg kafka.Config, sc store.Config, group string) (wait func()) {
	var wg sync.WaitGroup
	for k := range n {
		ic := app.IngestorConfig{Kafka: kcfg, Store: sc, Ingest: ingest.Defaults(), Migrate: false}
		if group != "" {
			ic.Ingest.Group = group
		}
		log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel).With().Int("ingestor", k).Logger()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := app.RunIngestor(ctx, ic, log, app.NewRegistry(), nil); err != nil && ctx.Err() == nil {
				t.Errorf("ingestor %d: %v", k, err)
			}
		}()
	}
	return wg.Wait
}

// loader produces distinct usage events and counts what the brokers
// acknowledged. The producer is franz-go's default: acks=all, idempotent,
// so a retry after a broker's death does not write a record twice.
type loader struct {
	acked, failed atomic.Int64
	stop          atomic.Bool // produce no more
}

// run produces n events to topic as emitter, at about rate per second (0:
// as fast as the brokers take them), or fewer if stopped.
func (l *loader) run(ctx context.Context, cl *kgo.Client, topic, emitter string, n, rate int) {
	codecs, _ := events.NewCodecs()
	start := time.Now()
	for i := 0; i < n && !l.stop.Load(); i++ {
		ev := &events.UsageEvent{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Truncate(time.Millisecond), Emitter: emitter},
			DatasetURN: events.DatasetURN("warehouse", "t"+strconv.Itoa(i%500)), Consumer: events.Consumer{User: "u" + strconv.Itoa(i%5000)},
			AccessKind: "query", RowsRead: 1}
		value, _ := codecs.Encode(ev)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(ev.EventID), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				l.failed.Add(1)
				return
			}
			l.acked.Add(1)
		})
		if rate > 0 && i%1000 == 999 {
			if wait := time.Duration(i+1)*time.Second/time.Duration(rate) - time.Since(start); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
}
