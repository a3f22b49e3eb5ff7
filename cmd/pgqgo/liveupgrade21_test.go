package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// TestLiveUpgradeFrom21 is the seed's own upgrade, on a cluster of its own
// with two PgQ 2.1 databases (the catalogue's fixture, schema/testdata):
// each is ticked the way pgqadm.py did (pgq.ticker() and the retry
// maintenance in a loop), a producer writes events (insert_event, and rows
// of a table logged by 2.1's logtriga, as londiste 2.1 set it up) and a
// consumer reads them the 2.1 way (next_batch, get_batch_events,
// finish_batch, recording each event in the batch's transaction), all
// throughout. Then the procedure: stop the
// old ticker, `pgqgo upgrade --all-databases`, start `pgqgo ticker`. Every
// event produced before, during and after must reach its consumer exactly
// once. Reported: the upgrade's duration, the longest producer statement
// overlapping it, and how long the consumer took to catch up.
func TestLiveUpgradeFrom21(t *testing.T) {
	ctx := context.Background()
	fixture, err := os.ReadFile("../../schema/testdata/pgq21.sql")
	if err != nil {
		t.Fatal(err)
	}
	cl := pgtest.OwnCluster(t, pgcluster.Options{})
	admin := pgtest.Conn(t, cl.DSN("postgres"))
	dbs := []string{"shop", "billing"}
	for _, db := range dbs {
		pgtest.Exec(t, admin, "create database "+db)
		conn := pgtest.Conn(t, cl.DSN(db))
		pgtest.Exec(t, conn, string(fixture))
		pgtest.Exec(t, conn, `select pgq.create_queue('live'); select pgq.register_consumer('live', 'c');
			create table captured (id int primary key, v text, note text);
			create trigger live_logger after insert or update or delete on captured for each row execute procedure pgq.logtriga('live', 'kv', 'public.captured');
			create table seen (ev_id bigint, ev_type text, ev_data text)`)
	}

	// a consumer gave up on an event under 2.1 (pgq.event_failed)
	doomed := pgtest.Conn(t, cl.DSN(dbs[0]))
	pgtest.Exec(t, doomed, `select pgq.insert_event('live', 'p', 'doomed')`) // its own transaction, then the tick
	pgtest.Exec(t, doomed, `select pgq.ticker()`)
	pgtest.Exec(t, doomed, `select pgq.event_failed(b, e.ev_id, 'no customer 42'), pgq.finish_batch(b)
		from pgq.next_batch('live', 'c') b, pgq.get_batch_events(b) e`)

	// the old ticker: pgqadm.py's loop
	oldCtx, stopOld := context.WithCancel(ctx)
	var oldWG sync.WaitGroup
	for _, db := range dbs {
		oldWG.Add(1)
		go func() {
			defer oldWG.Done()
			conn := pgtest.Conn(t, cl.DSN(db))
			for oldCtx.Err() == nil {
				if _, err := conn.Exec(oldCtx, "select pgq.ticker(); select pgq.maint_retry_events()"); err != nil && oldCtx.Err() == nil {
					t.Errorf("2.1 ticker on %s: %v", db, err)
					return
				}
				select {
				case <-oldCtx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}

	// producers and consumers, throughout
	var mu sync.Mutex
	want := map[string][]string{}
	var timings []timedStmt
	var consumerErrs []string
	pctx, stopProducers := context.WithCancel(ctx)
	cctx, stopConsumers := context.WithCancel(ctx)
	var pwg, cwg sync.WaitGroup
	for _, db := range dbs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			conn := pgtest.Conn(t, cl.DSN(db))
			for i := 1; pctx.Err() == nil; i++ {
				start := time.Now()
				var evs []string
				var err error
				if i%2 == 0 {
					data := fmt.Sprintf("payload %d", i)
					_, err = conn.Exec(ctx, "select pgq.insert_event('live', 'p', $1)", data)
					evs = []string{"p|" + data}
				} else {
					_, err = conn.Exec(ctx, "insert into captured values ($1::int, 'row ' || $1::int, 'n')", i)
					evs = []string{fmt.Sprintf("I|(id,v) values ('%d','row %d')", i, i)}
				}
				took := time.Since(start)
				if err != nil {
					t.Errorf("producer on %s: %v", db, err)
					return
				}
				mu.Lock()
				want[db] = append(want[db], evs...)
				timings = append(timings, timedStmt{start, took})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			conn := pgtest.Conn(t, cl.DSN(db))
			for cctx.Err() == nil {
				got, err := consume21(ctx, conn)
				if err != nil {
					// a statement caught by the switch: the batch is read again
					mu.Lock()
					consumerErrs = append(consumerErrs, err.Error())
					mu.Unlock()
				}
				if !got {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	time.Sleep(2 * time.Second)
	// the procedure: stop the old ticker, upgrade every database, start pgqgo ticker
	stopOld()
	oldWG.Wait()
	mu.Lock()
	before := len(want[dbs[0]]) + len(want[dbs[1]])
	mu.Unlock()
	upStart := time.Now()
	out, err := pgqgo("upgrade", "--all-databases", "--db", cl.DSN("postgres")).CombinedOutput()
	upEnd := time.Now()
	if err != nil {
		t.Fatalf("pgqgo upgrade: %v\n%s", err, out)
	}
	t.Logf("pgqgo upgrade --all-databases (%v):\n%s", upEnd.Sub(upStart).Round(time.Millisecond), out)
	for _, db := range dbs {
		if !strings.Contains(string(out), "database "+db+":") {
			t.Errorf("the upgrade did not visit %s", db)
		}
	}
	dir := t.TempDir()
	ini := filepath.Join(dir, "ticker.ini")
	if err := os.WriteFile(ini, []byte(fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\n"+
		"database_list = %s\npidfile = %s\nlogfile = %s\nsyslog = 0\nticker_period = 0.1\n",
		cl.SocketDir, cl.Port, cl.User, strings.Join(dbs, ","), filepath.Join(dir, "t.pid"), filepath.Join(dir, "t.log"))), 0o644); err != nil {
		t.Fatal(err)
	}
	ticker := pgqgo("ticker", "-q", ini)
	if err := ticker.Start(); err != nil {
		t.Fatal(err)
	}
	tickerStart := time.Now()
	defer func() {
		ticker.Process.Signal(syscall.SIGTERM)
		ticker.Wait()
	}()
	// catch-up: the events made before the ticker started
	mu.Lock()
	atStart := map[string]int{dbs[0]: len(want[dbs[0]]), dbs[1]: len(want[dbs[1]])}
	mu.Unlock()
	for _, db := range dbs {
		conn := pgtest.Conn(t, cl.DSN(db))
		pgtest.Eventually(t, 60*time.Second, db+" caught up", func() bool {
			return pgtest.Scalar[int64](t, conn, "select count(*) from seen") >= int64(atStart[db])
		})
	}
	catchUp := time.Since(tickerStart)
	time.Sleep(2 * time.Second)
	stopProducers()
	pwg.Wait()

	total := 0
	for _, db := range dbs {
		conn := pgtest.Conn(t, cl.DSN(db))
		w := want[db]
		total += len(w)
		pgtest.Eventually(t, 60*time.Second, db+" has every event", func() bool {
			return pgtest.Scalar[int64](t, conn, "select count(*) from seen") >= int64(len(w))
		})
	}
	stopConsumers()
	cwg.Wait()
	for _, db := range dbs {
		conn := pgtest.Conn(t, cl.DSN(db))
		w := append([]string(nil), want[db]...)
		sort.Strings(w)
		got := pgtest.Column[string](t, conn, "select ev_type || '|' || ev_data from seen order by 1")
		if strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: %d events, want %d; first differences:\n%s", db, len(got), len(w), firstDiffs(w, got, 10))
		}
		if dup := pgtest.Scalar[int64](t, conn, "select count(*) - count(distinct ev_id) from seen"); dup != 0 {
			t.Errorf("%s: %d events delivered twice", db, dup)
		}
		if v := pgtest.Scalar[string](t, conn, "select pgq.version()"); strings.HasPrefix(v, "2.") {
			t.Errorf("%s: still PgQ %s", db, v)
		}
	}
	if dead := pgtest.Column[string](t, pgtest.Conn(t, cl.DSN(dbs[0])), "select ev_data || ' | ' || dl_reason from pgq.dead_letter"); len(dead) != 1 ||
		dead[0] != "doomed | PgQ 2.1 failed event: no customer 42" {
		t.Errorf("dead letters after the upgrade: %q", dead)
	}
	if before < 200 || total-before < 200 {
		t.Fatalf("not a live upgrade: %d events before the switch, %d after", before, total-before)
	}
	var worst, worstAll time.Duration
	for _, s := range timings {
		worstAll = max(worstAll, s.took)
		if s.start.Before(upEnd) && s.start.Add(s.took).After(upStart) {
			worst = max(worst, s.took)
		}
	}
	t.Logf("from PgQ 2.1, 2 databases: %d events (%d before the switch), each delivered once; upgrade %v; longest producer statement during it %v (whole run %v); consumers caught up %v after pgqgo ticker started; consumer statements caught by the switch (retried): %d %q",
		total, before, upEnd.Sub(upStart).Round(time.Millisecond), worst.Round(10*time.Microsecond), worstAll.Round(10*time.Microsecond),
		catchUp.Round(time.Millisecond), len(consumerErrs), consumerErrs)
	if worst > 5*time.Second {
		t.Errorf("a producer waited %v during the upgrade", worst)
	}
}

// consume21 handles one batch the way a PgQ 2.1 consumer does, recording
// its events in the batch's transaction; it reports whether there was one.
func consume21(ctx context.Context, conn *pgx.Conn) (bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	var batch *int64
	if err := tx.QueryRow(ctx, "select pgq.next_batch('live', 'c')").Scan(&batch); err != nil {
		return false, err
	}
	if batch == nil {
		return false, tx.Commit(ctx)
	}
	if _, err := tx.Exec(ctx, `insert into seen select ev_id, ev_type, ev_data from pgq.get_batch_events($1)`, *batch); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRow(ctx, "select pgq.finish_batch($1)", *batch).Scan(&n); err != nil {
		return false, err
	}
	if n != 1 {
		return false, errors.New("finish_batch found no batch")
	}
	return true, tx.Commit(ctx)
}

// TestCLIUpgrade21DryRun: `pgqgo upgrade --dry-run` on a PgQ 2.1 database
// with failed events and londiste 2.1's tables prints the plan, saying what
// happens to both, and changes nothing.
func TestCLIUpgrade21DryRun(t *testing.T) {
	fixture, err := os.ReadFile("../../schema/testdata/pgq21.sql")
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.NewDB(t, pgtest.Empty)
	conn := pgtest.Conn(t, dsn)
	pgtest.Exec(t, conn, string(fixture))
	pgtest.Exec(t, conn, `select pgq.create_queue('replika'); select pgq.register_consumer('replika', 'londiste');
		select pgq.insert_event('replika', 'x', 'y'); select pgq.insert_event('replika', 'x', 'z')`)
	pgtest.Exec(t, conn, `select pgq.ticker()`) // a transaction after the events'
	pgtest.Exec(t, conn, `select pgq.event_failed(b, 1, 'no such table'), pgq.event_failed(b, 2, 'no such table'), pgq.finish_batch(b)
		  from pgq.next_batch('replika', 'londiste') b;
		create schema londiste;
		create table londiste.provider_table (nr serial, queue_name text, table_name text, trigger_name text);
		create table londiste.subscriber_table (nr serial, queue_name text, table_name text, snapshot text, merge_state text)`)
	state := func() string {
		return strings.Join(pgtest.Column[string](t, conn, `select 'f:' || count(*) from pgq.failed_queue
			union all select 'v:' || pgq.version()
			union all select 'p:' || count(*) from pg_proc where pronamespace = 'pgq'::regnamespace
			union all select 't:' || string_agg(tick_id::text, ',') from pgq.tick`), " ")
	}
	before := state()
	ok(t, "", []string{"convert Skytools PgQ 2.1 in place", "move 2 failed events (pgq.failed_queue, which PgQ 3 dropped) to pgq.dead_letter",
		"leave Skytools 2.1's schemas londiste (tables: provider_table, subscriber_table) as they are (not converted)",
		"apply migration 0002_dead_letter"}, "upgrade", "--dry-run", "--db", dsn)
	if after := state(); after != before {
		t.Fatalf("the dry run changed the database: %s -> %s", before, after)
	}
}
