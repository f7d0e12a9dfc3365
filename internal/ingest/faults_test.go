package ingest_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// usageRecord encodes a usage event for a topic, as a platform collector would.
func (r *rig) usageRecord(user string) *kgo.Record {
	r.t.Helper()
	ev := usage(orders, user, "")
	ev.Emitter, ev.EventTime = "platform", time.Now().UTC().Truncate(time.Millisecond)
	b, err := r.codecs.Encode(ev)
	if err != nil {
		r.t.Fatal(err)
	}
	// Keyed by consumer, so a load spreads over every partition.
	return &kgo.Record{Topic: "mesh.platform.usage", Key: []byte(user), Value: b}
}

// TestOversizePoison puts a record of about 1 MB that fails validation at
// the start, in the middle and at the end of one batch, on a dead-letter
// topic that takes at most 150 kB per record: each is dead-lettered, cut
// down with its size and SHA-256, and every good record around it is stored.
func TestOversizePoison(t *testing.T) {
	r := newRig(t)
	adm := kadm.NewClient(r.client)
	limit := "150000"
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, events.TopicDeadLetter); err != nil {
		t.Fatal(err)
	}
	big, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...), kgo.ProducerBatchMaxBytes(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	poison := func(k int) *kgo.Record {
		rec := r.usageRecord(strings.Repeat(strconv.Itoa(k), 1_000_000)) // consumer.user far beyond the text limit
		return rec
	}
	var recs []*kgo.Record
	var poisons []*kgo.Record
	for k, at := range []int{0, 50, 100} {
		for len(recs) < at {
			recs = append(recs, r.usageRecord(fmt.Sprintf("good-%d", len(recs))))
		}
		p := poison(k)
		poisons = append(poisons, p)
		recs = append(recs, p)
	}
	if err := big.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	r.start(replica{group: "g-oversize", tune: func(c *ingest.Config) { c.BatchRows = 10_000; c.FlushInterval = time.Second }})
	r.waitFor("good records", func() bool {
		return r.count("SELECT count() FROM {db}.usage_events FINAL WHERE consumer_user LIKE 'good-%'") == 98
	})
	dls := r.deadLetters(3)
	want := map[string]bool{}
	for _, p := range poisons {
		sum := sha256.Sum256(p.Value)
		want[hex.EncodeToString(sum[:])] = true
	}
	for _, dl := range dls {
		if got := header(dl, ingest.HeaderReason); got != events.ReasonTextTooLong {
			t.Errorf("reason = %q, want %s", got, events.ReasonTextTooLong)
		}
		if header(dl, ingest.HeaderTruncated) == "" || !want[header(dl, ingest.HeaderSHA256)] {
			t.Errorf("dead letter not cut or hash unknown: truncated=%q sha=%q", header(dl, ingest.HeaderTruncated), header(dl, ingest.HeaderSHA256))
		}
		if n, _ := strconv.Atoi(header(dl, ingest.HeaderOriginalSize)); n < 1_000_000 || len(dl.Value) >= 150_000 {
			t.Errorf("original size %d, kept %d bytes", n, len(dl.Value))
		}
	}
	t.Logf("3 oversize records dead-lettered, cut to %d bytes each; the 98 good records around them stored", len(dls[0].Value))
}

// rejectingWriter plays a ClickHouse that refuses some rows for their
// data: any insert holding a lineage run.
type rejectingWriter struct {
	ingest.Writer
	mu      sync.Mutex
	refused int
}

func (w *rejectingWriter) Insert(ctx context.Context, parts []*store.Batch) error {
	for _, p := range parts {
		if p.TableLen("lineage_runs") > 0 {
			w.mu.Lock()
			w.refused++
			w.mu.Unlock()
			return &clickhouse.Exception{Code: 53, Name: "DB::Exception", Message: "test: Type mismatch in the run's columns"}
		}
	}
	return w.Writer.Insert(ctx, parts)
}

