// Package ingest is the ingestor: one consumer-group loop that polls the
// inbound topics, decodes, validates, authorises and normalises records on
// all cores, batches rows by size and time, inserts them into ClickHouse,
// and only then commits the offsets. Whatever it cannot take goes to the
// dead-letter topic with the reason. It does not score, and it never
// commits an offset whose record is not stored or dead-lettered.
//
// What it buffers belongs to the group generation it was polled in: a
// revoke flushes it within a bound or drops it, a lost partition drops it,
// and dropped data is fetched again from the last commit. A slow or absent
// ClickHouse pauses fetching; it never blocks the loop that keeps the
// member in its group.
package ingest

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Config of the ingest loop. Connection settings live in kafka.Config and
// store.Config.
type Config struct {
	// Group is the Kafka consumer group shared by all ingestor replicas.
	Group string
	// BatchRows flushes when this many rows (and dead letters) are buffered;
	// with a flush in flight, fetching pauses at this size, so the batch
	// being stored and the one filling are held together.
	BatchRows int
	// BatchBytes flushes when the records behind the buffered rows are this
	// large, whatever their row count.
	BatchBytes int
	// FlushInterval flushes a non-empty buffer at least this often; it bounds
	// the event-to-queryable latency.
	FlushInterval time.Duration
	// MaxPollRecords caps one poll, so one poll's decoding stays short.
	MaxPollRecords int
	// Workers decode in parallel; 0 means one per CPU.
	Workers int
	// OwnersRefresh reloads dataset ownership stored by other replicas.
	OwnersRefresh time.Duration
	// ShutdownGrace bounds a SIGTERM: finishing the batch in flight and
	// leaving the group. What is not stored by then is left uncommitted.
	ShutdownGrace time.Duration
	// SessionTimeout is how long the group waits for a silent replica (one
	// that crashed without leaving) before giving its partitions to others.
	SessionTimeout time.Duration
	// InstanceID, when set, makes the replica a static group member (KIP-345):
	// restarted within the session timeout under the same id (a StatefulSet
	// pod name), it takes its partitions back without a rebalance.
	InstanceID string
	// RevokeGrace bounds how long a rebalance may wait for this replica to
	// store and commit what it buffered; past it the buffer is dropped,
	// uncommitted, and the partitions' new owner reads it again.
	RevokeGrace time.Duration
	// StallTimeout: /healthz fails when the replica has committed nothing
	// for this long while its partitions have lag.
	StallTimeout time.Duration
	// DeadLetterMaxBytes bounds a dead letter; a larger record's value is
	// truncated (its size and SHA-256 go into headers).
	DeadLetterMaxBytes int
	// MaxRecordBytes refuses larger records before decoding them.
	MaxRecordBytes int
	// Limits bound each event (time window, URN and list sizes).
	Limits events.Limits
	// OpenLineageNamespaces gives OpenLineage jobs to domains by namespace:
	// "pattern=domain,…", '*' any characters, first match wins; a job no
	// rule matches belongs to the emitter.
	OpenLineageNamespaces string
}

