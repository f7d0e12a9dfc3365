// Package demo plays a small data mesh for meshpulse dev --demo: four
// domains, twelve products with lineage across domains, job runs, usage from
// several consumers, and quality checks with failures, including a quality
// incident on one upstream product partway through, so that scores move.
// It publishes through pkg/events like any domain pipeline would.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Domains of the demo mesh.
var Domains = []string{"sales", "finance", "marketing", "logistics"}

// spec describes one demo product.
type spec struct {
	domain, name string
	inputs       []string // dataset URNs
	complete     bool     // full metadata (description, classification, SLO, docs)
}

func wh(path string) string { return events.DatasetURN("warehouse", path) }

// Output is the dataset a demo product publishes.
func (s spec) Output() string { return wh(s.domain + "." + s.name) }

var products = []spec{
	{"sales", "orders", []string{events.DatasetURN("postgres", "shop.orders")}, true},
	{"sales", "customers", []string{events.DatasetURN("postgres", "crm.customers")}, true},
	{"sales", "orders_daily", []string{wh("sales.orders")}, false},
	{"finance", "ledger", []string{wh("sales.orders")}, true},
	{"finance", "revenue_daily", []string{wh("finance.ledger"), wh("sales.orders_daily")}, true},
	{"finance", "invoices", []string{wh("sales.customers"), wh("finance.ledger")}, false},
	{"marketing", "web_sessions", []string{events.DatasetURN("s3", "clickstream/raw")}, false},
	{"marketing", "campaign_attribution", []string{wh("marketing.web_sessions"), wh("sales.orders")}, true},
	{"marketing", "customer_segments", []string{wh("sales.customers"), wh("marketing.campaign_attribution")}, false},
	{"logistics", "shipments", []string{wh("sales.orders")}, true},
	{"logistics", "delivery_times", []string{wh("logistics.shipments")}, true},
	{"logistics", "carrier_costs", []string{wh("logistics.shipments"), wh("finance.invoices")}, false},
}

// IncidentProduct is the upstream product whose checks fail during the incident.
const IncidentProduct = "urn:mesh:product:sales:orders"

// Config of the generator.
type Config struct {
	Tick          time.Duration // one round of runs, checks and reads
	ReadsPerTick  int
	IncidentStart time.Duration // after start; 0 disables the incident
	IncidentEnd   time.Duration
}

// DefaultConfig gives an incident from 40 s to 100 s after start.
func DefaultConfig() Config {
	return Config{Tick: time.Second, ReadsPerTick: 40, IncidentStart: 40 * time.Second, IncidentEnd: 100 * time.Second}
}

// Generator publishes the demo mesh.
type Generator struct {
	cfg       Config
	client    *kgo.Client
	producers map[string]*events.Producer
	rng       *rand.Rand
	log       zerolog.Logger
}

// New returns a generator publishing over client.
func New(cfg Config, client *kgo.Client, codecs *events.Codecs, log zerolog.Logger) (*Generator, error) {
	g := &Generator{cfg: cfg, client: client, producers: map[string]*events.Producer{}, rng: rand.New(rand.NewPCG(1, 2)), log: log}
	for _, e := range append([]string{events.PlatformEmitter}, Domains...) {
		p, err := events.NewProducer(client, codecs, e)
		if err != nil {
			return nil, err
		}
		g.producers[e] = p
	}
	return g, nil
}

