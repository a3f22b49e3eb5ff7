package schema_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// nodeDBs makes a database with Skytools' PgQ and Debian's pgq_node
// extension, and one with pgqgo's pgq and pgq_node.
func nodeDBs(t *testing.T) (sky, ours string) {
	t.Helper()
	sky = pgtest.NewDB(t, pgtest.Skytools)
	pgtest.Exec(t, pgtest.Conn(t, sky), "create extension pgq_node")
	ours = pgtest.NewDB(t, pgtest.PgqGo)
	if err := schema.InstallComponent(context.Background(), pgtest.Conn(t, ours), schema.Node); err != nil {
		t.Fatal(err)
	}
	return sky, ours
}

// TestPgqNodeDifferential runs every pgq_node scenario statement by
// statement on Debian's pgq_node 3.5 and on pgqgo's, comparing results,
// return codes and notes, and errors (message and SQLSTATE); pgqgo's
// pgq_node runs once over pgqgo's pgq and once over Skytools' C extension
// (pgqgo install --only pgq_node on a Skytools database).
func TestPgqNodeDifferential(t *testing.T) {
	for name, steps := range scenarioFiles(t, "pgq_node") {
		t.Run(name, func(t *testing.T) {
			sky, ours := nodeDBs(t)
			runDiffOn(t, sky, ours, steps)
		})
		t.Run(name+"/over_skytools_pgq", func(t *testing.T) {
			sky, _ := nodeDBs(t)
			mixed := pgtest.NewDB(t, pgtest.Skytools)
			if err := schema.InstallComponent(context.Background(), pgtest.Conn(t, mixed), schema.Node); err != nil {
				t.Fatal(err)
			}
			runDiffOn(t, sky, mixed, steps)
		})
	}
}

// nodeCatalogueFunctions are the functions of pgq_node 3.5 (see
// ../shared/reference/londiste-pgq_node-catalogue.md).
var nodeCatalogueFunctions = strings.Fields(`change_consumer_provider create_node demote_root drop_node
	get_consumer_info get_consumer_state get_node_info get_queue_locations get_subscriber_info get_worker_state
	is_leaf_node is_root_node maint_watermark promote_branch register_consumer register_location
	register_subscriber set_consumer_completed set_consumer_error set_consumer_paused set_consumer_uptodate
	set_global_watermark set_node_attrs set_partition_watermark set_subscriber_watermark unregister_consumer
	unregister_location unregister_subscriber upgrade_schema version`)

func TestPgqNodeDifferentialCoversCatalogue(t *testing.T) {
	called := scenarioCalls(t, "pgq_node", "pgq_node")
	var missing []string
	for _, f := range nodeCatalogueFunctions {
		if !called[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("pgq_node functions no scenario calls: %v", missing)
	}
}

// TestPgqNodeCatalogue: pgqgo's pgq_node has Debian's functions (names,
// arguments, results, language, security definer, who may run them) and
// tables (columns, types, defaults, keys, checks, references, grants);
// pgqgo's own helpers start with an underscore.
func TestPgqNodeCatalogue(t *testing.T) {
	sky, ours := nodeDBs(t)
	queries := map[string]string{
		"functions": `select p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
			|| ' ' || l.lanname || case when p.prosecdef then ' secdef' else '' end || ' ' || p.provolatile::text
			|| ' ' || coalesce((select string_agg(g, ',' order by g) from (select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end
			           from aclexplode(p.proacl) a where a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner) x(g)), '')
			from pg_proc p join pg_language l on l.oid = p.prolang
			where p.pronamespace = 'pgq_node'::regnamespace and p.proname not like '\_%' order by 1`,
		"columns": `select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			|| case when a.attnotnull then ' not null' else '' end || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
			from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
			left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
			where c.relnamespace = 'pgq_node'::regnamespace and c.relkind = 'r' order by c.relname, a.attnum`,
		"constraints": `select c.relname || ' ' || k.conname || ' ' || regexp_replace(pg_get_constraintdef(k.oid), '\s+', ' ', 'g')
			from pg_constraint k join pg_class c on c.oid = k.conrelid
			where c.relnamespace = 'pgq_node'::regnamespace order by 1`,
		"indexes": `select indexdef from pg_indexes where schemaname = 'pgq_node' order by 1`,
		"table grants": `select c.relname || ' ' || a.grantee::regrole::text || ' ' || string_agg(a.privilege_type, ',' order by a.privilege_type)
			from pg_class c, aclexplode(c.relacl) a
			where c.relnamespace = 'pgq_node'::regnamespace and a.grantee <> c.relowner group by c.relname, a.grantee order by 1`,
	}
	skyConn, ourConn := pgtest.Conn(t, sky), pgtest.Conn(t, ours)
	for what, sql := range queries {
		want := strings.Join(pgtest.Column[string](t, skyConn, sql), "\n")
		got := strings.Join(pgtest.Column[string](t, ourConn, sql), "\n")
		if want != got {
			t.Errorf("pgq_node %s differ from Debian's:\n%s", what, diffLines(want, got))
		}
	}
}
