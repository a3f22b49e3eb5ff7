package replica

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/pgq"
)

// applier turns row events into changes of the target tables. Events are
// buffered per table (order kept within a table; in replica mode, with no
// triggers or foreign key checks firing, the order between tables does not
// change the outcome) and flushed at the end of the batch, before any event
// that is not a row change (EXECUTE, TRUNCATE, londiste.*), and when the
// buffer is full. At a flush each table is applied one of two ways:
//
//   - statements: one INSERT, UPDATE or DELETE per event, prepared once per
//     table, operation and column set, sent pipelined in event order;
//   - bulk, for a table with bulkMin events or more, whose events all carry
//     whole rows (logutriga, jsontriga) with one column set, and whose only
//     unique index is its primary key: the net change per key (insert,
//     update or delete, from the first and last event of each key) goes
//     into a temporary table with COPY and is merged with three set-based
//     statements. The end state is the same as applying the events one by
//     one: uniqueness is by primary key only, so no intermediate state can
//     matter.
//
// With async set, a flush of a full buffer runs on the target connection in
// a goroutine while the caller goes on reading and decoding the next events
// into a new buffer (one flush at most in flight, so the target still gets
// the changes in order); every other use of the transaction first waits for
// it (wait).
type applier struct {
	tx      pgx.Tx
	texts   map[string]string // statement text by table/op/columns
	bufs    map[string]*tableBuf
	order   []string // tables in first-seen order
	pending int
	info    map[string]*tableInfo // by destination table; reset after EXECUTE
	applied int64                 // events applied since the counters were last read
	bulked  int64                 // of which through the bulk path
	temps   int                   // staging tables made on the connection
	spent   time.Duration         // in flushes since the counters were last read

	async    bool         // full buffers flushed while reading goes on
	inflight chan error   // the flush running in a goroutine, if any
	copyBuf  bytes.Buffer // the bulk path's COPY data, kept for its capacity
}

const (
	flushEvery = 20000 // buffered events
	bulkMin    = 64    // a table's events in a flush for the bulk path
	pipeMax    = 2000  // statements per pipelined round trip
)

type tableBuf struct {
	dest    string
	changes []*pgq.Change
	ids     []int64
	// the column and key lists of the table's changes, shared: a change
	// whose lists are equal gets these, so that bulk compares them by
	// address (each decoded event has its own copies, scattered in memory)
	cols, pkey []string
}

// tableInfo is what the bulk path needs to know of a target table.
type tableInfo struct {
	bulkable bool     // the primary key is its only unique index
	pkey     []string // primary key columns
	intKey   bool     // every key column is an integer
	rules    bool     // the table has rules (INSERT applies them, COPY does not)
	temp     string   // the session's staging table, once made
}

func newApplier() *applier {
	return &applier{texts: map[string]string{}, bufs: map[string]*tableBuf{}, info: map[string]*tableInfo{}}
}

func (a *applier) reset(tx pgx.Tx) {
	a.wait() // none in flight: the last transaction ended after one
	a.tx = tx
	a.bufs = map[string]*tableBuf{}
	a.order = nil
	a.pending = 0
}

// wait returns once no flush is in flight, with its error. The target
// transaction may then be used (and must not be before).
func (a *applier) wait() error {
	if a.inflight == nil {
		return nil
	}
	err := <-a.inflight
	a.inflight = nil
	return err
}

// forget drops what is known of the tables' definitions (after DDL). The
// staging tables are dropped with the DDL's transaction in mind: they are
// made again from the new definitions.
func (a *applier) forget(ctx context.Context) error {
	for _, ti := range a.info {
		if ti.temp != "" {
			if _, err := a.tx.Exec(ctx, "drop table if exists "+ti.temp); err != nil {
				return err
			}
		}
	}
	a.info = map[string]*tableInfo{}
	return nil
}

// rolledBack forgets staging tables a failed transaction took with it.
func (a *applier) rolledBack() {
	a.wait()
	a.info = map[string]*tableInfo{}
	a.applied, a.bulked = 0, 0
}

