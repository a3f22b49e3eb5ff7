package pgq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// TickChannel is the NOTIFY channel pgqgo's ticker announces ticks on; the
// payload is the queue name (empty from a daemon ticking Skytools' schema).
const TickChannel = "pgq_tick"

// ConsumerConfig describes a consumer. Queue and Name are required.
type ConsumerConfig struct {
	// Queue is the queue to read.
	Queue string
	// Name is the consumer's name: its position in the queue is kept under it.
	Name string
	// Subconsumer, when set, makes this consumer one member of the cooperative
	// group Name (pgq_coop must be installed in the queue's database).
	Subconsumer string
	// DeadInterval lets a group member take over the open batch of a member
	// that has been silent this long (0: never).
	DeadInterval time.Duration

	// MinCount, MinInterval and MinLag make batches bigger or later
	// (pgq.next_batch_custom): a batch ends at a tick at least MinLag old that
	// closes MinCount events or MinInterval of time. Zero values: any tick.
	MinCount    int
	MinInterval time.Duration
	// Collect, when set, is asked before each batch is opened for that
	// batch's MinCount and MinInterval (instead of the fixed ones): for
	// example big batches while the consumer lags, any tick once it keeps up.
	Collect func() (minCount int, minInterval time.Duration)
	MinLag  time.Duration

	// Filter, when set, is asked before each batch is opened for an SQL
	// condition on the event columns (ev_type, ev_extra1, ...): only the
	// batch's events that meet it are read, the server leaving the others
	// out (as the extra_where of pgq.get_batch_cursor). The batch still
	// spans its ticks; the events left out are not seen by the handler.
	// The condition is SQL text: quote everything that comes from data.
	Filter func(ctx context.Context) (string, error)

	// FetchSize is how many events are read at a time (default 1000); a
	// batch bigger than this streams through a cursor.
	FetchSize int
	// FetchBytes bounds the bytes of event fields read at a time (default
	// 64 MiB): an event whose type, data and extras pass FetchBytes/FetchSize
	// (at least 8 KiB) is left out of its chunk and read on its own when its
	// turn comes, so a chunk holds at most FetchBytes (or FetchSize x 8 KiB,
	// if more) and one big event is in memory at once.
	FetchBytes int
	// PollInterval is how long to wait for a tick notification before asking
	// again anyway (default 1s).
	PollInterval time.Duration
	// NoListen disables LISTEN pgq_tick: poll only.
	NoListen bool
	// StopWhenIdle makes Run return nil as soon as no batch is ready (a
	// drain-and-exit consumer, like a Skytools script run without looping).
	StopWhenIdle bool
	// NoRegister makes Run use an existing registration only: an
	// unregistered consumer is then an error instead of registered at the end.
	NoRegister bool
	// StableBatchIDs makes every batch's id survive a crash of the server:
	// the batch is opened with a durable commit (synchronous_commit on,
	// whatever the server's default), which also puts the batch's end tick
	// on disk. Set it when the handler records batch ids or ticks outside
	// the queue's database (ExactlyOnce sets it itself). Otherwise a batch is opened, and a batch whose handler wrote
	// nothing through Batch.Tx is finished, with synchronous_commit off: no
	// wait for a WAL flush, and a server crash can at most deliver the last
	// fraction of a second of batches again (with new ids), which
	// at-least-once delivery allows. A handler's own writes always commit
	// with the session's synchronous_commit.
	StableBatchIDs bool

	// RetryDelay is when an event an EventFunc failed on is delivered again
	// (default 60s, PgQ's usual; whole seconds).
	RetryDelay time.Duration
	// MaxRetries is how many times an event is retried before it goes to
	// DeadLetter instead (0: retry forever).
	MaxRetries int
	// DeadLetter receives given-up events (default DeadLetterTable).
	DeadLetter DeadLetter

	// ErrorBackoff is the first pause after a failed batch or a lost
	// connection; it doubles up to MaxBackoff (defaults 100ms and 30s).
	ErrorBackoff, MaxBackoff time.Duration

	// Logger receives the consumer's logs (default slog.Default()).
	Logger *slog.Logger
	// OnBatch, when set, is called after every finished batch.
	OnBatch func(BatchStats)
}

// BatchStats describes one finished batch, for metrics.
type BatchStats struct {
	BatchID      int64
	Events       int64
	Retried      int64
	DeadLettered int64
	Duration     time.Duration
	Lag          time.Duration
}

