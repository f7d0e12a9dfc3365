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

func writeTable(ctx context.Context, conn driver.Conn, db, table string, rows []scoreRow) error {
	{
		b, err := conn.PrepareBatch(ctx, fmt.Sprintf(table, db))
		if err != nil {
			return fmt.Errorf("prepare score insert: %w", err)
		}
		for _, r := range rows {
			v := r.v
			var names, details []string
			var scores, weights []float64
			for _, c := range v.partial.Components {
				names = append(names, c.Name)
				scores = append(scores, c.Score)
				weights = append(weights, c.Weight)
				details = append(details, c.Detail)
			}
			var cProducts, cBands, cSignals []string
			var cHops []uint16
			for _, c := range v.causes {
				cProducts = append(cProducts, c.ProductURN)
				cHops = append(cHops, uint16(min(c.Hops, 65535)))
				cBands = append(cBands, c.HealthBand)
				cSignals = append(cSignals, strings.Join(c.Signals, "; "))
			}
			var health, trust, ownTrust *float64
			if v.healthKnown {
				health, trust, ownTrust = ptr(v.health), ptr(v.trust), ptr(v.ownTrust)
			}
			args := []any{v.product, v.domain, r.at.Truncate(time.Second), r.at.UnixMilli(), health, trust, v.healthBand, v.trustBand,
				nonNil(names), scores, weights, nonNil(details), nonNil(v.reasons), nonNil(v.partial.Violations), v.cause,
				nonNil(cProducts), cHops, nonNil(cBands), nonNil(cSignals)}
			if table == insertCurrent {
				args = append(args, ownTrust, nonNil(v.partial.Problems))
			} else {
				args = append(args, r.kind)
			}
			if err := b.Append(args...); err != nil {
				_ = b.Abort()
				return fmt.Errorf("append score of %s: %w", v.product, err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("insert %d scores: %w", len(rows), err)
		}
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
