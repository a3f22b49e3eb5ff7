package schema_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// schemaFingerprint is every catalogue line of the pgq schema, for comparing
// two installations.
func schemaFingerprint(t *testing.T, c *pgx.Conn) string {
	var parts []string
	for _, name := range []string{"functions", "columns", "indexes", "constraints", "relations", "function grants", "table grants"} {
		set := catalogSet(t, c, catalogQueries[name], nil)
		for l := range set {
			parts = append(parts, name+": "+l)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

func TestInstallTwiceIsNoop(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
	res, err := schema.Install(ctx, conn, schema.InstallOptions{})
	if err != nil || !res.Changed() {
		t.Fatalf("first install: changed=%v err=%v", res.Changed(), err)
	}
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	before := schemaFingerprint(t, conn)
	xmin := pgtest.Scalar[string](t, conn, "select xmin::text from pgq.pgqgo_schema")
	res, err = schema.Install(ctx, conn, schema.InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Fatalf("second install changed something: %v", res.Steps)
	}
	if after := schemaFingerprint(t, conn); after != before {
		t.Fatalf("catalogue changed by a no-op install")
	}
	if x := pgtest.Scalar[string](t, conn, "select xmin::text from pgq.pgqgo_schema"); x != xmin {
		t.Fatalf("version row rewritten by a no-op install")
	}
	if v := pgtest.Scalar[string](t, conn, "select pgq.pgqgo_version()"); v != schema.Release+fmt.Sprintf(" (migration %d)", len(schema.Migrations())) {
		t.Fatalf("pgqgo_version() = %q", v)
	}
}

func TestInstallDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
	res, err := schema.Install(ctx, conn, schema.InstallOptions{DryRun: true})
	if err != nil || len(res.Steps) == 0 {
		t.Fatalf("dry run: %v %v", res.Steps, err)
	}
	if pgtest.Scalar[bool](t, conn, "select exists (select 1 from pg_namespace where nspname = 'pgq')") {
		t.Fatal("dry run created the schema")
	}
}

func TestInstallRefusesForeignPgq(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	_, err := schema.Install(context.Background(), conn, schema.InstallOptions{})
	if !errors.Is(err, schema.ErrNotManaged) {
		t.Fatalf("install over Skytools PgQ: %v", err)
	}
	if v := pgtest.Scalar[string](t, conn, "select extversion from pg_extension where extname = 'pgq'"); v != "3.5" {
		t.Fatalf("extension touched: %s", v)
	}
}

// TestUpgradeKeepsData installs every older migration level, then upgrades,
// and also upgrades from an older release whose function code differs: the
// result must equal a fresh install, with queues and events intact.
func TestUpgradeKeepsData(t *testing.T) {
	ctx := context.Background()
	fresh := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
	if _, err := schema.Install(ctx, fresh, schema.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, fresh, "select pgq.create_queue('q')")
	want := schemaFingerprint(t, fresh)

	n := len(schema.Migrations())
	for level := 1; level <= n; level++ {
		conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
		if _, err := schema.Install(ctx, conn, schema.InstallOptions{UpToMigration: level}); err != nil {
			t.Fatalf("install up to %d: %v", level, err)
		}
		pgtest.Exec(t, conn, "select pgq.create_queue('q')")
		pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'c')")
		pgtest.Exec(t, conn, "select pgq.insert_event('q', 'before', 'upgrade')")
		// pretend the installed code is an older release's
		pgtest.Exec(t, conn, "update pgq.pgqgo_schema set release = '0.0.0', checksum = 'old'")
		res, err := schema.Install(ctx, conn, schema.InstallOptions{})
		if err != nil {
			t.Fatalf("upgrade from migration %d: %v", level, err)
		}
		if !res.Changed() || res.Before.Release != "0.0.0" {
			t.Fatalf("upgrade from %d did nothing: %+v", level, res)
		}
		if got := schemaFingerprint(t, conn); got != want {
			t.Fatalf("upgraded schema differs from a fresh install")
		}
		pgtest.Exec(t, conn, "select pgq.insert_event('q', 'after', 'upgrade')")
		pgtest.Exec(t, conn, "select pgq.force_tick('q')")
		pgtest.Exec(t, conn, "select pgq.ticker()")
		batch := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'c')")
		if got := pgtest.Scalar[string](t, conn, "select string_agg(ev_type, ',' order by ev_id) from pgq.get_batch_events($1)", batch); got != "before,after" {
			t.Fatalf("events across the upgrade: %q", got)
		}
	}
}

func TestInstallRefusesNewerSchema(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "update pgq.pgqgo_schema set migration = 999, release = '99.0.0'")
	_, err := schema.Install(context.Background(), conn, schema.InstallOptions{})
	if !errors.Is(err, schema.ErrNewerSchema) {
		t.Fatalf("got %v", err)
	}
}

