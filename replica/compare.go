package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CompareResult is one table's comparison.
type CompareResult struct {
	Table    string `json:"table"`
	Source   string `json:"srcdb"` // "N rows, checksum=X" (compare_fmt)
	Target   string `json:"dstdb"`
	Equal    bool   `json:"equal"`
	LockedMS int64  `json:"root_locked_ms"` // how long the provider's table was locked
	// KeyRanges is how many key ranges a table found different was hashed
	// in on each side (0: not done: equal, or no single integer key);
	// DifferingRanges lists the ranges that differ.
	KeyRanges       int            `json:"key_ranges,omitempty"`
	DifferingRanges []KeyRangeDiff `json:"differing_key_ranges,omitempty"`
}

// CompareOptions are compare's options.
type CompareOptions struct {
	CountOnly bool
	// Force compares even when the leaf does not catch up within lock_timeout.
	Force bool
}

// Compare checks that each table (all ok tables when none are named) has
// the same rows here and on the provider: count(*) and the sum of
// hashtext(row::text) over the common columns, as londiste3 compare does,
// both sides at the same queue position and counted in parallel.
//
// The position: the leaf first catches up with the provider without any
// lock; then the provider's table is locked IN SHARE MODE (writers wait,
// at most lock_timeout to get it), a tick is forced, and as soon as this
// node's worker has applied that tick both sides take their snapshots and
// the lock is released. The lock is held for a tick and its apply, not for
// the counting.
func (a *Admin) Compare(ctx context.Context, opts CompareOptions, names ...string) ([]CompareResult, error) {
	return eachOKTable(ctx, a, "compare", names, func(n *NodeInfo, t Table) (CompareResult, error) {
		return a.compareTable(ctx, n, t, opts)
	})
}