// TestRejectedRecordIsolated: ClickHouse rejects one record of a batch for
// its data; the batch is split until that record is alone, it is
// dead-lettered, and the rest of the batch is stored.
func TestRejectedRecordIsolated(t *testing.T) {
	r := newRig(t, "sales")
	var evs []events.Event
	for k := range 40 {
		evs = append(evs, usage(orders, fmt.Sprintf("u%d", k), ""))
	}
	r.produce("platform", evs[:20]...)
	r.produce("sales", &events.LineageRun{Envelope: events.Envelope{EventID: newID()}, JobURN: "urn:mesh:job:sales:j", RunID: "r", State: "COMPLETE"})
	r.produce("platform", evs[20:]...)
	w := &rejectingWriter{Writer: store.NewWriter(r.conn, r.db)}
	r.start(replica{group: "g-reject", writer: w, tune: func(c *ingest.Config) { c.FlushInterval = time.Second }})
	r.waitFor("usage stored", func() bool { return r.count("SELECT count() FROM {db}.usage_events FINAL") == 40 })
	dl := r.deadLetters(1)[0]
	if got := header(dl, ingest.HeaderReason); got != ingest.ReasonRejected || header(dl, ingest.HeaderTopic) != "mesh.sales.lineage" {
		t.Fatalf("dead letter %q from %q, want %s from mesh.sales.lineage (%s)", got, header(dl, ingest.HeaderTopic), ingest.ReasonRejected, header(dl, ingest.HeaderError))
	}
	if n := r.count("SELECT count() FROM {db}.lineage_runs"); n != 0 {
		t.Fatalf("lineage rows stored: %d", n)
	}
	// The batch keeps only where a record is; its dead letter reads it again
	// from Kafka and carries the record as produced.
	if len(dl.Value) < 10 || dl.Value[0] != 0xC3 || dl.Value[1] != 0x01 || header(dl, ingest.HeaderOffset) != "0" {
		t.Fatalf("dead letter of the rejected record: value % x…, offset %q; want the single-object record at offset 0", dl.Value[:min(len(dl.Value), 10)], header(dl, ingest.HeaderOffset))
	}
	t.Logf("ClickHouse refused %d inserts while the batch was split", w.refused)
}

