package schema_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// TestTriggerFastPathFollowsQueueChanges: logutriga's fast path keeps the
// queue row per session (pgq._trigger_fast_event, pgq.pgqgo_queue_gen). A
// writing session that has it must see every change made elsewhere: a table
// rotation (its next event goes to the new current table, which batches read), inserts
// disabled and enabled again, a queue dropped and created again under the
// same name. A change that rolled back stops the keeping until maintenance
// catches up. The writer is a plain pgq_writer, the changes are made by a
// pgq_admin.
func TestTriggerFastPathFollowsQueueChanges(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	for _, sql := range []string{"CREATE ROLE pgqgo_cache_app LOGIN IN ROLE pgq_writer", "CREATE ROLE pgqgo_cache_ops LOGIN IN ROLE pgq_admin"} {
		if _, err := admin.Exec(ctx, sql); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	owner := pgtest.Conn(t, dsn)
	pgtest.Exec(t, owner, `create table t (id int primary key, v text);
		grant insert, update, delete, select on t to pgqgo_cache_app;
		create trigger cap after insert or update or delete on t for each row execute procedure pgq.logutriga('q');
		select pgq.create_queue('q');
		select pgq.set_queue_config('q', 'rotation_period', '0')`)
	app := pgtest.Conn(t, dsn+" user=pgqgo_cache_app")
	ops := pgtest.Conn(t, dsn+" user=pgqgo_cache_ops")

	next := 0
	write := func() error {
		next++
		_, err := app.Exec(ctx, "insert into t values ($1, 'row')", next)
		return err
	}
	mustWrite := func(what string) {
		t.Helper()
		if err := write(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	kept := func() string { // the generation/queue the writer keeps, if any
		lay := pgtest.Scalar[*string](t, app, "select current_setting('pgqgo.lf_INSERT' || 't'::regclass::oid, true)")
		if lay == nil {
			return ""
		}
		f := strings.Split(*lay, "\x01")
		if len(f) < 6 {
			return ""
		}
		return f[0]
	}
	inTable := func(table string) []string {
		t.Helper()
		return pgtest.Column[string](t, owner, "select ev_data from pgq."+pgx.Identifier{table}.Sanitize()+" order by ev_id")
	}
	gen := func() string {
		return pgtest.Scalar[string](t, owner, "select pg_sequence_last_value('pgq.pgqgo_queue_gen')::text")
	}
	expectKept := func(when string) {
		t.Helper()
		if got, want := kept(), gen()+"/q"; got != want {
			t.Fatalf("%s the writer keeps %q, want %q", when, got, want)
		}
	}

	for range 3 {
		mustWrite("first rows")
	}
	expectKept("after three rows")

	// rotation: the next event goes to the new current table
	pgtest.Exec(t, ops, "select pgq.maint_rotate_tables_step1('q')")
	pgtest.Exec(t, ops, "select pgq.maint_rotate_tables_step2()")
	if cur := pgtest.Scalar[int](t, owner, "select queue_cur_table from pgq.queue where queue_name = 'q'"); cur != 1 {
		t.Fatalf("rotation did not happen: current table %d", cur)
	}
	mustWrite("after rotation")
	if got := inTable("event_1_1"); len(got) != 1 || got[0] != "id=4&v=row" {
		t.Fatalf("after rotation event_1_1 holds %q", got)
	}
	if n := len(inTable("event_1_0")); n != 3 {
		t.Fatalf("event_1_0 holds %d events, want 3", n)
	}
	mustWrite("kept again")
	expectKept("after rotation")

	// inserts disabled: refused at once, as through insert_event
	pgtest.Exec(t, ops, "select pgq.set_queue_config('q', 'queue_disable_insert', 'true')")
	if err := write(); err == nil || !strings.Contains(err.Error(), "Insert into queue disallowed") {
		t.Fatalf("insert into a disabled queue: %v", err)
	}
	pgtest.Exec(t, ops, "select pgq.set_queue_config('q', 'queue_disable_insert', 'false')")
	mustWrite("enabled again")

	// a change that rolls back: nothing is kept until maintenance catches up
	pgtest.Exec(t, ops, "begin; update pgq.queue set queue_per_tx_limit = 5 where queue_name = 'q'")
	pgtest.Exec(t, ops, "rollback")
	mustWrite("after a rolled back change")
	mustWrite("after a rolled back change")
	if got := kept(); got == gen()+"/q" {
		t.Fatalf("the writer keeps %q although a change rolled back", got)
	}
	pgtest.Exec(t, ops, "select pgq.maint_rotate_tables_step2()")
	mustWrite("after maintenance")
	expectKept("after maintenance")

	// the queue dropped and created again: events go to the new one
	pgtest.Exec(t, ops, "select pgq.drop_queue('q')")
	if err := write(); err == nil || !strings.Contains(err.Error(), "No such queue") {
		t.Fatalf("insert into a dropped queue: %v", err)
	}
	pgtest.Exec(t, ops, "select pgq.create_queue('q')")
	mustWrite("queue created again")
	newID := pgtest.Scalar[int](t, owner, "select queue_id from pgq.queue where queue_name = 'q'")
	if got := inTable("event_" + strconv.Itoa(newID) + "_0"); len(got) != 1 || !strings.HasPrefix(got[0], "id=") {
		t.Fatalf("the new queue's table holds %q", got)
	}
}