// row buffers one logutriga, sqltriga or jsontriga row event for dest.
func (a *applier) row(ctx context.Context, dest string, ev *pgq.Event) error {
	c, err := pgq.DecodeChange(ev)
	if err != nil {
		return err
	}
	if c.Op == "TRUNCATE" {
		return a.exec(ctx, "truncate only "+quoteFQ(dest)+" cascade")
	}
	b := a.bufs[dest]
	if b == nil {
		b = &tableBuf{dest: dest}
		a.bufs[dest] = b
		a.order = append(a.order, dest)
	}
	b.cols, c.Columns = shared(b.cols, c.Columns)
	b.pkey, c.PKey = shared(b.pkey, c.PKey)
	b.changes = append(b.changes, c)
	b.ids = append(b.ids, ev.ID)
	a.pending++
	if a.pending >= flushEvery {
		if !a.async {
			return a.flush(ctx)
		}
		if err := a.wait(); err != nil {
			return err
		}
		bufs, order := a.take()
		done := make(chan error, 1)
		a.inflight = done
		go func() { done <- a.apply(ctx, bufs, order, nil) }()
	}
	return nil
}

// take hands over what is buffered and starts an empty buffer.
func (a *applier) take() (map[string]*tableBuf, []string) {
	bufs, order := a.bufs, a.order
	a.bufs, a.order, a.pending = map[string]*tableBuf{}, nil, 0
	return bufs, order
}

// exec runs a statement that is not a row change, after the buffered ones.
func (a *applier) exec(ctx context.Context, sql string, args ...any) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	_, err := a.tx.Exec(ctx, sql, args...)
	return err
}

// flush applies everything buffered.
func (a *applier) flush(ctx context.Context) error { return a.flushThen(ctx, nil) }

// flushThen applies everything buffered, and queues what tail adds (when
// not nil) onto the last round trip: a transaction's closing statements
// ride with its last rows.
func (a *applier) flushThen(ctx context.Context, tail func(*pgx.Batch)) error {
	if err := a.wait(); err != nil {
		return err
	}
	if a.pending == 0 && tail == nil {
		return nil
	}
	bufs, order := a.take()
	return a.apply(ctx, bufs, order, tail)
}

