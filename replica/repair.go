package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RepairOptions are repair's options.
type RepairOptions struct {
	// Apply runs the fixes on this node; otherwise they are written to
	// fix.<table>.sql in Dir, as londiste3 does.
	Apply bool
	Dir   string
	Force bool
}

// RepairResult is one table's repair.
type RepairResult struct {
	Table            string `json:"table"`
	SrcRows, DstRows int64
	Inserts          int64  `json:"inserts"`
	Updates          int64  `json:"updates"`
	Deletes          int64  `json:"deletes"`
	FixFile          string `json:"fix_file,omitempty"`
}

// Line is londiste3's summary line of a repaired table.
func (r RepairResult) Line() string {
	return fmt.Sprintf("finished %s: src: %d rows, dst: %d rows, missed: %d inserts, %d updates, %d deletes",
		r.Table, r.SrcRows, r.DstRows, r.Inserts, r.Updates, r.Deletes)
}

// Repair finds the rows that differ between the provider and this node and
// fixes them: both sides, at the same queue position (as compare), are
// streamed in key order and merged, so nothing is dumped to disk and memory
// holds two rows at a time; the differences become statements (insert,
// update of the changed columns, delete), run here in replica mode with
// Apply or written to fix.<table>.sql.
func (a *Admin) Repair(ctx context.Context, opts RepairOptions, names ...string) ([]RepairResult, error) {
	return eachOKTable(ctx, a, "repair", names, func(n *NodeInfo, t Table) (RepairResult, error) {
		return a.repairTable(ctx, n, t, opts)
	})
}

// keyOrder is how rows are ordered for the merge: by the key itself when
// every key column is an integer (the primary key's index gives the order,
// and Go compares the numbers), otherwise by each key column's text in
// byte order (COLLATE "C": the same order on both sides whatever their
// collations, compared byte by byte here).
type keyOrder struct {
	numeric bool
	orderBy string
}

func (a *Admin) repairTable(ctx context.Context, n *NodeInfo, t Table, opts RepairOptions) (RepairResult, error) {
	res := RepairResult{Table: t.Name}
	sy, err := a.syncTable(ctx, n, t, opts.Force)
	if err != nil {
		return res, err
	}
	defer sy.cleanup()
	src, ptx, dtx, srcCols, dstCols := sy.src, sy.ptx, sy.dtx, sy.srcCols, sy.dstCols
	// key and columns
	var pkey []string
	var intKey bool
	if err := dtx.QueryRow(ctx, `select coalesce(array_agg(a.attname order by k.ord), '{}'),
	        coalesce(bool_and(a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)), false)
	   from pg_index i, unnest(i.indkey) with ordinality k(attnum, ord), pg_attribute a
	  where i.indrelid = londiste.find_table_oid($1) and i.indisprimary and a.attrelid = i.indrelid and a.attnum = k.attnum`,
		t.Dest()).Scan(&pkey, &intKey); err != nil {
		return res, err
	}
	if len(pkey) == 0 {
		return res, errors.New("no primary key")
	}
	cols := slices.Clone(pkey)
	for _, c := range srcCols {
		if slices.Contains(dstCols, c) && !slices.Contains(pkey, c) {
			cols = append(cols, c)
		}
	}
	for _, k := range pkey {
		if !slices.Contains(srcCols, k) {
			return res, fmt.Errorf("key column %s missing on the provider", k)
		}
	}
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	order := keyOrder{numeric: intKey}
	if intKey {
		order.orderBy = strings.Join(q[:len(pkey)], ", ")
	} else {
		var ob []string
		for _, k := range q[:len(pkey)] {
			ob = append(ob, k+`::text collate "C"`)
		}
		order.orderBy = strings.Join(ob, ", ")
	}
	query := func(table string) string {
		return "select " + strings.Join(q, ", ") + " from only " + quoteFQ(table) + " order by " + order.orderBy
	}
	sctx, cancel := context.WithCancel(ctx)
	srcRows := stream(sctx, ptx, query(src))
	dstRows := stream(sctx, dtx, query(t.Dest()))
	defer func() { // the readers are done before their connections close
		cancel()
		for range srcRows {
		}
		for range dstRows {
		}
	}()

	// where the fixes go
	var fixes fixSink
	if opts.Apply {
		conn, err := connect(ctx, a.cfg.DB)
		if err != nil {
			return res, err
		}
		defer conn.Close(context.Background())
		tx, err := conn.Begin(ctx)
		if err != nil {
			return res, err
		}
		defer tx.Rollback(context.Background())
		if _, err := tx.Exec(ctx, "select londiste.set_session_replication_role('replica', true)"); err != nil {
			return res, err
		}
		fixes = &applySink{tx: tx, batch: &pgx.Batch{}}
	} else {
		res.FixFile = "fix." + t.Name + ".sql"
		if opts.Dir != "" {
			res.FixFile = opts.Dir + "/" + res.FixFile
		}
		_ = os.Remove(res.FixFile)
		fixes = &fileSink{path: res.FixFile}
	}
	dest := quoteFQ(t.Dest())
	nk := len(pkey)
	where := func(row [][]byte, with map[int]bool) string {
		var parts []string
		for i := range cols {
			if i < nk || with[i] {
				if row[i] == nil {
					parts = append(parts, q[i]+" is null")
				} else {
					parts = append(parts, q[i]+" = "+quoteLiteral(string(row[i])))
				}
			}
		}
		return strings.Join(parts, " and ")
	}
	s, sok := <-srcRows
	d, dok := <-dstRows
	for sok || dok {
		if s.err != nil {
			return res, fmt.Errorf("provider: %w", s.err)
		}
		if d.err != nil {
			return res, fmt.Errorf("here: %w", d.err)
		}
		var diff int
		switch {
		case !dok:
			diff = -1
		case !sok:
			diff = 1
		default:
			diff = compareKeys(s.vals[:nk], d.vals[:nk], order.numeric)
		}
		switch {
		case diff < 0: // only on the provider: insert
			res.Inserts++
			vals := make([]string, len(cols))
			for i, v := range s.vals {
				if v == nil {
					vals[i] = "null"
				} else {
					vals[i] = quoteLiteral(string(v))
				}
			}
			if err := fixes.add(ctx, "insert into "+dest+" ("+strings.Join(q, ", ")+") values ("+strings.Join(vals, ", ")+");"); err != nil {
				return res, err
			}
		case diff > 0: // only here: delete
			res.Deletes++
			if err := fixes.add(ctx, "delete from only "+dest+" where "+where(d.vals, nil)+";"); err != nil {
				return res, err
			}
		default:
			changed := map[int]bool{}
			var set []string
			for i := nk; i < len(cols); i++ {
				if !bytes.Equal(s.vals[i], d.vals[i]) || (s.vals[i] == nil) != (d.vals[i] == nil) {
					changed[i] = true
					if s.vals[i] == nil {
						set = append(set, q[i]+" = null")
					} else {
						set = append(set, q[i]+" = "+quoteLiteral(string(s.vals[i])))
					}
				}
			}
			if len(set) > 0 {
				res.Updates++
				if err := fixes.add(ctx, "update only "+dest+" set "+strings.Join(set, ", ")+" where "+where(d.vals, changed)+";"); err != nil {
					return res, err
				}
			}
		}
		if diff <= 0 && sok {
			res.SrcRows++
			s, sok = <-srcRows
		}
		if diff >= 0 && dok {
			res.DstRows++
			d, dok = <-dstRows
		}
	}
	return res, fixes.close(ctx)
}

