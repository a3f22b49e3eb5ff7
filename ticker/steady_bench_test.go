package ticker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// BenchmarkSteadyState: a producer at 100 and at 2,000 events/s (~200-byte
// JSON payloads; one event per transaction at 100/s, 20 per transaction at
// 2,000/s), three consumers keeping up (the Go library, LISTENing for ticks,
// a handler that only reads), durable cluster, each engine with its own
// daemon: Skytools' PgQ ticked by pgqd, pgqgo ticked by `pgqgo ticker`. Per
// engine and rate: delivery time (insert to handler, over every event of
// every consumer), the consumers' largest lag behind the producer, the
// server's CPU per event (every PostgreSQL process of the cluster, from
// /proc), the daemon's own CPU per event, WAL flushes per event
// (pg_stat_wal.wal_sync), and ticks and batches per second. A third side,
// pgqgo_slow, runs pgqgo with low-latency ticking off (tick_poll_period = 0:
// pgq.ticker() every second, as pgqd): the two engines at one latency class,
// which shows what the milliseconds cost apart from the engine.
//
//	go test ./ticker -run '^$' -bench SteadyState -benchtime 1x -timeout 30m
func BenchmarkSteadyState(b *testing.B) {
	durable(b)
	phase := benchSeconds()
	for range b.N {
		for _, rate := range []int{100, 2000} {
			for _, side := range steadySides {
				r := steadyRun(b, side, rate, phase)
				name := fmt.Sprintf("%s_%d", side.name, rate)
				b.ReportMetric(r.p50, name+"_delivery_p50_ms")
				b.ReportMetric(r.p99, name+"_delivery_p99_ms")
				b.ReportMetric(r.maxBehind, name+"_max_behind_events")
				b.ReportMetric(r.serverCPU, name+"_server_cpu_us/ev")
				b.ReportMetric(r.daemonCPU, name+"_daemon_cpu_us/ev")
				b.ReportMetric(r.walSyncs, name+"_wal_flushes/ev")
				b.ReportMetric(r.ticks, name+"_ticks/s")
				b.ReportMetric(r.batches, name+"_batches/s")
				b.ReportMetric(r.tickRows, name+"_tick_rows_max")
				b.ReportMetric(r.tickKiB, name+"_tick_KiB_max")
				b.Logf("%s at %d ev/s: delivery p50 %.1f ms p99 %.1f ms; max behind %.0f events; server CPU %.0f us/ev, daemon %.0f us/ev; %.3f WAL flushes/ev; %.1f ticks/s, %.1f batches/s (3 consumers)",
					side.name, rate, r.p50, r.p99, r.maxBehind, r.serverCPU, r.daemonCPU, r.walSyncs, r.ticks, r.batches)
			}
		}
	}
}

// steadySides are BenchmarkSteadyState's engines: each with its own daemon,
// and pgqgo once more ticking as pgqd does.
var steadySides = []steadySide{
	{"skytools", "pgqd", "", pgtest.Skytools},
	{"pgqgo", "pgqgo", "", pgtest.PgqGo},
	{"pgqgo_slow", "pgqgo", "tick_poll_period = 0\n", pgtest.PgqGo},
}

type steadySide struct {
	name, daemon, ini string // ini: keys added to the daemon's file
	tpl               pgtest.Template
}

type steadyResult struct {
	p50, p99, maxBehind, serverCPU, daemonCPU, walSyncs, ticks, batches float64
	tickRows, tickKiB                                                   float64
}

