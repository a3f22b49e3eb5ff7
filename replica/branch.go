package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/pgq"
)

// A branch node keeps a copy of its provider's queue: every event with its
// ev_id and fields, and every tick with the root's tick id, time and event
// seq, so that any node below it, or beside it after a change of provider,
// can go on from any tick. A batch from the provider can span several
// ticks (collected while lagging, or merged by pgqgo's server); its events
// are split by tick (the first of the batch's tick snapshots that sees
// their transaction) and each tick's share goes in by a transaction of its
// own on the branch, followed by the tick (made first thing in the next
// tick's transaction, or after the batch's last): a tick's snapshot on the
// branch sees exactly the events of the ticks up to it.

// branchFlushEvents is how many events a branch buffers before it COPYs
// them into its queue (within the batch's transaction).
const branchFlushEvents = 5000

// tickRow is one of the provider's ticks.
type tickRow struct {
	id   int64
	time time.Time
	seq  int64
	snap *snapshot
}

// providerTicks reads the provider's ticks from..to (both included) in the
// batch's transaction.
func providerTicks(ctx context.Context, tx pgx.Tx, queue string, from, to int64) ([]tickRow, error) {
	rows, err := tx.Query(ctx, `select t.tick_id, t.tick_time, t.tick_event_seq, t.tick_snapshot::text
	  from pgq.tick t join pgq.queue q on q.queue_id = t.tick_queue
	 where q.queue_name = $1 and t.tick_id between $2 and $3 order by t.tick_id`, queue, from, to)
	if err != nil {
		return nil, fmt.Errorf("the provider's ticks %d..%d: %w", from, to, err)
	}
	defer rows.Close()
	var ticks []tickRow
	for rows.Next() {
		var t tickRow
		var snap string
		if err := rows.Scan(&t.id, &t.time, &t.seq, &snap); err != nil {
			return nil, err
		}
		if t.snap, err = parseSnapshot(snap); err != nil {
			return nil, err
		}
		ticks = append(ticks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ticks) < 2 || ticks[0].id != from || ticks[len(ticks)-1].id != to {
		return nil, fmt.Errorf("the provider's ticks %d..%d are not all there (found %d)", from, to, len(ticks))
	}
	return ticks, nil
}

// tickOf is the index of the first tick (of ticks, in order) whose snapshot
// sees txid, or len(ticks) when none does. Snapshots later in time see
// every transaction earlier ones see, so the search can halve.
func tickOf(ticks []tickRow, txid int64) int {
	return sort.Search(len(ticks), func(i int) bool { return ticks[i].snap.sees(txid) })
}

// branchLastTick is this branch queue's newest tick.
func branchLastTick(ctx context.Context, db queryer, queue string) (int64, error) {
	var last *int64
	if err := db.QueryRow(ctx, "select last_tick_id from pgq.get_queue_info($1)", queue).Scan(&last); err != nil {
		return 0, fmt.Errorf("this branch's queue: %w", err)
	}
	if last == nil {
		return 0, errors.New("this branch's queue has no tick")
	}
	return *last, nil
}

// mirrorTick records one of the provider's ticks in this branch's queue and
// wakes its consumers. Not waiting for the WAL flush: a tick lost in a
// crash is made again from the provider's (ensureTick), and whoever acts on
// it durably flushes it first.
func (r *runner) mirrorTick(ctx context.Context, t tickRow) error {
	b := &pgx.Batch{}
	b.Queue("select set_config('synchronous_commit', 'off', true)")
	r.queueTick(b, t)
	if err := r.db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("tick %d on this branch: %w", t.id, err)
	}
	r.w.m.ticksMirrored.Inc()
	return nil
}

// queueTick queues the making of tick t in this branch's queue onto b.
func (r *runner) queueTick(b *pgx.Batch, t tickRow) {
	q := r.w.conf().Queue
	b.Queue("select pgq.ticker($1, $2, $3, $4), pg_notify('pgq_tick', $5)", q, t.id, t.time, t.seq, notifyPayload(q))
}

