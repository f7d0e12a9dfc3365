package scorer

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the scorer, registered on the registry passed in.
type Metrics struct {
	passSeconds *prometheus.HistogramVec // by pass (full, incremental)
	scored      *prometheus.CounterVec
	alerts      prometheus.Counter
	errors      prometheus.Counter
	foreign     prometheus.Counter
}

// NewMetrics registers the scorer metrics on reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		passSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "meshpulse_scorer_pass_seconds", Help: "Duration of a scoring pass, by kind (full, incremental).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"pass"}),
		scored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshpulse_scorer_products_scored_total", Help: "Product scores written (they changed, or the daily snapshot), by pass.",
		}, []string{"pass"}),
		alerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshpulse_scorer_alerts_total", Help: "ScoreChanged events published.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshpulse_scorer_tick_errors_total", Help: "Ticks that failed and were retried.",
		}),
		foreign: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshpulse_scorer_foreign_groups_total", Help: "Other scorer groups seen publishing to mesh.scores (each doubles every alert).",
		}),
	}
	reg.MustRegister(m.passSeconds, m.scored, m.alerts, m.errors, m.foreign)
	return m
}
