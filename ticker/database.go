package ticker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgqgo/pgqgo/pgq"
)

// lockKey is the advisory lock a daemon holds on each database it works on.
const lockKey = 0x7067716774696b // "pgqgtik"

// LockKey is the advisory lock the active daemon holds on each database it
// works on (pg_locks shows it: classid the high 32 bits, objid the low).
const LockKey int64 = lockKey

// activeWindow is how long a database counts as active after its last new
// events: active databases are polled every tick_poll_period.
const activeWindow = 3 * time.Second

var errNoPgq = errors.New("no usable pgq schema")

// errNoDatabase: the database does not exist (dropped, or a name in
// database_list that was never created).
var errNoDatabase = errors.New("database does not exist")

// database is the worker for one database: one connection, one goroutine,
// timers for each duty.
type database struct {
	d    *Daemon
	name string
	log  *slog.Logger

	mu        sync.Mutex
	cfg       Config
	st        Status
	cancel    context.CancelFunc
	recheckCh chan struct{}
	done      chan struct{}
}

func newDatabase(d *Daemon, name string, cfg Config) *database {
	return &database{
		d: d, name: name, cfg: cfg,
		log:       d.log.With("database", name),
		st:        Status{Database: name, State: "connecting"},
		recheckCh: make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

func (db *database) config() Config {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.cfg
}

func (db *database) setConfig(cfg Config) {
	db.mu.Lock()
	db.cfg = cfg
	db.mu.Unlock()
	db.recheck()
}

func (db *database) setState(state, engine string, err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.st.State, db.st.Engine, db.st.Error = state, engine, ""
	if err != nil {
		db.st.Error = err.Error()
	}
	active := 0.0
	if state == "active" {
		active = 1
	}
	db.d.metrics.active.WithLabelValues(db.name).Set(active)
}

func (db *database) status() Status {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.st
}

func (db *database) recheck() {
	select {
	case db.recheckCh <- struct{}{}:
	default:
	}
}

// stop cancels the worker; Run's WaitGroup waits for it.
func (db *database) stop() {
	db.mu.Lock()
	if db.cancel != nil {
		db.cancel()
	}
	db.mu.Unlock()
	db.d.metrics.forget(db.name)
}

func (db *database) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	db.mu.Lock()
	db.cancel = cancel
	db.mu.Unlock()
	defer cancel()
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := db.session(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		switch {
		case err == nil: // connection_lifetime reached: reconnect at once
			backoff = 500 * time.Millisecond
			continue
		case errors.Is(err, errNoPgq):
			db.setState("no-pgq", "", nil)
			db.log.Debug("no pgq schema", "detail", err)
			wait = db.config().CheckPeriod
		case errors.Is(err, errNoDatabase):
			if db.status().State != "missing" {
				// named in database_list (a discovered one that is dropped
				// goes away at the next discovery)
				db.log.Warn("database does not exist; checking again every check_period", "err", err)
			}
			db.setState("missing", "", err)
			wait = db.config().CheckPeriod
		case errors.Is(err, pgq.ErrUntrusted):
			if db.status().State != "untrusted" {
				db.log.Error("refusing a pgq schema owned by an untrusted role (see trusted_roles)", "err", err)
			}
			db.setState("untrusted", "", err)
			db.d.metrics.errors.WithLabelValues(db.name, "untrusted").Inc()
			wait = db.config().CheckPeriod
		default:
			db.setState("error", "", err)
			db.d.metrics.errors.WithLabelValues(db.name, "session").Inc()
			if time.Since(started) > time.Minute {
				backoff = 500 * time.Millisecond // it worked for a while: start over
			}
			if serverRestarting(err) {
				// the server is shutting down or starting up: it will be
				// back in seconds, and every second without ticks counts
				backoff = min(backoff, time.Second)
			}
			db.log.Error("database session failed; reconnecting", "err", err, "retry_in", backoff)
			wait = backoff
			backoff = min(backoff*2, 30*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-db.recheckCh:
		case <-time.After(wait):
		}
	}
}

// session connects, waits for the database's advisory lock, and works until
// the connection fails, its lifetime ends, or ctx is cancelled.
func (db *database) session(ctx context.Context) error {
	cfg := db.config()
	// connecting is the costliest thing a worker does (a new backend on the
	// server): at most 2 x max_parallel at once, or a start over hundreds of
	// databases thrashes the server
	if !db.d.acquireDial(ctx) {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := connect(cctx, cfg.BaseConnStr, db.name)
	cancel()
	if err != nil {
		db.d.releaseDial()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // dropped meanwhile, or never there
			return fmt.Errorf("%w: %v", errNoDatabase, err)
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	connected := time.Now()

	engine, err := detectEngine(ctx, conn, cfg.TrustedRoles)
	db.d.releaseDial()
	if err != nil {
		return err
	}
	for {
		var locked bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(lockKey)).Scan(&locked); err != nil {
			return fmt.Errorf("advisory lock: %w", err)
		}
		if locked {
			break
		}
		if db.status().State != "standby" {
			db.log.Info("another ticker works on this database; standing by")
		}
		db.setState("standby", engine, nil)
		select {
		case <-ctx.Done():
			return nil
		case <-db.recheckCh:
		case <-time.After(time.Second):
		}
		if _, err := detectEngine(ctx, conn, db.config().TrustedRoles); err != nil {
			return err
		}
	}
	db.setState("active", engine, nil)
	db.log.Info("pgq version ok", "engine", engine)
	return db.work(ctx, conn, engine, connected)
}

// detectEngine checks for a pgq schema of API level 3 or later and tells
// pgqgo's schema (which has pgq.pgqgo_ticker) from Skytools' extension.
// Nothing in the schema is called before its owners are found trusted.
func detectEngine(ctx context.Context, conn *pgx.Conn, trusted []string) (string, error) {
	var hasPgq, hasFast bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'pgq'),
		to_regprocedure('pgq.pgqgo_ticker(interval)') IS NOT NULL`).Scan(&hasPgq, &hasFast)
	if err != nil {
		return "", fmt.Errorf("detect pgq: %w", err)
	}
	if !hasPgq {
		return "", fmt.Errorf("%w: no pgq schema", errNoPgq)
	}
	if err := pgq.CheckSchemaTrust(ctx, conn, "pgq", trusted); err != nil {
		return "", err
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT pgq.version()").Scan(&version); err != nil {
		return "", fmt.Errorf("%w: pgq.version(): %v", errNoPgq, err)
	}
	if version == "" || version[0] < '3' || version[0] > '9' {
		return "", fmt.Errorf("%w: pgq version %q is older than 3", errNoPgq, version)
	}
	if hasFast {
		return "pgqgo", nil
	}
	return "pgq " + version, nil
}

// work runs the timers until an error, the connection lifetime, or ctx.
func (db *database) work(ctx context.Context, conn *pgx.Conn, engine string, connected time.Time) error {
	cfg := db.config()
	fast := engine == "pgqgo" && cfg.TickPollPeriod > 0
	// schemas of pgqgo 0.1 and 0.2 have only the fixed-interval pgqgo_ticker
	var adaptive bool
	if fast {
		if err := conn.QueryRow(ctx, "SELECT to_regprocedure('pgq.pgqgo_ticker(interval,interval)') IS NOT NULL").Scan(&adaptive); err != nil {
			return fmt.Errorf("detect pgq: %w", err)
		}
	}
	// ticking starts at once; the other duties start spread over their first
	// period, so hundreds of databases do not all do maintenance in one burst
	tick := time.NewTimer(0)
	poll := time.NewTimer(0)
	retry := time.NewTimer(spread(cfg.RetryPeriod))
	maint := time.NewTimer(spread(cfg.MaintPeriod))
	stats := time.NewTimer(spread(cfg.StatsPeriod))
	if cfg.MetricsAddr == "" {
		stats.Stop() // the per-queue gauges are only read through /metrics
	}
	defer tick.Stop()
	defer retry.Stop()
	defer maint.Stop()
	defer stats.Stop()
	defer poll.Stop()
	if fast {
		// pgq.pgqgo_ticker does pgq.ticker()'s idle ticks too: one call per poll
		tick.Stop()
	} else {
		poll.Stop()
	}
	var lastEvents time.Time
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-db.recheckCh:
			cfg = db.config()
			e, err := detectEngine(ctx, conn, cfg.TrustedRoles)
			if err != nil {
				return err
			}
			if e != engine {
				return nil // schema installed, upgraded or replaced: start over
			}
			continue
		case <-tick.C:
			err = db.call(ctx, "tick", func(ctx context.Context) error { return db.tick(ctx, conn, engine) })
			tick.Reset(db.untilNext(cfg.TickerPeriod))
		case <-poll.C:
			var ticked bool
			var due time.Duration
			err = db.call(ctx, "fast_tick", func(ctx context.Context) (e error) {
				ticked, due, e = db.fastTick(ctx, conn, adaptive, cfg.TickMinInterval, cfg.TickMaxInterval)
				return e
			})
			if ticked || due > 0 {
				lastEvents = time.Now()
			}
			switch {
			case due > cfg.TickPollPeriod:
				// every queue has events waiting for their interval: nothing
				// can tick before the first is due
				poll.Reset(due)
			case time.Since(lastEvents) < activeWindow:
				poll.Reset(db.untilNext(cfg.TickPollPeriod))
			default:
				poll.Reset(db.untilNext(cfg.TickIdlePollPeriod))
			}
		case <-retry.C:
			err = db.call(ctx, "retry", func(ctx context.Context) error { return db.retry(ctx, conn) })
			retry.Reset(cfg.RetryPeriod)
		case <-maint.C:
			err = db.call(ctx, "maint", func(ctx context.Context) error { return db.maint(ctx, conn) })
			maint.Reset(cfg.MaintPeriod)
		case <-stats.C:
			err = db.call(ctx, "stats", func(ctx context.Context) error { return db.collect(ctx, conn) })
			stats.Reset(cfg.StatsPeriod)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if time.Since(connected) > cfg.ConnectionLifetime {
			db.log.Debug("connection lifetime reached; reconnecting")
			return nil
		}
	}
}

// untilNext is the wait until the database's next slot on the clock. Workers
// wake together in a few slots per period, so the runtime serves a batch of
// databases per wake-up instead of one wake-up per database.
func (db *database) untilNext(period time.Duration) time.Duration {
	now := time.Now()
	next := now.Truncate(period).Add(db.phase(period))
	for !next.After(now) {
		next = next.Add(period)
	}
	return next.Sub(now)
}

// phase places the database in one of roundSlots slots of a period: the
// daemon wakes roundSlots times per period, and the server sees a slot's
// share of the databases at once rather than all of them.
func (db *database) phase(period time.Duration) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(db.name))
	return period / roundSlots * time.Duration(h.Sum32()%roundSlots)
}

const roundSlots = 8

// spread picks a start delay within the first period (at most 10 s).
func spread(period time.Duration) time.Duration {
	return rand.N(min(period, 10*time.Second)) + time.Millisecond
}

// call runs one duty (maintenance ones under the daemon's concurrency bound).
// Ticks run without a cancellable context: pgx would watch it with a helper
// per query, which dominates the cost of a tick; they are bounded by the
// session's statement_timeout instead, and a stopping daemon closes the
// connection after the tick in flight.
func (db *database) call(ctx context.Context, op string, f func(context.Context) error) error {
	// ticks are tiny and must not queue behind maintenance: only the heavier
	// duties share the max_parallel slots, and only they stay cancellable (a
	// stopping daemon must not wait for a long VACUUM)
	qctx := context.Background()
	if op != "tick" && op != "fast_tick" {
		if !db.d.acquire(ctx) {
			return ctx.Err()
		}
		defer db.d.release()
		qctx = ctx
	}
	if err := f(qctx); err != nil {
		db.d.metrics.errors.WithLabelValues(db.name, op).Inc()
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (db *database) tick(ctx context.Context, conn *pgx.Conn, engine string) error {
	var n int64
	if err := conn.QueryRow(ctx, "SELECT pgq.ticker()").Scan(&n); err != nil {
		return err
	}
	db.d.count(func(s *stats) { s.ticks++ })
	db.d.metrics.ticks.WithLabelValues(db.name, "ticker").Add(float64(n))
	db.mu.Lock()
	db.st.LastTick = time.Now()
	db.mu.Unlock()
	if n > 0 && engine != "pgqgo" {
		// Skytools' ticker does not notify; tell listeners something ticked
		if _, err := conn.Exec(ctx, "SELECT pg_notify('pgq_tick', '')"); err != nil {
			return err
		}
	}
	return nil
}

// fastTick calls pgq.pgqgo_ticker once. It reports whether a queue was ticked
// for events, and, when every queue has events waiting for their interval,
// how long until the first is due (0: unknown, poll as usual).
func (db *database) fastTick(ctx context.Context, conn *pgx.Conn, adaptive bool, minInterval, maxInterval time.Duration) (bool, time.Duration, error) {
	var rows pgx.Rows
	var err error
	if adaptive {
		rows, err = conn.Query(ctx, "SELECT queue_name IS NOT NULL, coalesce(had_events, false), next_check FROM pgq.pgqgo_ticker($1, $2)",
			minInterval, maxInterval)
	} else {
		rows, err = conn.Query(ctx, "SELECT true, had_events, NULL::interval FROM pgq.pgqgo_ticker($1)", minInterval)
	}
	if err != nil {
		return false, 0, err
	}
	var ticked, hadEvents bool
	var check pgtype.Interval
	active, n := false, 0
	var next time.Duration
	if _, err := pgx.ForEachRow(rows, []any{&ticked, &hadEvents, &check}, func() error {
		if ticked {
			n++
			// only ticks for events make the database active (fast
			// polling); idle and creation ticks do not
			active = active || hadEvents
		} else if check.Valid {
			next = time.Duration(check.Microseconds+int64(check.Days)*86400e6) * time.Microsecond
		}
		return nil
	}); err != nil {
		return false, 0, err
	}
	if n > 0 {
		db.d.metrics.ticks.WithLabelValues(db.name, "fast").Add(float64(n))
	}
	db.d.count(func(s *stats) { s.ticks++ })
	db.mu.Lock()
	db.st.LastTick = time.Now()
	db.mu.Unlock()
	return active, next, nil
}

func (db *database) retry(ctx context.Context, conn *pgx.Conn) error {
	total := 0
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT pgq.maint_retry_events()").Scan(&n); err != nil {
			return err
		}
		total += n
		if n == 0 {
			break
		}
	}
	db.d.count(func(s *stats) { s.retry += int64(total) })
	db.d.metrics.retries.WithLabelValues(db.name).Add(float64(total))
	return nil
}

func (db *database) maint(ctx context.Context, conn *pgx.Conn) error {
	// VACUUM may take long: lift the connection's statement timeout meanwhile
	if _, err := conn.Exec(ctx, "SET statement_timeout = '30min'"); err != nil {
		return err
	}
	defer conn.Exec(ctx, "SET statement_timeout = '30s'") //nolint:errcheck // a failure ends the session anyway
	res, err := pgq.Maintenance(ctx, conn, db.config().TrustedRoles...)
	for _, name := range res.Skipped {
		db.log.Warn("maintenance named an invalid function or table; skipped", "name", name)
	}
	for _, why := range res.Untrusted {
		db.log.Warn("maintenance named a function the daemon does not trust; skipped (see trusted_roles)", "detail", why)
	}
	if err != nil {
		return err
	}
	db.d.count(func(s *stats) { s.maint++ })
	db.d.metrics.maint.WithLabelValues(db.name).Inc()
	return nil
}

// collect refreshes the per-queue and per-consumer gauges.
func (db *database) collect(ctx context.Context, conn *pgx.Conn) error {
	m := db.d.metrics
	m.forget(db.name)
	rows, err := conn.Query(ctx, `SELECT queue_name, coalesce(ev_per_sec, 0), coalesce(extract(epoch FROM ticker_lag), 0)
		FROM pgq.get_queue_info()`)
	if err != nil {
		return err
	}
	var q string
	var rate, lag float64
	if _, err := pgx.ForEachRow(rows, []any{&q, &rate, &lag}, func() error {
		m.queueRate.WithLabelValues(db.name, q).Set(rate)
		m.tickerLag.WithLabelValues(db.name, q).Set(lag)
		return nil
	}); err != nil {
		return err
	}
	rows, err = conn.Query(ctx, `SELECT queue_name, consumer_name, coalesce(extract(epoch FROM lag), 0),
		coalesce(pending_events, 0) FROM pgq.get_consumer_info()`)
	if err != nil {
		return err
	}
	var c string
	var pending float64
	_, err = pgx.ForEachRow(rows, []any{&q, &c, &lag, &pending}, func() error {
		m.consumerLag.WithLabelValues(db.name, q, c).Set(lag)
		m.pending.WithLabelValues(db.name, q, c).Set(pending)
		return nil
	})
	if err != nil {
		return err
	}
	return db.collectNodes(ctx, conn)
}

// collectNodes labels the database's cascaded queues with their node, type
// and provider, read from pgq_node.node_info when that schema is there and
// trusted (an untrusted one is left unread: its tables could carry policies
// that run code).
func (db *database) collectNodes(ctx context.Context, conn *pgx.Conn) error {
	var has bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('pgq_node.node_info') IS NOT NULL").Scan(&has); err != nil || !has {
		return err
	}
	if err := pgq.CheckSchemaTrust(ctx, conn, "pgq_node", db.config().TrustedRoles); err != nil {
		if errors.Is(err, pgq.ErrUntrusted) {
			return nil
		}
		return err
	}
	rows, err := conn.Query(ctx, `SELECT n.queue_name, n.node_name, n.node_type, coalesce(s.provider_node, '')
		FROM pgq_node.node_info n
		LEFT JOIN pgq_node.local_state s ON s.queue_name = n.queue_name AND s.consumer_name = n.worker_name`)
	if err != nil {
		return err
	}
	var q, node, typ, provider string
	_, err = pgx.ForEachRow(rows, []any{&q, &node, &typ, &provider}, func() error {
		db.d.metrics.nodeInfo.WithLabelValues(db.name, q, node, typ, provider).Set(1)
		return nil
	})
	return err
}

// serverRestarting tells the errors of a server that is going down or coming
// up (terminated by a shutdown, "the database system is starting up",
// connection refused while the postmaster restarts) from the others.
func serverRestarting(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) // TCP, or a Unix socket not there yet
}