// TestClickHouseOutageDuringRebalance stops the real ClickHouse server while
// two replicas consume, has a third replica join and leave during the
// outage, then restarts the server: every event is stored once, both
// replicas make progress again, and /healthz said so while they could not.
func TestClickHouseOutageDuringRebalance(t *testing.T) {
	srv := testenv.PrivateClickHouse(t)
	r := newRig(t)
	ctx := context.Background()
	sc := store.Config{Addr: srv.Addr(), Database: "outage", User: "default"}
	conn, err := store.Open(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := store.Migrate(ctx, conn, sc.Database); err != nil {
		t.Fatal(err)
	}
	r.conn, r.db = conn, sc.Database
	tune := func(c *ingest.Config) {
		c.StallTimeout = 2 * time.Second
		c.RevokeGrace = time.Second
		c.SessionTimeout = 6 * time.Second
		c.BatchRows = 500
	}
	produce := func(n int) {
		var recs []*kgo.Record
		for range n {
			recs = append(recs, r.usageRecord("u-"+uuid.NewString()[:8]))
		}
		if err := r.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := r.start(replica{group: "g-outage", tune: tune})
	b, _ := r.start(replica{group: "g-outage", tune: tune})
	produce(3000)
	r.waitFor("first load stored", func() bool { return r.count("SELECT count() FROM {db}.usage_events FINAL") == 3000 })

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Log("clickhouse stopped")
	produce(3000)
	r.waitForWithin(30*time.Second, "a replica to report no progress", func() bool { return a.Healthy() != nil || b.Healthy() != nil })
	t.Logf("while stopped, /healthz says: %v / %v", a.Healthy(), b.Healthy())

	c, stopC := r.start(replica{group: "g-outage", tune: tune})
	r.waitForWithin(30*time.Second, "the third replica to get partitions", func() bool { return len(c.Assigned()) > 0 })
	stopC()
	t.Log("third replica joined and left during the outage")
	time.Sleep(3 * time.Second)

	restartCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	srv2, err := srv.Restart(restartCtx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Stop() })
	recovered := time.Now()
	r.waitForWithin(60*time.Second, "every event stored after the restart", func() bool {
		return r.count("SELECT count() FROM (SELECT DISTINCT event_id FROM {db}.usage_events)") >= 6000
	})
	// Both replicas progress: each stores part of a new load.
	sa, _ := a.Totals()
	sb, _ := b.Totals()
	produce(600)
	r.waitForWithin(30*time.Second, "both replicas storing again", func() bool {
		na, _ := a.Totals()
		nb, _ := b.Totals()
		return na > sa && nb > sb && a.Healthy() == nil && b.Healthy() == nil
	})
	t.Logf("both replicas progressing %.1fs after clickhouse came back", time.Since(recovered).Seconds())
	r.waitFor("the last load stored", func() bool {
		return r.count("SELECT count() FROM (SELECT DISTINCT event_id FROM {db}.usage_events)") == 6600
	})
	if final, distinct := r.count("SELECT count() FROM {db}.usage_events FINAL"), r.count("SELECT count() FROM (SELECT DISTINCT event_id FROM {db}.usage_events)"); final != 6600 || distinct != 6600 {
		t.Fatalf("analyst count %d, distinct %d; want 6600", final, distinct)
	}
}

// TestRegistryOutageAtShutdown: Confluent-framed records arrive while the
// schema registry is down and the ingestor is stopped: nothing is
// dead-lettered or committed; once the registry is back they are stored.
func TestRegistryOutageAtShutdown(t *testing.T) {
	r := newRig(t)
	reg := testenv.SchemaRegistry(t)
	id := reg.Register(r.codecs.Current(events.FamilyUsage).Schema())
	var recs []*kgo.Record
	for k := range 10 {
		rec := r.usageRecord(fmt.Sprintf("framed-%d", k))
		rec.Value = append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), rec.Value[10:]...)
		recs = append(recs, rec)
	}
	if err := r.client.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	withRegistry := func() *events.Codecs {
		c, err := events.NewCodecs()
		if err != nil {
			t.Fatal(err)
		}
		sr, err := events.NewSchemaRegistry([]string{reg.URL}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return c.WithRegistry(sr)
	}
	reg.SetDown(true)
	_, stop := r.start(replica{group: "g-registry", codecs: withRegistry(), tune: func(c *ingest.Config) { c.ShutdownGrace = 2 * time.Second }})
	r.waitFor("a registry lookup", func() bool { return reg.Lookups() > 0 })
	started := time.Now()
	stop()
	t.Logf("stopped %.1fs after SIGTERM while the registry was down", time.Since(started).Seconds())

	adm := kadm.NewClient(r.client)
	ends, err := adm.ListEndOffsets(context.Background(), events.TopicDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("dead letters written during a registry outage: %d on partition %d", o.Offset, o.Partition)
		}
	})
	offs, err := adm.FetchOffsets(context.Background(), "g-registry")
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.At > 0 {
			t.Errorf("committed %s/%d at %d during a registry outage", o.Topic, o.Partition, o.At)
		}
	})

	reg.SetDown(false)
	r.start(replica{group: "g-registry", codecs: withRegistry()})
	r.waitFor("framed records stored", func() bool {
		return r.count("SELECT count() FROM {db}.usage_events FINAL WHERE consumer_user LIKE 'framed-%'") == 10
	})
}

