package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
)

// TestLiveUpgradeUnderLoad is the classic PgQ upgrade, done while producers
// keep writing: stop the ticker, run `pgqgo upgrade`, start `pgqgo ticker`.
// Once from Skytools' PgQ 3.5 (C extension with pgq_node and londiste, ticked
// by Debian's pgqd, changes captured by the C logutriga), once from the
// previous pgqgo release (ticked by pgqgo ticker). Two producers run
// throughout (insert_event calls, and table changes captured by logutriga);
// a Go consumer and Skytools' Python consumer (one process, never restarted)
// record what they get in the batch's transaction. Every consumer must get
// every event exactly once, and the trigger events must be byte for byte
// what they were before the switch. Reported: the longest time a producer's
// statement took during the upgrade.
func TestLiveUpgradeUnderLoad(t *testing.T) {
	if _, err := exec.LookPath("pgqd"); err != nil {
		t.Fatalf("pgqd not installed (scripts/install-deps.sh installs it): %v", err)
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import pgq").Run(); err != nil {
		t.Fatalf("python3-pgq not installed (scripts/install-deps.sh installs it): %v", err)
	}
	old := schema.OldReleases()
	for _, from := range []string{"skytools", old[len(old)-1]} {
		t.Run(from, func(t *testing.T) { liveUpgrade(t, from) })
	}
}

// timedStmt is one producer statement: when it started and how long it took.
type timedStmt struct {
	start time.Time
	took  time.Duration
}

