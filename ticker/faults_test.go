package ticker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// ticksAdvance waits until the queue gets a tick newer than the current one.
func ticksAdvance(t *testing.T, conn *pgx.Conn, within time.Duration, what string) {
	t.Helper()
	var before int64
	pgtest.Eventually(t, within, what+" (reading ticks)", func() bool {
		return conn.QueryRow(context.Background(), "select max(tick_id) from pgq.tick").Scan(&before) == nil
	})
	pgtest.Eventually(t, within, what, func() bool {
		// an event makes a tick due; errors (server restarting) just retry
		conn.Exec(context.Background(), "select pgq.insert_event('q', 't', 'x')")
		var now int64
		return conn.QueryRow(context.Background(), "select max(tick_id) from pgq.tick").Scan(&now) == nil && now > before
	})
}

// TestReloadPicksUpDatabases: a reload with a new database_list starts
// working on the added database and stops on the removed one.
func TestReloadPicksUpDatabases(t *testing.T) {
	a, ca := newDB(t, pgtest.PgqGo)
	b, cb := newDB(t, pgtest.PgqGo)
	setupQueue(t, ca)
	setupQueue(t, cb)
	cfg := testConfig(t, a)
	d, _ := start(t, cfg)
	ticksAdvance(t, ca, 5*time.Second, "ticks in a")
	cfg.DatabaseList = []string{b}
	d.Reload(cfg)
	ticksAdvance(t, cb, 5*time.Second, "ticks in b after reload")
	pgtest.Eventually(t, 5*time.Second, "a dropped from the worker set", func() bool {
		st := d.Statuses()
		return len(st) == 1 && st[0].Database == b
	})
}

