package pgq

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// QueueInfo is one row of pgq.get_queue_info() plus the settings PgQ keeps in
// pgq.queue that the function does not return.
type QueueInfo struct {
	Name             string        `json:"name"`
	Tables           int           `json:"tables"`
	CurrentTable     int           `json:"current_table"`
	RotationPeriod   time.Duration `json:"rotation_period"`
	SwitchTime       time.Time     `json:"switch_time"`
	ExternalTicker   bool          `json:"external_ticker"`
	TickerPaused     bool          `json:"ticker_paused"`
	TickerMaxCount   int           `json:"ticker_max_count"`
	TickerMaxLag     time.Duration `json:"ticker_max_lag"`
	TickerIdlePeriod time.Duration `json:"ticker_idle_period"`
	// TickerLag is how long ago the last tick was cut.
	TickerLag time.Duration `json:"ticker_lag"`
	// EventsPerSec is the rate over the last ticks (PgQ's estimate; 0 when unknown).
	EventsPerSec float64 `json:"events_per_sec"`
	// NewEvents is how many events arrived since the last tick.
	NewEvents      int64         `json:"new_events"`
	LastTick       int64         `json:"last_tick"`
	DisableInsert  bool          `json:"disable_insert"`
	PerTxLimit     *int          `json:"per_tx_limit,omitempty"`
	NextRotationIn time.Duration `json:"next_rotation_in"`
}

// ConsumerInfo is one row of pgq.get_consumer_info().
type ConsumerInfo struct {
	Queue string `json:"queue"`
	Name  string `json:"name"`
	// Lag is the age of the consumer's last finished tick.
	Lag time.Duration `json:"lag"`
	// LastSeen is how long ago the consumer last asked for or finished a batch.
	LastSeen time.Duration `json:"last_seen"`
	LastTick int64         `json:"last_tick"`
	// CurrentBatch is the open batch, if any.
	CurrentBatch *int64 `json:"current_batch"`
	NextTick     *int64 `json:"next_tick"`
	// Pending is the number of events after the consumer's position (PgQ's estimate).
	Pending int64 `json:"pending_events"`
	// Retry is the number of its events waiting in the retry queue (-1 when the
	// role may not read pgq.retry_queue).
	Retry int64 `json:"retry_queue"`
}

// QueueView is a QueueInfo as pgqgo's JSON shows it (`pgqgo status --json`,
// `queue list --json`, the status page): durations in seconds, the last
// rotation in RFC 3339.
type QueueView struct {
	Name                string  `json:"name"`
	TickerLagSeconds    float64 `json:"ticker_lag_seconds"`
	EventsPerSec        float64 `json:"events_per_sec"`
	NewEvents           int64   `json:"new_events"`
	LastTick            int64   `json:"last_tick"`
	TickerMaxCount      int     `json:"ticker_max_count"`
	TickerMaxLagSeconds float64 `json:"ticker_max_lag_seconds"`
	TickerIdleSeconds   float64 `json:"ticker_idle_period_seconds"`
	TickerPaused        bool    `json:"ticker_paused"`
	ExternalTicker      bool    `json:"external_ticker"`
	DisableInsert       bool    `json:"disable_insert"`
	Tables              int     `json:"tables"`
	CurrentTable        int     `json:"current_table"`
	RotationSeconds     float64 `json:"rotation_period_seconds"`
	SwitchTime          string  `json:"last_rotation"`
	NextRotationSeconds float64 `json:"next_rotation_in_seconds"`
	PerTxLimit          *int    `json:"per_tx_limit"`
}

// View is q as pgqgo's JSON shows it.
func (q QueueInfo) View() QueueView {
	return QueueView{Name: q.Name, TickerLagSeconds: q.TickerLag.Seconds(), EventsPerSec: q.EventsPerSec,
		NewEvents: q.NewEvents, LastTick: q.LastTick, TickerMaxCount: q.TickerMaxCount,
		TickerMaxLagSeconds: q.TickerMaxLag.Seconds(), TickerIdleSeconds: q.TickerIdlePeriod.Seconds(),
		TickerPaused: q.TickerPaused, ExternalTicker: q.ExternalTicker, DisableInsert: q.DisableInsert,
		Tables: q.Tables, CurrentTable: q.CurrentTable, RotationSeconds: q.RotationPeriod.Seconds(),
		SwitchTime: q.SwitchTime.UTC().Format(time.RFC3339), NextRotationSeconds: q.NextRotationIn.Seconds(),
		PerTxLimit: q.PerTxLimit}
}

