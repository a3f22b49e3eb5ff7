package replica

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Table is one row of londiste.get_table_list.
type Table struct {
	Name           string
	Local          bool
	MergeState     string // "" for NULL
	CustomSnapshot string
	TableAttrs     string
	DroppedDDL     string
	DestTable      string // "" when the same as Name
}

// Dest is the local table events of this table go to.
func (t Table) Dest() string {
	if t.DestTable != "" {
		return t.DestTable
	}
	return t.Name
}

// Attrs decodes table_attrs (urlencoded).
func (t Table) Attrs() url.Values {
	v, _ := url.ParseQuery(t.TableAttrs)
	return v
}

func tableList(ctx context.Context, db queryer, queue string) ([]Table, error) {
	rows, err := db.Query(ctx, `select table_name, local, coalesce(merge_state, ''), coalesce(custom_snapshot, ''),
	        coalesce(table_attrs, ''), coalesce(dropped_ddl, ''), coalesce(dest_table, '')
	   from londiste.get_table_list($1)`, queue)
	if err != nil {
		return nil, fmt.Errorf("londiste.get_table_list: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		return t, r.Scan(&t.Name, &t.Local, &t.MergeState, &t.CustomSnapshot, &t.TableAttrs, &t.DroppedDDL, &t.DestTable)
	})
}

// Seq is one row of londiste.get_seq_list.
type Seq struct {
	Name      string
	LastValue int64
	Local     bool
}

func seqList(ctx context.Context, db queryer, queue string) ([]Seq, error) {
	rows, err := db.Query(ctx, "select seq_name, coalesce(last_value, 0), local from londiste.get_seq_list($1)", queue)
	if err != nil {
		return nil, fmt.Errorf("londiste.get_seq_list: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Seq, error) {
		var s Seq
		return s, r.Scan(&s.Name, &s.LastValue, &s.Local)
	})
}

// Tables lists the node's tables (londiste3 tables).
func (a *Admin) Tables(ctx context.Context) ([]Table, error) {
	if _, err := a.node(ctx); err != nil {
		return nil, err
	}
	return tableList(ctx, a.db, a.cfg.Queue)
}

// Seqs lists the node's sequences (londiste3 seqs).
func (a *Admin) Seqs(ctx context.Context) ([]Seq, error) {
	if _, err := a.node(ctx); err != nil {
		return nil, err
	}
	return seqList(ctx, a.db, a.cfg.Queue)
}

// Missing is one row of londiste.local_show_missing: kind r (table) or S
// (sequence).
type Missing struct{ Kind, Name string }

// Missing lists what could be added: on the root, local tables and
// sequences not in the set; elsewhere, set members not added here.
func (a *Admin) Missing(ctx context.Context) ([]Missing, error) {
	if _, err := a.node(ctx); err != nil {
		return nil, err
	}
	rows, err := a.db.Query(ctx, "select obj_kind, obj_name from londiste.local_show_missing($1) order by 1, 2", a.cfg.Queue)
	if err != nil {
		return nil, fmt.Errorf("londiste.local_show_missing: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Missing, error) {
		var m Missing
		return m, r.Scan(&m.Kind, &m.Name)
	})
}

// AddTableOptions are add-table's options (londiste3's, less the merge and
// cascade ones).
type AddTableOptions struct {
	All, WaitSync, ExpectSync, SkipTruncate, NoTriggers bool
	Create, CreateFull, SkipNonExisting, Force          bool
	DestTable                                           string
	TriggerFlags                                        string
	TriggerArgs                                         []string
	Handler                                             string
	HandlerArgs                                         []string
	// CopyNode copies the table's data from that node instead of the
	// provider ("?": the first node up from the provider that has it;
	// --copy-node, --find-copy-node)
	CopyNode string
	// replaceTrigger is a trigger dropped in the transaction that adds
	// the table (londiste 2.1's, Adopt21)
	replaceTrigger string
}

// fqName qualifies a bare name with public, as londiste3 does.
func fqName(n string) string {
	if strings.Contains(n, ".") {
		return n
	}
	return "public." + n
}

