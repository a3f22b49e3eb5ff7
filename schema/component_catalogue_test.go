package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// londisteDBs makes a database with Skytools' PgQ and Debian's pgq_node and
// londiste extensions, and one with pgqgo's pgq, pgq_node and londiste.
func londisteDBs(t *testing.T) (sky, ours string) {
	t.Helper()
	sky = pgtest.NewDB(t, pgtest.Skytools)
	pgtest.Exec(t, pgtest.Conn(t, sky), "create extension pgq_node; create extension londiste")
	ours = pgtest.NewDB(t, pgtest.PgqGo)
	conn := pgtest.Conn(t, ours)
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(context.Background(), conn, c); err != nil {
			t.Fatal(err)
		}
	}
	return sky, ours
}

// catalogueQueries describe a component schema ($1) for comparison with
// Skytools': functions (except those named in $2, pgqgo's own helpers) with
// arguments, results, language, security, volatility and who may run them;
// columns of tables and sequences; constraints; indexes; triggers; table
// grants.
var catalogueQueries = map[string]string{
	"functions": `select p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
		|| ' ' || l.lanname || case when p.prosecdef then ' secdef' else '' end || ' ' || p.provolatile::text
		|| ' ' || coalesce((select string_agg(g, ',' order by g) from (select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end
		           from aclexplode(p.proacl) a where a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner) x(g)), '')
		from pg_proc p join pg_language l on l.oid = p.prolang
		where p.pronamespace = $1::regnamespace and p.proname <> all ($2::text[]) order by 1`,
	"columns": `select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		|| case when a.attnotnull then ' not null' else '' end || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
		from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
		left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
		where c.relnamespace = $1::regnamespace and c.relkind in ('r', 'S') and $2::text[] is not null
		order by c.relname, a.attnum`,
	"constraints": `select c.relname || ' ' || k.conname || ' ' || regexp_replace(pg_get_constraintdef(k.oid), '\s+', ' ', 'g')
		from pg_constraint k join pg_class c on c.oid = k.conrelid
		where c.relnamespace = $1::regnamespace and $2::text[] is not null order by 1`,
	"indexes": `select indexdef from pg_indexes where schemaname = $1 and $2::text[] is not null order by 1`,
	"triggers": `select pg_get_triggerdef(t.oid) from pg_trigger t join pg_class c on c.oid = t.tgrelid
		where c.relnamespace = $1::regnamespace and not t.tgisinternal and $2::text[] is not null order by 1`,
	"grants": `select c.relname || ' ' || case when a.grantee = 0 then 'public' else a.grantee::regrole::text end || ' '
		|| string_agg(a.privilege_type, ',' order by a.privilege_type)
		from pg_class c, aclexplode(c.relacl) a
		where c.relnamespace = $1::regnamespace and a.grantee <> c.relowner and $2::text[] is not null
		group by c.relname, a.grantee order by 1`,
}

// compareCatalogue reports every difference between Skytools' and pgqgo's
// catalogue of a component schema, leaving out pgqgo's own helpers.
func compareCatalogue(t *testing.T, sky, ours *pgx.Conn, c schema.Component, helpers ...string) {
	t.Helper()
	for what, sql := range catalogueQueries {
		want := strings.Join(pgtest.Column[string](t, sky, sql, string(c), helpers), "\n")
		got := strings.Join(pgtest.Column[string](t, ours, sql, string(c), helpers), "\n")
		if want != got {
			t.Errorf("%s %s differ from Debian's:\n%s", c, what, diffLines(want, got))
		}
	}
}