// ConsumerView is a ConsumerInfo as pgqgo's JSON shows it: durations in
// seconds, retry_events null when the retry queue may not be read.
type ConsumerView struct {
	Queue           string  `json:"queue"`
	Name            string  `json:"name"`
	LagSeconds      float64 `json:"lag_seconds"`
	LastSeenSeconds float64 `json:"last_seen_seconds"`
	LastTick        int64   `json:"last_tick"`
	CurrentBatch    *int64  `json:"current_batch"`
	NextTick        *int64  `json:"next_tick"`
	Pending         int64   `json:"pending_events"`
	Retry           *int64  `json:"retry_events"`
}

// View is c as pgqgo's JSON shows it.
func (c ConsumerInfo) View() ConsumerView {
	v := ConsumerView{Queue: c.Queue, Name: c.Name, LagSeconds: c.Lag.Seconds(), LastSeenSeconds: c.LastSeen.Seconds(),
		LastTick: c.LastTick, CurrentBatch: c.CurrentBatch, NextTick: c.NextTick, Pending: c.Pending}
	if c.Retry >= 0 {
		r := c.Retry
		v.Retry = &r
	}
	return v
}

// ErrNoQueue is returned for an operation on a queue that does not exist.
var ErrNoQueue = errors.New("no such queue")

func dur(iv pgtype.Interval) time.Duration {
	if !iv.Valid {
		return 0
	}
	return time.Duration(iv.Microseconds+int64(iv.Days)*86400e6+int64(iv.Months)*30*86400e6) * time.Microsecond
}

// Queues lists the queues of the database (all when names is empty).
func Queues(ctx context.Context, db DB, names ...string) ([]QueueInfo, error) {
	rows, err := db.Query(ctx, `SELECT i.queue_name, i.queue_ntables, i.queue_cur_table, i.queue_rotation_period,
			i.queue_switch_time, i.queue_external_ticker, i.queue_ticker_paused, i.queue_ticker_max_count,
			i.queue_ticker_max_lag, i.queue_ticker_idle_period, i.ticker_lag, coalesce(i.ev_per_sec, 0),
			coalesce(i.ev_new, 0), coalesce(i.last_tick_id, 0), q.queue_disable_insert,
			greatest(q.queue_switch_time + q.queue_rotation_period - now(), interval '0')
		FROM pgq.get_queue_info() i JOIN pgq.queue q ON q.queue_name = i.queue_name
		WHERE coalesce(cardinality($1::text[]), 0) = 0 OR i.queue_name = ANY($1)
		ORDER BY i.queue_name`, names)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var out []QueueInfo
	for rows.Next() {
		var q QueueInfo
		var rot, maxLag, idle, tickerLag, next pgtype.Interval
		if err := rows.Scan(&q.Name, &q.Tables, &q.CurrentTable, &rot, &q.SwitchTime, &q.ExternalTicker,
			&q.TickerPaused, &q.TickerMaxCount, &maxLag, &idle, &tickerLag, &q.EventsPerSec, &q.NewEvents,
			&q.LastTick, &q.DisableInsert, &next); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list queues: %w", err)
		}
		q.RotationPeriod, q.TickerMaxLag, q.TickerIdlePeriod, q.TickerLag, q.NextRotationIn = dur(rot), dur(maxLag), dur(idle), dur(tickerLag), dur(next)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	// per_tx_limit is pgqgo's; read it where the column exists
	var hasLimit bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'pgq.queue'::regclass
		AND attname = 'queue_per_tx_limit' AND NOT attisdropped)`).Scan(&hasLimit); err == nil && hasLimit {
		rows, err := db.Query(ctx, `SELECT queue_name, queue_per_tx_limit FROM pgq.queue`)
		if err != nil {
			return nil, fmt.Errorf("list queues: %w", err)
		}
		limits := map[string]*int{}
		for rows.Next() {
			var name string
			var limit *int
			if err := rows.Scan(&name, &limit); err != nil {
				rows.Close()
				return nil, fmt.Errorf("list queues: %w", err)
			}
			limits[name] = limit
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("list queues: %w", err)
		}
		for i := range out {
			out[i].PerTxLimit = limits[out[i].Name]
		}
	}
	return out, nil
}

// Consumers lists the consumers of queue (of every queue when queue is "").
func Consumers(ctx context.Context, db DB, queue string) ([]ConsumerInfo, error) {
	var canRetry bool
	_ = db.QueryRow(ctx, `SELECT has_table_privilege('pgq.retry_queue', 'SELECT')`).Scan(&canRetry)
	retry := `-1::bigint`
	if canRetry {
		retry = `(SELECT count(*) FROM pgq.retry_queue r JOIN pgq.subscription s ON s.sub_id = r.ev_owner
			JOIN pgq.consumer c ON c.co_id = s.sub_consumer JOIN pgq.queue q ON q.queue_id = s.sub_queue
			WHERE q.queue_name = i.queue_name AND c.co_name = i.consumer_name)`
	}
	rows, err := db.Query(ctx, `SELECT i.queue_name, i.consumer_name, i.lag, i.last_seen, i.last_tick,
			i.current_batch, i.next_tick, coalesce(i.pending_events, 0), `+retry+`
		FROM pgq.get_consumer_info() i
		WHERE $1 = '' OR i.queue_name = $1
		ORDER BY i.queue_name, i.consumer_name`, queue)
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsumerInfo, error) {
		var c ConsumerInfo
		var lag, seen pgtype.Interval
		err := r.Scan(&c.Queue, &c.Name, &lag, &seen, &c.LastTick, &c.CurrentBatch, &c.NextTick, &c.Pending, &c.Retry)
		c.Lag, c.LastSeen = dur(lag), dur(seen)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return out, nil
}

// QueueExists reports whether the queue exists.
func QueueExists(ctx context.Context, db DB, queue string) (bool, error) {
	var ok bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pgq.queue WHERE queue_name = $1)`, queue).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up queue %q: %w", queue, err)
	}
	return ok, nil
}

