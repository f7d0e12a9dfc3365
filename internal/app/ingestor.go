// Package app wires meshpulse's components into runnable processes, so that
// cmd/ingestor, cmd/scorer and meshpulse dev share one way of starting them.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"golang.org/x/sync/errgroup"

	"github.com/meshpulse/meshpulse/internal/cli"
	"github.com/meshpulse/meshpulse/internal/httpserve"
	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// IngestorConfig is everything an ingestor process needs.
type IngestorConfig struct {
	Kafka  kafka.Config
	Store  store.Config
	Ingest ingest.Config
	// Domains whose inbound topics are created at start (comma-separated);
	// the platform's and meshpulse's own topics are always created.
	Domains string
	// HTTPAddr serves /metrics, /healthz and /readyz; empty disables it.
	HTTPAddr string
	LogLevel string
	// Migrate applies missing migrations at start; without it the schema
	// is only checked (for users that may not run DDL).
	Migrate bool
	// SchemaRegistry (comma-separated URLs) enables the Confluent framing;
	// single-object encoding needs no registry.
	SchemaRegistry, SchemaRegistryUser, SchemaRegistryPassword string
	// MemoryLimitMiB is the Go runtime's soft memory limit for a standalone
	// ingestor process (not for meshpulse dev, which runs it in-process).
	MemoryLimitMiB int
}

// RegisterFlags adds every flag of the ingestor.
func (c *IngestorConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	c.Store.RegisterFlags(fs)
	c.Ingest.RegisterFlags(fs)
	fs.StringVar(&c.Domains, "domains", "", "domains whose inbound topics to create at start, comma-separated (env MESHPULSE_DOMAINS)")
	fs.StringVar(&c.HTTPAddr, "http", ":8080", "address of /metrics, /healthz, /readyz; empty to disable (env MESHPULSE_HTTP)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (env MESHPULSE_LOG_LEVEL)")
	fs.BoolVar(&c.Migrate, "migrate", true, "apply missing ClickHouse migrations at start; false only checks the schema (env MESHPULSE_MIGRATE)")
	fs.StringVar(&c.SchemaRegistry, "schema-registry", "", "Schema Registry URLs, comma-separated, to accept Confluent-framed records (env MESHPULSE_SCHEMA_REGISTRY)")
	fs.StringVar(&c.SchemaRegistryUser, "schema-registry-user", "", "Schema Registry basic-auth user (env MESHPULSE_SCHEMA_REGISTRY_USER)")
	fs.StringVar(&c.SchemaRegistryPassword, "schema-registry-password", "", "Schema Registry basic-auth password (env MESHPULSE_SCHEMA_REGISTRY_PASSWORD)")
	fs.IntVar(&c.MemoryLimitMiB, "memory-limit", 200, "soft memory limit in MiB: the Go runtime collects harder as the heap nears it; 0 for Go's default; GOMEMLIMIT, when set, wins (env MESHPULSE_MEMORY_LIMIT)")
}

// Validate reports every problem at once.
func (c *IngestorConfig) Validate() error {
	errs := []error{c.Kafka.Validate(), c.Store.Validate(), c.Ingest.Validate()}
	if c.MemoryLimitMiB < 0 {
		errs = append(errs, errors.New("memory limit must be 0 (none) or positive"))
	}
	for _, d := range cli.SplitList(c.Domains) {
		if !events.ValidDomain(d) {
			errs = append(errs, fmt.Errorf("domain %q must be lower-case letters, digits and dashes", d))
		}
	}
	return errors.Join(errs...)
}

// NewRegistry returns a metrics registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// RunIngestor migrates ClickHouse, creates the topics and consumes until ctx
// ends. ingested, when not nil, receives the running ingestor.
func RunIngestor(ctx context.Context, c IngestorConfig, log zerolog.Logger, reg *prometheus.Registry, ingested func(*ingest.Ingestor)) error {
	gate, err := openStoreGate(c.Store)
	if err != nil {
		return err
	}
	defer gate.conn.Close()

	if err := EnsureTopics(ctx, c.Kafka, kafka.IngestorTopics(cli.SplitList(c.Domains))...); err != nil {
		return err
	}
	codecs, err := events.NewCodecs()
	if err != nil {
		return err
	}
	if urls := cli.SplitList(c.SchemaRegistry); len(urls) > 0 {
		sreg, err := events.NewSchemaRegistry(urls, c.SchemaRegistryUser, c.SchemaRegistryPassword)
		if err != nil {
			return err
		}
		codecs.WithRegistry(sreg)
	}
	kmetrics := kprom.NewMetrics("meshpulse_ingest_kafka", kprom.Registry(reg))
	opts := append(c.Kafka.Opts(), kgo.WithHooks(kmetrics))
	writer := gatedWriter{Writer: store.NewWriter(gate.conn, c.Store.Database), gate: gate}
	ing, err := ingest.New(c.Ingest, opts, writer, codecs, log, ingest.NewMetrics(reg))
	if err != nil {
		return err
	}
	if ingested != nil {
		ingested(ing)
	}
	return runServing(ctx, c.HTTPAddr, reg, httpserve.Probes{Healthy: ing.Healthy, Ready: ing.Ready}, log,
		func(ctx context.Context) error { return gate.prepare(ctx, c.Store, c.Migrate, log) }, ing.Run)
}

// runServing runs a component, with /metrics, /healthz and /readyz on addr
// unless it is empty, until ctx ends or either fails.
func runServing(ctx context.Context, addr string, reg *prometheus.Registry, probes httpserve.Probes, log zerolog.Logger, run ...func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	if addr != "" {
		g.Go(func() error { return httpserve.Serve(gctx, addr, reg, probes, log) })
	}
	for _, r := range run {
		g.Go(func() error { return r(gctx) })
	}
	return g.Wait()
}

// CreateTopics creates meshpulse's own topics and the domains' inbound
// ones (meshpulse migrate, as an administrator).
func CreateTopics(ctx context.Context, kc kafka.Config, domains []string) error {
	return EnsureTopics(ctx, kc, append(kafka.CoreTopics(), kafka.DomainTopics(domains)...)...)
}

// EnsureTopics creates topics when the principal may, and checks that they
// exist: a service ensures only the topics it uses itself.
func EnsureTopics(ctx context.Context, kc kafka.Config, topics ...string) error {
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	return kafka.EnsureTopics(ctx, cl, kc.Partitions, kc.Replication, topics...)
}
