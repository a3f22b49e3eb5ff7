package replica

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/pgq"
)

// applier turns row events into statements on the target and sends them
// pipelined: one statement text per table, operation and column set (pgx
// prepares each text once per connection and keeps it), values as text
// parameters, in the events' order, flushed every flushEvery statements and
// before anything that is not a row change.
type applier struct {
	tx      pgx.Tx
	batch   *pgx.Batch
	texts   map[string]string // statement text by table/op/columns
	applied int64
}

const flushEvery = 2000

func newApplier() *applier {
	return &applier{texts: map[string]string{}, batch: &pgx.Batch{}}
}

func (a *applier) reset(tx pgx.Tx) {
	a.tx = tx
	a.batch = &pgx.Batch{}
}

// flush sends the queued statements and reads their results.
func (a *applier) flush(ctx context.Context) error {
	if a.batch.Len() == 0 {
		return nil
	}
	n := a.batch.Len()
	err := a.tx.SendBatch(ctx, a.batch).Close()
	a.batch = &pgx.Batch{}
	if err != nil {
		return err
	}
	a.applied += int64(n)
	return nil
}

func (a *applier) queue(ctx context.Context, sql string, args []any) error {
	a.batch.Queue(sql, args...)
	if a.batch.Len() >= flushEvery {
		return a.flush(ctx)
	}
	return nil
}

// exec runs a statement that is not a row change, after the queued ones.
func (a *applier) exec(ctx context.Context, sql string, args ...any) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	_, err := a.tx.Exec(ctx, sql, args...)
	return err
}

// row applies one logutriga, sqltriga or jsontriga row event to dest.
func (a *applier) row(ctx context.Context, dest string, ev *pgq.Event) error {
	c, err := pgq.DecodeChange(ev)
	if err != nil {
		return err
	}
	if c.Op == "TRUNCATE" {
		return a.exec(ctx, "truncate only "+quoteFQ(dest)+" cascade")
	}
	keys := c.PKey
	var where map[string]*string
	if len(keys) == 0 && c.Where != nil { // sqltriga: the key is in Where
		for k := range c.Where {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		where = c.Where
	} else {
		where = c.Row
	}
	switch c.Op {
	case "INSERT":
		key := "I\x00" + dest + "\x00" + strings.Join(c.Columns, "\x00")
		sql, ok := a.texts[key]
		if !ok {
			var cols, ph []string
			for i, col := range c.Columns {
				cols = append(cols, pgx.Identifier{col}.Sanitize())
				ph = append(ph, "$"+strconv.Itoa(i+1))
			}
			sql = "insert into " + quoteFQ(dest) + " (" + strings.Join(cols, ", ") + ") values (" + strings.Join(ph, ", ") + ")"
			a.texts[key] = sql
		}
		args := make([]any, len(c.Columns))
		for i, col := range c.Columns {
			args[i] = c.Row[col]
		}
		return a.queue(ctx, sql, args)
	case "UPDATE", "DELETE":
		if len(keys) == 0 {
			return fmt.Errorf("event %d: %s on %s without a primary key", ev.ID, c.Op, dest)
		}
		var set []string
		if c.Op == "UPDATE" {
			for _, col := range c.Columns {
				if !contains(keys, col) || c.Where != nil {
					set = append(set, col)
				}
			}
			if len(set) == 0 { // only key columns: nothing to change
				return nil
			}
		}
		key := c.Op[:1] + "\x00" + dest + "\x00" + strings.Join(set, "\x00") + "\x00\x00" + strings.Join(keys, "\x00")
		sql, ok := a.texts[key]
		n := 0
		ph := func() string { n++; return "$" + strconv.Itoa(n) }
		if !ok {
			var b strings.Builder
			if c.Op == "UPDATE" {
				b.WriteString("update only " + quoteFQ(dest) + " set ")
				for i, col := range set {
					if i > 0 {
						b.WriteString(", ")
					}
					b.WriteString(pgx.Identifier{col}.Sanitize() + " = " + ph())
				}
			} else {
				b.WriteString("delete from only " + quoteFQ(dest))
			}
			b.WriteString(" where ")
			for i, k := range keys {
				if i > 0 {
					b.WriteString(" and ")
				}
				b.WriteString(pgx.Identifier{k}.Sanitize() + " = " + ph())
			}
			sql = b.String()
			a.texts[key] = sql
		}
		args := make([]any, 0, len(set)+len(keys))
		for _, col := range set {
			args = append(args, c.Row[col])
		}
		for _, k := range keys {
			v, ok := where[k]
			if !ok || v == nil {
				return fmt.Errorf("event %d: %s on %s: no value for key column %s", ev.ID, c.Op, dest, k)
			}
			args = append(args, v)
		}
		return a.queue(ctx, sql, args)
	}
	return fmt.Errorf("event %d: unknown operation %q", ev.ID, c.Op)
}