// CreateQueue creates a queue; it reports false when it already existed.
func CreateQueue(ctx context.Context, db DB, queue string) (bool, error) {
	var n int
	if err := db.QueryRow(ctx, `SELECT pgq.create_queue($1)`, queue).Scan(&n); err != nil {
		return false, fmt.Errorf("create queue %q: %w", queue, err)
	}
	return n == 1, nil
}

// DropQueue drops a queue. Without force, a queue with consumers is refused.
func DropQueue(ctx context.Context, db DB, queue string, force bool) error {
	if ok, err := QueueExists(ctx, db, queue); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("drop queue %q: %w", queue, ErrNoQueue)
	}
	if _, err := db.Exec(ctx, `SELECT pgq.drop_queue($1, $2)`, queue, force); err != nil {
		return fmt.Errorf("drop queue %q: %w", queue, err)
	}
	return nil
}

// SetQueueConfig sets one pgq.set_queue_config parameter (ticker_max_count,
// ticker_max_lag, ticker_idle_period, ticker_paused, rotation_period,
// external_ticker; on pgqgo's schema also disable_insert and per_tx_limit).
func SetQueueConfig(ctx context.Context, db DB, queue, param, value string) error {
	if ok, err := QueueExists(ctx, db, queue); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("configure queue %q: %w", queue, ErrNoQueue)
	}
	if _, err := db.Exec(ctx, `SELECT pgq.set_queue_config($1, $2, $3)`, queue, param, value); err != nil {
		return fmt.Errorf("set %s = %q on queue %q: %w", param, value, queue, err)
	}
	return nil
}

// ForceTick makes the queue tick now and returns the new tick id.
func ForceTick(ctx context.Context, db DB, queue string) (int64, error) {
	if ok, err := QueueExists(ctx, db, queue); err != nil {
		return 0, err
	} else if !ok {
		return 0, fmt.Errorf("tick queue %q: %w", queue, ErrNoQueue)
	}
	// force_tick makes the next ticker() call tick; the ticker call is that tick
	var tick pgtype.Int8
	err := db.QueryRow(ctx, `SELECT pgq.ticker(q) FROM (SELECT $1::text AS q, pgq.force_tick($1)) f`, queue).Scan(&tick)
	if err != nil {
		return 0, fmt.Errorf("tick queue %q: %w", queue, err)
	}
	return tick.Int64, nil
}

