package ingest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// rig is one test's Kafka, ClickHouse database and helpers.
type rig struct {
	t       *testing.T
	brokers string
	db      string
	conn    driver.Conn
	codecs  *events.Codecs
	client  *kgo.Client // producer and dead-letter reader
}

func newRig(t *testing.T, domains ...string) *rig {
	t.Helper()
	seeds := testenv.Kafka(t)
	cfg, conn := testenv.ClickHouse(t)
	codecs, err := events.NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(seeds, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	topics := append(kafka.CoreTopics(), kafka.DomainTopics(domains)...)
	if err := kafka.EnsureTopics(context.Background(), cl, 3, 1, topics...); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, brokers: brokers, db: cfg.Database, conn: conn, codecs: codecs, client: cl}
}

// startIngestor runs an ingestor until the test ends or stop is called.
func (r *rig) startIngestor(group string) (ing *ingest.Ingestor, stop func()) {
	r.t.Helper()
	return r.start(replica{group: group})
}

// replica says how to run one ingestor of a test.
type replica struct {
	group  string
	tune   func(*ingest.Config)
	writer ingest.Writer  // default: the rig's ClickHouse database
	codecs *events.Codecs // default: the rig's
}

func (r *rig) start(rp replica) (ing *ingest.Ingestor, stop func()) {
	r.t.Helper()
	cfg := ingest.Defaults()
	cfg.Group = rp.group
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.OwnersRefresh = time.Second
	if rp.tune != nil {
		rp.tune(&cfg)
	}
	if rp.writer == nil {
		rp.writer = store.NewWriter(r.conn, r.db)
	}
	if rp.codecs == nil {
		rp.codecs = r.codecs
	}
	kc := kafka.Config{Brokers: r.brokers, Partitions: 3, Replication: 1}
	log := zerolog.New(zerolog.NewTestWriter(r.t)).Level(zerolog.WarnLevel).With().Str("replica", rp.group).Logger()
	ing, err := ingest.New(cfg, kc.Opts(), rp.writer, rp.codecs, log, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("ingestor: %v", err)
		}
	}
	r.t.Cleanup(stop)
	return ing, stop
}

func (r *rig) produce(emitter string, evs ...events.Event) {
	r.t.Helper()
	p, err := events.NewProducer(r.client, r.codecs, emitter)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := p.ProduceSync(context.Background(), evs...); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) produceRaw(topic string, value []byte) {
	r.t.Helper()
	if err := r.client.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

// count runs a query returning one number.
func (r *rig) count(query string) uint64 {
	r.t.Helper()
	var n uint64
	if err := r.conn.QueryRow(context.Background(), strings.ReplaceAll(query, "{db}", r.db)).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitFor polls cond until it holds or 30 s pass.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	r.waitForWithin(30*time.Second, what, cond)
}

func (r *rig) waitForWithin(limit time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deadLetters reads n records from the dead-letter topic.
func (r *rig) deadLetters(n int) []*kgo.Record {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...), kgo.ConsumeTopics(events.TopicDeadLetter),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("read %d of %d dead letters", len(out), n)
		}
		out = append(out, f.Records()...)
	}
	return out
}

func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func newID() string { return uuid.NewString() }

func product(domain, name string, outputs []string, inputs ...string) *events.ProductMetadata {
	p := &events.ProductMetadata{
		Envelope: events.Envelope{EventID: newID()}, ProductURN: events.ProductURN(domain, name), Domain: domain, Name: name,
		Description: name + " of " + domain, Owners: []string{"owner@" + domain}, Lifecycle: "active", Inputs: inputs,
	}
	for _, o := range outputs {
		p.Outputs = append(p.Outputs, events.OutputDataset{DatasetURN: o, Fields: []events.DatasetField{
			{Name: "id", Type: "string", Classification: "internal"}, {Name: "email", Type: "string", Classification: "restricted", PII: true}}})
	}
	return p
}

func usage(ds, user, consumerDomain string) *events.UsageEvent {
	return &events.UsageEvent{Envelope: events.Envelope{EventID: newID()}, DatasetURN: ds,
		Consumer: events.Consumer{User: user, Domain: consumerDomain, Tool: "sql"}, AccessKind: "query", RowsRead: 10, DurationMs: 5}
}

func quality(ds, check, status string) *events.QualityResult {
	return &events.QualityResult{Envelope: events.Envelope{EventID: newID()}, DatasetURN: ds, CheckName: check,
		CheckType: "validity", Status: status, Severity: "high"}
}

