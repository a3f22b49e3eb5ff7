package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// BenchmarkLondisteChaos: issue 18's crash-safety run. A root and a leaf
// on two durable servers, pgbench (scale 5) on the root at 100 tps for
// PGQGO_BENCH_SECONDS (default 600), while the leaf's pgqgo worker is
// killed with SIGKILL 100 times (PGQGO_BENCH_KILLS): half at random
// moments, half the moment a table is seen in the copy state each aims at
// (in-copy, catching-up, wanna-sync, do-sync in turn); pgbench_accounts
// (a split copy and londiste3's hand-off) and a small table (copied in the
// main worker's batch) are resynced every 30 s so that copies and
// hand-offs keep happening; every tenth kill also crashes
// one of the servers (immediate shutdown and restart, root and leaf in
// turn). The load generator, ticker and root worker are restarted when a
// crash ends them, the leaf worker right after each kill, no other step.
// Afterwards: wait-sync, the leaf equal to the root, pgqgo's and
// londiste3's compare agree, no copy consumer left.
//
//	go test ./cmd/pgqgo -run '^$' -bench LondisteChaos -benchtime 1x -timeout 60m
func BenchmarkLondisteChaos(b *testing.B) {
	secs, kills := envInt("PGQGO_BENCH_SECONDS", 600), envInt("PGQGO_BENCH_KILLS", 100)
	for range b.N {
		chaosRun(b, time.Duration(secs)*time.Second, kills)
	}
}

