package ticker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// pwnedBody is the body of a function an attacker wants the daemon to run:
// it records who it ran as, and whether that role is a superuser (what the
// attacker could then do: ALTER ROLE itself SUPERUSER).
const pwnedBody = `BEGIN
    INSERT INTO %s.pwned SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
    RETURN %s;
END`

func ensureRole(t *testing.T, admin *pgx.Conn, sql string) {
	t.Helper()
	if _, err := admin.Exec(context.Background(), sql); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("%s: %v", sql, err)
	}
}

func stateOf(d *Daemon, db string) Status {
	for _, s := range d.Statuses() {
		if s.Database == db {
			return s
		}
	}
	return Status{}
}

// TestFakeSchemaIsRefused: a database owner (no other right) creates a
// schema named pgq whose version() would run as the daemon's role, a
// superuser. The daemon must refuse the database and never call it; told to
// trust the owner (trusted_roles) it does call it, which shows the attack
// was real.
func TestFakeSchemaIsRefused(t *testing.T) {
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	ensureRole(t, admin, "CREATE ROLE pgqgo_dbowner LOGIN")
	name, _ := newDB(t, pgtest.Empty)
	pgtest.Exec(t, admin, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER TO pgqgo_dbowner")
	owner := pgtest.Conn(t, pgtest.DSNFor(t, name)+" user=pgqgo_dbowner")
	pgtest.Exec(t, owner, "create schema pgq; create table pgq.pwned (who name, super boolean); grant insert on pgq.pwned to public")
	for _, f := range []string{"version() RETURNS text", "ticker() RETURNS bigint", "maint_operations(OUT func_name text, OUT func_arg text) RETURNS SETOF record"} {
		ret := "'3.5'"
		if strings.HasPrefix(f, "ticker") {
			ret = "1"
		} else if strings.HasPrefix(f, "maint") {
			ret = ""
		}
		pgtest.Exec(t, owner, fmt.Sprintf("create function pgq.%s language plpgsql as %s", f, dollar(fmt.Sprintf(pwnedBody, "pgq", ret))))
	}

	cfg := testConfig(t, name)
	d, stop := start(t, cfg)
	pgtest.Eventually(t, 10*time.Second, "fake schema refused", func() bool { return stateOf(d, name).State == "untrusted" })
	st := stateOf(d, name)
	if !strings.Contains(st.Error, "pgqgo_dbowner") || !strings.Contains(st.Error, "schema pgq") {
		t.Errorf("the refusal does not name the owner and schema: %q", st.Error)
	}
	time.Sleep(3 * cfg.CheckPeriod) // more checks: still refused, still not called
	if n := pgtest.Scalar[int64](t, owner, "select count(*) from pgq.pwned"); n != 0 {
		t.Fatalf("the daemon ran the fake schema's code %d times", n)
	}
	stop()

	// the control: trusting the owner makes the daemon call its code
	cfg.TrustedRoles = []string{"pgqgo_dbowner"}
	start(t, cfg)
	pgtest.Eventually(t, 10*time.Second, "trusted owner's version() called", func() bool {
		return pgtest.Scalar[int64](t, owner, "select count(*) from pgq.pwned where super") > 0
	})
}

// TestUntrustedMaintenanceSkipped: a pgq_admin member names its own function
// in queue_extra_maint; the daemon (a superuser) keeps calling the extra
// maintenance a superuser wrote and never the member's. A database owner who
// sets the database's search_path to its own schema gets nothing either:
// the daemon's sessions fix their own.
func TestUntrustedMaintenanceSkipped(t *testing.T) {
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	ensureRole(t, admin, "CREATE ROLE pgqgo_dbowner LOGIN")
	name, conn := newDB(t, pgtest.PgqGo) // the template's install makes the pgq roles
	ensureRole(t, admin, "CREATE ROLE pgqgo_qadmin LOGIN IN ROLE pgq_admin")
	setupQueue(t, conn)
	db := pgx.Identifier{name}.Sanitize()
	pgtest.Exec(t, admin, "GRANT CREATE ON DATABASE "+db+" TO pgqgo_qadmin")
	pgtest.Exec(t, admin, "ALTER DATABASE "+db+" OWNER TO pgqgo_dbowner")

	// the superuser's extra maintenance, which must run
	pgtest.Exec(t, conn, `create schema ops; create table ops.done (queue text);
		create function ops.trusted_extra(q text) returns integer language sql as 'insert into ops.done values (q) returning 1'`)
	// the pgq_admin member's, which must not
	qadmin := pgtest.Conn(t, pgtest.DSNFor(t, name)+" user=pgqgo_qadmin")
	pgtest.Exec(t, qadmin, "create schema qa; create table qa.pwned (who name, super boolean); grant all on schema qa to public; grant insert on qa.pwned to public")
	pgtest.Exec(t, qadmin, "create function qa.extra(q text) returns integer language plpgsql as "+dollar(fmt.Sprintf(pwnedBody, "qa", "1")))
	pgtest.Exec(t, qadmin, "update pgq.queue set queue_extra_maint = array['qa.extra', 'ops.trusted_extra'] where queue_name = 'q'")
	// the database owner's: now() and the text = operator first in the database's search_path
	owner := pgtest.Conn(t, pgtest.DSNFor(t, name)+" user=pgqgo_dbowner")
	pgtest.Exec(t, owner, "create schema own; create table own.pwned (who name, super boolean); grant all on schema own to public; grant insert on own.pwned to public")
	pgtest.Exec(t, owner, "create function own.now() returns timestamptz language plpgsql as "+dollar(fmt.Sprintf(pwnedBody, "own", "pg_catalog.now()")))
	pgtest.Exec(t, owner, "create function own.texteq(a text, b text) returns boolean language plpgsql as "+dollar(fmt.Sprintf(pwnedBody, "own", "a operator(pg_catalog.=) b")))
	pgtest.Exec(t, owner, "create operator own.= (leftarg = text, rightarg = text, function = own.texteq)")
	pgtest.Exec(t, owner, "alter database "+db+" set search_path = own, pg_catalog")

	d, _ := start(t, testConfig(t, name))
	pgtest.Eventually(t, 15*time.Second, "trusted extra maintenance ran twice", func() bool {
		return pgtest.Scalar[int64](t, conn, "select count(*) from ops.done where queue = 'q'") >= 2
	})
	ticksAdvance(t, conn, 5*time.Second, "ticks")
	if st := stateOf(d, name); st.State != "active" {
		t.Errorf("database state %q (%s), want active", st.State, st.Error)
	}
	for _, s := range []string{"qa", "own"} {
		if rows := pgtest.Column[string](t, conn, "select who || ' super=' || super from "+s+".pwned"); len(rows) > 0 {
			t.Errorf("the daemon ran %s's code: %v", s, rows)
		}
	}
}

// dollar quotes a function body.
func dollar(s string) string { return "$f$" + s + "$f$" }

// TestRunsAsNonSuperuser: the daemon needs no superuser. As a login role that
// is only a pgq_admin member (the schema installed by a superuser) it ticks,
// rotates the event tables and moves retried events back into the queue.
func TestRunsAsNonSuperuser(t *testing.T) {
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	name, conn := newDB(t, pgtest.PgqGo)
	ensureRole(t, admin, "CREATE ROLE pgqgo_tickrole LOGIN IN ROLE pgq_admin")
	setupQueue(t, conn)
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'rotation_period', '1')")
	table := pgtest.Scalar[int32](t, conn, "select queue_cur_table from pgq.queue where queue_name = 'q'")
	// an event put back for retry, due at once
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 'retry-me', 'x')")
	pgtest.Exec(t, conn, "select pgq.ticker('q')")
	batch := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'c')")
	pgtest.Exec(t, conn, "select pgq.event_retry($1, ev_id, 0) from pgq.get_batch_events($1)", batch)
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", batch)

	cfg := testConfig(t, name)
	cfg.BaseConnStr = pgtest.ServerDSN(t) + " user=pgqgo_tickrole"
	d, _ := start(t, cfg)
	ticksAdvance(t, conn, 5*time.Second, "ticks by a non-superuser")
	pgtest.Eventually(t, 10*time.Second, "rotation by a non-superuser", func() bool {
		return pgtest.Scalar[int32](t, conn, "select queue_cur_table from pgq.queue where queue_name = 'q'") != table
	})
	pgtest.Eventually(t, 10*time.Second, "retry by a non-superuser", func() bool {
		return pgtest.Scalar[int64](t, conn, "select count(*) from pgq.retry_queue") == 0
	})
	if st := stateOf(d, name); st.State != "active" || st.Engine != "pgqgo" {
		t.Errorf("state %+v", st)
	}
}
