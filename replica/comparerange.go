package replica

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/jackc/pgx/v5"
)

// KeyRangeDiff is a key range whose count or checksum differ between the
// provider and this node (compare --json).
type KeyRangeDiff struct {
	From   *int64 `json:"from"` // nil: from the lowest key
	To     *int64 `json:"to"`   // exclusive; nil: to the highest key
	Source string `json:"srcdb"`
	Target string `json:"dstdb"`
}

// A big table (as big as a split copy's, or in threaded_copy_tables)
// whose primary key is one integer column is compared as CopyStreams key
// ranges on each side at once, each range in its own session under its
// side's exported snapshot. The ranges' counts and checksums add up to
// the whole table's (the output stays londiste3's numbers), and the
// ranges that differ are listed in compare --json, to narrow a repair. The
// first range is open below and the last open above, so rows outside the
// provider's key span are counted too.

// rangeKey is the table's primary key column when the table is to be
// compared in key ranges ("" otherwise).
func (a *Admin) rangeKey(ctx context.Context, sy *synced, t Table) (string, error) {
	if a.cfg.CopyStreams < 2 {
		return "", nil
	}
	var key string
	var intKey bool
	var size int64
	err := sy.ptx.QueryRow(ctx, `select coalesce((select min(a.attname) from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
	         where i.indrelid = c.oid and i.indisprimary and i.indnatts = 1), ''),
	       coalesce((select a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) from pg_index i join pg_attribute a
	           on a.attrelid = i.indrelid and a.attnum = i.indkey[0] where i.indrelid = c.oid and i.indisprimary and i.indnatts = 1), false),
	       pg_relation_size(c.oid)
	  from pg_class c where c.oid = londiste.find_table_oid($1)`, sy.src).Scan(&key, &intKey, &size)
	if err != nil || key == "" || !intKey || !contains(sy.dstCols, key) {
		return "", err
	}
	if size < splitCopySize && !matchesAny(a.cfg.SplitCopyTables, t.Name) {
		return "", nil
	}
	return key, nil
}

// compareRanges runs the compare query (its "where" placeholder filled
// per range) over n key ranges on both sides and returns both sides'
// totals formatted, and the ranges that differ.
func (a *Admin) compareRanges(ctx context.Context, provLoc string, sy *synced, dest, key, q string, countOnly bool) (string, string, []KeyRangeDiff, error) {
	n := a.cfg.CopyStreams
	var lo, hi *int64
	if err := sy.ptx.QueryRow(ctx, "select min("+pgx.Identifier{key}.Sanitize()+")::int8, max("+pgx.Identifier{key}.Sanitize()+")::int8 from only "+quoteFQ(sy.src)).Scan(&lo, &hi); err != nil {
		return "", "", nil, fmt.Errorf("provider: %w", err)
	}
	if lo == nil { // empty on the provider: one range
		lo, hi = new(int64), new(int64)
	}
	bounds := make([]*int64, n+1) // bounds[0] and bounds[n] nil: open ends
	for i := 1; i < n; i++ {
		v := *lo + int64(float64(*hi-*lo+1)*float64(i)/float64(n))
		bounds[i] = &v
	}
	var psnap, dsnap string
	if err := sy.ptx.QueryRow(ctx, "select pg_export_snapshot()").Scan(&psnap); err != nil {
		return "", "", nil, fmt.Errorf("provider: %w", err)
	}
	if err := sy.dtx.QueryRow(ctx, "select pg_export_snapshot()").Scan(&dsnap); err != nil {
		return "", "", nil, err
	}
	qk := pgx.Identifier{key}.Sanitize()
	where := func(i int) string {
		var c []string
		if bounds[i] != nil {
			c = append(c, fmt.Sprintf("%s >= %d", qk, *bounds[i]))
		}
		if bounds[i+1] != nil {
			c = append(c, fmt.Sprintf("%s < %d", qk, *bounds[i+1]))
		}
		if len(c) == 0 {
			return ""
		}
		return " where " + strings.Join(c, " and ")
	}
	type part struct {
		cnt, sum *big.Int
		null     bool // sum was NULL (no rows)
		err      error
	}
	run := func(dsn, snapshot, table string, i int, out chan<- func() (int, bool, part)) {
		p := part{}
		p.err = func() error {
			c, err := connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer c.Close(context.Background())
			tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
			if err != nil {
				return err
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(ctx, "set transaction snapshot "+quoteLiteral(snapshot)); err != nil {
				return err
			}
			sql := strings.ReplaceAll(q, "_TABLE_", quoteFQ(table)) + where(i)
			var cnt string
			var sum *string
			if countOnly {
				err = tx.QueryRow(ctx, sql, pgx.QueryResultFormats{pgx.TextFormatCode}).Scan(&cnt)
			} else {
				err = tx.QueryRow(ctx, sql, pgx.QueryResultFormats{pgx.TextFormatCode}).Scan(&cnt, &sum)
			}
			if err != nil {
				return err
			}
			p.cnt, p.sum = new(big.Int), new(big.Int)
			if _, ok := p.cnt.SetString(cnt, 10); !ok {
				return fmt.Errorf("count %q", cnt)
			}
			if sum == nil {
				p.null = true
			} else if _, ok := p.sum.SetString(*sum, 10); !ok {
				return fmt.Errorf("checksum %q", *sum)
			}
			return nil
		}()
		out <- func() (int, bool, part) { return i, dsn == a.cfg.DB, p }
	}
	provDSN := a.remoteDSN(provLoc)
	results := make(chan func() (int, bool, part), 2*n)
	for i := range n {
		go run(provDSN, psnap, sy.src, i, results)
		go run(a.cfg.DB, dsnap, dest, i, results)
	}
	src, dst := make([]part, n), make([]part, n)
	var errs []error
	for range 2 * n {
		i, here, p := (<-results)()
		if p.err != nil {
			side := "provider"
			if here {
				side = "here"
			}
			errs = append(errs, fmt.Errorf("%s, key range %d: %w", side, i, p.err))
		}
		if here {
			dst[i] = p
		} else {
			src[i] = p
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", "", nil, err
	}
	total := func(ps []part) map[string]string {
		cnt, sum, rows := new(big.Int), new(big.Int), false
		for _, p := range ps {
			cnt.Add(cnt, p.cnt)
			sum.Add(sum, p.sum)
			rows = rows || !p.null
		}
		m := map[string]string{"cnt": cnt.String(), "chksum": "None"}
		if rows {
			m["chksum"] = sum.String()
		}
		return m
	}
	one := func(p part) string {
		m := map[string]string{"cnt": p.cnt.String(), "chksum": "None"}
		if !p.null {
			m["chksum"] = p.sum.String()
		}
		return formatCompare("", countOnly, m)
	}
	var diffs []KeyRangeDiff
	for i := range n {
		if s, d := one(src[i]), one(dst[i]); s != d {
			diffs = append(diffs, KeyRangeDiff{From: bounds[i], To: bounds[i+1], Source: s, Target: d})
		}
	}
	return formatCompare(a.cfg.CompareFmt, countOnly, total(src)), formatCompare(a.cfg.CompareFmt, countOnly, total(dst)), diffs, nil
}
