package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
// server (tickerExtra: more lines for its ini); nodes are created by the
// caller.
func durableCascade(b *testing.B, dir, tickerExtra string, names ...string) []*cascadeNode {
	var nodes []*cascadeNode
	for i, name := range names {
		c := pgtest.OwnCluster(b, pgcluster.Options{Durable: true})
		n := benchNode(b, dir, c, name, i == 0)
		cfg, _ := pgx.ParseConfig(n.dsn)
		tini := filepath.Join(dir, "ticker-"+name+".ini")
		if err := os.WriteFile(tini, []byte(fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\ndatabase_list = %s\nlogfile = %s\nsyslog = 0\n%s",
			cfg.Host, cfg.Port, cfg.User, name, filepath.Join(dir, "ticker-"+name+".log"), tickerExtra)), 0o644); err != nil {
			b.Fatal(err)
		}
		startBenchProc(b, "ticker", "-q", tini)
		nodes = append(nodes, n)
	}
	return nodes
}

// envInt is the positive integer in environment variable name, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// durableRootBranchLeaf is durableCascade's root, branch under it and leaf
// under the branch, created as nodes (not started).
func durableRootBranchLeaf(b *testing.B, dir, tickerExtra string) (nodes []*cascadeNode, rt, br, lf *cascadeNode) {
	nodes = durableCascade(b, dir, tickerExtra, "root", "branch", "leaf")
	rt, br, lf = nodes[0], nodes[1], nodes[2]
	benchCLI(b, rt.ini, "create-root", "root", rt.dsn)
	benchCLI(b, br.ini, "create-branch", "branch", br.dsn, "--provider="+rt.dsn)
	benchCLI(b, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+br.dsn)
	return nodes, rt, br, lf
}

// backgroundPgbench runs pgbench at 200 transactions/s on dsn until stop,
// which returns its output.
func backgroundPgbench(ctx context.Context, dsn string) (stop func() string) {
	loadCtx, cancel := context.WithCancel(ctx)
	out := make(chan string, 1)
	go func() {
		cfg, _ := pgx.ParseConfig(dsn)
		o, _ := exec.CommandContext(loadCtx, "/usr/lib/postgresql/15/bin/pgbench", "-n", "-c", "2", "-R", "200", "-T", "3600",
			"-h", cfg.Host, "-p", fmt.Sprint(cfg.Port), "-U", cfg.User, cfg.Database).CombinedOutput()
		out <- string(o)
	}()
	return func() string { cancel(); return <-out }
}

// benchNode makes database name on server c with pgbench's tables (data
// when withData, else empty), history keyed, pgqgo's schemas, and the
// node's ini in dir.
func benchNode(b *testing.B, dir string, c *pgcluster.Cluster, name string, withData bool) *cascadeNode {
	pgtest.Exec(b, pgtest.Conn(b, c.DSN("postgres")), "create database "+name)
	n := &cascadeNode{name: name, dsn: c.DSN(name), cluster: c}
	n.conn = pgtest.Conn(b, n.dsn)
	if withData {
		benchPgbench(b, n.dsn, "-i", "-q", "-s", "1")
	} else {
		benchPgbench(b, n.dsn, "-i", "-q", "-I", "dtp")
	}
	pgtest.Exec(b, n.conn, "alter table pgbench_history add column hid bigserial primary key")
	if out, err := runCLIb(b, "install", "--db", n.dsn, "--with", "pgq_node,londiste"); err != nil {
		b.Fatalf("install: %v\n%s", err, out)
	}
	n.ini = pgtest.LondisteINI(b, dir, name, n.dsn, "")
	return n
}

