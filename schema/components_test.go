package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// tickWith inserts events and cuts a tick, so the next batch holds them.
func tickWith(t *testing.T, conn *pgx.Conn, queue string, data ...string) {
	t.Helper()
	for _, d := range data {
		pgtest.Exec(t, conn, "select pgq.insert_event($1, 'ev', $2)", queue, d)
	}
	// the test queues tick at every event (ticker_max_count 1)
	pgtest.Exec(t, conn, "select pgq.ticker($1)", queue)
}

func batchData(t *testing.T, conn *pgx.Conn, batch int64) []string {
	t.Helper()
	return pgtest.Column[string](t, conn, "select ev_data from pgq.get_batch_events($1) order by ev_id", batch)
}

// TestCoop drives pgq_coop's SQL on both pgq implementations: batches of one
// group go to one sub-consumer each, an open batch is handed out again, a dead
// member's batch is taken over, and unregistering respects batch_handling.
func TestCoop(t *testing.T) {
	for _, tpl := range []pgtest.Template{pgtest.PgqGo, pgtest.Skytools} {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.NewDB(t, tpl)
			conn := pgtest.Conn(t, dsn)
			if err := schema.InstallComponent(ctx, conn, schema.Coop); err != nil {
				t.Fatal(err)
			}
			// installing again only refreshes
			if err := schema.InstallComponent(ctx, conn, schema.Coop); err != nil {
				t.Fatal(err)
			}
			pgtest.Exec(t, conn, "select pgq.create_queue('q')")
			pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_count', '1')")
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.register_subconsumer('q','c','a')"); n != 1 {
				t.Fatalf("register a: %d", n)
			}
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.register_subconsumer('q','c','a')"); n != 0 {
				t.Fatalf("register a again: %d", n)
			}
			if v := pgtest.Scalar[string](t, conn, "select pgq_coop.version()"); v == "" {
				t.Fatal("empty version")
			}
			// the members share the main consumer's sub_id
			if n := pgtest.Scalar[int64](t, conn, `select count(distinct sub_id) from pgq.subscription s
				join pgq.consumer c on c.co_id = s.sub_consumer where co_name in ('c', 'c.a')`); n != 1 {
				t.Fatalf("sub_ids: %d", n)
			}

			tickWith(t, conn, "q", "e1", "e2")
			tickWith(t, conn, "q", "e3")
			// b is registered by its first next_batch
			ba := pgtest.Scalar[int64](t, conn, "select pgq_coop.next_batch('q','c','a')")
			bb := pgtest.Scalar[int64](t, conn, "select pgq_coop.next_batch('q','c','b')")
			if ba == bb {
				t.Fatalf("both members got batch %d", ba)
			}
			if got := strings.Join(batchData(t, conn, ba), ","); got != "e1,e2" {
				t.Fatalf("a's batch: %s", got)
			}
			if got := strings.Join(batchData(t, conn, bb), ","); got != "e3" {
				t.Fatalf("b's batch: %s", got)
			}
			// nothing left for a third member; a's open batch is handed out again
			if v := pgtest.Scalar[*int64](t, conn, "select pgq_coop.next_batch('q','c','x')"); v != nil {
				t.Fatalf("x got batch %d", *v)
			}
			if again := pgtest.Scalar[int64](t, conn, "select pgq_coop.next_batch('q','c','a')"); again != ba {
				t.Fatalf("a's open batch %d handed out as %d", ba, again)
			}
			// the main consumer cannot be used while members exist and the group moved on
			if _, err := conn.Exec(ctx, "select pgq_coop.unregister_subconsumer('q','c','b',0)"); err == nil ||
				!strings.Contains(err.Error(), "subconsumer has active batch") {
				t.Fatalf("unregistering a member with an open batch and handling 0: %v; want PgQ's 'subconsumer has active batch'", err)
			}
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.finish_batch($1)", ba); n != 1 {
				t.Fatalf("finish: %d", n)
			}
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.finish_batch($1)", ba); n != 0 {
				t.Fatalf("finish twice: %d", n)
			}

			// b goes silent holding its batch: after the dead interval a takes it over
			pgtest.Exec(t, conn, `update pgq.subscription set sub_active = now() - interval '1 hour'
				where sub_consumer = (select co_id from pgq.consumer where co_name = 'c.b')`)
			took := pgtest.Scalar[int64](t, conn, "select pgq_coop.next_batch('q','c','a', interval '10 minutes')")
			if took != bb {
				t.Fatalf("takeover returned %d, want b's batch %d", took, bb)
			}
			if got := strings.Join(batchData(t, conn, took), ","); got != "e3" {
				t.Fatalf("taken-over batch: %s", got)
			}
			if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.consumer where co_name = 'c.b'"); n != 0 {
				t.Fatalf("dead member still registered")
			}
			// the silent member coming back cannot close the batch it lost; its new holder can
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.finish_batch($1, 'q', 'c', 'b')", took); n != 0 {
				t.Fatalf("the old holder closed a taken-over batch: %d", n)
			}
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.finish_batch($1, 'q', 'c', 'a')", took); n != 1 {
				t.Fatalf("the new holder could not close its batch: %d", n)
			}

			// dropping a held batch skips its events for the group
			tickWith(t, conn, "q", "e4")
			held := pgtest.Scalar[int64](t, conn, "select pgq_coop.next_batch('q','c','x')")
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.unregister_subconsumer('q','c','x',1)"); n != 1 {
				t.Fatalf("unregister x: %d", n)
			}
			if n := pgtest.Scalar[int32](t, conn, "select pgq_coop.unregister_subconsumer('q','c','x',1)"); n != 0 {
				t.Fatalf("unregister x twice: %d", n)
			}
			if held == took {
				t.Fatalf("batch %d handed out twice", held)
			}
			tickWith(t, conn, "q", "e5")
			next := pgtest.Scalar[int64](t, conn, "select pgq_coop.next_batch_custom('q','c','a', null, null, null)")
			if got := strings.Join(batchData(t, conn, next), ","); got != "e5" {
				t.Fatalf("after dropping x's batch: %s", got)
			}
			// retried events go back to the group
			ev := pgtest.Scalar[int64](t, conn, "select ev_id from pgq.get_batch_events($1)", next)
			pgtest.Exec(t, conn, "select pgq.event_retry($1, $2, 0)", next, ev)
			pgtest.Exec(t, conn, "select pgq_coop.finish_batch($1)", next)
			pgtest.Exec(t, conn, "select pgq.maint_retry_events()")
			pgtest.Exec(t, conn, "select pgq.ticker('q')")
			re := pgtest.Scalar[int64](t, conn, "select pgq_coop.next_batch('q','c','a')")
			if got := strings.Join(batchData(t, conn, re), ","); got != "e5" {
				t.Fatalf("retried event: %s", got)
			}

			// an unknown group is registered, main consumer and member, as PgQ does
			if v := pgtest.Scalar[*int64](t, conn, "select pgq_coop.next_batch('q','newgroup','m1')"); v != nil {
				t.Fatalf("first next_batch of an unknown group returned batch %d, want NULL", *v)
			}
			if n := pgtest.Scalar[int64](t, conn, `select count(*) from pgq.subscription s join pgq.consumer c on c.co_id = s.sub_consumer
				where c.co_name in ('newgroup', 'newgroup.m1')`); n != 2 {
				t.Fatalf("unknown group: %d of its main consumer and member registered, want 2", n)
			}
			if _, err := conn.Exec(ctx, "select pgq_coop.next_batch('nosuchqueue','c','a')"); err == nil {
				t.Error("next_batch on an unknown queue: no error")
			}
			// the main consumer used directly: PgQ's wording, particulars in the detail
			pgtest.Exec(t, conn, "select pgq_coop.register_subconsumer('q','solo','m')")
			tickWith(t, conn, "q", "e6")
			pgtest.Exec(t, conn, "select pgq.next_batch('q', 'solo')")
			for _, sql := range []string{"select pgq_coop.next_batch('q','solo','m')", "select pgq_coop.register_subconsumer('q','solo','m2')"} {
				pg := &pgconn.PgError{}
				if _, err := conn.Exec(ctx, sql); !errors.As(err, &pg) || pg.Message != "main consumer has batch open?" ||
					!strings.Contains(pg.Detail, "main consumer solo has an open batch on queue q") {
					t.Fatalf("%s with the main consumer's batch open: %v (detail %q); want PgQ's 'main consumer has batch open?'", sql, err, pg.Detail)
				}
			}
			pgtest.Exec(t, conn, "select pgq.unregister_consumer('q', 'solo')")
			// pgq.unregister_consumer on a group removes every subscription of its
			// sub_id (main and members) and says how many (PgQ 3.5's C function
			// on Skytools' side)
			pgtest.Exec(t, conn, "select pgq_coop.register_subconsumer('q','newgroup','m2')")
			if n := pgtest.Scalar[int32](t, conn, "select pgq.unregister_consumer('q', 'newgroup.m1')"); n != 3 {
				t.Fatalf("pgq.unregister_consumer of a member removed %d subscriptions, want the group's 3", n)
			}
			if n := pgtest.Scalar[int64](t, conn, `select count(*) from pgq.subscription s join pgq.consumer c on c.co_id = s.sub_consumer
				where c.co_name like 'newgroup%'`); n != 0 {
				t.Fatalf("%d subscriptions of the group left", n)
			}
			if n := pgtest.Scalar[int32](t, conn, "select pgq.unregister_consumer('q', 'c')"); n < 2 {
				t.Fatalf("pgq.unregister_consumer of a group's main consumer removed %d subscriptions, want it and its members", n)
			}
		})
	}
}

