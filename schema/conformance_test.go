package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// Conformance cases with no Skytools counterpart to compare against (pgqgo's
// own functions following PgQ 3.5's rules); the compared ones are scenarios
// in scenarios_test.go.

// TestReplicaWritesToDisabledQueue: pgq.insert_event_bulk (pgqgo's) follows
// PgQ's rule for disabled queues: refused, except in a replica session (a
// cascade worker writing a branch queue).
func TestReplicaWritesToDisabledQueue(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'disable_insert', 'true')")
	bulk := "select pgq.insert_event_bulk('q', array['t', 't'], array['a', 'b'])"
	if _, err := conn.Exec(context.Background(), bulk); err == nil || !strings.Contains(err.Error(), "Insert into queue disallowed") {
		t.Fatalf("bulk insert into a disabled queue: %v", err)
	}
	pgtest.Exec(t, conn, "set session_replication_role = replica")
	if n := pgtest.Scalar[int64](t, conn, bulk); n != 2 {
		t.Fatalf("bulk insert as replica wrote %d events, want 2", n)
	}
	pgtest.Exec(t, conn, "set session_replication_role = origin")
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
}

// TestExtUpgradedFrom30: a pgq_ext of Skytools 3.0 (tables keyed by consumer
// alone, no subconsumer_id) is brought to the current layout in place, rows
// kept; an install over a layout it cannot bring there fails with the reason
// and changes nothing.
func TestExtUpgradedFrom30(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
	pgtest.Exec(t, conn, `create schema pgq_ext;
		create table pgq_ext.completed_tick (consumer_id text not null, last_tick_id bigint not null, primary key (consumer_id));
		create table pgq_ext.completed_batch (consumer_id text not null, last_batch_id bigint not null, primary key (consumer_id));
		create table pgq_ext.completed_event (consumer_id text not null, batch_id bigint not null, event_id bigint not null,
			primary key (consumer_id, batch_id, event_id));
		create table pgq_ext.partial_batch (consumer_id text not null, cur_batch_id bigint not null, primary key (consumer_id));
		insert into pgq_ext.completed_batch values ('replica', 41);
		insert into pgq_ext.completed_tick values ('replica', 7);
		insert into pgq_ext.partial_batch values ('replica', 42);
		insert into pgq_ext.completed_event values ('replica', 42, 1001)`)
	if err := schema.InstallComponent(ctx, conn, schema.Ext); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"select pgq_ext.is_batch_done('replica', 41)", true},
		{"select pgq_ext.is_batch_done('replica', '', 41)", true},
		{"select pgq_ext.is_event_done('replica', 42, 1001)", true},
		{"select pgq_ext.get_last_tick('replica') = 7", true},
	} {
		if got := pgtest.Scalar[bool](t, conn, c.sql); got != c.want {
			t.Errorf("%s = %v after the upgrade, want %v", c.sql, got, c.want)
		}
	}
	// and it goes on working: a sub-consumer of the same consumer beside it
	pgtest.Exec(t, conn, "select pgq_ext.set_batch_done('replica', 'member', 5)")
	pgtest.Exec(t, conn, "select pgq_ext.set_batch_done('replica', 43)")
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq_ext.completed_batch"); n != 2 {
		t.Fatalf("%d completed_batch rows, want 2", n)
	}

	// a layout it cannot bring to the current one: refused, nothing changed
	broken := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
	pgtest.Exec(t, broken, `create schema pgq_ext;
		create table pgq_ext.completed_batch (consumer_id text not null, subconsumer_id text not null, batch bigint)`)
	err := schema.InstallComponent(ctx, broken, schema.Ext)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("install over a broken pgq_ext: %v; want a failure saying nothing was changed", err)
	}
	if n := pgtest.Scalar[int64](t, broken, "select count(*) from pg_proc where pronamespace = 'pgq_ext'::regnamespace"); n != 0 {
		t.Fatalf("the failed install left %d functions", n)
	}
	t.Logf("refused: %v", err)
}