// apply applies taken buffers (see flushThen).
func (a *applier) apply(ctx context.Context, bufs map[string]*tableBuf, order []string, tail func(*pgx.Batch)) error {
	start := time.Now()
	defer func() { a.spent += time.Since(start) }()
	batch := &pgx.Batch{}
	send := func() error {
		if batch.Len() == 0 {
			return nil
		}
		err := a.tx.SendBatch(ctx, batch).Close()
		batch = &pgx.Batch{}
		return err
	}
	for _, dest := range order {
		b := bufs[dest]
		if len(b.changes) >= bulkMin {
			ok, err := a.bulk(ctx, b)
			if err != nil {
				return fmt.Errorf("%s: %w", dest, err)
			}
			if ok {
				a.bulked += int64(len(b.changes))
				continue
			}
		}
		for i, c := range b.changes {
			sql, args, err := a.statement(dest, c)
			if err != nil {
				return fmt.Errorf("[ev_id=%d] %w", b.ids[i], err)
			}
			if sql == "" {
				continue
			}
			batch.Queue(sql, args...)
			if batch.Len() >= pipeMax {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	if tail != nil {
		tail(batch)
	}
	if err := send(); err != nil {
		return err
	}
	for _, b := range bufs {
		a.applied += int64(len(b.changes))
	}
	return nil
}

// keysOf returns the change's key columns and where their values are.
func keysOf(c *pgq.Change) ([]string, map[string]*string) {
	if len(c.PKey) == 0 && c.Where != nil { // sqltriga: the key is in Where
		keys := make([]string, 0, len(c.Where))
		for k := range c.Where {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys, c.Where
	}
	return c.PKey, c.Row
}

// statement is the SQL of one event.
func (a *applier) statement(dest string, c *pgq.Change) (string, []any, error) {
	keys, where := keysOf(c)
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
		return sql, args, nil
	case "UPDATE", "DELETE":
		if len(keys) == 0 {
			return "", nil, fmt.Errorf("%s on %s without a primary key", c.Op, dest)
		}
		var set []string
		if c.Op == "UPDATE" {
			for _, col := range c.Columns {
				if c.Where != nil || !slices.Contains(keys, col) {
					set = append(set, col)
				}
			}
			if len(set) == 0 { // only key columns: nothing to change
				return "", nil, nil
			}
		}
		key := c.Op[:1] + "\x00" + dest + "\x00" + strings.Join(set, "\x00") + "\x00\x00" + strings.Join(keys, "\x00")
		sql, ok := a.texts[key]
		if !ok {
			n := 0
			ph := func() string { n++; return "$" + strconv.Itoa(n) }
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
				return "", nil, fmt.Errorf("%s on %s: no value for key column %s", c.Op, dest, k)
			}
			args = append(args, v)
		}
		return sql, args, nil
	}
	return "", nil, fmt.Errorf("unknown operation %q", c.Op)
}

// tableInfo reads (once) whether dest can take the bulk path.
func (a *applier) tableInfo(ctx context.Context, dest string) (*tableInfo, error) {
	if ti := a.info[dest]; ti != nil {
		return ti, nil
	}
	ti := &tableInfo{}
	var others int
	err := a.tx.QueryRow(ctx, `select coalesce((select array_agg(a.attname order by k.ord)
	          from pg_index i, unnest(i.indkey) with ordinality k(attnum, ord), pg_attribute a
	         where i.indrelid = c.oid and i.indisprimary and a.attrelid = c.oid and a.attnum = k.attnum), '{}'),
	       (select count(*) from pg_index i where i.indrelid = c.oid and (i.indisunique or i.indisexclusion) and not i.indisprimary)
	     + (select count(*) from pg_constraint x where x.conrelid = c.oid and x.contype = 'x'),
	       coalesce((select bool_and(a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))
	          from pg_index i, unnest(i.indkey) k(attnum), pg_attribute a
	         where i.indrelid = c.oid and i.indisprimary and a.attrelid = c.oid and a.attnum = k.attnum), false),
	       c.relhasrules
	  from pg_class c where c.oid = londiste.find_table_oid($1)`, dest).Scan(&ti.pkey, &others, &ti.intKey, &ti.rules)
	if err != nil {
		return nil, err
	}
	ti.bulkable = len(ti.pkey) > 0 && others == 0
	a.info[dest] = ti
	return ti, nil
}

// net is a key's change over the buffered events.
type net struct {
	key     string      // the key's values (as bulk makes them)
	num     int64       // a single integer key's value, for the order
	op      byte        // 'I', 'U', 'D', or 0: nothing (inserted and deleted)
	existed bool        // the row was there before the first event
	last    *pgq.Change // the key's last change: its whole row, or a delete (its key values)
}

// bulk applies a table's buffered events as net changes; false when the
// table or its events do not allow it (then they go as statements).
func (a *applier) bulk(ctx context.Context, b *tableBuf) (bool, error) {
	ti, err := a.tableInfo(ctx, b.dest)
	if err != nil || !ti.bulkable {
		return false, err
	}
	cols := b.changes[0].Columns
	for _, c := range b.changes {
		// whole rows with one column set, keyed by the table's primary key
		if c.Where != nil || !sameStrings(c.Columns, cols) || !sameStrings(c.PKey, b.changes[0].PKey) || len(c.Values) != len(cols) {
			return false, nil
		}
	}
	if !slices.Equal(b.changes[0].PKey, ti.pkey) {
		return false, nil
	}
	pk := make([]int, len(ti.pkey)) // the key columns' positions in cols
	for i, k := range ti.pkey {
		if pk[i] = slices.Index(cols, k); pk[i] < 0 {
			return false, nil
		}
	}
	nets := make(map[string]*net, len(b.changes))
	all := make([]net, 0, len(b.changes)) // never grows: the pointers stay
	order := make([]*net, 0, len(b.changes))
	for _, c := range b.changes {
		key, ok := keyOf(c, pk)
		if !ok {
			return false, nil
		}
		n := nets[key]
		if n == nil {
			all = append(all, net{key: key, existed: c.Op != "INSERT"})
			n = &all[len(all)-1]
			nets[key] = n
			order = append(order, n)
		}
		n.last = c
	}
	if ti.intKey && len(ti.pkey) == 1 {
		// in key order: the merge then visits the table's pages (and the
		// key's index) in order, each once, instead of at random
		for _, n := range order {
			n.num, _ = strconv.ParseInt(n.key, 10, 64)
		}
		slices.SortFunc(order, func(x, y *net) int { return cmp.Compare(x.num, y.num) })
	}
	var ins, upd, del int
	for _, n := range order {
		deleted := n.last.Op == "DELETE"
		switch {
		case n.existed && !deleted:
			n.op, upd = 'U', upd+1
		case !n.existed && !deleted:
			n.op, ins = 'I', ins+1
		case n.existed:
			n.op, del = 'D', del+1
		default:
			n.op = 0 // inserted and deleted within the buffer
		}
	}
	if ins+upd+del == 0 {
		return true, nil
	}
	// only new rows (a log, a history): COPY them into the table itself
	// (as INSERT would, but for rules, which COPY does not apply)
	direct := upd == 0 && del == 0 && !ti.rules
	into := quoteFQ(b.dest)
	if !direct {
		if err := a.stage(ctx, ti, b.dest); err != nil {
			return false, err
		}
		into = ti.temp
	}
	buf := &a.copyBuf
	buf.Reset()
	for _, n := range order {
		if n.op == 0 {
			continue
		}
		for i, v := range n.last.Values { // a delete: the key is enough
			if i > 0 {
				buf.WriteByte('\t')
			}
			copyText(buf, v)
		}
		if !direct {
			buf.WriteByte('\t')
			buf.WriteByte(n.op)
		}
		buf.WriteByte('\n')
	}
	qcols := make([]string, len(cols))
	for i, c := range cols {
		qcols[i] = pgx.Identifier{c}.Sanitize()
	}
	list := strings.Join(qcols, ", ")
	if !direct {
		list += ", pgqgo_op"
	}
	if _, err := a.tx.Conn().PgConn().CopyFrom(ctx, buf, "copy "+into+" ("+list+") from stdin"); err != nil {
		return false, err
	}
	if direct {
		return true, nil
	}
	var on []string
	for _, k := range ti.pkey {
		q := pgx.Identifier{k}.Sanitize()
		on = append(on, "t."+q+" = s."+q)
	}
	match := strings.Join(on, " and ")
	dest := quoteFQ(b.dest)
	if del > 0 {
		if _, err := a.tx.Exec(ctx, "delete from only "+dest+" t using "+ti.temp+" s where s.pgqgo_op = 'D' and "+match); err != nil {
			return false, err
		}
	}
	if upd > 0 {
		var set []string
		for _, c := range cols {
			if !slices.Contains(ti.pkey, c) {
				q := pgx.Identifier{c}.Sanitize()
				set = append(set, q+" = s."+q)
			}
		}
		if len(set) > 0 {
			if _, err := a.tx.Exec(ctx, "update only "+dest+" t set "+strings.Join(set, ", ")+" from "+ti.temp+" s where s.pgqgo_op = 'U' and "+match); err != nil {
				return false, err
			}
		}
	}
	if ins > 0 {
		if _, err := a.tx.Exec(ctx, "insert into "+dest+" ("+strings.Join(qcols, ", ")+") select "+strings.Join(qcols, ", ")+" from "+ti.temp+" where pgqgo_op = 'I'"); err != nil {
			return false, err
		}
	}
	return true, nil
}

// stage makes the session's staging table for dest (once) or empties it.
func (a *applier) stage(ctx context.Context, ti *tableInfo, dest string) error {
	if ti.temp != "" {
		_, err := a.tx.Exec(ctx, "truncate "+ti.temp)
		return err
	}
	a.temps++
	ti.temp = pgx.Identifier{fmt.Sprintf("pgqgo_stage_%d", a.temps)}.Sanitize()
	if _, err := a.tx.Exec(ctx, "create temp table if not exists "+ti.temp+
		" on commit delete rows as select * from only "+quoteFQ(dest)+" with no data"); err != nil {
		return err
	}
	_, err := a.tx.Exec(ctx, "alter table "+ti.temp+" add column pgqgo_op \"char\"")
	return err
}

// shared returns (first, first) when list equals first, (first, list)
// otherwise, and (list, list) when there is no first yet.
func shared(first, list []string) ([]string, []string) {
	switch {
	case first == nil:
		return list, list
	case slices.Equal(first, list):
		return first, first
	}
	return first, list
}

// sameStrings is slices.Equal, at once when x and y are the same list.
func sameStrings(x, y []string) bool {
	if len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0]) {
		return true
	}
	return slices.Equal(x, y)
}

// keyOf is the change's key as bulk matches it (pk: the key columns'
// positions in its Values): a single column's value as is, several
// columns' values each after its length; false when a key column is NULL.
func keyOf(c *pgq.Change, pk []int) (string, bool) {
	if len(pk) == 1 {
		v := c.Values[pk[0]]
		if v == nil {
			return "", false
		}
		return *v, true
	}
	var kb strings.Builder
	for _, i := range pk {
		v := c.Values[i]
		if v == nil {
			return "", false
		}
		kb.WriteString(strconv.Itoa(len(*v)))
		kb.WriteByte(':')
		kb.WriteString(*v)
	}
	return kb.String(), true
}

// copyText writes a value in COPY's text format.
func copyText(buf *bytes.Buffer, v *string) {
	if v == nil {
		buf.WriteString(`\N`)
		return
	}
	s := *v
	if !strings.ContainsAny(s, "\\\t\n\r") {
		buf.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			buf.WriteString(`\\`)
		case '\t':
			buf.WriteString(`\t`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		default:
			buf.WriteByte(c)
		}
	}
}
