package app

import (
	"context"
	"errors"
	"flag"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/meshpulse/meshpulse/internal/httpserve"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// ScorerConfig is everything a scorer process needs.
type ScorerConfig struct {
	Kafka    kafka.Config
	Store    store.Config
	Scorer   scorer.Config
	HTTPAddr string
	LogLevel string
	// Policy, when set, is used instead of loading Scorer.PolicyFile.
	Policy *model.Policy
	// Migrate applies missing migrations at start; without it the schema
	// is only checked.
	Migrate bool
	// MemoryLimitMiB is the Go runtime's soft memory limit for a standalone
	// scorer (0: Go's default). The scorer's heap grows with the mesh, so
	// there is no default; deployments set it below the container's limit.
	MemoryLimitMiB int
}

// RegisterFlags adds every flag of the scorer.
func (c *ScorerConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	c.Store.RegisterFlags(fs)
	c.Scorer.RegisterFlags(fs)
	fs.StringVar(&c.HTTPAddr, "http", ":8081", "address of /metrics, /healthz, /readyz; empty to disable (env MESHPULSE_HTTP)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (env MESHPULSE_LOG_LEVEL)")
	fs.BoolVar(&c.Migrate, "migrate", true, "apply missing ClickHouse migrations at start; false only checks the schema (env MESHPULSE_MIGRATE)")
	fs.IntVar(&c.MemoryLimitMiB, "memory-limit", 0, "soft memory limit in MiB (the Go runtime collects harder as the heap nears it); 0 for Go's default; at 100,000 products 900 keeps the heap under 1 GiB; GOMEMLIMIT, when set, wins (env MESHPULSE_MEMORY_LIMIT)")
}

// Validate reports every problem at once, the policy file's included.
func (c *ScorerConfig) Validate() error {
	_, perr := model.LoadPolicy(c.Scorer.PolicyFile)
	var merr error
	if c.MemoryLimitMiB < 0 {
		merr = errors.New("the memory limit must not be negative")
	}
	return errors.Join(c.Kafka.Validate(), c.Store.Validate(), c.Scorer.Validate(), perr, merr)
}

// RunScorer migrates ClickHouse, creates the topics and scores until ctx ends.
func RunScorer(ctx context.Context, c ScorerConfig, log zerolog.Logger, reg *prometheus.Registry, started func(*scorer.Scorer)) error {
	pol, err := model.LoadPolicy(c.Scorer.PolicyFile)
	if err != nil {
		return err
	}
	if c.Policy != nil {
		pol = *c.Policy
	}
	if c.Scorer.Replica == "" {
		c.Scorer.Replica, _ = os.Hostname()
	}
	gate, err := openStoreGate(c.Store)
	if err != nil {
		return err
	}
	defer gate.conn.Close()
	// The scorer needs the schema before its first pass; it waits for a
	// ClickHouse that is not up yet rather than crash-looping.
	if err := gate.prepare(ctx, c.Store, c.Migrate, log); err != nil {
		return err
	}
	if err := gate.wait(ctx); err != nil {
		return nil
	}
	conn := gate.conn
	if err := EnsureTopics(ctx, c.Kafka, kafka.ScorerTopics()...); err != nil {
		return err
	}
	codecs, err := events.NewCodecs()
	if err != nil {
		return err
	}
	c.Scorer.KafkaHooks = append(c.Scorer.KafkaHooks, kprom.NewMetrics("meshpulse_scorer_kafka", kprom.Registry(reg)))
	sc, err := scorer.New(c.Scorer, &pol, c.Kafka.Opts(), conn, c.Store.Database, codecs, log, scorer.NewMetrics(reg))
	if err != nil {
		return err
	}
	if started != nil {
		started(sc)
	}
	return runServing(ctx, c.HTTPAddr, reg, httpserve.Probes{Ready: func() bool { return len(sc.Owned()) > 0 }}, log, sc.Run)
}
