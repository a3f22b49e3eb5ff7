package schema_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// TestAdoptionStructureFile: the structure adoption expects (pgq35.txt) is
// what Skytools' C extension and pgqgo's own schema both have.
func TestAdoptionStructureFile(t *testing.T) {
	query, err := os.ReadFile("sql/adopt/structure.sql")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(readStructure(t, "sql/adopt/pgq35.txt"), "\n")
	for _, tpl := range []pgtest.Template{pgtest.Skytools, pgtest.PgqGo} {
		conn := pgtest.Conn(t, pgtest.NewDB(t, tpl))
		rows, err := conn.Query(context.Background(), string(query))
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("template %v:\n%s", tpl, diffLines(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
	}
}

// pgqState is the data adoption must keep: queues, consumers,
// subscriptions, ticks, events and retry entries, as text.
func pgqState(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	var parts []string
	for _, q := range []string{
		"select q::text from pgq.queue q order by queue_id",
		"select c::text from pgq.consumer c order by co_id",
		"select s::text from pgq.subscription s order by sub_id",
		"select t::text from pgq.tick t order by tick_queue, tick_id",
		"select e::text from pgq.event_template e order by ev_id, ev_txid",
		"select r::text from pgq.retry_queue r order by ev_id",
		"select last_value::text from pgq.batch_id_seq",
	} {
		rows, err := c.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, lines...)
	}
	return strings.Join(parts, "\n")
}

// TestAdoptSkytools takes over Skytools' PgQ 3.5 C extension with pgq_node
// and londiste on top, with queues, consumers, an open batch, a retry entry
// and a table captured by the C logutriga: data unchanged, no C function
// left, no extension left, functions and catalogue as a fresh pgqgo install,
// the open batch finishes, capture goes on in the same format.
func TestAdoptSkytools(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	pgtest.Exec(t, conn, "set timezone = 'UTC'")
	pgtest.Exec(t, conn, `create extension pgq_node; create extension londiste;
		select pgq.create_queue('q'); select pgq.create_queue('other');
		select pgq.register_consumer('q', 'c1'); select pgq.register_consumer('q', 'c2');
		create table t (id int primary key, v text);
		create trigger cap after insert or update or delete on t for each row execute procedure pgq.logutriga('q');
		create trigger caps after insert or update or delete on t for each row execute procedure pgq.sqltriga('other');
		insert into t values (1, 'one, C'), (2, 'two');
		select pgq.insert_event('q', 'ev', 'plain');
		select pgq_node.register_location('other', 'n1', 'dbname=x', false)`)
	pgtest.Exec(t, conn, "select pgq.force_tick('q')")
	pgtest.Exec(t, conn, "select pgq.ticker()")
	open := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'c1')")
	pgtest.Exec(t, conn, "select pgq.event_retry($1, (select min(ev_id) from pgq.get_batch_events($1)), 0)", open)
	b2 := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'c2')")
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", b2)
	pgtest.Exec(t, conn, "select pgq.maint_retry_events()")
	before := pgqState(t, conn)

	// a dry run reports the plan and changes nothing
	res, err := schema.Install(ctx, conn, schema.InstallOptions{Adopt: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Steps, "\n"), "extensions londiste 3.8, pgq_node 3.5, pgq 3.5") {
		t.Fatalf("plan: %q", res.Steps)
	}
	if _, err := schema.Install(ctx, conn, schema.InstallOptions{}); !errors.Is(err, schema.ErrNotManaged) {
		t.Fatalf("install without Adopt: %v", err)
	}
	if pgqState(t, conn) != before || pgtest.Scalar[int64](t, conn, "select count(*) from pg_extension where extname like 'pgq%'") != 2 {
		t.Fatal("the dry run changed something")
	}

	res, err = schema.Install(ctx, conn, schema.InstallOptions{Adopt: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("adoption: %s", strings.Join(res.Steps, "; "))
	if after := pgqState(t, conn); after != before {
		t.Fatalf("data changed by adoption:\n%s", diffLines(before, after))
	}
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pg_extension where extname in ('pgq', 'pgq_node', 'londiste')"); n != 0 {
		t.Fatalf("%d Skytools extensions left", n)
	}
	if n := pgtest.Scalar[int64](t, conn, `select count(*) from pg_proc p join pg_language l on l.oid = p.prolang
		where l.lanname = 'c' and p.pronamespace in ('pgq'::regnamespace, 'pgq_node'::regnamespace, 'londiste'::regnamespace)`); n != 0 {
		t.Fatalf("%d C functions left", n)
	}
	fresh := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	if got, want := functionBodies(t, conn), functionBodies(t, fresh); got != want {
		t.Errorf("functions after adoption differ from a fresh install:\n%s", diffLines(want, got))
	}
	in, err := schema.Inspect(ctx, conn)
	if err != nil || !in.Managed || in.Release != schema.Release {
		t.Fatalf("after adoption: %+v %v", in, err)
	}
	// pgq_node's and londiste's functions are pgqgo's now, over their rows
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(ctx, fresh, c); err != nil {
			t.Fatal(err)
		}
		bodies := `select string_agg(p.oid::regprocedure::text || ' ' || md5(p.prosrc), E'\n' order by 1)
			from pg_proc p where p.pronamespace = $1::regnamespace`
		if got, want := pgtest.Scalar[string](t, conn, bodies, string(c)), pgtest.Scalar[string](t, fresh, bodies, string(c)); got != want {
			t.Errorf("%s functions after adoption differ from pgqgo's:\n%s", c, diffLines(want, got))
		}
		if !strings.Contains(strings.Join(res.Steps, "\n"), "replace "+string(c)+"'s functions with pgqgo's") {
			t.Errorf("the plan does not say %s's functions are replaced: %q", c, res.Steps)
		}
	}
	// pgq_node and londiste keep working on the adopted pgq
	if v := pgtest.Scalar[string](t, conn, "select node_name from pgq_node.get_queue_locations('other') limit 1"); v != "n1" {
		t.Fatalf("pgq_node after adoption: %q", v)
	}
	pgtest.Exec(t, conn, "select londiste.version()")

	// the batch opened before the switch is read and finished after it
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.get_batch_events($1)", open); n != 3 {
		t.Fatalf("open batch has %d events after adoption, want 3", n)
	}
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", open)
	// capture goes on, now through pgqgo's triggers, in the same format
	pgtest.Exec(t, conn, "insert into t values (3, 'three, pgqgo'); update t set v = 'x y' where id = 1; delete from t where id = 2")
	// per queue, in insert order (the retried event is in its table twice)
	rows, err := conn.Query(ctx, `select line from (
		select distinct on (q, ev_id) substring(tableoid::regclass::text from 'event_[0-9]+') as q, ev_id,
		       ev_type || ' ' || ev_data || ' ' || ev_extra1 as line
		  from pgq.event_template where ev_extra1 = 'public.t' order by q, ev_id) e
		order by q, ev_id`)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	want := []string{
		"I:id id=1&v=one%2c+C public.t", "I:id id=2&v=two public.t", // C, queue q
		"I:id id=3&v=three%2c+pgqgo public.t", "U:id id=1&v=x+y public.t", "D:id id=2&v=two public.t", // pgqgo
		"I (id,v) values ('1','one, C') public.t", "I (id,v) values ('2','two') public.t", // C, queue other
		"I (id,v) values ('3','three, pgqgo') public.t", "U v='x y' where id='1' public.t", "D id='2' public.t", // pgqgo
	}
	if strings.Join(evs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("captured events:\n%s\nwant:\n%s", strings.Join(evs, "\n"), strings.Join(want, "\n"))
	}
	// and adoption happens once: the next upgrade is a no-op
	if res, err := schema.Install(ctx, conn, schema.InstallOptions{Adopt: true}); err != nil || res.Changed() {
		t.Fatalf("second upgrade: %v %v", res.Steps, err)
	}
}

