// Package ingest is the ingestor: one consumer-group loop that polls the
// inbound topics, decodes, validates, authorises and normalises records on
// all cores, batches rows by size and time, inserts them into ClickHouse,
// and only then commits the offsets. Whatever it cannot take goes to the
// dead-letter topic with the reason. It does not score, and it never
// commits an offset whose record is not stored or dead-lettered.
package ingest

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"time"
)

// Config of the ingest loop. Connection settings live in kafka.Config and
// store.Config.
type Config struct {
	// Group is the Kafka consumer group shared by all ingestor replicas.
	Group string
	// BatchRows flushes when this many rows (and dead letters) are buffered.
	BatchRows int
	// FlushInterval flushes a non-empty buffer at least this often; it bounds
	// the event-to-queryable latency.
	FlushInterval time.Duration
	// MaxPollRecords caps one poll, so one poll's decoding stays short.
	MaxPollRecords int
	// Workers decode in parallel; 0 means one per CPU.
	Workers int
	// OwnersRefresh reloads dataset ownership written by other replicas.
	OwnersRefresh time.Duration
	// ShutdownGrace is how long a stopping ingestor may spend finishing the
	// batch in flight before abandoning it (uncommitted).
	ShutdownGrace time.Duration
	// SessionTimeout is how long the group waits for a silent replica (one
	// that crashed without leaving) before giving its partitions to others.
	SessionTimeout time.Duration
}

// RegisterFlags adds the ingest flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Group, "group", "meshpulse-ingestor", "Kafka consumer group (env MESHPULSE_GROUP)")
	fs.IntVar(&c.BatchRows, "batch-rows", 30_000, "flush after this many buffered rows (env MESHPULSE_BATCH_ROWS)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", 500*time.Millisecond, "flush a non-empty buffer at least this often (env MESHPULSE_FLUSH_INTERVAL)")
	fs.IntVar(&c.MaxPollRecords, "max-poll-records", 5_000, "records per poll at most (env MESHPULSE_MAX_POLL_RECORDS)")
	fs.IntVar(&c.Workers, "workers", 0, "decode goroutines, 0 for one per CPU (env MESHPULSE_WORKERS)")
	fs.DurationVar(&c.OwnersRefresh, "owners-refresh", 30*time.Second, "reload dataset ownership from ClickHouse this often (env MESHPULSE_OWNERS_REFRESH)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "time to finish the batch in flight at shutdown (env MESHPULSE_SHUTDOWN_GRACE)")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 45*time.Second, "group session timeout: how soon a crashed replica's partitions move (env MESHPULSE_SESSION_TIMEOUT)")
}

// Defaults returns the flag defaults, for programs that build a Config in code.
func Defaults() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// Errors returned by Validate.
var (
	ErrNoGroup   = errors.New("consumer group is required")
	ErrBatchRows = errors.New("batch rows and max poll records must be positive")
	ErrIntervals = errors.New("flush interval, owners refresh, shutdown grace and session timeout must be positive")
	ErrWorkers   = errors.New("workers must not be negative")
)

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, ErrNoGroup)
	}
	if c.BatchRows <= 0 || c.MaxPollRecords <= 0 {
		errs = append(errs, fmt.Errorf("%w: got %d and %d", ErrBatchRows, c.BatchRows, c.MaxPollRecords))
	}
	if c.FlushInterval <= 0 || c.OwnersRefresh <= 0 || c.ShutdownGrace <= 0 || c.SessionTimeout <= 0 {
		errs = append(errs, ErrIntervals)
	}
	if c.Workers < 0 {
		errs = append(errs, ErrWorkers)
	}
	return errors.Join(errs...)
}

func (c *Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}