const (
	orders = "urn:mesh:dataset:warehouse:sales.orders"
	ledger = "urn:mesh:dataset:warehouse:finance.ledger"
)

func TestIngestEndToEnd(t *testing.T) {
	r := newRig(t, "sales", "finance", "marketing")
	r.startIngestor("g1")

	r.produce("sales", product("sales", "orders", []string{orders}))
	r.produce("finance", product("finance", "ledger", []string{ledger}, orders))
	r.waitFor("products", func() bool { return r.count("SELECT count() FROM {db}.products_current") == 2 })

	r.produce("finance", &events.LineageRun{Envelope: events.Envelope{EventID: newID()}, JobURN: "urn:mesh:job:finance:build-ledger",
		RunID: "run-1", State: "COMPLETE", Inputs: []string{orders}, Outputs: []string{ledger}, RowsWritten: ptr[int64](42)})
	r.produce("marketing", usage(orders, "mia", "marketing"), usage(orders, "max", "marketing"))
	r.produce("platform", usage(ledger, "bob", ""))
	r.produce("sales", quality(orders, "not_null", "PASS"), quality(orders, "unique_id", "FAIL"))

	r.waitFor("all rows", func() bool {
		return r.count("SELECT sum(reads) FROM {db}.usage_daily") == 3 &&
			r.count("SELECT sum(checks) FROM {db}.quality_daily") == 2 &&
			r.count("SELECT count() FROM {db}.lineage_edges_current") == 1
	})
	if n := r.count("SELECT count() FROM {db}.dataset_fields WHERE field_pii = 1"); n != 2 {
		t.Errorf("pii fields = %d, want 2", n)
	}
	if n := r.count("SELECT sum(failed) FROM {db}.quality_daily WHERE owner_domain = 'sales'"); n != 1 {
		t.Errorf("failed checks owned by sales = %d, want 1", n)
	}
	if n := r.count("SELECT count() FROM {db}.usage_events WHERE dataset_urn = '" + orders + "' AND owner_domain = 'sales'"); n != 2 {
		t.Errorf("usage rows attributed to sales = %d, want 2", n)
	}
	if n := r.count("SELECT count() FROM {db}.lineage_runs_latest WHERE state = 'COMPLETE'"); n != 1 {
		t.Errorf("complete runs = %d, want 1", n)
	}
}

// TestPoisonGoesToDeadLetter interleaves poison with good records: each
// poison record lands on mesh.deadletter with its reason and origin, and the
// good records around it are stored.
func TestPoisonGoesToDeadLetter(t *testing.T) {
	r := newRig(t, "sales", "finance")
	r.startIngestor("g-poison")
	r.produce("sales", product("sales", "orders", []string{orders}))
	r.waitFor("product", func() bool { return r.count("SELECT count() FROM {db}.products_current") == 1 })

	good, err := r.codecs.Encode(func() events.Event {
		e := usage(orders, "a", "")
		e.Emitter = "platform"
		e.EventTime = time.Now()
		return e
	}())
	if err != nil {
		t.Fatal(err)
	}
	unknownFP := append([]byte{}, good...)
	unknownFP[3] ^= 0xFF
	invalid := usage(orders, "", "") // consumer.user missing
	invalid.Emitter, invalid.EventTime = "platform", time.Now()
	invalidBytes, _ := r.codecs.Encode(invalid)
	wrongDomain := quality(orders, "freshness", "PASS")
	wrongDomain.Emitter, wrongDomain.EventTime = "finance", time.Now()
	wrongDomainBytes, _ := r.codecs.Encode(wrongDomain)
	mismatch := usage(orders, "b", "")
	mismatch.Emitter, mismatch.EventTime = "sales", time.Now()
	mismatchBytes, _ := r.codecs.Encode(mismatch)

	poison := []struct {
		topic  string
		value  []byte
		reason string
	}{
		{"mesh.platform.usage", []byte("definitely not avro"), events.ReasonBadFraming},
		{"mesh.platform.usage", unknownFP, events.ReasonUnknownFingerprint},
		{"mesh.platform.usage", good[:len(good)-3], events.ReasonMalformedBody},
		{"mesh.platform.usage", invalidBytes, events.ReasonInvalidEvent},
		{"mesh.finance.quality", wrongDomainBytes, ingest.ReasonOwnership},
		{"mesh.platform.usage", mismatchBytes, ingest.ReasonEmitterMismatch},
		{"mesh.platform.quality", good, ingest.ReasonWrongFamily},
	}
	for k, p := range poison {
		r.produce("platform", usage(orders, fmt.Sprintf("before-%d", k), ""))
		r.produceRaw(p.topic, p.value)
		r.produce("platform", usage(orders, fmt.Sprintf("after-%d", k), ""))
	}
	r.waitFor("good records", func() bool { return r.count("SELECT sum(reads) FROM {db}.usage_daily") == uint64(2*len(poison)) })

	got := map[string]string{} // reason -> topic
	for _, rec := range r.deadLetters(len(poison)) {
		got[header(rec, ingest.HeaderReason)] = header(rec, ingest.HeaderTopic)
		if header(rec, ingest.HeaderOffset) == "" || header(rec, ingest.HeaderPartition) == "" || header(rec, ingest.HeaderError) == "" {
			t.Errorf("dead letter without origin: %v", rec.Headers)
		}
	}
	for _, p := range poison {
		if got[p.reason] != p.topic {
			t.Errorf("reason %s: dead letter from %q, want from %q (got %v)", p.reason, got[p.reason], p.topic, got)
		}
	}
	var raw []string
	for k := range got {
		raw = append(raw, k)
	}
	sort.Strings(raw)
	t.Logf("dead-letter reasons: %v", raw)
}

