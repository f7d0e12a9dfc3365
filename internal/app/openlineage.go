package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/meshpulse/meshpulse/internal/cli"
	"github.com/meshpulse/meshpulse/internal/httpserve"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// OpenLineageConfig is everything the OpenLineage HTTP endpoint needs: it
// talks to Kafka only.
type OpenLineageConfig struct {
	Kafka  kafka.Config
	Server openlineage.ServerConfig
	// Domains whose mesh.<domain>.openlineage topics are checked (and
	// created, when the principal may) at start.
	Domains  string
	HTTPAddr string
	LogLevel string
}

// RegisterFlags adds every flag of the endpoint.
func (c *OpenLineageConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	c.Server.RegisterFlags(fs)
	fs.StringVar(&c.Domains, "domains", "", "domains whose openlineage topics to check at start, comma-separated (env MESHPULSE_DOMAINS)")
	fs.StringVar(&c.HTTPAddr, "http", ":8082", "address of /metrics, /healthz, /readyz; empty to disable (env MESHPULSE_HTTP)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (env MESHPULSE_LOG_LEVEL)")
}

// Validate reports every problem at once.
func (c *OpenLineageConfig) Validate() error {
	errs := []error{c.Kafka.Validate(), c.Server.Validate()}
	for _, d := range cli.SplitList(c.Domains) {
		if !events.ValidDomain(d) {
			errs = append(errs, fmt.Errorf("domain %q must be lower-case letters, digits and dashes", d))
		}
	}
	return errors.Join(errs...)
}

// LogLevelFlag implements Service.
func (c *OpenLineageConfig) LogLevelFlag() string { return c.LogLevel }

// Run implements Service.
func (c *OpenLineageConfig) Run(ctx context.Context, log zerolog.Logger, reg *prometheus.Registry) error {
	return RunOpenLineage(ctx, *c, log, reg, nil)
}

// RunOpenLineage serves POST /api/v1/lineage until ctx ends; listening,
// when not nil, gets the bound address.
func RunOpenLineage(ctx context.Context, c OpenLineageConfig, log zerolog.Logger, reg *prometheus.Registry, listening func(addr string)) error {
	if err := EnsureTopics(ctx, c.Kafka, kafka.OpenLineageTopics(cli.SplitList(c.Domains))...); err != nil {
		return err
	}
	opts := append(c.Kafka.Opts(), kgo.WithHooks(kprom.NewMetrics("meshpulse_openlineage_kafka", kprom.Registry(reg))), kafka.Logger(log))
	srv, err := openlineage.NewServer(c.Server, opts, log, reg)
	if err != nil {
		return err
	}
	defer srv.Close()
	var ready atomic.Bool
	return runServing(ctx, c.HTTPAddr, reg, httpserve.Probes{Healthy: srv.Healthy, Ready: ready.Load}, log,
		func(ctx context.Context) error {
			return srv.Run(ctx, func(addr string) {
				ready.Store(true)
				if listening != nil {
					listening(addr)
				}
			})
		})
}
