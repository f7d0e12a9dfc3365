// Package store is meshpulse's ClickHouse side: connection, embedded
// migrations, the columnar batches the ingestor fills, and their inserts.
// Table names are constants here and never come from input. It knows
// nothing about Kafka.
package store

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says how to reach ClickHouse.
type Config struct {
	Addr     string // host:port of the native protocol
	Database string // created by Migrate when missing
	User     string
	Password string // never logged
	TLS      bool
	// Cluster names the ClickHouse cluster whose clustered schema (replicated
	// tables, Distributed tables over them) is migrated ON CLUSTER; empty
	// for a single server. Reading and writing are the same either way.
	Cluster string
}

// RegisterFlags adds the ClickHouse flags with the given prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "clickhouse", "", "ClickHouse native address host:port, or several comma-separated (a cluster's servers: the first that answers is used) (env MESHPULSE_CLICKHOUSE)")
	fs.StringVar(&c.Database, "clickhouse-database", "meshpulse", "ClickHouse database (env MESHPULSE_CLICKHOUSE_DATABASE)")
	fs.StringVar(&c.User, "clickhouse-user", "default", "ClickHouse user (env MESHPULSE_CLICKHOUSE_USER)")
	fs.StringVar(&c.Password, "clickhouse-password", "", "ClickHouse password (env MESHPULSE_CLICKHOUSE_PASSWORD)")
	fs.BoolVar(&c.TLS, "clickhouse-tls", false, "use TLS to ClickHouse (env MESHPULSE_CLICKHOUSE_TLS)")
	fs.StringVar(&c.Cluster, "clickhouse-cluster", "", "ClickHouse cluster (remote_servers) for the clustered schema: replicated tables and Distributed tables over them, migrated ON CLUSTER; empty for one server (env MESHPULSE_CLICKHOUSE_CLUSTER)")
}

var databasePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Errors returned by Validate.
var (
	ErrNoAddr      = errors.New("clickhouse address is required")
	ErrBadDatabase = errors.New("clickhouse database must be an identifier ([a-zA-Z_][a-zA-Z0-9_]*)")
)

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, ErrNoAddr)
	}
	if !databasePattern.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("%w: got %q", ErrBadDatabase, c.Database))
	}
	if c.Cluster != "" && !clusterPattern.MatchString(c.Cluster) {
		errs = append(errs, fmt.Errorf("clickhouse cluster must be an identifier: got %q", c.Cluster))
	}
	return errors.Join(errs...)
}

// Open connects with the native protocol and pings. The session's default
// database is "default", since c.Database may not exist before Migrate;
// meshpulse's own queries name their database.
func Open(ctx context.Context, c Config) (driver.Conn, error) { return open(ctx, c, "default") }

// OpenInDatabase connects with c.Database as the session's default database,
// as an analyst's client would (unqualified table names).
func OpenInDatabase(ctx context.Context, c Config) (driver.Conn, error) {
	return open(ctx, c, c.Database)
}

// Connect opens a connection pool without waiting for the server: the
// first query connects.
func Connect(c Config) (driver.Conn, error) { return connect(c, "default") }

// AuthFailed reports whether ClickHouse refused the credentials.
func AuthFailed(err error) bool {
	var exc *clickhouse.Exception
	// 192 UNKNOWN_USER, 193 WRONG_PASSWORD, 194 REQUIRED_PASSWORD, 516 AUTHENTICATION_FAILED
	return errors.As(err, &exc) && (exc.Code == 192 || exc.Code == 193 || exc.Code == 194 || exc.Code == 516)
}

func open(ctx context.Context, c Config, database string) (driver.Conn, error) {
	conn, err := connect(c, database)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", c.Addr, err)
	}
	return conn, nil
}

// Addrs lists the servers of Addr, comma-separated with or without
// spaces ("a:9000, b:9000").
func (c Config) Addrs() []string {
	var out []string
	for _, a := range strings.Split(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func connect(c Config, database string) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Addr:             c.Addrs(), // several: the first that answers
		Auth:             clickhouse.Auth{Database: database, Username: c.User, Password: c.Password},
		DialTimeout:      5 * time.Second,
		MaxOpenConns:     8,
		MaxIdleConns:     4,
		ConnMaxLifetime:  time.Hour,
		Compression:      &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		ReadTimeout:      5 * time.Minute,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	}
	if c.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.Cluster != "" {
		// An INSERT into a Distributed table returns once every shard has
		// the rows (one replica each; replication copies them on), not once
		// they are queued on the server asked: the ingestor commits offsets
		// after its inserts, so a queue lost with that server would lose them.
		opts.Settings = clickhouse.Settings{"insert_distributed_sync": 1}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", c.Addr, err)
	}
	return conn, nil
}
