package scorer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/internal/testmesh"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type rig struct {
	t      *testing.T
	seeds  []string
	sc     store.Config
	conn   driver.Conn
	w      *store.Writer
	codecs *events.Codecs
	logTo  io.Writer // also receives the replicas' logs, when set
}

func newRig(t *testing.T, partitions int) *rig {
	seeds := testenv.Kafka(t)
	sc, conn := testenv.ClickHouse(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(context.Background(), cl, partitions, 1, kafka.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	codecs, _ := events.NewCodecs()
	return &rig{t: t, seeds: seeds, sc: sc, conn: conn, w: store.NewWriter(conn, sc.Database), codecs: codecs}
}

// start runs a scorer replica until stop or the end of the test.
func (r *rig) start(name string) (s *scorer.Scorer, stop func()) {
	cfg := scorer.Defaults()
	cfg.Tick = 100 * time.Millisecond
	cfg.FullPass = time.Hour // after the first pass, only the incremental path runs
	cfg.SessionTimeout = 6 * time.Second
	cfg.Replica = name
	pol := model.DefaultPolicy()
	kc := kafka.Config{Brokers: strings.Join(r.seeds, ","), Partitions: 1, Replication: 1}
	var out io.Writer = zerolog.NewTestWriter(r.t)
	if r.logTo != nil {
		out = zerolog.MultiLevelWriter(out, r.logTo)
	}
	log := zerolog.New(out).Level(zerolog.WarnLevel).With().Str("replica", name).Logger()
	s, err := scorer.New(cfg, &pol, kc.Opts(), r.conn, r.sc.Database, r.codecs, log, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				r.t.Errorf("scorer %s: %v", name, err)
			}
		})
	}
	r.t.Cleanup(stop)
	return s, stop
}

// insert stores rows as the ingestor would, and announces them on the
// change feed as the ingestor does: every dataset and product of the test
// mesh is named.
func (r *rig) insert(fill func(b *store.Batch)) {
	r.t.Helper()
	b := &store.Batch{}
	fill(b)
	if err := r.w.Insert(context.Background(), []*store.Batch{b}); err != nil {
		r.t.Fatal(err)
	}
	r.announce(b)
}

func (r *rig) announce(b *store.Batch) {
	r.t.Helper()
	kinds := map[string]byte{}
	for kind, flag := range map[int]byte{store.TouchedQuality: kafka.ChangeQuality, store.TouchedUsage: kafka.ChangeUsage,
		store.TouchedRuns: kafka.ChangeRuns, store.TouchedLineage: kafka.ChangeLineage, store.TouchedProducts: kafka.ChangeDeclaration} {
		for _, urn := range b.Touched(kind) {
			kinds[urn] |= flag
		}
	}
	if len(kinds) == 0 {
		return
	}
	var recs []*kgo.Record
	for urn, what := range kinds {
		recs = append(recs, kafka.ChangeRecord(urn, what))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.seeds...))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

func env() events.Envelope {
	return events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Truncate(time.Millisecond), Emitter: "platform"}
}

func ds(name string) string { return events.DatasetURN("wh", name) }

// declare adds a fully documented product whose output is ds(name).
func declare(b *store.Batch, domain, name string, inputs ...string) {
	b.AddMetadata(&events.ProductMetadata{
		Envelope: env(), ProductURN: events.ProductURN(domain, name), Domain: domain, Name: name,
		Description: "d", Tags: []string{"t"}, Owners: []string{"o"}, Lifecycle: "active", DocumentationURL: "u", AccessNotes: "a",
		Inputs: inputs, SLO: &events.SLO{FreshnessSeconds: ptr[int64](3600)},
		Outputs: []events.OutputDataset{{DatasetURN: ds(name), SchemaRef: "s", Fields: []events.DatasetField{
			{Name: "id", Type: "string", Description: "id", Classification: "internal"}}}},
	})
}

// healthy adds passing checks, a successful run and ten consumers.
func healthy(b *store.Batch, name string) {
	for _, c := range []string{"a", "b", "c"} {
		quality(b, name, c, "PASS")
	}
	run(b, name, "COMPLETE")
	for i := range 10 {
		b.AddUsage(&events.UsageEvent{Envelope: env(), DatasetURN: ds(name), Consumer: events.Consumer{User: fmt.Sprint("u", i)}, AccessKind: "query"}, "")
	}
}

