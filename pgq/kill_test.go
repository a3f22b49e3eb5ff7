package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
	"github.com/pgqgo/pgqgo/ticker"
)

// The processes of TestTwoProcessesPerConsumerUnderKills are this test
// binary run again with PGQGO_KILLTEST_ROLE set: TestKillTestWorker then
// becomes a consumer or the ticker daemon, until it is killed.
const killRoleEnv = "PGQGO_KILLTEST_ROLE"

func TestKillTestWorker(t *testing.T) {
	role := os.Getenv(killRoleEnv)
	if role == "" {
		t.Skip("a worker process of TestTwoProcessesPerConsumerUnderKills, run by it")
	}
	ctx := context.Background()
	dsn, target := os.Getenv("PGQGO_KILLTEST_DSN"), os.Getenv("PGQGO_KILLTEST_TARGET")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := pgq.ConsumerConfig{Queue: "q", PollInterval: 50 * time.Millisecond, ErrorBackoff: 20 * time.Millisecond,
		MaxBackoff: 300 * time.Millisecond, Logger: log}
	slow := func() { time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) } // a window for kills mid-batch
	var err error
	switch role {
	case "ticker":
		tc := ticker.Defaults()
		tc.BaseConnStr, tc.DatabaseList = os.Getenv("PGQGO_KILLTEST_SERVER"), []string{os.Getenv("PGQGO_KILLTEST_DB")}
		tc.InitialDatabase, tc.Syslog = "postgres", false
		tc.TickerPeriod, tc.RetryPeriod, tc.MaintPeriod, tc.CheckPeriod = 100*time.Millisecond, 200*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
		err = ticker.New(tc, log).Run(ctx)
	case "plain":
		// every 13th event fails once (retried), every 101st always
		// (dead-lettered after 2 retries); what failed is recorded in the
		// batch's transaction, so it commits or rolls back with the batch
		cfg.Name, cfg.MaxRetries, cfg.RetryDelay = "plain", 2, time.Second
		c, _ := pgq.NewConsumer(dsn, cfg)
		err = c.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
			id := eventID(ev)
			if id%101 == 0 {
				return pgq.RetryAfter(0, errors.New("always fails"))
			}
			if id%13 == 0 {
				var first bool
				if err := tx.QueryRow(ctx, "insert into failed_once values ($1) on conflict do nothing returning true", id).Scan(&first); err == nil && first {
					return pgq.RetryAfter(0, errors.New("fails once"))
				} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
			}
			if _, err := tx.Exec(ctx, "insert into seen_plain values ($1)", id); err != nil {
				return err
			}
			if id%50 == 0 {
				slow()
			}
			return nil
		}))
	case "coop1", "coop2":
		cfg.Name, cfg.Subconsumer, cfg.DeadInterval = "group", role, 3*time.Second
		c, _ := pgq.NewConsumer(dsn, cfg)
		err = c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
			for ev, err := range b.Events(ctx) {
				if err != nil {
					return err
				}
				if _, err := b.Tx().Exec(ctx, "insert into seen_coop values ($1)", eventID(ev)); err != nil {
					return err
				}
			}
			slow()
			return nil
		}))
	case "eo":
		cfg.Name = "eo"
		c, _ := pgq.NewConsumer(dsn, cfg)
		pool, perr := pgxpool.New(ctx, target)
		if perr != nil {
			t.Fatal(perr)
		}
		err = c.Run(ctx, pgq.ExactlyOnce(pool, func(ctx context.Context, tx pgx.Tx, b *pgq.Batch) error {
			for ev, err := range b.Events(ctx) {
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "insert into applied values ($1)", eventID(ev)); err != nil {
					return err
				}
			}
			slow()
			return nil
		}))
	}
	t.Fatalf("worker %s ended: %v", role, err)
}

// eventID is the producer's number of an event: its data, or for a row
// captured by logutriga ("id=N") the row's id.
func eventID(ev *pgq.Event) int {
	id, _ := strconv.Atoi(strings.TrimPrefix(ev.Data, "id="))
	return id
}

