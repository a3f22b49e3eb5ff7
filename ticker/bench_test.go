package ticker

// Benchmarks of `pgqgo ticker` against Debian's pgqd (Skytools' C daemon) on
// the same throwaway cluster, one after the other in one run:
//
//	go test ./ticker -run '^$' -bench . -benchtime 1x -timeout 30m
//
// BenchmarkTickerLatency: end-to-end delivery latency at 100 events/s, a
// producer committing one event per transaction and a consumer that waits for
// ticks (LISTEN pgq_tick, else polling every 5 ms).
// BenchmarkTickerManyDatabases: 200 databases x 3 queues: time of the first
// full tick round, and CPU seconds per minute of steady state of the daemon
// and of the server backends serving it.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// engines are the two sides every comparison runs, each with its own daemon:
// Skytools' PgQ ticked by Debian's pgqd, and pgqgo ticked by `pgqgo ticker`.
var engines = []struct {
	name, daemon string
	tpl          pgtest.Template
}{{"skytools", "pgqd", pgtest.Skytools}, {"pgqgo", "pgqgo", pgtest.PgqGo}}

var (
	buildOnce sync.Once
	pgqgoBin  string
	buildErr  error
)

// binaries returns the commands to run for each daemon.
func daemonCommand(b *testing.B, which, ini string) *exec.Cmd {
	switch which {
	case "pgqd":
		path, err := exec.LookPath("pgqd")
		if err != nil {
			b.Fatalf("pgqd not installed (scripts/install-deps.sh installs it): %v", err)
		}
		return exec.Command(path, "-q", ini)
	default:
		buildOnce.Do(func() {
			pgqgoBin = filepath.Join(os.TempDir(), fmt.Sprintf("pgqgo-bench-%d", os.Getpid()))
			out, err := exec.Command("go", "build", "-o", pgqgoBin, "../cmd/pgqgo").CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			}
		})
		if buildErr != nil {
			b.Fatal(buildErr)
		}
		return exec.Command(pgqgoBin, "ticker", "-q", ini)
	}
}

func benchINI(b *testing.B, dbs []string, extra string) string {
	cfg, err := pgx.ParseConfig(pgtest.ServerDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "ticker.ini")
	body := fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\n"+
		"database_list = %s\nlogfile = %s\nsyslog = 0\n%s", cfg.Host, cfg.Port, cfg.User,
		strings.Join(dbs, ","), filepath.Join(filepath.Dir(path), "ticker.log"), extra)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func startDaemonProc(b *testing.B, which, ini string) *exec.Cmd {
	cmd := daemonCommand(b, which, ini)
	cmd.Dir = filepath.Dir(ini)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stopProc(cmd) })
	return cmd
}

