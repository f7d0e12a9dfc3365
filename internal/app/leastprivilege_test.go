package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/app"
	"github.com/meshpulse/meshpulse/internal/chserver"
	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func as(brokers []string, user string) kafka.Config {
	return kafka.Config{Brokers: strings.Join(brokers, ","), SASLMechanism: "SCRAM-SHA-512", SASLUser: user,
		SASLPassword: user + "-secret", Partitions: 2, Replication: 1}
}

// TestServicesStartAsRestrictedPrincipals starts the real services the way
// the Kubernetes manifests do: an administrator migrates and creates the
// topics and ACLs, then the ingestor and the scorer run with their own
// Kafka principals (SASL/SCRAM, ACLs by topic prefix) and ClickHouse users
// that may not change the schema, with -migrate=false. A service asked to
// migrate under such a user says why it cannot.
func TestServicesStartAsRestrictedPrincipals(t *testing.T) {
	brokers := testenv.SecureKafka(t)
	ctx := context.Background()
	sc, conn := testenv.ClickHouse(t) // migrated by the administrator ("default")
	admin := as(brokers, "admin")
	if err := app.CreateTopics(ctx, admin, []string{"sales"}); err != nil {
		t.Fatal(err)
	}
	adminCl, err := kgo.NewClient(admin.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	acls := append(append([]*kadm.ACLBuilder{kafka.DomainACLs("sales")},
		kafka.IngestorACLs("ingestor", "meshpulse-ingestor")...), kafka.ScorerACLs("scorer", "meshpulse-scorer")...)
	if err := kafka.CreateACLs(ctx, adminCl, acls...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // ACLs reach the broker's authorizer
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	asUser := func(user, password string) store.Config {
		c := sc
		c.User, c.Password = user, password
		return c
	}

	ic := app.IngestorConfig{Kafka: as(brokers, "ingestor"), Store: asUser(chserver.IngestorUser, chserver.IngestorPassword), Ingest: ingest.Defaults(), Migrate: true}
	ic.Ingest.FlushInterval = 100 * time.Millisecond
	start := time.Now()
	err = app.RunIngestor(ctx, ic, log, prometheus.NewRegistry(), nil)
	if err == nil || !strings.Contains(err.Error(), "-migrate=false") {
		t.Fatalf("ingestor migrating as a user without DDL: %v, want the -migrate=false hint", err)
	}
	t.Logf("refused to migrate as %s in %.1fs: %v", ic.Store.User, time.Since(start).Seconds(), err)

	ic.Migrate = false
	ictx, stopIngestor := context.WithCancel(ctx)
	defer stopIngestor()
	ready := make(chan *ingest.Ingestor, 1)
	idone := make(chan error, 1)
	start = time.Now()
	go func() {
		idone <- app.RunIngestor(ictx, ic, log, prometheus.NewRegistry(), func(i *ingest.Ingestor) { ready <- i })
	}()
	var ing *ingest.Ingestor
	select {
	case ing = <-ready:
		t.Logf("ingestor as Kafka principal ingestor and ClickHouse user %s consuming %.1fs after start", ic.Store.User, time.Since(start).Seconds())
	case err := <-idone:
		t.Fatalf("ingestor as a restricted principal: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("ingestor not consuming after 60s")
	}

	scfg := app.ScorerConfig{Kafka: as(brokers, "scorer"), Store: asUser(chserver.ScorerUser, chserver.ScorerPassword), Scorer: scorer.Defaults()}
	scfg.Scorer.Tick = 200 * time.Millisecond
	sctx, stopScorer := context.WithCancel(ctx)
	defer stopScorer()
	started := make(chan *scorer.Scorer, 1)
	sdone := make(chan error, 1)
	start = time.Now()
	go func() {
		sdone <- app.RunScorer(sctx, scfg, log, prometheus.NewRegistry(), func(s *scorer.Scorer) { started <- s })
	}()
	var s *scorer.Scorer
	select {
	case s = <-started:
		t.Logf("scorer as Kafka principal scorer and ClickHouse user %s running %.1fs after start", scfg.Store.User, time.Since(start).Seconds())
	case err := <-sdone:
		t.Fatalf("scorer as a restricted principal: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("scorer not running after 60s")
	}

	// A domain publishes; the ingestor stores it; the scorer scores it.
	codecs, _ := events.NewCodecs()
	salesKC := as(brokers, "sales")
	salesCl, err := kgo.NewClient(salesKC.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer salesCl.Close()
	p, _ := events.NewProducer(salesCl, codecs, "sales")
	if err := p.ProduceSync(ctx, &events.ProductMetadata{ProductURN: "urn:mesh:product:sales:orders", Domain: "sales", Name: "orders",
		Lifecycle: "active", Outputs: []events.OutputDataset{{DatasetURN: "urn:mesh:dataset:wh:sales.orders"}}},
		&events.QualityResult{DatasetURN: "urn:mesh:dataset:wh:sales.orders", CheckName: "c", CheckType: "validity", Status: "PASS", Severity: "high"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for s.Published() == 0 {
		if stored, _ := ing.Totals(); time.Now().After(deadline) {
			t.Fatalf("after 60s: ingestor stored %d, scorer published %d", stored, s.Published())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+sc.Database+".products FINAL").Scan(&n); err != nil || n != 1 {
		t.Fatalf("products stored: %d, %v", n, err)
	}
	stopScorer()
	stopIngestor()
	for _, ch := range []chan error{sdone, idone} {
		if err := <-ch; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
}
