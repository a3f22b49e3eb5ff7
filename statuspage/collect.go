// Package statuspage serves pgqgo's status page: every database, queue and
// consumer with its lag, pending events, event rates in and out, last tick,
// rotation state, open batch, retry and dead-letter counts, the ticker's state
// per database, and charts of consumer lag and event rates over the last
// hour, which a Collector keeps in memory. The page is server-rendered HTML
// with a small script of its own (no build step, nothing fetched from
// elsewhere) that refreshes it from /api/status. It is read-only and never
// reads event payloads.
//
// The ticker daemon serves it at / beside /metrics (metrics_addr), and
// `pgqgo status --web ADDR` serves it for one database without the daemon.
package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/pgq"
)

// Target is a database the collector samples.
type Target struct {
	Name   string          // shown on the page
	Config *pgx.ConnConfig // how to connect (copied for each connection)
}

// DaemonState is what the ticker daemon says about one database.
type DaemonState struct {
	Database string    `json:"database"`
	State    string    `json:"state"` // connecting, missing, no-pgq, untrusted, standby, active, error
	Engine   string    `json:"engine,omitempty"`
	LastTick time.Time `json:"last_tick_round,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// Queue is one queue's state in a snapshot. Its JSON is the shape of
// `pgqgo status --json` (durations in seconds), with the rates and counts
// of the page.
type Queue struct {
	pgq.QueueInfo
	// EventsIn is the insert rate (events/s) since the previous sample (the
	// queue's event sequence; 0 on the first sample).
	EventsIn    float64    `json:"events_in_per_sec"`
	DeadLetters int64      `json:"dead_letters"` // -1: no dead-letter table or no right to read it
	Consumers   []Consumer `json:"consumers"`
}

// MarshalJSON writes the queue with durations in seconds.
func (q Queue) MarshalJSON() ([]byte, error) {
	consumers := q.Consumers
	if consumers == nil {
		consumers = []Consumer{}
	}
	return json.Marshal(struct {
		pgq.QueueView
		EventsIn    float64    `json:"events_in_per_sec"`
		DeadLetters int64      `json:"dead_letters"`
		Consumers   []Consumer `json:"consumers"`
	}{q.View(), q.EventsIn, q.DeadLetters, consumers})
}

// Consumer is one consumer's state in a snapshot.
type Consumer struct {
	pgq.ConsumerInfo
	// EventsOut is the rate (events/s) at which the consumer's position
	// moved through the queue's events since the previous sample.
	EventsOut float64 `json:"events_out_per_sec"`
}

// MarshalJSON writes the consumer as `pgqgo status --json` does (durations
// in seconds), with its rate.
func (c Consumer) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		pgq.ConsumerView
		EventsOut float64 `json:"events_out_per_sec"`
	}{c.View(), c.EventsOut})
}

// Database is one database's state in a snapshot.
type Database struct {
	Name   string       `json:"name"`
	Error  string       `json:"error,omitempty"`
	Daemon *DaemonState `json:"daemon,omitempty"`
	Queues []Queue      `json:"queues"`
}

// Snapshot is the state of every database at one time.
type Snapshot struct {
	Time      time.Time  `json:"time"`
	Databases []Database `json:"databases"`
}

// Point is one sample of a series.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// Series is a named line of a chart.
type Series struct {
	Database string  `json:"database"`
	Queue    string  `json:"queue"`
	Consumer string  `json:"consumer,omitempty"` // "" for the queue's own series
	Metric   string  `json:"metric"`             // events_in, events_out, lag_seconds, pending
	Points   []Point `json:"points"`
}

// Collector samples its targets every Interval and keeps the last Keep of
// history in memory.
type Collector struct {
	// Targets lists the databases to sample; called before every round, so
	// the daemon's discovered databases follow.
	Targets func() []Target
	// Daemon, when set, reports the ticker daemon's state per database.
	Daemon func() []DaemonState
	// Interval between samples (default 5 s) and how much history to keep
	// (default one hour).
	Interval, Keep time.Duration
	Log            *slog.Logger

	mu     sync.Mutex
	conns  map[string]*pgx.Conn
	latest Snapshot
	seq    map[string]seqSample // per queue: the event sequence and each consumer's position, at the last sample
	series map[string]*Series
}

type seqSample struct {
	at        time.Time
	events    int64
	positions map[string]int64
}

func (c *Collector) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return 5 * time.Second
}

func (c *Collector) keep() time.Duration {
	if c.Keep > 0 {
		return c.Keep
	}
	return time.Hour
}

// Run samples until ctx ends.
func (c *Collector) Run(ctx context.Context) {
	t := time.NewTicker(c.interval())
	defer t.Stop()
	defer c.closeAll()
	for {
		c.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keptConns is how many databases keep their connection between samples.
const keptConns = 8

func (c *Collector) closeConn(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn := c.conns[name]; conn != nil {
		conn.Close(context.Background())
		delete(c.conns, name)
	}
}

func (c *Collector) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, conn := range c.conns {
		conn.Close(context.Background())
		delete(c.conns, name)
	}
}

// Latest is the last snapshot taken.
func (c *Collector) Latest() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// History is every series, sorted by database, queue, consumer and metric.
func (c *Collector) History() []Series {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Series, 0, len(c.series))
	for _, s := range c.series {
		cp := *s
		cp.Points = slices.Clone(s.Points)
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b Series) int {
		for _, p := range [][2]string{{a.Database, b.Database}, {a.Queue, b.Queue}, {a.Consumer, b.Consumer}, {a.Metric, b.Metric}} {
			if p[0] != p[1] {
				if p[0] < p[1] {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	return out
}

// Sample takes one snapshot of every target now.
func (c *Collector) Sample(ctx context.Context) {
	now := time.Now()
	var states map[string]DaemonState
	if c.Daemon != nil {
		states = map[string]DaemonState{}
		for _, s := range c.Daemon() {
			states[s.Database] = s
		}
	}
	snap := Snapshot{Time: now}
	targets := c.Targets()
	for _, t := range targets {
		db := c.sampleDB(ctx, t, now)
		if s, ok := states[t.Name]; ok {
			db.Daemon = &s
		}
		snap.Databases = append(snap.Databases, db)
		if len(targets) > keptConns {
			// many databases: a connection each between samples would add as
			// many backends as the daemon's own; connect for each sample instead
			c.closeConn(t.Name)
		}
	}
	c.mu.Lock()
	c.latest = snap
	c.mu.Unlock()
}

func (c *Collector) conn(ctx context.Context, t Target) (*pgx.Conn, error) {
	c.mu.Lock()
	conn := c.conns[t.Name]
	c.mu.Unlock()
	if conn != nil && !conn.IsClosed() {
		return conn, nil
	}
	cfg := t.Config.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "pgqgo status page"
	// read-only: a page must never change what it shows; and a database
	// owner's search_path cannot put its functions before pg_catalog's
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.conns == nil {
		c.conns = map[string]*pgx.Conn{}
	}
	c.conns[t.Name] = conn
	c.mu.Unlock()
	return conn, nil
}

func (c *Collector) sampleDB(ctx context.Context, t Target, now time.Time) Database {
	db := Database{Name: t.Name}
	fail := func(err error) Database {
		db.Error = err.Error()
		if c.Log != nil {
			c.Log.Debug("status page: sample failed", "database", t.Name, "err", err)
		}
		c.closeConn(t.Name)
		return db
	}
	conn, err := c.conn(ctx, t)
	if err != nil {
		return fail(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var hasPgq bool
	if err := conn.QueryRow(qctx, `SELECT to_regclass('pgq.queue') IS NOT NULL AND to_regprocedure('pgq.get_queue_info()') IS NOT NULL`).Scan(&hasPgq); err != nil {
		return fail(err)
	}
	if !hasPgq {
		db.Error = "no pgq schema"
		return db
	}
	queues, err := pgq.Queues(qctx, conn)
	if err != nil {
		return fail(err)
	}
	consumers, err := pgq.Consumers(qctx, conn, "")
	if err != nil {
		return fail(err)
	}
	seqs, err := positions(qctx, conn)
	if err != nil {
		return fail(err)
	}
	dead, err := deadLetters(qctx, conn)
	if err != nil {
		return fail(err)
	}
	byQueue := map[string][]pgq.ConsumerInfo{}
	for _, ci := range consumers {
		byQueue[ci.Queue] = append(byQueue[ci.Queue], ci)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq == nil {
		c.seq, c.series = map[string]seqSample{}, map[string]*Series{}
	}
	for _, qi := range queues {
		q := Queue{QueueInfo: qi, DeadLetters: -1}
		if dead != nil {
			q.DeadLetters = dead[qi.Name]
		}
		key := t.Name + "\x00" + qi.Name
		cur := seqs[qi.Name]
		prev, had := c.seq[key]
		dt := now.Sub(prev.at).Seconds()
		rate := func(a, b int64) float64 {
			if !had || dt <= 0 || b < a {
				return 0
			}
			return float64(b-a) / dt
		}
		q.EventsIn = rate(prev.events, cur.events)
		c.add(t.Name, qi.Name, "", "events_in", now, q.EventsIn)
		for _, ci := range byQueue[qi.Name] {
			pos, ok := cur.positions[ci.Name]
			before, okBefore := prev.positions[ci.Name]
			out := 0.0
			if ok && okBefore {
				out = rate(before, pos)
			}
			q.Consumers = append(q.Consumers, Consumer{ConsumerInfo: ci, EventsOut: out})
			c.add(t.Name, qi.Name, ci.Name, "events_out", now, out)
			c.add(t.Name, qi.Name, ci.Name, "lag_seconds", now, ci.Lag.Seconds())
			c.add(t.Name, qi.Name, ci.Name, "pending", now, float64(ci.Pending))
		}
		cur.at = now
		c.seq[key] = cur
		db.Queues = append(db.Queues, q)
	}
	c.prune(now)
	return db
}

// add appends a point to a series (under c.mu).
func (c *Collector) add(db, queue, consumer, metric string, at time.Time, v float64) {
	key := db + "\x00" + queue + "\x00" + consumer + "\x00" + metric
	s := c.series[key]
	if s == nil {
		s = &Series{Database: db, Queue: queue, Consumer: consumer, Metric: metric}
		c.series[key] = s
	}
	s.Points = append(s.Points, Point{T: at, V: v})
}

// prune drops points older than Keep, and series left empty (under c.mu).
func (c *Collector) prune(now time.Time) {
	cut := now.Add(-c.keep())
	for key, s := range c.series {
		i := 0
		for i < len(s.Points) && s.Points[i].T.Before(cut) {
			i++
		}
		s.Points = s.Points[i:]
		if len(s.Points) == 0 { // a queue or consumer gone for an hour
			delete(c.series, key)
		}
	}
}

// positions reads, per queue, the event sequence's value and, per consumer,
// the event sequence value at its position (tick_event_seq of its last tick):
// their differences over time are the rates in and out.
func positions(ctx context.Context, conn *pgx.Conn) (map[string]seqSample, error) {
	rows, err := conn.Query(ctx, `SELECT q.queue_name, coalesce(pg_catalog.pg_sequence_last_value(q.queue_event_seq::regclass), 0),
			c.co_name, t.tick_event_seq
		  FROM pgq.queue q
		  LEFT JOIN pgq.subscription s ON s.sub_queue = q.queue_id
		  LEFT JOIN pgq.consumer c ON c.co_id = s.sub_consumer
		  LEFT JOIN pgq.tick t ON t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick`)
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	out := map[string]seqSample{}
	var queue string
	var events int64
	var consumer *string
	var pos *int64
	_, err = pgx.ForEachRow(rows, []any{&queue, &events, &consumer, &pos}, func() error {
		s, ok := out[queue]
		if !ok {
			s = seqSample{events: events, positions: map[string]int64{}}
		}
		if consumer != nil && pos != nil {
			s.positions[*consumer] = *pos
		}
		out[queue] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	return out, nil
}

// deadLetters counts given-up events per queue (nil: no table, or no right
// to read it).
func deadLetters(ctx context.Context, conn *pgx.Conn) (map[string]int64, error) {
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('pgq.dead_letter') IS NOT NULL
			AND has_table_privilege('pgq.dead_letter', 'SELECT')`).Scan(&ok); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	if !ok {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `SELECT dl_queue, count(*) FROM pgq.dead_letter GROUP BY dl_queue`)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	out := map[string]int64{}
	var q string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&q, &n}, func() error { out[q] = n; return nil }); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return out, nil
}