func stopProc(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// procTicks is a process's CPU, in clock ticks.
func procTicks(pid int) int64 {
	_, t := pgtest.ProcCPU(pid)
	return t
}

// serverTicks sums the CPU of the server backends connected to dbs: the
// server work the daemon causes, without autovacuum and other background
// activity of a cluster with hundreds of databases.
func serverTicks(b *testing.B, dbs []string) int64 {
	admin := pgtest.Conn(b, pgtest.ServerDSN(b))
	rows, err := admin.Query(context.Background(), `select pid from pg_stat_activity
		where datname = any($1) and backend_type = 'client backend' and pid <> pg_backend_pid()`, dbs)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, pid := range pids {
		total += procTicks(int(pid))
	}
	return total
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func benchSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("PGQGO_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 15 * time.Second
}

func BenchmarkTickerLatency(b *testing.B) {
	for _, which := range []string{"pgqd", "pgqgo"} {
		b.Run(which, func(b *testing.B) {
			tpl := pgtest.PgqGo
			if which == "pgqd" {
				tpl = pgtest.Skytools
			}
			dsn := pgtest.NewDB(b, tpl)
			cfg, _ := pgx.ParseConfig(dsn)
			setup := pgtest.Conn(b, dsn)
			for _, sql := range []string{"select pgq.create_queue('q')", "select pgq.register_consumer('q', 'c')"} {
				if _, err := setup.Exec(context.Background(), sql); err != nil {
					b.Fatal(err)
				}
			}
			startDaemonProc(b, which, benchINI(b, []string{cfg.Database}, ""))
			time.Sleep(1500 * time.Millisecond) // connected, creation ticks done
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				lat = append(lat, measureLatency(b, dsn, benchSeconds())...)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(len(lat)), "events")
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99_ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
		})
	}
}

// measureLatency produces 100 events/s for d and returns each event's delay
// from just before its insert to its delivery in a batch.
func measureLatency(b *testing.B, dsn string, d time.Duration) []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	producer := pgtest.Conn(b, dsn)
	consumer := pgtest.Conn(b, dsn)
	listener := pgtest.Conn(b, dsn)
	if _, err := listener.Exec(ctx, "listen pgq_tick"); err != nil {
		b.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := listener.WaitForNotification(ctx); err != nil {
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	var sent atomic.Int64
	var finished atomic.Bool
	go func() {
		defer finished.Store(true)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(d)
		for now := range tick.C {
			if now.After(end) {
				return
			}
			stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
			if _, err := producer.Exec(ctx, "select pgq.insert_event('q', 'lat', $1)", stamp); err != nil {
				b.Error(err)
				return
			}
			sent.Add(1)
		}
	}()
	var lat []time.Duration
	var delivered int64
	var firstWait time.Duration
	warm := time.Now().Add(time.Second)
	deadline := time.Now().Add(d + 15*time.Second)
	for time.Now().Before(deadline) {
		if finished.Load() && delivered >= sent.Load() {
			break
		}
		var batch *int64
		if err := consumer.QueryRow(ctx, "select pgq.next_batch('q', 'c')").Scan(&batch); err != nil {
			b.Fatal(err)
		}
		if batch == nil {
			select {
			case <-wake:
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		rows, _ := consumer.Query(ctx, "select ev_data from pgq.get_batch_events($1)", *batch)
		stamps, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for _, s := range stamps {
			ns, _ := strconv.ParseInt(s, 10, 64)
			delivered++
			// the first second is warm-up: an idle database is polled every
			// tick_idle_poll_period until its first events (reported apart)
			if sentAt := time.Unix(0, ns); sentAt.After(warm) {
				lat = append(lat, now.Sub(sentAt))
			} else if now.Sub(sentAt) > firstWait {
				firstWait = now.Sub(sentAt)
			}
		}
		if _, err := consumer.Exec(ctx, "select pgq.finish_batch($1)", *batch); err != nil {
			b.Fatal(err)
		}
	}
	if delivered != sent.Load() {
		b.Fatalf("%d events sent, %d delivered", sent.Load(), delivered)
	}
	b.ReportMetric(float64(firstWait.Microseconds())/1000, "warmup_max_ms")
	return lat
}

// manyDatabases makes n databases with three queues each (q1..q3) from a
// template of the given engine and returns their names.
func manyDatabases(b *testing.B, tpl pgtest.Template, prefix string, n int) []string {
	ctx := context.Background()
	admin := pgtest.Conn(b, pgtest.ServerDSN(b))
	src := prefix + "_src"
	srcDSN := pgtest.NewDB(b, tpl)
	srcCfg, _ := pgx.ParseConfig(srcDSN)
	conn, err := pgx.Connect(ctx, srcDSN)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"q1", "q2", "q3"} {
		if _, err := conn.Exec(ctx, "select pgq.create_queue($1)", q); err != nil {
			b.Fatal(err)
		}
	}
	conn.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s",
		pgx.Identifier{srcCfg.Database}.Sanitize(), pgx.Identifier{src}.Sanitize())); err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	b.Cleanup(func() {
		for _, name := range append(names, src) {
			_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
	})
	for i := range names {
		names[i] = fmt.Sprintf("%s_%03d", prefix, i)
		_, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY",
			pgx.Identifier{names[i]}.Sanitize(), pgx.Identifier{src}.Sanitize()))
		if err != nil {
			b.Fatal(err)
		}
	}
	return names
}

// secondTickTimes returns, per database, when its last queue got its second
// tick (zero when some queue has none yet).
func roundDone(b *testing.B, dbs []string) (time.Time, bool) {
	ctx := context.Background()
	var last time.Time
	for _, name := range dbs {
		conn, err := pgx.Connect(ctx, pgtest.DSNFor(b, name))
		if err != nil {
			b.Fatal(err)
		}
		var n int
		var t *time.Time
		err = conn.QueryRow(ctx, "select count(*), max(tick_time) from pgq.tick where tick_id = 2").Scan(&n, &t)
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n < 3 {
			return time.Time{}, false
		}
		if t.After(last) {
			last = *t
		}
	}
	return last, true
}

