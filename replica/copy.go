package replica

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/pgq"
)

// copyTable brings one table in sync, from whatever state it is in, with
// londiste3's protocol: in-copy (COPY from the provider under a snapshot,
// its copy consumer registered just before), catching-up (the copy
// consumer applies the table's events the snapshot did not see), then
// wanna-sync/do-sync/ok with the main worker.
func (w *Worker) copyTable(ctx context.Context, t Table, st *consumerState, log *slog.Logger) error {
	db, err := connect(ctx, w.conf().DB)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	// the node copied from: the provider, or the table's copy_node
	src, err := w.copySource(ctx, db, t, st)
	if err != nil {
		return err
	}
	// the main worker's provider, when the copy reads another node
	mainProvider := ""
	if src.providerNode != st.providerNode {
		mainProvider = st.providerLocation
		log = log.With("source", src.providerNode)
	}
	st = src
	prov, err := connect(ctx, w.providerDSN(st.providerLocation))
	if err != nil {
		return fmt.Errorf("copy source %s: %w", st.providerNode, err)
	}
	defer prov.Close(context.Background())
	name := w.copyName(t.Name)
	if t.MergeState == "in-copy" {
		if err := w.copyData(ctx, db, prov, t, st, log); err != nil {
			return err
		}
	} else {
		// resuming: the copy consumer must still be registered on both sides
		var n int
		if err := prov.QueryRow(ctx, "select count(*) from pgq.get_consumer_info($1) where consumer_name = $2", w.conf().Queue, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			log.Warn("copy consumer gone from the provider: copying again", "state", t.MergeState)
			if _, err := call(ctx, db, w.log, "select * from londiste.local_set_table_state($1, $2, null, 'in-copy')", w.conf().Queue, t.Name); err != nil {
				return err
			}
			t.MergeState = "in-copy"
			if err := w.copyData(ctx, db, prov, t, st, log); err != nil {
				return err
			}
		} else {
			log.Info("resuming the copy", "state", t.MergeState)
		}
	}
	for {
		done, err := w.catchUp(ctx, db, t, st, mainProvider)
		if err != nil {
			return err
		}
		if done {
			break
		}
		log.Warn("copy consumer out of step: copying again")
		if _, err := call(ctx, db, w.log, "select * from londiste.local_set_table_state($1, $2, null, 'in-copy')", w.conf().Queue, t.Name); err != nil {
			return err
		}
		if err := w.copyData(ctx, db, prov, t, st, log); err != nil {
			return err
		}
	}
	if _, err := prov.Exec(ctx, `select pgq.unregister_consumer($1, $2) from pgq.get_consumer_info($1) where consumer_name = $2`, w.conf().Queue, name); err != nil {
		return fmt.Errorf("unregister the copy consumer on the provider: %w", err)
	}
	w.setError(ctx, name, nil)
	return nil
}