// Stats are a consumer's running totals.
type Stats struct {
	Batches, Events, Retried, DeadLettered, Failures, Reconnects int64
	// Lag of the last batch opened.
	Lag time.Duration
}

// Handler processes one batch. Returning an error rolls the batch back: it is
// delivered again after a backoff, whole.
type Handler interface {
	HandleBatch(ctx context.Context, b *Batch) error
}

// BatchFunc is a Handler function that walks b.Events itself.
type BatchFunc func(ctx context.Context, b *Batch) error

// HandleBatch implements Handler.
func (f BatchFunc) HandleBatch(ctx context.Context, b *Batch) error { return f(ctx, b) }

// EventFunc is a Handler that is called once per event. An error retries
// that event alone after ConsumerConfig.RetryDelay (or the delay of a
// RetryAfter error), or dead-letters it after MaxRetries; the rest of the
// batch goes on. To fail the whole batch, return an error wrapping ErrFailBatch.
// tx is the batch's transaction (see Batch.Tx): writes made through it
// commit only if the batch finishes.
type EventFunc func(ctx context.Context, tx pgx.Tx, ev *Event) error

// ErrFailBatch, wrapped in an EventFunc's error, rolls the whole batch back
// instead of retrying the one event.
var ErrFailBatch = errors.New("pgq: fail batch")

// RetryAfter wraps err so that an EventFunc's failed event is retried after d.
func RetryAfter(d time.Duration, err error) error { return &retryAfterError{d: d, err: err} }

type retryAfterError struct {
	d   time.Duration
	err error
}

func (e *retryAfterError) Error() string { return fmt.Sprintf("retry after %s: %v", e.d, e.err) }
func (e *retryAfterError) Unwrap() error { return e.err }

// HandleBatch implements Handler.
func (f EventFunc) HandleBatch(ctx context.Context, b *Batch) error {
	for ev, err := range b.Events(ctx) {
		if err != nil {
			return err
		}
		herr := f(ctx, b.tx, ev)
		if herr == nil {
			continue
		}
		if errors.Is(herr, ErrFailBatch) {
			return herr
		}
		if b.cfg.MaxRetries > 0 && ev.Retry >= b.cfg.MaxRetries {
			if err := b.DeadLetter(ctx, ev, herr); err != nil {
				return err
			}
			continue
		}
		delay := b.cfg.RetryDelay
		var ra *retryAfterError
		if errors.As(herr, &ra) {
			delay = ra.d
		}
		if err := b.Retry(ctx, ev, delay); err != nil {
			return err
		}
	}
	return nil
}

// Consumer reads a queue batch by batch on a connection of its own. Run it
// from one goroutine at a time; run several Consumers (or cooperative group
// members) for parallelism.
type Consumer struct {
	cfg     ConsumerConfig
	connCfg *pgx.ConnConfig
	log     *slog.Logger

	mu   sync.Mutex
	conn *pgx.Conn
	// active: this process holds the consumer's advisory lock on conn (see
	// takeTurn); standby: it waits for another process that holds it
	active, standby bool
	stable          bool // batches opened durably (StableBatchIDs, ExactlyOnce)
	more            bool // a tick past the last batch opened was already there
	// readSQL reads the first chunk of the open batch in the round trip that
	// opens it (openBatchSQL on the queue's event tables); "" until looked up
	readSQL string

	batches, events, retried, dead, failures, reconnects atomic.Int64
	lag                                                  atomic.Int64
}

// NewConsumer checks the configuration and returns a consumer that connects
// to dsn (a libpq connection string or URL) when it runs.
func NewConsumer(dsn string, cfg ConsumerConfig) (*Consumer, error) {
	connCfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgq: consumer connection string: %w", err)
	}
	return NewConsumerConfig(connCfg, cfg)
}

