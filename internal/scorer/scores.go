package scorer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
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
// mesh.scores does it, once a day.
func dropOldHistory(ctx context.Context, conn driver.Conn, db string, now time.Time, retention time.Duration, sh share) error {
	if !sh.parts[0] || retention <= 0 {
		return nil
	}
	cutoff := now.Add(-retention)
	oldest := cutoff.Year()*100 + int(cutoff.Month())
	rows, err := conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = 'score_history' AND active", db)
	if err != nil {
		return fmt.Errorf("list history partitions: %w", err)
	}
	var drop []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return err
		}
		if n, err := strconv.Atoi(p); err == nil && n < oldest {
			drop = append(drop, p)
		}
	}
	rows.Close()
	for _, p := range drop {
		if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.score_history DROP PARTITION %s", db, p)); err != nil {
			return fmt.Errorf("drop history partition %s: %w", p, err)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