func BenchmarkTickerManyDatabases(b *testing.B) {
	const n = 200
	// Autovacuum's rounds over hundreds of databases would load the machine
	// more for whichever daemon runs later; each variant also drops its
	// databases when done, so all run on equal terms.
	admin := pgtest.Conn(b, pgtest.ServerDSN(b))
	for _, sql := range []string{"ALTER SYSTEM SET autovacuum = off", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(context.Background(), sql); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		admin.Exec(context.Background(), "ALTER SYSTEM RESET autovacuum")
		admin.Exec(context.Background(), "SELECT pg_reload_conf()")
	})
	window := benchSeconds()
	for _, v := range []struct{ name, daemon, prefix, extra string }{
		{"pgqd", "pgqd", "bsky", ""},
		{"pgqgo_on_pgq", "pgqgo", "bsky", ""},
		{"pgqgo", "pgqgo", "bgo", ""},
		{"pgqgo_idle_poll_1s", "pgqgo", "bgo", "tick_idle_poll_period = 1\n"},
	} {
		b.Run(v.name, func(b *testing.B) {
			tpl := pgtest.PgqGo
			if v.prefix == "bsky" {
				tpl = pgtest.Skytools
			}
			dbs := manyDatabases(b, tpl, fmt.Sprintf("%s_%d", v.prefix, time.Now().UnixNano()%1e6), n)
			for i := 0; i < b.N; i++ {
				started := time.Now()
				cmd := startDaemonProc(b, v.daemon, benchINI(b, dbs, v.extra))
				var last time.Time
				deadline := time.Now().Add(2 * time.Minute)
				for {
					time.Sleep(time.Second)
					if t, ok := roundDone(b, dbs); ok {
						last = t
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("first tick round not complete within 2 minutes")
					}
				}
				time.Sleep(5 * time.Second) // past the start-up duties
				_, d0 := pgtest.ProcCPU(cmd.Process.Pid)
				s0 := serverTicks(b, dbs)
				time.Sleep(window)
				_, d1 := pgtest.ProcCPU(cmd.Process.Pid)
				s1 := serverTicks(b, dbs)
				stopProc(cmd)
				perMin := 60 / window.Seconds() / 100 // clock ticks -> CPU seconds per minute
				b.ReportMetric(float64(last.Sub(started).Milliseconds()), "first_round_ms")
				b.ReportMetric(float64(d1-d0)*perMin, "daemon_cpu_s/min")
				b.ReportMetric(float64(s1-s0)*perMin, "backends_cpu_s/min")
			}
		})
	}
}

// BenchmarkHeldSnapshot: a producer writes 2,000 events/s (100 transactions of
// 20 ~200-byte events), a consumer reads every batch, each engine with its
// own daemon (pgqd for Skytools' PgQ, `pgqgo ticker` for pgqgo), on a durable
// cluster (fsync, synchronous_commit, full_page_writes on). One phase runs
// as is, the next with a transaction left open by another session (as a
// long report, pg_dump or a forgotten psql does); each phase starts with a
// burst of 20,000 events into a second queue that then stays idle. Reported per engine: the
// median and 95th-percentile time to read and finish a batch in each phase
// and their ratio (held/free), and the CPU the daemon costs (its process
// plus its server backend) per second of each phase.
//
//	go test ./ticker -run '^$' -bench HeldSnapshot -benchtime 1x -timeout 30m
func BenchmarkHeldSnapshot(b *testing.B) {
	durable(b)
	phase := benchSeconds()
	for range b.N {
		for _, side := range engines {
			dsn := pgtest.NewDB(b, side.tpl)
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				b.Fatal(err)
			}
			conn := pgtest.Conn(b, dsn+" application_name=bench")
			pgtest.Exec(b, conn, "select pgq.create_queue('q')")
			pgtest.Exec(b, conn, "select pgq.register_consumer('q', 'c')")
			pgtest.Exec(b, conn, "select pgq.create_queue('idle')")
			daemon := startDaemonProc(b, side.daemon, benchINI(b, []string{cfg.Database}, ""))
			time.Sleep(2 * time.Second) // the daemon connects and ticks

			free := heldPhase(b, dsn, cfg.Database, daemon.Process.Pid, phase, false)
			held := heldPhase(b, dsn, cfg.Database, daemon.Process.Pid, phase, true)
			stopProc(daemon)
			for _, p := range []struct {
				name string
				r    phaseResult
			}{{"free", free}, {"held", held}} {
				b.ReportMetric(float64(p.r.p50.Microseconds())/1000, side.name+"_"+p.name+"_batch_p50_ms")
				b.ReportMetric(float64(p.r.p95.Microseconds())/1000, side.name+"_"+p.name+"_batch_p95_ms")
				b.ReportMetric(p.r.daemonCPU, side.name+"_"+p.name+"_daemon_cpu_s/s")
				b.ReportMetric(p.r.rate, side.name+"_"+p.name+"_consumed_ev/s")
			}
			b.ReportMetric(float64(held.p50)/float64(max(free.p50, time.Microsecond)), side.name+"_batch_p50_held/free")
			b.ReportMetric(float64(held.p95)/float64(max(free.p95, time.Microsecond)), side.name+"_batch_p95_held/free")
			b.Logf("%s: batch p50 %v -> %v, p95 %v -> %v; daemon CPU %.3f -> %.3f s/s; consumed %.0f -> %.0f ev/s",
				side.name, free.p50, held.p50, free.p95, held.p95, free.daemonCPU, held.daemonCPU, free.rate, held.rate)
		}
	}
}