func quality(b *store.Batch, name, check, status string) {
	b.AddQuality(&events.QualityResult{Envelope: env(), DatasetURN: ds(name), CheckName: check, CheckType: "validity", Status: status, Severity: "critical"}, "")
}

func run(b *store.Batch, name, state string) {
	b.AddLineage(&events.LineageRun{Envelope: env(), JobURN: events.JobURN("platform", "build-"+name), RunID: uuid.NewString(), State: state, Outputs: []string{ds(name)}})
}

func (r *rig) latest(product string) (trust float64, band string, reasons []string) {
	r.t.Helper()
	var t *float64
	row := r.conn.QueryRow(context.Background(), "SELECT trust, trust_band, reasons FROM "+r.sc.Database+".product_scores_latest WHERE product_urn = ?", product)
	if err := row.Scan(&t, &band, &reasons); err != nil || t == nil {
		return -1, band, reasons
	}
	return *t, band, reasons
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alerts reads every ScoreChanged on mesh.scores.
func (r *rig) alerts() []*events.ScoreChanged {
	evs, _ := r.alertsWithReplica()
	return evs
}

// alertsWithReplica also says which replica published each alert.
func (r *rig) alertsWithReplica() ([]*events.ScoreChanged, []string) {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.seeds...), kgo.ConsumeTopics(events.TopicScores),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	var out []*events.ScoreChanged
	var replicas []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		f := cl.PollFetches(ctx)
		cancel()
		recs := f.Records()
		if len(recs) == 0 {
			return out, replicas
		}
		for _, rec := range recs {
			ev, err := r.codecs.Decode(context.Background(), rec.Value)
			if err != nil {
				r.t.Fatal(err)
			}
			out = append(out, ev.(*events.ScoreChanged))
			replica := ""
			for _, h := range rec.Headers {
				if h.Key == scorer.HeaderReplica {
					replica = string(h.Value)
				}
			}
			replicas = append(replicas, replica)
		}
	}
}

// TestTrustPropagatesTwoHops: a -> b -> c. Failing checks and runs on a lower
// the trust of c, two hops down; recovery of a raises it again.
func TestTrustPropagatesTwoHops(t *testing.T) {
	r := newRig(t, 2)
	a, b, c := events.ProductURN("sales", "a"), events.ProductURN("finance", "b"), events.ProductURN("ops", "c")
	r.insert(func(bt *store.Batch) {
		declare(bt, "sales", "a")
		declare(bt, "finance", "b", ds("a"))
		declare(bt, "ops", "c", ds("b"))
		for _, n := range []string{"a", "b", "c"} {
			healthy(bt, n)
		}
	})
	r.start("solo")
	waitFor(t, "first scores", func() bool { tr, _, _ := r.latest(c); return tr > 0 })
	before, band, _ := r.latest(c)
	if band != model.Healthy || before < 90 {
		t.Fatalf("c starts at trust %g (%s), want healthy >= 90", before, band)
	}

	time.Sleep(1100 * time.Millisecond) // newer event times than the passing results
	r.insert(func(bt *store.Batch) {
		for _, ch := range []string{"a", "b", "c"} {
			quality(bt, "a", ch, "FAIL")
		}
		for range 9 {
			run(bt, "a", "FAIL")
		}
	})
	waitFor(t, "c's trust to drop", func() bool { tr, _, _ := r.latest(c); return tr < before-10 })
	trustA, bandA, _ := r.latest(a)
	trustB, _, _ := r.latest(b)
	trustC, _, reasonsC := r.latest(c)
	t.Logf("incident: a %.1f (%s), b %.1f, c %.1f (was %.1f)", trustA, bandA, trustB, trustC, before)
	if bandA != model.Critical && bandA != model.Degraded {
		t.Errorf("a's trust band = %s, want degraded or critical", bandA)
	}
	if !strings.Contains(strings.Join(reasonsC, " | "), "upstream sales:a (2 hops up)") {
		t.Errorf("c's reasons do not name the root cause two hops up: %q", reasonsC)
	}

	time.Sleep(1100 * time.Millisecond)
	r.insert(func(bt *store.Batch) {
		for _, ch := range []string{"a", "b", "c"} {
			quality(bt, "a", ch, "PASS")
		}
		for range 40 {
			run(bt, "a", "COMPLETE")
		}
	})
	waitFor(t, "c's trust to recover", func() bool { tr, _, _ := r.latest(c); return tr >= before-1 })

	var downstreamAlerts int
	var sawRootCause bool
	for _, ev := range r.alerts() {
		if ev.ProductURN == c && ev.OldTrust != nil {
			downstreamAlerts++
			t.Logf("alert on c: trust %.1f -> %.1f, cause %q, root causes %+v", *ev.OldTrust, *ev.NewTrust, ev.Cause, ev.RootCauses)
			for _, rc := range ev.RootCauses {
				if rc.ProductURN == a && rc.Hops == 2 && strings.Contains(strings.Join(rc.Signals, " "), "(critical, FAIL)") {
					sawRootCause = true
				}
			}
		}
	}
	if downstreamAlerts < 2 {
		t.Errorf("c got %d change alerts, want a drop and a recovery", downstreamAlerts)
	}
	if !sawRootCause {
		t.Error("no alert on c names sales:a, two hops up, and its failing checks as the root cause")
	}
}