// TestExt checks pgq_ext's bookkeeping in a database without pgq.
func TestExt(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
	if err := schema.InstallComponent(ctx, conn, schema.Ext); err != nil {
		t.Fatal(err)
	}
	if err := schema.InstallComponent(ctx, conn, schema.Coop); err == nil {
		t.Fatal("pgq_coop installed without pgq")
	}
	check := func(sql string, want bool, args ...any) {
		t.Helper()
		if got := pgtest.Scalar[bool](t, conn, sql, args...); got != want {
			t.Fatalf("%s %v: got %v want %v", sql, args, got, want)
		}
	}
	check("select pgq_ext.is_batch_done('c', 5)", false)
	check("select pgq_ext.set_batch_done('c', 5)", true)
	check("select pgq_ext.set_batch_done('c', 5)", false)
	check("select pgq_ext.is_batch_done('c', 5)", true)
	check("select pgq_ext.is_batch_done('c', 'sub', 5)", false)
	check("select pgq_ext.set_batch_done('c', 6)", true)
	check("select pgq_ext.is_batch_done('c', 5)", false)

	check("select pgq_ext.set_event_done('c', 7, 100)", true)
	check("select pgq_ext.set_event_done('c', 7, 100)", false)
	check("select pgq_ext.is_event_done('c', 7, 100)", true)
	check("select pgq_ext.set_event_done('c', 8, 101)", true)
	check("select pgq_ext.is_event_done('c', 7, 100)", false) // the old batch's events are forgotten
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq_ext.completed_event"); n != 1 {
		t.Fatalf("completed_event rows: %d", n)
	}

	if v := pgtest.Scalar[*int64](t, conn, "select pgq_ext.get_last_tick('c')"); v != nil {
		t.Fatalf("tick %d", *v)
	}
	pgtest.Exec(t, conn, "select pgq_ext.set_last_tick('c', 42)")
	pgtest.Exec(t, conn, "select pgq_ext.set_last_tick('c', 43)")
	if v := pgtest.Scalar[int64](t, conn, "select pgq_ext.get_last_tick('c')"); v != 43 {
		t.Fatalf("tick %d", v)
	}
	pgtest.Exec(t, conn, "select pgq_ext.set_last_tick('c', null)")
	if v := pgtest.Scalar[*int64](t, conn, "select pgq_ext.get_last_tick('c')"); v != nil {
		t.Fatalf("tick after reset %d", *v)
	}
	// reinstall keeps the bookkeeping
	if err := schema.InstallComponent(ctx, conn, schema.Ext); err != nil {
		t.Fatal(err)
	}
	check("select pgq_ext.is_batch_done('c', 6)", true)
	if err := schema.InstallComponent(ctx, conn, "pgq_nope"); err == nil {
		t.Fatal("unknown component accepted")
	}
}