// TestInstallAsNonSuperuser installs as a plain database owner (no superuser,
// no CREATEROLE) and uses the queue through the three PgQ roles.
func TestInstallAsNonSuperuser(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	pgtest.NewDB(t, pgtest.PgqGo) // makes sure the cluster-wide PgQ roles exist
	for _, sql := range []string{
		"DROP ROLE IF EXISTS pgqgo_owner", "DROP ROLE IF EXISTS pgqgo_app", "DROP ROLE IF EXISTS pgqgo_worker",
		"CREATE ROLE pgqgo_owner LOGIN NOSUPERUSER NOCREATEROLE",
		"CREATE ROLE pgqgo_app LOGIN IN ROLE pgq_writer",
		"CREATE ROLE pgqgo_worker LOGIN IN ROLE pgq_reader",
		"CREATE ROLE pgqgo_ops LOGIN IN ROLE pgq_admin",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	dbDSN := pgtest.NewDB(t, pgtest.Empty)
	dbName := dbDSN[strings.Index(dbDSN, "dbname=")+len("dbname="):]
	dbName = strings.Trim(strings.Fields(dbName)[0], "'")
	pgtest.Exec(t, admin, "ALTER DATABASE "+pgx.Identifier{dbName}.Sanitize()+" OWNER TO pgqgo_owner")

	owner := pgtest.Conn(t, dbDSN+" user=pgqgo_owner")
	if pgtest.Scalar[bool](t, owner, "select rolsuper from pg_roles where rolname = current_user") {
		t.Fatal("owner is a superuser")
	}
	if _, err := schema.Install(ctx, owner, schema.InstallOptions{}); err != nil {
		t.Fatalf("install as owner: %v", err)
	}
	pgtest.Exec(t, owner, "select pgq.create_queue('q')")

	ops := pgtest.Conn(t, dbDSN+" user=pgqgo_ops")
	app := pgtest.Conn(t, dbDSN+" user=pgqgo_app")
	worker := pgtest.Conn(t, dbDSN+" user=pgqgo_worker")
	pgtest.Exec(t, ops, "select pgq.create_queue('q2')")
	pgtest.Exec(t, worker, "select pgq.register_consumer('q', 'w')")
	pgtest.Exec(t, app, "select pgq.insert_event('q', 't', 'from app')")
	pgtest.Exec(t, app, "select pgq.insert_event('q', 't', 'from app', 'a', 'b', 'c', 'd')")
	if n := pgtest.Scalar[int64](t, app, "select pgq.insert_event_bulk('q', array['t','t'], array['x','y'])"); n != 2 {
		t.Fatalf("bulk insert as writer: %d", n)
	}
	// the change-capture triggers run as the writing role, helpers and all
	pgtest.Exec(t, owner, `create table captured (id int primary key, v text, n int);
		create table captured_nokey (v text);
		create trigger l after insert or update or delete on captured for each row execute procedure pgq.logutriga('q');
		create trigger lb after update on captured for each row execute procedure pgq.logutriga('q', 'backup', 'ignore=n', 'when=id > 0', 'ev_extra3=id::text');
		create trigger s after insert or update or delete on captured for each row execute procedure pgq.sqltriga('q');
		create trigger j after insert or update or delete on captured for each row execute procedure pgq.jsontriga('q');
		create trigger l after insert on captured_nokey for each row execute procedure pgq.logutriga('q');
		grant insert, update, delete, select on captured, captured_nokey to pgqgo_app`)
	pgtest.Exec(t, app, "insert into captured values (1, 'a b', 1); update captured set v = 'c' where id = 1; delete from captured")
	pgtest.Exec(t, app, `insert into captured_nokey values ('x, "y"')`)
	// one row per statement: the second and third take logutriga's fast path,
	// the third with the queue row kept (pgq._trigger_fast_event, owned by the
	// non-superuser owner)
	for id := 2; id <= 4; id++ {
		pgtest.Exec(t, app, "insert into captured values ($1, 'fast', 2)", id)
	}
	if n := pgtest.Scalar[int64](t, owner, "select count(*) from pgq.event_1 where ev_extra1 like 'public.captured%'"); n != 20 {
		t.Fatalf("%d events captured for the writer, want 20", n)
	}
	if got := pgtest.Scalar[string](t, owner, "select string_agg(ev_data, ' ' order by ev_id) from pgq.event_1 where ev_type = 'I:id' and ev_data like '%fast%'"); got != "id=2&v=fast&n=2 id=3&v=fast&n=2 id=4&v=fast&n=2" {
		t.Fatalf("fast-path events of the writer: %q", got)
	}
	if kept := pgtest.Scalar[string](t, app, "select split_part(current_setting('pgqgo.lf_INSERT' || 'captured'::regclass::oid), E'\\x01', 1)"); !strings.HasSuffix(kept, "/q") {
		t.Fatalf("the writer's session keeps no queue row: %q", kept)
	}
	pgtest.Exec(t, ops, "select pgq.force_tick('q')")
	pgtest.Exec(t, ops, "select pgq.ticker()")
	pgtest.Exec(t, ops, "select pgq.maint_retry_events()")
	pgtest.Exec(t, ops, "select pgq.maint_rotate_tables_step2()")
	batch := pgtest.Scalar[int64](t, worker, "select pgq.next_batch('q', 'w')")
	if n := pgtest.Scalar[int64](t, worker, "select count(*) from pgq.get_batch_events($1)", batch); n != 24 {
		t.Fatalf("worker sees %d events", n)
	}
	pgtest.Exec(t, worker, "select pgq.event_retry($1, (select min(ev_id) from pgq.get_batch_events($1)), 0)", batch)
	pgtest.Exec(t, worker, "select pgq.finish_batch($1)", batch)
	// the writer may not read the queue nor administer it
	if _, err := app.Exec(ctx, "select pgq.next_batch('q', 'w')"); err == nil {
		t.Fatal("pgq_writer could call next_batch")
	}
	if _, err := worker.Exec(ctx, "select pgq.insert_event('q', 't', 'x')"); err == nil {
		t.Fatal("pgq_reader could insert")
	}

	// pgq_node, installed by the same owner, used through the roles as
	// Skytools' grants allow: pgq_admin runs the cascade, pgq_writer is a
	// worker, pgq_reader a subscriber asking for its place
	if err := schema.InstallComponent(ctx, owner, schema.Node); err != nil {
		t.Fatalf("install pgq_node as owner: %v", err)
	}
	pgtest.Exec(t, ops, `select pgq_node.register_location('nq', 'root', 'dbname=a', false);
		select pgq_node.register_location('nq', 'leaf', 'dbname=b', false)`)
	if r := pgtest.Scalar[string](t, ops, "select ret_note from pgq_node.create_node('nq', 'root', 'root', 'w', null, null, null)"); r != `Node "root" initialized for queue "nq" with type "root"` {
		t.Fatalf("create_node as pgq_admin: %s", r)
	}
	if r := pgtest.Scalar[int](t, worker, "select ret_code from pgq_node.register_subscriber('nq', 'leaf', 'lw', null)"); r != 200 {
		t.Fatalf("register_subscriber as pgq_reader: %d", r)
	}
	if r := pgtest.Scalar[int](t, app, "select ret_code from pgq_node.set_consumer_completed('nq', 'w', 1)"); r != 100 {
		t.Fatalf("set_consumer_completed as pgq_writer: %d", r)
	}
	if r := pgtest.Scalar[string](t, worker, "select node_type from pgq_node.get_node_info('nq')"); r != "root" {
		t.Fatalf("get_node_info as pgq_reader: %s", r)
	}
	if _, err := worker.Exec(ctx, "select * from pgq_node.create_node('x', 'root', 'root', 'w', null, null, null)"); err == nil {
		t.Fatal("pgq_reader could create a node")
	}
	if _, err := app.Exec(ctx, "select * from pgq_node.drop_node('nq', 'leaf')"); err == nil {
		t.Fatal("pgq_writer could drop a node")
	}

	// londiste too; a worker sets session_replication_role through
	// londiste.set_session_replication_role, which runs with the owner's
	// rights: a non-superuser owner needs the DBA's one-time
	// GRANT SET ON PARAMETER (PostgreSQL 15+)
	// (the owner may not create roles: the DBA makes londiste's two once,
	// as Skytools' extension does; the install grants them their rights)
	pgtest.Exec(t, admin, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'londiste_reader') THEN CREATE ROLE londiste_reader IN ROLE pgq_reader; END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'londiste_writer') THEN CREATE ROLE londiste_writer IN ROLE pgq_admin; END IF;
		END $$`)
	if err := schema.InstallComponent(ctx, owner, schema.Londiste); err != nil {
		t.Fatalf("install londiste as owner: %v", err)
	}
	pgtest.Exec(t, admin, "GRANT londiste_writer TO pgqgo_worker")
	pgtest.Exec(t, admin, "REVOKE SET ON PARAMETER session_replication_role FROM pgqgo_owner")
	lw := pgtest.Conn(t, dbDSN+" user=pgqgo_worker")
	pgtest.Exec(t, ops, "select pgq_node.create_node('nq2', 'root', 'root', 'w', null, null, null) from pgq_node.register_location('nq2', 'root', 'dbname=a', false)")
	if r := pgtest.Scalar[string](t, lw, "select ret_note from londiste.global_add_table('nq2', 'public.captured')"); r != "Table added: public.captured" {
		t.Fatalf("global_add_table as londiste_writer: %s", r)
	}
	if _, err := lw.Exec(ctx, "select londiste.set_session_replication_role('replica', true)"); err == nil {
		t.Fatal("session_replication_role set through a non-superuser owner without the DBA's grant")
	}
	pgtest.Exec(t, admin, "GRANT SET ON PARAMETER session_replication_role TO pgqgo_owner")
	if got := pgtest.Scalar[string](t, lw, `select current_setting('session_replication_role')
		from (select londiste.set_session_replication_role('replica', false)) x`); got != "replica" {
		t.Fatalf("session_replication_role after the grant: %s", got)
	}
}

// TestHostileNames feeds names with quotes, spaces and SQL through every
// entry point that takes a name: they are stored as data or rejected, never
// executed.
func TestHostileNames(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "create table canary (x int)")
	hostile := []string{
		`q"; drop table canary; --`,
		`q'); drop table canary; --`,
		"queue with spaces",
		`$$; drop table canary; $$`,
		"Ünïcödé ✓",
	}
	for _, name := range hostile {
		if n := pgtest.Scalar[int](t, conn, "select pgq.create_queue($1)", name); n != 1 {
			t.Fatalf("create_queue(%q) = %d", name, n)
		}
		pgtest.Exec(t, conn, "select pgq.register_consumer($1, $2)", name, name+" consumer")
		pgtest.Exec(t, conn, "select pgq.insert_event($1, $2, $3)", name, name, name)
		pgtest.Exec(t, conn, "select pgq.set_queue_config($1, 'ticker_max_count', '10')", name)
		pgtest.Exec(t, conn, "select pgq.force_tick($1)", name)
		pgtest.Exec(t, conn, "select pgq.ticker($1)", name)
		batch := pgtest.Scalar[int64](t, conn, "select pgq.next_batch($1, $2)", name, name+" consumer")
		if got := pgtest.Scalar[string](t, conn, "select ev_data from pgq.get_batch_events($1)", batch); got != name {
			t.Fatalf("event data %q", got)
		}
		pgtest.Exec(t, conn, "begin")
		pgtest.Exec(t, conn, "select * from pgq.get_batch_cursor($1, $2, 1)", batch, name)
		pgtest.Exec(t, conn, "commit")
		pgtest.Exec(t, conn, "select pgq.finish_batch($1)", batch)
		pgtest.Exec(t, conn, "select pgq.drop_queue($1, true)", name)
	}
	for _, sql := range []string{
		`select pgq.seq_getval('pgq.x; drop table canary')`,
		`select pgq.seq_setval('public.canary; drop table canary', 5)`,
		`select pgq.set_queue_config('nope', 'ticker_max_count = 1; drop table canary; --', '1')`,
		`select pgq.tune_storage('x''; drop table canary; --')`,
	} {
		if _, err := conn.Exec(context.Background(), sql); err == nil {
			t.Errorf("%s: accepted", sql)
		}
	}
	if !pgtest.Scalar[bool](t, conn, "select to_regclass('public.canary') is not null") {
		t.Fatal("a hostile name dropped the canary table")
	}
}