// RegisterFlags adds the ingest flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := events.DefaultLimits()
	fs.StringVar(&c.Group, "group", "meshpulse-ingestor", "Kafka consumer group (env MESHPULSE_GROUP)")
	fs.IntVar(&c.BatchRows, "batch-rows", 30_000, "flush after this many buffered rows (env MESHPULSE_BATCH_ROWS)")
	fs.IntVar(&c.BatchBytes, "batch-bytes", 8<<20, "flush after this many bytes of buffered records (env MESHPULSE_BATCH_BYTES)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", 500*time.Millisecond, "flush a non-empty buffer at least this often (env MESHPULSE_FLUSH_INTERVAL)")
	fs.IntVar(&c.MaxPollRecords, "max-poll-records", 5_000, "records per poll at most (env MESHPULSE_MAX_POLL_RECORDS)")
	fs.IntVar(&c.Workers, "workers", 0, "decode goroutines, 0 for one per CPU (env MESHPULSE_WORKERS)")
	fs.DurationVar(&c.OwnersRefresh, "owners-refresh", 10*time.Second, "reload dataset ownership from ClickHouse this often (env MESHPULSE_OWNERS_REFRESH)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "time to finish the batch in flight and leave the group at shutdown (env MESHPULSE_SHUTDOWN_GRACE)")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 10*time.Second, "group session timeout: how soon a crashed replica's partitions move (env MESHPULSE_SESSION_TIMEOUT)")
	fs.StringVar(&c.InstanceID, "instance-id", "", "static group membership id, stable across restarts (e.g. the StatefulSet pod name); empty for dynamic membership (env MESHPULSE_INSTANCE_ID)")
	fs.DurationVar(&c.RevokeGrace, "revoke-grace", 5*time.Second, "time a rebalance waits for this replica to store and commit its buffer (env MESHPULSE_REVOKE_GRACE)")
	fs.DurationVar(&c.StallTimeout, "stall-timeout", time.Minute, "/healthz fails after this long without progress while there is lag (env MESHPULSE_STALL_TIMEOUT)")
	fs.IntVar(&c.DeadLetterMaxBytes, "dead-letter-max-bytes", 512<<10, "dead letters larger than this keep a truncated value (env MESHPULSE_DEAD_LETTER_MAX_BYTES)")
	fs.IntVar(&c.MaxRecordBytes, "max-record-bytes", 1<<20, "records larger than this are dead-lettered unread (env MESHPULSE_MAX_RECORD_BYTES)")
	fs.DurationVar(&c.Limits.EventTimePast, "event-time-past", d.EventTimePast, "oldest accepted event_time, before now (env MESHPULSE_EVENT_TIME_PAST)")
	fs.DurationVar(&c.Limits.EventTimeFuture, "event-time-future", d.EventTimeFuture, "newest accepted event_time, after now (env MESHPULSE_EVENT_TIME_FUTURE)")
	fs.IntVar(&c.Limits.MaxURNBytes, "max-urn-bytes", d.MaxURNBytes, "longest accepted URN (env MESHPULSE_MAX_URN_BYTES)")
	fs.IntVar(&c.Limits.MaxTextBytes, "max-text-bytes", d.MaxTextBytes, "longest accepted free text: descriptions, messages (env MESHPULSE_MAX_TEXT_BYTES)")
	fs.IntVar(&c.Limits.MaxListLen, "max-list-len", d.MaxListLen, "longest accepted list: outputs, inputs, fields, tags (env MESHPULSE_MAX_LIST_LEN)")
	fs.StringVar(&c.OpenLineageNamespaces, "openlineage-namespaces", "", "OpenLineage job namespace rules pattern=domain,… ('*' any characters; unmatched: the emitter's domain) (env MESHPULSE_OPENLINEAGE_NAMESPACES)")
	fs.IntVar(&c.Limits.MaxLineageEdges, "max-lineage-edges", d.MaxLineageEdges, "most edges one run may create: inputs × outputs, column lineage (env MESHPULSE_MAX_LINEAGE_EDGES)")
}

// Defaults returns the flag defaults, for programs that build a Config in code.
func Defaults() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// Errors returned by Validate.
var (
	ErrNoGroup     = errors.New("consumer group is required")
	ErrBatchRows   = errors.New("batch rows, batch bytes and max poll records must be positive")
	ErrIntervals   = errors.New("flush interval, owners refresh, shutdown grace, revoke grace, stall timeout and session timeout must be positive")
	ErrSession     = errors.New("session timeout must be within the brokers' default bounds [6s, 30m]")
	ErrWorkers     = errors.New("workers must not be negative")
	ErrRecordBytes = errors.New("dead-letter max bytes must be at least 4 KiB and max record bytes positive")
)

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, ErrNoGroup)
	}
	if c.BatchRows <= 0 || c.MaxPollRecords <= 0 || c.BatchBytes <= 0 {
		errs = append(errs, fmt.Errorf("%w: got %d, %d and %d", ErrBatchRows, c.BatchRows, c.MaxPollRecords, c.BatchBytes))
	}
	if c.FlushInterval <= 0 || c.OwnersRefresh <= 0 || c.ShutdownGrace <= 0 || c.SessionTimeout <= 0 || c.RevokeGrace <= 0 || c.StallTimeout <= 0 {
		errs = append(errs, ErrIntervals)
	} else if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		errs = append(errs, fmt.Errorf("%w: got %s", ErrSession, c.SessionTimeout))
	}
	if c.Workers < 0 {
		errs = append(errs, ErrWorkers)
	}
	if c.DeadLetterMaxBytes < 4<<10 || c.MaxRecordBytes <= 0 {
		errs = append(errs, ErrRecordBytes)
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := openlineage.ParseNamespaceRules(c.OpenLineageNamespaces); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// heartbeat is a tenth of the session: a crashed replica is noticed within
// the session timeout, a live one survives a few lost heartbeats.
func (c *Config) heartbeat() time.Duration { return max(c.SessionTimeout/10, 500*time.Millisecond) }

// fetchPartitionBytes is the most one fetch reads of a partition: the
// largest record accepted and its batch overhead, at least franz-go's 1 MiB.
func (c *Config) fetchPartitionBytes() int32 {
	return max(int32(c.MaxRecordBytes)+(64<<10), 1<<20)
}
