package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

const (
	salesKey   = "sales-0123456789abcdef"
	financeKey = "finance-0123456789abcdef"
	// Job namespaces of the tests' producers, given to domains.
	olRules = "shop-*=sales,dbt-sales=sales,java-*=finance"
)

// olRig is Kafka, ClickHouse, an ingestor and the OpenLineage endpoint.
type olRig struct {
	t       *testing.T
	brokers string
	conn    driver.Conn
	db      string
	url     string // base URL of the endpoint, as a client is configured
	codecs  *events.Codecs
}

func newOLRig(t *testing.T) *olRig {
	t.Helper()
	seeds := testenv.Kafka(t)
	sc, conn := testenv.ClickHouse(t)
	kc := kafka.Config{Brokers: strings.Join(seeds, ","), Partitions: 2, Replication: 1}
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(context.Background(), cl, 2, 1, append(kafka.CoreTopics(), kafka.DomainTopics([]string{"sales", "finance"})...)...); err != nil {
		t.Fatal(err)
	}
	codecs, _ := events.NewCodecs()
	cfg := ingest.Defaults()
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.OpenLineageNamespaces = olRules
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ing, err := ingest.New(cfg, kc.Opts(), store.NewWriter(conn, sc.Database), codecs, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := openlineage.NewServer(openlineage.ServerConfig{Listen: "127.0.0.1:0", Keys: "sales:" + salesKey + ",finance:" + financeKey,
		MaxBodyBytes: 1 << 20, ProduceTimeout: 10 * time.Second, Namespaces: olRules}, kc.Opts(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	addr := make(chan string, 1)
	go func() { done <- ing.Run(ctx) }()
	go func() { done <- srv.Run(ctx, func(a string) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		srv.Close()
	})
	return &olRig{t: t, brokers: kc.Brokers, conn: conn, db: sc.Database, url: "http://" + <-addr, codecs: codecs}
}

func (r *olRig) count(query string, args ...any) uint64 {
	r.t.Helper()
	var n uint64
	if err := r.conn.QueryRow(context.Background(), strings.ReplaceAll(query, "{db}", r.db), args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// strings returns the first column of every row, as text.
func (r *olRig) strings(query string, args ...any) []string {
	r.t.Helper()
	rows, err := r.conn.Query(context.Background(), strings.ReplaceAll(query, "{db}", r.db), args...)
	if err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			r.t.Fatalf("%s: %v", query, err)
		}
		out = append(out, s)
	}
	return out
}

func (r *olRig) waitFor(what string, limit time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// eventually waits up to 30 s for a query's rows to equal want: one batch
// writes its tables one after another, so a test that waited for one table
// may look at the next a moment early.
func (r *olRig) eventually(what string, want []string, query string, args ...any) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := r.strings(query, args...)
		if reflect.DeepEqual(got, want) || (len(got) == 0 && len(want) == 0) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Errorf("%s:\n got %v\nwant %v", what, got, want)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// The openlineage-python client, unchanged, over its HTTP transport (gzip,
// API key) and its Kafka transport: every run state, the facets meshpulse
// maps, a custom facet, a DatasetEvent and a JobEvent, all queryable.
func TestOpenLineagePythonClient(t *testing.T) {
	tools := testenv.InteropTools(t)
	r := newOLRig(t)
	script := filepath.Join("testdata", "python", "openlineage_producer.py")
	for _, c := range []struct{ transport, where, secret, namespace string }{
		{"http", r.url, salesKey, "shop-http"},
		{"kafka", r.brokers, "mesh.sales.openlineage", "shop-kafka"},
	} {
		t.Run(c.transport, func(t *testing.T) {
			out := testenv.Run(t, tools.Python, script, c.transport, c.where, c.secret, c.namespace)
			if n := len(sentLine.FindAllString(out, -1)); n != 10 {
				t.Fatalf("the producer sent %d events, want 10:\n%s", n, out)
			}
			// Nine events name the job; the DatasetEvent names none.
			r.waitFor("the producer's events", 30*time.Second, func() bool {
				return r.count("SELECT count() FROM {db}.openlineage_events FINAL WHERE job_namespace = ?", c.namespace) == 9 &&
					r.count("SELECT count() FROM {db}.openlineage_events FINAL WHERE kind = 'DatasetEvent' AND position(raw, ?) > 0", c.namespace+"/orders") == 1
			})
			r.assertScenario(t, c.namespace)
		})
	}
}

// sentLine is a line the producer prints for each event it sent (the Kafka
// client's own log lines are on the same output).
var sentLine = regexp.MustCompile(`(?m)^(START|RUNNING|COMPLETE|FAIL|ABORT|OTHER|DatasetEvent|JobEvent)\b`)

// assertScenario checks what openlineage_producer.py sent for namespace.
func (r *olRig) assertScenario(t *testing.T, ns string) {
	job := "urn:mesh:job:sales:" + ns + "/load_orders"
	raw := "urn:mesh:dataset:postgres:db:5432/" + ns + ".public.raw_orders"
	orders := "urn:mesh:dataset:s3:lake/" + ns + "/orders"
	r.eventually("run states", []string{"ABORT", "COMPLETE", "FAIL", "OTHER", "RUNNING", "START", "START", "START"}, "SELECT state FROM {db}.lineage_runs FINAL WHERE job_urn = ? ORDER BY state", job)
	r.eventually("error message of the failed run", []string{"relation raw_orders is locked"}, "SELECT error_message FROM {db}.lineage_runs FINAL WHERE job_urn = ? AND state = 'FAIL'", job)
	r.eventually("rows written", []string{"1200"}, "SELECT toString(rows_written) FROM {db}.lineage_runs FINAL WHERE job_urn = ? AND state = 'COMPLETE'", job)
	r.eventually("lineage edges", []string{raw + " -> " + orders + " COMPLETE", orders + " -> urn:mesh:dataset:s3:lake/" + ns + "/orders_export STATIC"}, "SELECT concat(input_dataset, ' -> ', output_dataset, ' ', last_state) FROM {db}.lineage_edges FINAL WHERE input_dataset IN (?, ?) ORDER BY input_dataset", orders, raw)
	r.eventually("column lineage", []string{"order_id <- " + raw + "#id DIRECT/IDENTITY"}, "SELECT concat(output_field, ' <- ', input_dataset, '#', input_field, ' ', transformation) FROM {db}.column_lineage WHERE output_dataset = ?", orders)
	r.eventually("fields", []string{"customer STRUCT", "customer.email VARCHAR", "order_id BIGINT"}, "SELECT concat(field_name, ' ', field_type) FROM {db}.openlineage_dataset_fields WHERE dataset_urn = ? ORDER BY field_name", orders)
	r.eventually("documentation (the later DatasetEvent), owners, symlinks", []string{"orders, documented statically | team:orders | urn:mesh:dataset:hive:metastore:9083/lake.orders"}, "SELECT concat(description, ' | ', arrayStringConcat(owners, ','), ' | ', arrayStringConcat(aliases, ',')) FROM {db}.openlineage_datasets_current WHERE dataset_urn = ?", orders)
	r.eventually("quality results (from the COMPLETE event only)", []string{"not_null(order_id) validity PASS medium", "unique_order_id validity FAIL high"}, "SELECT concat(check_name, ' ', check_type, ' ', status, ' ', severity) FROM {db}.quality_results FINAL WHERE dataset_urn = ? AND emitter = 'sales' ORDER BY check_name", raw)
	r.eventually("output statistics", []string{"1200 rows 65536 bytes 2 files"}, "SELECT concat(toString(row_count), ' rows ', toString(bytes), ' bytes ', toString(file_count), ' files') FROM {db}.dataset_statistics FINAL WHERE dataset_urn = ? AND direction = 'output'", orders)
	r.eventually("parent job", []string{"nightly"}, "SELECT DISTINCT parent_job_name FROM {db}.openlineage_events FINAL WHERE job_namespace = ? AND parent_run_id != ''", ns)
	r.eventually("custom facet, queryable in the raw event", []string{"4.25"}, "SELECT visitParamExtractRaw(raw, 'dollars') FROM {db}.openlineage_events FINAL WHERE job_namespace = ? AND event_type = 'COMPLETE'", ns)
	r.eventually("kinds", []string{"JobEvent", "RunEvent"}, "SELECT kind FROM {db}.openlineage_events FINAL WHERE job_namespace = ? GROUP BY kind ORDER BY kind", ns)
}

// dbt-ol runs a dbt project on DuckDB and reports it over HTTP, unchanged:
// model lineage, fields and column lineage, test results as quality, and a
// product whose runs and checks come only from dbt scores the same as a
// twin fed the equivalent native events.
func TestOpenLineageDbt(t *testing.T) {
	tools := testenv.InteropTools(t)
	r := newOLRig(t)
	project := t.TempDir()
	copyDir(t, filepath.Join("testdata", "dbt"), project)
	profiles := strings.ReplaceAll(readFile(t, filepath.Join(project, "profiles.yml")), "{dir}", project)
	if err := os.WriteFile(filepath.Join(project, "profiles.yml"), []byte(profiles), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Dir(tools.Python)
	cmd := exec.Command(filepath.Join(bin, "dbt-ol"), "build", "--profiles-dir", project, "--project-dir", project)
	cmd.Dir = project
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "OPENLINEAGE_URL="+r.url, "OPENLINEAGE_API_KEY="+salesKey,
		"OPENLINEAGE_NAMESPACE=dbt-sales", "DBT_SEND_ANONYMOUS_USAGE_STATS=false", "OPENLINEAGE_CONFIG=", "OPENLINEAGE_DISABLED=false")
	out, err := cmd.CombinedOutput()
	// The project has one failing test on purpose: dbt exits 1.
	if !strings.Contains(string(out), "Emitted") {
		t.Fatalf("dbt-ol: %v\n%s", err, out)
	}
	db := "duckdb:" + filepath.Join(project, "shop.duckdb")
	orders := "urn:mesh:dataset:duckdb:" + filepath.Join(project, "shop.duckdb") + "/shop.main.orders"
	r.waitFor("dbt's test results", 60*time.Second, func() bool {
		return r.count("SELECT count() FROM {db}.quality_results FINAL WHERE dataset_urn = ?", orders) >= 3
	})
	t.Logf("dbt namespace %s", db)
	model := "urn:mesh:job:sales:dbt-sales/shop.main.shop.orders.build.run"
	r.eventually("model run states", []string{"COMPLETE", "START"}, "SELECT state FROM {db}.lineage_runs FINAL WHERE job_urn = ? ORDER BY state", model)
	r.eventually("test run states", []string{"FAIL", "START"}, "SELECT state FROM {db}.lineage_runs FINAL WHERE job_urn = ? ORDER BY state", "urn:mesh:job:sales:dbt-sales/shop.main.shop.orders.build.test")
	// dbt's schema facet holds the columns schema.yml documents.
	r.eventually("fields", []string{"customer_id: ", "order_id: the order's key"}, "SELECT concat(field_name, ': ', field_description) FROM {db}.openlineage_dataset_fields WHERE dataset_urn = ? ORDER BY field_name", orders)
	r.eventually("column lineage of amount_cents", []string{strings.Replace(orders, "shop.main.orders", "shop.main.raw_orders", 1) + "#amount"}, "SELECT concat(input_dataset, '#', input_field) FROM {db}.column_lineage WHERE output_dataset = ? AND output_field = 'amount_cents'", orders)
	r.eventually("test results, each once", []string{"not_null_orders_customer_id FAIL high", "not_null_orders_order_id PASS high", "unique_orders_order_id PASS high"}, "SELECT concat(check_name, ' ', status, ' ', severity) FROM {db}.quality_results FINAL WHERE dataset_urn = ? ORDER BY check_name", orders)

	// A product declares the dbt model's table; its twin's table gets the
	// same runs and checks as native events. Both must score the same.
	twin := events.DatasetURN("warehouse", "orders_twin")
	r.declare("orders-dbt", orders)
	r.declare("orders-native", twin)
	r.mirror(orders, twin)
	s := r.startScorer()
	_ = s
	// The scorer scores as the twin's events arrive: a product is first
	// unknown, then converges. Both must end known and equal.
	var got [2]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		for i, p := range []string{"orders-dbt", "orders-native"} {
			got[i] = strings.Join(r.strings("SELECT concat(ifNull(toString(health), 'null'), ' ', health_band, ' ', ifNull(toString(trust), 'null'), ' ', trust_band) "+
				"FROM {db}.scores_current FINAL WHERE product_urn = ?", events.ProductURN("sales", p)), "")
		}
		known := got[0] != "" && !strings.Contains(got[0], "unknown") && got[1] != "" && !strings.Contains(got[1], "unknown")
		if known && got[0] == got[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s, from dbt: %q; from native events: %q (want both known and equal)", got[0], got[1])
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("scores: from dbt %s, from native events %s", got[0], got[1])
}

// declare publishes a native product declaration with one output.
func (r *olRig) declare(name, output string) {
	r.t.Helper()
	r.produce("sales", &events.ProductMetadata{
		Envelope:   events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), Emitter: "sales"},
		ProductURN: events.ProductURN("sales", name), Domain: "sales", Name: name, Description: "orders", Owners: []string{"team:orders"},
		Tags: []string{"orders"}, Lifecycle: "active", DocumentationURL: "https://wiki/orders",
		SLO:     &events.SLO{FreshnessSeconds: ptr[int64](86400)},
		Outputs: []events.OutputDataset{{DatasetURN: output, SchemaRef: "orders.v1", Fields: []events.DatasetField{{Name: "order_id", Type: "BIGINT", Description: "key", Classification: "internal"}}}},
	})
}

// mirror publishes, as native events on twin, the runs and checks stored
// for dataset from OpenLineage.
func (r *olRig) mirror(dataset, twin string) {
	r.t.Helper()
	ctx := context.Background()
	rows, err := r.conn.Query(ctx, "SELECT run_id, state, event_time_ms FROM "+r.db+".dataset_runs FINAL WHERE dataset_urn = ?", dataset)
	if err != nil {
		r.t.Fatal(err)
	}
	var evs []events.Event
	for rows.Next() {
		var run, state string
		var ms int64
		if err := rows.Scan(&run, &state, &ms); err != nil {
			r.t.Fatal(err)
		}
		evs = append(evs, &events.LineageRun{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.UnixMilli(ms).UTC(), Emitter: "sales"},
			JobURN: events.JobURN("sales", "twin"), RunID: run, State: state, Producer: "mirror", Outputs: []string{twin}})
	}
	rows.Close()
	rows, err = r.conn.Query(ctx, "SELECT check_name, check_type, status, severity, event_time_ms FROM "+r.db+".quality_results FINAL WHERE dataset_urn = ?", dataset)
	if err != nil {
		r.t.Fatal(err)
	}
	for rows.Next() {
		var name, typ, status, severity string
		var ms int64
		if err := rows.Scan(&name, &typ, &status, &severity, &ms); err != nil {
			r.t.Fatal(err)
		}
		evs = append(evs, &events.QualityResult{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.UnixMilli(ms).UTC(), Emitter: "sales"},
			DatasetURN: twin, CheckName: name, CheckType: typ, Status: status, Severity: severity})
	}
	rows.Close()
	if len(evs) == 0 {
		r.t.Fatalf("nothing stored for %s to mirror", dataset)
	}
	r.produce("sales", evs...)
}

func (r *olRig) produce(emitter string, evs ...events.Event) {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	p, err := events.NewProducer(cl, r.codecs, emitter)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := p.ProduceSync(context.Background(), evs...); err != nil {
		r.t.Fatal(err)
	}
}

func (r *olRig) startScorer() *scorer.Scorer {
	r.t.Helper()
	cfg := scorer.Defaults()
	cfg.Tick = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Replica = "interop"
	pol := model.DefaultPolicy()
	kc := kafka.Config{Brokers: r.brokers, Partitions: 2, Replication: 1}
	log := zerolog.New(zerolog.NewTestWriter(r.t)).Level(zerolog.WarnLevel)
	s, err := scorer.New(cfg, &pol, kc.Opts(), r.conn, r.db, r.codecs, log, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r.t.Cleanup(func() { cancel(); <-done })
	return s
}

// openlineage-java's HTTP transport, unchanged.
func TestOpenLineageJavaClient(t *testing.T) {
	tools := testenv.InteropTools(t)
	r := newOLRig(t)
	cp := tools.CompileJava(t, filepath.Join("testdata", "java", "EmitOpenLineage.java"))
	out := testenv.Run(t, "java", "-cp", cp, "EmitOpenLineage", r.url, financeKey, "java-etl")
	t.Logf("java: %s", strings.TrimSpace(out))
	job := "urn:mesh:job:finance:java-etl/ledger"
	ledger := "urn:mesh:dataset:postgres:ledger-db:5432/finance.public.ledger"
	// One batch writes several tables, one after another: wait for the last.
	r.waitFor("the Java client's run", 30*time.Second, func() bool {
		return r.count("SELECT count() FROM {db}.lineage_runs FINAL WHERE job_urn = ?", job) == 2 &&
			r.count("SELECT count() FROM {db}.openlineage_datasets WHERE dataset_urn = ?", ledger) > 0 &&
			r.count("SELECT count() FROM {db}.lineage_runs WHERE has(column_output_datasets, ?)", ledger) > 0
	})
	r.eventually("states", []string{"COMPLETE", "START"}, "SELECT state FROM {db}.lineage_runs FINAL WHERE job_urn = ? ORDER BY state", job)
	r.eventually("fields", []string{"amount DECIMAL", "entry_id BIGINT"}, "SELECT concat(field_name, ' ', field_type) FROM {db}.openlineage_dataset_fields WHERE dataset_urn = ? ORDER BY field_name", ledger)
	r.eventually("column lineage", []string{"amount <- total"}, "SELECT concat(output_field, ' <- ', input_field) FROM {db}.column_lineage WHERE output_dataset = ?", ledger)
	// A domain's key cannot speak for another domain's namespace.
	out = runAllowFail(t, "java", "-cp", cp, "EmitOpenLineage", r.url, salesKey, "java-etl")
	if !strings.Contains(out, "403") {
		t.Errorf("the sales key posting a finance job: %s", out)
	}
}

// Bad OpenLineage on the Kafka topic goes to the dead-letter topic with a
// reason; the good record after it is stored.
func TestOpenLineageDeadLetters(t *testing.T) {
	r := newOLRig(t)
	now := time.Now().UTC().Format(time.RFC3339)
	good := `{"eventType": "COMPLETE", "eventTime": "` + now + `", "producer": "p", "schemaURL": "s", "run": {"runId": "r1"}, "job": {"namespace": "shop-dl", "name": "j"}}`
	bad := map[string]string{
		ingest.ReasonOpenLineageMalformed:  `{"eventType": `,
		ingest.ReasonOpenLineageInvalid:    `{"eventType": "DONE", "eventTime": "` + now + `", "producer": "p", "schemaURL": "s", "run": {"runId": "r2"}, "job": {"namespace": "shop-dl", "name": "j"}}`,
		ingest.ReasonOpenLineageUnmappable: `{"eventType": "START", "eventTime": "` + now + `", "producer": "p", "schemaURL": "s", "run": {"runId": "r3"}, "job": {"namespace": " ", "name": "j"}}`,
		ingest.ReasonOwnership:             `{"eventType": "START", "eventTime": "` + now + `", "producer": "p", "schemaURL": "s", "run": {"runId": "r4"}, "job": {"namespace": "java-x", "name": "j"}}`,
		events.ReasonEventTimeWindow:       `{"eventType": "START", "eventTime": "2001-01-01T00:00:00Z", "producer": "p", "schemaURL": "s", "run": {"runId": "r5"}, "job": {"namespace": "shop-dl", "name": "j"}}`,
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...))
	defer cl.Close()
	var recs []*kgo.Record
	var reasons []string
	for reason, v := range bad {
		recs = append(recs, &kgo.Record{Topic: "mesh.sales.openlineage", Value: []byte(v)})
		reasons = append(reasons, reason)
	}
	recs = append(recs, &kgo.Record{Topic: "mesh.sales.openlineage", Value: []byte(good)})
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the good record", 30*time.Second, func() bool {
		return r.count("SELECT count() FROM {db}.openlineage_events FINAL WHERE job_namespace = 'shop-dl'") == 1
	})
	dl, _ := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...), kgo.ConsumeTopics(events.TopicDeadLetter), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer dl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for len(got) < len(bad) && ctx.Err() == nil {
		dl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			for _, h := range rec.Headers {
				if h.Key == ingest.HeaderReason {
					got = append(got, string(h.Value))
				}
			}
		})
	}
	sort.Strings(got)
	sort.Strings(reasons)
	same(t, "dead-letter reasons", got, reasons)
}

func ptr[T any](v T) *T { return &v }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func runAllowFail(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return fmt.Sprintf("%v: %s", err, out)
}