// TestReplayStoresOnce plays a crash after insert and before commit: a second
// consumer group reads the same records again into the same tables, and an
// analyst's counts do not change.
func TestReplayStoresOnce(t *testing.T) {
	r := newRig(t, "sales")
	r.produce("sales", product("sales", "orders", []string{orders}))
	var evs []events.Event
	for k := range 500 {
		evs = append(evs, usage(orders, fmt.Sprintf("u%d", k%17), ""))
	}
	r.produce("platform", evs...)
	r.produce("sales", quality(orders, "a", "PASS"), quality(orders, "b", "FAIL"))

	_, stop := r.startIngestor("first")
	r.waitFor("first pass", func() bool { return r.count("SELECT sum(reads) FROM {db}.usage_daily") == 500 })
	stop()
	ing, _ := r.startIngestor("replay")
	r.waitFor("replay", func() bool { s, _ := ing.Totals(); return s == 503 })
	if n := r.count("SELECT count() FROM {db}.usage_events"); n < 500 {
		t.Fatalf("raw rows = %d", n)
	}
	for q, want := range map[string]uint64{
		"SELECT sum(reads) FROM {db}.usage_daily":                     500,
		"SELECT toUInt64(sum(rows_read)) FROM {db}.usage_daily":       5000,
		"SELECT max(distinct_users) FROM {db}.usage_daily":            17,
		"SELECT sum(checks) FROM {db}.quality_daily":                  2,
		"SELECT count() FROM {db}.products_current":                   1,
		"SELECT count() FROM {db}.dataset_fields":                     2,
		"SELECT count() FROM (SELECT * FROM {db}.usage_events FINAL)": 500,
	} {
		if got := r.count(q); got != want {
			t.Errorf("after replay %s = %d, want %d", q, got, want)
		}
	}
}

// TestKcatSingleObject has kcat, a client no one here wrote, produce the
// single-object Avro bytes; the ingestor stores them.
func TestKcatSingleObject(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		testenv.Unavailable(t, "kcat not installed (apt-get install -y kcat)")
	}
	r := newRig(t, "sales")
	r.startIngestor("g-kcat")
	dir := t.TempDir()
	var files []string
	for k := range 5 {
		ev := usage(orders, fmt.Sprintf("kcat-%d", k), "")
		ev.Emitter, ev.EventTime = "platform", time.Now().UTC().Truncate(time.Millisecond)
		b, err := r.codecs.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("event-%d.avro", k))
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// Each file argument is produced as one message, byte for byte.
	args := append([]string{"-P", "-b", r.brokers, "-t", "mesh.platform.usage", "-k", orders}, files...)
	if out, err := exec.Command(kcat, args...).CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	r.waitFor("kcat records", func() bool {
		return r.count("SELECT count() FROM {db}.usage_events FINAL WHERE consumer_user LIKE 'kcat-%'") == 5
	})
}

func ptr[T any](v T) *T { return &v }