// NewConsumerConfig is NewConsumer with a parsed connection configuration.
// A nil connCfg gives a consumer that can only Register, RegisterAt and
// Unregister through a DB of the caller's.
func NewConsumerConfig(connCfg *pgx.ConnConfig, cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Queue == "" || cfg.Name == "" {
		return nil, errors.New("pgq: consumer needs a queue and a name")
	}
	if cfg.FetchSize <= 0 {
		cfg.FetchSize = 1000
	}
	if cfg.FetchBytes <= 0 {
		cfg.FetchBytes = 64 << 20
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RetryDelay < 0 {
		return nil, errors.New("pgq: negative RetryDelay")
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 60 * time.Second
	}
	if cfg.ErrorBackoff <= 0 {
		cfg.ErrorBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.ErrorBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.ErrorBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("queue", cfg.Queue, "consumer", cfg.Name)
	if cfg.Subconsumer != "" {
		log = log.With("subconsumer", cfg.Subconsumer)
	}
	if connCfg == nil {
		// only Register, RegisterAt and Unregister (which take a DB) can be used
		return &Consumer{cfg: cfg, log: log}, nil
	}
	connCfg = connCfg.Copy()
	// the consumer reads its own notifications: a configuration taken from a
	// live pgx.Conn (conn.Config()) carries that connection's buffering hook,
	// which would swallow them
	connCfg.OnNotification = nil
	if connCfg.RuntimeParams["application_name"] == "" {
		connCfg.RuntimeParams["application_name"] = "pgqgo consumer " + cfg.Queue + "/" + cfg.Name
		if cfg.Subconsumer != "" {
			connCfg.RuntimeParams["application_name"] += "." + cfg.Subconsumer
		}
	}
	return &Consumer{cfg: cfg, connCfg: connCfg, log: log}, nil
}

// Stats returns the consumer's running totals.
func (c *Consumer) Stats() Stats {
	return Stats{
		Batches: c.batches.Load(), Events: c.events.Load(), Retried: c.retried.Load(),
		DeadLettered: c.dead.Load(), Failures: c.failures.Load(), Reconnects: c.reconnects.Load(),
		Lag: time.Duration(c.lag.Load()),
	}
}

// fullName is the consumer's name in pgq.consumer.
func (c *Consumer) fullName() string {
	if c.cfg.Subconsumer != "" {
		return c.cfg.Name + "." + c.cfg.Subconsumer
	}
	return c.cfg.Name
}

// Register subscribes the consumer (or the group member) to the queue at its
// current end; registering again changes nothing. Reports whether it was new.
func (c *Consumer) Register(ctx context.Context, db DB) (bool, error) {
	var n int
	var err error
	if c.cfg.Subconsumer != "" {
		err = db.QueryRow(ctx, `SELECT pgq_coop.register_subconsumer($1, $2, $3)`, c.cfg.Queue, c.cfg.Name, c.cfg.Subconsumer).Scan(&n)
	} else {
		err = db.QueryRow(ctx, `SELECT pgq.register_consumer($1, $2)`, c.cfg.Queue, c.cfg.Name).Scan(&n)
	}
	if err != nil {
		return false, fmt.Errorf("pgq: register %s on queue %q: %w", c.fullName(), c.cfg.Queue, err)
	}
	return n == 1, nil
}

// RegisterAt subscribes the consumer so that its next batch starts after
// tick, or moves an existing consumer there (pgq.register_consumer_at). Not for
// group members.
func (c *Consumer) RegisterAt(ctx context.Context, db DB, tick int64) error {
	if c.cfg.Subconsumer != "" {
		return errors.New("pgq: a cooperative group member follows its group; register the group's consumer at a tick instead")
	}
	if _, err := db.Exec(ctx, `SELECT pgq.register_consumer_at($1, $2, $3)`, c.cfg.Queue, c.cfg.Name, tick); err != nil {
		return fmt.Errorf("pgq: register %s on queue %q at tick %d: %w", c.cfg.Name, c.cfg.Queue, tick, err)
	}
	return nil
}

// Unregister removes the consumer (its position and retry events) from the
// queue; a group member with an open batch is refused. Reports whether it was
// registered.
func (c *Consumer) Unregister(ctx context.Context, db DB) (bool, error) {
	var n int
	var err error
	if c.cfg.Subconsumer != "" {
		err = db.QueryRow(ctx, `SELECT pgq_coop.unregister_subconsumer($1, $2, $3, 0)`, c.cfg.Queue, c.cfg.Name, c.cfg.Subconsumer).Scan(&n)
	} else {
		err = db.QueryRow(ctx, `SELECT pgq.unregister_consumer($1, $2)`, c.cfg.Queue, c.cfg.Name).Scan(&n)
	}
	if err != nil {
		return false, fmt.Errorf("pgq: unregister %s from queue %q: %w", c.fullName(), c.cfg.Queue, err)
	}
	return n >= 1, nil
}

// Run registers the consumer if needed and processes batches with h until ctx
// is cancelled, then returns ctx's error. A batch in progress when ctx is
// cancelled is finished if the handler completes it, or left unfinished (to be
// delivered again) if the handler returns an error; never half-applied.
// Lost connections are re-established with backoff; Run returns early only
// for errors that retrying cannot fix (a queue that does not exist, a missing
// pgq_coop schema, bad permissions).
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if c.connCfg == nil {
		return errors.New("pgq: this consumer was made without a connection configuration; it cannot Run")
	}
	defer c.closeConn()
	_, exactlyOnce := h.(exactlyOnceHandler)
	c.stable = c.cfg.StableBatchIDs || exactlyOnce
	backoff := c.cfg.ErrorBackoff
	registered := false
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := c.ensureConn(ctx)
		if err == nil && !registered && !c.cfg.NoRegister {
			if _, err = c.Register(ctx, c.conn); err == nil {
				registered = true
			}
		}
		if err == nil && !c.active {
			var mine bool
			if mine, err = c.takeTurn(ctx); err == nil && !mine {
				if c.cfg.StopWhenIdle {
					return ErrConsumerBusy
				}
				c.wait(ctx)
				continue
			}
		}
		var got bool
		if err == nil {
			got, err = c.step(ctx, h)
		}
		if err == nil {
			backoff = c.cfg.ErrorBackoff
			switch {
			case !got && c.cfg.StopWhenIdle:
				return nil
			case !got:
				c.wait(ctx)
			case !c.more && !c.cfg.NoListen && !c.cfg.StopWhenIdle:
				// caught up: every later tick is announced to this
				// connection, so the next one is waited for, not polled
				c.wait(ctx)
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fatal(err) {
			return err
		}
		c.failures.Add(1)
		c.readSQL = "" // the queue may have been dropped and made anew
		c.log.Warn("consumer error; retrying", "error", err, "backoff", backoff)
		if c.conn != nil && c.conn.IsClosed() {
			c.closeConn()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// ErrConsumerBusy is returned by Run with StopWhenIdle when another process
// runs the same consumer (and holds its lock: see Run).
var ErrConsumerBusy = errors.New("pgq: another process is running this consumer")

// fatal reports errors that no retry will fix.
func fatal(err error) bool {
	switch sqlState(err) {
	case "42883", "3F000", "42501": // undefined function, undefined schema, insufficient privilege
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "P0001" {
		// PgQ's own RAISEs: unknown queue, not subscribed, ... are configuration errors
		for _, m := range []string{"Event queue not", "No such queue", "no such queue", "Not subscriber to queue"} {
			if strings.HasPrefix(pg.Message, m) {
				return true
			}
		}
	}
	return false
}

func (c *Consumer) ensureConn(ctx context.Context) error {
	if c.conn != nil && !c.conn.IsClosed() {
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, c.connCfg)
	if err != nil {
		return fmt.Errorf("pgq: consumer connect: %w", err)
	}
	if !c.cfg.NoListen {
		if _, err := conn.Exec(ctx, `LISTEN `+TickChannel); err != nil {
			conn.Close(ctx)
			return fmt.Errorf("pgq: LISTEN %s: %w", TickChannel, err)
		}
	}
	c.mu.Lock()
	if c.conn != nil {
		c.reconnects.Add(1)
	}
	c.conn = conn
	c.active = false // the lock went with the old connection
	c.mu.Unlock()
	return nil
}

// takeTurn takes the consumer's session advisory lock on the queue's
// database, so that of several processes running the same consumer (a
// rolling deploy, two replicas, an old process still alive) one works and the
// others stand by, taking over when its connection ends. It reports whether
// this process holds the lock. The key is the queue and the consumer's full
// name (a group member's own).
func (c *Consumer) takeTurn(ctx context.Context) (bool, error) {
	var mine bool
	err := c.conn.QueryRow(ctx, `SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('pgqgo.consumer'),
		pg_catalog.hashtext($1 || '/' || $2))`, c.cfg.Queue, c.fullName()).Scan(&mine)
	if err != nil {
		return false, fmt.Errorf("pgq: consumer lock: %w", err)
	}
	switch {
	case mine && c.standby:
		c.log.Info("consumer lock taken; working", "queue", c.cfg.Queue, "consumer", c.fullName())
	case !mine && !c.standby:
		c.log.Info("another process runs this consumer; standing by", "queue", c.cfg.Queue, "consumer", c.fullName())
	}
	c.mu.Lock()
	c.active, c.standby = mine, !mine
	c.mu.Unlock()
	return mine, nil
}

func (c *Consumer) closeConn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.conn.Close(ctx)
		cancel()
	}
}

// wait blocks until a tick for the queue is announced, PollInterval passes or
// ctx ends.
func (c *Consumer) wait(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.PollInterval)
	defer cancel()
	if c.cfg.NoListen {
		<-wctx.Done()
		return
	}
	for {
		n, err := c.conn.WaitForNotification(wctx)
		if err != nil || n == nil {
			return // timeout, cancellation, or a dead connection the next step will notice
		}
		if n.Payload == c.cfg.Queue || n.Payload == "" {
			return
		}
	}
}

// step opens the next batch and processes it. It reports whether there was one.
func (c *Consumer) step(ctx context.Context, h Handler) (bool, error) {
	// Database work of an accepted batch must not be cut short by ctx: the
	// batch finishes whole or the transaction rolls back.
	dbctx := context.WithoutCancel(ctx)
	b, err := c.nextBatch(dbctx)
	if err != nil || b == nil {
		return false, err
	}
	start := time.Now()
	tx := &batchTx{conn: c.conn}
	defer tx.Rollback(dbctx) //nolint:errcheck // no-op after commit
	b.tx = tx
	if err := c.handle(ctx, h, b); err != nil {
		return true, fmt.Errorf("pgq: batch %d of %s/%s: %w", b.ID, c.cfg.Queue, c.fullName(), err)
	}
	if !b.iterated {
		// the handler did not look at the events: count them for the stats
		if b.first != nil && len(b.first.events) <= c.cfg.FetchSize {
			b.read = int64(len(b.first.events))
		} else if b.eventSQL(dbctx) == nil {
			_ = c.conn.QueryRow(dbctx, `SELECT count(*) FROM (`+b.sql+`) ev`, pgx.QueryExecModeExec).Scan(&b.read)
		}
	}
	var db DB = c.conn // nothing was done in the batch's transaction: finish on its own
	finish := `SELECT pgq.finish_batch($1)`
	if c.cfg.Subconsumer != "" {
		// pgqgo's form: closes the batch only if this member still holds it
		finish = `SELECT pgq_coop.finish_batch($1, $2, $3, $4)`
	}
	if tx.begun() {
		db = tx // the handler's writes and the finish commit together, durably
	} else {
		// nothing but the position to save: no wait for a WAL flush (a
		// crash can only deliver the batch again)
		finish += `, pg_catalog.set_config('synchronous_commit', 'off', true)`
	}
	var row pgx.Row
	if c.cfg.Subconsumer != "" {
		row = db.QueryRow(dbctx, finish, b.ID, c.cfg.Queue, c.cfg.Name, c.cfg.Subconsumer)
	} else {
		row = db.QueryRow(dbctx, finish, b.ID)
	}
	var finished int
	var ignored *string
	dest := []any{&finished}
	if !tx.begun() {
		dest = append(dest, &ignored)
	}
	if err := row.Scan(dest...); err != nil {
		return true, fmt.Errorf("pgq: finish batch %d: %w", b.ID, err)
	}
	if finished != 1 {
		// a group member that was silent too long lost the batch to another
		// member: its work must not commit
		return true, fmt.Errorf("pgq: batch %d of %s/%s is no longer ours (taken over by another group member?); rolled back",
			b.ID, c.cfg.Queue, c.fullName())
	}
	if err := tx.Commit(dbctx); err != nil {
		return true, fmt.Errorf("pgq: commit batch %d: %w", b.ID, err)
	}
	st := BatchStats{BatchID: b.ID, Events: b.read, Retried: b.retried, DeadLettered: b.dead, Duration: time.Since(start), Lag: b.Lag}
	c.batches.Add(1)
	c.events.Add(st.Events)
	c.retried.Add(st.Retried)
	c.dead.Add(st.DeadLettered)
	if c.cfg.OnBatch != nil {
		c.cfg.OnBatch(st)
	}
	return true, nil
}

// handle runs the handler, turning a panic into an error.
func (c *Consumer) handle(ctx context.Context, h Handler, b *Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h.HandleBatch(ctx, b)
}

// nextBatch opens (and commits) the next batch, or returns nil when none is
// ready. Opening it in its own transaction keeps its id stable across a
// failed attempt, which exactly-once bookkeeping relies on.
func (c *Consumer) nextBatch(ctx context.Context) (*Batch, error) {
	interval := func(d time.Duration) pgtype.Interval {
		if d <= 0 {
			return pgtype.Interval{}
		}
		return pgtype.Interval{Microseconds: d.Microseconds(), Valid: true}
	}
	count, every := c.cfg.MinCount, c.cfg.MinInterval
	if c.cfg.Collect != nil {
		count, every = c.cfg.Collect()
	}
	filter := ""
	if c.cfg.Filter != nil {
		f, err := c.cfg.Filter(ctx)
		if err != nil {
			return nil, fmt.Errorf("pgq: the event filter of %s: %w", c.fullName(), err)
		}
		filter = f
	}
	var minCount pgtype.Int4
	if count > 0 {
		minCount = pgtype.Int4{Int32: int32(min(count, math.MaxInt32)), Valid: true}
	}
	// one round trip: open the batch, describe it, get its SQL; without
	// StableBatchIDs, committed without waiting for a WAL flush (a crash
	// loses at most the opening, and the batch is opened again). "more":
	// whether a tick past the batch was there already; when not, the
	// consumer waits for the next tick's notification instead of asking again
	// at once (an empty poll per batch).
	async := ""
	if !c.stable {
		async = ` CROSS JOIN pg_catalog.set_config('synchronous_commit', 'off', true) AS async`
	} else {
		// durable whatever the server's default (and so is every tick
		// before the batch's end, which the handler may act on elsewhere)
		async = ` CROSS JOIN pg_catalog.set_config('synchronous_commit', 'on', true) AS durable`
	}
	var (
		id, prevTick, tick pgtype.Int8
		tickTime           pgtype.Timestamptz
		lag                pgtype.Interval
		sql                pgtype.Text
		hasMore            pgtype.Bool
		row                pgx.Row
	)
	if c.cfg.Subconsumer != "" {
		row = c.conn.QueryRow(ctx, `SELECT n.id, i.prev_tick_id, i.tick_id, i.batch_end, i.lag,
			CASE WHEN n.id IS NOT NULL THEN EXISTS (SELECT 1 FROM pgq.queue q JOIN pgq.tick t ON t.tick_queue = q.queue_id
				WHERE q.queue_name = $1 AND t.tick_id > i.tick_id) END,
			CASE WHEN n.id IS NOT NULL THEN pgq.batch_event_sql(n.id) END
			FROM pgq_coop.next_batch_custom($1, $2, $3, $4, $5, $6, $7) AS n(id)
			LEFT JOIN LATERAL pgq.get_batch_info(n.id) i ON n.id IS NOT NULL`+async,
			c.cfg.Queue, c.cfg.Name, c.cfg.Subconsumer, interval(c.cfg.MinLag), minCount,
			interval(every), interval(c.cfg.DeadInterval))
	} else {
		if c.readSQL == "" && filter == "" {
			c.readSQL = c.lookUpReadSQL(ctx)
		}
		if c.readSQL != "" && filter == "" {
			return c.openAndRead(ctx, async, interval(c.cfg.MinLag), minCount, interval(every))
		}
		// next_batch_custom describes the batch itself
		row = c.conn.QueryRow(ctx, nextBatchSQL+`,
			CASE WHEN n.batch_id IS NOT NULL THEN pgq.batch_event_sql(n.batch_id) END
			FROM pgq.next_batch_custom($1, $2, $3, $4, $5) AS n`+async,
			c.cfg.Queue, c.cfg.Name, interval(c.cfg.MinLag), minCount, interval(every))
	}
	if err := row.Scan(&id, &prevTick, &tick, &tickTime, &lag, &hasMore, &sql); err != nil {
		return nil, fmt.Errorf("pgq: next batch for %s on queue %q: %w", c.fullName(), c.cfg.Queue, err)
	}
	if !id.Valid {
		return nil, nil
	}
	b := c.opened(id.Int64, prevTick.Int64, tick.Int64, tickTime.Time, lag, hasMore.Bool, sql.String)
	b.filter = filter
	return b, nil
}

// opened makes the Batch of a batch just opened.
func (c *Consumer) opened(id, prevTick, tick int64, tickTime time.Time, lag pgtype.Interval, more bool, sql string) *Batch {
	c.more = more
	b := &Batch{ID: id, Queue: c.cfg.Queue, Consumer: c.cfg.Name, Subconsumer: c.cfg.Subconsumer, cfg: &c.cfg,
		PrevTickID: prevTick, TickID: tick, TickTime: tickTime, sql: sql}
	b.Lag = time.Duration(lag.Microseconds+int64(lag.Days)*86400e6) * time.Microsecond
	c.lag.Store(int64(b.Lag))
	return b
}

// nextBatchSQL is the start of the query that opens the next batch
// (pgq.next_batch_custom, as n) and describes it; "more": whether a tick
// past it was there already.
const nextBatchSQL = `SELECT n.batch_id, n.prev_tick_id, n.cur_tick_id, n.cur_tick_time, now() - n.cur_tick_time,
			CASE WHEN n.batch_id IS NOT NULL THEN EXISTS (SELECT 1 FROM pgq.queue q JOIN pgq.tick t ON t.tick_queue = q.queue_id
				WHERE q.queue_name = $1 AND t.tick_id > n.cur_tick_id) END`

// openAndRead opens the next batch and reads its first chunk in one round
// trip and one transaction: the opening and then openBatchSQL, a statement
// prepared once per connection (pgx's statement cache), so no batch costs
// the server a new plan or a call of pgq.batch_event_sql. Without a batch,
// the read returns nothing.
func (c *Consumer) openAndRead(ctx context.Context, async string, minLag pgtype.Interval, minCount pgtype.Int4, minInterval pgtype.Interval) (*Batch, error) {
	var q pgx.Batch
	q.Queue(nextBatchSQL+` FROM pgq.next_batch_custom($1, $2, $3, $4, $5) AS n`+async,
		c.cfg.Queue, c.cfg.Name, minLag, minCount, minInterval)
	q.Queue(c.readSQL, c.cfg.Queue, c.cfg.Name)
	res := c.conn.SendBatch(ctx, &q)
	defer res.Close()
	var (
		id, prevTick, tick pgtype.Int8
		tickTime           pgtype.Timestamptz
		lag                pgtype.Interval
		hasMore            pgtype.Bool
	)
	if err := res.QueryRow().Scan(&id, &prevTick, &tick, &tickTime, &lag, &hasMore); err != nil {
		return nil, fmt.Errorf("pgq: next batch for %s on queue %q: %w", c.fullName(), c.cfg.Queue, err)
	}
	rows, err := res.Query()
	if err != nil {
		return nil, fmt.Errorf("pgq: read the batch of %s on queue %q: %w", c.fullName(), c.cfg.Queue, err)
	}
	first := &eventChunk{}
	viaCursor := false
	for rows.Next() {
		if rows.RawValues()[0] == nil {
			// openBatchSQL's word that the batch is big: nothing read
			viaCursor = true
			continue
		}
		if len(first.events) == 0 {
			for _, f := range rows.FieldDescriptions() {
				// text is the same in both formats; the others are decoded as binary
				if f.Format != pgx.BinaryFormatCode && f.DataTypeOID != pgtype.TextOID {
					rows.Close()
					return nil, fmt.Errorf("pgq: the batch read returned column %s in text format", f.Name)
				}
			}
		}
		if err := first.add(rows.RawValues()); err != nil {
			rows.Close()
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgq: read the batch of %s on queue %q: %w", c.fullName(), c.cfg.Queue, err)
	}
	if err := res.Close(); err != nil {
		return nil, fmt.Errorf("pgq: open the batch of %s on queue %q: %w", c.fullName(), c.cfg.Queue, err)
	}
	if !id.Valid {
		return nil, nil
	}
	b := c.opened(id.Int64, prevTick.Int64, tick.Int64, tickTime.Time, lag, hasMore.Bool, "")
	if viaCursor {
		b.viaCursor = true
	} else {
		b.first = first
	}
	return b, nil
}

// lookUpReadSQL makes readSQL for the consumer's queue, or returns "" when
// the queue is not there (the opening then fails with PgQ's own message).
func (c *Consumer) lookUpReadSQL(ctx context.Context) string {
	var pfx string
	if err := c.conn.QueryRow(ctx, `SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = $1`, c.cfg.Queue).Scan(&pfx); err != nil {
		return ""
	}
	schema, table, ok := strings.Cut(pfx, ".")
	if !ok {
		schema, table = "public", pfx
	}
	return chunkSQL(openBatchSQL(pgx.Identifier{schema, table}.Sanitize(), c.cfg.FetchSize), &c.cfg, "") + ` LIMIT ` + strconv.Itoa(c.cfg.FetchSize+1)
}

// orderedByID ends openBatchSQL: its rows come in ev_id order.
const orderedByID = ` ORDER BY ev.ev_id`

// openBatchSQL reads the events of the batch that consumer $2 has open on
// queue $1 from the queue's event tables (the parent of its rotated tables):
// the rows whose txid the end tick's snapshot sees and the start tick's does
// not, owned by nobody or by this subscription (retried events). Such a txid
// is at or past the start's xmax (an index range over new txids only) or was
// running at the start and committed by its end (a short list). Every lookup
// is by a whole key (fenced subqueries), so the plan does not depend on the
// statistics of the small, churning pgq tables, and the generic plan that
// PostgreSQL's plan cache settles on is the custom one.
//
// A batch of more than upTo events is read through a cursor from its first
// event: a first chunk of it (LIMIT) would cost the server as much as the
// whole (every event found and sorted), and the cursor would do it again.
// For a batch estimated bigger than that (the events the queue's sequence
// gave out between the two ticks, tick_event_seq; transactions that span a
// tick make the real count differ either way) no event is read: the query
// returns one row of NULLs instead, the word to go to the cursor. The
// estimate is made here, in the statement that reads, because a tick the
// opening function saw may be newer than the opening statement's snapshot.
func openBatchSQL(tables string, upTo int) string {
	return `SELECT ev.ev_id, ev.ev_time, ev.ev_txid, ev.ev_retry, ev.ev_type, ev.ev_data,
	ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4
FROM (SELECT s.sub_id, coalesce(c.seq - p.seq, 0) > ` + strconv.Itoa(upTo) + ` AS to_cursor, pg_catalog.txid_snapshot_xmax(p.snap) AS lo, pg_catalog.txid_snapshot_xmax(c.snap) AS hi, c.snap AS cur,
        ARRAY(SELECT x FROM pg_catalog.txid_snapshot_xip(p.snap) x WHERE pg_catalog.txid_visible_in_snapshot(x, c.snap)) AS late
      FROM (SELECT queue_id FROM pgq.queue WHERE queue_name = $1 OFFSET 0) q
      CROSS JOIN LATERAL (SELECT co_id FROM pgq.consumer WHERE co_name = $2 OFFSET 0) co
      CROSS JOIN LATERAL (SELECT sub_id, sub_last_tick, sub_next_tick FROM pgq.subscription
                           WHERE sub_queue = q.queue_id AND sub_consumer = co.co_id AND sub_batch IS NOT NULL OFFSET 0) s
      CROSS JOIN LATERAL (SELECT tick_snapshot AS snap, tick_event_seq AS seq FROM pgq.tick
                           WHERE tick_queue = q.queue_id AND tick_id = s.sub_last_tick OFFSET 0) p
      CROSS JOIN LATERAL (SELECT tick_snapshot AS snap, tick_event_seq AS seq FROM pgq.tick
                           WHERE tick_queue = q.queue_id AND tick_id = s.sub_next_tick OFFSET 0) c
      OFFSET 0) b
CROSS JOIN LATERAL (
      SELECT e.* FROM ` + tables + ` e
       WHERE NOT b.to_cursor AND e.ev_txid >= b.lo AND e.ev_txid <= b.hi AND pg_catalog.txid_visible_in_snapshot(e.ev_txid, b.cur)
      UNION ALL
      SELECT e.* FROM ` + tables + ` e WHERE NOT b.to_cursor AND e.ev_txid = ANY (b.late)
      UNION ALL
      SELECT (NULL::` + tables + `).* WHERE b.to_cursor) ev
WHERE ev.ev_owner IS NULL OR ev.ev_owner = b.sub_id` + orderedByID
}