// copySource is where a table's copy reads from (londiste3's copy_node
// table attribute, set by add-table/resync --copy-node or
// --find-copy-node): the provider when unset; a named member, which must
// have a queue (root or branch) and the table in sync; or, for '?', the
// first node up from the provider that has the table in sync. Ticks are
// the same along the cascade, so the copy's consumer on that node meets
// the main worker at the same tick.
func (w *Worker) copySource(ctx context.Context, db *pgx.Conn, t Table, st *consumerState) (*consumerState, error) {
	want := t.Attrs().Get("copy_node")
	if want == "" || want == st.providerNode {
		return st, nil
	}
	q := w.conf().Queue
	has := func(loc string) (*NodeInfo, bool, error) {
		c, err := connect(ctx, w.providerDSN(loc))
		if err != nil {
			return nil, false, err
		}
		defer c.Close(context.Background())
		n, err := nodeInfo(ctx, c, q)
		if err != nil {
			return nil, false, err
		}
		ts, err := tableList(ctx, c, q)
		if err != nil {
			return nil, false, err
		}
		for _, x := range ts {
			if x.Name == t.Name && x.Local && (x.MergeState == "ok" || n.Type == "root") && !isVirtual(x) {
				return n, n.Type != "leaf", nil
			}
		}
		return n, false, nil
	}
	if want == "?" {
		name, loc := st.providerNode, st.providerLocation
		for range 32 {
			n, ok, err := has(loc)
			if err != nil {
				return nil, fmt.Errorf("finding a copy node for %s: %s: %w", t.Name, name, err)
			}
			if ok {
				s := *st
				s.providerNode, s.providerLocation = name, loc
				return &s, nil
			}
			if n.Type == "root" || n.ProviderLoc == "" {
				break
			}
			name, loc = n.ProviderNode, n.ProviderLoc
		}
		return nil, fmt.Errorf("no node up from %s has %s in sync to copy it from", st.providerNode, t.Name)
	}
	mems, err := members(ctx, db, q)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(mems, func(m Member) bool { return m.Name == want })
	if i < 0 || mems[i].Dead {
		return nil, fmt.Errorf("copy node %s of %s is not a live member", want, t.Name)
	}
	if _, ok, err := has(mems[i].Location); err != nil || !ok {
		return nil, fmt.Errorf("copy node %s has no queue or does not have %s in sync (%v)", want, t.Name, err)
	}
	s := *st
	s.providerNode, s.providerLocation = want, mems[i].Location
	return &s, nil
}

// catchUp runs the copy consumer until its table is handed over (true) or
// its position is found out of step (false: copy again). mainProvider is
// the main worker's provider's location when st is another node.
func (w *Worker) catchUp(ctx context.Context, db *pgx.Conn, t Table, st *consumerState, mainProvider string) (bool, error) {
	name := w.copyName(t.Name)
	cfg := w.consumerConfig(name)
	// a copy consumer applies its table's events only: the provider
	// leaves the others out
	filter := "ev_extra1 = " + quoteLiteral(t.Name)
	cfg.Filter = func(context.Context) (string, error) { return filter, nil }
	r := &runner{w: w, name: name, copyTable: t.Name, db: db, ap: newApplier(), providerNode: st.providerNode, providerLoc: st.providerLocation, mainProviderLoc: mainProvider}
	cfg.Collect = func() (int, time.Duration) {
		if mainProvider != "" || r.handing.Load() {
			// one tick per batch, whatever the source's server would
			// merge: a batch must end exactly at the main worker's do-sync
			// tick. On one queue, merged batches stop where the other
			// consumers stand, but a copy from another node reads a queue
			// on which the main worker is not a consumer.
			return 0, time.Microsecond
		}
		return 0, 0
	}
	c, err := pgq.NewConsumer(w.providerDSN(st.providerLocation), cfg)
	if err != nil {
		return false, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done, recopy atomic.Bool
	err = c.Run(runCtx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
		err := r.batch(ctx, b)
		switch {
		case errors.Is(err, errCopyDone):
			done.Store(true)
			cancel()
		case errors.Is(err, errRecopy):
			w.log.Warn("copy out of step", "table", t.Name, "err", err)
			recopy.Store(true)
			cancel()
		}
		return err
	}))
	switch {
	case done.Load():
		return true, nil
	case recopy.Load():
		return false, nil
	case err == nil:
		err = ctx.Err()
	}
	return false, err
}

// copyAppName starts the application_name of a copy's session; the
// provider's row estimate follows.
const copyAppName = "pgqgo londiste copy ~"

// CopyProgress is a running COPY into a table here.
type CopyProgress struct {
	Table        string        `json:"table"`
	Rows         int64         `json:"rows"`
	Bytes        int64         `json:"bytes"`
	EstimateRows int64         `json:"estimated_rows"`
	Elapsed      time.Duration `json:"elapsed_ns"`
}

// ETA is the time left at the rate so far (0 when unknown).
func (p CopyProgress) ETA() time.Duration {
	if p.Rows == 0 || p.EstimateRows <= p.Rows {
		return 0
	}
	return time.Duration(float64(p.Elapsed) * float64(p.EstimateRows-p.Rows) / float64(p.Rows))
}

