// Package pgq is pgqgo's client library for PgQ queues: producers that insert
// events inside the caller's transaction, and consumers that process batches
// with retries, a dead-letter table, cooperative sub-consumers and
// exactly-once delivery into another database.
//
// It works against pgqgo's pgq schema and against Skytools' PgQ 3.x (the C
// extension) alike; the few pgqgo-only paths (the array insert function, the
// dead-letter table) are detected or optional.
//
// # Producing
//
// An event is inserted in a transaction and becomes visible to consumers when
// that transaction commits, together with the caller's own changes:
//
//	tx, _ := pool.Begin(ctx)
//	tx.Exec(ctx, "insert into orders ...")
//	p.InsertTx(ctx, tx, pgq.Event{Type: "order.created", Data: `{"id": 42}`})
//	tx.Commit(ctx)
//
// Producer.InsertBatch sends many events in one statement (pgq.insert_event_bulk
// when the schema has it, a pipelined batch of pgq.insert_event otherwise), and
// Producer.Copy streams them with COPY into the queue's current event table.
//
// # Consuming
//
// A Consumer owns one connection, registers itself, and loops: open the next
// batch, stream its events through a cursor (FetchSize rows at a time, so a
// batch of millions of events never sits in memory), hand them to the
// handler, and finish the batch in the same transaction as the handler's
// retries. If the handler fails or the process dies, the transaction rolls
// back and the batch is delivered again: a batch is finished whole or not at
// all. The consumer LISTENs on pgq_tick (sent by pgqgo's ticker) and polls as a
// fallback, and reconnects with backoff when its connection dies.
//
// Per-event failures of an EventFunc are retried after ConsumerConfig.RetryDelay
// (pgq.event_retry); after MaxRetries attempts the event goes to the
// dead-letter destination instead.
//
// Setting ConsumerConfig.Subconsumer makes the consumer one member of a
// cooperative group (pgq_coop): the group's batches are split between the
// members, and a member that stays silent longer than DeadInterval has its
// batch taken over.
//
// ExactlyOnce wraps a handler that writes into another database: the target
// transaction records the batch in pgq_ext, so a crash between the target
// commit and finish_batch never applies a batch twice.
package pgq
