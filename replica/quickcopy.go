package replica

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
)

// quickCopySize is the largest table (on the provider, with its indexes
// and TOAST) that the main worker copies inside its own batch transaction.
const quickCopySize = 1 << 20

// A small table has no need for londiste3's copy protocol (a copy
// consumer, its catching-up, the wanna-sync/do-sync hand-off), whose
// waits for ticks cost seconds per table while the COPY itself costs
// milliseconds. The main worker copies it within the transaction of the
// batch it applies, under a provider snapshot S taken after the batch's
// end tick, and makes it ok with S as its custom snapshot in that same
// transaction: events whose transaction S sees are in the copy and are
// skipped (all of this batch's, and those of later batches committed
// before S), the others are applied. The state goes from NULL to ok in
// one commit, so a crash leaves it NULL, to be copied again.

// quickEligible tells whether the main worker copies a table waiting for
// its copy (state NULL) itself: the default handler, no skip_truncate, not
// in threaded_copy_tables, no foreign key to or from it here, at most
// quickCopySize on the provider.
// A table found not eligible is not looked at again by this process.
func (w *Worker) quickEligible(ctx context.Context, db, prov *pgx.Conn, t Table, src string) (bool, error) {
	w.mu.Lock()
	no := w.noQuick[t.Name]
	w.mu.Unlock()
	if no {
		return false, nil
	}
	ok, err := func() (bool, error) {
		if isVirtual(t) || t.Attrs().Has("skip_truncate") || matchesAny(w.conf().SplitCopyTables, t.Name) {
			return false, nil
		}
		var fkeys int
		if err := db.QueryRow(ctx, "select count(*) from londiste.find_table_fkeys($1)", t.Dest()).Scan(&fkeys); err != nil {
			return false, err
		}
		if fkeys > 0 {
			return false, nil
		}
		var size int64
		if err := prov.QueryRow(ctx, "select coalesce(pg_total_relation_size(londiste.find_table_oid($1)), 0)", src).Scan(&size); err != nil {
			return false, fmt.Errorf("provider: %w", err)
		}
		return size <= quickCopySize, nil
	}()
	if err == nil && !ok {
		w.mu.Lock()
		w.noQuick[t.Name] = true
		w.mu.Unlock()
	}
	return ok, err
}

// quickCopy copies the tables left to the main worker (Worker.quick) that
// are still waiting, into tx, and marks them ok there; tables is updated
// to match. A failure sends the tables back to the normal copy.
func (r *runner) quickCopy(ctx context.Context, tx pgx.Tx, tables []Table) (copied []string, err error) {
	w := r.w
	var idx []int
	w.mu.Lock()
	for i, t := range tables {
		if w.quick[t.Name] && t.Local && t.MergeState == "" {
			idx = append(idx, i)
		}
	}
	w.mu.Unlock()
	if len(idx) == 0 {
		return nil, nil
	}
	defer func() {
		if err != nil {
			w.mu.Lock()
			for _, i := range idx {
				delete(w.quick, tables[i].Name)
				w.noQuick[tables[i].Name] = true
			}
			w.mu.Unlock()
			err = fmt.Errorf("copy of small tables in the batch (they get the normal copy now): %w", err)
		}
	}()
	if r.prov == nil || r.prov.IsClosed() {
		if r.prov, err = connect(ctx, r.w.providerDSN(r.providerLoc)); err != nil {
			return nil, fmt.Errorf("provider: %w", err)
		}
	}
	ptx, err := r.prov.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer ptx.Rollback(context.Background())
	if _, err := ptx.Exec(ctx, "select set_config('lock_timeout', $1, true)", fmt.Sprintf("%dms", w.conf().LockTimeout.Milliseconds())); err != nil {
		return nil, err
	}
	pts, err := tableList(ctx, ptx, w.conf().Queue)
	if err != nil {
		return nil, err
	}
	srcName := map[string]string{}
	for _, pt := range pts {
		srcName[pt.Name] = pt.Dest()
	}
	for _, i := range idx {
		src := srcName[tables[i].Name]
		if src == "" {
			return nil, fmt.Errorf("table %s is not on the provider", tables[i].Name)
		}
		if _, err := ptx.Exec(ctx, "lock table only "+quoteFQ(src)+" in access share mode"); err != nil {
			return nil, fmt.Errorf("provider: %w", err)
		}
	}
	var snap string
	if err := ptx.QueryRow(ctx, "select txid_current_snapshot()::text").Scan(&snap); err != nil {
		return nil, err
	}
	for _, i := range idx {
		t := tables[i]
		log := w.log.With("table", t.Name)
		src := srcName[t.Name]
		srcCols, err := columnsOf(ctx, ptx, src)
		if err != nil {
			return nil, fmt.Errorf("provider: %w", err)
		}
		destCols, err := columnsOf(ctx, tx, t.Dest())
		if err != nil {
			return nil, err
		}
		cols := copyColumns(log, srcCols, destCols)
		if _, err := tx.Exec(ctx, "truncate only "+quoteFQ(t.Dest())); err != nil {
			return nil, err
		}
		cw := &countingWriter{}
		if err := pipeCopy(ctx, ptx.Conn(), tx.Conn(),
			"copy (select "+strings.Join(cols, ", ")+" from only "+quoteFQ(src)+") to stdout",
			"copy "+quoteFQ(t.Dest())+" ("+strings.Join(cols, ", ")+") from stdin", cw); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		w.m.copyRows.WithLabelValues(t.Name).Add(float64(cw.rows.Load()))
		w.m.copyBytes.WithLabelValues(t.Name).Add(float64(cw.bytes.Load()))
		log.Info("copied in the main worker's batch", "rows", cw.rows.Load(), "bytes", cw.bytes.Load())
	}
	if err := ptx.Rollback(ctx); err != nil {
		return nil, err
	}
	// any tick made after this one sees everything S sees (the margin of
	// one covers a tick being made right now with an older snapshot)
	var last int64
	if err := r.prov.QueryRow(ctx, "select last_tick_id from pgq.get_queue_info($1)", w.conf().Queue).Scan(&last); err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	for _, i := range idx {
		t := &tables[i]
		if _, err := call(ctx, tx, w.log, "select * from londiste.local_set_table_state($1, $2, $3, 'ok')", w.conf().Queue, t.Name, snap); err != nil {
			return nil, err
		}
		t.MergeState, t.CustomSnapshot = "ok", snap
		w.filterUntil[t.Name] = last + 1
		copied = append(copied, t.Name)
	}
	return copied, nil
}

// copyColumns is the column list a copy carries: the provider's columns
// that the table here has too, in the provider's order.
func copyColumns(log *slog.Logger, srcCols, destCols []string) []string {
	var cols []string
	for _, c := range srcCols {
		if contains(destCols, c) {
			cols = append(cols, pgx.Identifier{c}.Sanitize())
		} else {
			log.Warn("column missing here, not copied", "column", c)
		}
	}
	for _, c := range destCols {
		if !contains(srcCols, c) {
			log.Warn("column missing on the provider, left to its default", "column", c)
		}
	}
	return cols
}
