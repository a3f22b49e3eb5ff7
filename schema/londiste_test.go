package schema_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// TestLondisteDifferential runs the londiste scenarios (testdata/londiste)
// statement by statement on Debian's londiste 3.8 (over Skytools' pgq and
// pgq_node) and on pgqgo's (over pgqgo's pgq and pgq_node), comparing
// results, return codes, notes and errors.
func TestLondisteDifferential(t *testing.T) {
	for name, steps := range scenarioFiles(t, "londiste") {
		t.Run(name, func(t *testing.T) {
			sky := pgtest.NewDB(t, pgtest.Skytools)
			pgtest.Exec(t, pgtest.Conn(t, sky), "create extension pgq_node; create extension londiste")
			ours := pgtest.NewDB(t, pgtest.PgqGo)
			conn := pgtest.Conn(t, ours)
			for _, c := range []schema.Component{schema.Node, schema.Londiste} {
				if err := schema.InstallComponent(context.Background(), conn, c); err != nil {
					t.Fatal(err)
				}
			}
			runDiffOn(t, sky, ours, steps)
		})
	}
}

// TestLondisteCatalogue: pgqgo's londiste has Debian's londiste 3.8
// functions (names, arguments, results, language, security definer,
// volatility, who may run them), tables and sequences (columns, types,
// defaults, keys, checks, references, triggers, grants) and roles.
func TestLondisteCatalogue(t *testing.T) {
	sky := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	pgtest.Exec(t, sky, "create extension pgq_node; create extension londiste")
	ours := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(context.Background(), ours, c); err != nil {
			t.Fatal(err)
		}
	}
	queries := map[string]string{
		"functions": `select p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
			|| ' ' || l.lanname || case when p.prosecdef then ' secdef' else '' end || ' ' || p.provolatile::text
			|| ' ' || coalesce((select string_agg(g, ',' order by g) from (select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end
			           from aclexplode(p.proacl) a where a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner) x(g)), '')
			from pg_proc p join pg_language l on l.oid = p.prolang
			where p.pronamespace = 'londiste'::regnamespace order by 1`,
		"columns": `select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			|| case when a.attnotnull then ' not null' else '' end || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
			from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
			left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
			where c.relnamespace = 'londiste'::regnamespace and c.relkind in ('r', 'S') order by c.relname, a.attnum`,
		"constraints": `select c.relname || ' ' || k.conname || ' ' || regexp_replace(pg_get_constraintdef(k.oid), '\s+', ' ', 'g')
			from pg_constraint k join pg_class c on c.oid = k.conrelid
			where c.relnamespace = 'londiste'::regnamespace order by 1`,
		"triggers": `select pg_get_triggerdef(t.oid) from pg_trigger t join pg_class c on c.oid = t.tgrelid
			where c.relnamespace = 'londiste'::regnamespace and not t.tgisinternal order by 1`,
		"grants": `select c.relname || ' ' || case when a.grantee = 0 then 'public' else a.grantee::regrole::text end || ' '
			|| string_agg(a.privilege_type, ',' order by a.privilege_type)
			from pg_class c, aclexplode(c.relacl) a
			where c.relnamespace = 'londiste'::regnamespace and a.grantee <> c.relowner group by c.relname, a.grantee order by 1`,
		"roles": `select r.rolname || ' in ' || coalesce((select string_agg(m.rolname, ',' order by m.rolname)
			from pg_auth_members x join pg_roles m on m.oid = x.roleid where x.member = r.oid), '')
			from pg_roles r where r.rolname like 'londiste%' order by 1`,
	}
	for what, sql := range queries {
		want := strings.Join(pgtest.Column[string](t, sky, sql), "\n")
		got := strings.Join(pgtest.Column[string](t, ours, sql), "\n")
		if want != got {
			t.Errorf("londiste %s differ from Debian's:\n%s", what, diffLines(want, got))
		}
	}
}

// TestComponentStructureFiles: the structures adoption expects of Skytools'
// pgq_node and londiste (pgq_node35.txt, londiste38.txt) are what Debian's
// extensions and pgqgo's own schemas both have.
func TestComponentStructureFiles(t *testing.T) {
	query, err := os.ReadFile("sql/adopt/component_structure.sql")
	if err != nil {
		t.Fatal(err)
	}
	sky := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	pgtest.Exec(t, sky, "create extension pgq_node; create extension londiste")
	ours := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(context.Background(), ours, c); err != nil {
			t.Fatal(err)
		}
	}
	for c, file := range map[string]string{"pgq_node": "sql/adopt/pgq_node35.txt", "londiste": "sql/adopt/londiste38.txt"} {
		want := readStructure(t, file)
		for name, conn := range map[string]*pgx.Conn{"Debian's": sky, "pgqgo's": ours} {
			if got := strings.Join(pgtest.Column[string](t, conn, string(query), c), "\n"); got != want {
				t.Errorf("%s %s differs from %s:\n%s", name, c, file, diffLines(want, got))
			}
		}
	}
}

// londisteCatalogueFunctions are the functions of londiste 3.8 (see
// ../shared/reference/londiste-pgq_node-catalogue.md); table_info_trigger is
// the table's own delete trigger, run by global_remove_table and drop_node.
var londisteCatalogueFunctions = strings.Fields(`_coordinate_copy create_partition create_trigger
	drop_obsolete_partitions drop_table_fkey drop_table_triggers execute_finish execute_start find_column_types
	find_rel_oid find_seq_oid find_table_fkeys find_table_oid get_seq_list get_table_list get_table_pending_fkeys
	get_valid_pending_fkeys global_add_table global_remove_seq global_remove_table global_update_seq
	is_obsolete_partition is_replica_func list_obsolete_partitions local_add_seq local_add_table
	local_change_handler local_remove_seq local_remove_table local_set_table_attrs local_set_table_state
	local_set_table_struct local_show_missing make_fqname periodic_maintenance quote_fqname restore_table_fkey
	root_check_seqs root_notify_change set_session_replication_role split_fqname upgrade_schema version`)

func TestLondisteDifferentialCoversCatalogue(t *testing.T) {
	called := scenarioCalls(t, "londiste", "londiste")
	var missing []string
	for _, f := range londisteCatalogueFunctions {
		if !called[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("londiste functions no scenario calls: %v", missing)
	}
}
