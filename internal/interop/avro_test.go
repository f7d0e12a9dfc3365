// Package interop_test proves meshpulse's wire formats with code nobody at
// meshpulse wrote: Apache Avro Java (SchemaNormalization,
// BinaryMessageEncoder), fastavro and Apache Avro for Python, Confluent's
// Python serializer, kcat and librdkafka, and the OpenLineage producers.
// Our own encoder proving our own decoder proves nothing.
package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// schemaFiles lists every embedded schema version and the evolution fixture.
func schemaFiles(t *testing.T) []string {
	root := testenv.ModuleRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "schemas", "*", "v*.avsc"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas: %v", err)
	}
	more, _ := filepath.Glob(filepath.Join(root, "pkg", "events", "testdata", "evolved", "*", "v*.avsc"))
	return append(files, more...)
}

// TestCanonicalFormsMatchJavaAndPython runs Apache Avro Java's
// SchemaNormalization and fastavro over every schema meshpulse embeds: their
// Parsing Canonical Form and CRC-64-AVRO fingerprint are meshpulse's.
func TestCanonicalFormsMatchJavaAndPython(t *testing.T) {
	tools := testenv.InteropTools(t)
	cp := tools.CompileJava(t, filepath.Join("testdata", "java", "Interop.java"))
	files := schemaFiles(t)
	ours := map[string][2]string{} // file -> fingerprint, canonical
	for _, f := range files {
		dir := filepath.Dir(filepath.Dir(f))
		codecs, err := events.NewCodecsFS(os.DirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		fam := filepath.Base(filepath.Dir(f))
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "v"), ".avsc"))
		for _, v := range codecs.Versions() {
			if string(v.Family) == fam && v.Version == n {
				ours[f] = [2]string{fmt.Sprintf("%016x", v.Fingerprint), v.Canonical}
			}
		}
	}
	for name, out := range map[string]string{
		"Apache Avro Java": testenv.Run(t, "java", append([]string{"-cp", cp, "Interop", "fingerprint"}, files...)...),
		"fastavro":         testenv.Run(t, tools.Python, append([]string{filepath.Join("testdata", "python", "avro_producer.py"), "canonical"}, files...)...),
	} {
		seen := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			parts := strings.SplitN(line, " ", 3)
			if len(parts) != 3 {
				continue
			}
			want, ok := ours[parts[0]]
			if !ok {
				continue
			}
			seen++
			if parts[1] != want[0] || parts[2] != want[1] {
				t.Errorf("%s, %s:\n fingerprint %s canonical %s\nmeshpulse:\n fingerprint %s canonical %s", name, parts[0], parts[1], parts[2], want[0], want[1])
			}
		}
		if seen != len(files) {
			t.Errorf("%s printed %d of %d schemas:\n%s", name, seen, len(files), out)
		}
		t.Logf("%s agrees on the canonical form and fingerprint of %d schemas", name, seen)
	}
}

// rig is a Kafka, a ClickHouse database and an ingestor that also reads the
// Confluent framing through a schema registry.
type rig struct {
	t        *testing.T
	brokers  string
	conn     driver.Conn
	db       string
	registry *testenv.Registry
}

