// Package ticker is pgqgo's ticker daemon, a drop-in replacement for
// Skytools' pgqd: one process per cluster ticks and maintains every database
// that has a PgQ schema (pgqgo's or Skytools' C extension).
//
// Per database it runs pgq.ticker() every ticker_period, retry maintenance
// (pgq.maint_retry_events() until 0) every retry_period, and everything
// pgq.maint_operations() lists (rotation step 2 in its own transaction, then
// VACUUM of pgq.maint_tables_to_vacuum()) every maint_period. On pgqgo
// schemas it also ticks queues as soon as they have new events
// (pgq.pgqgo_ticker), polling active databases every few milliseconds, so
// consumers see events in milliseconds instead of seconds; each tick sends
// NOTIFY pgq_tick with the queue name as payload.
//
// Only one daemon works on a database at a time: each holds a session
// advisory lock per database, and a second daemon waits as a standby until
// the lock is free.
package ticker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/schema"

	"github.com/pgqgo/pgqgo/statuspage"
)

// Version is reported by `pgqgo ticker -V`.
const Version = "pgqgo ticker " + schema.Release + " (pgqd 3.5 compatible)"

// Daemon ticks and maintains the PgQ databases of one cluster.
type Daemon struct {
	log     *slog.Logger
	metrics *Metrics

	mu       sync.Mutex
	cfg      Config
	dbs      map[string]*database
	status   *statuspage.Collector // the status page's samples, when metrics_addr is set
	sem      chan struct{}
	dialSem  chan struct{} // connection set-ups in flight
	reload   chan Config
	checkNow chan struct{}
	stats    stats
}

// stats are the counters of pgqd's periodic stats line.
type stats struct {
	ticks, maint, retry int64
}

// New makes a daemon; Run starts it.
func New(cfg Config, log *slog.Logger) *Daemon {
	return &Daemon{
		log:      log,
		metrics:  NewMetrics(),
		cfg:      cfg,
		dbs:      map[string]*database{},
		sem:      make(chan struct{}, cfg.MaxParallel),
		dialSem:  make(chan struct{}, 2*cfg.MaxParallel),
		reload:   make(chan Config, 1),
		checkNow: make(chan struct{}, 1),
	}
}

// Metrics returns the daemon's Prometheus metrics.
func (d *Daemon) Metrics() *Metrics { return d.metrics }

// Reload replaces the configuration and re-reads the database list at once,
// without interrupting work in flight.
func (d *Daemon) Reload(cfg Config) {
	select {
	case <-d.reload:
	default:
	}
	d.reload <- cfg
}

func (d *Daemon) config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *Daemon) count(f func(*stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

// Run works until ctx is cancelled, then stops every database worker and
// returns. A worker stops between operations: a tick or maintenance call in
// flight completes (or is rolled back by the server), never half-done.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info("Starting pgqgo ticker", "version", Version)
	var srv *http.Server
	if addr := d.config().MetricsAddr; addr != "" {
		d.status = &statuspage.Collector{Targets: d.statusTargets, Daemon: d.Statuses, Log: d.log}
		var err error
		if srv, err = d.serveMetrics(addr); err != nil {
			return err
		}
		defer srv.Close()
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go d.status.Run(sctx)
	}
	var wg sync.WaitGroup
	defer func() {
		d.mu.Lock()
		for _, db := range d.dbs {
			db.stop()
		}
		d.mu.Unlock()
		wg.Wait()
		d.log.Info("stopped")
	}()

	check := time.NewTimer(0)
	retry := time.Second // the next wait after a failed discovery
	statsT := time.NewTicker(d.config().StatsPeriod)
	defer check.Stop()
	defer statsT.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case cfg := <-d.reload:
			d.mu.Lock()
			old := d.cfg
			d.cfg = cfg
			for _, db := range d.dbs {
				db.setConfig(cfg)
			}
			d.mu.Unlock()
			statsT.Reset(cfg.StatsPeriod)
			d.log.Info("config reloaded")
			if old.BaseConnStr != cfg.BaseConnStr {
				d.log.Info("base_connstr changed: reconnecting every database")
				d.mu.Lock()
				for name, db := range d.dbs {
					db.stop()
					delete(d.dbs, name)
				}
				d.mu.Unlock()
			}
			check.Reset(0)
		case <-check.C:
			// the server down (at start-up, say): try again soon, not a
			// whole check_period after it is back
			next := d.config().CheckPeriod
			if d.discover(ctx, &wg) {
				retry = time.Second
			} else {
				next, retry = min(retry, next), min(retry*2, 30*time.Second)
			}
			check.Reset(next)
		case <-statsT.C:
			d.mu.Lock()
			s := d.stats
			d.stats = stats{}
			d.mu.Unlock()
			d.log.Info(fmt.Sprintf("{ticks: %d, maint: %d, retry: %d}", s.ticks, s.maint, s.retry))
		}
	}
}