type phaseResult struct {
	p50, p95  time.Duration
	daemonCPU float64 // CPU seconds per second: the daemon process and its backends
	rate      float64 // events consumed per second
}

// heldPhase produces and consumes for d, with a transaction held open by
// another session throughout when hold is set.
func heldPhase(b *testing.B, dsn, db string, daemonPid int, d time.Duration, hold bool) phaseResult {
	ctx := context.Background()
	if hold {
		holder := pgtest.Conn(b, dsn+" application_name=bench")
		tx, err := holder.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		pgtest.Exec(b, tx.Conn(), "select txid_current()")
		defer tx.Rollback(ctx) //nolint:errcheck
	}
	// a second queue gets 20,000 events at once and then nothing: under a
	// held snapshot it stays unsettled for the daemon's late-commit checks
	pgtest.Exec(b, pgtest.Conn(b, dsn+" application_name=bench"),
		"select count(pgq.insert_event('idle', 't', g::text)) from generate_series(1, 20000) g")
	daemonTicks := func() int64 {
		_, own := pgtest.ProcCPU(daemonPid)
		admin := pgtest.Conn(b, dsn+" application_name=bench")
		defer admin.Close(ctx)
		pids := pgtest.Column[int32](b, admin, `select pid from pg_stat_activity where datname = $1
			and backend_type = 'client backend' and application_name <> 'bench'`, db)
		for _, pid := range pids {
			own += procTicks(int(pid))
		}
		return own
	}
	before, start := daemonTicks(), time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // 100 transactions of 20 events per second
		defer wg.Done()
		prod := pgtest.Conn(b, dsn+" application_name=bench")
		payload := `{"id": %d, "customer": "ACME Corporation", "items": [{"sku": "X-1", "qty": 3}], "note": "a typical order of about two hundred bytes, realistic enough"}`
		n := 0
		for tick := time.NewTicker(10 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
			}
			batch := &pgx.Batch{}
			batch.Queue("begin")
			for i := 0; i < 20; i++ {
				n++
				batch.Queue("select pgq.insert_event('q', 'order', $1)", fmt.Sprintf(payload, n))
			}
			batch.Queue("commit")
			if err := prod.SendBatch(ctx, batch).Close(); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	cons := pgtest.Conn(b, dsn+" application_name=bench")
	var times []time.Duration
	var events int64
	for time.Since(start) < d {
		var id *int64
		if err := cons.QueryRow(ctx, "select pgq.next_batch('q', 'c')").Scan(&id); err != nil {
			b.Fatal(err)
		}
		if id == nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		t0 := time.Now()
		var n int64
		if err := cons.QueryRow(ctx, "select count(*) from pgq.get_batch_events($1)", *id).Scan(&n); err != nil {
			b.Fatal(err)
		}
		pgtest.Exec(b, cons, "select pgq.finish_batch($1)", *id)
		times = append(times, time.Since(t0))
		events += n
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return phaseResult{p50: percentile(times, 0.5), p95: percentile(times, 0.95),
		daemonCPU: float64(daemonTicks()-before) / 100 / elapsed, rate: float64(events) / elapsed}
}

// durable turns on what the test cluster turns off for speed (fsync,
// synchronous_commit, full_page_writes) until the benchmark ends: figures
// are measured as users run PostgreSQL.
func durable(b *testing.B) {
	admin := pgtest.Conn(b, pgtest.ServerDSN(b))
	was := map[string]string{}
	for _, s := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		was[s] = pgtest.Scalar[string](b, admin, "select current_setting($1)", s)
		pgtest.Exec(b, admin, "alter system set "+s+" = on")
	}
	pgtest.Exec(b, admin, "select pg_reload_conf()")
	b.Cleanup(func() { // back to the test cluster's settings (they live in postgresql.auto.conf too)
		admin := pgtest.Conn(b, pgtest.ServerDSN(b))
		for s, v := range was {
			pgtest.Exec(b, admin, "alter system set "+s+" = "+v)
		}
		pgtest.Exec(b, admin, "select pg_reload_conf()")
	})
}