// TestReplacedInsertEventKept: a site that replaces pgq.insert_event (7
// arguments; here to audit every event) keeps its version through
// create_queue, drop_queue and a reinstall, and every event the triggers
// make goes through it, as with PgQ's triggers (the fast path, which writes
// rows 2..n of a session itself, is off while it is replaced).
func TestReplacedInsertEventKept(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, `create table audit (queue text, ev_type text, ev_data text);
		create or replace function pgq.insert_event(queue_name text, ev_type text, ev_data text,
		        ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
		returns bigint language plpgsql security definer as $$
		begin
		    insert into public.audit values (queue_name, ev_type, ev_data);
		    return pgq.insert_event_raw(queue_name, null, now(), null, null, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4);
		end $$`)
	for _, sql := range []string{"select pgq.create_queue('other')", "select pgq.drop_queue('other')"} {
		pgtest.Exec(t, conn, sql)
	}
	if err := schema.InstallComponent(ctx, conn, schema.Coop); err != nil { // a component install leaves it too
		t.Fatal(err)
	}
	if _, err := schema.Install(ctx, conn, schema.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, conn, `create table t (id int primary key, v text);
		create trigger l after insert or update on t for each row execute procedure pgq.logutriga('q')`)
	for i := 1; i <= 5; i++ { // more than one row per session: the fast path would take rows 2..n
		pgtest.Exec(t, conn, "insert into t values ($1, 'x')", i)
	}
	pgtest.Exec(t, conn, "update t set v = 'y' where id = 1")
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 'direct', 'call')")
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from audit"); n != 7 {
		t.Fatalf("the site's insert_event saw %d events, want all 7 (5 inserts, an update, a direct call)", n)
	}
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); n != 7 {
		t.Fatalf("%d events stored, want 7", n)
	}
	if src := pgtest.Scalar[string](t, conn, "select prosrc from pg_proc where oid = 'pgq.insert_event(text,text,text,text,text,text,text)'::regprocedure"); !strings.Contains(src, "public.audit") {
		t.Fatalf("the site's insert_event was replaced: %s", src)
	}
}

// TestInsertEventReplacedMidSession: the replacement comes after the last
// create_queue, while a session's triggers already take the fast path; no
// refresh runs. The session's next transaction sees it (the fast path asks
// once per transaction) and every later row goes through the site's function.
func TestInsertEventReplacedMidSession(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	writer, site := pgtest.Conn(t, dsn), pgtest.Conn(t, dsn)
	pgtest.Exec(t, site, `select pgq.create_queue('q');
		create table audit (queue text, ev_type text, ev_data text);
		create table t (id int primary key, v text);
		create trigger l after insert or update on t for each row execute procedure pgq.logutriga('q')`)
	for i := 1; i <= 3; i++ { // rows 2 and 3 take the fast path
		pgtest.Exec(t, writer, "insert into t values ($1, 'x')", i)
	}
	stamp := func() string {
		return pgtest.Scalar[string](t, writer, "select coalesce(current_setting('pgqgo.ie_ok', true), '')")
	}
	checked := stamp()
	if checked == "" {
		t.Fatalf("the fast path was not taken before the replacement (pgqgo.ie_ok unset)")
	}
	pgtest.Exec(t, writer, "insert into t values (100, 'x')")
	pgtest.Exec(t, writer, "insert into t values (101, 'x')")
	if again := stamp(); again != checked {
		t.Fatalf("the check ran again with nothing replaced (%q, then %q): it should cost nothing per transaction", checked, again)
	}
	const replacement = `create or replace function pgq.insert_event(queue_name text, ev_type text, ev_data text,
		        ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
		returns bigint language plpgsql security definer as $$
		begin
		    insert into public.audit values (queue_name, ev_type, ev_data);
		    return pgq.insert_event_raw(queue_name, null, now(), null, null, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4);
		end $$`
	pgtest.Exec(t, site, replacement)
	for i := 4; i <= 6; i++ {
		pgtest.Exec(t, writer, "insert into t values ($1, 'x')", i)
	}
	pgtest.Exec(t, writer, "begin; insert into t values (7, 'x'); insert into t values (8, 'x'); update t set v = 'y' where id = 4; commit")
	if got := pgtest.Scalar[string](t, site, "select string_agg(ev_data, ' ' order by ev_data) from audit"); got != "id=4&v=x id=4&v=y id=5&v=x id=6&v=x id=7&v=x id=8&v=x" {
		t.Fatalf("the site's insert_event saw %q, want the six rows written after it came", got)
	}
	// pgqgo's own back (as an adoption makes it): the fast path returns
	pgtest.Exec(t, site, "begin; set local pgqgo.adopting = on; select pgq._refresh_insert_dispatch(); commit")
	pgtest.Exec(t, writer, "insert into t values (9, 'x')")
	pgtest.Exec(t, writer, "insert into t values (10, 'x')")
	if n := pgtest.Scalar[int64](t, site, "select count(*) from audit"); n != 6 {
		t.Fatalf("the site's insert_event, gone, still saw %d events", n)
	}
	if again := stamp(); again == "" || again == checked {
		t.Fatalf("the fast path did not check again after insert_event changed twice (%q, then %q)", checked, again)
	}
	if n := pgtest.Scalar[int64](t, site, "select count(*) from pgq.event_1"); n != 13 {
		t.Fatalf("%d events stored, want 13", n)
	}
	// dropped and made anew (a new oid): found by name again
	pgtest.Exec(t, site, "drop function pgq.insert_event(text, text, text, text, text, text, text)")
	pgtest.Exec(t, site, replacement)
	pgtest.Exec(t, writer, "insert into t values (11, 'x')")
	pgtest.Exec(t, writer, "insert into t values (12, 'x')")
	if n := pgtest.Scalar[int64](t, site, "select count(*) from audit"); n != 8 {
		t.Fatalf("the site's insert_event, made anew, saw %d events in all, want 8", n)
	}
}