// begin starts a target transaction of the batch's rows (of one tick's,
// on a branch that splits a batch by tick): durable, in replica mode, its
// BEGIN in the round trip of these first statements. On a
// branch it first makes the tick the previous transaction completed
// (pending, when not nil), which spares that tick a transaction of its
// own: the tick's snapshot is taken before this transaction has an id, so
// the events it goes on to write are not in it. That is checked (a
// pgq.ticker that takes an id before its snapshot, as Skytools' might,
// would put them there): where it fails, ticks are made apart from then on.
// It then reads the queue's current event table for qw, after taking an id.
func (r *runner) begin(ctx context.Context, pending *tickRow, qw *queueWriter) (*pipeTx, error) {
	if pending != nil && r.ticksApart {
		if err := r.mirrorTick(ctx, *pending); err != nil {
			return nil, err
		}
		pending = nil
	}
	q := r.w.conf().Queue
	b := &pgx.Batch{}
	tx := beginPipe(r.db, b)
	b.Queue("select set_config('synchronous_commit', 'on', true), londiste.set_session_replication_role('replica', true)")
	var inSnapshot bool
	if pending != nil {
		r.queueTick(b, *pending)
		b.Queue(`select txid_visible_in_snapshot(txid_current(), t.tick_snapshot) from pgq.tick t join pgq.queue q on q.queue_id = t.tick_queue
		   where q.queue_name = $1 and t.tick_id = $2`, q, pending.id).QueryRow(func(row pgx.Row) error { return row.Scan(&inSnapshot) })
	}
	if r.branch {
		b.Queue("select txid_current()")
		b.Queue("select pgq.current_event_table($1)", q).QueryRow(func(row pgx.Row) error {
			var table string
			if err := row.Scan(&table); err != nil {
				return fmt.Errorf("this branch's event table: %w", err)
			}
			qw.table = quotePgq(table)
			return nil
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		_ = tx.Rollback(context.Background())
		if pending != nil {
			return nil, fmt.Errorf("tick %d on this branch: %w", pending.id, err)
		}
		return nil, err
	}
	if inSnapshot {
		_ = tx.Rollback(context.Background())
		r.w.log.Warn("this branch's pgq.ticker takes a transaction id before the tick's snapshot: ticks are made in transactions of their own")
		r.ticksApart = true
		return r.begin(ctx, pending, qw)
	}
	if pending != nil {
		r.w.m.ticksMirrored.Inc()
	}
	return tx, nil
}

// notifyPayload is what pgqgo's ticker sends on pgq_tick for a queue.
func notifyPayload(queue string) string {
	if len(queue) < 8000 {
		return queue
	}
	return ""
}

// ensureTick makes sure this branch's newest tick is t, the tick its
// worker completed: the tick is made in a transaction after the events, so
// a crash between the two leaves it missing.
func (r *runner) ensureTick(ctx context.Context, t tickRow) error {
	last, err := branchLastTick(ctx, r.db, r.w.conf().Queue)
	if err != nil {
		return err
	}
	switch {
	case last == t.id:
		return nil
	case last < t.id:
		r.w.log.Info("making the tick a crash left out", "tick", t.id, "branch_last_tick", last)
		return r.mirrorTick(ctx, t)
	default:
		return errFatal{fmt.Errorf("this branch's queue has tick %d, past the worker's completed tick %d", last, t.id)}
	}
}

// queueWriter copies the provider's events into this branch's queue, ids
// and fields kept (COPY into the queue's current event table, as londiste3).
type queueWriter struct {
	evs []*pgq.Event
	// table is the branch queue's current event table, read in the
	// transaction after it took its id: a rotation that commits later has
	// a higher step-2 txid, so batches still read the table this
	// transaction writes (what pgq.insert_event_raw relies on too)
	table string
}

func (qw *queueWriter) add(ev *pgq.Event) { qw.evs = append(qw.evs, ev) }

// flush COPYs what was added in tx, which must be in replica mode (the
// branch queue refuses other inserts).
func (qw *queueWriter) flush(ctx context.Context, tx pgx.Tx) error {
	if len(qw.evs) == 0 {
		return nil
	}
	if qw.table == "" {
		return errors.New("this branch's event table was not read in the transaction")
	}
	var buf bytes.Buffer
	field := func(s string, null bool) {
		buf.WriteByte('\t')
		if null {
			copyText(&buf, nil)
		} else {
			copyText(&buf, &s)
		}
	}
	for _, ev := range qw.evs {
		buf.WriteString(strconv.FormatInt(ev.ID, 10))
		buf.WriteByte('\t')
		buf.WriteString(ev.Time.UTC().Format("2006-01-02 15:04:05.999999+00"))
		field(ev.Type, ev.Null&pgq.NullType != 0)
		field(ev.Data, ev.Null&pgq.NullData != 0)
		field(ev.Extra1, ev.Null&pgq.NullExtra1 != 0)
		field(ev.Extra2, ev.Null&pgq.NullExtra2 != 0)
		field(ev.Extra3, ev.Null&pgq.NullExtra3 != 0)
		field(ev.Extra4, ev.Null&pgq.NullExtra4 != 0)
		buf.WriteByte('\n')
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, &buf, "copy "+qw.table+
		" (ev_id, ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4) from stdin"); err != nil {
		return fmt.Errorf("copying %d events into this branch's queue: %w", len(qw.evs), err)
	}
	qw.evs = qw.evs[:0]
	return nil
}

// syncWatermarkNodes is the branch's sync_watermark node attribute: the
// nodes whose local watermarks stand in for the global one (nil: not set).
func syncWatermarkNodes(attrs string) []string {
	v, err := url.ParseQuery(attrs)
	if err != nil || !v.Has("sync_watermark") {
		return nil
	}
	var nodes []string
	for _, n := range strings.Split(v.Get("sync_watermark"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			nodes = append(nodes, n)
		}
	}
	if nodes == nil {
		nodes = []string{}
	}
	return nodes
}

// publishWatermarks tells the provider how far this node (and, on a
// branch, every consumer of its queue) has got, so that the provider keeps
// the events until then; a branch that syncs its watermark with other
// nodes (sync_watermark) then sets its own global watermark to the lowest
// of theirs, its own and the root's.
func (w *Worker) publishWatermarks(ctx context.Context, db, prov *pgx.Conn, completed int64) error {
	q := w.conf().Queue
	wm := completed
	var syncNodes []string
	var n *NodeInfo
	if w.node.Type == "branch" {
		var err error
		if n, err = nodeInfo(ctx, db, q); err != nil {
			return err
		}
		syncNodes = syncWatermarkNodes(n.NodeAttrs)
		if syncNodes == nil && n.LocalWM > 0 {
			wm = min(n.LocalWM, completed)
		}
	}
	if r, err := call(ctx, prov, w.log, "select * from pgq_node.set_subscriber_watermark($1, $2, $3)", q, w.node.Name, wm); r.Code == 405 {
		// lower than the one published: a consumer here was moved back;
		// the provider keeps the higher one (its events below it are
		// this node's already, the consumer reads them from here)
		w.log.Debug("local watermark below the published one", "wm", wm, "note", r.Note)
	} else if err != nil {
		return err
	}
	real := w.realGlobalWM.Load()
	if syncNodes == nil || real == 0 {
		return nil
	}
	gwm := min(n.LocalWM, real)
	locs, err := members(ctx, db, q)
	if err != nil {
		return err
	}
	for _, name := range syncNodes {
		if name == w.node.Name {
			continue
		}
		i := slices.IndexFunc(locs, func(m Member) bool { return m.Name == name })
		if i < 0 {
			w.log.Warn("sync_watermark names an unknown node; global watermark not moved", "node", name)
			return nil
		}
		if locs[i].Dead {
			continue
		}
		other, err := connect(ctx, w.providerDSN(locs[i].Location))
		if err != nil {
			return fmt.Errorf("sync_watermark node %s: %w", name, err)
		}
		on, err := nodeInfo(ctx, other, q)
		other.Close(context.Background())
		if err != nil {
			return fmt.Errorf("sync_watermark node %s: %w", name, err)
		}
		if !on.Exists {
			w.log.Warn("sync_watermark node is not set up; global watermark not moved", "node", name)
			return nil
		}
		gwm = min(gwm, on.LocalWM)
	}
	_, err = call(ctx, db, w.log, "select * from pgq_node.set_global_watermark($1, $2)", q, gwm)
	return err
}
