package store

import (
	"fmt"
	"regexp"
	"strings"
)

// The clustered schema (meshpulse migrate -cluster NAME). Every table of
// the single-server schema becomes two on each server of the cluster:
//
//   - <table>_local, the same table as Replicated*MergeTree, its replicas
//     coordinated by ZooKeeper under /clickhouse/tables/{shard}/<db>/<table>;
//   - <table>, a Distributed table over the <table>_local of every shard,
//     with the name the services and analysts already use.
//
// The sharding key is a hash of the table's sorting key. The sorting key
// of every table ends in the event's identity (or is the identity of the
// current state), so every copy of one event, a replay included, lands on
// the same shard, where ReplacingMergeTree collapses it as on one server;
// and reading through FINAL, each shard collapses its own rows.
//
// Views are created on every server over the Distributed tables. The one
// materialized view reads the shard's local usage_events_local and writes
// its shard's usage_consumers_daily_local: a materialized view fires where
// the insert happens, and the replicated target copies the states to the
// other replicas. Backfills (INSERT … SELECT) run once, through the
// Distributed tables.
//
// The servers need, in their configuration, the cluster in remote_servers
// with internal_replication, the macros {shard} and {replica} (the replica
// name unique in the whole cluster: schema_migrations is one replicated
// table across all servers), ZooKeeper and distributed_ddl
// (scripts/clickhouse-cluster writes such a configuration; deployments/
// clickhouse-cluster.md for production).

var (
	clusterPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	createTableRE  = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) (\(.*\))\s*ENGINE = (\w+)MergeTree\(([^)]*)\)(.*)$`)
	orderByRE      = regexp.MustCompile(`(?s)ORDER BY (\([^)]*\)|\w+)`)
	createViewRE   = regexp.MustCompile(`(?s)^CREATE VIEW IF NOT EXISTS (\w+)\.(\w+) AS(.*)$`)
	createMatRE    = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) TO (\w+)\.(\w+) AS(.*)$`)
	dropRE         = regexp.MustCompile(`^DROP (TABLE|VIEW) IF EXISTS (\w+)\.(\w+)$`)
	insertRE       = regexp.MustCompile(`^INSERT INTO `)
)

// LocalSuffix names a table's shard-local part in a clustered schema.
const LocalSuffix = "_local"

// clusterRewriter turns the single-server statements into clustered ones,
// statement by statement, in migration order (it remembers which names are
// tables, so that dropping one drops its local part too).
type clusterRewriter struct {
	cluster string
	tables  map[string]bool
}

func newClusterRewriter(cluster string) (*clusterRewriter, error) {
	if !clusterPattern.MatchString(cluster) {
		return nil, fmt.Errorf("cluster name %q: letters, digits and _ only", cluster)
	}
	return &clusterRewriter{cluster: cluster, tables: map[string]bool{}}, nil
}

// rewrite returns the clustered statements for one statement.
func (c *clusterRewriter) rewrite(stmt string) ([]string, error) {
	on := " ON CLUSTER " + c.cluster
	if m := createTableRE.FindStringSubmatch(stmt); m != nil {
		db, table, columns, kind, args, rest := m[1], m[2], m[3], m[4], strings.TrimSpace(m[5]), m[6]
		order := orderByRE.FindStringSubmatch(rest)
		if order == nil {
			return nil, fmt.Errorf("table %s has no ORDER BY to shard by", table)
		}
		key := strings.TrimSuffix(strings.TrimPrefix(order[1], "("), ")")
		engineArgs := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", db, table+LocalSuffix)
		if args != "" {
			engineArgs += ", " + args
		}
		c.tables[table] = true
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s %s\nENGINE = Replicated%sMergeTree(%s)%s", db, table+LocalSuffix, on, columns, kind, engineArgs, rest),
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s\nENGINE = Distributed(%s, %s, %s, cityHash64(%s))", db, table, on, db, table+LocalSuffix, c.cluster, db, table+LocalSuffix, key),
		}, nil
	}
	if m := createMatRE.FindStringSubmatch(stmt); m != nil {
		db, view, toDB, to, query := m[1], m[2], m[3], m[4], m[5]
		// The view reads the shard's own inserts: its source and target are
		// the local tables.
		for t := range c.tables {
			query = regexp.MustCompile(`\b`+regexp.QuoteMeta(db+"."+t)+`\b`).ReplaceAllString(query, db+"."+t+LocalSuffix)
		}
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s AS%s", db, view, on, toDB, to+LocalSuffix, query)}, nil
	}
	if m := createViewRE.FindStringSubmatch(stmt); m != nil {
		return []string{fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s%s AS%s", m[1], m[2], on, m[3])}, nil
	}
	if m := dropRE.FindStringSubmatch(stmt); m != nil {
		kind, db, name := m[1], m[2], m[3]
		out := []string{fmt.Sprintf("DROP %s IF EXISTS %s.%s%s", kind, db, name, on)}
		if c.tables[name] {
			out = append(out, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", db, name+LocalSuffix, on))
			delete(c.tables, name)
		}
		return out, nil
	}
	if insertRE.MatchString(stmt) {
		return []string{stmt}, nil // once, through the Distributed tables
	}
	return nil, fmt.Errorf("no clustered form for: %.80s", stmt)
}

// ClusterMigrations returns the migrations for database db rewritten for
// a cluster (see the comment at the top of this file).
func ClusterMigrations(db, cluster string) ([]Migration, error) {
	migs, err := Migrations(db)
	if err != nil {
		return nil, err
	}
	rw, err := newClusterRewriter(cluster)
	if err != nil {
		return nil, err
	}
	for k, m := range migs {
		var out []string
		for _, stmt := range m.Statements {
			ss, err := rw.rewrite(stmt)
			if err != nil {
				return nil, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			out = append(out, ss...)
		}
		migs[k].Statements = out
	}
	return migs, nil
}