// discover lists the cluster's databases and starts or stops workers.
// It reports whether the databases could be listed.
func (d *Daemon) discover(ctx context.Context, wg *sync.WaitGroup) bool {
	cfg := d.config()
	names, err := d.listDatabases(ctx, cfg)
	if err != nil {
		d.log.Error("cannot list databases", "database", cfg.InitialDatabase, "err", err)
		d.metrics.errors.WithLabelValues(cfg.InitialDatabase, "discover").Inc()
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, db := range d.dbs {
		if !slices.Contains(names, name) {
			d.log.Info("database gone, stopping its worker", "database", name)
			db.stop()
			delete(d.dbs, name)
		}
	}
	for _, name := range names {
		if db, ok := d.dbs[name]; ok {
			db.recheck() // a pgq schema may have been installed or dropped
			continue
		}
		db := newDatabase(d, name, cfg)
		d.dbs[name] = db
		wg.Add(1)
		go func() {
			defer wg.Done()
			db.run(ctx)
		}()
	}
	return true
}

func (d *Daemon) listDatabases(ctx context.Context, cfg Config) ([]string, error) {
	if len(cfg.DatabaseList) > 0 {
		return cfg.DatabaseList, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, cfg.BaseConnStr, cfg.InitialDatabase)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_catalog.pg_database
		WHERE datallowconn AND NOT datistemplate ORDER BY datname`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// connect opens base_connstr with dbname set, whatever form base_connstr has.
func connect(ctx context.Context, base, dbname string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return nil, fmt.Errorf("base_connstr: %w", err)
	}
	cfg.Database = dbname
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "pgqgo ticker"
	// every call is bounded on the server; maintenance raises it for VACUUM
	cfg.RuntimeParams["statement_timeout"] = "30s"
	// a database owner may ALTER DATABASE ... SET search_path to put its own
	// functions before pg_catalog; the session's own setting overrides that
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	// ticks, retries and rotations commit without waiting for a WAL flush:
	// a crash can only lose the last few, which the next round redoes, and
	// whoever acts on one durably (a consumer's next_batch, finish_batch or
	// its own writes) commits after it in the WAL, so flushes it too
	cfg.RuntimeParams["synchronous_commit"] = "off"
	// the daemon's statements are tiny and mostly parameterless: the simple
	// protocol costs one message each way and nothing to cache
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgx.ConnectConfig(ctx, cfg)
}

// acquire bounds the number of database calls in flight.
func (d *Daemon) acquire(ctx context.Context) bool { return take(ctx, d.sem) }

func (d *Daemon) release() { <-d.sem }

// acquireDial bounds connection set-ups (a new server backend each).
func (d *Daemon) acquireDial(ctx context.Context) bool { return take(ctx, d.dialSem) }

func (d *Daemon) releaseDial() { <-d.dialSem }

// take gets a slot of a counting semaphore, unless ctx ends first.
func take(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// Status is one database's state, for /healthz and the status page
// (State: connecting, missing, no-pgq, untrusted, standby, active, error).
type Status = statuspage.DaemonState

// Statuses reports every database the daemon knows.
func (d *Daemon) Statuses() []Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Status, 0, len(d.dbs))
	for _, db := range d.dbs {
		out = append(out, db.status())
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Database < b.Database {
			return -1
		}
		if a.Database > b.Database {
			return 1
		}
		return 0
	})
	return out
}
