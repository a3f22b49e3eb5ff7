package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// TestLondiste21Adopted is the seed's londiste-replicated database moved
// onto pgqgo: a PgQ 2.1 provider (tables logged by logtriga as londiste 2.1
// sets them up, ticked in pgqadm.py's loop) and a subscriber on a server of
// its own, fed by a 2.1-style replay (a batch applied and its tick recorded
// in londiste.completed in one transaction), a writer on the provider
// throughout. The replay stops mid-stream, leaving a backlog; then `pgqgo
// upgrade` and `pgqgo ticker` on the provider, `adopt-21` on the provider
// (while the writer writes: the triggers are swapped) and on the
// subscriber, and pgqgo's workers. The leaf must end equal to the root
// with nothing copied that 2.1 had in sync, the table 2.1 was still
// copying copied, the sequence replicated, and 2.1's job gone from the
// provider's queue.
func TestLondiste21Adopted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pgq21, err := os.ReadFile("../../schema/testdata/pgq21.sql")
	if err != nil {
		t.Fatal(err)
	}
	londiste21, err := os.ReadFile("testdata/londiste21.sql")
	if err != nil {
		t.Fatal(err)
	}
	s := &replicaSetup{ctx: ctx, dir: t.TempDir(), tables: []string{"public.acct", "public.big", "public.late", `public."Odd Name"`}}
	s.rootDSN = pgtest.NewDB(t, pgtest.Empty)
	s.leafCluster = pgtest.OwnCluster(t, pgcluster.Options{})
	pgtest.Exec(t, pgtest.Conn(t, s.leafCluster.DSN("postgres")), "create database leaf")
	s.leafDSN = s.leafCluster.DSN("leaf")
	s.root, s.leaf = pgtest.Conn(t, s.rootDSN), pgtest.Conn(t, s.leafDSN)
	s.rootINI = pgtest.LondisteINI(t, s.dir, "root", s.rootDSN, "")
	s.leafINI = pgtest.LondisteINI(t, s.dir, "leaf", s.leafDSN, "")
	tables := `create table acct (id int primary key, v text, n int);
		create table big (id int primary key, pad text);
		create table late (id int primary key, v text);
		create table "Odd Name" ("Key" int primary key, "v'al" text);
		create sequence acct_seq;
		insert into big select g, repeat('x', 100) from generate_series(1, 5000) g;`
	// the provider, as londiste 2.1's provider_add_table and add_seq left it
	pgtest.Exec(t, s.root, string(pgq21))
	pgtest.Exec(t, s.root, string(londiste21))
	pgtest.Exec(t, s.root, tables+`
		insert into late select g, 'late ' || g from generate_series(1, 300) g;
		select pgq.create_queue('replika');
		update pgq.queue set queue_ticker_max_lag = '20 ms' where queue_name = 'replika'; -- a tick per ticker round
		select pgq.register_consumer('replika', 'leaf21');
		create trigger replika_logger after insert or update or delete on acct for each row execute procedure pgq.logtriga('replika', 'kvv', 'public.acct');
		create trigger replika_logger after insert or update or delete on big for each row execute procedure pgq.logtriga('replika', 'kv', 'public.big');
		create trigger replika_logger after insert or update or delete on late for each row execute procedure pgq.logtriga('replika', 'kv', 'public.late');
		create trigger replika_logger after insert or update or delete on "Odd Name" for each row execute procedure pgq.logtriga('replika', 'kv', 'public.Odd Name');
		insert into londiste.provider_table (queue_name, table_name, trigger_name) values
			('replika', 'public.acct', 'replika_logger'), ('replika', 'public.big', 'replika_logger'), ('replika', 'public.late', 'replika_logger'), ('replika', 'public.Odd Name', 'replika_logger');
		insert into londiste.provider_seq (queue_name, seq_name) values ('replika', 'public.acct_seq')`)
	// the subscriber: acct and big in sync, late still being copied (its
	// rows only half there), the sequence registered
	pgtest.Exec(t, s.leaf, string(londiste21))
	pgtest.Exec(t, s.leaf, tables+`
		insert into late select g, 'late ' || g from generate_series(1, 150) g;
		insert into londiste.subscriber_table (queue_name, table_name, merge_state) values
			('replika', 'public.acct', 'ok'), ('replika', 'public.big', 'ok'), ('replika', 'public.late', 'in-copy'), ('replika', 'public.Odd Name', 'ok');
		insert into londiste.subscriber_seq (queue_name, seq_name) values ('replika', 'public.acct_seq')`)

	// pgqadm.py's ticker loop, the 2.1 replay and a writer
	oldCtx, stopOld := context.WithCancel(ctx)
	replayCtx, stopReplay := context.WithCancel(ctx)
	writeCtx, stopWriter := context.WithCancel(ctx)
	var oldWG, replayWG, writeWG sync.WaitGroup
	oldWG.Add(1)
	go func() {
		defer oldWG.Done()
		conn := pgtest.Conn(t, s.rootDSN)
		for oldCtx.Err() == nil {
			if _, err := conn.Exec(oldCtx, "select pgq.ticker()"); err != nil && oldCtx.Err() == nil {
				t.Errorf("2.1 ticker: %v", err)
				return
			}
			select {
			case <-oldCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	replayed := 0
	replayWG.Add(1)
	go func() {
		defer replayWG.Done()
		src, dst := pgtest.Conn(t, s.rootDSN), pgtest.Conn(t, s.leafDSN)
		for replayCtx.Err() == nil {
			n, err := replay21(ctx, src, dst, "leaf21", true)
			if err != nil {
				t.Errorf("2.1 replay: %v", err)
				return
			}
			replayed += n
			if n == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	writeWG.Add(1)
	writes := 0
	var timingMu sync.Mutex
	var timings []timedStmt // the writer's transactions (one statement each)
	go func() {
		defer writeWG.Done()
		conn := pgtest.Conn(t, s.rootDSN)
		for i := 1; writeCtx.Err() == nil; i++ {
			start := time.Now()
			// acct grows by 4 rows in 5; updates and deletes reach back
			_, err := conn.Exec(ctx, fmt.Sprintf(`insert into acct values (nextval('acct_seq'), 'row', 0);
				update acct set n = n + 1, v = 'it''s ' || n where id = (select max(id) from acct) - %d;
				delete from acct where id = (select max(id) from acct) - 7 and %d = 0;
				update late set v = v || '+' where id = %d;
				insert into "Odd Name" values (%d, 'it''s');
				update "Odd Name" set "v'al" = "v'al" || '!' where "Key" = %d`, i%20, i%5, i%300+1, i, i/2))
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			timingMu.Lock()
			timings = append(timings, timedStmt{start, time.Since(start)})
			timingMu.Unlock()
			writes++
			time.Sleep(3 * time.Millisecond)
		}
	}()

	time.Sleep(1500 * time.Millisecond)
	stopReplay()
	replayWG.Wait()
	time.Sleep(300 * time.Millisecond) // a backlog past the replay's position
	// the replay's last batch is applied, but 2.1 died before finishing it
	// on the provider: the subscriber's completed tick is past its
	// position there, and that batch must not be applied twice
	if n, err := replay21(ctx, s.root, s.leaf, "leaf21", false); err != nil || n == 0 {
		t.Fatalf("the unfinished 2.1 batch: %d events, %v", n, err)
	}
	time.Sleep(300 * time.Millisecond)
	stopOld()
	oldWG.Wait()
	if replayed == 0 {
		t.Fatal("the 2.1 replay applied nothing before it stopped")
	}
	completed := pgtest.Scalar[int64](t, s.leaf, "select last_tick_id from londiste.completed where consumer_id = 'leaf21'")
	if pos := pgtest.Scalar[int64](t, s.root, `select s.sub_last_tick from pgq.subscription s join pgq.consumer c on c.co_id = s.sub_consumer
	    where c.co_name = 'leaf21'`); pos >= completed {
		t.Fatalf("2.1's position on the provider is tick %d, its completed tick %d: want it behind", pos, completed)
	}
	if last := pgtest.Scalar[int64](t, s.root, "select max(tick_id) from pgq.tick"); last < completed+3 {
		t.Fatalf("no backlog: the 2.1 replay completed tick %d, the last tick is %d", completed, last)
	}
	bigInserts := func() int64 {
		return pgtest.Scalar[int64](t, s.leaf, "select n_tup_ins from pg_stat_user_tables where relid = 'public.big'::regclass")
	}
	bigBefore := bigInserts()

	// adopt-21 refuses while pgq is still 2.1's
	if out, err := runCLI(t, "londiste", s.rootINI, "adopt-21", "root", s.rootDSN); err == nil || !strings.Contains(out+err.Error(), "pgqgo upgrade") {
		t.Fatalf("adopt-21 on PgQ 2.1: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "upgrade", "--db", s.rootDSN); err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	s.dumpOnFailure(t)
	s.startTicker(t)
	rootStart := time.Now()
	out := s.cli(t, s.rootINI, "adopt-21", "root", s.rootDSN)
	rootTook := time.Since(rootStart)
	t.Logf("adopt-21 on the provider:\n%s", out)
	for _, want := range []string{"rename londiste 2.1's schema", "create the root node", "replicate public.acct: londiste3's trigger replaces 2.1's replika_logger", "replicate the sequences public.acct_seq"} {
		if !strings.Contains(out, want) {
			t.Errorf("adopt-21 on the provider does not say %q", want)
		}
	}
	if n := pgtest.Scalar[int64](t, s.root, "select count(*) from pg_trigger where tgname = 'replika_logger'"); n != 0 {
		t.Errorf("%d of 2.1's triggers left on the provider", n)
	}
	s.background(t, "londiste", s.rootINI, "worker", "-q")

	// the subscriber: a dry run first, which changes nothing
	dry := s.cli(t, s.leafINI, "adopt-21", "leaf", s.leafDSN, "--provider="+s.rootDSN, "--dry-run")
	t.Logf("adopt-21 --dry-run on the subscriber:\n%s", dry)
	for _, want := range []string{"would:", "as in sync (no copy): public.acct, public.big, public.Odd Name", "to be copied by the worker: public.late",
		fmt.Sprintf("continue from tick %d, where londiste 2.1's job leaf21 completed", completed)} {
		if !strings.Contains(dry, want) {
			t.Errorf("adopt-21 --dry-run does not say %q", want)
		}
	}
	if pgtest.Scalar[bool](t, s.leaf, "select to_regnamespace('pgq_node') is not null or to_regnamespace('londiste21') is not null") {
		t.Fatal("the dry run changed the subscriber")
	}
	if out, err := runCLI(t, "londiste", s.leafINI, "adopt-21", "leaf", s.leafDSN, "--provider="+s.rootDSN, "--old-job=nobody"); err == nil ||
		!strings.Contains(out+err.Error(), `no londiste 2.1 job "nobody" here (the completed table has leaf21)`) {
		t.Errorf("adopt-21 --old-job=nobody: %v\n%s", err, out)
	}
	if pgtest.Scalar[bool](t, s.leaf, "select to_regnamespace('pgq_node') is not null or to_regnamespace('londiste21') is not null") {
		t.Fatal("a refused adopt-21 changed the subscriber")
	}
	leafStart := time.Now()
	out = s.cli(t, s.leafINI, "adopt-21", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	leafTook := time.Since(leafStart)
	t.Logf("adopt-21 on the subscriber:\n%s", out)
	if !strings.Contains(out, "rename londiste 2.1's schema londiste to londiste21") {
		t.Error("adopt-21 on the subscriber did not rename 2.1's schema")
	}
	if got := pgtest.Column[string](t, s.root, "select consumer_name from pgq.get_consumer_info('replika') where consumer_name = 'leaf21'"); len(got) != 0 {
		t.Error("2.1's job leaf21 is still registered on the provider")
	}
	if got := pgtest.Scalar[int64](t, s.root, "select last_tick from pgq.get_consumer_info('replika', 'l_leaf')"); got != completed {
		t.Errorf("the leaf worker's position on the provider: tick %d, want 2.1's completed tick %d", got, completed)
	}
	backlogEnd := pgtest.Scalar[int64](t, s.root, "select last_tick_id from pgq.get_queue_info('replika')")
	workerStart := time.Now()
	s.background(t, "londiste", s.leafINI, "worker", "-q")
	pgtest.Eventually(t, 60*time.Second, "the leaf past the backlog", func() bool {
		return pgtest.Scalar[int64](t, s.leaf, "select coalesce(max(last_tick_id), 0) from pgq_node.get_consumer_info('replika')") >= backlogEnd
	})
	caughtUp := time.Since(workerStart)
	time.Sleep(1500 * time.Millisecond)
	stopWriter()
	writeWG.Wait()
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool {
		return s.same(t) && pgtest.Scalar[string](t, s.leaf, "select string_agg(merge_state, ',' order by table_name) from londiste.table_info") == "ok,ok,ok,ok"
	})
	if ours := s.cli(t, s.leafINI, "compare"); strings.Contains(ours, "do not match") {
		t.Fatalf("compare:\n%s", ours)
	}
	if after := bigInserts(); after != bigBefore {
		t.Errorf("public.big, in sync under 2.1, was copied again (%d rows inserted)", after-bigBefore)
	}
	pgtest.Eventually(t, 30*time.Second, "the sequence replicated", func() bool {
		return pgtest.Scalar[int64](t, s.leaf, "select last_value from acct_seq") >= pgtest.Scalar[int64](t, s.root, "select max(id) from acct")
	})
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from londiste21.completed"); n != 1 {
		t.Errorf("londiste 2.1's rows were not kept in londiste21 (%d completed rows)", n)
	}
	var longest, during time.Duration
	timingMu.Lock()
	for _, ts := range timings {
		longest = max(longest, ts.took)
		if ts.start.Before(rootStart.Add(rootTook)) && ts.start.Add(ts.took).After(rootStart) {
			during = max(during, ts.took)
		}
	}
	timingMu.Unlock()
	t.Logf("%d writer transactions, %d events applied by the 2.1 replay, 2.1 stopped at tick %d; acct %d rows",
		writes, replayed, completed, pgtest.Scalar[int64](t, s.leaf, "select count(*) from acct"))
	t.Logf("adopt-21: provider %v (the writer's longest transaction overlapping it %v, of the whole run %v), subscriber %v; "+
		"the leaf worker through the backlog (ticks %d..%d) %v after it started",
		rootTook.Round(time.Millisecond), during.Round(time.Millisecond), longest.Round(time.Millisecond),
		leafTook.Round(time.Millisecond), completed, backlogEnd, caughtUp.Round(time.Millisecond))
}

// replay21 applies one batch the way londiste 2.1's replay did: events of
// the tables in sync applied as their partial SQL, the batch's tick
// recorded in londiste.completed in the same subscriber transaction (a
// batch already recorded is skipped), then the batch finished on the
// provider (unless !finish: 2.1 killed before that). It returns the
// events applied.
func replay21(ctx context.Context, src, dst *pgx.Conn, job string, finish bool) (int, error) {
	var batch *int64
	if err := src.QueryRow(ctx, "select pgq.next_batch('replika', $1)", job).Scan(&batch); err != nil || batch == nil {
		return 0, err
	}
	var tick int64
	if err := src.QueryRow(ctx, `select s.sub_next_tick from pgq.subscription s join pgq.consumer c on c.co_id = s.sub_consumer
	    where c.co_name = $1`, job).Scan(&tick); err != nil {
		return 0, err
	}
	rows, err := src.Query(ctx, "select ev_type, ev_data, ev_extra1 from pgq.get_batch_events($1) order by ev_id", *batch)
	if err != nil {
		return 0, err
	}
	type ev struct{ typ, data, table string }
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ev, error) {
		var e ev
		return e, r.Scan(&e.typ, &e.data, &e.table)
	})
	if err != nil {
		return 0, err
	}
	tx, err := dst.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	var done int64
	if err := tx.QueryRow(ctx, "select coalesce(max(last_tick_id), 0) from londiste.completed where consumer_id = $1", job).Scan(&done); err != nil {
		return 0, err
	}
	applied := 0
	if done < tick {
		for _, e := range evs {
			var state string
			if err := tx.QueryRow(ctx, "select coalesce(merge_state, '') from londiste.subscriber_table where table_name = $1", e.table).Scan(&state); err != nil {
				return 0, fmt.Errorf("%s: %w", e.table, err)
			}
			if state != "ok" {
				continue
			}
			var sql string
			schema, name, _ := strings.Cut(e.table, ".")
			tbl := pgx.Identifier{schema, name}.Sanitize()
			switch e.typ {
			case "I":
				sql = "insert into " + tbl + " " + e.data
			case "U":
				sql = "update " + tbl + " set " + e.data
			case "D":
				sql = "delete from " + tbl + " where " + e.data
			default:
				return 0, errors.New("unknown event type " + e.typ)
			}
			if _, err := tx.Exec(ctx, sql); err != nil {
				return 0, fmt.Errorf("%s: %w", sql, err)
			}
			applied++
		}
		if _, err := tx.Exec(ctx, `insert into londiste.completed values ($1, $2)
		    on conflict (consumer_id) do update set last_tick_id = excluded.last_tick_id`, job, tick); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil || !finish {
		return applied, err
	}
	_, err = src.Exec(ctx, "select pgq.finish_batch($1)", *batch)
	return applied, err
}
