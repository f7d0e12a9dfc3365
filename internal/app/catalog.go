package app

import (
	"context"
	"errors"
	"flag"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/meshpulse/meshpulse/internal/catalog"
	"github.com/meshpulse/meshpulse/internal/httpserve"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// CatalogConfig is everything the web catalog needs: it reads ClickHouse
// and mesh.scores, and writes nothing.
type CatalogConfig struct {
	Kafka    kafka.Config
	Store    store.Config
	Catalog  catalog.Config
	HTTPAddr string
	LogLevel string
}

// RegisterFlags adds every flag of the catalog.
func (c *CatalogConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	c.Store.RegisterFlags(fs)
	c.Catalog.RegisterFlags(fs)
	fs.StringVar(&c.HTTPAddr, "http", ":8083", "address of /metrics, /healthz, /readyz; empty to disable (env MESHPULSE_HTTP)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (env MESHPULSE_LOG_LEVEL)")
}

// Validate reports every problem at once.
func (c *CatalogConfig) Validate() error {
	return errors.Join(c.Kafka.Validate(), c.Store.Validate(), c.Catalog.Validate())
}

// LogLevelFlag implements Service.
func (c *CatalogConfig) LogLevelFlag() string { return c.LogLevel }

// Run implements Service.
func (c *CatalogConfig) Run(ctx context.Context, log zerolog.Logger, reg *prometheus.Registry) error {
	return RunCatalog(ctx, *c, log, reg, nil)
}

// RunCatalog serves the catalog until ctx ends; listening, when not nil,
// gets the bound address. It waits for a ClickHouse that is not up yet and
// checks (never applies) the schema.
func RunCatalog(ctx context.Context, c CatalogConfig, log zerolog.Logger, reg *prometheus.Registry, listening func(addr string)) error {
	gate, err := openStoreGate(c.Store)
	if err != nil {
		return err
	}
	defer gate.conn.Close()
	if err := gate.prepare(ctx, c.Store, false, log); err != nil {
		return err
	}
	if err := gate.wait(ctx); err != nil {
		return nil
	}
	codecs, err := events.NewCodecs()
	if err != nil {
		return err
	}
	srv, err := catalog.New(c.Catalog, gate.conn, c.Store.Database, append(c.Kafka.Opts(), kafka.Logger(log)), codecs, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	var up atomic.Bool
	return runServing(ctx, c.HTTPAddr, reg, httpserve.Probes{Ready: func() bool { return up.Load() && srv.Ready() }}, log,
		func(ctx context.Context) error {
			return srv.Run(ctx, func(addr string) {
				up.Store(true)
				if listening != nil {
					listening(addr)
				}
			})
		})
}