func (p CopyProgress) String() string {
	s := fmt.Sprintf("%d rows, %.1f MB", p.Rows, float64(p.Bytes)/1e6)
	if p.EstimateRows > 0 {
		s = fmt.Sprintf("%d/%d rows (%.0f%%), %.1f MB", p.Rows, p.EstimateRows, 100*float64(min(p.Rows, p.EstimateRows))/float64(p.EstimateRows), float64(p.Bytes)/1e6)
	}
	if eta := p.ETA(); eta > 0 {
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}

// copyProgress lists the copies running into db's tables.
func copyProgress(ctx context.Context, db queryer) ([]CopyProgress, error) {
	// a split copy is several sessions into the same table
	rows, err := db.Query(ctx, `select p.relid::regclass::text, sum(p.tuples_processed)::int8, sum(p.bytes_processed)::int8,
	        max(substr(a.application_name, length($1) + 1)), max(extract(epoch from clock_timestamp() - a.xact_start))::float8
	   from pg_stat_progress_copy p join pg_stat_activity a on a.pid = p.pid
	  where a.application_name like $2 and a.datname = current_database()
	  group by p.relid`, copyAppName, likePrefix(copyAppName))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (CopyProgress, error) {
		var p CopyProgress
		var est string
		var secs float64
		err := r.Scan(&p.Table, &p.Rows, &p.Bytes, &est, &secs)
		p.EstimateRows, _ = strconv.ParseInt(est, 10, 64)
		p.Elapsed = time.Duration(secs * float64(time.Second))
		return p, err
	})
}

// Progress lists the copies running into this node's tables.
func (a *Admin) Progress(ctx context.Context) ([]CopyProgress, error) {
	return copyProgress(ctx, a.db)
}

