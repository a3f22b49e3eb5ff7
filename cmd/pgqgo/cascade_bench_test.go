package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// durableCascade starts one durable server per node name (fsync,
// synchronous_commit and full_page_writes on), each with a database of the
// node's name holding pgbench's tables (data on the first node only) and
// pgqgo's pgq, pgq_node and londiste schemas, and a pgqgo ticker per
// server; nodes are created by the caller.
func durableCascade(b *testing.B, dir string, names ...string) []*cascadeNode {
	var nodes []*cascadeNode
	for i, name := range names {
		c := pgtest.OwnCluster(b, pgcluster.Options{Durable: true})
		pgtest.Exec(b, pgtest.Conn(b, c.DSN("postgres")), "create database "+name)
		n := &cascadeNode{name: name, dsn: c.DSN(name), cluster: c}
		n.conn = pgtest.Conn(b, n.dsn)
		if i == 0 {
			benchPgbench(b, n.dsn, "-i", "-q", "-s", "1")
		} else {
			benchPgbench(b, n.dsn, "-i", "-q", "-I", "dtp")
		}
		pgtest.Exec(b, n.conn, "alter table pgbench_history add column hid bigserial primary key")
		if out, err := runCLIb(b, "install", "--db", n.dsn, "--with", "pgq_node,londiste"); err != nil {
			b.Fatalf("install: %v\n%s", err, out)
		}
		n.ini = pgtest.LondisteINI(b, dir, name, n.dsn, "")
		cfg, _ := pgx.ParseConfig(n.dsn)
		tini := filepath.Join(dir, "ticker-"+name+".ini")
		if err := os.WriteFile(tini, []byte(fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\ndatabase_list = %s\nlogfile = %s\nsyslog = 0\n",
			cfg.Host, cfg.Port, cfg.User, name, filepath.Join(dir, "ticker-"+name+".log"))), 0o644); err != nil {
			b.Fatal(err)
		}
		startBenchProc(b, "ticker", "-q", tini)
		nodes = append(nodes, n)
	}
	return nodes
}

// startBenchProc runs pgqgo (this test binary) as a process until the
// benchmark ends or the returned function is called.
func startBenchProc(b *testing.B, args ...string) (stop func()) {
	p := exec.Command(os.Args[0], args...)
	p.Env = append(os.Environ(), "PGQGO_TEST_RUN_MAIN=1")
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() { _ = p.Process.Signal(os.Interrupt); _ = p.Wait() }
	b.Cleanup(func() { _ = p.Process.Kill() })
	return stop
}

func benchCLI(b *testing.B, args ...string) {
	b.Helper()
	if out, err := runCLIb(b, append([]string{"londiste"}, args...)...); err != nil {
		b.Fatalf("pgqgo londiste %v: %v\n%s", args, err, out)
	}
}

// BenchmarkCascadeMirror: PGQGO_BENCH_EVENTS (default 1,000,000) events
// through root -> branch -> leaf on three durable servers, each with its
// pgqgo ticker: ~200-byte events written by four producers in
// transactions of 1,000 while pgbench writes 200 transactions a second to
// the replicated tables. Reports how fast the branch's copy of the queue
// keeps up, then checks that every branch tick is the root's (id, time,
// event seq), that every root tick in their span is on the branch, that
// the events of each tick range are the same on both (ids, times, fields,
// NULLs), and that the leaf under the branch is equal to the root.
//
//	go test ./cmd/pgqgo -run '^$' -bench CascadeMirror -benchtime 1x -timeout 60m
func BenchmarkCascadeMirror(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("PGQGO_BENCH_EVENTS")); err == nil && v > 0 {
		total = v
	}
	ctx := context.Background()
	dir := b.TempDir()
	nodes := durableCascade(b, dir, "root", "branch", "leaf")
	rt, br, lf := nodes[0], nodes[1], nodes[2]
	benchCLI(b, rt.ini, "create-root", "root", rt.dsn)
	benchCLI(b, br.ini, "create-branch", "branch", br.dsn, "--provider="+rt.dsn)
	benchCLI(b, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+br.dsn)
	for _, n := range nodes {
		startBenchProc(b, "londiste", n.ini, "worker", "-q")
	}
	for _, n := range nodes {
		benchCLI(b, n.ini, "add-table", "--all")
		if n != rt {
			benchCLI(b, n.ini, "wait-sync", "--timeout", "300s")
		}
	}
	completed := func(n *cascadeNode) int64 {
		return pgtest.Scalar[int64](b, n.conn, "select coalesce(worker_last_tick, 0) from pgq_node.get_node_info('replika')")
	}
	for b.Loop() {
		start := time.Now()
		pgb := make(chan string, 1)
		loadCtx, stopLoad := context.WithCancel(ctx)
		go func() {
			cfg, _ := pgx.ParseConfig(rt.dsn)
			out, _ := exec.CommandContext(loadCtx, "/usr/lib/postgresql/15/bin/pgbench", "-n", "-c", "2", "-R", "200", "-T", "3600",
				"-h", cfg.Host, "-p", fmt.Sprint(cfg.Port), "-U", cfg.User, cfg.Database).CombinedOutput()
			pgb <- string(out)
		}()
		var wg sync.WaitGroup
		const producers, perTx = 4, 1000
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := pgx.Connect(ctx, rt.dsn)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close(ctx)
				for i := 0; i < total/producers/perTx; i++ {
					if _, err := c.Exec(ctx, `select pgq.insert_event('replika', 'bench.event', repeat(md5(g::text), 6), 'p'||$1, case when g % 3 = 0 then '' end, null, null)
					  from generate_series(1, $2) g`, p, perTx); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		written := time.Since(start)
		stopLoad()
		<-pgb
		pgtest.Exec(b, rt.conn, "select pgq.force_tick('replika')")
		var last int64
		deadline := time.Now().Add(30 * time.Minute)
		for {
			last = pgtest.Scalar[int64](b, rt.conn, "select last_tick_id from pgq.get_queue_info('replika')")
			if completed(br) >= last && completed(lf) >= last {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("branch at %d, leaf at %d, root's last tick %d", completed(br), completed(lf), last)
			}
			time.Sleep(50 * time.Millisecond)
		}
		all := time.Since(start)
		b.ReportMetric(float64(total)/all.Seconds(), "events/s")
		b.ReportMetric((all - written).Seconds(), "s-behind-at-end")
		b.Logf("%d events written in %v; branch and leaf through the root's last tick %d after %v (%.0f events/s end to end)",
			total, written.Round(time.Millisecond), last, all.Round(time.Millisecond), float64(total)/all.Seconds())
	}
	b.StopTimer()
	pgtest.Eventually(b, 120*time.Second, "the leaf equal to the root", func() bool {
		for _, tbl := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"} {
			q := "select count(*)::text || ' ' || coalesce(sum(hashtext(x::text)), 0)::text from " + tbl + " x"
			if pgtest.Scalar[string](b, rt.conn, q) != pgtest.Scalar[string](b, lf.conn, q) {
				return false
			}
		}
		return true
	})
	checked := time.Now()
	ticks, events := checkMirrored(b, rt.conn, br.conn)
	b.Logf("checked in %v: %d branch ticks, each the root's (id, time, event seq), no root tick missing between them, %d events in their ranges the same on both; the leaf equal to the root",
		time.Since(checked).Round(time.Millisecond), ticks, events)
	if events < total {
		b.Fatalf("only %d of %d events compared", events, total)
	}
}
