package replica

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgqgo/pgqgo/pgq"
)

// Metrics are the worker's Prometheus metrics.
type Metrics struct {
	batches, events, skipped *prometheus.CounterVec
	errors                   prometheus.Counter
	lag                      prometheus.Gauge
	lastTick                 prometheus.Gauge
	batchSize                prometheus.Histogram
	tables                   *prometheus.GaugeVec
	copyRows, copyBytes      *prometheus.CounterVec
	rows                     *prometheus.CounterVec
	paused                   prometheus.Gauge
	ticksMirrored            prometheus.Counter
	branchEvents             prometheus.Counter
	node                     *prometheus.GaugeVec
}

// NewMetrics makes the metrics and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_londiste_batches_total",
			Help: "Batches applied, by consumer kind (main or copy)."}, []string{"kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_londiste_events_total",
			Help: "Events read from the provider, by consumer kind."}, []string{"kind"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_londiste_events_skipped_total",
			Help: "Events read and not applied, by consumer kind and reason: other_table (not replicated here, or not this copy's) or in_copy (a table being copied, or rows its copy has)."}, []string{"kind", "reason"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgqgo_londiste_errors_total",
			Help: "Failed batches."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgqgo_londiste_lag_seconds",
			Help: "Age of the last applied batch's end tick when it was opened."}),
		lastTick: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgqgo_londiste_last_tick",
			Help: "The last tick applied by the main worker."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgqgo_londiste_batch_events",
			Help: "Events per applied batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		tables: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_londiste_tables",
			Help: "Local tables by copy state."}, []string{"state"}),
		copyRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_londiste_copy_rows_total",
			Help: "Rows copied, by table."}, []string{"table"}),
		copyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_londiste_copy_bytes_total",
			Help: "Bytes copied (COPY text), by table."}, []string{"table"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_londiste_row_events_applied_total",
			Help: "Row events applied, by path: statement (one per event) or bulk (net change per key)."}, []string{"path"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgqgo_londiste_paused",
			Help: "1 while the worker is paused."}),
		ticksMirrored: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgqgo_londiste_branch_ticks_total",
			Help: "The provider's ticks recorded in this branch's queue."}),
		branchEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgqgo_londiste_branch_events_total",
			Help: "The provider's events copied into this branch's queue."}),
		node: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_londiste_node_info",
			Help: "1 for the worker's node as it runs now: queue, node name, type (root, branch, leaf) and provider (join other series on it)."},
			[]string{"queue", "node", "type", "provider"}),
	}
	if reg != nil {
		reg.MustRegister(m.batches, m.events, m.skipped, m.errors, m.lag, m.lastTick, m.batchSize, m.tables,
			m.copyRows, m.copyBytes, m.rows, m.paused, m.ticksMirrored, m.branchEvents, m.node)
	}
	return m
}

func (m *Metrics) batch(copy bool, events, otherTable, inCopy int64, b *pgq.Batch) {
	kind := "main"
	if copy {
		kind = "copy"
	}
	m.batches.WithLabelValues(kind).Inc()
	m.events.WithLabelValues(kind).Add(float64(events))
	m.skipped.WithLabelValues(kind, "other_table").Add(float64(otherTable))
	m.skipped.WithLabelValues(kind, "in_copy").Add(float64(inCopy))
	if !copy {
		m.batchSize.Observe(float64(events))
		m.lag.Set(time.Since(b.TickTime).Seconds())
		m.lastTick.Set(float64(b.TickID))
	}
}

func (m *Metrics) observeTables(tables []Table) {
	counts := map[string]float64{"missing": 0, "in-copy": 0, "catching-up": 0, "wanna-sync": 0, "do-sync": 0, "ok": 0}
	for _, t := range tables {
		if !t.Local {
			continue
		}
		s := t.MergeState
		switch {
		case s == "":
			s = "missing"
		case s == "?":
			s = "ok"
		default:
			if i := len(s); i > 0 {
				for j := range s {
					if s[j] == ':' {
						s = s[:j]
						break
					}
				}
			}
		}
		counts[s]++
	}
	for s, n := range counts {
		m.tables.WithLabelValues(s).Set(n)
	}
}

// setNode records the node the worker runs as (after a takeover or a
// change of provider, the new one only).
func (m *Metrics) setNode(queue, node, typ, provider string) {
	m.node.Reset()
	m.node.WithLabelValues(queue, node, typ, provider).Set(1)
}
