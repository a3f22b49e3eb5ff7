package pgq

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Batch is one open batch: the events between two ticks, handed to a
// Handler. Its transaction on the queue's database is the one that finishes
// the batch, so everything done through Tx (retries, dead letters, the
// handler's own writes to that database) commits together with the finish.
type Batch struct {
	// ID is the batch id (pgq.next_batch).
	ID int64
	// Queue and Consumer name the batch's owner; Subconsumer is set for a
	// member of a cooperative group.
	Queue, Consumer, Subconsumer string
	// PrevTickID and TickID delimit the batch; TickTime is when it was cut.
	PrevTickID, TickID int64
	TickTime           time.Time
	// Lag is how far behind the queue's head the batch was when opened.
	Lag time.Duration

	sql         string      // pgq.batch_event_sql, once needed
	filter      string      // ConsumerConfig.Filter's condition for this batch
	first       *eventChunk // the first chunk, read when the batch was opened
	viaCursor   bool        // a big batch: read through a cursor from the start
	tables      string      // the queue's queue_data_pfx, once a big event needed it
	tx          *batchTx
	cfg         *ConsumerConfig
	read        int64
	retried     int64
	dead        int64
	iterated    bool
	exactlyOnce bool
}

// Tx is the batch's transaction on the queue's database: what is done
// through it commits together with the batch's finish, or not at all. It
// begins on first use.
func (b *Batch) Tx() pgx.Tx { return b.tx }

// Events streams the batch's events in id order, FetchSize rows at a time,
// so only one chunk is in memory; an event too big for its chunk's share of
// FetchBytes is read on its own when its turn comes. It can be ranged over
// once per batch; an event is the handler's to keep.
//
// The events are read with the batch's own SQL (pgq.batch_event_sql), which
// the server runs several times faster than the set-returning
// pgq.get_batch_events: a batch of up to FetchSize events is one query; a
// bigger one continues through a cursor (DECLARE, FETCH) in the batch's
// transaction.
func (b *Batch) Events(ctx context.Context) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		if b.iterated {
			yield(nil, errors.New("pgq: a batch's events can be read only once"))
			return
		}
		b.iterated = true
		size := b.cfg.FetchSize
		cursor := pgx.Identifier{fmt.Sprintf("pgqgo_batch_%d", b.ID)}.Sanitize()
		fetch := `FETCH ` + strconv.Itoa(size) + ` FROM ` + cursor
		declared := false
		chunk := make([]Event, 0, min(size+1, 4096))
		var big []int // the positions in chunk of events read without their fields
		query := func(sql string) error {
			// a new array per chunk: the events handed out point into it,
			// and a handler may keep them past the next chunk
			chunk, big = make([]Event, 0, cap(chunk)), big[:0]
			// every batch has its own SQL text (snapshots are literals): it is
			// run unprepared in one round trip, with binary results decoded
			// here, instead of costing a Parse round trip and a slot in the
			// connection's statement cache per batch
			rr := b.tx.conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, binaryResults)
			c := eventChunk{events: chunk, big: big}
			for rr.NextRow() {
				if err := c.add(rr.Values()); err != nil {
					rr.Close()
					return err
				}
			}
			chunk, big = c.events, c.big
			_, err := rr.Close()
			return err
		}
		fail := func(err error) {
			yield(nil, fmt.Errorf("pgq: read batch %d of %s/%s: %w", b.ID, b.Queue, b.Consumer, err))
		}
		// one row more than a chunk tells whether a cursor is needed; it
		// usually came with the batch's opening. A batch known to be big
		// goes to the cursor at once.
		skip := size // the events the cursor passes: the first chunk's
		more := false
		switch {
		case b.viaCursor:
			skip, more = 0, true
		case b.first != nil:
			chunk, big = b.first.events, b.first.big
			b.first = nil
		default:
			if err := b.eventSQL(ctx); err != nil {
				fail(err)
				return
			}
			if err := query(chunkSQL(b.sql, b.cfg, b.filter) + ` LIMIT ` + strconv.Itoa(size+1)); err != nil {
				fail(err)
				return
			}
		}
		if len(chunk) > size {
			chunk, more = chunk[:size], true
		}
		for {
			next := 0 // index into big
			for i := range chunk {
				b.read++
				ev := &chunk[i]
				if next < len(big) && big[next] == i {
					next++
					// read on its own, and not kept in chunk: only this one
					// big event is held while the handler has it
					whole, err := b.readWhole(ctx, ev)
					if err != nil {
						fail(err)
						return
					}
					ev = &whole
				}
				if !yield(ev, nil) {
					return
				}
			}
			if !more {
				return
			}
			if !declared {
				// the first chunk is done: continue after it (ev_id order is total)
				declared = true
				if err := b.eventSQL(ctx); err != nil {
					fail(err)
					return
				}
				stmts := []string{`DECLARE ` + cursor + ` NO SCROLL CURSOR FOR ` + chunkSQL(b.sql, b.cfg, b.filter)}
				if skip > 0 {
					stmts = append(stmts, `MOVE FORWARD `+strconv.Itoa(skip)+` IN `+cursor)
				}
				for _, sql := range stmts {
					if _, err := b.tx.Exec(ctx, sql, pgx.QueryExecModeExec); err != nil {
						fail(err)
						return
					}
				}
			}
			if err := query(fetch); err != nil {
				fail(err)
				return
			}
			more = len(chunk) == size
		}
	}
}