// TestNoDuplicateAlertsAfterRestart: a second scorer over the same data
// (a restart) publishes nothing new.
func TestNoDuplicateAlertsAfterRestart(t *testing.T) {
	r := newRig(t, 3)
	r.insert(func(bt *store.Batch) {
		for i := range 6 {
			declare(bt, "sales", fmt.Sprint("p", i))
			healthy(bt, fmt.Sprint("p", i))
		}
	})
	first, stop := r.start("first")
	waitFor(t, "first alerts", func() bool { return first.Published() == 6 })
	stop()
	if n := len(r.alerts()); n != 6 {
		t.Fatalf("%d alerts on the topic, want 6", n)
	}
	second, _ := r.start("second")
	waitFor(t, "second scorer's full pass", func() bool { return second.FullPasses() >= 1 && len(second.Owned()) == 3 })
	time.Sleep(500 * time.Millisecond) // several incremental ticks
	if p := second.Published(); p != 0 {
		t.Fatalf("restarted scorer published %d alerts for unchanged scores", p)
	}
	if n := len(r.alerts()); n != 6 {
		t.Fatalf("%d alerts on the topic after restart, want still 6", n)
	}
}

// TestWarnsAboutAnotherGroup: an alert on mesh.scores published by another
// scorer group (every alert would go out twice) is reported as an error.
func TestWarnsAboutAnotherGroup(t *testing.T) {
	r := newRig(t, 1)
	var logs syncBuffer
	r.logTo = &logs
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	value, err := r.codecs.Encode(&events.ScoreChanged{Envelope: events.Envelope{EventID: "00000000-0000-4000-8000-000000000001", EventTime: now, Emitter: "platform"},
		ProductURN: events.ProductURN("sales", "elsewhere"), NewHealth: ptr(90.0), NewTrust: ptr(90.0), NewHealthBand: "healthy", NewTrustBand: "healthy", Cause: "first score"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: events.TopicScores, Key: []byte(events.ProductURN("sales", "elsewhere")), Value: value,
		Headers: []kgo.RecordHeader{{Key: scorer.HeaderGroup, Value: []byte("a-second-scorer-group")}}}
	if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.start("only")
	waitFor(t, "the warning about the other group", func() bool {
		return strings.Contains(logs.String(), "another scorer group publishes to mesh.scores") &&
			strings.Contains(logs.String(), "a-second-scorer-group")
	})
}

// syncBuffer is a bytes.Buffer safe for the scorer's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReplicasSplitAndTakeOver: two replicas share the products without
// overlap; when one stops, the other takes over its share.
func TestReplicasSplitAndTakeOver(t *testing.T) {
	r := newRig(t, 4)
	const n = 16
	one, stopOne := r.start("one")
	two, _ := r.start("two")
	waitFor(t, "both replicas to own shards", func() bool {
		return len(one.Owned()) > 0 && len(two.Owned()) > 0 && len(one.Owned())+len(two.Owned()) == 4
	})
	r.insert(func(bt *store.Batch) {
		for i := range n {
			declare(bt, "sales", fmt.Sprint("p", i))
			healthy(bt, fmt.Sprint("p", i))
		}
	})
	waitFor(t, "every product scored", func() bool { return one.Published()+two.Published() >= n })
	if one.Published() == 0 || two.Published() == 0 {
		t.Fatalf("work not split: one published %d, two %d", one.Published(), two.Published())
	}
	owned := map[int32]string{}
	for _, p := range one.Owned() {
		owned[p] = "one"
	}
	for _, p := range two.Owned() {
		if owned[p] != "" {
			t.Fatalf("partition %d owned by both replicas", p)
		}
		owned[p] = "two"
	}
	// Each product is scored by one replica only: one first score, and all
	// its alerts from the replica owning its shard.
	firsts, publisher := map[string]int{}, map[string]string{}
	evs, replicas := r.alertsWithReplica()
	for i, ev := range evs {
		if strings.HasPrefix(ev.Cause, "first score") {
			firsts[ev.ProductURN]++
		}
		if p := publisher[ev.ProductURN]; p != "" && p != replicas[i] {
			t.Errorf("product %s alerted by %s and %s", ev.ProductURN, p, replicas[i])
		}
		publisher[ev.ProductURN] = replicas[i]
		if want := owned[scorer.Partition(ev.ProductURN, 4)]; replicas[i] != want {
			t.Errorf("product %s alerted by %s, but its shard is %s's", ev.ProductURN, replicas[i], want)
		}
	}
	if len(firsts) != n {
		t.Fatalf("first scores for %d products, want %d", len(firsts), n)
	}
	for p, c := range firsts {
		if c != 1 {
			t.Errorf("product %s got %d first scores, want one", p, c)
		}
	}
	t.Logf("one owns %v (%d alerts), two owns %v (%d alerts)", one.Owned(), one.Published(), two.Owned(), two.Published())

	// A product of replica one's share.
	var victim string
	for i := range n {
		p := events.ProductURN("sales", fmt.Sprint("p", i))
		if owned[scorer.Partition(p, 4)] == "one" {
			victim = p
			break
		}
	}
	stopOne()
	waitFor(t, "replica two to take over", func() bool { return len(two.Owned()) == 4 })
	before := two.Published()
	name := strings.TrimPrefix(victim, "urn:mesh:product:sales:")
	time.Sleep(1100 * time.Millisecond)
	r.insert(func(bt *store.Batch) {
		for _, ch := range []string{"a", "b", "c"} {
			quality(bt, name, ch, "FAIL")
		}
	})
	waitFor(t, "replica two to alert on the victim", func() bool { return two.Published() > before })
	evs, replicas = r.alertsWithReplica()
	last := len(evs) - 1
	for last >= 0 && evs[last].ProductURN != victim {
		last--
	}
	if last < 0 || replicas[last] != "two" || evs[last].OldTrust == nil {
		t.Fatalf("the victim's latest alert is not a change published by replica two")
	}
	t.Logf("takeover: %s %s -> %s by %s", victim, evs[last].OldHealthBand, evs[last].NewHealthBand, replicas[last])
}

func ptr[T any](v T) *T { return &v }

// TestHistoryRetention: the day's first full pass drops the months of
// score history older than the retention (400 days by default) and keeps
// the others.
func TestHistoryRetention(t *testing.T) {
	r := newRig(t, 1)
	now := time.Now().UTC()
	old, kept := now.AddDate(0, -15, 0), now.AddDate(0, -2, 0)
	const p = "urn:mesh:product:sales:retired"
	testmesh.AddHistory(t, r.conn, r.sc.Database, p, old, kept)
	month := func(ts time.Time) uint32 { return uint32(ts.Year()*100 + int(ts.Month())) }
	if got := testmesh.HistoryMonths(t, r.conn, r.sc.Database, p); got[month(old)] != 1 || got[month(kept)] != 1 {
		t.Fatalf("history before the pass: %v", got)
	}
	s, stop := r.start("a")
	defer stop()
	waitFor(t, "the first full pass", func() bool { return s.FullPasses() >= 1 })
	got := testmesh.HistoryMonths(t, r.conn, r.sc.Database, p)
	if got[month(old)] != 0 || got[month(kept)] != 1 {
		t.Fatalf("history after the pass: %v; want month %d dropped and %d kept", got, month(old), month(kept))
	}
}