// TestComponentMigrations: pgq_node and londiste install through numbered
// migrations (sql/<component>/migrations), the level noted on their
// schema; installing again changes nothing; Debian's pgq_node and londiste
// found in place count as migration 1 (their tables checked, rows kept,
// functions replaced); changed tables are refused, and so is a level newer
// than the binary's.
func TestComponentMigrations(t *testing.T) {
	ctx := context.Background()
	note := func(c *pgx.Conn, s string) string {
		return pgtest.Scalar[string](t, c, "select coalesce(obj_description($1::regnamespace, 'pg_namespace'), '')", s)
	}
	ours := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(ctx, ours, c); err != nil {
			t.Fatal(err)
		}
	}
	pgtest.Exec(t, ours, "select pgq_node.register_location('q', 'n1', 'dbname=x', false)")
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(ctx, ours, c); err != nil {
			t.Fatalf("installing %s again: %v", c, err)
		}
		if got := note(ours, string(c)); got != "pgqgo "+string(c)+" migration 1" {
			t.Errorf("%s schema note %q", c, got)
		}
	}
	if n := pgtest.Scalar[int64](t, ours, "select count(*) from pgq_node.node_location"); n != 1 {
		t.Fatalf("installing again lost rows: %d", n)
	}

	// Debian's, in place: taken as migration 1, rows kept, functions pgqgo's
	sky := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	pgtest.Exec(t, sky, "create extension pgq_node; create extension londiste")
	pgtest.Exec(t, sky, "select pgq_node.register_location('q', 'n1', 'dbname=x', false)")
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(ctx, sky, c); err != nil {
			t.Fatalf("%s over Debian's: %v", c, err)
		}
		if got := note(sky, string(c)); got != "pgqgo "+string(c)+" migration 1" {
			t.Errorf("%s schema note over Debian's %q", c, got)
		}
	}
	if n := pgtest.Scalar[int64](t, sky, "select count(*) from pgq_node.node_location"); n != 1 {
		t.Fatalf("installing over Debian's lost rows: %d", n)
	}
	if !strings.Contains(pgtest.Scalar[string](t, sky, "select prosrc from pg_proc where oid = 'pgq_node.version()'::regprocedure"), "'3.5'") {
		t.Error("pgq_node.version() is not pgqgo's after the install")
	}

	// a changed table is refused, and nothing changes
	changed := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	pgtest.Exec(t, changed, "create extension pgq_node; alter table pgq_node.node_location add column extra int")
	if err := schema.InstallComponent(ctx, changed, schema.Node); !errors.Is(err, schema.ErrCannotAdopt) || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("install over a changed pgq_node: %v", err)
	}
	if got := note(changed, "pgq_node"); got != "" {
		t.Fatalf("a refused install left a note: %q", got)
	}

	// a level this binary does not know
	pgtest.Exec(t, ours, "comment on schema pgq_node is 'pgqgo pgq_node migration 9'")
	if err := schema.InstallComponent(ctx, ours, schema.Node); !errors.Is(err, schema.ErrNewerSchema) {
		t.Fatalf("install over a newer pgq_node: %v", err)
	}
}