// eventChunk is one chunk of a batch's events, decoded from rows of
// chunkSQL; big holds the positions of events that came without their
// fields (too big for the chunk's share of FetchBytes).
type eventChunk struct {
	events []Event
	big    []int
}

// add decodes one row of chunkSQL in binary format.
func (c *eventChunk) add(v [][]byte) error {
	if len(v) != 11 || len(v[10]) != 1 {
		return fmt.Errorf("pgq: batch query returned %d columns, want 11", len(v))
	}
	ev, err := decodeEvent(v[:10])
	if err != nil {
		return err
	}
	if v[10][0] != 0 {
		c.big = append(c.big, len(c.events))
	}
	c.events = append(c.events, ev)
	return nil
}

// chunkSQL wraps a query of a batch's events (the event columns, in ev_id
// order) into the chunk form: an event whose fields pass the chunk's share
// of FetchBytes (never below 8 KiB: a FetchSize far above the default must
// not turn ordinary events into one query each) comes without them, flagged
// "big", to be read on its own. A filter ("": none) keeps the events
// that meet it.
func chunkSQL(events string, cfg *ConsumerConfig, filter string) string {
	inline := max(cfg.FetchBytes/cfg.FetchSize, 8<<10)
	// both pgq implementations end the batch SQL with "order by 1"
	// (ev_id); anything else is ordered here, as the chunks rely on it
	order := ""
	if !strings.HasSuffix(strings.ToLower(strings.TrimSpace(events)), "order by 1") &&
		!strings.HasSuffix(events, orderedByID) {
		order = ` ORDER BY ev_id`
	}
	where := ""
	if filter != "" {
		where = ` WHERE (` + filter + `)`
	}
	// OFFSET 0 keeps the subquery whole, so "big" is computed once per
	// row rather than once per column that uses it
	return `SELECT ev_id, ev_time, ev_txid, ev_retry, ` +
		`CASE WHEN big THEN NULL ELSE ev_type END, CASE WHEN big THEN NULL ELSE ev_data END, ` +
		`CASE WHEN big THEN NULL ELSE ev_extra1 END, CASE WHEN big THEN NULL ELSE ev_extra2 END, ` +
		`CASE WHEN big THEN NULL ELSE ev_extra3 END, CASE WHEN big THEN NULL ELSE ev_extra4 END, big ` +
		`FROM (SELECT ev.*, coalesce(octet_length(ev.ev_type), 0) + coalesce(octet_length(ev.ev_data), 0) + ` +
		`coalesce(octet_length(ev.ev_extra1), 0) + coalesce(octet_length(ev.ev_extra2), 0) + ` +
		`coalesce(octet_length(ev.ev_extra3), 0) + coalesce(octet_length(ev.ev_extra4), 0) > ` +
		strconv.Itoa(inline) + ` AS big FROM (` + events + `) ev` + where + order + ` OFFSET 0) ev`
}