// startAndSync starts every node's pgqgo worker and adds all tables on
// each (the first node is the root), waiting for the others' copies.
func startAndSync(b *testing.B, nodes []*cascadeNode) {
	for _, n := range nodes {
		startBenchProc(b, "londiste", n.ini, "worker", "-q")
	}
	for i, n := range nodes {
		benchCLI(b, n.ini, "add-table", "--all")
		if i > 0 {
			benchCLI(b, n.ini, "wait-sync", "--timeout", "300s")
		}
	}
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

// produceEvents writes total ~200-byte events into the replika queue at
// dsn, from four producers in transactions of 1,000, at perSecond events a
// second (0: as fast as they go).
func produceEvents(ctx context.Context, b *testing.B, dsn string, total, perSecond int) {
	var wg sync.WaitGroup
	const producers, perTx = 4, 1000
	start := time.Now()
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close(ctx)
			for i := 0; i < total/producers/perTx; i++ {
				if perSecond > 0 {
					// this producer's i-th transaction is due when the
					// rate has reached its events
					due := start.Add(time.Duration(float64(i*producers*perTx) / float64(perSecond) * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				if _, err := c.Exec(ctx, `select pgq.insert_event('replika', 'bench.event', repeat(md5(g::text), 6), 'p'||$1, case when g % 3 = 0 then '' end, null, null)
				  from generate_series(1, $2) g`, strconv.Itoa(p), perTx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
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
	total := envInt("PGQGO_BENCH_EVENTS", 1_000_000)
	ctx := context.Background()
	dir := b.TempDir()
	nodes, rt, br, lf := durableRootBranchLeaf(b, dir, "")
	startAndSync(b, nodes)
	completed := func(n *cascadeNode) int64 { return workerTick(b, n.conn) }
	for b.Loop() {
		start := time.Now()
		stopLoad := backgroundPgbench(ctx, rt.dsn)
		produceEvents(ctx, b, rt.dsn, total, 0)
		if b.Failed() {
			stopLoad()
			return
		}
		written := time.Since(start)
		stopLoad()
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

// BenchmarkCascadeSwitchover: PGQGO_BENCH_SWITCHOVERS (default 20) root <->
// branch switchovers (takeover of the live root, each direction in turn)
// under writers following the root (3 x 170 transactions/s, pgbench-like),
// on two durable servers: first pgqgo (its workers, its CLI, its ticker),
// then londiste3 (its workers, its CLI, pgqd) on databases of their own on
// the same two servers. Reported per tool: the write unavailability of each
// switchover (first refused to first accepted transaction, the longest of
// the writers), p50, p99, max; both ends compared equal afterwards.
//
//	go test ./cmd/pgqgo -run '^$' -bench CascadeSwitchover -benchtime 1x -timeout 60m
func BenchmarkCascadeSwitchover(b *testing.B) {
	rounds := envInt("PGQGO_BENCH_SWITCHOVERS", 20)
	ctx := context.Background()
	dir := b.TempDir()
	servers := []*pgcluster.Cluster{pgtest.OwnCluster(b, pgcluster.Options{Durable: true}), pgtest.OwnCluster(b, pgcluster.Options{Durable: true})}
	londiste := pgtest.Londiste3(b, ctx, dir)
	type side struct {
		tool     string
		root, br *cascadeNode
	}
	var sides []side
	for _, tool := range []string{"go", "py"} {
		var ns []*cascadeNode
		for i, role := range []string{"root", "branch"} {
			ns = append(ns, benchNode(b, dir, servers[i], role+"_"+tool, role == "root"))
		}
		sides = append(sides, side{tool, ns[0], ns[1]})
	}
	// each side's own ticker on each server
	for i, srv := range servers {
		cfg, _ := pgx.ParseConfig(srv.DSN("postgres"))
		for _, tool := range []string{"go", "py"} {
			db := []string{"root_", "branch_"}[i] + tool
			tini := filepath.Join(dir, "ticker-"+db+".ini")
			if err := os.WriteFile(tini, []byte(fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\ndatabase_list = %s\nlogfile = %s\nsyslog = 0\n",
				cfg.Host, cfg.Port, cfg.User, db, filepath.Join(dir, "ticker-"+db+".log"))), 0o644); err != nil {
				b.Fatal(err)
			}
			if tool == "go" {
				startBenchProc(b, "ticker", "-q", tini)
				continue
			}
			p := exec.Command("pgqd", "-q", tini)
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = p.Process.Kill(); _ = p.Wait() })
		}
	}
	run := func(sd side, args ...string) {
		if sd.tool == "go" {
			benchCLI(b, args...)
		} else {
			londiste(args[0], args[1:]...)
		}
	}
	for _, sd := range sides {
		run(sd, sd.root.ini, "create-root", sd.root.name, sd.root.dsn)
		run(sd, sd.br.ini, "create-branch", sd.br.name, sd.br.dsn, "--provider="+sd.root.dsn)
		// an idle tick every second on both queues (a branch's, once it is
		// the root): londiste3's copy and hand-off wait for ticks
		for _, n := range []*cascadeNode{sd.root, sd.br} {
			pgtest.Exec(b, n.conn, "select pgq.set_queue_config('replika', 'ticker_idle_period', '1 second')")
		}
		for _, n := range []*cascadeNode{sd.root, sd.br} {
			if sd.tool == "go" {
				startBenchProc(b, "londiste", n.ini, "worker", "-q")
			} else {
				londiste(n.ini, "worker", "-d")
				b.Cleanup(func() { _ = exec.Command("pkill", "-9", "-f", "londiste "+n.ini).Run() })
			}
		}
		for _, n := range []*cascadeNode{sd.root, sd.br} {
			run(sd, n.ini, "add-table", "--all")
			run(sd, n.ini, "add-seq", "--all")
		}
		benchCLI(b, sd.br.ini, "wait-sync", "--timeout", "600s")
	}
	typ := func(n *cascadeNode) string {
		return pgtest.Scalar[string](b, n.conn, "select node_type from pgq_node.get_node_info('replika')")
	}
	completed := func(n *cascadeNode) int64 {
		return workerTick(b, n.conn)
	}
	for b.Loop() {
		for _, sd := range sides {
			wctx, stop := context.WithCancel(ctx)
			writers := make([]*rootWriter, 3)
			var wg sync.WaitGroup
			for i := range writers {
				writers[i] = &rootWriter{nodes: []*cascadeNode{sd.root, sd.br}}
				wg.Add(1)
				go func() { defer wg.Done(); writers[i].run(wctx, b, 170) }()
			}
			pair := []*cascadeNode{sd.br, sd.root} // the new root first
			took := make([]time.Duration, 0, rounds)
			for r := 0; r < rounds; r++ {
				time.Sleep(2 * time.Second)
				nw, old := pair[r%2], pair[(r+1)%2]
				start := time.Now()
				run(sd, nw.ini, "takeover", old.name)
				took = append(took, time.Since(start))
				if typ(nw) != "root" || typ(old) != "branch" {
					b.Fatalf("%s round %d: %s is %s, %s is %s", sd.tool, r, nw.name, typ(nw), old.name, typ(old))
				}
				before := completed(old)
				deadline := time.Now().Add(2 * time.Minute)
				for completed(old) <= before {
					if time.Now().After(deadline) {
						b.Fatalf("%s round %d: %s not replicating from %s", sd.tool, r, old.name, nw.name)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			time.Sleep(2 * time.Second)
			stop()
			wg.Wait()
			var gaps []time.Duration
			written := 0
			for r := range rounds {
				var g time.Duration
				for _, w := range writers {
					if r < len(w.gaps) {
						g = max(g, w.gaps[r])
					}
				}
				gaps = append(gaps, g)
			}
			for _, w := range writers {
				written += w.written
				if len(w.gaps) != rounds {
					b.Logf("%s: a writer saw %d refusals for %d switchovers", sd.tool, len(w.gaps), rounds)
				}
			}
			slices.Sort(gaps)
			slices.Sort(took)
			p := func(v []time.Duration, q float64) time.Duration { return v[min(len(v)-1, int(q*float64(len(v))))] }
			tool := map[string]string{"go": "pgqgo", "py": "londiste3"}[sd.tool]
			b.Logf("%s: %d switchovers, %d transactions written; writes refused p50 %v, p99 %v, max %v; takeover command p50 %v, max %v",
				tool, rounds, written, p(gaps, 0.5).Round(time.Millisecond), p(gaps, 0.99).Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond),
				p(took, 0.5).Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
			b.ReportMetric(p(gaps, 0.99).Seconds(), tool+"-p99-refused-s")
			deadline := time.Now().Add(2 * time.Minute)
			for !sameTables(b, sd.root.conn, sd.br.conn) {
				if time.Now().After(deadline) {
					b.Fatalf("%s: root and branch differ", tool)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
}

// sameTables compares count and checksum of pgbench's tables on two nodes.
func sameTables(b testing.TB, x, y *pgx.Conn) bool {
	for _, tbl := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"} {
		q := "select count(*)::text || ' ' || coalesce(sum(hashtext(t::text)), 0)::text from " + tbl + " t"
		if pgtest.Scalar[string](b, x, q) != pgtest.Scalar[string](b, y, q) {
			return false
		}
	}
	return true
}

// BenchmarkCascadeMoves: a root, two branches and four leaves (the leaves
// two by two on two more servers; five durable servers), pgbench at 500
// transactions/s on the root, and PGQGO_BENCH_MOVES (default 30) random
// change-provider moves: a leaf to another branch or the root, a branch
// under the other branch or back to the root. Every node's completed tick
// is sampled every 100 ms and must never go back; at the end every node's
// tables equal the root's. Reported: the moves' times (command to applying
// again).
//
//	go test ./cmd/pgqgo -run '^$' -bench CascadeMoves -benchtime 1x -timeout 60m
func BenchmarkCascadeMoves(b *testing.B) {
	moves := envInt("PGQGO_BENCH_MOVES", 30)
	ctx := context.Background()
	dir := b.TempDir()
	nodes := durableCascade(b, dir, "", "root", "b1", "b2", "l1")
	rt, b1, b2 := nodes[0], nodes[1], nodes[2]
	// three more leaves: l2 on l1's server, l3 and l4 on another
	srv := pgtest.OwnCluster(b, pgcluster.Options{Durable: true})
	for _, name := range []string{"l2", "l3", "l4"} {
		c := srv
		if name == "l2" {
			c = nodes[3].cluster
		}
		nodes = append(nodes, benchNode(b, dir, c, name, false))
	}
	leaves := nodes[3:]
	benchCLI(b, rt.ini, "create-root", "root", rt.dsn)
	benchCLI(b, b1.ini, "create-branch", "b1", b1.dsn, "--provider="+rt.dsn)
	benchCLI(b, b2.ini, "create-branch", "b2", b2.dsn, "--provider="+rt.dsn)
	for i, l := range leaves {
		benchCLI(b, l.ini, "create-leaf", l.name, l.dsn, "--provider="+[]*cascadeNode{b1, b2}[i%2].dsn)
	}
	startAndSync(b, nodes)
	provider := func(n *cascadeNode) string {
		return pgtest.Scalar[string](b, n.conn, "select provider_node from pgq_node.get_node_info('replika')")
	}
	for b.Loop() {
		sctx, stopSampling := context.WithCancel(ctx)
		var back []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range nodes[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := pgx.Connect(sctx, n.dsn)
				if err != nil {
					return
				}
				defer c.Close(ctx)
				var last int64
				for sctx.Err() == nil {
					var cur int64
					if err := c.QueryRow(sctx, "select coalesce(worker_last_tick, 0) from pgq_node.get_node_info('replika')").Scan(&cur); err == nil {
						if cur < last {
							mu.Lock()
							back = append(back, fmt.Sprintf("%s %d -> %d", n.name, last, cur))
							mu.Unlock()
						}
						last = cur
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
		loadCtx, stopLoad := context.WithCancel(ctx)
		loadDone := make(chan struct{})
		go func() {
			defer close(loadDone)
			cfg, _ := pgx.ParseConfig(rt.dsn)
			_ = exec.CommandContext(loadCtx, "/usr/lib/postgresql/15/bin/pgbench", "-n", "-c", "4", "-j", "2", "-R", "500", "-T", "3600",
				"-h", cfg.Host, "-p", fmt.Sprint(cfg.Port), "-U", cfg.User, cfg.Database).Run()
		}()
		var took []time.Duration
		for i := 0; i < moves; i++ {
			time.Sleep(500 * time.Millisecond)
			// a leaf to anywhere else, or a branch between the root and the other branch
			var n *cascadeNode
			var to string
			switch i % 5 {
			case 4:
				n = []*cascadeNode{b1, b2}[(i/5)%2]
				other := map[*cascadeNode]string{b1: "b2", b2: "b1"}[n]
				if provider(n) == "root" && provider(map[*cascadeNode]*cascadeNode{b1: b2, b2: b1}[n]) == "root" {
					to = other
				} else {
					to = "root"
				}
			default:
				n = leaves[(i*7)%len(leaves)]
				cands := []string{"root", "b1", "b2"}
				cur := provider(n)
				for k := range 3 {
					if c := cands[(i+k)%3]; c != cur {
						to = c
						break
					}
				}
			}
			before := workerTick(b, n.conn)
			start := time.Now()
			benchCLI(b, n.ini, "change-provider", "--provider="+to)
			deadline := time.Now().Add(2 * time.Minute)
			for workerTick(b, n.conn) <= before {
				if time.Now().After(deadline) {
					b.Fatalf("move %d: %s not applying from %s", i, n.name, to)
				}
				time.Sleep(20 * time.Millisecond)
			}
			took = append(took, time.Since(start))
		}
		stopLoad()
		<-loadDone
		deadline := time.Now().Add(5 * time.Minute)
		for _, n := range nodes[1:] {
			for !sameTables(b, rt.conn, n.conn) {
				if time.Now().After(deadline) {
					b.Fatalf("%s differs from the root", n.name)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		stopSampling()
		wg.Wait()
		if len(back) > 0 {
			b.Fatalf("completed ticks went back: %v", back)
		}
		slices.Sort(took)
		b.Logf("%d moves under 500 tps: to applying again p50 %v, max %v; every node equal to the root; completed ticks never went back (sampled every 100 ms on 6 nodes)",
			len(took), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
		b.ReportMetric(took[len(took)/2].Seconds(), "s/move-p50")
	}
}

// BenchmarkCascadeRotation: an hour of a 500 events/s queue
// (PGQGO_BENCH_EVENTS, default 1,800,000 ~200-byte events) written at a
// steady rate over PGQGO_BENCH_SECONDS (default 180: 18 rotation periods)
// through root -> branch -> leaf on three durable servers, pgbench at 200
// transactions/s on the replicated tables meanwhile, with rotation_period
// 10 s on the root's and the branch's queue, each server's pgqgo ticker running maintenance every 2 s and the
// workers publishing watermarks every 2 s (the time scale shrunk alike).
// Samples the size of the event tables on root and branch every second:
// with every node running they rotate, and the largest size seen stays a
// few rotation periods' worth of events, whatever the total written.
//
//	go test ./cmd/pgqgo -run '^$' -bench CascadeRotation -benchtime 1x -timeout 60m
func BenchmarkCascadeRotation(b *testing.B) {
	total, seconds := envInt("PGQGO_BENCH_EVENTS", 1_800_000), envInt("PGQGO_BENCH_SECONDS", 180)
	ctx := context.Background()
	dir := b.TempDir()
	nodes, rt, br, lf := durableRootBranchLeaf(b, dir, "maint_period = 2\n")
	for _, n := range []*cascadeNode{rt, br} {
		pgtest.Exec(b, n.conn, "select pgq.set_queue_config('replika', 'rotation_period', '10 seconds')")
	}
	// the watermarks on the same time scale (londiste3's defaults publish
	// them every 5 minutes, which holds rotation as long)
	for _, n := range nodes {
		f, err := os.OpenFile(n.ini, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintln(f, "local_wm_publish_period = 2\nglobal_wm_publish_period = 2")
		f.Close()
	}
	startAndSync(b, nodes)
	// (called from the sampler's goroutine too: errors are reported, not fatal there)
	eventBytes := func(c *pgx.Conn) (n int64) {
		if err := c.QueryRow(ctx, `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8
		  from pg_class c join pg_namespace s on s.oid = c.relnamespace
		 where s.nspname = 'pgq' and c.relname ~ '^event_[0-9]+_[0-9]+$'`).Scan(&n); err != nil {
			b.Error(err)
		}
		return n
	}
	switches := func(c *pgx.Conn) (t time.Time) {
		if err := c.QueryRow(ctx, "select queue_switch_time from pgq.queue where queue_name = 'replika'").Scan(&t); err != nil {
			b.Error(err)
		}
		return t
	}
	// the sampler's own sessions
	sampleConn := map[string]*pgx.Conn{"root": pgtest.Conn(b, rt.dsn), "branch": pgtest.Conn(b, br.dsn)}
	completed := func(n *cascadeNode) int64 { return workerTick(b, n.conn) }
	for b.Loop() {
		start := time.Now()
		stopLoad := backgroundPgbench(ctx, rt.dsn)
		// the sampler: largest event tables seen, rotations counted
		var maxRoot, maxBranch int64
		rotations := map[string]int{}
		sampled := make(chan struct{})
		sampleCtx, stopSampling := context.WithCancel(ctx)
		go func() {
			defer close(sampled)
			last := map[string]time.Time{}
			for name, c := range sampleConn {
				last[name] = switches(c)
			}
			for sampleCtx.Err() == nil {
				maxRoot, maxBranch = max(maxRoot, eventBytes(sampleConn["root"])), max(maxBranch, eventBytes(sampleConn["branch"]))
				for name, c := range sampleConn {
					if sw := switches(c); sw.After(last[name]) {
						rotations[name]++
						last[name] = sw
					}
				}
				select {
				case <-sampleCtx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
		produceEvents(ctx, b, rt.dsn, total, total/seconds)
		written := time.Since(start)
		stopLoad()
		pgtest.Exec(b, rt.conn, "select pgq.force_tick('replika')")
		last := pgtest.Scalar[int64](b, rt.conn, "select last_tick_id from pgq.get_queue_info('replika')")
		pgtest.Eventually(b, 30*time.Minute, "branch and leaf through the root's last tick", func() bool {
			return completed(br) >= last && completed(lf) >= last
		})
		all := time.Since(start)
		// two more rotation periods: what is left once everybody is through
		time.Sleep(25 * time.Second)
		stopSampling()
		<-sampled
		if b.Failed() {
			return
		}
		perEvent := float64(pgtest.Scalar[int64](b, rt.conn, "select pg_column_size(row(1::int8, now(), 1::int8, 1::int8, 'bench.event'::text, repeat(md5('1'), 6), 'p1'::text))"))
		writtenMB := float64(total) * perEvent / 1e6
		b.ReportMetric(float64(maxRoot)/1e6, "max-root-MB")
		b.ReportMetric(float64(maxBranch)/1e6, "max-branch-MB")
		b.ReportMetric(float64(rotations["root"]), "root-rotations")
		b.ReportMetric(float64(rotations["branch"]), "branch-rotations")
		b.Logf("%d events (~%.0f MB of rows) written in %v, through the leaf after %v; event tables at most %.1f MB on the root, %.1f MB on the branch; "+
			"%d rotations on the root, %d on the branch; after: %.1f MB, %.1f MB",
			total, writtenMB, written.Round(time.Second), all.Round(time.Second), float64(maxRoot)/1e6, float64(maxBranch)/1e6,
			rotations["root"], rotations["branch"], float64(eventBytes(rt.conn))/1e6, float64(eventBytes(br.conn))/1e6)
		if rotations["root"] < 3 || rotations["branch"] < 3 {
			b.Fatalf("rotations: root %d, branch %d", rotations["root"], rotations["branch"])
		}
		// bounded: a few rotation periods' worth, not the stream
		if limit := writtenMB * 1e6 * 0.4; float64(maxRoot) > limit || float64(maxBranch) > limit {
			b.Fatalf("event tables grew to %.0f%% (root) and %.0f%% (branch) of the stream written", 100*float64(maxRoot)/writtenMB/1e6, 100*float64(maxBranch)/writtenMB/1e6)
		}
	}
}

// BenchmarkCascadeTickBacklog: how many of the root's ticks a branch
// mirrors a second when it is behind. A branch keeps every root tick (a
// node may move under it at any of them), one target transaction per tick
// with events, and a root under steady load ticks up to 20 times a second
// (tick_max_interval 50 ms): a branch that mirrors fewer never catches up.
// Root and branch on two durable servers, each with its pgqgo ticker; the
// branch's worker is stopped while pgbench writes 200 transactions a
// second on the root for PGQGO_BENCH_SECONDS (default 30), then started;
// reported: the ticks and events it mirrored a second until it had the
// root's last tick, and the two sides compared.
//
//	go test ./cmd/pgqgo -run '^$' -bench CascadeTickBacklog -benchtime 1x -timeout 30m
func BenchmarkCascadeTickBacklog(b *testing.B) {
	seconds := envInt("PGQGO_BENCH_SECONDS", 30)
	ctx := context.Background()
	dir := b.TempDir()
	nodes := durableCascade(b, dir, "", "root", "branch")
	rt, br := nodes[0], nodes[1]
	benchCLI(b, rt.ini, "create-root", "root", rt.dsn)
	benchCLI(b, br.ini, "create-branch", "branch", br.dsn, "--provider="+rt.dsn)
	startBenchProc(b, "londiste", rt.ini, "worker", "-q")
	stopBranch := startBenchProc(b, "londiste", br.ini, "worker", "-q")
	benchCLI(b, rt.ini, "add-table", "--all")
	benchCLI(b, br.ini, "add-table", "--all")
	benchCLI(b, br.ini, "wait-sync", "--timeout", "300s")
	for b.Loop() {
		b.StopTimer()
		stopBranch()
		from := workerTick(b, br.conn)
		cfg, _ := pgx.ParseConfig(rt.dsn)
		if out, err := exec.CommandContext(ctx, "/usr/lib/postgresql/15/bin/pgbench", "-n", "-c", "2", "-R", "200", "-T", strconv.Itoa(seconds),
			"-h", cfg.Host, "-p", fmt.Sprint(cfg.Port), "-U", cfg.User, cfg.Database).CombinedOutput(); err != nil {
			b.Fatalf("pgbench: %v\n%s", err, out)
		}
		pgtest.Exec(b, rt.conn, "select pgq.force_tick('replika')")
		var last int64
		pgtest.Eventually(b, 10*time.Second, "the root's forced tick", func() bool {
			last = pgtest.Scalar[int64](b, rt.conn, "select last_tick_id from pgq.get_queue_info('replika')")
			return pgtest.Scalar[int64](b, rt.conn, "select count(*) from pgq.tick where tick_id > $1", last-1) > 0
		})
		events := pgtest.Scalar[int64](b, rt.conn, `select coalesce(max(tick_event_seq) - min(tick_event_seq), 0) from pgq.tick
		  where tick_id in ($1, $2)`, from, last)
		b.StartTimer()
		start := time.Now()
		stopBranch = startBenchProc(b, "londiste", br.ini, "worker", "-q")
		for workerTick(b, br.conn) < last {
			if time.Since(start) > 20*time.Minute {
				b.Fatalf("branch at %d after 20 minutes, root's last tick %d", workerTick(b, br.conn), last)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		b.ReportMetric(float64(last-from)/took.Seconds(), "ticks/s")
		b.ReportMetric(float64(events)/took.Seconds(), "events/s")
		b.Logf("%d ticks (%d events) made by the root in %d s under pgbench at 200 tps, mirrored by the branch in %v",
			last-from, events, seconds, took.Round(time.Millisecond))
	}
	b.StopTimer()
	ticks, events := checkMirrored(b, rt.conn, br.conn)
	b.Logf("%d branch ticks, each the root's, %d events in their ranges the same on both", ticks, events)
}
