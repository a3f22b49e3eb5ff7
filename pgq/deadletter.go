package pgq

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DeadLetter is where a consumer puts an event it gives up on. Put runs in
// the batch's transaction, so the event is either dead-lettered and the batch
// finished, or neither.
type DeadLetter interface {
	Put(ctx context.Context, tx pgx.Tx, b *Batch, ev *Event, reason error) error
}

// DeadLetterTable keeps events in pgqgo's pgq.dead_letter table (schema
// release 0.2.0 and later) with queue, consumer and reason. An operator lists
// them with SELECT and hands one back to the consumer with
// pgq.dead_letter_replay(dl_id). It is the default destination.
type DeadLetterTable struct{}

// Put implements DeadLetter.
func (DeadLetterTable) Put(ctx context.Context, tx pgx.Tx, b *Batch, ev *Event, reason error) error {
	msg := ""
	if reason != nil {
		msg = reason.Error()
	}
	_, err := tx.Exec(ctx, `SELECT pgq.dead_letter_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		b.ID, ev.ID, ev.Time, ev.TxID, ev.Retry, ev.typeArg(), ev.dataArg(),
		nullIfEmpty(ev.Extra1), nullIfEmpty(ev.Extra2), nullIfEmpty(ev.Extra3), nullIfEmpty(ev.Extra4), msg)
	if sqlState(err) == "42883" { // undefined_function: Skytools' schema, or pgqgo before 0.2.0
		return fmt.Errorf("the pgq schema has no dead-letter table (pgqgo 0.2.0+ has); use DeadLetterQueue: %w", err)
	}
	return err
}

// DeadLetterQueue puts given-up events into another PgQ queue, with their type,
// data and extras unchanged; it works on any PgQ 3 schema. The queue must exist.
// The consumer, original id and reason are logged, not stored.
type DeadLetterQueue string

// Put implements DeadLetter.
func (q DeadLetterQueue) Put(ctx context.Context, tx pgx.Tx, b *Batch, ev *Event, reason error) error {
	_, err := tx.Exec(ctx, `SELECT pgq.insert_event($1, $2, $3, $4, $5, $6, $7)`, string(q), ev.typeArg(), ev.dataArg(),
		nullIfEmpty(ev.Extra1), nullIfEmpty(ev.Extra2), nullIfEmpty(ev.Extra3), nullIfEmpty(ev.Extra4))
	if err == nil && b.cfg.Logger != nil {
		b.cfg.Logger.Warn("event dead-lettered", "queue", b.Queue, "consumer", b.Consumer, "event", ev.ID,
			"retries", ev.Retry, "to_queue", string(q), "reason", reason)
	}
	return err
}