// TestTwoProcessesPerConsumerUnderKills runs two processes for each of two
// consumers (one writing into the queue's database in the batch's
// transaction, with per-event retries and dead letters, one applying exactly
// once into another database with pgq_ext), the two members of a
// cooperative group, and a ticker daemon process, while a producer writes
// (half its events through insert_event, half as rows captured by
// logutriga); processes
// are killed with SIGKILL and restarted at random, and PostgreSQL is crashed
// (immediate shutdown) and restarted twice. Every committed event must reach
// each sink exactly once.
func TestTwoProcessesPerConsumerUnderKills(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	targetDSN := pgtest.NewDB(t, pgtest.Empty)
	conn := pgtest.Conn(t, dsn)
	target := pgtest.Conn(t, targetDSN)
	if err := schema.InstallComponent(ctx, target, schema.Ext); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, target, "create table applied (id int not null)")
	if err := schema.InstallComponent(ctx, conn, schema.Coop); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"select pgq.create_queue('q')", "select pgq.register_consumer('q', 'plain')",
		"select pgq.register_consumer('q', 'eo')", "select pgq_coop.register_subconsumer('q', 'group', 'coop1')",
		"select pgq_coop.register_subconsumer('q', 'group', 'coop2')", "create table seen_plain (id int not null)",
		"create table seen_coop (id int not null)", "create table failed_once (id int primary key)",
		"create table produced (id int not null)", "create table orders (id int primary key)",
		"create trigger capture after insert on orders for each row execute procedure pgq.logutriga('q')"} {
		pgtest.Exec(t, conn, sql)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PGQGO_KILLTEST_DSN="+dsn, "PGQGO_KILLTEST_TARGET="+targetDSN,
		"PGQGO_KILLTEST_SERVER="+pgtest.ServerDSN(t), "PGQGO_KILLTEST_DB="+cfg.Database)

	// the processes, by name; restart replaces a killed one
	var pmu sync.Mutex
	procs := map[string]*exec.Cmd{}
	startProc := func(name, role string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillTestWorker$", "-test.count=1")
		cmd.Env = append(env, killRoleEnv+"="+role)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait() //nolint:errcheck // killed on purpose
		pmu.Lock()
		procs[name] = cmd
		pmu.Unlock()
	}
	kill := func(name string) {
		pmu.Lock()
		defer pmu.Unlock()
		if p := procs[name]; p != nil {
			_ = p.Process.Signal(syscall.SIGKILL)
		}
	}
	roles := map[string]string{"plain1": "plain", "plain2": "plain", "eo1": "eo", "eo2": "eo", "ticker": "ticker",
		"coop1": "coop1", "coop2": "coop2"}
	for name, role := range roles {
		startProc(name, role)
	}
	t.Cleanup(func() {
		for name := range roles {
			kill(name)
		}
	})

	// the producer: each event's id is recorded in the same transaction
	var produced atomic.Int64
	stopProducing := make(chan struct{})
	var prodWG sync.WaitGroup
	prodWG.Add(1)
	go func() {
		defer prodWG.Done()
		next := 0
		for {
			select {
			case <-stopProducing:
				return
			case <-time.After(5 * time.Millisecond):
			}
			// acknowledged commits must survive the crashes: the test
			// cluster's synchronous_commit=off would lose the last ones
			c, err := pgx.Connect(ctx, dsn+" options='-c synchronous_commit=on'")
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			for err == nil {
				select {
				case <-stopProducing:
					c.Close(ctx)
					return
				default:
				}
				b := &pgx.Batch{}
				b.Queue("begin")
				for i := 0; i < 10; i++ {
					next++
					b.Queue("insert into produced values ($1)", next)
					if next%2 == 0 {
						b.Queue("select pgq.insert_event('q', 'n', $1)", fmt.Sprint(next))
					} else { // captured by pgq.logutriga
						b.Queue("insert into orders values ($1)", next)
					}
				}
				b.Queue("commit")
				if err = c.SendBatch(ctx, b).Close(); err == nil {
					produced.Add(10)
				} else if produced.Load() == 0 {
					t.Logf("producer: %v", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			c.Close(ctx)
		}
	}()

	// chaos: kill -9 a process now and then, crash PostgreSQL twice
	rng := rand.New(rand.NewPCG(7, 8))
	names := []string{"plain1", "plain2", "eo1", "eo2", "ticker", "coop1", "coop2"}
	// counted, not timed: a slow machine (CI's restarts take seconds) gets
	// the same amount of chaos, only later
	const wantKills = 36
	kills := 0
	crashes := []int{wantKills / 3, 2 * wantKills / 3} // after this many kills
	for kills < wantKills || len(crashes) > 0 {
		time.Sleep(time.Duration(150+rng.IntN(350)) * time.Millisecond)
		if len(crashes) > 0 && kills >= crashes[0] {
			crashes = crashes[1:]
			if err := pgtest.Cluster(t).Crash(ctx); err != nil {
				t.Fatalf("crash and restart PostgreSQL: %v", err)
			}
			conn = pgtest.Conn(t, dsn)
			target = pgtest.Conn(t, targetDSN)
			continue
		}
		name := names[rng.IntN(len(names))]
		kill(name)
		kills++
		startProc(name, roles[name])
	}
	close(stopProducing)
	prodWG.Wait()
	want := pgtest.Scalar[int64](t, conn, "select count(*) from produced")
	// the plain consumer's sink is seen_plain plus its dead letters
	const plainSink = "(select id from seen_plain union all select ltrim(ev_data, 'id=')::int from pgq.dead_letter where dl_consumer = 'plain') s"
	pgtest.Eventually(t, 90*time.Second, "every committed event in every sink", func() bool {
		var plain, coop, eo int64
		_ = conn.QueryRow(ctx, "select count(distinct id) from "+plainSink).Scan(&plain)
		_ = conn.QueryRow(ctx, "select count(distinct id) from seen_coop").Scan(&coop)
		_ = target.QueryRow(ctx, "select count(distinct id) from applied").Scan(&eo)
		return plain >= want && coop >= want && eo >= want
	})
	time.Sleep(500 * time.Millisecond) // a late duplicate would show now
	for name := range roles {
		kill(name)
	}
	check := func(c *pgx.Conn, label, table string) {
		var total, distinct, missing int64
		if err := c.QueryRow(ctx, fmt.Sprintf("select count(*), count(distinct id) from %s", table)).Scan(&total, &distinct); err != nil {
			t.Fatal(err)
		}
		if c == conn {
			missing = pgtest.Scalar[int64](t, c, "select count(*) from produced p where not exists (select 1 from "+table+" where s.id = p.id)")
		}
		t.Logf("%s: %d rows, %d distinct, %d produced, %d missing", label, total, distinct, want, missing)
		if total != want || distinct != want || missing != 0 {
			t.Errorf("%s: %d rows, %d distinct ids, %d missing; want %d each, none missing", label, total, distinct, missing, want)
		}
	}
	check(conn, "plain (applied or dead-lettered)", plainSink)
	check(conn, "cooperative group", "seen_coop s")
	check(target, "exactly once", "applied")
	dead := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.dead_letter")
	wantDead := pgtest.Scalar[int64](t, conn, "select count(*) from produced where id % 101 = 0")
	retried := pgtest.Scalar[int64](t, conn, "select count(*) from failed_once")
	t.Logf("dead letters %d (want %d), events failed once and retried %d", dead, wantDead, retried)
	if dead != wantDead || retried == 0 {
		t.Errorf("dead letters %d, want %d; retried once %d", dead, wantDead, retried)
	}
	t.Logf("produced %d (%d acknowledged), %d processes killed with SIGKILL, PostgreSQL crashed twice", want, produced.Load(), kills)
	if produced.Load() > want {
		t.Errorf("%d commits acknowledged to the producer, only %d in the database", produced.Load(), want)
	}
	if kills < wantKills || want < 1000 {
		t.Fatalf("too little chaos to mean anything: %d kills, %d events", kills, want)
	}
}