// eachOKTable runs fn for each named table (all when none are) of a
// subscriber node, every one of them ok, and collects the results.
func eachOKTable[R any](ctx context.Context, a *Admin, what string, names []string, fn func(*NodeInfo, Table) (R, error)) ([]R, error) {
	n, err := a.node(ctx)
	if err != nil {
		return nil, err
	}
	if n.Type == "root" {
		return nil, fmt.Errorf("%s: run it on a subscriber node (the root has no provider)", what)
	}
	tables, err := a.okTables(ctx, names)
	if err != nil {
		return nil, err
	}
	var out []R
	for _, t := range tables {
		r, err := fn(n, t)
		if err != nil {
			return out, fmt.Errorf("%s: %w", t.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (a *Admin) okTables(ctx context.Context, names []string) ([]Table, error) {
	all, err := tableList(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[fqName(n)] = true
	}
	var out []Table
	for _, t := range all {
		if !t.Local || isVirtual(t) {
			continue
		}
		if len(want) > 0 && !want[t.Name] {
			continue
		}
		delete(want, t.Name)
		if t.MergeState != "ok" {
			return nil, fmt.Errorf("table %s is not in sync (%s)", t.Name, stateName(t.MergeState))
		}
		out = append(out, t)
	}
	for n := range want {
		return nil, fmt.Errorf("table %s is not replicated here", n)
	}
	return out, nil
}

// syncedSnapshots returns a REPEATABLE READ transaction on the provider and
// one here that see the table at the same queue position.
func (a *Admin) syncedSnapshots(ctx context.Context, n *NodeInfo, src string, force bool) (pgx.Tx, pgx.Tx, time.Duration, func(), error) {
	prov, err := a.remote(ctx, n.ProviderLoc)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	lockConn, err := a.remote(ctx, n.ProviderLoc)
	if err != nil {
		prov.Close(ctx)
		return nil, nil, 0, nil, err
	}
	local, err := connect(ctx, a.cfg.DB)
	if err != nil {
		prov.Close(ctx)
		lockConn.Close(ctx)
		return nil, nil, 0, nil, err
	}
	cleanup := func() {
		prov.Close(context.Background())
		lockConn.Close(context.Background())
		local.Close(context.Background())
	}
	fail := func(err error) (pgx.Tx, pgx.Tx, time.Duration, func(), error) {
		cleanup()
		return nil, nil, 0, nil, err
	}
	timeout := a.cfg.LockTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	lastTick := func(c *pgx.Conn) (int64, error) {
		var t int64
		err := c.QueryRow(ctx, "select last_tick_id from pgq.get_queue_info($1)", a.cfg.Queue).Scan(&t)
		return t, err
	}
	completed := func() (int64, error) {
		var t int64
		err := local.QueryRow(ctx, "select coalesce(worker_last_tick, 0) from pgq_node.get_node_info($1)", a.cfg.Queue).Scan(&t)
		return t, err
	}
	waitFor := func(tick int64, limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for {
			c, err := completed()
			if err != nil {
				return err
			}
			if c >= tick {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("this node's worker is at tick %d, not at the provider's %d after %v (is it running?)", c, tick, limit)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	// catch up without a lock first, so the locked wait is one tick
	if t, err := lastTick(prov); err != nil {
		return fail(err)
	} else if err := waitFor(t, max(timeout, 60*time.Second)); err != nil && !force {
		return fail(err)
	}
	pn, err := nodeInfo(ctx, prov, a.cfg.Queue)
	if err != nil {
		return fail(err)
	}
	if pn.Type != "root" {
		// a branch's tables change only through its worker: paused, its
		// queue stops at a tick, which this node reaches and cannot pass
		// (londiste3's compare waits for a tick past it, which never comes:
		// skytools-legacy pull request #58)
		return a.snapshotsAtPausedProvider(ctx, pn, prov, lockConn, local, cleanup, timeout, force, lastTick, waitFor)
	}
	ltx, err := lockConn.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer ltx.Rollback(context.Background())
	if _, err := ltx.Exec(ctx, fmt.Sprintf("set local lock_timeout = %d", timeout.Milliseconds())); err != nil {
		return fail(err)
	}
	if _, err := ltx.Exec(ctx, "lock table only "+quoteFQ(src)+" in share mode"); err != nil {
		return fail(fmt.Errorf("lock on the provider: %w", err))
	}
	locked := time.Now()
	before, err := lastTick(prov)
	if err != nil {
		return fail(err)
	}
	if err := tickNow(ctx, prov, a.cfg.Queue, a.cfg.RemoteExtraConnstr); err != nil {
		return fail(err)
	}
	// the next tick is cut while no writer of the table is running
	var tick int64
	deadline := time.Now().Add(timeout)
	for {
		if tick, err = lastTick(prov); err != nil {
			return fail(err)
		}
		if tick > before {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("no tick on the provider within %v (is its ticker running?)", timeout))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := waitFor(tick, max(timeout-time.Since(locked), time.Second)); err != nil && !force {
		return fail(err)
	}
	ptx, dtx, err := snapshotsNow(ctx, prov, local)
	if err != nil {
		return fail(err)
	}
	if err := ltx.Rollback(ctx); err != nil {
		return fail(err)
	}
	return ptx, dtx, time.Since(locked), cleanup, nil
}

// snapshotsNow takes a REPEATABLE READ snapshot on each side, provider
// first.
func snapshotsNow(ctx context.Context, prov, local *pgx.Conn) (pgx.Tx, pgx.Tx, error) {
	var txs [2]pgx.Tx
	for i, c := range []*pgx.Conn{prov, local} {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, nil, err
		}
		if _, err := tx.Exec(ctx, "select 1"); err != nil {
			return nil, nil, err
		}
		txs[i] = tx
	}
	return txs[0], txs[1], nil
}

// snapshotsAtPausedProvider is syncedSnapshots against a branch: its worker
// is paused for the moment it takes this node to reach the branch's last
// tick and both snapshots to be taken, and resumed whatever happens.
func (a *Admin) snapshotsAtPausedProvider(ctx context.Context, pn *NodeInfo, prov, ctl, local *pgx.Conn, cleanup func(), timeout time.Duration,
	force bool, lastTick func(*pgx.Conn) (int64, error), waitFor func(int64, time.Duration) error) (pgx.Tx, pgx.Tx, time.Duration, func(), error) {
	fail := func(err error) (pgx.Tx, pgx.Tx, time.Duration, func(), error) {
		cleanup()
		return nil, nil, 0, nil, err
	}
	paused := time.Now()
	defer func() {
		if err := setPaused(context.WithoutCancel(ctx), ctl, a.log, a.cfg.Queue, pn.WorkerName, false, timeout); err != nil {
			a.log.Error("resuming the provider's worker: run resume on it", "node", pn.Name, "err", err)
		}
	}()
	if err := setPaused(ctx, ctl, a.log, a.cfg.Queue, pn.WorkerName, true, timeout); err != nil {
		return fail(fmt.Errorf("pausing the provider's worker: %w", err))
	}
	tick, err := lastTick(prov)
	if err != nil {
		return fail(err)
	}
	if err := waitFor(tick, max(timeout, 60*time.Second)); err != nil && !force {
		return fail(err)
	}
	ptx, dtx, err := snapshotsNow(ctx, prov, local)
	if err != nil {
		return fail(err)
	}
	return ptx, dtx, time.Since(paused), cleanup, nil
}

// providerTable is the provider's name for a table (its dest_table there).
func (a *Admin) providerTable(ctx context.Context, n *NodeInfo, t Table) (string, error) {
	prov, err := a.remote(ctx, n.ProviderLoc)
	if err != nil {
		return "", err
	}
	defer prov.Close(ctx)
	return providerName(ctx, prov, a.cfg.Queue, t.Name)
}

// providerName reads a table's local name on the provider.
func providerName(ctx context.Context, prov queryer, queue, table string) (string, error) {
	pts, err := tableList(ctx, prov, queue)
	if err != nil {
		return "", err
	}
	for _, pt := range pts {
		if pt.Name == table {
			return pt.Dest(), nil
		}
	}
	return table, nil
}

// synced is a table seen on both sides at the same queue position.
type synced struct {
	src              string // the provider's name for the table
	ptx, dtx         pgx.Tx // REPEATABLE READ on the provider and here
	locked           time.Duration
	srcCols, dstCols []string
	cleanup          func()
}

// syncTable finds the provider's table, takes both sides' snapshots at one
// position (syncedSnapshots) and reads both sides' columns.
func (a *Admin) syncTable(ctx context.Context, n *NodeInfo, t Table, force bool) (*synced, error) {
	src, err := a.providerTable(ctx, n, t)
	if err != nil {
		return nil, err
	}
	s := &synced{src: src}
	if s.ptx, s.dtx, s.locked, s.cleanup, err = a.syncedSnapshots(ctx, n, src, force); err != nil {
		return nil, err
	}
	if s.srcCols, err = columnsOf(ctx, s.ptx, src); err == nil {
		s.dstCols, err = columnsOf(ctx, s.dtx, t.Dest())
	}
	if err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

func (a *Admin) compareTable(ctx context.Context, n *NodeInfo, t Table, opts CompareOptions) (CompareResult, error) {
	res := CompareResult{Table: t.Name}
	sy, err := a.syncTable(ctx, n, t, opts.Force)
	if err != nil {
		return res, err
	}
	defer sy.cleanup()
	res.LockedMS = sy.locked.Milliseconds()
	src, ptx, dtx, srcCols, dstCols := sy.src, sy.ptx, sy.dtx, sy.srcCols, sy.dstCols
	var common []string
	for _, c := range srcCols {
		if contains(dstCols, c) {
			common = append(common, pgx.Identifier{c}.Sanitize())
		}
	}
	if len(common) == 0 {
		return res, errors.New("no common columns")
	}
	if len(common) != len(srcCols) || len(common) != len(dstCols) {
		a.log.Warn("ignoring columns not on both sides", "table", t.Name)
	}
	q := "select count(1) as cnt, sum(hashtext(_COLS_::text)::bigint) as chksum from only _TABLE_"
	if opts.CountOnly {
		q = "select count(1) as cnt from only _TABLE_"
	}
	if a.cfg.CompareSQL != "" {
		q = a.cfg.CompareSQL
	}
	q = strings.ReplaceAll(q, "_COLS_", "("+strings.Join(common, ",")+")")
	type answer struct {
		s   string
		err error
	}
	query := func(tx pgx.Tx, table string) answer {
		// text results: numbers print as PostgreSQL (and londiste3) print them
		rows, err := tx.Query(ctx, strings.ReplaceAll(q, "_TABLE_", quoteFQ(table)), pgx.QueryResultFormats{pgx.TextFormatCode})
		if err != nil {
			return answer{err: err}
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return answer{err: err}
			}
			return answer{err: errors.New("compare query returned no row")}
		}
		raw := rows.RawValues()
		m := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			if raw[i] == nil {
				m[f.Name] = "None" // as Python prints NULL
			} else {
				m[f.Name] = string(raw[i])
			}
		}
		return answer{s: formatCompare(a.cfg.CompareFmt, opts.CountOnly, m)}
	}
	// the answer is sent after the query's rows are closed: the
	// connections are closed once both are in
	run := func(tx pgx.Tx, table string, ch chan<- answer) { ch <- query(tx, table) }
	sc, dc := make(chan answer, 1), make(chan answer, 1)
	go run(ptx, src, sc)
	go run(dtx, t.Dest(), dc)
	sa, da := <-sc, <-dc
	if sa.err != nil {
		return res, fmt.Errorf("provider: %w", sa.err)
	}
	if da.err != nil {
		return res, fmt.Errorf("here: %w", da.err)
	}
	res.Source, res.Target, res.Equal = sa.s, da.s, sa.s == da.s
	if !res.Equal && a.cfg.CompareSQL == "" {
		key, err := a.rangeKey(ctx, sy)
		if err != nil || key == "" {
			return res, err
		}
		res.KeyRanges = compareRanges
		res.DifferingRanges, err = a.differingRanges(ctx, n.ProviderLoc, sy, t.Dest(), key, q, opts.CountOnly)
		return res, err
	}
	return res, nil
}

// formatCompare renders compare_fmt's %(name)s / %(name)d fields.
func formatCompare(f string, countOnly bool, vals map[string]string) string {
	if f == "" {
		f = "%(cnt)d rows"
		if !countOnly {
			f += ", checksum=%(chksum)s"
		}
	}
	var b strings.Builder
	for {
		i := strings.Index(f, "%(")
		if i < 0 {
			b.WriteString(f)
			break
		}
		j := strings.Index(f[i:], ")")
		if j < 0 || i+j+1 >= len(f) {
			b.WriteString(f)
			break
		}
		b.WriteString(f[:i])
		b.WriteString(vals[f[i+2:i+j]])
		f = f[i+j+2:] // skip the conversion letter
	}
	return b.String()
}
