package ticker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgqgo/pgqgo/statuspage"
)

// Metrics are the daemon's Prometheus metrics, on a registry of their own.
type Metrics struct {
	Registry    *prometheus.Registry
	ticks       *prometheus.CounterVec
	maint       *prometheus.CounterVec
	retries     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	active      *prometheus.GaugeVec
	queueRate   *prometheus.GaugeVec
	tickerLag   *prometheus.GaugeVec
	consumerLag *prometheus.GaugeVec
	pending     *prometheus.GaugeVec
	nodeInfo    *prometheus.GaugeVec
}

// NewMetrics registers the daemon's metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_ticker_ticks_total",
			Help: "Ticks written, by database and path (ticker: pgq.ticker(); fast: low-latency ticks)."}, []string{"database", "path"}),
		maint: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_ticker_maintenance_runs_total",
			Help: "Completed maintenance rounds (maint_operations and vacuum)."}, []string{"database"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_ticker_retry_events_total",
			Help: "Retry events moved back into their queues."}, []string{"database"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqgo_ticker_errors_total",
			Help: "Failed operations, by database and operation."}, []string{"database", "op"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_ticker_database_active",
			Help: "1 when this daemon works on the database, 0 when standby, absent or erroring."}, []string{"database"}),
		queueRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_queue_events_per_second",
			Help: "Event rate over the queue's last two ticks (pgq.get_queue_info)."}, []string{"database", "queue"}),
		tickerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_queue_ticker_lag_seconds",
			Help: "Age of the queue's last tick."}, []string{"database", "queue"}),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_consumer_lag_seconds",
			Help: "Age of the consumer's position (its last finished tick)."}, []string{"database", "queue", "consumer"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_consumer_pending_events",
			Help: "Events ticked after the consumer's position."}, []string{"database", "queue", "consumer"}),
		nodeInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqgo_queue_node_info",
			Help: "1 for each cascaded queue (pgq_node): the node the database is for it, its type (root, branch, leaf) and provider node; join on database and queue."},
			[]string{"database", "queue", "node", "type", "provider"}),
	}
	m.Registry.MustRegister(m.ticks, m.maint, m.retries, m.errors, m.active, m.queueRate, m.tickerLag, m.consumerLag, m.pending, m.nodeInfo)
	return m
}

// forget drops a database's gauges (it is gone, or about to be re-read).
func (m *Metrics) forget(db string) {
	l := prometheus.Labels{"database": db}
	m.queueRate.DeletePartialMatch(l)
	m.tickerLag.DeletePartialMatch(l)
	m.consumerLag.DeletePartialMatch(l)
	m.pending.DeletePartialMatch(l)
	m.nodeInfo.DeletePartialMatch(l)
}

// serveMetrics serves /metrics, /healthz and /debug/pprof/ on addr.
func (d *Daemon) serveMetrics(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		st := d.Statuses()
		code := http.StatusOK
		for _, s := range st {
			if s.State == "error" {
				code = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"version": Version, "databases": st})
	})
	// Go's profiler, for diagnosing the daemon itself
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	// the status page: everything else
	cfg := d.config()
	user, password, _ := statuspage.ParseAuth(cfg.StatusAuth) // checked by LoadConfig
	mux.Handle("/", statuspage.Handler(d.status, statuspage.Options{Title: "pgqgo ticker: " + clusterName(cfg.BaseConnStr)}))
	var h http.Handler = mux
	if user != "" {
		h = statuspage.BasicAuth(h, user, password)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server stopped", "err", err)
		}
	}()
	d.log.Info("serving the status page, /metrics and /healthz", "addr", ln.Addr().String())
	return srv, nil
}

// clusterName names the cluster on the status page: base_connstr's host and
// port (never its password).
func clusterName(base string) string {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// statusTargets are the databases the daemon works on, for the status page.
func (d *Daemon) statusTargets() []statuspage.Target {
	base := d.config().BaseConnStr
	var out []statuspage.Target
	for _, st := range d.Statuses() {
		if st.State != "active" && st.State != "standby" {
			continue // only pgq schemas the daemon trusts (and found)
		}
		cfg, err := pgx.ParseConfig(base)
		if err != nil {
			continue
		}
		cfg.Database = st.Database
		out = append(out, statuspage.Target{Name: st.Database, Config: cfg})
	}
	return out
}