func liveUpgrade(t *testing.T, from string) {
	ctx := context.Background()
	var dsn string
	if from == "skytools" {
		dsn = pgtest.NewDB(t, pgtest.Skytools)
		pgtest.Exec(t, pgtest.Conn(t, dsn), "create extension pgq_node; create extension londiste")
	} else {
		dsn = pgtest.NewDB(t, pgtest.Empty)
		if err := schema.InstallRelease(ctx, pgtest.Conn(t, dsn), from); err != nil {
			t.Fatal(err)
		}
	}
	setup := pgtest.Conn(t, dsn)
	pgtest.Exec(t, setup, `select pgq.create_queue('live');
		select pgq.set_queue_config('live', 'ticker_max_lag', '100 milliseconds');
		select pgq.set_queue_config('live', 'ticker_idle_period', '1 second');
		select pgq.register_consumer('live', 'go'); select pgq.register_consumer('live', 'py');
		create table captured (id int primary key, v text);
		create trigger cap after insert or update or delete on captured for each row execute procedure pgq.logutriga('live');
		create table seen_go (ev_id bigint, ev_type text, ev_data text);
		create table seen_py (ev_id bigint, ev_type text, ev_data text)`)
	cfg, _ := pgx.ParseConfig(dsn)
	dir := t.TempDir()
	ini, pidfile, logfile := filepath.Join(dir, "ticker.ini"), filepath.Join(dir, "ticker.pid"), filepath.Join(dir, "ticker.log")
	writeINI(t, ini, pidfile, logfile, cfg.Database)

	// the old ticker
	var oldTicker *exec.Cmd
	if from == "skytools" {
		oldTicker = exec.Command("pgqd", "-q", ini)
	} else {
		oldTicker = pgqgo("ticker", "-q", ini)
	}
	if err := oldTicker.Start(); err != nil {
		t.Fatal(err)
	}

	// consumers: Go (library) and Python (python3-pgq), both running throughout
	cctx, stopGo := context.WithCancel(ctx)
	goDone := make(chan error, 1)
	c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "live", Name: "go", PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		goDone <- c.Run(cctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
			_, err := tx.Exec(ctx, "insert into seen_go values ($1, $2, $3)", ev.ID, ev.Type, ev.Data)
			return err
		}))
	}()
	stopFile := filepath.Join(dir, "stop")
	pyINI := filepath.Join(dir, "py.ini")
	if err := os.WriteFile(pyINI, []byte(fmt.Sprintf("[live_consumer]\njob_name = live_py\ndb = %s\nqueue_name = live\nconsumer_name = py\n"+
		"loop_delay = 0.05\nlogfile = %s\npidfile = %s\nstop_file = %s\n",
		dsn, filepath.Join(dir, "py.log"), filepath.Join(dir, "py.pid"), stopFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	py := exec.Command("/usr/bin/python3", "testdata/live_consumer.py", pyINI)
	var pyOut strings.Builder
	py.Stdout, py.Stderr = &pyOut, &pyOut
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	pyDone := make(chan error, 1)
	go func() { pyDone <- py.Wait() }()

	// producers, each statement in its own transaction, timed
	pctx, stopProducers := context.WithCancel(ctx)
	var mu sync.Mutex
	var want []string // "type|data" of every event produced
	var timings []timedStmt
	var wg sync.WaitGroup
	producer := func(step func(conn *pgx.Conn, i int) ([]string, error)) {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for i := 1; pctx.Err() == nil; i++ {
			start := time.Now()
			evs, err := step(conn, i)
			took := time.Since(start)
			if err != nil {
				t.Errorf("producer: %v", err)
				return
			}
			mu.Lock()
			want = append(want, evs...)
			timings = append(timings, timedStmt{start, took})
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Add(2)
	go producer(func(conn *pgx.Conn, i int) ([]string, error) {
		data := fmt.Sprintf("payload %d, ünï & %%", i)
		_, err := conn.Exec(ctx, "select pgq.insert_event('live', 'p', $1)", data)
		return []string{"p|" + data}, err
	})
	go producer(func(conn *pgx.Conn, i int) ([]string, error) {
		// insert row i; every third step update, every fifth delete an earlier row
		sql, id := "insert into captured values ($1::int, 'row ' || $1::int) returning 'I', v", i
		switch {
		case i%5 == 0:
			sql, id = "delete from captured where id = $1 returning 'D', v", i-3
		case i%3 == 0:
			sql, id = "update captured set v = 'upd ' || id where id = $1 returning 'U', v", i-2
		}
		rows, err := conn.Query(ctx, sql, id)
		if err != nil {
			return nil, err
		}
		var evs []string
		for rows.Next() {
			var op, v string
			if err := rows.Scan(&op, &v); err != nil {
				return nil, err
			}
			evs = append(evs, fmt.Sprintf("%s:id|id=%d&v=%s", op, id, strings.ReplaceAll(v, " ", "+")))
		}
		return evs, rows.Err()
	})

	time.Sleep(2 * time.Second)
	// the procedure: stop the ticker, upgrade, start pgqgo ticker
	if err := oldTicker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := oldTicker.Wait(); err != nil && !strings.Contains(err.Error(), "signal") {
		t.Logf("old ticker exited: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	producedBefore := len(want)
	mu.Unlock()
	pyBefore := pgtest.Scalar[int64](t, setup, "select count(*) from seen_py")
	// an upgrade killed half way leaves the database as it was (one
	// transaction): killed while it waits for a lock on pgq.queue (migration
	// 0003 adds a trigger there) that another session holds, after it has
	// done its first steps (a kill at a fixed delay raced the upgrade, which
	// can finish in 20 ms)
	blocker, err := setup.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, blocker.Conn(), "lock table pgq.queue in share mode")
	up := pgqgo("upgrade", "--db", dsn)
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	var waiter int32
	watch := pgtest.Conn(t, dsn)
	pgtest.Eventually(t, 10*time.Second, "the upgrade waits for pgq.queue", func() bool {
		return watch.QueryRow(ctx, `select pid from pg_locks
			where relation = 'pgq.queue'::regclass and not granted`).Scan(&waiter) == nil
	})
	_ = up.Process.Kill()
	_ = up.Wait()
	if ws, ok := up.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the upgrade blocked on pgq.queue finished before the kill")
	}
	// the backend notices its client is gone once it has the lock and
	// reads the next command: let it, then wait for it to end
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	pgtest.Eventually(t, 10*time.Second, "the killed upgrade's backend ended", func() bool {
		return pgtest.Scalar[int64](t, watch, "select count(*) from pg_stat_activity where pid = $1", waiter) == 0
	})
	in, err := schema.Inspect(ctx, pgtest.Conn(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	if in.Managed && (from == "skytools" || in.Release == schema.Release) {
		t.Fatalf("a killed upgrade left the database upgraded: %+v", in)
	}
	t.Logf("an upgrade killed with SIGKILL mid-way left the database as it was (%+v)", in)
	upStart := time.Now()
	out, err := pgqgo("upgrade", "--db", dsn).CombinedOutput()
	upEnd := time.Now()
	if err != nil {
		t.Fatalf("pgqgo upgrade: %v\n%s", err, out)
	}
	t.Logf("pgqgo upgrade (%v):\n%s", upEnd.Sub(upStart).Round(time.Millisecond), out)
	newTicker := pgqgo("ticker", "-q", ini)
	if err := newTicker.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	stopProducers()
	wg.Wait()

	// every consumer catches up
	total := len(want)
	for _, table := range []string{"seen_go", "seen_py"} {
		pgtest.Eventually(t, 60*time.Second, table+" caught up", func() bool {
			return pgtest.Scalar[int64](t, setup, "select count(*) from "+table) >= int64(total)
		})
	}
	if err := os.WriteFile(stopFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-pyDone:
		if err != nil {
			t.Fatalf("python consumer: %v\n%s", err, pyOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("python consumer did not stop\n%s", pyOut.String())
	}
	stopGo()
	if err := <-goDone; err != nil && cctx.Err() == nil {
		t.Fatalf("go consumer: %v", err)
	}

	if producedBefore < 100 || total-producedBefore < 100 || pyBefore == 0 {
		t.Fatalf("not a live upgrade: %d events before the switch, %d after, python consumer had %d before",
			producedBefore, total-producedBefore, pyBefore)
	}
	sort.Strings(want)
	for _, table := range []string{"seen_go", "seen_py"} {
		rows, err := setup.Query(ctx, "select ev_type || '|' || ev_data from "+table+" order by 1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: %d events, want %d; first differences:\n%s", table, len(got), len(want), firstDiffs(want, got, 10))
		}
		if dup := pgtest.Scalar[int64](t, setup, "select count(*) - count(distinct ev_id) from "+table); dup != 0 {
			t.Errorf("%s: %d events delivered twice", table, dup)
		}
	}

	// Debian's pgqd works on the upgraded database too
	newTicker.Process.Signal(syscall.SIGTERM)
	newTicker.Wait()
	pgqd := exec.Command("pgqd", "-q", ini)
	if err := pgqd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		pgqd.Process.Signal(syscall.SIGTERM)
		pgqd.Wait()
	}()
	lastTick := pgtest.Scalar[int64](t, setup, "select max(tick_id) from pgq.tick")
	pgtest.Exec(t, setup, "select pgq.insert_event('live', 'p', 'for pgqd')")
	pgtest.Eventually(t, 10*time.Second, "pgqd ticks the upgraded database", func() bool {
		return pgtest.Scalar[int64](t, setup, "select max(tick_id) from pgq.tick") > lastTick
	})

	// the longest producer statement around the upgrade
	var worst, worstAll time.Duration
	for _, s := range timings {
		worstAll = max(worstAll, s.took)
		if s.start.Before(upEnd) && s.start.Add(s.took).After(upStart) {
			worst = max(worst, s.took)
		}
	}
	t.Logf("from %s: %d events (%d before the switch), each consumer got all once; longest producer statement during the upgrade %v (whole run %v)",
		from, total, producedBefore, worst.Round(10*time.Microsecond), worstAll.Round(10*time.Microsecond))
	if worst > 5*time.Second {
		t.Errorf("a producer waited %v during the upgrade", worst)
	}
}

// firstDiffs lists up to n lines that are only in want (-) or only in got (+).
func firstDiffs(want, got []string, n int) string {
	count := func(xs []string) map[string]int {
		m := map[string]int{}
		for _, x := range xs {
			m[x]++
		}
		return m
	}
	w, g := count(want), count(got)
	var out []string
	for k, v := range w {
		if g[k] != v {
			out = append(out, fmt.Sprintf("  %q: produced %d, consumed %d", k, v, g[k]))
		}
	}
	for k, v := range g {
		if _, ok := w[k]; !ok {
			out = append(out, fmt.Sprintf("  %q: produced 0, consumed %d", k, v))
		}
	}
	sort.Strings(out)
	if len(out) > n {
		out = out[:n]
	}
	return strings.Join(out, "\n")
}
