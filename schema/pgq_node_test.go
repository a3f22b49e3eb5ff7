package schema_test

import (
	"context"
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
	missing := uncalled(t, "pgq_node", "pgq_node", nodeCatalogueFunctions)
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
	compareCatalogue(t, pgtest.Conn(t, sky), pgtest.Conn(t, ours), schema.Node, "_watermarks")
}
