package scorer

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshpulse/meshpulse/internal/score"
)

type historyRow struct {
	product, domain string
	at              time.Time
	r               *result
	partial         score.Partial
}

const insertHistory = `INSERT INTO %s.product_scores (product_urn, domain, computed_at, computed_at_ms, health, trust,
 health_band, trust_band, component_names, component_scores, component_weights, component_details, reasons, violations, cause)`

// writeHistory stores every computed score.
func writeHistory(ctx context.Context, conn driver.Conn, db string, rows []historyRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf(insertHistory, db))
	if err != nil {
		return fmt.Errorf("prepare score history: %w", err)
	}
	for _, h := range rows {
		var names, details []string
		var scores, weights []float64
		for _, c := range h.partial.Components {
			names = append(names, c.Name)
			scores = append(scores, c.Score)
			weights = append(weights, c.Weight)
			details = append(details, c.Detail)
		}
		reasons := h.r.reasons
		if reasons == nil {
			reasons = []string{}
		}
		violations := h.partial.Violations
		if violations == nil {
			violations = []string{}
		}
		cause := ""
		if len(reasons) > 0 {
			cause = reasons[0]
		}
		if err := b.Append(h.product, h.domain, h.at.Truncate(time.Second), h.at.UnixMilli(), h.r.health, h.r.trust,
			h.r.healthBand, h.r.trustBand, names, scores, weights, details, reasons, violations, cause); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append score of %s: %w", h.product, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d scores: %w", len(rows), err)
	}
	return nil
}
