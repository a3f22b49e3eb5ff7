package schema_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// catalogQueries describe the pgq schema's contract as sets of text lines.
// Owner ACL entries are left out (PgQ's owner entries carry grant options
// that depend on how its installer granted); everything else must match.
var catalogQueries = map[string]string{
	"functions": `
		select p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
		       || case when p.prosecdef then ' [security definer]' else '' end
		       || case when p.proisstrict then ' [strict]' else '' end
		  from pg_proc p where p.pronamespace = 'pgq'::regnamespace`,
	"columns": `
		select c.relname || ' | ' || a.attnum || ' | ' || a.attname || ' | ' || format_type(a.atttypid, a.atttypmod)
		       || ' | ' || a.attnotnull || ' | ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		  from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
		  left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
		 where c.relnamespace = 'pgq'::regnamespace and c.relkind = 'r'`,
	"indexes": `select pg_get_indexdef(indexrelid) from pg_index i join pg_class c on c.oid = i.indrelid
		 where c.relnamespace = 'pgq'::regnamespace`,
	"constraints": `select conrelid::regclass || ': ' || conname || ' ' || pg_get_constraintdef(oid)
		  from pg_constraint where connamespace = 'pgq'::regnamespace`,
	"relations": `select relname || ' ' || relkind::text || ' ' || coalesce(array_to_string(reloptions, ','), '')
		  from pg_class where relnamespace = 'pgq'::regnamespace`,
	"inheritance": `select inhrelid::regclass || ' inherits ' || inhparent::regclass from pg_inherits i
		  join pg_class c on c.oid = i.inhrelid where c.relnamespace = 'pgq'::regnamespace`,
	"function grants": `
		select coalesce(nullif(pg_get_userbyid(x.grantee), '-'), 'PUBLIC') || ' ' || x.privilege_type || ' '
		       || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
		  from pg_proc p, aclexplode(p.proacl) x
		 where p.pronamespace = 'pgq'::regnamespace and x.grantee <> p.proowner`,
	"table grants": `
		select case when x.grantee = 0 then 'PUBLIC' else pg_get_userbyid(x.grantee) end || ' ' || x.privilege_type
		       || ' ' || c.relname
		  from pg_class c, aclexplode(c.relacl) x
		 where c.relnamespace = 'pgq'::regnamespace and x.grantee <> c.relowner`,
	"schema grants": `select case when x.grantee = 0 then 'PUBLIC' else pg_get_userbyid(x.grantee) end || ' ' || x.privilege_type
		  from pg_namespace n, aclexplode(n.nspacl) x where n.nspname = 'pgq' and x.grantee <> n.nspowner`,
	"role membership": `select r.rolname || ' in ' || m.rolname from pg_auth_members a
		  join pg_roles r on r.oid = a.roleid join pg_roles m on m.oid = a.member where r.rolname like 'pgq\_%'`,
}

// pgqgoAdditions are objects pgqgo adds beyond PgQ 3.5 (allowed by the
// contract); lines mentioning them are ignored on the pgqgo side.
var pgqgoAdditions = []string{"pgqgo_", "_insert_dispatch", "_insert_bulk_dispatch", "_refresh_insert_dispatch", "_dispatch_tree",
	"_count_tx_event", "_batch_sql", "insert_event_bulk", "dead_letter", "_trigger_", "_urlencode", "_json_row", "_record_fields", "_record_urlencoded",
	"_insert_event_generated", "_plan_stamp", "_logtriga_args", "_refresh_logtriga"}

func catalogSet(t *testing.T, conn *pgx.Conn, sql string, skip []string) map[string]bool {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
next:
	for _, l := range lines {
		for _, s := range skip {
			if strings.Contains(l, s) {
				continue next
			}
		}
		set[l] = true
	}
	return set
}

// TestCatalogueMatchesSkytools compares the installed pgq schema object by
// object with Skytools' PgQ 3.5, both holding one queue created first.
func TestCatalogueMatchesSkytools(t *testing.T) {
	ctx := context.Background()
	sky := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	ours := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	for _, c := range []*pgx.Conn{sky, ours} {
		if _, err := c.Exec(ctx, "select pgq.create_queue('bench')"); err != nil {
			t.Fatal(err)
		}
	}
	names := make([]string, 0, len(catalogQueries))
	for n := range catalogQueries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		want := catalogSet(t, sky, catalogQueries[name], nil)
		got := catalogSet(t, ours, catalogQueries[name], pgqgoAdditions)
		var missing, extra []string
		for l := range want {
			if !got[l] {
				missing = append(missing, l)
			}
		}
		for l := range got {
			if !want[l] {
				extra = append(extra, l)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s differ:\n  only in Skytools: %s\n  only in pgqgo:    %s", name,
				strings.Join(missing, "\n                    "), strings.Join(extra, "\n                    "))
		}
	}
}
