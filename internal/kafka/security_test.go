package kafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func as(brokers []string, user string) *kafka.Config {
	return &kafka.Config{Brokers: strings.Join(brokers, ","), SASLMechanism: "SCRAM-SHA-512", SASLUser: user,
		SASLPassword: user + "-secret", Partitions: 2, Replication: 1}
}

func client(t *testing.T, kc *kafka.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(kc.Opts(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestDomainsAndServicesAreKeptApart: on a broker with SASL/SCRAM and ACLs,
// a domain publishes to its own mesh.<domain>.* topics and is refused on
// another domain's; the ingestor and the scorer run with principals that can
// do their job and nothing more.
func TestDomainsAndServicesAreKeptApart(t *testing.T) {
	brokers := testenv.SecureKafka(t)
	ctx := context.Background()
	codecs, _ := events.NewCodecs()

	// The administrator (meshpulse migrate's principal) makes topics and ACLs.
	admin := client(t, as(brokers, "admin"))
	if err := kafka.EnsureTopics(ctx, admin, 2, 1, append(kafka.CoreTopics(), kafka.DomainTopics([]string{"sales", "finance"})...)...); err != nil {
		t.Fatal(err)
	}
	acls := append(append([]*kadm.ACLBuilder{kafka.DomainACLs("sales"), kafka.DomainACLs("finance")},
		kafka.IngestorACLs("ingestor", "meshpulse-ingestor")...), kafka.ScorerACLs("scorer", "meshpulse-scorer")...)
	if err := kafka.CreateACLs(ctx, admin, acls...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // ACLs reach the broker's authorizer

	usage := func(emitter string) *kgo.Record {
		ev := &events.UsageEvent{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Truncate(time.Millisecond), Emitter: emitter},
			DatasetURN: "urn:mesh:dataset:wh:sales.orders", Consumer: events.Consumer{User: "u", Domain: emitter}, AccessKind: "query"}
		b, _ := codecs.Encode(ev)
		return &kgo.Record{Topic: events.Topic(emitter, events.FamilyUsage), Key: []byte(ev.DatasetURN), Value: b}
	}
	produce := func(user string, rec *kgo.Record) error {
		cl := client(t, as(brokers, user), kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(10*time.Second))
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return cl.ProduceSync(pctx, rec).FirstErr()
	}
	denied := func(err error) bool {
		return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
	}

	// Domains.
	if err := produce("sales", usage("sales")); err != nil {
		t.Fatalf("sales publishing on its own topic: %v", err)
	}
	if err := produce("sales", usage("finance")); !denied(err) {
		t.Fatalf("sales publishing on finance's topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := produce("finance", usage("finance")); err != nil {
		t.Fatalf("finance publishing on its own topic: %v", err)
	}
	if err := produce("sales", &kgo.Record{Topic: events.TopicScores, Value: []byte("x")}); !denied(err) {
		t.Fatalf("sales publishing a score: %v, want refused", err)
	}

	// The ingestor's principal: consumes in its group, dead-letters, stores.
	sc, conn := testenv.ClickHouse(t)
	cfg := ingest.Defaults()
	cfg.FlushInterval = 100 * time.Millisecond
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ing, err := ingest.New(cfg, as(brokers, "ingestor").Opts(), store.NewWriter(conn, sc.Database), codecs, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ictx, stopIngest := context.WithCancel(ctx)
	idone := make(chan error, 1)
	go func() { idone <- ing.Run(ictx) }()
	if err := produce("sales", &kgo.Record{Topic: "mesh.sales.usage", Value: []byte("poison")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		stored, dead := ing.Totals()
		if stored == 2 && dead == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingestor with its own principal stored %d (want 2) and dead-lettered %d (want 1)", stored, dead)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopIngest()
	if err := <-idone; err != nil {
		t.Fatal(err)
	}
	if err := produce("ingestor", usage("sales")); !denied(err) {
		t.Fatalf("ingestor forging a domain event: %v, want refused", err)
	}
	if err := produce("ingestor", &kgo.Record{Topic: events.TopicScores, Value: []byte("x")}); !denied(err) {
		t.Fatalf("ingestor publishing a score: %v, want refused", err)
	}

	// The scorer's principal: joins its group on mesh.scores and publishes.
	b := &store.Batch{}
	b.AddMetadata(&events.ProductMetadata{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC(), Emitter: "sales"},
		ProductURN: "urn:mesh:product:sales:orders", Domain: "sales", Name: "orders", Lifecycle: "active",
		Outputs: []events.OutputDataset{{DatasetURN: "urn:mesh:dataset:wh:sales.orders"}}})
	b.AddQuality(&events.QualityResult{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC(), Emitter: "sales"},
		DatasetURN: "urn:mesh:dataset:wh:sales.orders", CheckName: "c", CheckType: "validity", Status: "PASS", Severity: "high"}, "sales")
	if err := store.NewWriter(conn, sc.Database).Insert(ctx, []*store.Batch{b}); err != nil {
		t.Fatal(err)
	}
	scfg := scorer.Defaults()
	scfg.Tick = 200 * time.Millisecond
	pol := model.DefaultPolicy()
	s, err := scorer.New(scfg, &pol, as(brokers, "scorer").Opts(), conn, sc.Database, codecs, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopScorer := context.WithCancel(ctx)
	sdone := make(chan error, 1)
	go func() { sdone <- s.Run(sctx) }()
	t.Cleanup(func() { stopScorer(); <-sdone })
	deadline = time.Now().Add(60 * time.Second)
	for s.Published() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("scorer with its own principal published nothing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := produce("scorer", usage("sales")); !denied(err) {
		t.Fatalf("scorer publishing a domain event: %v, want refused", err)
	}
}
