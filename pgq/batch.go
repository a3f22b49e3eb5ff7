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

	sql         string // pgq.batch_event_sql
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
// so only one chunk is in memory. It can be ranged over once per batch.
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
		// both pgq implementations end the batch SQL with "order by 1" (ev_id);
		// anything else is wrapped to get the order the chunks rely on
		ordered := b.sql
		if !strings.HasSuffix(strings.ToLower(strings.TrimSpace(ordered)), "order by 1") {
			ordered = `SELECT ` + eventColumns + ` FROM (` + b.sql + `) ev ORDER BY ev_id`
		}
		cursor := pgx.Identifier{fmt.Sprintf("pgqgo_batch_%d", b.ID)}.Sanitize()
		fetch := `FETCH ` + strconv.Itoa(size) + ` FROM ` + cursor
		declared := false
		chunk := make([]Event, 0, min(size+1, 4096))
		query := func(sql string) error {
			chunk = chunk[:0]
			// every batch has its own SQL text (snapshots are literals): it is
			// run unprepared in one round trip, with binary results decoded
			// here, instead of costing a Parse round trip and a slot in the
			// connection's statement cache per batch
			rr := b.tx.conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, binaryResults)
			for rr.NextRow() {
				ev, err := decodeEvent(rr.Values())
				if err != nil {
					rr.Close()
					return err
				}
				chunk = append(chunk, ev)
			}
			_, err := rr.Close()
			return err
		}
		fail := func(err error) {
			yield(nil, fmt.Errorf("pgq: read batch %d of %s/%s: %w", b.ID, b.Queue, b.Consumer, err))
		}
		// one row more than a chunk tells whether a cursor is needed
		if err := query(ordered + ` LIMIT ` + strconv.Itoa(size+1)); err != nil {
			fail(err)
			return
		}
		more := len(chunk) > size
		if more {
			chunk = chunk[:size]
		}
		for {
			for i := range chunk {
				b.read++
				if !yield(&chunk[i], nil) {
					return
				}
			}
			if !more {
				return
			}
			if !declared {
				// the first chunk is done: continue after it (ev_id order is total)
				declared = true
				for _, sql := range []string{`DECLARE ` + cursor + ` NO SCROLL CURSOR FOR ` + ordered,
					`MOVE FORWARD ` + strconv.Itoa(size) + ` IN ` + cursor} {
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
