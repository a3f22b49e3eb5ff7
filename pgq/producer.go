package pgq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Producer inserts events into one queue.
//
// The methods without Tx use the DB given to NewProducer; each call is atomic
// on its own. The Tx methods take the caller's transaction, so the events
// commit or roll back with the caller's data.
type Producer struct {
	db    DB
	queue string
	// bulk records whether the schema has pgq.insert_event_bulk (pgqgo's):
	// 0 not yet known, 1 yes, 2 no (Skytools).
	bulk atomic.Int32
}

// NewProducer returns a producer for queue on db (a pool, connection or transaction).
func NewProducer(db DB, queue string) *Producer {
	return &Producer{db: db, queue: queue}
}

// Queue returns the queue name.
func (p *Producer) Queue() string { return p.queue }

// Insert inserts one event and returns its id.
func (p *Producer) Insert(ctx context.Context, ev Event) (int64, error) {
	return p.insert(ctx, p.db, ev)
}

// InsertTx inserts one event in the caller's transaction.
func (p *Producer) InsertTx(ctx context.Context, tx pgx.Tx, ev Event) (int64, error) {
	return p.insert(ctx, tx, ev)
}

func (p *Producer) insert(ctx context.Context, db DB, ev Event) (int64, error) {
	var id int64
	err := db.QueryRow(ctx, `SELECT pgq.insert_event($1, $2, $3, $4, $5, $6, $7)`, p.queue, ev.typeArg(), ev.dataArg(),
		nullIfEmpty(ev.Extra1), nullIfEmpty(ev.Extra2), nullIfEmpty(ev.Extra3), nullIfEmpty(ev.Extra4)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("pgq: insert event into queue %q: %w", p.queue, err)
	}
	return id, nil
}

// bulkChunk bounds one insert_event_bulk call, so a huge slice does not turn
// into one huge statement.
const bulkChunk = 5000

// InsertBatch inserts events atomically: all of them or none.
func (p *Producer) InsertBatch(ctx context.Context, events []Event) error {
	return p.insertBatch(ctx, p.db, events)
}

// InsertBatchTx inserts events in the caller's transaction.
func (p *Producer) InsertBatchTx(ctx context.Context, tx pgx.Tx, events []Event) error {
	return p.insertBatch(ctx, tx, events)
}

func (p *Producer) insertBatch(ctx context.Context, db DB, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	hasBulk, err := p.hasBulk(ctx, db)
	if err != nil {
		return err
	}
	unit := db
	var tx pgx.Tx
	if len(events) > bulkChunk || !hasBulk {
		// several statements: make them one unit (a savepoint inside the caller's transaction)
		if tx, err = db.Begin(ctx); err != nil {
			return fmt.Errorf("pgq: insert batch into queue %q: begin: %w", p.queue, err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
		unit = tx
	}
	if hasBulk {
		for start := 0; start < len(events); start += bulkChunk {
			if err := p.bulkInsert(ctx, unit, events[start:min(start+bulkChunk, len(events))]); err != nil {
				return err
			}
		}
	} else {
		b := &pgx.Batch{}
		for _, ev := range events {
			b.Queue(`SELECT pgq.insert_event($1, $2, $3, $4, $5, $6, $7)`, p.queue, ev.typeArg(), ev.dataArg(),
				nullIfEmpty(ev.Extra1), nullIfEmpty(ev.Extra2), nullIfEmpty(ev.Extra3), nullIfEmpty(ev.Extra4))
		}
		if err := unit.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("pgq: insert batch into queue %q: %w", p.queue, err)
		}
	}
	if tx != nil {
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("pgq: insert batch into queue %q: commit: %w", p.queue, err)
		}
	}
	return nil
}

func (p *Producer) bulkInsert(ctx context.Context, db DB, events []Event) error {
	n := len(events)
	types, datas := make([]*string, n), make([]*string, n)
	extras := [4][]*string{make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)}
	used := [4]bool{}
	for i, ev := range events {
		types[i], datas[i] = ev.typeArg(), ev.dataArg()
		for j, x := range [4]string{ev.Extra1, ev.Extra2, ev.Extra3, ev.Extra4} {
			if x != "" {
				extras[j][i], used[j] = &x, true
			}
		}
	}
	args := []any{p.queue, types, datas}
	for j := range extras {
		if used[j] {
			args = append(args, extras[j])
		} else {
			args = append(args, nil) // a NULL array: all NULL, nothing to send
		}
	}
	_, err := db.Exec(ctx, `SELECT pgq.insert_event_bulk($1, $2, $3, $4, $5, $6, $7)`, args...)
	if err != nil {
		return fmt.Errorf("pgq: insert %d events into queue %q: %w", n, p.queue, err)
	}
	return nil
}

// hasBulk finds out once whether the schema has pgqgo's array insert function.
func (p *Producer) hasBulk(ctx context.Context, db DB) (bool, error) {
	switch p.bulk.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	var ok bool
	err := db.QueryRow(ctx, `SELECT to_regprocedure('pgq.insert_event_bulk(text,text[],text[],text[],text[],text[],text[])') IS NOT NULL`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("pgq: inspect schema: %w", err)
	}
	if ok {
		p.bulk.Store(1)
	} else {
		p.bulk.Store(2)
	}
	return ok, nil
}