// columnsOf lists a table's columns in order.
func columnsOf(ctx context.Context, db queryer, table string) ([]string, error) {
	rows, err := db.Query(ctx, `select attname from pg_attribute where attrelid = londiste.find_table_oid($1)
	   and attnum > 0 and not attisdropped order by attnum`, table)
	if err != nil {
		return nil, err
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err == nil && len(cols) == 0 {
		err = fmt.Errorf("table %s has no columns (or does not exist)", table)
	}
	return cols, err
}

// countingWriter counts the rows and bytes of one or more COPY streams.
type countingWriter struct {
	bytes atomic.Int64
	rows  atomic.Int64
}

// countTo passes writes on to w, counting their bytes and rows (the
// newlines of COPY's text format) in c.
func countTo(w io.Writer, c *countingWriter) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		n, err := w.Write(p)
		c.bytes.Add(int64(n))
		c.rows.Add(int64(bytes.Count(p[:n], []byte{'\n'})))
		return n, err
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// copyData does the in-copy step: a fresh copy consumer on the provider
// (so its position is before the snapshot), the COPY, and catching-up with
// the snapshot, committed together on the target.
func (w *Worker) copyData(ctx context.Context, db, prov *pgx.Conn, t Table, st *consumerState, log *slog.Logger) error {
	name := w.copyName(t.Name)
	start := time.Now()
	if _, err := prov.Exec(ctx, `select pgq.unregister_consumer($1, $2) from pgq.get_consumer_info($1) where consumer_name = $2`, w.conf().Queue, name); err != nil {
		return err
	}
	if _, err := prov.Exec(ctx, "select pgq.register_consumer($1, $2)", w.conf().Queue, name); err != nil {
		return fmt.Errorf("register the copy consumer: %w", err)
	}
	var pos int64
	if err := prov.QueryRow(ctx, "select last_tick from pgq.get_consumer_info($1, $2)", w.conf().Queue, name).Scan(&pos); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "select * from pgq_node.unregister_consumer($1, $2)", w.conf().Queue, name); err != nil {
		return err
	}
	if _, err := call(ctx, db, w.log, "select * from pgq_node.register_consumer($1, $2, $3, $4)", w.conf().Queue, name, st.providerNode, pos); err != nil {
		return fmt.Errorf("register the copy consumer here: %w", err)
	}
	// the provider's name for the table
	src, err := providerName(ctx, prov, w.conf().Queue, t.Name)
	if err != nil {
		return err
	}
	dest := t.Dest()
	ptx, err := prov.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer ptx.Rollback(context.Background())
	// the lock (before the snapshot) keeps the table from being rewritten
	// under a split copy, whose ranges are physical
	if _, err := ptx.Exec(ctx, "lock table only "+quoteFQ(src)+" in access share mode"); err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	var snap string
	if err := ptx.QueryRow(ctx, "select txid_current_snapshot()::text").Scan(&snap); err != nil {
		return err
	}
	srcCols, err := columnsOf(ctx, ptx, src)
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	// the provider's row estimate, in the session's application_name: status
	// (any process) reads the COPY's progress from pg_stat_progress_copy
	var estimate float64
	var size, blocks int64
	var version int
	if err := ptx.QueryRow(ctx, `select greatest(reltuples, 0), pg_relation_size(oid), pg_relation_size(oid) / current_setting('block_size')::int8,
	        current_setting('server_version_num')::int from pg_class where oid = londiste.find_table_oid($1)`, src).Scan(&estimate, &size, &blocks, &version); err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	streams := 1
	if version >= 140000 && blocks >= 2 && (size >= splitCopySize || matchesAny(w.conf().SplitCopyTables, t.Name)) {
		streams = int(min(int64(w.conf().CopyStreams), blocks))
	}
	var exported string
	if streams > 1 {
		if err := ptx.QueryRow(ctx, "select pg_export_snapshot()").Scan(&exported); err != nil {
			return fmt.Errorf("provider: export the snapshot: %w", err)
		}
	}
	appName := fmt.Sprintf("%s%.0f", copyAppName, estimate)
	tx, err := durableTx(ctx, db, true)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "lock table only "+quoteFQ(dest)+" in access exclusive mode"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "select set_config('application_name', $1, true)", appName); err != nil {
		return err
	}
	destCols, err := columnsOf(ctx, tx, dest)
	if err != nil {
		return err
	}
	cols := copyColumns(log, srcCols, destCols)
	truncated := !t.Attrs().Has("skip_truncate")
	if truncated {
		if _, err := tx.Exec(ctx, "truncate only "+quoteFQ(dest)); err != nil {
			return err
		}
	}
	// for a big table, indexes and keys are built once after the COPY
	// instead of row by row; a small one (under 8 MB on the provider) keeps
	// them, which costs less than the DDL. What a copy of an earlier
	// release (ranges in transactions of their own) dropped and did not
	// live to rebuild is in dropped_ddl.
	var restore []string
	if t.DroppedDDL != "" {
		restore = append(restore, t.DroppedDDL)
	}
	if size >= 8<<20 || streams > 1 {
		dropped, err := dropIndexes(ctx, tx, dest)
		if err != nil {
			return err
		}
		restore = append(restore, dropped...)
	}
	script := strings.Join(restore, ";\n")
	cw := &countingWriter{}
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	go func() {
		for range progress.C {
			log.Info("copying", "rows", cw.rows.Load(), "bytes", cw.bytes.Load(), "streams", streams)
		}
	}()
	// The rows go in with FREEZE where the table was truncated in this
	// transaction (a plain table, not partitioned): written frozen and
	// all-visible, so neither the index build nor the next vacuum rewrites
	// every page to set hint bits and visibility. The truncate, the
	// dropped indexes, the COPY and their rebuild are one transaction: a
	// crash anywhere leaves the table as it was, in-copy.
	var plain bool
	if err := tx.QueryRow(ctx, "select relkind = 'r' from pg_class where oid = londiste.find_table_oid($1)", dest).Scan(&plain); err != nil {
		return err
	}
	selectCols := "select " + strings.Join(cols, ", ") + " from only " + quoteFQ(src)
	into := "copy " + quoteFQ(dest) + " (" + strings.Join(cols, ", ") + ") from stdin"
	if truncated && plain {
		into += " with (freeze)"
	}
	if streams == 1 {
		if err := pipeCopy(ctx, ptx.Conn(), tx.Conn(), "copy ("+selectCols+") to stdout", into, cw); err != nil {
			return err
		}
	} else if err := w.copyRanges(ctx, tx.Conn(), st, exported, selectCols, into, blocks, streams, cw); err != nil {
		return err
	}
	progress.Stop()
	w.m.copyRows.WithLabelValues(t.Name).Add(float64(cw.rows.Load()))
	w.m.copyBytes.WithLabelValues(t.Name).Add(float64(cw.bytes.Load()))
	copied := time.Since(start)
	if script != "" {
		if _, err := tx.Exec(ctx, script); err != nil {
			return fmt.Errorf("rebuild the indexes and keys of %s: %w", dest, err)
		}
	}
	if t.DroppedDDL != "" {
		if _, err := call(ctx, tx, w.log, "select * from londiste.local_set_table_struct($1, $2, null)", w.conf().Queue, t.Name); err != nil {
			return err
		}
	}
	if _, err := call(ctx, tx, w.log, "select * from londiste.local_set_table_state($1, $2, $3, 'catching-up')", w.conf().Queue, t.Name, snap); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	log.Info("copied", "rows", cw.rows.Load(), "bytes", cw.bytes.Load(), "streams", streams, "copy", copied.Round(time.Millisecond),
		"with_indexes", time.Since(start).Round(time.Millisecond))
	_ = ptx.Rollback(ctx)
	if cw.rows.Load() > 0 {
		if _, err := db.Exec(ctx, "analyze "+quoteFQ(dest)); err != nil {
			log.Warn("analyze", "err", err)
		}
	}
	w.notify()
	if err := tickNow(ctx, prov, w.conf().Queue, w.conf().RemoteExtraConnstr); err != nil {
		log.Warn("force_tick on the provider", "err", err)
	}
	return nil
}