func newRig(t *testing.T, domains ...string) *rig {
	t.Helper()
	seeds := testenv.Kafka(t)
	sc, conn := testenv.ClickHouse(t)
	reg := testenv.SchemaRegistry(t)
	kc := kafka.Config{Brokers: strings.Join(seeds, ","), Partitions: 2, Replication: 1}
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(context.Background(), cl, 2, 1, append(kafka.CoreTopics(), kafka.DomainTopics(domains)...)...); err != nil {
		t.Fatal(err)
	}
	codecs, err := events.NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	sr, err := events.NewSchemaRegistry([]string{reg.URL}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingest.Defaults()
	cfg.FlushInterval = 100 * time.Millisecond
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ing, err := ingest.New(cfg, kc.Opts(), store.NewWriter(conn, sc.Database), codecs.WithRegistry(sr), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &rig{t: t, brokers: kc.Brokers, conn: conn, db: sc.Database, registry: reg}
}

func (r *rig) count(query string) uint64 {
	r.t.Helper()
	var n uint64
	if err := r.conn.QueryRow(context.Background(), strings.ReplaceAll(query, "{db}", r.db)).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (r *rig) waitFor(what string, limit time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// familyEvent is one event in Avro's JSON encoding (unions wrapped,
// timestamps in milliseconds), as the reference encoders read it.
type familyEvent struct {
	family events.Family
	topic  string
	key    string
	datum  map[string]any
}

// eventsOf makes one event of each inbound family for a producer, named
// after it so the rows can be told apart.
func eventsOf(producer string) []familyEvent {
	now := time.Now().Add(-time.Minute).UnixMilli()
	env := func(emitter string) map[string]any {
		return map[string]any{"event_id": uuid.NewString(), "event_time": now, "emitter": emitter}
	}
	with := func(m map[string]any, kv map[string]any) map[string]any {
		for k, v := range kv {
			m[k] = v
		}
		return m
	}
	ds := events.DatasetURN("warehouse", "sales."+producer)
	product := events.ProductURN("sales", producer)
	return []familyEvent{
		{events.FamilyMetadata, "mesh.sales.metadata", product, with(env("sales"), map[string]any{
			"product_urn": product, "domain": "sales", "name": producer, "description": "declared by " + producer,
			"owners": []any{"team@sales"}, "tags": []any{"interop"}, "lifecycle": "active",
			"documentation_url": map[string]any{"string": "https://wiki/" + producer}, "access_notes": "SQL",
			"outputs": []any{map[string]any{"dataset_urn": ds, "description": "out", "schema_ref": nil,
				"fields": []any{map[string]any{"name": "email", "type": "string", "description": "who", "classification": "restricted", "pii": true}}}},
			"inputs": []any{},
			"slo": map[string]any{"mesh.events.ServiceLevelObjectives": map[string]any{
				"freshness_seconds": map[string]any{"long": 3600}, "min_quality_pass_rate": map[string]any{"double": 0.9}}},
		})},
		{events.FamilyLineage, "mesh.sales.lineage", events.JobURN("sales", producer), with(env("sales"), map[string]any{
			"job_urn": events.JobURN("sales", producer), "run_id": "run-" + producer, "state": "COMPLETE", "producer": producer,
			"inputs": []any{events.DatasetURN("postgres", "shop.orders")}, "outputs": []any{ds},
			"column_lineage": []any{map[string]any{"output_dataset": ds, "output_field": "email", "input_dataset": events.DatasetURN("postgres", "shop.orders"),
				"input_field": "mail", "transformation": "lower"}},
			"rows_written": map[string]any{"long": 42}, "bytes_written": nil, "error_message": nil,
		})},
		{events.FamilyUsage, "mesh.platform.usage", ds, with(env("platform"), map[string]any{
			"dataset_urn": ds, "consumer": map[string]any{"user": producer + "-reader", "team": "t", "domain": "finance", "tool": "jupyter"},
			"access_kind": "export", "rows_read": 7, "duration_ms": 3,
		})},
		{events.FamilyQuality, "mesh.sales.quality", ds, with(env("sales"), map[string]any{
			"dataset_urn": ds, "check_name": producer + "_check", "check_type": "validity", "status": "FAIL", "severity": "critical",
			"observed_value": map[string]any{"double": 3.5}, "threshold": nil, "message": "from " + producer,
		})},
	}
}

// TestReferenceProducers: every inbound family, encoded by Apache Avro Java
// (single-object and Confluent framing, produced with kcat), fastavro
// (single-object) and Confluent's Python serializer (through a schema
// registry), each produced by a client nobody here wrote, is stored.
func TestReferenceProducers(t *testing.T) {
	tools := testenv.InteropTools(t)
	cp := tools.CompileJava(t, filepath.Join("testdata", "java", "Interop.java"))
	r := newRig(t, "sales", "finance")
	root := testenv.ModuleRoot(t)
	py := filepath.Join("testdata", "python", "avro_producer.py")
	kcat := func(ev familyEvent, dir string) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		testenv.Run(t, "kcat", append([]string{"-P", "-b", r.brokers, "-t", ev.topic, "-k", ev.key}, files...)...)
	}
	producers := []struct {
		name    string
		produce func(ev familyEvent, schema, datums string)
	}{
		{"java_single", func(ev familyEvent, schema, datums string) {
			dir := t.TempDir()
			testenv.Run(t, "java", "-cp", cp, "Interop", "single", schema, datums, dir)
			kcat(ev, dir)
		}},
		{"java_confluent", func(ev familyEvent, schema, datums string) {
			dir := t.TempDir()
			testenv.Run(t, "java", "-cp", cp, "Interop", "confluent", schema, datums, r.registry.URL, ev.topic+"-value", dir)
			kcat(ev, dir)
		}},
		{"fastavro_single", func(ev familyEvent, schema, datums string) {
			testenv.Run(t, tools.Python, py, "single", r.brokers, ev.topic, ev.key, schema, datums)
		}},
		{"confluent_python", func(ev familyEvent, schema, datums string) {
			testenv.Run(t, tools.Python, py, "confluent", r.brokers, ev.topic, ev.key, schema, datums, r.registry.URL)
		}},
	}
	for _, p := range producers {
		for _, ev := range eventsOf(p.name) {
			datums := filepath.Join(t.TempDir(), "datums.json")
			b, _ := json.Marshal(ev.datum)
			if err := os.WriteFile(datums, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			p.produce(ev, filepath.Join(root, "schemas", string(ev.family), "v1.avsc"), datums)
		}
	}
	for _, p := range producers {
		ds := events.DatasetURN("warehouse", "sales."+p.name)
		r.waitFor(p.name+"'s four events", 60*time.Second, func() bool {
			return r.count("SELECT count() FROM {db}.products FINAL WHERE name = '"+p.name+"'") == 1 &&
				r.count("SELECT count() FROM {db}.lineage_runs FINAL WHERE producer = '"+p.name+"' AND rows_written = 42 AND has(column_input_fields, 'mail')") == 1 &&
				r.count("SELECT count() FROM {db}.usage_events FINAL WHERE dataset_urn = '"+ds+"' AND consumer_user = '"+p.name+"-reader' AND rows_read = 7") == 1 &&
				r.count("SELECT count() FROM {db}.quality_results FINAL WHERE dataset_urn = '"+ds+"' AND status = 'FAIL' AND observed_value = 3.5") == 1
		})
		if n := r.count("SELECT count() FROM {db}.dataset_fields WHERE dataset_urn = '" + ds + "' AND field_pii = 1"); n != 1 {
			t.Errorf("%s: PII field rows = %d, want 1", p.name, n)
		}
		t.Logf("%s: metadata, lineage, usage and quality stored", p.name)
	}
	r.noDeadLetters()
}

// noDeadLetters fails the test if anything went to mesh.deadletter.
func (r *rig) noDeadLetters() {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), events.TopicDeadLetter)
	if err != nil {
		r.t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			r.t.Errorf("%d dead letters on partition %d", o.Offset, o.Partition)
		}
	})
}