func steadyRun(b *testing.B, side steadySide, rate int, d time.Duration) steadyResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := pgtest.NewDB(b, side.tpl)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	admin := pgtest.Conn(b, dsn+" application_name=bench")
	pgtest.Exec(b, admin, "select pgq.create_queue('q')")
	consumers := []string{"c1", "c2", "c3"}
	for _, c := range consumers {
		pgtest.Exec(b, admin, "select pgq.register_consumer('q', $1)", c)
	}
	// maintenance (rotation; on pgqgo also tick thinning) every 20 s, so a
	// run of a few minutes shows where pgq.tick settles
	daemon := startDaemonProc(b, side.daemon, benchINI(b, []string{cfg.Database}, "maint_period = 20\n"+side.ini))
	defer stopProc(daemon)
	time.Sleep(2 * time.Second) // connected, creation ticks done

	var mu sync.Mutex
	var delays []time.Duration
	var delivered [3]int64
	var batches [3]int64
	measuring := false
	var wg sync.WaitGroup
	for i, name := range consumers {
		c, err := pgq.NewConsumer(dsn+" application_name=consumers", pgq.ConsumerConfig{Queue: "q", Name: name, Logger: testLog})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, bt *pgq.Batch) error {
				now := time.Now()
				var local []time.Duration
				n := int64(0)
				for ev, err := range bt.Events(ctx) {
					if err != nil {
						return err
					}
					n++
					i := strings.Index(ev.Data, `"sent":`)
					ns, _ := strconv.ParseInt(ev.Data[i+7:strings.IndexByte(ev.Data[i:], ',')+i], 10, 64)
					local = append(local, now.Sub(time.Unix(0, ns)))
				}
				mu.Lock()
				if measuring {
					delays = append(delays, local...)
					batches[i]++
				}
				delivered[i] += n
				mu.Unlock()
				return nil
			}))
		}()
	}

	perTx := 1
	if rate >= 1000 {
		perTx = 20
	}
	txPerSec := rate / perTx
	var produced int64
	var prodMu sync.Mutex
	stopProd := make(chan struct{})
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		prod := pgtest.Conn(b, dsn+" application_name=producer")
		n := 0
		tick := time.NewTicker(time.Second / time.Duration(txPerSec))
		defer tick.Stop()
		for {
			select {
			case <-stopProd:
				return
			case <-tick.C:
			}
			batch := &pgx.Batch{}
			if perTx > 1 {
				batch.Queue("begin")
			}
			for range perTx {
				n++
				batch.Queue("select pgq.insert_event('q', 'order', $1)", fmt.Sprintf(
					`{"sent":%d,"id":%d,"customer":"ACME Corporation","items":[{"sku":"X-1","qty":3}],"note":"a typical order of about two hundred bytes"}`,
					time.Now().UnixNano(), n))
			}
			if perTx > 1 {
				batch.Queue("commit")
			}
			if err := prod.SendBatch(ctx, batch).Close(); err != nil {
				b.Error(err)
				return
			}
			prodMu.Lock()
			produced += int64(perTx)
			prodMu.Unlock()
		}
	}()

	time.Sleep(2 * time.Second) // warm-up
	walSyncs := func() int64 { return pgtest.Scalar[int64](b, admin, "select wal_sync from pg_stat_wal") }
	ticks := func() int64 {
		// from the tick sequence: maintenance thins pgq.tick on pgqgo
		return pgtest.Scalar[int64](b, admin, "select pg_sequence_last_value(queue_tick_seq::regclass) from pgq.queue where queue_name = 'q'")
	}
	postmaster := pgtest.Postmaster(b, admin)
	mu.Lock()
	measuring = true
	mu.Unlock()
	prodMu.Lock()
	prod0 := produced
	prodMu.Unlock()
	byRole0 := serverTicksByRole(b, admin)
	srv0, dmn0, wal0, tick0, start := pgtest.ClusterCPU(postmaster), procTicks(daemon.Process.Pid), walSyncs(), ticks(), time.Now()
	var maxBehind, maxTickRows, maxTickBytes int64
	lastSample := time.Now()
	for time.Since(start) < d {
		if time.Since(lastSample) > 5*time.Second {
			lastSample = time.Now()
			maxTickRows = max(maxTickRows, pgtest.Scalar[int64](b, admin, "select count(*) from pgq.tick"))
			maxTickBytes = max(maxTickBytes, pgtest.Scalar[int64](b, admin, "select pg_total_relation_size('pgq.tick')"))
		}
		time.Sleep(100 * time.Millisecond)
		prodMu.Lock()
		p := produced
		prodMu.Unlock()
		mu.Lock()
		for _, got := range delivered {
			maxBehind = max(maxBehind, p-got)
		}
		mu.Unlock()
	}
	srv1, dmn1, wal1, tick1, elapsed := pgtest.ClusterCPU(postmaster), procTicks(daemon.Process.Pid), walSyncs(), ticks(), time.Since(start)
	byRole1 := serverTicksByRole(b, admin)
	prodMu.Lock()
	events := float64(produced - prod0)
	prodMu.Unlock()
	mu.Lock()
	measuring = false
	mu.Unlock()
	close(stopProd)
	<-prodDone
	// every consumer must have everything within a few seconds
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		done := delivered[0] == produced && delivered[1] == produced && delivered[2] == produced
		got := delivered
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s at %d ev/s: consumers delivered %v of %d events", side.name, rate, got, produced)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	var parts []string
	for role, t := range byRole1 {
		if d := t - byRole0[role]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", role, float64(d)*1e4/events))
		}
	}
	sort.Strings(parts)
	b.Logf("%s at %d ev/s: server CPU by process (us/ev): %s", side.name, rate, strings.Join(parts, ", "))
	b.Logf("%s at %d ev/s: pgq.tick at most %d rows, %d KiB (table and indexes, sampled every 5 s over %v)",
		side.name, rate, maxTickRows, maxTickBytes/1024, d)

	mu.Lock()
	defer mu.Unlock()
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var nb int64
	for _, n := range batches {
		nb += n
	}
	return steadyResult{
		p50: ms(percentile(delays, 0.5)), p99: ms(percentile(delays, 0.99)), maxBehind: float64(maxBehind),
		serverCPU: float64(srv1-srv0) * 1e4 / events, daemonCPU: float64(dmn1-dmn0) * 1e4 / events,
		walSyncs: float64(wal1-wal0) / events, ticks: float64(tick1-tick0) / elapsed.Seconds(),
		batches: float64(nb) / elapsed.Seconds(), tickRows: float64(maxTickRows), tickKiB: float64(maxTickBytes) / 1024,
	}
}

// serverTicksByRole sums server CPU per kind of process: background
// processes by type, client backends by application name.
func serverTicksByRole(b *testing.B, conn *pgx.Conn) map[string]int64 {
	rows, err := conn.Query(context.Background(), `select pid, case when backend_type = 'client backend'
		then coalesce(nullif(application_name, ''), 'client') else backend_type end from pg_stat_activity`)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int64{}
	var pid int32
	var role string
	if _, err := pgx.ForEachRow(rows, []any{&pid, &role}, func() error {
		out[role] += procTicks(int(pid))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return out
}