// splitCopySize is the provider size from which a table's copy is split
// into CopyStreams ranges.
const splitCopySize = 64 << 20

// pipeCopy streams a COPY TO on from into a COPY FROM on to.
func pipeCopy(ctx context.Context, from, to *pgx.Conn, out, in string, cw *countingWriter) error {
	pr, pw := io.Pipe()
	copyErr := make(chan error, 1)
	go func() {
		// CopyTo writes a row at a time and CopyFrom sends what each read
		// returns as one message: the buffer makes those 256 KB, not a row
		bw := bufio.NewWriterSize(pw, 256<<10)
		_, err := from.PgConn().CopyTo(ctx, countTo(bw, cw), out)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		copyErr <- err
	}()
	_, err := to.PgConn().CopyFrom(ctx, pr, in)
	pr.CloseWithError(err)
	if cerr := <-copyErr; cerr != nil {
		return fmt.Errorf("copy out of the provider: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("copy in: %w", err)
	}
	return nil
}

// copyRanges copies a table as streams ranges of its pages (the last one
// open-ended), each read by its own provider session under the exported
// snapshot, all at once, into one COPY on the target session to: rows are
// passed on in chunks of whole rows (a COPY TO sends a row per message).
func (w *Worker) copyRanges(ctx context.Context, to *pgx.Conn, st *consumerState, snapshot, selectCols, into string, blocks int64, streams int, cw *countingWriter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []byte, 2*streams)
	errs := make(chan error, streams)
	for i := range streams {
		lo, hi := blocks*int64(i)/int64(streams), blocks*int64(i+1)/int64(streams)
		where := fmt.Sprintf(" where ctid >= '(%d,0)'::tid", lo)
		if i < streams-1 {
			where += fmt.Sprintf(" and ctid < '(%d,0)'::tid", hi)
		}
		go func() {
			err := w.readRange(ctx, st, snapshot, "copy ("+selectCols+where+") to stdout", chunks, cw)
			if err != nil {
				cancel()
				err = fmt.Errorf("range from page %d: %w", lo, err)
			}
			errs <- err
		}()
	}
	in := &chunkReader{chunks: chunks}
	done := make(chan error, 1)
	go func() {
		var first error
		for range streams {
			if err := <-errs; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
				first = err
			}
		}
		in.fail = first
		close(chunks) // the reader sees fail after the last chunk
		done <- first
	}()
	_, err := to.PgConn().CopyFrom(ctx, in, into)
	if err != nil {
		cancel()
	}
	rerr := <-done
	switch {
	case rerr != nil && !errors.Is(rerr, context.Canceled):
		return fmt.Errorf("copy out of the provider: %w", rerr)
	case err != nil:
		return fmt.Errorf("copy in: %w", err)
	case rerr != nil:
		return fmt.Errorf("copy out of the provider: %w", rerr)
	}
	return nil
}

