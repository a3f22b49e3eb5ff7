package schema_test

import (
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
			sky, ours := londisteDBs(t)
			runDiffOn(t, sky, ours, steps)
		})
	}
}

// TestLondisteCatalogue: pgqgo's londiste has Debian's londiste 3.8
// functions (names, arguments, results, language, security definer,
// volatility, who may run them), tables and sequences (columns, types,
// defaults, keys, checks, references, triggers, grants) and roles.
func TestLondisteCatalogue(t *testing.T) {
	skyDSN, oursDSN := londisteDBs(t)
	sky, ours := pgtest.Conn(t, skyDSN), pgtest.Conn(t, oursDSN)
	compareCatalogue(t, sky, ours, schema.Londiste)
	roles := `select r.rolname || ' in ' || coalesce((select string_agg(m.rolname, ',' order by m.rolname)
		from pg_auth_members x join pg_roles m on m.oid = x.roleid where x.member = r.oid), '')
		from pg_roles r where r.rolname like 'londiste%' order by 1`
	if want, got := strings.Join(pgtest.Column[string](t, sky, roles), "\n"), strings.Join(pgtest.Column[string](t, ours, roles), "\n"); want != got {
		t.Errorf("londiste roles differ from Debian's:\n%s", diffLines(want, got))
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
	skyDSN, oursDSN := londisteDBs(t)
	sky, ours := pgtest.Conn(t, skyDSN), pgtest.Conn(t, oursDSN)
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
	missing := uncalled(t, "londiste", "londiste", londisteCatalogueFunctions)
	if len(missing) > 0 {
		t.Fatalf("londiste functions no scenario calls: %v", missing)
	}
}