// ErrInsertDisabled is returned by Copy when the queue refuses inserts
// (queue_disable_insert), as pgq.insert_event would.
var ErrInsertDisabled = errors.New("pgq: inserts into the queue are disabled")

// Copy writes events with COPY straight into the queue's current event table,
// the fastest way in for large numbers of events. It is atomic. The rules PgQ
// sets for such writers are kept: the table is looked up with
// pgq.current_event_table in the same transaction as the COPY (so a rotation
// cannot slip between), ids and txids come from the table's defaults, ev_time
// is the transaction's now(), and a queue with inserts disabled is refused.
// pgqgo's per-transaction event limit (per_tx_limit) is not applied to COPY.
func (p *Producer) Copy(ctx context.Context, events []Event) (int64, error) {
	return p.copy(ctx, p.db, events)
}

// CopyTx is Copy inside the caller's transaction.
func (p *Producer) CopyTx(ctx context.Context, tx pgx.Tx, events []Event) (int64, error) {
	return p.copy(ctx, tx, events)
}

func (p *Producer) copy(ctx context.Context, db DB, events []Event) (int64, error) {
	if len(events) == 0 {
		return 0, nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgq: copy into queue %q: begin: %w", p.queue, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	// The transaction takes its txid before it reads the current table, as
	// pgq.insert_event does: a rotation that commits after the read then has
	// a later switch txid than this writer, so batches still look for its
	// events in the table it writes to.
	var (
		table    string
		disabled bool
		replica  bool
		now      time.Time
	)
	lookup := &pgx.Batch{}
	lookup.Queue(`SELECT txid_current()`)
	lookup.Queue(`SELECT pgq.current_event_table(q.queue_name), q.queue_disable_insert,
			current_setting('session_replication_role') = 'replica', now()
		FROM pgq.queue q WHERE q.queue_name = $1`, p.queue).QueryRow(func(row pgx.Row) error {
		return row.Scan(&table, &disabled, &replica, &now)
	})
	err = tx.SendBatch(ctx, lookup).Close()
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("pgq: copy into queue %q: no such queue", p.queue)
	}
	if err != nil {
		if sqlState(err) == "P0001" && strings.Contains(err.Error(), "Writing to queue disabled") {
			return 0, fmt.Errorf("%w: queue %q", ErrInsertDisabled, p.queue)
		}
		return 0, fmt.Errorf("pgq: copy into queue %q: find event table: %w", p.queue, err)
	}
	if disabled && !replica {
		return 0, fmt.Errorf("%w: queue %q", ErrInsertDisabled, p.queue)
	}
	schemaName, tableName, ok := strings.Cut(table, ".")
	if !ok {
		return 0, fmt.Errorf("pgq: copy into queue %q: unexpected event table name %q", p.queue, table)
	}
	// Text-format COPY, encoded here: several times cheaper on the client than
	// per-value binary encoding, and ev_time is the same for every row.
	copySQL := `COPY ` + pgx.Identifier{schemaName, tableName}.Sanitize() +
		` (ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4) FROM STDIN`
	src := &copyText{events: events, now: now.UTC().Format("2006-01-02 15:04:05.999999+00")}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, src, copySQL)
	if sqlState(err) == "42501" {
		return 0, fmt.Errorf("pgq: copy into queue %q: %w: COPY writes into the event table itself, which needs "+
			"INSERT on pgq's event tables (pgq_admin has it; pgq_writer, as in PgQ 3.5, may only call the insert "+
			"functions: use InsertBatch, one statement for many events)", p.queue, ErrCopyNotAllowed)
	}
	if err != nil {
		return 0, fmt.Errorf("pgq: copy %d events into queue %q: %w", len(events), p.queue, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pgq: copy into queue %q: commit: %w", p.queue, err)
	}
	return tag.RowsAffected(), nil
}

// ErrCopyNotAllowed is returned by Copy and CopyTx for a role that may not
// insert into the event tables directly (a plain pgq_writer).
var ErrCopyNotAllowed = errors.New("this role may not COPY into event tables")

// copyText streams events as COPY text format, a few rows per Read.
type copyText struct {
	events []Event
	now    string
	i      int
	buf    []byte
}

func (c *copyText) Read(p []byte) (int, error) {
	for len(c.buf) < len(p) && c.i < len(c.events) {
		ev := &c.events[c.i]
		c.i++
		c.buf = append(c.buf, c.now...)
		c.buf = appendCopyField(c.buf, ev.Type, ev.Null&NullType != 0)
		c.buf = appendCopyField(c.buf, ev.Data, ev.Null&NullData != 0)
		c.buf = appendCopyField(c.buf, ev.Extra1, ev.Extra1 == "")
		c.buf = appendCopyField(c.buf, ev.Extra2, ev.Extra2 == "")
		c.buf = appendCopyField(c.buf, ev.Extra3, ev.Extra3 == "")
		c.buf = appendCopyField(c.buf, ev.Extra4, ev.Extra4 == "")
		c.buf = append(c.buf, '\n')
	}
	if len(c.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.buf)
	c.buf = c.buf[:copy(c.buf, c.buf[n:])]
	return n, nil
}

// appendCopyField appends a tab and s escaped for COPY's text format, or
// \N (NULL) when null.
func appendCopyField(b []byte, s string, null bool) []byte {
	b = append(b, '\t')
	if null {
		return append(b, '\\', 'N')
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, ch)
		}
	}
	return b
}