// expand resolves table or sequence arguments: globs (public.*) against
// local_show_missing and the local list, --all to everything missing.
func (a *Admin) expand(ctx context.Context, kind string, existing, all, force bool, args []string) ([]string, error) {
	var have []string
	if kind == "r" {
		ts, err := tableList(ctx, a.db, a.cfg.Queue)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if t.Local {
				have = append(have, t.Name)
			}
		}
	} else {
		ss, err := seqList(ctx, a.db, a.cfg.Queue)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if s.Local {
				have = append(have, s.Name)
			}
		}
	}
	ms, err := a.Missing(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, m := range ms {
		if m.Kind == kind {
			missing = append(missing, m.Name)
		}
	}
	if len(args) == 0 {
		if !all {
			return nil, errors.New("name the tables or sequences, or give --all")
		}
		if existing {
			return have, nil
		}
		return missing, nil
	}
	full, other := missing, have
	if existing {
		full, other = have, missing
	}
	var out []string
	seen := map[string]bool{}
	for _, arg := range args {
		if strings.ContainsAny(arg, "*?") {
			if !strings.Contains(arg, ".") {
				arg = "public." + arg
			}
			re := regexp.MustCompile("^" + globToRegexp(arg) + "$")
			for _, x := range full {
				if re.MatchString(x) && !seen[x] {
					seen[x] = true
					out = append(out, x)
				}
			}
			continue
		}
		n := fqName(arg)
		switch {
		case seen[n]:
		case contains(full, n):
			seen[n] = true
			out = append(out, n)
		case contains(other, n):
			a.log.Info("already done", "name", n)
		case force:
			seen[n] = true
			out = append(out, n)
		default:
			return nil, fmt.Errorf("%s not found (not in the set, or not on this node; --force to add anyway)", n)
		}
	}
	return out, nil
}

// matchesAny tells whether a table name matches one of globs (a glob
// without a schema matches the name in any schema).
func matchesAny(globs []string, table string) bool {
	bare := table[strings.IndexByte(table, '.')+1:]
	for _, g := range globs {
		name := table
		if !strings.Contains(g, ".") {
			name = bare
		}
		if ok, _ := regexp.MatchString("^"+globToRegexp(g)+"$", name); ok {
			return true
		}
	}
	return false
}

