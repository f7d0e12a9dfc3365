package scorer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshpulse/meshpulse/internal/store"
)

// scoreRow is one product's score as written to scores_current and, when
// it changed (or for the daily snapshot), to score_history.
type scoreRow struct {
	v    verdict
	at   time.Time
	kind string // change | snapshot
}

// fingerprint identifies what a row says, so that an unchanged score is not
// written again. Details that move with the clock (ages in reasons) are
// left out: a score is rewritten when its numbers, bands or causes change.
func (r scoreRow) fingerprint() string {
	v := r.v
	var b strings.Builder
	fmt.Fprintf(&b, "%t|%.1f|%.1f|%s|", v.healthKnown, v.health, v.ownTrust, v.healthBand)
	fmt.Fprintf(&b, "%.1f|%s|", v.trust, v.trustBand)
	for _, c := range v.causes {
		b.WriteString(c.ProductURN + "@" + strconv.Itoa(c.Hops) + ",")
	}
	return b.String()
}

// ownPart is the part of a fingerprint other replicas propagate from:
// known, health, own trust and health band.
func ownPart(fingerprint string) string {
	parts := strings.SplitN(fingerprint, "|", 5)
	if len(parts) < 4 {
		return fingerprint
	}
	return strings.Join(parts[:4], "|")
}

const scoreColumns = `product_urn, domain, computed_at, computed_at_ms, health, trust, health_band, trust_band,
 component_names, component_scores, component_weights, component_details, reasons, violations, cause,
 root_cause_products, root_cause_hops, root_cause_bands, root_cause_signals`

const (
	insertCurrent = `INSERT INTO %s.scores_current (` + scoreColumns + `, own_trust, problems)`
	insertHistory = `INSERT INTO %s.score_history (` + scoreColumns + `, kind)`
)

