package schema_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// newPgQ21 makes a database with a PgQ 2.1 installation (testdata/pgq21.sql)
// and checks that its structure is the catalogue's (sql/adopt/pgq21.txt).
func newPgQ21(t *testing.T) string {
	t.Helper()
	dsn := pgtest.NewDB(t, pgtest.Empty)
	conn := pgtest.Conn(t, dsn)
	fixture, err := os.ReadFile("testdata/pgq21.sql")
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, conn, string(fixture))
	if got, want := structure(t, conn), readStructure(t, "sql/adopt/pgq21.txt"); got != want {
		t.Fatalf("the PgQ 2.1 fixture is not the catalogue's:\n%s", diffLines(want, got))
	}
	return dsn
}

func structure(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	query, err := os.ReadFile("sql/adopt/structure.sql")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(pgtest.Column[string](t, conn, string(query)), "\n")
}

func readStructure(t *testing.T, file string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	return strings.Join(want, "\n")
}

// columnOrder lists the columns of pgq's fixed tables in their order.
func columnOrder(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	return strings.Join(pgtest.Column[string](t, conn, `select c.relname || '.' || string_agg(a.attname, ',' order by a.attnum)
		from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
		where c.relnamespace = 'pgq'::regnamespace and c.relkind = 'r' and c.relname not like 'event%'
		group by c.relname order by 1`), "\n")
}

// drainIDs reads every batch the consumer can get (ticking first), finishing
// each, and returns the event ids in order.
func drainIDs(t *testing.T, conn *pgx.Conn, queue, consumer string) []int64 {
	t.Helper()
	var ids []int64
	for {
		b := pgtest.Scalar[*int64](t, conn, "select pgq.next_batch($1, $2)", queue, consumer)
		if b == nil {
			return ids
		}
		ids = append(ids, pgtest.Column[int64](t, conn, "select ev_id from pgq.get_batch_events($1) order by ev_id", *b)...)
		pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *b)
	}
}

// triggerEvents runs the same changes on each of the tables t (logtriga),
// l (logtriga as londiste 2.1 creates it: a third argument, the table's
// name), s (sqltriga) and u (logutriga) and returns the events their
// triggers made (type, data, table), from event id after.
func triggerEvents(t *testing.T, conn *pgx.Conn, after int64) []string {
	t.Helper()
	for _, tbl := range []string{"t", "l", "s", "u"} {
		pgtest.Exec(t, conn, "insert into "+tbl+" values (1, 'x', 'junk')")
		pgtest.Exec(t, conn, "update "+tbl+" set v = 'it''s' where id = 1")
		pgtest.Exec(t, conn, "update "+tbl+" set junk = 'ignored' where id = 1")
		pgtest.Exec(t, conn, "delete from "+tbl+" where id = 1")
	}
	return pgtest.Column[string](t, conn, `select concat_ws(' | ', ev_type, ev_data, ev_extra1) from pgq.event_template
		where ev_id > $1 and ev_extra1 in ('public.t', 'public.l', 'public.s', 'public.u') order by ev_id`, after)
}

