package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one numbered SQL file.
type Migration struct {
	Version    int
	Name       string
	Statements []string // {db} already replaced
}

// Migrations returns the embedded migrations for database db, in order.
func Migrations(db string) ([]Migration, error) {
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Migration
	for _, f := range files {
		base := strings.TrimSuffix(strings.TrimPrefix(f, "migrations/"), ".sql")
		num, name, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", f)
		}
		text, err := migrationFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, Statements: splitStatements(strings.ReplaceAll(string(text), "{db}", db))})
	}
	return out, nil
}

// splitStatements splits on semicolons at line ends and drops comment lines.
func splitStatements(sql string) []string {
	var (
		stmts []string
		cur   strings.Builder
	)
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// Migrate creates the database and applies every migration not applied yet.
// Every statement is idempotent (IF NOT EXISTS), so a migration interrupted
// half-way, or run by two processes at once, is safe to run again. It refuses
// to touch a database whose schema is newer than this binary knows.
func Migrate(ctx context.Context, conn driver.Conn, db string) (applied []int, err error) {
	return migrateUpTo(ctx, conn, db, "", 1<<30)
}

// MigrateCluster is Migrate for the clustered schema of a ClickHouse
// cluster (cluster.go): every statement runs ON CLUSTER, from the server
// conn is connected to.
func MigrateCluster(ctx context.Context, conn driver.Conn, db, cluster string) (applied []int, err error) {
	return migrateUpTo(ctx, conn, db, cluster, 1<<30)
}

// MigrateFor migrates the schema c names: clustered when c.Cluster is set.
func MigrateFor(ctx context.Context, conn driver.Conn, c Config) ([]int, error) {
	return migrateUpTo(ctx, conn, c.Database, c.Cluster, 1<<30)
}

// migrateUpTo applies the migrations up to a version (tests replay
// upgrades), for a single server or, with cluster, a cluster.
func migrateUpTo(ctx context.Context, conn driver.Conn, db, cluster string, upTo int) (applied []int, err error) {
	if !databasePattern.MatchString(db) {
		return nil, fmt.Errorf("%w: got %q", ErrBadDatabase, db)
	}
	migs, err := Migrations(db)
	preamble := []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree() ORDER BY version",
	}
	if cluster != "" {
		migs, err = ClusterMigrations(db, cluster)
		// One replicated table on every server of the cluster, so any of
		// them answers which migrations ran.
		preamble = []string{
			"CREATE DATABASE IF NOT EXISTS " + db + " ON CLUSTER " + cluster,
			"CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations ON CLUSTER " + cluster +
				" (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/" + db + "/schema_migrations', '{replica}') ORDER BY version",
		}
	}
	if err != nil {
		return nil, err
	}
	for _, q := range preamble {
		if err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", q, err)
		}
	}
	done, err := AppliedVersions(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	latest := migs[len(migs)-1].Version
	for v := range done {
		if v > latest {
			return nil, fmt.Errorf("database %s has schema version %d, newer than this binary's %d: upgrade meshpulse", db, v, latest)
		}
	}
	for _, m := range migs {
		if done[m.Version] || m.Version > upTo {
			continue
		}
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigration(ctx, conn, db, m); err != nil {
			return applied, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// DDLRefused reports whether ClickHouse refused a schema change because
// the user may not run DDL (readonly, or allow_ddl = 0).
func DDLRefused(err error) bool {
	var exc *clickhouse.Exception
	if !errors.As(err, &exc) {
		return false
	}
	// 164 READONLY; 392 QUERY_IS_PROHIBITED (allow_ddl = 0); 497 ACCESS_DENIED
	return exc.Code == 164 || exc.Code == 392 || exc.Code == 497
}

// AppliedVersions reads which migrations a database has.
func AppliedVersions(ctx context.Context, conn driver.Conn, db string) (map[int]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	defer rows.Close()
	done := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		done[int(v)] = true
	}
	return done, rows.Err()
}

// recordMigration uses a prepared batch: an INSERT ... VALUES with bound
// parameters does not complete against ClickHouse 18.16.
func recordMigration(ctx context.Context, conn driver.Conn, db string, m Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// CheckSchema verifies, without changing anything, that db has exactly the
// migrations this binary knows: for services whose user may not run DDL.
func CheckSchema(ctx context.Context, conn driver.Conn, db string) error {
	migs, err := Migrations(db)
	if err != nil {
		return err
	}
	done, err := AppliedVersions(ctx, conn, db)
	if err != nil {
		return fmt.Errorf("%w (run meshpulse migrate first)", err)
	}
	latest := migs[len(migs)-1].Version
	for v := range done {
		if v > latest {
			return fmt.Errorf("database %s has schema version %d, newer than this binary's %d: upgrade meshpulse", db, v, latest)
		}
	}
	for _, m := range migs {
		if !done[m.Version] {
			return fmt.Errorf("database %s lacks migration %04d_%s: run meshpulse migrate", db, m.Version, m.Name)
		}
	}
	return nil
}