// writeScores stores the rows in the current scores and the history, both
// inserts at once.
func writeScores(ctx context.Context, conn driver.Conn, db string, rows []scoreRow) error {
	if len(rows) == 0 {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k, table := range []string{insertCurrent, insertHistory} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = writeTable(ctx, conn, db, table, rows)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scoreChunk bounds one INSERT: the driver keeps a connection's encode
// and compression buffers at the size of the largest block it sent, so a
// full pass's 100,000 rows go in blocks of this many.
const scoreChunk = 2_500

func writeTable(ctx context.Context, conn driver.Conn, db, table string, rows []scoreRow) error {
	for lo := 0; lo < len(rows); lo += scoreChunk {
		if err := writeChunk(ctx, conn, db, table, rows[lo:min(lo+scoreChunk, len(rows))]); err != nil {
			return err
		}
	}
	return nil
}

// scoreColumnsOf holds a chunk of score rows column by column, for the
// native protocol's columnar append.
type scoreColumnsOf struct {
	product, domain, healthBand, trustBand, cause []string
	at                                            []time.Time
	atMs                                          []int64
	health, trust, ownTrust                       []*float64
	names, details, reasons, violations, problems [][]string
	scores, weights                               [][]float64
	cProducts, cBands, cSignals                   [][]string
	cHops                                         [][]uint16
	kind                                          []string
}

func writeChunk(ctx context.Context, conn driver.Conn, db, table string, rows []scoreRow) error {
	var c scoreColumnsOf
	for _, r := range rows {
		v := r.v
		n := len(v.partial.Components)
		names, details, scores, weights := make([]string, n), make([]string, n), make([]float64, n), make([]float64, n)
		for i, comp := range v.partial.Components {
			names[i], scores[i], weights[i], details[i] = comp.Name, comp.Score, comp.Weight, comp.Detail
		}
		k := len(v.causes)
		cProducts, cBands, cSignals, cHops := make([]string, k), make([]string, k), make([]string, k), make([]uint16, k)
		for i, cause := range v.causes {
			cProducts[i], cBands[i] = cause.ProductURN, cause.HealthBand
			cHops[i] = uint16(min(cause.Hops, 65535))
			cSignals[i] = strings.Join(cause.Signals, "; ")
		}
		var health, trust, ownTrust *float64
		if v.healthKnown {
			health, trust, ownTrust = ptr(v.health), ptr(v.trust), ptr(v.ownTrust)
		}
		c.product = append(c.product, v.product)
		c.domain = append(c.domain, v.domain)
		c.at = append(c.at, r.at.Truncate(time.Second))
		c.atMs = append(c.atMs, r.at.UnixMilli())
		c.health, c.trust, c.ownTrust = append(c.health, health), append(c.trust, trust), append(c.ownTrust, ownTrust)
		c.healthBand, c.trustBand = append(c.healthBand, v.healthBand), append(c.trustBand, v.trustBand)
		c.names, c.scores, c.weights, c.details = append(c.names, names), append(c.scores, scores), append(c.weights, weights), append(c.details, details)
		c.reasons, c.violations = append(c.reasons, nonNil(v.reasons)), append(c.violations, nonNil(v.partial.Violations))
		c.cause = append(c.cause, v.cause)
		c.cProducts, c.cHops, c.cBands, c.cSignals = append(c.cProducts, cProducts), append(c.cHops, cHops), append(c.cBands, cBands), append(c.cSignals, cSignals)
		c.problems = append(c.problems, nonNil(v.partial.Problems))
		c.kind = append(c.kind, r.kind)
	}
	cols := []any{c.product, c.domain, c.at, c.atMs, c.health, c.trust, c.healthBand, c.trustBand,
		c.names, c.scores, c.weights, c.details, c.reasons, c.violations, c.cause,
		c.cProducts, c.cHops, c.cBands, c.cSignals}
	if table == insertCurrent {
		cols = append(cols, c.ownTrust, c.problems)
	} else {
		cols = append(cols, c.kind)
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf(table, db))
	if err != nil {
		return fmt.Errorf("prepare score insert: %w", err)
	}
	for i, col := range cols {
		if err := b.Column(i).Append(col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append score column %d: %w", i, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d scores: %w", len(rows), err)
	}
	return nil
}

// dropOldHistory drops the months of score history older than the
// retention (18.16 has no TTL). The replica holding partition 0 of
// mesh.scores does it, once a day. The months are found through
// score_history (on a cluster, its Distributed table: every shard's
// months) and dropped where the parts are (on a cluster, every shard's
// local table, ON CLUSTER).
func dropOldHistory(ctx context.Context, conn driver.Conn, db string, now time.Time, retention time.Duration, sh share) error {
	if !sh.parts[0] || retention <= 0 {
		return nil
	}
	table, on, err := historyTable(ctx, conn, db)
	if err != nil {
		return err
	}
	cutoff := now.Add(-retention)
	firstKept := time.Date(cutoff.Year(), cutoff.Month(), 1, 0, 0, 0, 0, time.UTC)
	rows, err := conn.Query(ctx, "SELECT DISTINCT toYYYYMM(computed_at) FROM "+db+".score_history WHERE computed_at < toDateTime(?)", firstKept.Unix())
	if err != nil {
		return fmt.Errorf("list history months: %w", err)
	}
	var drop []uint32
	for rows.Next() {
		var month uint32
		if err := rows.Scan(&month); err != nil {
			rows.Close()
			return err
		}
		drop = append(drop, month)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, month := range drop {
		if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION %d", db, table, on, month)); err != nil {
			return fmt.Errorf("drop history month %d: %w", month, err)
		}
	}
	return nil
}

// distributedOn reads the cluster out of a Distributed table's engine.
var distributedOn = regexp.MustCompile(`^Distributed\('?([A-Za-z0-9_]+)'?,`)

// historyTable names the table that holds score history's parts, and the
// ON CLUSTER clause to alter it with: score_history on one server; on a
// cluster, where score_history is a Distributed table, its local table.
func historyTable(ctx context.Context, conn driver.Conn, db string) (table, on string, err error) {
	var engine, full string
	if err := conn.QueryRow(ctx, "SELECT engine, engine_full FROM system.tables WHERE database = ? AND name = 'score_history'", db).Scan(&engine, &full); err != nil {
		return "", "", fmt.Errorf("find score history: %w", err)
	}
	if engine != "Distributed" {
		return "score_history", "", nil
	}
	m := distributedOn.FindStringSubmatch(full)
	if m == nil {
		return "", "", fmt.Errorf("score history is %q: no cluster in it", full)
	}
	return "score_history" + store.LocalSuffix, " ON CLUSTER " + m[1], nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