// RetryMaintenance moves due retry events back into their queues (what the
// ticker daemon does) and returns how many.
func RetryMaintenance(ctx context.Context, db DB) (int64, error) {
	var total int64
	for {
		var n int64
		if err := db.QueryRow(ctx, `SELECT pgq.maint_retry_events()`).Scan(&n); err != nil {
			return total, fmt.Errorf("retry maintenance: %w", err)
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// MaintenanceResult says what Maintenance did.
type MaintenanceResult struct {
	// Operations are the calls made, e.g. "pgq.maint_rotate_tables_step1(q)".
	Operations []string
	// Vacuumed are the tables vacuumed.
	Vacuumed []string
	// Skipped are names maint_operations or maint_tables_to_vacuum returned
	// that are not plain [schema.]names; they are never executed.
	Skipped []string
	// Untrusted are the functions maint_operations named that were not run:
	// missing, or owned (they, an overload, or their schema) by a role that
	// is not trusted (see Maintenance), with the reason.
	Untrusted []string
}

// qualifiedName accepts what maint_operations may name: [schema.]name.
var qualifiedName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)

// Maintenance does one round of what the ticker daemon does for upkeep: the
// calls pgq.maint_operations lists (table rotation and the like), each in a
// transaction of its own (step 2 of a rotation must commit apart from step 1),
// then VACUUM of the tables pgq.maint_tables_to_vacuum names. db must not be
// inside a transaction (VACUUM cannot run there).
//
// It runs only functions owned by a trusted role: the session's own role, a
// superuser, or one of trusted; so does the function and everything of the
// same name in its schema, and the schema. Others (a pgq_admin member can
// name any function in pgq.queue.queue_extra_maint) are listed in
// Untrusted and left alone.
func Maintenance(ctx context.Context, db DB, trusted ...string) (MaintenanceResult, error) {
	var res MaintenanceResult
	if err := CheckSchemaTrust(ctx, db, "pgq", trusted); err != nil {
		return res, fmt.Errorf("maintenance: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT func_name, func_arg FROM pgq.maint_operations()`)
	if err != nil {
		return res, fmt.Errorf("maintenance: %w", err)
	}
	type op struct {
		fn  string
		arg *string
	}
	ops, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (op, error) {
		var o op
		return o, r.Scan(&o.fn, &o.arg)
	})
	if err != nil {
		return res, fmt.Errorf("maintenance: %w", err)
	}
	for _, o := range ops {
		if !qualifiedName.MatchString(o.fn) {
			res.Skipped = append(res.Skipped, o.fn)
			continue
		}
		if err := checkFunctionTrust(ctx, db, o.fn, trusted); err != nil {
			if errors.Is(err, ErrUntrusted) || errors.Is(err, errNoFunction) {
				res.Untrusted = append(res.Untrusted, err.Error())
				continue
			}
			return res, fmt.Errorf("maintenance: %w", err)
		}
		name, sql, args := o.fn+"()", `SELECT `+quoteQualified(o.fn)+`()`, []any{}
		if o.arg != nil {
			name, sql, args = o.fn+"("+*o.arg+")", `SELECT `+quoteQualified(o.fn)+`($1)`, []any{*o.arg}
		}
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			return res, fmt.Errorf("maintenance %s: %w", name, err)
		}
		res.Operations = append(res.Operations, name)
	}
	// pgqgo's schema thins the ticks its low-latency ticker leaves behind
	var thin bool
	if err := db.QueryRow(ctx, `SELECT to_regprocedure('pgq.pgqgo_thin_ticks()') IS NOT NULL`).Scan(&thin); err != nil {
		return res, fmt.Errorf("maintenance: %w", err)
	}
	if thin {
		if err := checkFunctionTrust(ctx, db, "pgq.pgqgo_thin_ticks", trusted); err != nil {
			if !errors.Is(err, ErrUntrusted) && !errors.Is(err, errNoFunction) {
				return res, fmt.Errorf("maintenance: %w", err)
			}
			res.Untrusted = append(res.Untrusted, err.Error())
		} else {
			if _, err := db.Exec(ctx, `SELECT pgq.pgqgo_thin_ticks()`); err != nil {
				return res, fmt.Errorf("maintenance pgq.pgqgo_thin_ticks(): %w", err)
			}
			res.Operations = append(res.Operations, "pgq.pgqgo_thin_ticks()")
		}
	}
	rows, err = db.Query(ctx, `SELECT * FROM pgq.maint_tables_to_vacuum()`)
	if err != nil {
		return res, fmt.Errorf("maintenance: tables to vacuum: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return res, fmt.Errorf("maintenance: tables to vacuum: %w", err)
	}
	for _, t := range tables {
		if !qualifiedName.MatchString(t) {
			res.Skipped = append(res.Skipped, t)
			continue
		}
		if _, err := db.Exec(ctx, `VACUUM `+quoteQualified(t)); err != nil {
			return res, fmt.Errorf("vacuum %s: %w", t, err)
		}
		res.Vacuumed = append(res.Vacuumed, t)
	}
	return res, nil
}

// quoteQualified quotes "schema.name" as an identifier pair.
func quoteQualified(s string) string {
	return pgx.Identifier(strings.Split(s, ".")).Sanitize()
}
