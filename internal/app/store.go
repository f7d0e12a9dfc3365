package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"github.com/meshpulse/meshpulse/internal/store"
)

// storeGate is ClickHouse opened without waiting for it. A service started
// while ClickHouse is down (a deploy during an incident) does not
// crash-loop: the ingestor joins its group and treats the missing server
// like any other outage, and the schema is migrated or checked once the
// server answers. Only what waiting cannot fix stops the service: a schema
// newer than the binary, a user that may not run the migrations it was
// asked to run, wrong credentials.
type storeGate struct {
	conn  driver.Conn
	ready chan struct{}

	mu      sync.Mutex
	lastErr error
}

func openStoreGate(c store.Config) (*storeGate, error) {
	conn, err := store.Connect(c)
	if err != nil {
		return nil, err
	}
	return &storeGate{conn: conn, ready: make(chan struct{}), lastErr: errors.New("not connected yet")}, nil
}

// prepare pings, then migrates (or checks the schema), retrying what may
// pass, until it succeeds, a fatal error comes, or ctx ends.
func (g *storeGate) prepare(ctx context.Context, c store.Config, migrate bool, log zerolog.Logger) error {
	backoff := 200 * time.Millisecond
	for {
		err := g.conn.Ping(ctx)
		var applied []int
		if err == nil {
			if migrate {
				applied, err = store.MigrateFor(ctx, g.conn, c)
				if store.DDLRefused(err) {
					return fmt.Errorf("%w\nClickHouse user %q may not change the schema: run meshpulse migrate as an administrator and start this service with -migrate=false", err, c.User)
				}
			} else {
				err = store.CheckSchema(ctx, g.conn, c.Database)
			}
		}
		if err == nil {
			log.Info().Ints("applied", applied).Str("database", c.Database).Msg("clickhouse schema up to date")
			close(g.ready)
			return nil
		}
		if fatalStoreError(err) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		g.mu.Lock()
		g.lastErr = err
		g.mu.Unlock()
		log.Warn().Err(err).Dur("retry_in", backoff).Msg("clickhouse not ready; waiting for it")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// check is nil once the schema is ready, else why not (an outage to retry).
func (g *storeGate) check() error {
	select {
	case <-g.ready:
		return nil
	default:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("clickhouse not ready: %w", g.lastErr)
}

// wait blocks until the schema is ready or ctx ends.
func (g *storeGate) wait(ctx context.Context) error {
	select {
	case <-g.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func fatalStoreError(err error) bool {
	msg := err.Error()
	return store.AuthFailed(err) || strings.Contains(msg, "newer than this binary")
}

// gatedWriter is the ingestor's writer: until the schema is ready an insert
// fails like an outage (retried, nothing committed).
type gatedWriter struct {
	*store.Writer
	gate *storeGate
}

func (w gatedWriter) Insert(ctx context.Context, parts []*store.Batch) error {
	if err := w.gate.check(); err != nil {
		return err
	}
	return w.Writer.Insert(ctx, parts)
}

func (w gatedWriter) DatasetOwners(ctx context.Context) (map[string]store.Claim, error) {
	if err := w.gate.check(); err != nil {
		return nil, err
	}
	return w.Writer.DatasetOwners(ctx)
}