// readRange sends one range's rows to chunks, about 256 KB at a time.
func (w *Worker) readRange(ctx context.Context, st *consumerState, snapshot, out string, chunks chan<- []byte, cw *countingWriter) error {
	prov, ptx, err := snapshotSession(ctx, w.providerDSN(st.providerLocation), snapshot)
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	defer prov.Close(context.Background())
	const chunkSize = 256 << 10
	buf := make([]byte, 0, chunkSize+4096)
	send := func() error {
		select {
		case chunks <- buf:
		case <-ctx.Done():
			return ctx.Err()
		}
		buf = make([]byte, 0, chunkSize+4096)
		return nil
	}
	rows := writerFunc(func(p []byte) (int, error) {
		buf = append(buf, p...)
		if len(buf) >= chunkSize {
			if err := send(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	})
	if _, err := ptx.Conn().PgConn().CopyTo(ctx, countTo(rows, cw), out); err != nil {
		return err
	}
	if len(buf) > 0 {
		return send()
	}
	return nil
}

// chunkReader reads the chunks of copyRanges' readers as one stream; after
// the last one it returns fail (a reader's error), or io.EOF.
type chunkReader struct {
	chunks <-chan []byte
	cur    []byte
	fail   error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		c, ok := <-r.chunks
		if !ok {
			if r.fail != nil {
				return 0, r.fail
			}
			return 0, io.EOF
		}
		r.cur = c
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// dropIndexes drops a table's indexes and the constraints that own one
// (primary key, unique, exclusion), inside the caller's transaction, and
// returns the statements that make them again.
func dropIndexes(ctx context.Context, tx pgx.Tx, table string) ([]string, error) {
	q := quoteFQ(table)
	var restore []string
	rows, err := tx.Query(ctx, `select conname, pg_get_constraintdef(oid) from pg_constraint
	  where conrelid = londiste.find_table_oid($1) and contype in ('p', 'u', 'x') order by contype <> 'p', conname`, table)
	if err != nil {
		return nil, err
	}
	type con struct{ name, def string }
	cons, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (con, error) {
		var c con
		return c, r.Scan(&c.name, &c.def)
	})
	if err != nil {
		return nil, err
	}
	irows, err := tx.Query(ctx, `select pg_get_indexdef(i.indexrelid), quote_ident(n.nspname) || '.' || quote_ident(c.relname)
	   from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
	  where i.indrelid = londiste.find_table_oid($1)
	    and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid)`, table)
	if err != nil {
		return nil, err
	}
	type idx struct{ def, name string }
	idxs, err := pgx.CollectRows(irows, func(r pgx.CollectableRow) (idx, error) {
		var i idx
		return i, r.Scan(&i.def, &i.name)
	})
	if err != nil {
		return nil, err
	}
	type step struct{ drop, restore string }
	var steps []step
	for _, c := range cons { // primary key first
		n := pgx.Identifier{c.name}.Sanitize()
		steps = append(steps, step{"alter table only " + q + " drop constraint " + n, "alter table only " + q + " add constraint " + n + " " + c.def})
	}
	for _, i := range idxs {
		steps = append(steps, step{"drop index " + i.name, i.def})
	}
	for _, s := range steps {
		// a key that a foreign key from outside the set still needs cannot
		// go: it stays, and the COPY maintains it
		sp, err := tx.Begin(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := sp.Exec(ctx, s.drop); err != nil {
			if rerr := sp.Rollback(ctx); rerr != nil {
				return nil, rerr
			}
			continue
		}
		if err := sp.Commit(ctx); err != nil {
			return nil, err
		}
		restore = append(restore, s.restore)
	}
	return restore, nil
}
