package replica

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipeTx is a transaction whose BEGIN and COMMIT ride in pipelines with
// its other statements, where pgx's Tx spends a round trip on each: a
// branch that copies its provider's ticks one transaction each pays for
// round trips more than for work, most of all on a busy server, where
// every round trip waits to be scheduled twice. Savepoints (Begin) are not
// offered: the worker's tick transactions use none.
type pipeTx struct {
	conn   *pgx.Conn
	closed bool
}

// beginPipe queues BEGIN onto b, the first statement of the transaction's
// first round trip.
func beginPipe(conn *pgx.Conn, b *pgx.Batch) *pipeTx {
	b.Queue("begin")
	return &pipeTx{conn: conn}
}

// queueCommit queues COMMIT onto b, the transaction's last round trip;
// Commit then has nothing left to do once b went through.
func (tx *pipeTx) queueCommit(b *pgx.Batch) {
	b.Queue("commit").Exec(func(pgconn.CommandTag) error {
		tx.closed = true
		return nil
	})
}

func (tx *pipeTx) Begin(context.Context) (pgx.Tx, error) {
	return nil, errors.New("no savepoints in a pipelined transaction")
}

func (tx *pipeTx) Commit(ctx context.Context) error {
	if tx.closed {
		return nil
	}
	ct, err := tx.conn.Exec(ctx, "commit")
	tx.closed = true
	if err == nil && ct.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return err
}

func (tx *pipeTx) Rollback(ctx context.Context) error {
	if tx.closed {
		return pgx.ErrTxClosed
	}
	tx.closed = true
	_, err := tx.conn.Exec(ctx, "rollback")
	return err
}

func (tx *pipeTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return tx.conn.CopyFrom(ctx, table, cols, src)
}

func (tx *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return tx.conn.SendBatch(ctx, b)
}

func (tx *pipeTx) LargeObjects() pgx.LargeObjects {
	panic("replica: no large objects in a pipelined transaction")
}

func (tx *pipeTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return tx.conn.Prepare(ctx, name, sql)
}

func (tx *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.conn.Exec(ctx, sql, args...)
}

func (tx *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return tx.conn.Query(ctx, sql, args...)
}

func (tx *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return tx.conn.QueryRow(ctx, sql, args...)
}

func (tx *pipeTx) Conn() *pgx.Conn { return tx.conn }
