package pgq

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// batchTx is the transaction a batch finishes in. It begins on first use, so
// a batch whose handler neither writes nor retries costs no BEGIN/COMMIT: its
// events are read with snapshot-bound SQL (valid outside any transaction) and
// finish_batch runs on its own. Once anything is done through it, the
// finish_batch goes into the same transaction.
type batchTx struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

var _ pgx.Tx = (*batchTx)(nil)

// begun reports whether the real transaction was started.
func (l *batchTx) begun() bool { return l.tx != nil }

func (l *batchTx) real(ctx context.Context) (pgx.Tx, error) {
	if l.tx == nil {
		tx, err := l.conn.Begin(ctx)
		if err != nil {
			return nil, err
		}
		l.tx = tx
	}
	return l.tx, nil
}

// Begin starts a savepoint inside the batch's transaction.
func (l *batchTx) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := l.real(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Begin(ctx)
}

// Commit and Rollback belong to the consumer, which finishes or abandons the
// batch; handlers should not call them.
func (l *batchTx) Commit(ctx context.Context) error {
	if l.tx == nil {
		return nil
	}
	return l.tx.Commit(ctx)
}

func (l *batchTx) Rollback(ctx context.Context) error {
	if l.tx == nil {
		return nil
	}
	return l.tx.Rollback(ctx)
}

func (l *batchTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := l.real(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, table, columns, src)
}

func (l *batchTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	tx, err := l.real(ctx)
	if err != nil {
		return errBatchResults{err}
	}
	return tx.SendBatch(ctx, b)
}

// LargeObjects begins the transaction if needed; if that fails, the returned
// value must not be used (the next Exec reports the error).
func (l *batchTx) LargeObjects() pgx.LargeObjects {
	tx, err := l.real(context.Background())
	if err != nil {
		return pgx.LargeObjects{}
	}
	return tx.LargeObjects()
}

func (l *batchTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	tx, err := l.real(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Prepare(ctx, name, sql)
}

func (l *batchTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tx, err := l.real(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (l *batchTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	tx, err := l.real(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Query(ctx, sql, args...)
}

func (l *batchTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	tx, err := l.real(ctx)
	if err != nil {
		return errRow{err}
	}
	return tx.QueryRow(ctx, sql, args...)
}

func (l *batchTx) Conn() *pgx.Conn { return l.conn }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type errBatchResults struct{ err error }

func (r errBatchResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, r.err }
func (r errBatchResults) Query() (pgx.Rows, error)         { return nil, r.err }
func (r errBatchResults) QueryRow() pgx.Row                { return errRow{r.err} }
func (r errBatchResults) Close() error                     { return r.err }
func (r errBatchResults) Tx() pgx.Tx                       { return nil }