type streamRow struct {
	vals [][]byte
	err  error
}

// stream reads a query's rows (text format) into a channel as they come.
func stream(ctx context.Context, tx pgx.Tx, sql string) <-chan streamRow {
	ch := make(chan streamRow, 1024)
	go func() {
		defer close(ch)
		rows, err := tx.Query(ctx, sql, pgx.QueryResultFormats{pgx.TextFormatCode})
		if err != nil {
			ch <- streamRow{err: err}
			return
		}
		defer rows.Close()
		for rows.Next() {
			raw := rows.RawValues()
			vals := make([][]byte, len(raw))
			for i, v := range raw {
				if v != nil {
					vals[i] = append([]byte{}, v...)
				}
			}
			select {
			case ch <- streamRow{vals: vals}:
			case <-ctx.Done():
				return
			}
		}
		if err := rows.Err(); err != nil {
			ch <- streamRow{err: err}
		}
	}()
	return ch
}

func compareKeys(a, b [][]byte, numeric bool) int {
	for i := range a {
		var c int
		if numeric {
			x, _ := strconv.ParseInt(string(a[i]), 10, 64)
			y, _ := strconv.ParseInt(string(b[i]), 10, 64)
			switch {
			case x < y:
				c = -1
			case x > y:
				c = 1
			}
		} else {
			c = bytes.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// quoteLiteral quotes a value as an SQL string literal.
func quoteLiteral(s string) string {
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

type fixSink interface {
	add(ctx context.Context, sql string) error
	close(ctx context.Context) error
}

type fileSink struct {
	path string
	f    *os.File
}

func (s *fileSink) add(_ context.Context, sql string) error {
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		s.f = f
	}
	_, err := io.WriteString(s.f, sql+"\n")
	return err
}

func (s *fileSink) close(context.Context) error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// applySink runs the fixes pipelined, in one transaction.
type applySink struct {
	tx    pgx.Tx
	batch *pgx.Batch
}

func (s *applySink) add(ctx context.Context, sql string) error {
	s.batch.Queue(sql)
	if s.batch.Len() >= pipeMax {
		return s.flush(ctx)
	}
	return nil
}

func (s *applySink) flush(ctx context.Context) error {
	if s.batch.Len() == 0 {
		return nil
	}
	err := s.tx.SendBatch(ctx, s.batch).Close()
	s.batch = &pgx.Batch{}
	return err
}

func (s *applySink) close(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	return s.tx.Commit(ctx)
}