// TestConflictingClaimsTwoReplicas: two replicas accept, at the same time,
// declarations of the same dataset by two domains (neither has seen the
// other's). After reloading ownership both resolve it to the earliest
// declaration, and refuse the other domain's quality results alike.
func TestConflictingClaimsTwoReplicas(t *testing.T) {
	r := newRig(t, "sales", "finance")
	tune := func(c *ingest.Config) { c.OwnersRefresh = time.Hour }
	a, _ := r.start(replica{group: "g-claims", tune: tune})
	b, _ := r.start(replica{group: "g-claims", tune: tune})
	holder := func(topic string, p int32) *ingest.Ingestor {
		for _, ing := range []*ingest.Ingestor{a, b} {
			for _, q := range ing.Assigned()[topic] {
				if q == p {
					return ing
				}
			}
		}
		return nil
	}
	var pSales, pFinance int32 = -1, -1
	r.waitFor("two replicas holding the metadata topics", func() bool {
		for p := int32(0); p < 3; p++ {
			for q := int32(0); q < 3; q++ {
				hs, hf := holder("mesh.sales.metadata", p), holder("mesh.finance.metadata", q)
				if hs != nil && hf != nil && hs != hf {
					pSales, pFinance = p, q
					return true
				}
			}
		}
		return false
	})
	const ds = "urn:mesh:dataset:warehouse:shared.orders"
	now := time.Now().UTC().Truncate(time.Millisecond)
	claim := func(domain string, at time.Time) *kgo.Record {
		ev := product(domain, "orders", []string{ds})
		ev.Emitter, ev.EventTime = domain, at
		v, err := r.codecs.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		p := pSales
		if domain == "finance" {
			p = pFinance
		}
		return &kgo.Record{Topic: "mesh." + domain + ".metadata", Partition: p, Key: []byte(ev.ProductURN), Value: v}
	}
	manual, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer manual.Close()
	if err := manual.ProduceSync(context.Background(), claim("finance", now.Add(-time.Second)), claim("sales", now.Add(-2*time.Second))).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.waitFor("both declarations accepted by their replicas", func() bool {
		return r.count("SELECT count() FROM {db}.dataset_claims WHERE dataset_urn = '"+ds+"'") == 2
	})
	t.Logf("before reload: replica A says %q, replica B says %q", a.Owner(ds), b.Owner(ds))
	for _, ing := range []*ingest.Ingestor{a, b} {
		if err := ing.RefreshOwners(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if a.Owner(ds) != "sales" || b.Owner(ds) != "sales" {
		t.Fatalf("after reload: A says %q, B says %q; want both sales (the earliest declaration)", a.Owner(ds), b.Owner(ds))
	}
	var owner, fromProduct string
	if err := r.conn.QueryRow(context.Background(), "SELECT domain FROM "+r.db+".dataset_owners WHERE dataset_urn = ?", ds).Scan(&owner); err != nil || owner != "sales" {
		t.Fatalf("dataset_owners: %q, %v", owner, err)
	}
	if err := r.conn.QueryRow(context.Background(), "SELECT product_urn FROM "+r.db+".datasets WHERE dataset_urn = ?", ds).Scan(&fromProduct); err != nil || fromProduct != "urn:mesh:product:sales:orders" {
		t.Fatalf("datasets view shows the declaration of %q, %v", fromProduct, err)
	}
	// Quality from finance on every partition, so both replicas judge it.
	var recs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		q := quality(ds, "row_count", "PASS")
		q.Emitter, q.EventTime = "finance", time.Now().UTC().Truncate(time.Millisecond)
		v, _ := r.codecs.Encode(q)
		recs = append(recs, &kgo.Record{Topic: "mesh.finance.quality", Partition: p, Value: v})
	}
	if err := manual.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, dl := range r.deadLetters(3) {
		if header(dl, ingest.HeaderReason) != ingest.ReasonOwnership {
			t.Errorf("finance's check was %q, want refused for ownership", header(dl, ingest.HeaderReason))
		}
	}
	r.produce("sales", quality(ds, "row_count", "PASS"))
	r.waitFor("the owner's check stored", func() bool {
		return r.count("SELECT count() FROM {db}.quality_results FINAL WHERE dataset_urn = '"+ds+"' AND owner_domain = 'sales'") == 1
	})
}