// TestAdoptPgQ21: a PgQ 2.1 installation (queues, consumers at different
// positions, one with a batch open, a retry event, a failed event, a table
// logged by logtriga, a producer's transaction open during the upgrade) is
// taken over in one step: the dry run changes nothing and names every part;
// the upgrade waits for the producer, keeps every position, pending event
// and retry, moves the failed event to the dead-letter table, leaves the
// tables as pgqgo's own, and logtriga makes the same events after as before.
func TestAdoptPgQ21(t *testing.T) {
	ctx := context.Background()
	dsn := newPgQ21(t)
	conn := pgtest.Conn(t, dsn)
	pgtest.Exec(t, conn, `select pgq.create_queue('q'); select pgq.create_queue('other');
		select pgq.register_consumer('q', 'a'); select pgq.register_consumer('q', 'b'); select pgq.register_consumer('other', 'a')`)
	pgtest.Exec(t, conn, `create table t (id int primary key, v text, junk text);
		create trigger t_log after insert or update or delete on t for each row execute procedure pgq.logtriga('q', 'kv');
		create table l (id int primary key, v text, junk text);
		create trigger q_logger after insert or update or delete on l for each row execute procedure pgq.logtriga('q', 'kvi', 'public.l');
		create table s (id int primary key, v text, junk text);
		create trigger s_sql after insert or update or delete on s for each row execute procedure pgq.sqltriga('q');
		create table u (id int primary key, v text, junk text);
		create trigger u_log after insert or update or delete on u for each row execute procedure pgq.logutriga('q')`)
	produce := func(n int) {
		pgtest.Exec(t, conn, "select pgq.insert_event('q', 'ev', 'payload ' || g) from generate_series(1, $1) g", n)
	}
	produce(10)
	pgtest.Exec(t, conn, "select pgq.ticker()")
	var gotA []int64
	// a: reads the first batch, retries one event, gives up on another
	{
		b := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'a')")
		ids := pgtest.Column[int64](t, conn, "select ev_id from pgq.get_batch_events($1) order by ev_id", b)
		pgtest.Exec(t, conn, "select pgq.event_retry($1, $2, 0)", b, ids[2])
		pgtest.Exec(t, conn, "select pgq.event_failed($1, $2, 'bad payload: no customer 42')", b, ids[3])
		pgtest.Exec(t, conn, "select pgq.finish_batch($1)", b)
		gotA = append(gotA, ids...)
	}
	before := triggerEvents(t, conn, 0)
	produce(10)
	pgtest.Exec(t, conn, "select pgq.ticker()")
	// b: a batch open across the upgrade
	openBatch := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'b')")
	openIDs := pgtest.Column[int64](t, conn, "select ev_id from pgq.get_batch_events($1) order by ev_id", openBatch)
	produce(5) // not yet ticked

	// the dry run: the plan, and nothing changed
	stateBefore := pgqState(t, conn)
	res, err := schema.Install(ctx, conn, schema.InstallOptions{Adopt: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(res.Steps, "\n")
	t.Logf("plan:\n%s", plan)
	for _, want := range []string{"convert Skytools PgQ 2.1", "2 queues, 3 subscriptions (1 with a batch open)",
		"retry events (1)", "move 1 failed events", "pgq.dead_letter", "public.t (logtriga)", "public.s (sqltriga)", "public.u (logutriga)", "apply migration 0002"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan does not say %q", want)
		}
	}
	if pgqState(t, conn) != stateBefore || pgtest.Scalar[string](t, conn, "select pgq.version()") != "2.1.8" {
		t.Fatal("the dry run changed the database")
	}

	// an upgrade that fails half way (here: a lock it cannot get in time,
	// after it dropped failed_queue and 2.1's functions and rebuilt
	// pgq.queue) leaves the database exactly as it was
	holder := pgtest.Conn(t, dsn)
	hold, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, hold.Conn(), "lock table pgq.retry_queue in access share mode")
	impatient := pgtest.Conn(t, dsn+" options='-c lock_timeout=300'")
	if _, err := schema.Install(ctx, impatient, schema.InstallOptions{Adopt: true}); err == nil || !strings.Contains(err.Error(), "lock timeout") {
		t.Fatalf("the upgrade with pgq.retry_queue locked: %v", err)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if pgqState(t, conn) != stateBefore || pgtest.Scalar[string](t, conn, "select pgq.version()") != "2.1.8" ||
		pgtest.Scalar[int64](t, conn, "select count(*) from pgq.failed_queue") != 1 {
		t.Fatal("a failed upgrade changed the database")
	}

	// a producer's transaction is open when the upgrade starts
	producer := pgtest.Conn(t, dsn)
	tx, err := producer.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var inFlight int64
	if err := tx.QueryRow(ctx, "select pgq.insert_event('q', 'ev', 'in flight')").Scan(&inFlight); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	upgrader := pgtest.Conn(t, dsn)
	go func() {
		_, err := schema.Install(ctx, upgrader, schema.InstallOptions{Adopt: true})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the upgrade did not wait for the open producer: %v", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// pgqgo's tables, as a fresh install has them, column order included
	fresh := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	if got, want := structure(t, conn), structure(t, fresh); got != want {
		t.Errorf("adopted tables differ from pgqgo's:\n%s", diffLines(want, got))
	}
	if got, want := columnOrder(t, conn), columnOrder(t, fresh); got != want {
		t.Errorf("column order differs from pgqgo's:\n%s", diffLines(want, got))
	}
	if v := pgtest.Scalar[string](t, conn, "select pgq.version()"); strings.HasPrefix(v, "2.") {
		t.Errorf("pgq.version() is still %s", v)
	}
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pg_proc where pronamespace = 'pgq'::regnamespace and prolang = (select oid from pg_language where lanname = 'c')"); n != 0 {
		t.Errorf("%d C functions left in pgq", n)
	}
	// the failed event, in the dead-letter table with its reason
	dead := pgtest.Column[string](t, conn, "select concat_ws(' | ', dl_queue, dl_consumer, ev_data, dl_reason) from pgq.dead_letter")
	if want := "q | a | payload 4 | PgQ 2.1 failed event: bad payload: no customer 42"; len(dead) != 1 || dead[0] != want {
		t.Errorf("dead letters %q, want [%q]", dead, want)
	}
	// the open batch is still b's, with the same events
	if again := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'b')"); again != openBatch {
		t.Errorf("b's open batch is %d, was %d", again, openBatch)
	}
	if ids := pgtest.Column[int64](t, conn, "select ev_id from pgq.get_batch_events($1) order by ev_id", openBatch); !slices.Equal(ids, openIDs) {
		t.Errorf("b's open batch reads %v, read %v before", ids, openIDs)
	}
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", openBatch)

	// the triggers, now pgqgo's, make the same events (logtriga: 3 for t
	// and for l, the junk-only update ignored; sqltriga and logutriga: 4
	// each)
	after := triggerEvents(t, conn, pgtest.Scalar[int64](t, conn, "select max(ev_id) from pgq.event_template"))
	t.Logf("trigger events: %q", before)
	if len(before) != 14 || !slices.Equal(before, after) {
		t.Errorf("trigger events: PgQ 2.1's C triggers %q, pgqgo's %q", before, after)
	}
	// a column spec without a key is refused, as by the C trigger
	pgtest.Exec(t, conn, `create table nokey (id int primary key, v text);
		create trigger nokey_log after insert on nokey for each row execute procedure pgq.logtriga('q', 'vv')`)
	if _, err := conn.Exec(ctx, "insert into nokey values (1, 'x')"); err == nil || !strings.Contains(err.Error(), "no key column") {
		t.Errorf("logtriga with the spec 'vv': %v, want an error naming the missing key column", err)
	}

	// every event reaches each consumer once: the ticker's work (ticks, the
	// retry) from here on is pgqgo's
	pgtest.Exec(t, conn, "select pgq.force_tick('q')")
	pgtest.Exec(t, conn, "select pgq.ticker()")
	pgtest.Exec(t, conn, "select pgq.maint_retry_events()")
	pgtest.Exec(t, conn, "select pgq.force_tick('q')")
	pgtest.Exec(t, conn, "select pgq.ticker()")
	gotA = append(gotA, drainIDs(t, conn, "q", "a")...)
	gotB := append(openIDs, drainIDs(t, conn, "q", "b")...)
	all := pgtest.Column[int64](t, conn, "select distinct ev_id from pgq.event_template where ev_extra1 not in ('public.t', 'public.l', 'public.s', 'public.u') or ev_extra1 is null order by 1")
	retried := gotA[2]
	count := func(ids []int64) map[int64]int {
		m := map[int64]int{}
		for _, id := range ids {
			m[id]++
		}
		return m
	}
	ca, cb := count(gotA), count(gotB)
	for _, id := range all {
		wantA := 1
		if id == retried {
			wantA = 2 // the retry comes back to a, once
		}
		if ca[id] != wantA || cb[id] != 1 {
			t.Errorf("event %d: a got it %d times (want %d), b %d times (want 1)", id, ca[id], wantA, cb[id])
		}
	}
	if !slices.Contains(all, inFlight) {
		t.Errorf("the event committed during the upgrade (%d) is not in the queue", inFlight)
	}
	if len(all) != 26 {
		t.Errorf("%d events in the queue, want 26", len(all))
	}
}