// eventSQL fetches the batch's own SQL (pgq.batch_event_sql) unless it has
// it, on the connection (it begins no transaction).
func (b *Batch) eventSQL(ctx context.Context) error {
	if b.sql != "" {
		return nil
	}
	if err := b.tx.conn.QueryRow(ctx, `SELECT pgq.batch_event_sql($1)`, b.ID).Scan(&b.sql); err != nil {
		return fmt.Errorf("pgq.batch_event_sql: %w", err)
	}
	return nil
}

// readWhole reads the fields of an event that was too big to come with its
// chunk, from the queue's event tables (ev_txid is indexed; ev_id and ev_txid
// together name one row).
func (b *Batch) readWhole(ctx context.Context, ev *Event) (Event, error) {
	if b.tables == "" {
		if err := b.tx.QueryRow(ctx, `SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = $1`, b.Queue).Scan(&b.tables); err != nil {
			return Event{}, fmt.Errorf("event tables of queue %q: %w", b.Queue, err)
		}
	}
	schema, table, _ := strings.Cut(b.tables, ".")
	whole := *ev
	var typ, data, e1, e2, e3, e4 *string
	err := b.tx.QueryRow(ctx, `SELECT ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4 FROM `+
		pgx.Identifier{schema, table}.Sanitize()+` WHERE ev_txid = $1 AND ev_id = $2 LIMIT 1`, ev.TxID, ev.ID).
		Scan(&typ, &data, &e1, &e2, &e3, &e4)
	if err != nil {
		return Event{}, fmt.Errorf("read event %d on its own: %w", ev.ID, err)
	}
	for dst, src := range map[*string]*string{&whole.Type: typ, &whole.Data: data, &whole.Extra1: e1,
		&whole.Extra2: e2, &whole.Extra3: e3, &whole.Extra4: e4} {
		if src != nil {
			*dst = *src
		}
	}
	// the chunk's row came without its fields: their NULLs are these
	whole.Null = 0
	if typ == nil {
		whole.Null |= NullType
	}
	if data == nil {
		whole.Null |= NullData
	}
	for i, e := range []*string{e1, e2, e3, e4} {
		if e == nil {
			whole.Null |= NullExtra1 << i
		}
	}
	return whole, nil
}

// Retry puts the event back into the consumer's retry queue: it is delivered
// again, to this consumer only, after the delay (pgq.event_retry). The retry
// commits with the batch.
func (b *Batch) Retry(ctx context.Context, ev *Event, after time.Duration) error {
	if b.exactlyOnce {
		return errors.New("pgq: per-event retry is not available in exactly-once mode (the retry would commit apart from the target); fail the batch instead")
	}
	if _, err := b.tx.Exec(ctx, `SELECT pgq.event_retry($1, $2, $3::integer)`, b.ID, ev.ID, int(after/time.Second)); err != nil {
		return fmt.Errorf("pgq: retry event %d of batch %d: %w", ev.ID, b.ID, err)
	}
	b.retried++
	return nil
}

// RetryAll puts every event of the batch into the retry queue, to be
// delivered again after the delay (pgq.batch_retry). Returns how many.
func (b *Batch) RetryAll(ctx context.Context, after time.Duration) (int, error) {
	if b.exactlyOnce {
		return 0, errors.New("pgq: batch retry is not available in exactly-once mode; fail the batch instead")
	}
	var n int
	if err := b.tx.QueryRow(ctx, `SELECT pgq.batch_retry($1, $2::integer)`, b.ID, int(after/time.Second)).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgq: retry batch %d: %w", b.ID, err)
	}
	b.retried += int64(n)
	return n, nil
}

// DeadLetter hands the event to the consumer's dead-letter destination instead
// of retrying it; it commits with the batch.
func (b *Batch) DeadLetter(ctx context.Context, ev *Event, reason error) error {
	if b.exactlyOnce {
		return errors.New("pgq: dead-lettering from the batch is not available in exactly-once mode; record failures in the target transaction")
	}
	dl := b.cfg.DeadLetter
	if dl == nil {
		dl = DeadLetterTable{}
	}
	if err := dl.Put(ctx, b.tx, b, ev, reason); err != nil {
		return fmt.Errorf("pgq: dead-letter event %d of batch %d: %w", ev.ID, b.ID, err)
	}
	b.dead++
	return nil
}
