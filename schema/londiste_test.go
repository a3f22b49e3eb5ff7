package schema_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

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

// TestLondisteGlobalAddConcurrently: a worker applying the root's
// londiste.add-table and an admin syncing the set may add the same table
// (and update the same sequence) in two transactions at once; the second
// waits for the first and then finds the table added, as it would one
// after the other (londiste3's add-table failed on this race with a
// duplicate key).
func TestLondisteGlobalAddConcurrently(t *testing.T) {
	_, ours := londisteDBs(t)
	ctx := context.Background()
	setup := pgtest.Conn(t, ours)
	pgtest.Exec(t, setup, "select * from pgq_node.register_location('q', 'n', 'dbname=n', false)")
	pgtest.Exec(t, setup, "select * from pgq_node.create_node('q', 'root', 'n', 'w', null, null, null)")
	a, b := pgtest.Conn(t, ours), pgtest.Conn(t, ours)
	txA, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, a, "select * from londiste.global_add_table('q', 'public.t')")
	pgtest.Exec(t, a, "select * from londiste.global_update_seq('q', 'public.s', 10)")
	type res struct {
		code int
		note string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		var r res
		r.err = b.QueryRow(ctx, "select ret_code, ret_note from londiste.global_add_table('q', 't')").Scan(&r.code, &r.note)
		if r.err == nil {
			_, r.err = b.Exec(ctx, "select * from londiste.global_update_seq('q', 'public.s', 20)")
		}
		done <- r
	}()
	time.Sleep(200 * time.Millisecond) // b waits on a's row
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.code != 200 || r.note != "Table already added: public.t" {
		t.Fatalf("concurrent global_add_table: %d %q %v", r.code, r.note, r.err)
	}
	if v := pgtest.Scalar[int64](t, setup, "select last_value from londiste.seq_info where seq_name = 'public.s'"); v != 20 {
		t.Fatalf("sequence value %d after the concurrent update, want 20", v)
	}
}