// TestDiscoveryFollowsCreateAndDrop: without database_list the daemon finds
// databases itself, picks up a schema installed later, and survives a
// database dropped while it is being ticked.
func TestDiscoveryFollowsCreateAndDrop(t *testing.T) {
	cfg := testConfig(t)
	d, _ := start(t, cfg)
	name, conn := newDB(t, pgtest.Empty)
	pgtest.Eventually(t, 5*time.Second, "new database seen without pgq", func() bool {
		for _, s := range d.Statuses() {
			if s.Database == name && s.State == "no-pgq" {
				return true
			}
		}
		return false
	})
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	pgtest.Exec(t, admin, "select 1") // keep a maintenance connection for the drop
	_, other := newDB(t, pgtest.PgqGo)
	setupQueue(t, other)
	ticksAdvance(t, other, 5*time.Second, "database created after start is ticked")

	// install pgqgo into the empty database: picked up at the next check
	pgtest.Exec(t, conn, "select 1")
	conn.Close(context.Background())
	installed := pgtest.Conn(t, pgtest.DSNFor(t, name))
	mustInstall(t, installed)
	setupQueue(t, installed)
	ticksAdvance(t, installed, 5*time.Second, "schema installed later is ticked")
	installed.Close(context.Background())

	pgtest.Exec(t, admin, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	pgtest.Eventually(t, 5*time.Second, "dropped database forgotten", func() bool {
		for _, s := range d.Statuses() {
			if s.Database == name {
				return false
			}
		}
		return true
	})
	ticksAdvance(t, other, 5*time.Second, "other databases still ticked")
}

// TestSurvivesRestartAndKilledBackends: PostgreSQL restarts and terminated
// backends make the daemon reconnect and carry on.
func TestSurvivesRestartAndKilledBackends(t *testing.T) {
	cluster := pgtest.Cluster(t)
	name, conn := newDB(t, pgtest.PgqGo)
	setupQueue(t, conn)
	d, _ := start(t, testConfig(t, name))
	ticksAdvance(t, conn, 5*time.Second, "ticking")

	pgtest.Exec(t, conn, "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgqgo ticker' and datname = $1", name)
	ticksAdvance(t, conn, 10*time.Second, "ticking after its backend was terminated")

	// the daemon's retries meet a refused connection, then "the database
	// system is starting up": its backoff stays at 1 s at most meanwhile
	if err := cluster.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	fresh := pgtest.Conn(t, pgtest.DSNFor(t, name))
	ticksAdvance(t, fresh, 20*time.Second, "ticking after a PostgreSQL restart")
	t.Logf("first tick %v after the restarted server accepted connections", time.Since(up).Round(time.Millisecond))
	if st := d.Statuses(); len(st) != 1 || st[0].State != "active" {
		t.Fatalf("status after restart: %+v", st)
	}
}

// TestStandbyTakesOver: a second daemon on the same database stands by while
// the first holds the lock, and takes over when it stops.
func TestStandbyTakesOver(t *testing.T) {
	name, conn := newDB(t, pgtest.PgqGo)
	setupQueue(t, conn)
	first, stopFirst := start(t, testConfig(t, name))
	ticksAdvance(t, conn, 5*time.Second, "first daemon ticks")
	second, _ := start(t, testConfig(t, name))
	pgtest.Eventually(t, 5*time.Second, "second daemon stands by", func() bool {
		st := second.Statuses()
		return len(st) == 1 && st[0].State == "standby"
	})
	if st := first.Statuses(); st[0].State != "active" {
		t.Fatalf("first daemon: %+v", st)
	}
	stopFirst()
	pgtest.Eventually(t, 5*time.Second, "second daemon takes over", func() bool {
		st := second.Statuses()
		return len(st) == 1 && st[0].State == "active"
	})
	ticksAdvance(t, conn, 5*time.Second, "ticks continue under the second daemon")
}

// TestSchemaUpgradedUnderneath reinstalls (upgrades) the schema while the
// daemon works: it carries on.
func TestSchemaUpgradedUnderneath(t *testing.T) {
	name, conn := newDB(t, pgtest.PgqGo)
	setupQueue(t, conn)
	start(t, testConfig(t, name))
	ticksAdvance(t, conn, 5*time.Second, "ticking")
	pgtest.Exec(t, conn, "update pgq.pgqgo_schema set checksum = 'older'")
	mustInstall(t, conn)
	ticksAdvance(t, conn, 10*time.Second, "ticking after the upgrade")
}

// TestStartsBeforeServer: started while PostgreSQL is down, the daemon
// lists the databases again within seconds of the server coming back, not a
// whole check_period later; a database of database_list that does not exist
// is reported (state "missing", a warning), not silently skipped.
func TestStartsBeforeServer(t *testing.T) {
	ctx := context.Background()
	cl := pgtest.OwnCluster(t, pgcluster.Options{})
	admin := pgtest.Conn(t, cl.DSN("postgres"))
	pgtest.Exec(t, admin, "create database app")
	app := pgtest.Conn(t, cl.DSN("app"))
	if _, err := schema.Install(ctx, app, schema.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	setupQueue(t, app)
	admin.Close(ctx)
	app.Close(ctx)
	if err := cl.Shutdown(); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t)
	cfg.BaseConnStr = cl.DSN("postgres")
	cfg.CheckPeriod = time.Minute
	d, _ := start(t, cfg)
	time.Sleep(2 * time.Second) // a failed discovery or two
	if err := cl.Up(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	app = pgtest.Conn(t, cl.DSN("app"))
	ticksAdvance(t, app, 20*time.Second, "ticking after the server came up")
	t.Logf("first tick %v after the server came up (check_period 1m)", time.Since(up).Round(time.Millisecond))

	// database_list with a database that does not exist
	cfg2 := testConfig(t, "app", "nosuchdb")
	cfg2.BaseConnStr = cl.DSN("postgres")
	d2, _ := start(t, cfg2)
	pgtest.Eventually(t, 10*time.Second, "nosuchdb reported missing", func() bool {
		for _, st := range d2.Statuses() {
			if st.Database == "nosuchdb" && st.State == "missing" && strings.Contains(st.Error, "does not exist") {
				return true
			}
		}
		return false
	})
	if st := d.Statuses(); len(st) < 2 { // postgres and app discovered
		t.Fatalf("discovered: %+v", st)
	}
}