// TestInstallConcurrentlyOnAFreshCluster: installs into several databases
// of a cluster at once, the first ones there, all make PgQ's and
// londiste's roles: an install that finds a role being made by another's
// open transaction waits for it and goes on (seen as "duplicate key value
// violates unique constraint pg_authid_rolname_index" when the suite's
// tests created their roots at the same moment).
func TestInstallConcurrentlyOnAFreshCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := pgtest.OwnCluster(t, pgcluster.Options{})
	admin := pgtest.Conn(t, c.DSN("postgres"))
	const n = 4
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		name := fmt.Sprintf("db%d", i)
		pgtest.Exec(t, admin, "create database "+name)
		conns[i] = pgtest.Conn(t, c.DSN(name))
	}
	errs := make(chan error, n)
	for _, conn := range conns {
		go func() {
			if _, err := schema.Install(ctx, conn, schema.InstallOptions{}); err != nil {
				errs <- err
				return
			}
			for _, comp := range []schema.Component{schema.Node, schema.Londiste} {
				if err := schema.InstallComponent(ctx, conn, comp); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, conn := range conns {
		for _, probe := range []string{"has_function_privilege('pgq_reader', 'pgq.next_batch(text,text)', 'execute')",
			"pg_has_role('pgq_admin', 'pgq_writer', 'member')", "pg_has_role('londiste_writer', 'pgq_admin', 'member')"} {
			if !pgtest.Scalar[bool](t, conn, "select "+probe) {
				t.Errorf("%s: false", probe)
			}
		}
	}
}