func chaosRun(b *testing.B, length time.Duration, kills int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := b.TempDir()
	rootCl := pgtest.OwnCluster(b, pgcluster.Options{Durable: true})
	leafCl := pgtest.OwnCluster(b, pgcluster.Options{Durable: true})
	pgtest.Exec(b, pgtest.Conn(b, rootCl.DSN("postgres")), "create database root")
	pgtest.Exec(b, pgtest.Conn(b, leafCl.DSN("postgres")), "create database leaf")
	rootDSN, leafDSN := rootCl.DSN("root"), leafCl.DSN("leaf")
	benchPgbench(b, rootDSN, "-i", "-q", "-s", "5")
	benchPgbench(b, leafDSN, "-i", "-q", "-I", "dtp")
	for _, dsn := range []string{rootDSN, leafDSN} {
		pgtest.Exec(b, pgtest.Conn(b, dsn), "alter table pgbench_history add column hid bigserial primary key")
		if out, err := runCLIb(b, "install", "--db", dsn, "--with", "pgq_node,londiste"); err != nil {
			b.Fatalf("install: %v\n%s", err, out)
		}
	}
	rootINI := pgtest.LondisteINI(b, dir, "root", rootDSN, "")
	leafINI := pgtest.LondisteINI(b, dir, "leaf", leafDSN, "")
	cli := func(args ...string) string {
		b.Helper()
		out, err := runCLIb(b, append([]string{"londiste"}, args...)...)
		if err != nil {
			b.Fatalf("pgqgo londiste %v: %v\n%s", args, err, out)
		}
		return out
	}
	cli(rootINI, "create-root", "root", rootDSN)
	cli(leafINI, "create-leaf", "leaf", leafDSN, "--provider="+rootDSN)
	rcfg, _ := pgx.ParseConfig(rootDSN)
	tini := filepath.Join(dir, "ticker.ini")
	if err := os.WriteFile(tini, []byte(fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\ndatabase_list = root\nlogfile = %s\nsyslog = 0\n",
		rcfg.Host, rcfg.Port, rcfg.User, filepath.Join(dir, "ticker.log"))), 0o644); err != nil {
		b.Fatal(err)
	}
	// supervised: restarted whenever they end (a crashed server)
	var wg sync.WaitGroup
	supervise := func(name string, argv ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
				cmd.Env = append(os.Environ(), "PGQGO_TEST_RUN_MAIN=1")
				_ = cmd.Run()
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
	}
	supervise("ticker", os.Args[0], "ticker", "-q", tini)
	supervise("root worker", os.Args[0], "londiste", rootINI, "worker", "-q")
	cli(rootINI, "add-table", "--all")
	loadCtx, stopLoad := context.WithCancel(ctx)
	pgbenchArgs := func(secs int) []string {
		return []string{"/usr/lib/postgresql/15/bin/pgbench", "-n", "-c", "2", "-R", "100", "-T", strconv.Itoa(secs),
			"-h", rcfg.Host, "-p", strconv.Itoa(int(rcfg.Port)), "-U", rcfg.User, rcfg.Database}
	}
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		end := time.Now().Add(length)
		for loadCtx.Err() == nil && time.Until(end) > time.Second {
			argv := pgbenchArgs(int(time.Until(end).Seconds()))
			_ = exec.CommandContext(loadCtx, argv[0], argv[1:]...).Run()
			select {
			case <-loadCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer stopLoad()

	var worker *exec.Cmd
	startWorker := func() {
		worker = exec.Command(os.Args[0], "londiste", leafINI, "worker", "-q")
		worker.Env = append(os.Environ(), "PGQGO_TEST_RUN_MAIN=1")
		if err := worker.Start(); err != nil {
			b.Fatal(err)
		}
		go worker.Wait() //nolint:errcheck // killed on purpose
	}
	startWorker()
	b.Cleanup(func() { _ = worker.Process.Kill() })
	cli(leafINI, "add-table", "--all")
	leafConn := func() *pgx.Conn {
		for {
			c, err := pgx.Connect(ctx, leafDSN)
			if err == nil {
				return c
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	leaf := leafConn()
	copyState := func() string {
		var st string
		err := leaf.QueryRow(ctx, `select coalesce(string_agg(split_part(merge_state, ':', 1), ','), '')
		   from londiste.get_table_list('replika') where merge_state in ('in-copy', 'catching-up') or merge_state like '%-sync:%'`).Scan(&st)
		if err != nil {
			leaf.Close(ctx)
			leaf = leafConn()
		}
		return st
	}
	rng := rand.New(rand.NewPCG(18, 100))
	start := time.Now()
	interval := length / time.Duration(kills)
	killedIn := map[string]int{}
	crashes := map[string]int{}
	resyncs := 0
	lastResync := time.Now()
	resyncTables := []string{"public.pgbench_tellers", "public.pgbench_branches", "public.pgbench_history"}
	copyStates := []string{"in-copy", "catching-up", "wanna-sync", "do-sync"}
	for k := 1; k <= kills; k++ {
		next := start.Add(time.Duration(k) * interval)
		if time.Since(lastResync) > 30*time.Second {
			// pgbench_accounts (split copy, londiste3's hand-off) and a
			// small table (copied in the main worker's batch)
			if _, err := runCLIb(b, "londiste", leafINI, "resync", "public.pgbench_accounts", resyncTables[resyncs%len(resyncTables)]); err == nil {
				resyncs++
				lastResync = time.Now()
			}
		}
		state := "random"
		if k%2 == 0 {
			// the moment a table is seen in the copy state this kill
			// aims at, or the slot's end
			want := copyStates[(k/2)%len(copyStates)]
			state = "slot end, " + want + " not seen"
			for time.Now().Before(next) {
				if st := copyState(); strings.Contains(","+st+",", ","+want+",") {
					state = want
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		} else {
			time.Sleep(time.Until(start.Add(time.Duration(k-1)*interval + time.Duration(rng.Int64N(int64(interval))))))
		}
		_ = worker.Process.Signal(syscall.SIGKILL)
		killedIn[state]++
		if k%10 == 0 {
			cl, name := rootCl, "root"
			if k%20 == 0 {
				cl, name = leafCl, "leaf"
			}
			if err := cl.Crash(ctx); err != nil {
				b.Fatalf("crash of the %s server: %v", name, err)
			}
			crashes[name]++
			if name == "leaf" {
				leaf.Close(ctx)
				leaf = leafConn()
			}
		}
		startWorker()
		time.Sleep(time.Until(next))
	}
	chaos := time.Since(start)
	<-loadDone
	settle := time.Now()
	if out, err := runCLIb(b, "londiste", leafINI, "wait-sync", "--timeout", "10m"); err != nil {
		b.Fatalf("wait-sync after the chaos: %v\n%s", err, out)
	}
	root := pgtest.Conn(b, rootDSN)
	leaf.Close(ctx)
	leaf = leafConn()
	same := func() bool {
		for _, t := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers"} {
			q := "select count(*)::text || ' ' || coalesce(sum(hashtext(x::text)), 0)::text from " + t + " x"
			var r, l string
			if root.QueryRow(ctx, q).Scan(&r) != nil || leaf.QueryRow(ctx, q).Scan(&l) != nil || r != l {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Minute)
	for !same() {
		if time.Now().After(deadline) {
			b.Fatal("the leaf never became equal to the root after the chaos")
		}
		time.Sleep(time.Second)
	}
	converged := time.Since(settle)
	ours := cli(leafINI, "compare")
	theirs := pgtest.Londiste3(b, ctx, dir)(leafINI, "compare")
	pairs := func(out string) []string {
		var s []string
		for _, m := range regexp.MustCompile(`srcdb: (\d+ rows, checksum=-?\d+)\s*\n[^\n]*dstdb: (\d+ rows, checksum=-?\d+)`).FindAllStringSubmatch(out, -1) {
			if m[1] != m[2] {
				b.Fatalf("compare finds a difference:\n%s", out)
			}
			s = append(s, m[1])
		}
		return s
	}
	po, pt := pairs(ours), pairs(theirs)
	if len(po) != 4 || strings.Join(po, "|") != strings.Join(pt, "|") {
		b.Fatalf("compare: pgqgo and londiste3 disagree:\n%s\n%s", ours, theirs)
	}
	if left := copyConsumers(b, root); left != 0 {
		b.Fatalf("copy consumers left on the root: %d", left)
	}
	copies, quick := 0, 0
	if log, err := os.ReadFile(filepath.Join(dir, "leaf.log")); err == nil {
		copies = strings.Count(string(log), "msg=copied")
		quick = strings.Count(string(log), `msg="copied in the main worker's batch"`)
	}
	var events int64
	_ = root.QueryRow(ctx, "select count(*) from pgbench_history").Scan(&events)
	cancel()
	wg.Wait()
	b.Logf("%v of pgbench (%d transactions) with %d SIGKILLs of the leaf worker (at: %v), server crashes %v, %d resyncs, %d copies done (and %d small ones in the main worker's batch); "+
		"in sync and equal %v after the load ended; pgqgo compare and londiste3 compare agree: %v",
		chaos.Round(time.Second), events, kills, killedIn, crashes, resyncs, copies, quick, converged.Round(100*time.Millisecond), po)
	b.ReportMetric(float64(kills), "kills")
	b.ReportMetric(converged.Seconds(), "converge-s")
}