func globToRegexp(g string) string {
	var b strings.Builder
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

func (a *Admin) provider(ctx context.Context, n *NodeInfo) (*pgx.Conn, error) {
	if n.ProviderLoc == "" {
		return nil, fmt.Errorf("node %s has no provider", n.Name)
	}
	return a.remote(ctx, n.ProviderLoc)
}

// AddTable registers tables on the node: on the root, in the set with
// triggers; elsewhere locally, to be copied by the worker (or ok at once
// with ExpectSync).
func (a *Admin) AddTable(ctx context.Context, opts AddTableOptions, args ...string) ([]string, error) {
	n, err := a.node(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Handler != "" && opts.Handler != "londiste" && opts.Handler != "vtable" && opts.Handler != "fake_local" {
		return nil, fmt.Errorf("handler %q: pgqgo londiste has the default handler (londiste) and vtable only", opts.Handler)
	}
	var prov *pgx.Conn
	provTables := map[string]Table{}
	if n.Type != "root" {
		if prov, err = a.provider(ctx, n); err != nil {
			return nil, err
		}
		defer prov.Close(ctx)
		if err := a.syncSetFrom(ctx, prov); err != nil {
			return nil, err
		}
		pts, err := tableList(ctx, prov, a.cfg.Queue)
		if err != nil {
			return nil, err
		}
		for _, t := range pts {
			provTables[t.Name] = t
		}
	}
	names, err := a.expand(ctx, "r", false, opts.All, opts.Force, args)
	if err != nil {
		return nil, err
	}
	if opts.DestTable != "" && len(names) > 1 {
		return nil, errors.New("--dest-table can be given only for a single table")
	}
	if err := a.checkCopyNode(ctx, n, opts.CopyNode); err != nil {
		return nil, err
	}
	if n.Type != "root" && !opts.ExpectSync && opts.CopyNode == "" {
		var bad []string
		for _, t := range names {
			if pt, ok := provTables[t]; ok && !pt.Local {
				if opts.SkipNonExisting {
					a.log.Warn("table does not exist on provider, skipped", "table", t)
					continue
				}
				bad = append(bad, t)
			}
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("not replicated on the provider (switch to another provider): %s", strings.Join(bad, ", "))
		}
	}
	var added []string
	for _, t := range names {
		ok, err := a.addTable(ctx, n, prov, provTables, opts, t)
		if err != nil {
			return added, fmt.Errorf("%s: %w", t, err)
		}
		if ok {
			added = append(added, t)
		}
	}
	if opts.WaitSync {
		return added, a.WaitSync(ctx, 0)
	}
	return added, nil
}

func (a *Admin) addTable(ctx context.Context, n *NodeInfo, prov *pgx.Conn, provTables map[string]Table, opts AddTableOptions, tbl string) (bool, error) {
	dest := tbl
	if opts.DestTable != "" {
		dest = fqName(opts.DestTable)
	}
	exists, err := relationExists(ctx, a.db, dest, "r")
	if err != nil {
		return false, err
	}
	if opts.Create || opts.CreateFull {
		if exists {
			a.log.Info("table already exists, not touching", "table", dest)
		} else {
			if prov == nil {
				return false, errors.New("--create needs a provider to read the table's definition from")
			}
			src := tbl
			if pt, ok := provTables[tbl]; ok {
				src = pt.Dest()
			}
			if err := createTableFrom(ctx, prov, a.db, src, dest, opts.CreateFull); err != nil {
				return false, err
			}
		}
	} else if !exists {
		if opts.SkipNonExisting {
			a.log.Warn("table does not exist on the local node, skipped", "table", dest)
			return false, nil
		}
		if opts.Handler != "vtable" && opts.Handler != "fake_local" {
			return false, fmt.Errorf("table %s does not exist on the local node (--create to create it)", dest)
		}
	}
	var tgargs []string
	tgargs = append(tgargs, opts.TriggerArgs...)
	if opts.TriggerFlags != "" {
		tgargs = append(tgargs, "tgflags="+opts.TriggerFlags)
	}
	if opts.NoTriggers {
		tgargs = append(tgargs, "no_triggers")
	}
	if opts.ExpectSync {
		tgargs = append(tgargs, "expect_sync")
	}
	attrs := url.Values{}
	if opts.Handler != "" {
		attrs.Set("handler", handlerString(opts.Handler, opts.HandlerArgs))
	}
	if !opts.ExpectSync && opts.SkipTruncate {
		attrs.Set("skip_truncate", "1")
	}
	if opts.CopyNode != "" && !opts.ExpectSync {
		attrs.Set("copy_node", opts.CopyNode)
	}
	var attrArg, destArg any
	if len(attrs) > 0 {
		attrArg = attrs.Encode()
	}
	if dest != tbl {
		destArg = dest
	}
	tx, err := a.db.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	if a.cfg.LockTimeout > 0 {
		if _, err := tx.Exec(ctx, fmt.Sprintf("set local statement_timeout = %d", a.cfg.LockTimeout.Milliseconds())); err != nil {
			return false, err
		}
	}
	if opts.replaceTrigger != "" {
		if _, err := tx.Exec(ctx, "drop trigger if exists "+pgx.Identifier{opts.replaceTrigger}.Sanitize()+" on "+quoteFQ(dest)); err != nil {
			return false, fmt.Errorf("drop trigger %s: %w", opts.replaceTrigger, err)
		}
	}
	res, err := call(ctx, tx, a.log, "select * from londiste.local_add_table($1, $2, $3, $4, $5)", a.cfg.Queue, tbl, tgargs, attrArg, destArg)
	if err != nil {
		return false, err
	}
	a.log.Info(res.Note, "table", tbl)
	return true, tx.Commit(ctx)
}

// handlerString is londiste3's "name(urlencoded args)" form.
func handlerString(name string, args []string) string {
	if len(args) == 0 {
		return name
	}
	v := url.Values{}
	for _, a := range args {
		k, val, _ := strings.Cut(a, "=")
		v.Add(k, val)
	}
	return name + "(" + v.Encode() + ")"
}

func relationExists(ctx context.Context, db queryer, name, kind string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
	   where n.nspname = split_part($1, '.', 1) and c.relname = substr($1, length(split_part($1, '.', 1)) + 2)
	     and c.relkind = any ($2))`, name, relkinds(kind)).Scan(&ok)
	return ok, err
}

func relkinds(kind string) []string {
	if kind == "r" {
		return []string{"r", "p"}
	}
	return []string{kind}
}

// createTableFrom creates dest like the provider's src: columns with their
// types and NOT NULL, and the primary key (--create); --create-full adds
// defaults, the other constraints and indexes.
func createTableFrom(ctx context.Context, prov, local *pgx.Conn, src, dest string, full bool) error {
	rows, err := prov.Query(ctx, `select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
	        coalesce(pg_get_expr(d.adbin, d.adrelid), '')
	   from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
	  where a.attrelid = londiste.find_table_oid($1) and a.attnum > 0 and not a.attisdropped order by a.attnum`, src)
	if err != nil {
		return fmt.Errorf("read %s's columns on the provider: %w", src, err)
	}
	type col struct {
		name, typ, def string
		notNull        bool
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		return c, r.Scan(&c.name, &c.typ, &c.notNull, &c.def)
	})
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return fmt.Errorf("table %s not found on the provider", src)
	}
	var defs []string
	for _, c := range cols {
		d := pgx.Identifier{c.name}.Sanitize() + " " + c.typ
		if c.notNull {
			d += " not null"
		}
		if full && c.def != "" && !strings.HasPrefix(c.def, "nextval(") {
			d += " default " + c.def
		}
		defs = append(defs, d)
	}
	crows, err := prov.Query(ctx, `select conname, pg_get_constraintdef(oid), contype from pg_constraint
	  where conrelid = londiste.find_table_oid($1) and (contype = 'p' or ($2 and contype in ('u', 'c')))
	  order by contype <> 'p', conname`, src, full)
	if err != nil {
		return err
	}
	type con struct{ name, def, typ string }
	cons, err := pgx.CollectRows(crows, func(r pgx.CollectableRow) (con, error) {
		var c con
		return c, r.Scan(&c.name, &c.def, &c.typ)
	})
	if err != nil {
		return err
	}
	for _, c := range cons {
		defs = append(defs, "constraint "+pgx.Identifier{c.name}.Sanitize()+" "+c.def)
	}
	schemaName, _, _ := strings.Cut(dest, ".")
	qdest := quoteFQ(dest)
	tx, err := local.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "create schema if not exists "+pgx.Identifier{schemaName}.Sanitize()); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "create table "+qdest+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return fmt.Errorf("create %s: %w", dest, err)
	}
	if full {
		irows, err := prov.Query(ctx, `select pg_get_indexdef(i.indexrelid) from pg_index i
		  where i.indrelid = londiste.find_table_oid($1)
		    and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`, src)
		if err != nil {
			return err
		}
		idx, err := pgx.CollectRows(irows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, def := range idx {
			// the definition names the provider's table: rename to dest
			_, after, _ := strings.Cut(def, " USING ")
			_, namePart, _ := strings.Cut(def, " INDEX ")
			iname, _, _ := strings.Cut(namePart, " ON ")
			unique := strings.HasPrefix(def, "CREATE UNIQUE")
			stmt := "create "
			if unique {
				stmt += "unique "
			}
			stmt += "index " + iname + " on " + qdest + " using " + after
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("index on %s: %w", dest, err)
			}
		}
	}
	return tx.Commit(ctx)
}

// quotePgq quotes a pgq table name (an event table, a queue's data
// prefix), in schema pgq unless it names its schema.
func quotePgq(name string) string {
	s, n, ok := strings.Cut(name, ".")
	if !ok {
		return pgx.Identifier{"pgq", name}.Sanitize()
	}
	return pgx.Identifier{s, n}.Sanitize()
}

// quoteFQ quotes schema.name.
func quoteFQ(name string) string {
	s, n, ok := strings.Cut(name, ".")
	if !ok {
		return pgx.Identifier{"public", name}.Sanitize()
	}
	return pgx.Identifier{s, n}.Sanitize()
}

// RemoveTable takes tables out of replication here (on the root: out of
// the set, and londiste.remove-table goes to the subscribers).
func (a *Admin) RemoveTable(ctx context.Context, args ...string) error {
	if _, err := a.node(ctx); err != nil {
		return err
	}
	names, err := a.expand(ctx, "r", true, false, false, args)
	if err != nil {
		return err
	}
	ddl := map[string]Table{}
	for _, t := range mustTables(ctx, a) {
		if t.DroppedDDL != "" {
			ddl[t.Name] = t
		}
	}
	for _, name := range names {
		if err := a.removeTable(ctx, name, ddl[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// removeTable unregisters a table; indexes and keys that a split copy
// dropped and has not rebuilt yet are rebuilt first, in the same
// transaction.
func (a *Admin) removeTable(ctx context.Context, name string, t Table) error {
	tx, err := a.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if t.DroppedDDL != "" {
		if _, err := tx.Exec(ctx, "lock table only "+quoteFQ(t.Dest())+" in access exclusive mode"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, t.DroppedDDL); err != nil {
			return fmt.Errorf("rebuild the indexes and keys its copy dropped: %w", err)
		}
		a.log.Info("rebuilt the indexes and keys its copy had dropped", "table", name)
	}
	if _, err := call(ctx, tx, a.log, "select * from londiste.local_remove_table($1, $2)", a.cfg.Queue, name); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// ChangeHandler sets a table's handler (londiste3 change-handler).
func (a *Admin) ChangeHandler(ctx context.Context, table, handler string, args []string) error {
	if _, err := a.node(ctx); err != nil {
		return err
	}
	if handler != "londiste" && handler != "vtable" && handler != "fake_local" && handler != "" {
		return fmt.Errorf("handler %q: pgqgo londiste has the default handler (londiste) and vtable only", handler)
	}
	var attrs url.Values
	for _, t := range mustTables(ctx, a) {
		if t.Name == fqName(table) {
			attrs = t.Attrs()
		}
	}
	if attrs == nil {
		return fmt.Errorf("table %s is not replicated here", fqName(table))
	}
	if handler == "" || handler == "londiste" && len(args) == 0 {
		attrs.Del("handler")
	} else {
		attrs.Set("handler", handlerString(handler, args))
	}
	var enc any
	if len(attrs) > 0 {
		enc = attrs.Encode()
	}
	_, err := call(ctx, a.db, a.log, "select * from londiste.local_change_handler($1, $2, $3, $4)", a.cfg.Queue, fqName(table), []string{}, enc)
	return err
}

func mustTables(ctx context.Context, a *Admin) []Table {
	ts, _ := tableList(ctx, a.db, a.cfg.Queue)
	return ts
}

// checkCopyNode refuses a --copy-node that is no live member of the
// cascade other than this node, or given on the root. Whether it has the
// table in sync is the worker's to check at copy time (it may get there).
func (a *Admin) checkCopyNode(ctx context.Context, n *NodeInfo, copyNode string) error {
	if copyNode == "" {
		return nil
	}
	if n.Type == "root" {
		return errors.New("--copy-node / --find-copy-node: the root copies nothing")
	}
	if copyNode == "?" {
		return nil
	}
	if copyNode == n.Name {
		return fmt.Errorf("--copy-node=%s is this node", copyNode)
	}
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return err
	}
	for _, m := range mems {
		if m.Name == copyNode {
			if m.Dead {
				return fmt.Errorf("--copy-node=%s: the node is tagged dead", copyNode)
			}
			return nil
		}
	}
	return fmt.Errorf("--copy-node=%s: no such member of queue %s (see members)", copyNode, a.cfg.Queue)
}

// Resync makes the worker copy tables again.
func (a *Admin) Resync(ctx context.Context, args ...string) error {
	return a.ResyncFrom(ctx, "", args...)
}

// ResyncFrom is Resync with the copy read from copyNode ("?": the first
// node up from the provider that has the table; "": the provider), kept in
// the table's copy_node attribute as londiste3 does.
func (a *Admin) ResyncFrom(ctx context.Context, copyNode string, args ...string) error {
	n, err := a.node(ctx)
	if err != nil {
		return err
	}
	if n.Type == "root" {
		return errors.New("resync: the root is the source of its tables")
	}
	if err := a.checkCopyNode(ctx, n, copyNode); err != nil {
		return err
	}
	names, err := a.expand(ctx, "r", true, false, false, args)
	if err != nil {
		return err
	}
	prov, err := a.provider(ctx, n)
	if err != nil {
		return err
	}
	defer prov.Close(ctx)
	pts, err := tableList(ctx, prov, a.cfg.Queue)
	if err != nil {
		return err
	}
	for _, t := range names {
		ok := false
		for _, pt := range pts {
			ok = ok || (pt.Name == t && pt.Local)
		}
		if !ok && copyNode == "" {
			return fmt.Errorf("%s is not replicated on the provider", t)
		}
		if copyNode != "" {
			var cur *string
			if err := a.db.QueryRow(ctx, "select table_attrs from londiste.get_table_list($1) where table_name = $2", a.cfg.Queue, t).Scan(&cur); err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
			attrs := url.Values{}
			if cur != nil {
				attrs, _ = url.ParseQuery(*cur)
			}
			attrs.Set("copy_node", copyNode)
			if _, err := call(ctx, a.db, a.log, "select * from londiste.local_set_table_attrs($1, $2, $3)", a.cfg.Queue, t, attrs.Encode()); err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
		}
		if _, err := call(ctx, a.db, a.log, "select * from londiste.local_set_table_state($1, $2, null, null)", a.cfg.Queue, t); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	return nil
}

// WaitSync waits until every local table is ok (0: no time limit).
func (a *Admin) WaitSync(ctx context.Context, limit time.Duration) error {
	return a.WaitSyncProgress(ctx, limit, nil)
}

// WaitSyncProgress is WaitSync calling show, about once a second, with
// the tables not in sync yet and the copies running.
func (a *Admin) WaitSyncProgress(ctx context.Context, limit time.Duration, show func(pending []string, copies []CopyProgress)) error {
	var lastShow time.Time
	var deadline time.Time
	if limit > 0 {
		deadline = time.Now().Add(limit)
	}
	for {
		ts, err := tableList(ctx, a.db, a.cfg.Queue)
		if err != nil {
			return err
		}
		var pending []string
		for _, t := range ts {
			if t.Local && t.MergeState != "ok" {
				pending = append(pending, t.Name+" ("+stateName(t.MergeState)+")")
			}
		}
		if len(pending) == 0 {
			return nil
		}
		sort.Strings(pending)
		if show != nil && time.Since(lastShow) >= time.Second {
			ps, _ := copyProgress(ctx, a.db)
			show(pending, ps)
			lastShow = time.Now()
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("not in sync after %v: %s", limit, strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func stateName(s string) string {
	if s == "" {
		return "NULL"
	}
	return s
}

// AddSeq registers sequences (root: in the set, value published at once;
// elsewhere: local, set to the last published value).
func (a *Admin) AddSeq(ctx context.Context, all bool, args ...string) error {
	n, err := a.node(ctx)
	if err != nil {
		return err
	}
	if n.Type != "root" {
		prov, err := a.provider(ctx, n)
		if err != nil {
			return err
		}
		err = a.syncSetFrom(ctx, prov)
		prov.Close(ctx)
		if err != nil {
			return err
		}
	}
	names, err := a.expand(ctx, "S", false, all, false, args)
	if err != nil {
		return err
	}
	for _, s := range names {
		if _, err := call(ctx, a.db, a.log, "select * from londiste.local_add_seq($1, $2)", a.cfg.Queue, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if n.Type == "root" {
		_, err = call(ctx, a.db, a.log, "select * from londiste.root_check_seqs($1)", a.cfg.Queue)
	}
	return err
}

// RemoveSeq takes sequences out of replication here.
func (a *Admin) RemoveSeq(ctx context.Context, args ...string) error {
	if _, err := a.node(ctx); err != nil {
		return err
	}
	names, err := a.expand(ctx, "S", true, false, false, args)
	if err != nil {
		return err
	}
	for _, s := range names {
		if _, err := call(ctx, a.db, a.log, "select * from londiste.local_remove_seq($1, $2)", a.cfg.Queue, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}