// Run declares the products, then plays rounds until ctx ends.
func (g *Generator) Run(ctx context.Context) error {
	start := time.Now()
	// Stopping (ctx done) while a flush waits is not an error, here and
	// below: a run of 3 s at a 50 ms tick redeclares just as it ends.
	if err := g.declare(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	g.refusedClaim(ctx)
	t := time.NewTicker(g.cfg.Tick)
	defer t.Stop()
	for round := 0; ; round++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		since := time.Since(start)
		incident := g.cfg.IncidentStart > 0 && since >= g.cfg.IncidentStart && since < g.cfg.IncidentEnd
		if round%60 == 59 {
			if err := g.declare(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
		g.round(ctx, incident)
		if err := g.client.Flush(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("demo flush: %w", err)
		}
	}
}

func (g *Generator) send(ctx context.Context, emitter string, ev events.Event) {
	if err := g.producers[emitter].Produce(ctx, ev, func(err error) {
		if err != nil && ctx.Err() == nil {
			g.log.Error().Err(err).Msg("demo produce")
		}
	}); err != nil {
		g.log.Error().Err(err).Msg("demo event refused by the producer")
	}
}

func (g *Generator) declare(ctx context.Context) error {
	for _, s := range products {
		m := &events.ProductMetadata{
			ProductURN: events.ProductURN(s.domain, s.name), Domain: s.domain, Name: s.name,
			Owners: []string{s.name + "-team@" + s.domain + ".example"}, Lifecycle: "active", Inputs: s.inputs,
		}
		out := events.OutputDataset{DatasetURN: s.Output(), Fields: []events.DatasetField{
			{Name: "id", Type: "string"}, {Name: "customer_email", Type: "string"}, {Name: "amount", Type: "decimal(18,2)"},
			{Name: "updated_at", Type: "timestamp"},
		}}
		if s.complete {
			m.Description = fmt.Sprintf("%s of the %s domain, refreshed hourly", s.name, s.domain)
			m.Tags = []string{s.domain, "gold"}
			m.DocumentationURL = "https://wiki.example/" + s.domain + "/" + s.name
			m.AccessNotes = "SQL: SELECT from " + s.domain + "." + s.name + " in the warehouse"
			m.SLO = &events.SLO{FreshnessSeconds: ptr[int64](3600), MinQualityPassRate: ptr(0.95)}
			out.Description = m.Description
			out.SchemaRef = "registry:" + s.domain + "." + s.name + "-value"
			classes := []string{"internal", "restricted", "confidential", "internal"}
			for i := range out.Fields {
				out.Fields[i].Description = "the " + out.Fields[i].Name
				out.Fields[i].Classification = classes[i]
			}
			out.Fields[1].PII = true
		}
		m.Outputs = []events.OutputDataset{out}
		g.send(ctx, s.domain, m)
	}
	return g.client.Flush(ctx)
}

// refusedClaim shows governance at work: marketing reports a check on a
// sales dataset, which the ingestor dead-letters as an ownership violation.
func (g *Generator) refusedClaim(ctx context.Context) {
	g.send(ctx, "marketing", &events.QualityResult{DatasetURN: wh("sales.orders"), CheckName: "looks_fine_to_us",
		CheckType: "custom", Status: "PASS", Severity: "low"})
}

func (g *Generator) round(ctx context.Context, incident bool) {
	now := time.Now().UTC()
	for _, s := range products {
		urn := events.ProductURN(s.domain, s.name)
		failing := incident && urn == IncidentProduct
		// A run of the job that builds the product.
		if g.rng.Float64() < 0.5 {
			job := events.JobURN(s.domain, "build-"+s.name)
			runID := uuid.NewString()
			g.send(ctx, s.domain, &events.LineageRun{Envelope: events.Envelope{EventTime: now.Add(-time.Second)}, JobURN: job,
				RunID: runID, State: "START", Producer: "https://meshpulse.dev/demo", Inputs: s.inputs, Outputs: []string{s.Output()}})
			state, errMsg := "COMPLETE", ""
			if failing || g.rng.Float64() < 0.01 {
				state, errMsg = "FAIL", "upstream extract timed out"
			}
			g.send(ctx, s.domain, &events.LineageRun{Envelope: events.Envelope{EventTime: now}, JobURN: job, RunID: runID,
				State: state, Producer: "https://meshpulse.dev/demo", Inputs: s.inputs, Outputs: []string{s.Output()},
				RowsWritten: ptr(int64(g.rng.IntN(100_000))), ErrorMessage: errMsg})
		}
		// Checks, run by the owner or by the platform's quality runner.
		for _, c := range []struct{ name, typ, severity string }{
			{"freshness", "freshness", "high"}, {"row_count", "volume", "medium"}, {"not_null_id", "validity", "critical"},
			{"unique_id", "validity", "high"}, {"schema_matches", "schema", "medium"}, {"amount_positive", "custom", "low"},
		} {
			if g.rng.Float64() > 0.3 {
				continue
			}
			status := "PASS"
			switch p := g.rng.Float64(); {
			case failing:
				status = "FAIL"
			case p < 0.01:
				status = "FAIL"
			case p < 0.03:
				status = "WARN"
			}
			emitter := s.domain
			if g.rng.IntN(2) == 0 {
				emitter = events.PlatformEmitter
			}
			g.send(ctx, emitter, &events.QualityResult{DatasetURN: s.Output(), CheckName: c.name, CheckType: c.typ,
				Status: status, Severity: c.severity, ObservedValue: ptr(g.rng.Float64() * 100), Threshold: ptr(90.0)})
		}
	}
	// Reads: the platform's query-log collector and consumer domains.
	for range g.cfg.ReadsPerTick {
		s := products[g.rng.IntN(len(products))]
		consumerDomain := Domains[g.rng.IntN(len(Domains))]
		emitter := events.PlatformEmitter
		if g.rng.IntN(3) == 0 {
			emitter = consumerDomain // a domain reports its own consumers' reads
		}
		g.send(ctx, emitter, &events.UsageEvent{DatasetURN: s.Output(), Consumer: events.Consumer{
			User: fmt.Sprintf("%s-analyst-%d", consumerDomain, g.rng.IntN(5)), Team: consumerDomain + "-analytics",
			Domain: consumerDomain, Tool: []string{"looker", "jupyter", "dbt", "tableau"}[g.rng.IntN(4)],
		}, AccessKind: "query", RowsRead: int64(g.rng.IntN(50_000)), DurationMs: int64(g.rng.IntN(3000))})
	}
}

func ptr[T any](v T) *T { return &v }
