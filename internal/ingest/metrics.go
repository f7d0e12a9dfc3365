package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the ingest loop, registered on the registry passed in.
type Metrics struct {
	records       *prometheus.CounterVec // by family and outcome
	deadLetters   *prometheus.CounterVec // by reason
	flushRows     prometheus.Histogram
	insertSeconds prometheus.Histogram
	flushErrors   *prometheus.CounterVec // by stage
	committed     *prometheus.GaugeVec   // next offset committed, by topic and partition
	lag           *prometheus.GaugeVec   // records between the committed offset and the end
	paused        prometheus.Gauge       // 1 while fetching is paused for a slow sink
}

// NewMetrics registers the ingest metrics on reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshpulse_ingest_records_total", Help: "Records handled, by family and outcome (stored, dead_letter).",
		}, []string{"family", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshpulse_ingest_dead_letters_total", Help: "Records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		flushRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "meshpulse_ingest_flush_records", Help: "Records per flush.",
			Buckets: prometheus.ExponentialBuckets(10, 4, 8),
		}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "meshpulse_ingest_insert_seconds", Help: "Time to insert one flush into ClickHouse, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		flushErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshpulse_ingest_flush_errors_total", Help: "Failed attempts while flushing, by stage (dead_letter, insert, commit).",
		}, []string{"stage"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshpulse_ingest_committed_offset", Help: "Next offset committed, by topic and partition.",
		}, []string{"topic", "partition"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshpulse_ingest_consumer_lag", Help: "Records between the group's committed offset and the end of each partition this replica holds.",
		}, []string{"topic", "partition"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshpulse_ingest_fetch_paused", Help: "1 while fetching is paused because the buffer is full and a flush is in flight.",
		}),
	}
	reg.MustRegister(m.records, m.deadLetters, m.flushRows, m.insertSeconds, m.flushErrors, m.committed, m.lag, m.paused)
	return m
}

func partitionLabel(p int32) string { return strconv.Itoa(int(p)) }