// TestAdoptRefusals: what pgqgo cannot take over safely is refused with a
// reason, and left exactly as it was.
func TestAdoptRefusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, setup, reason string
	}{
		{"changed table", "alter table pgq.queue add column local_note text", "queue column local_note text"},
		{"3.5 tables claiming to be PgQ 2.1", "create or replace function pgq.version() returns text language sql as $$ select '2.1.8' $$", "differ from PgQ 2.1's"},
		{"PgQ 3.0", "create or replace function pgq.version() returns text language sql as $$ select '3.0.0.1' $$", "PgQ 3.0.0.1"},
		{"unknown newer PgQ", "create or replace function pgq.version() returns text language sql as $$ select '3.6' $$", "PgQ 3.6"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
			pgtest.Exec(t, conn, c.setup)
			pgtest.Exec(t, conn, "select pgq.create_queue('q')")
			before := pgqState(t, conn)
			_, err := schema.Install(ctx, conn, schema.InstallOptions{Adopt: true})
			if !errors.Is(err, schema.ErrCannotAdopt) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("got %v, want ErrCannotAdopt mentioning %q", err, c.reason)
			}
			if pgqState(t, conn) != before || pgtest.Scalar[bool](t, conn, "select to_regclass('pgq.pgqgo_schema') is not null") ||
				!pgtest.Scalar[bool](t, conn, "select exists (select from pg_extension where extname = 'pgq')") {
				t.Fatal("a refused adoption changed something")
			}
		})
	}
}

// TestAdoptPlainSQL adopts PgQ 3.5 installed without CREATE EXTENSION (its
// objects as plain objects, C functions included).
func TestAdoptPlainSQL(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	dissolve, err := os.ReadFile("sql/adopt/dissolve.sql")
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, conn, string(dissolve))
	// Skytools' version() reads the extension's version; a plain-SQL
	// install has it written in
	if v := pgtest.Scalar[*string](t, conn, "select pgq.version()"); v != nil {
		t.Fatalf("version() without the extension: %q", *v)
	}
	if _, err := schema.Install(ctx, conn, schema.InstallOptions{Adopt: true}); !errors.Is(err, schema.ErrCannotAdopt) {
		t.Fatalf("adopting PgQ of unknown version: %v", err)
	}
	pgtest.Exec(t, conn, "create or replace function pgq.version() returns text language sql as $$ select '3.5.1' $$")
	pgtest.Exec(t, conn, "select pgq.create_queue('q'); select pgq.register_consumer('q', 'c'); select pgq.insert_event('q', 'ev', 'x')")
	if pgtest.Scalar[bool](t, conn, "select exists (select from pg_extension where extname = 'pgq')") {
		t.Fatal("still an extension")
	}
	before := pgqState(t, conn)
	res, err := schema.Install(ctx, conn, schema.InstallOptions{Adopt: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Steps[0], "(plain SQL)") {
		t.Fatalf("plan: %q", res.Steps)
	}
	if after := pgqState(t, conn); after != before {
		t.Fatalf("data changed:\n%s", diffLines(before, after))
	}
	if n := pgtest.Scalar[int64](t, conn, `select count(*) from pg_proc p join pg_language l on l.oid = p.prolang
		where l.lanname = 'c' and p.pronamespace = 'pgq'::regnamespace`); n != 0 {
		t.Fatalf("%d C functions left", n)
	}
}
