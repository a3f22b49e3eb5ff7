package pgq

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TargetFunc applies a batch to a target database inside tx, the target
// transaction that also records the batch as done.
type TargetFunc func(ctx context.Context, tx pgx.Tx, b *Batch) error

// ExactlyOnce returns a Handler that applies each batch to target exactly
// once, with pgq_ext's bookkeeping (install it in the target database with
// schema.InstallComponent(ctx, target, schema.Ext)):
//
//  1. in a target transaction, under a transaction advisory lock per
//     consumer (so two processes holding one batch apply it once),
//     pgq_ext.is_batch_done: if the batch was
//     already applied (the process died after the target commit but before
//     finish_batch), it is skipped;
//  2. otherwise fn applies it and pgq_ext.set_batch_done records it, and
//     the target transaction commits;
//  3. then the consumer finishes the batch on the queue's database.
//
// The batch id stays the same across redeliveries because the consumer opens
// each batch in a transaction of its own, committed durably (as with
// ConsumerConfig.StableBatchIDs). Failing events cannot be retried or
// dead-lettered one by one in this mode (that would commit apart from the
// target): fn returns an error to have the whole batch delivered again, or
// records the failure in the target itself. A cooperative group member
// records under its own sub-consumer name.
func ExactlyOnce(target DB, fn TargetFunc) Handler {
	return exactlyOnceHandler(func(ctx context.Context, b *Batch) error {
		b.exactlyOnce = true
		tx, err := target.Begin(ctx)
		if err != nil {
			return fmt.Errorf("exactly-once: begin on target: %w", err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
		// Two processes holding the same batch (the consumer's lock lost with
		// a connection, an old process still alive) must not both find it
		// not done: the check and the record are serialized per consumer on
		// the target, so the second sees the first's commit.
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgqgo.exactly_once'),
			pg_catalog.hashtext($1 || '/' || $2))`, b.Consumer, b.Subconsumer); err != nil {
			return fmt.Errorf("exactly-once: lock on target: %w", err)
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT pgq_ext.is_batch_done($1, $2, $3)`, b.Consumer, b.Subconsumer, b.ID).Scan(&done); err != nil {
			return fmt.Errorf("exactly-once: pgq_ext.is_batch_done on target (is pgq_ext installed there?): %w", err)
		}
		if done {
			return nil // applied before a crash; the consumer only has to finish it
		}
		if err := fn(ctx, tx, b); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pgq_ext.set_batch_done($1, $2, $3)`, b.Consumer, b.Subconsumer, b.ID); err != nil {
			return fmt.Errorf("exactly-once: pgq_ext.set_batch_done: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("exactly-once: commit on target: %w", err)
		}
		return nil
	})
}

// exactlyOnceHandler is the Handler ExactlyOnce returns: the consumer opens
// its batches with durable commits.
type exactlyOnceHandler func(ctx context.Context, b *Batch) error

func (f exactlyOnceHandler) HandleBatch(ctx context.Context, b *Batch) error { return f(ctx, b) }
