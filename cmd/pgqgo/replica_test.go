package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// replicaSetup is a root database on the suite's server and a leaf
// database on a server of its own (a replica is another server in real
// life), both with pgbench's tables; the root's pgbench tables hold data,
// the leaf's are empty. history gets a key: londiste replicates tables
// with primary keys.
type replicaSetup struct {
	ctx               context.Context
	rootDSN, leafDSN  string
	root, leaf        *pgx.Conn
	rootINI, leafINI  string
	dir               string
	leafCluster       *pgcluster.Cluster
	tables            []string
	rootCfg, leafCfgs *pgx.ConnConfig
}

func newReplicaSetup(t *testing.T, scale int) *replicaSetup {
	t.Helper()
	ctx := context.Background()
	s := &replicaSetup{ctx: ctx, dir: t.TempDir(),
		tables: []string{"public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_history", "public.pgbench_tellers"}}
	s.rootDSN = pgtest.NewDB(t, pgtest.Empty)
	s.leafCluster = pgtest.OwnCluster(t, pgcluster.Options{})
	admin := pgtest.Conn(t, s.leafCluster.DSN("postgres"))
	pgtest.Exec(t, admin, "create database leaf")
	s.leafDSN = s.leafCluster.DSN("leaf")
	s.root, s.leaf = pgtest.Conn(t, s.rootDSN), pgtest.Conn(t, s.leafDSN)
	pgbench(t, ctx, s.rootDSN, "-i", "-q", "-s", fmt.Sprint(scale))
	pgbench(t, ctx, s.leafDSN, "-i", "-q", "-I", "dtp")
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		pgtest.Exec(t, c, "alter table pgbench_history add column hid bigserial primary key")
	}
	s.rootINI = pgtest.LondisteINI(t, s.dir, "root", s.rootDSN, "parallel_copies = 4\n")
	s.leafINI = pgtest.LondisteINI(t, s.dir, "leaf", s.leafDSN, "parallel_copies = 4\n")
	return s
}

func pgbench(t *testing.T, ctx context.Context, dsn string, args ...string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "/usr/lib/postgresql/15/bin/pgbench", append(args, "-h", cfg.Host,
		"-p", fmt.Sprint(cfg.Port), "-U", cfg.User, cfg.Database)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// dumpOnFailure logs, if the test fails, the end of the leaf worker's log,
// the consumers on the root and the leaf's local_state.
func (s *replicaSetup) dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		data, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
		if len(data) > 30000 {
			data = data[len(data)-30000:]
		}
		t.Logf("leaf worker log (end):\n%s", data)
		t.Logf("root consumers: %v", pgtest.Column[string](t, s.root, "select consumer_name || ' last_tick=' || last_tick || ' next=' || coalesce(next_tick::text, '-') from pgq.get_consumer_info('replika')"))
		t.Logf("leaf local_state: %v", pgtest.Column[string](t, s.leaf, "select consumer_name || ' ' || coalesce(last_tick_id::text, '-') || ' ' || coalesce(cur_error, '') from pgq_node.get_consumer_info('replika')"))
		t.Logf("leaf tables: %v", pgtest.Column[string](t, s.leaf, "select table_name || ' ' || coalesce(merge_state, 'NULL') || ' snapshot ' || coalesce(custom_snapshot, '-') from londiste.table_info where queue_name = 'replika' order by 1"))
		for _, tbl := range s.tables {
			q := "select count(*)::text || ' rows, hash ' || coalesce(sum(hashtext(x::text)), 0)::text from " + tbl + " x"
			root, leaf := pgtest.Scalar[string](t, s.root, q), pgtest.Scalar[string](t, s.leaf, q)
			t.Logf("%s: root %s, leaf %s", tbl, root, leaf)
			if root != leaf {
				s.logDifferingRows(t, tbl)
			}
		}
	})
}

// logDifferingRows logs up to 20 rows of tbl (keyed by its first column)
// that differ between the root and the leaf, and for each the root's
// events of that key still in the queue, with the tick that has them.
func (s *replicaSetup) logDifferingRows(t *testing.T, tbl string) {
	col := pgtest.Scalar[string](t, s.root, "select attname::text from pg_attribute where attrelid = $1::regclass and attnum = 1", tbl)
	qcol := pgx.Identifier{col}.Sanitize()
	rows := func(c *pgx.Conn) map[string]string {
		out := map[string]string{}
		for _, r := range pgtest.Column[string](t, c, "select x."+qcol+"::text || chr(9) || x::text from "+tbl+" x") {
			k, v, _ := strings.Cut(r, "\t")
			out[k] = v
		}
		return out
	}
	root, leaf := rows(s.root), rows(s.leaf)
	var keys []string
	for k, v := range root {
		if w, ok := leaf[k]; !ok || w != v {
			keys = append(keys, k)
		}
	}
	for k := range leaf {
		if _, ok := root[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	t.Logf("%s: %d rows differ", tbl, len(keys))
	events := pgtest.Scalar[string](t, s.root, "select queue_data_pfx from pgq.queue where queue_name = 'replika'")
	for _, k := range keys[:min(len(keys), 20)] {
		t.Logf("  %s = %s: root %q, leaf %q", col, k, root[k], leaf[k])
		for _, ev := range pgtest.Column[string](t, s.root, `select 'ev_id ' || ev_id || ' txid ' || ev_txid || ' tick ' ||
			       coalesce((select min(tick_id)::text from pgq.tick k, pgq.queue q
			                  where q.queue_name = 'replika' and k.tick_queue = q.queue_id
			                    and txid_visible_in_snapshot(e.ev_txid, k.tick_snapshot)), '-') || ' ' || ev_type || ' ' || ev_data
			  from `+events+` e where ev_extra1 = $1 and ev_data like $2 order by ev_id`, tbl, col+"="+k+"&%") {
			t.Logf("    %s", ev)
		}
	}
}

// startRoot makes the root and the leaf node, runs the ticker and the
// root's worker, and adds all the root's tables to the set; the
// returned function stops the ticker.
func (s *replicaSetup) startRoot(t *testing.T) (stopTicker func()) {
	t.Helper()
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	stopTicker = s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "--all")
	return stopTicker
}

// startTicker runs pgqgo ticker for the root database until the test ends.
func (s *replicaSetup) startTicker(t *testing.T) (stop func()) {
	t.Helper()
	cfg, _ := pgx.ParseConfig(s.rootDSN)
	ini := filepath.Join(s.dir, "ticker.ini")
	writeINI(t, ini, filepath.Join(s.dir, "ticker.pid"), filepath.Join(s.dir, "ticker.log"), cfg.Database)
	return s.background(t, "ticker", "-q", ini)
}

// background runs a pgqgo command in this process until the test ends or
// the returned function is called.
func (s *replicaSetup) background(t *testing.T, args ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cmd := rootCmd()
		cmd.SetArgs(args)
		cmd.SetOut(os.Stderr)
		cmd.SetErr(os.Stderr)
		if err := cmd.ExecuteContext(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("pgqgo %v: %v", args, err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func (s *replicaSetup) cli(t *testing.T, ini string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, append([]string{"londiste", ini}, args...)...)
	if err != nil {
		t.Fatalf("pgqgo londiste %s %v: %v\n%s", filepath.Base(ini), args, err, out)
	}
	return out
}

// copyConsumers counts the copy consumers registered on a node's queue.
func copyConsumers(t testing.TB, c *pgx.Conn) int64 {
	return pgtest.Scalar[int64](t, c, "select count(*) from pgq.get_consumer_info('replika') where consumer_name like '%.copy.%'")
}

// same compares count and checksum of every table on both sides.
func (s *replicaSetup) same(t *testing.T) bool {
	for _, tbl := range s.tables {
		q := "select count(*)::text || ' ' || coalesce(sum(hashtext(x::text)), 0)::text from " + tbl + " x"
		if pgtest.Scalar[string](t, s.root, q) != pgtest.Scalar[string](t, s.leaf, q) {
			return false
		}
	}
	return true
}

// compareBoth runs pgqgo's and londiste3's compare on the leaf: every
// table equal, and the two tools give the same numbers.
func (s *replicaSetup) compareBoth(t *testing.T, londiste func(ini string, args ...string) string) {
	t.Helper()
	ours := s.cli(t, s.leafINI, "compare")
	if strings.Contains(ours, "do not match") || strings.Count(ours, "srcdb:") != len(s.tables) {
		t.Fatalf("pgqgo compare:\n%s", ours)
	}
	theirs := londiste(s.leafINI, "compare")
	tm := regexp.MustCompile(`srcdb: (\d+ rows, checksum=-?\d+)\s*\n[^\n]*dstdb: (\d+ rows, checksum=-?\d+)`).FindAllStringSubmatch(theirs, -1)
	if len(tm) != len(s.tables) {
		t.Fatalf("londiste3 compare:\n%s", theirs)
	}
	for _, p := range tm {
		if p[1] != p[2] || !strings.Contains(ours, p[1]) {
			t.Fatalf("compare: pgqgo and londiste3 disagree:\n%s\n%s", ours, theirs)
		}
	}
}

// TestLondisteRootToLeaf: pgqgo londiste alone (no Skytools code, no
// Skytools SQL) replicates pgbench from a root on one server to a leaf on
// another: create-root, create-leaf, add-table on both, the copies of four
// tables at once while pgbench writes, a sequence, an EXECUTE that adds a
// column followed by writes that use it, then compare (pgqgo's and
// londiste3's, which must agree), status, tables, members, node-info.
func TestLondisteRootToLeaf(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.dumpOnFailure(t)
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		pgtest.Exec(t, c, "create sequence s")
	}
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		for _, sch := range []string{"pgq", "pgq_node", "londiste"} {
			if pgtest.Scalar[int64](t, c, "select count(*) from pg_namespace where nspname = $1", sch) != 1 {
				t.Fatalf("create-* did not install %s", sch)
			}
		}
		if n := pgtest.Scalar[int64](t, c, "select count(*) from pg_extension where extname in ('pgq', 'pgq_node', 'londiste')"); n != 0 {
			t.Fatalf("%d Skytools extensions installed", n)
		}
	}
	s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "--all")
	s.cli(t, s.rootINI, "add-seq", "public.s")

	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "200", "-T", "8") }()
	start := time.Now()
	s.cli(t, s.leafINI, "add-table", "--all")
	s.cli(t, s.leafINI, "add-seq", "--all")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "90s")
	t.Logf("4 tables (100k-row accounts) copied and in sync under load in %v", time.Since(start).Round(time.Millisecond))
	// the three small tables were copied in the main worker's batch (no
	// copy consumer), pgbench_accounts (13 MB) by a copy goroutine
	log, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
	for _, want := range []string{`msg="copied in the main worker's batch" .*table=public.pgbench_branches`,
		`msg="copied in the main worker's batch" .*table=public.pgbench_tellers`,
		`msg="copied in the main worker's batch" .*table=public.pgbench_history`,
		`msg=copied .*table=public.pgbench_accounts rows=100000 `} {
		if !regexp.MustCompile(want).Match(log) {
			t.Errorf("worker's log: no %q", want)
		}
	}

	// EXECUTE: a column added on the root and used at once
	ddl := filepath.Join(s.dir, "add_note.sql")
	if err := os.WriteFile(ddl, []byte("--*-- Local-Table: public.pgbench_history\nalter table @public.pgbench_history@ add column note text;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cli(t, s.rootINI, "execute", ddl)
	pgtest.Exec(t, s.root, "insert into pgbench_history (tid, bid, aid, delta, mtime, note) values (1, 1, 1, 1, now(), 'after the column')")
	pgtest.Exec(t, s.root, "select nextval('s') from generate_series(1, 100)")
	out := <-loadDone
	t.Logf("pgbench: %s", regexp.MustCompile(`tps = [\d.]+`).FindString(out))
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from pgbench_history where note = 'after the column'"); n != 1 {
		t.Fatalf("row written with the new column: %d on the leaf", n)
	}
	// the same file again is skipped
	s.cli(t, s.rootINI, "execute", ddl)

	cmp := s.cli(t, s.leafINI, "compare")
	m := regexp.MustCompile(`(?m)^(\S+): srcdb: (.*)\n\S+: dstdb: (.*)$`).FindAllStringSubmatch(cmp, -1)
	if len(m) != len(s.tables) {
		t.Fatalf("compare: %d tables, want %d:\n%s", len(m), len(s.tables), cmp)
	}
	ours := map[string]string{}
	for _, p := range m {
		if p[2] != p[3] {
			t.Fatalf("compare differs:\n%s", cmp)
		}
		ours[p[1]] = p[2]
	}
	// londiste3's compare on the same node agrees, number for number
	londiste := pgtest.Londiste3(t, s.ctx, s.dir)
	theirs := londiste(s.leafINI, "compare")
	tm := regexp.MustCompile(`srcdb: (\d+ rows, checksum=-?\d+)\s*\n[^\n]*dstdb: (\d+ rows, checksum=-?\d+)`).FindAllStringSubmatch(theirs, -1)
	if len(tm) != len(s.tables) {
		t.Fatalf("londiste3 compare: %d tables:\n%s", len(tm), theirs)
	}
	for _, p := range tm {
		found := false
		for _, v := range ours {
			found = found || v == p[1]
		}
		if p[1] != p[2] || !found {
			t.Fatalf("londiste3 compare disagrees:\nours:\n%s\ntheirs:\n%s", cmp, theirs)
		}
	}
	pgtest.Eventually(t, 30*time.Second, "the sequence ahead on the leaf", func() bool {
		return pgtest.Scalar[int64](t, s.leaf, "select last_value from s") >= pgtest.Scalar[int64](t, s.root, "select last_value from s")
	})
	st := s.cli(t, s.leafINI, "status")
	for _, want := range []string{"Queue: replika   Local node: leaf", "\nroot (root)\n", "+--: leaf (leaf)", "Tables: 4/0/0"} {
		if !strings.Contains(st, want) {
			t.Errorf("status: %q missing:\n%s", want, st)
		}
	}
	if _, err := runCLI(t, "londiste", s.leafINI, "status", "--check"); err != nil {
		t.Errorf("status --check: %v", err)
	}
	if out := s.cli(t, s.leafINI, "tables"); len(regexp.MustCompile(`pgbench_\w+\s+ok`).FindAllString(out, -1)) != 4 {
		t.Errorf("tables:\n%s", out)
	}
	if out := s.cli(t, s.leafINI, "members"); !strings.Contains(out, "root") || !strings.Contains(out, "leaf") {
		t.Errorf("members:\n%s", out)
	}
	if out := s.cli(t, s.leafINI, "node-info"); !strings.Contains(out, "Node: leaf  Type: leaf  Queue: replika") || !strings.Contains(out, "Status: OK") {
		t.Errorf("node-info:\n%s", out)
	}
	// londiste3's own tools read the same state
	for cmd, want := range map[string]string{"status": "leaf (leaf)", "tables": "public.pgbench_history", "members": "root"} {
		if out := londiste(s.leafINI, cmd); !strings.Contains(out, want) {
			t.Errorf("londiste3 %s: %q missing:\n%s", cmd, want, out)
		}
	}
	if n := copyConsumers(t, s.root); n != 0 {
		t.Errorf("%d copy consumers left on the root", n)
	}
	// the leaf's tables refuse local writes (the deny trigger), with the
	// trigger arguments londiste3 gives them
	if _, err := s.leaf.Exec(s.ctx, "update pgbench_branches set bbalance = 0 where bid = 1"); err == nil {
		t.Error("a local write on a leaf table was accepted")
	}
	if def := pgtest.Scalar[string](t, s.leaf, "select pg_get_triggerdef(oid) from pg_trigger where tgname = '_londiste_replika' and tgrelid = 'pgbench_branches'::regclass"); !strings.Contains(def, "pgq.logutriga('replika', 'deny')") {
		t.Errorf("leaf trigger: %s", def)
	}
}

// startWorkerProcess runs `pgqgo londiste INI worker` as a process of its
// own (this test binary doubling as pgqgo), to be killed with SIGKILL.
func startWorkerProcess(t *testing.T, ini string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "londiste", ini, "worker", "-q")
	cmd.Env = append(os.Environ(), "PGQGO_TEST_RUN_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait() //nolint:errcheck // killed on purpose
	return cmd
}

// TestLondisteWorkerKilled: the leaf's worker is killed with SIGKILL again
// and again while it copies pgbench's tables and applies a pgbench load,
// and the leaf's server is crashed once; restarted each time with no
// manual step, it ends with every table equal to the root's and no copy
// consumer left behind.
func TestLondisteWorkerKilled(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.startRoot(t)
	// the worker logs to its file: a slow copy makes kills land in it
	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "150", "-T", "15") }()
	worker := startWorkerProcess(t, s.leafINI)
	t.Cleanup(func() { _ = worker.Process.Kill() })
	s.cli(t, s.leafINI, "add-table", "--all")
	kills, crashed := 0, false
	states := map[string]bool{}
	deadline := time.Now().Add(14 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		time.Sleep(time.Duration(150+(i*137)%700) * time.Millisecond)
		for _, st := range pgtest.Column[string](t, s.leaf, "select coalesce(merge_state, 'NULL') from londiste.get_table_list('replika')") {
			states[strings.SplitN(st, ":", 2)[0]] = true
		}
		_ = worker.Process.Kill()
		kills++
		if !crashed && kills == 10 {
			if err := s.leafCluster.Crash(s.ctx); err != nil {
				t.Fatal(err)
			}
			s.leaf = pgtest.Conn(t, s.leafDSN)
			crashed = true
		}
		worker = startWorkerProcess(t, s.leafINI)
	}
	<-loadDone
	s.dumpOnFailure(t)
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	cmp := s.cli(t, s.leafINI, "compare")
	if strings.Contains(cmp, "do not match") {
		t.Fatalf("compare:\n%s", cmp)
	}
	pgtest.Eventually(t, 10*time.Second, "no copy consumer left on the root", func() bool {
		return copyConsumers(t, s.root) == 0
	})
	t.Logf("%d SIGKILLs of the leaf worker and a crash of the leaf's server; table states seen: %v; leaf equal", kills, states)
}

// straddlingHandOff builds, on a synced leaf with its worker, ticker and
// root worker stopped, a hand-off whose copy batch starts before the main
// worker's: both consumers stood at p, the main worker then took (p, m] and
// (m, T] while the copy, lagging, took one batch over (p, T] (pgqgo merges
// a lagging consumer's ticks), and the main worker set do-sync:T. The
// table's events in (p, m] are in neither the main worker's batch (m, T]
// nor anything the main worker applied (the table was not ok). aid 1-10
// are updated in (p, m], 11-20 in (m, T], 21-30 after T.
func straddlingHandOff(t *testing.T) *replicaSetup {
	t.Helper()
	s := newReplicaSetup(t, 1)
	s.dumpOnFailure(t)
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	stopTicker := s.startTicker(t)
	stopRoot := s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "--all")
	worker := startWorkerProcess(t, s.leafINI)
	t.Cleanup(func() { _ = worker.Process.Kill() })
	s.cli(t, s.leafINI, "add-table", "--all")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	stopTicker()
	stopRoot()
	tick := func() int64 {
		pgtest.Exec(t, s.root, "select pgq.force_tick('replika')")
		return pgtest.Scalar[int64](t, s.root, "select pgq.ticker('replika')")
	}
	// a tick of the low-latency ticker (force_tick's would not be merged)
	smallTick := func() int64 {
		return pgtest.Scalar[int64](t, s.root, "select tick_id from pgq.pgqgo_ticker('0', '0') where queue_name = 'replika'")
	}
	main := pgtest.Scalar[string](t, s.leaf, "select worker_name from pgq_node.get_node_info('replika')")
	p := tick()
	pgtest.Eventually(t, 30*time.Second, "the leaf worker at the last tick", func() bool {
		return pgtest.Scalar[int64](t, s.root, "select last_tick from pgq.get_consumer_info('replika', $1)", main) == p
	})
	_ = worker.Process.Kill() // idle at p: its sessions hold nothing the steps below wait for

	pgtest.Exec(t, s.root, "update pgbench_accounts set abalance = 111 where aid between 1 and 10")
	m := smallTick()
	pgtest.Exec(t, s.root, "update pgbench_accounts set abalance = 222 where aid between 11 and 20")
	T := smallTick()
	// the copy consumer, registered at p, opens one batch over (p, T]
	copyName := main + ".copy.public.pgbench_accounts"
	pgtest.Exec(t, s.root, "select pgq.register_consumer_at('replika', $1, $2)", copyName, p)
	var prev, cur int64
	if err := s.root.QueryRow(s.ctx, "select prev_tick_id, cur_tick_id from pgq.next_batch_custom('replika', $1, null, null, null)", copyName).Scan(&prev, &cur); err != nil {
		t.Fatal(err)
	}
	if prev != p || cur != T {
		t.Fatalf("the copy's batch is (%d, %d], want (%d, %d]: the set-up did not make the straddling batch", prev, cur, p, T)
	}
	// the main worker went on to m, skipping the table (not ok), and set
	// do-sync:T at its batch (m, T]
	pgtest.Exec(t, s.root, "select pgq.register_consumer_at('replika', $1, $2)", main, m)
	pgtest.Exec(t, s.leaf, "select * from pgq_node.set_consumer_completed('replika', $1, $2)", main, m)
	pgtest.Exec(t, s.leaf, "select * from pgq_node.register_consumer('replika', $1, 'root', $2)", copyName, p)
	pgtest.Exec(t, s.leaf, "select * from londiste.local_set_table_state('replika', 'public.pgbench_accounts', null, $1)", fmt.Sprintf("do-sync:%d", T))
	pgtest.Exec(t, s.root, "update pgbench_accounts set abalance = 333 where aid between 21 and 30")
	tick()
	return s
}

// restartAndSync starts the root's ticker and worker and the leaf's worker again
// (after straddlingHandOff), runs during (when not nil), and waits for the
// leaf to be in sync and equal.
func (s *replicaSetup) restartAndSync(t *testing.T, during func()) {
	t.Helper()
	s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	worker := startWorkerProcess(t, s.leafINI)
	t.Cleanup(func() { _ = worker.Process.Kill() })
	if during != nil {
		during()
	}
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	pgtest.Eventually(t, 30*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	if got := pgtest.Column[string](t, s.leaf, "select abalance::text from pgbench_accounts where aid in (1, 11, 21) order by aid"); !slices.Equal(got, []string{"111", "222", "333"}) {
		t.Fatalf("abalance of aid 1, 11, 21 on the leaf: %v", got)
	}
	pgtest.Eventually(t, 10*time.Second, "no copy consumer left on the root", func() bool {
		return copyConsumers(t, s.root) == 0
	})
}

// TestLondisteHandOffStraddlingBatch: the copy must apply its whole last
// batch and hand the table over with the snapshot of T (straddlingHandOff);
// before that fix, aid 1-10 kept their old values.
func TestLondisteHandOffStraddlingBatch(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := straddlingHandOff(t)
	s.restartAndSync(t, nil)
}

// TestLondisteHandOffLosesToResync: a resync committed while the copy
// applies its do-sync batch wins over the hand-off in that batch's commit:
// the table is copied again instead of being made ok. The copy is held on
// a lock of the leaf's table while the resync commits.
func TestLondisteHandOffLosesToResync(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := straddlingHandOff(t)
	lock := pgtest.Conn(t, s.leafDSN)
	pgtest.Exec(t, lock, "begin")
	pgtest.Exec(t, lock, "lock table pgbench_accounts in access exclusive mode")
	s.restartAndSync(t, func() {
		pgtest.Eventually(t, 30*time.Second, "the copy waiting for the lock", func() bool {
			return pgtest.Scalar[int64](t, s.leaf, "select count(*) from pg_locks where relation = 'pgbench_accounts'::regclass and not granted") > 0
		})
		s.cli(t, s.leafINI, "resync", "public.pgbench_accounts")
		pgtest.Exec(t, lock, "rollback")
	})
	log, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
	if !strings.Contains(string(log), "table's state changed during the hand-off") {
		t.Errorf("no hand-off given up in the worker's log")
	}
	if n := len(regexp.MustCompile(`msg=copied .*table=public.pgbench_accounts `).FindAll(log, -1)); n != 2 {
		t.Errorf("pgbench_accounts copied %d times, want 2 (the first sync and the resync)", n)
	}
}

// TestLondisteCatchUpKilled: a backlog of 250,000 row events in big
// transactions (so that a flush is usually in flight while the next events
// are read) is applied by a leaf worker killed with SIGKILL five times at
// random moments and whose leaf server is crashed once in between; each
// restart continues with no manual step and the leaf ends equal.
func TestLondisteCatchUpKilled(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.startRoot(t)
	worker := startWorkerProcess(t, s.leafINI)
	t.Cleanup(func() { _ = worker.Process.Kill() })
	s.cli(t, s.leafINI, "add-table", "--all")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	_ = worker.Process.Kill()
	pgtest.Exec(t, s.root, "update pgbench_accounts set abalance = abalance + 1")
	pgtest.Exec(t, s.root, "insert into pgbench_history (tid, bid, aid, delta, mtime) select 1 + g % 10, 1, g, g % 100, now() from generate_series(1, 50000) g")
	pgtest.Exec(t, s.root, "update pgbench_accounts set abalance = abalance * 2, filler = 'x' || aid where aid % 3 <> 0")
	s.dumpOnFailure(t)
	for i := range 6 {
		worker = startWorkerProcess(t, s.leafINI)
		if i == 5 {
			break
		}
		time.Sleep(time.Duration(400+(i*371)%1500) * time.Millisecond)
		_ = worker.Process.Kill()
		if i == 2 {
			if err := s.leafCluster.Crash(s.ctx); err != nil {
				t.Fatal(err)
			}
			s.leaf = pgtest.Conn(t, s.leafDSN)
		}
	}
	pgtest.Eventually(t, 90*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	if cmp := s.cli(t, s.leafINI, "compare"); strings.Contains(cmp, "do not match") {
		t.Fatalf("compare:\n%s", cmp)
	}
	// the backlog went in big batches (flushed while reading) in the end
	if log, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log")); !strings.Contains(string(log), `msg="big batch applied"`) {
		t.Errorf("no big batch in the leaf worker's log:\n%s", log)
	}
}

// oneTableLeaf is a replicaSetup replicating one table, a, to a leaf
// whose worker runs (in this process) until stop.
func oneTableLeaf(t *testing.T) (s *replicaSetup, stop func()) {
	s = newReplicaSetup(t, 1)
	s.tables = []string{"public.a"}
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		pgtest.Exec(t, c, "create table a (id int primary key, v text)")
	}
	s.startRoot(t)
	stop = s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.leafINI, "add-table", "--all")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	s.dumpOnFailure(t)
	return s, stop
}

// tickWith runs sql on the root and forces a tick after it; it returns
// that tick once the ticker has made it.
func (s *replicaSetup) tickWith(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	last := func() int64 {
		return pgtest.Scalar[int64](t, s.root, "select last_tick_id from pgq.get_queue_info('replika')")
	}
	before := last()
	pgtest.Exec(t, s.root, sql, args...)
	pgtest.Exec(t, s.root, "select pgq.force_tick('replika')")
	pgtest.Eventually(t, 10*time.Second, "a tick", func() bool { return last() > before })
	return last()
}

// TestLondisteFirstBatchSpansTheBacklog: a leaf worker started behind a
// backlog of several seconds of ticks opens its first batch over most of
// it, as it does every later batch while it lags, instead of one tick
// first (it learns its lag from the provider before that batch).
func TestLondisteFirstBatchSpansTheBacklog(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s, stop := oneTableLeaf(t)
	// the worker stopped at a fresh tick: a batch's time span counts from
	// its first tick, and one after a quiet spell would be long enough alone
	// and finished there on the root: a finish cut off by the stop leaves
	// the root's position a tick behind; the first batch from there then
	// moves it forward (catchUpProvider) and the next opens on any tick
	fresh := s.tickWith(t, "insert into a values (0, 'fresh')")
	pgtest.Eventually(t, 30*time.Second, "the worker at the fresh tick", func() bool {
		return workerTick(t, s.leaf) >= fresh &&
			pgtest.Scalar[int64](t, s.root, "select last_tick from pgq.get_consumer_info('replika', 'l_leaf')") >= fresh
	})
	stop()
	from := workerTick(t, s.leaf)

	// ten ticks of 1,500 events over ~3 s: more than the 2 s of backlog
	// from which batches span several ticks
	var last int64
	for i := range 10 {
		last = s.tickWith(t, "insert into a select g, 'v' || g from generate_series($1::int * 1500 + 1, ($1::int + 1) * 1500) g", i)
		time.Sleep(300 * time.Millisecond)
	}
	if err := os.Truncate(filepath.Join(s.dir, "leaf.log"), 0); err != nil { // the first run's
		t.Fatal(err)
	}
	s.background(t, "londiste", s.leafINI, "worker", "-q")
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })

	log, err := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
	if err != nil {
		t.Fatal(err)
	}
	// the first batch of 10,000 events or more is logged with its ticks
	m := regexp.MustCompile(`msg="big batch applied".* ticks=(\d+)\.\.(\d+)`).FindSubmatch(log)
	if m == nil {
		t.Fatalf("no big batch in the leaf worker's log (%d ticks behind, from tick %d):\n%s", last-from, from, log)
	}
	if string(m[1]) != strconv.FormatInt(from, 10) {
		t.Errorf("the first big batch is ticks %s..%s: it does not start at the worker's position %d (a first batch of its own before it)", m[1], m[2], from)
	}
}

// TestLondisteLostPositionNoStall: the provider has lost the leaf
// worker's position (set back to a tick seconds older than the one the
// leaf has completed, as after a crash of the provider's server); the
// restarted worker passes what it has applied and applies what is left at
// once, not at the provider's next idle tick (batches sized for the span
// from the old position would wait for ticks that do not come).
func TestLondisteLostPositionNoStall(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s, stop := oneTableLeaf(t)
	old := s.tickWith(t, "insert into a values (0, 'old')")
	pgtest.Eventually(t, 30*time.Second, "the worker at the old tick", func() bool { return workerTick(t, s.leaf) >= old })
	time.Sleep(3 * time.Second)
	now := s.tickWith(t, "insert into a values (1, 'now')")
	pgtest.Eventually(t, 30*time.Second, "the worker at the new tick", func() bool { return workerTick(t, s.leaf) >= now })
	stop()
	last := s.tickWith(t, "insert into a select g, 'left' from generate_series(2, 1000) g")
	pgtest.Exec(t, s.root, "select pgq.register_consumer_at('replika', 'l_leaf', $1)", old)

	s.background(t, "londiste", s.leafINI, "worker", "-q")
	// well within the 60 s of the provider's idle ticks
	pgtest.Eventually(t, 15*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	if got := workerTick(t, s.leaf); got < last {
		t.Errorf("the leaf completed tick %d, want %d", got, last)
	}
}

// TestLondiste3LeafTakenOver: a leaf run by Skytools' londiste3 (on
// pgqgo's schemas) is killed with SIGKILL, main worker and copy processes,
// while it copies pgbench's tables under load; pgqgo londiste is started on
// the same ini and finishes every table from the state it finds, without
// copying an ok table again and without leaving a copy consumer behind;
// then the reverse: pgqgo stopped, londiste3's worker started again, and it
// carries on. Both tools' compare agree at the end.
func TestLondiste3LeafTakenOver(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 5)
	for _, dsn := range []string{s.rootDSN, s.leafDSN} {
		if out, err := runCLI(t, "install", "--db", dsn, "--with", "pgq_node,londiste"); err != nil {
			t.Fatalf("install: %v\n%s", err, out)
		}
	}
	pgtest.Exec(t, s.root, "create table extra (id int primary key, v text)")
	pgtest.Exec(t, s.leaf, "create table extra (id int primary key, v text)")
	pgtest.Exec(t, s.root, "insert into extra select g, md5(g::text) from generate_series(1, 1000) g")
	s.tables = append(s.tables, "public.extra")
	londiste := pgtest.Londiste3(t, s.ctx, s.dir)
	londiste(s.rootINI, "create-root", "root", s.rootDSN)
	londiste(s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	s.startTicker(t)
	londiste(s.rootINI, "worker", "-d")
	t.Cleanup(func() { exec.Command("londiste", s.rootINI, "-s").Run() })
	londiste(s.rootINI, "add-table", "--all")
	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "150", "-T", "25") }()

	// londiste3 copies the pgbench tables, one at a time (parallel_copies
	// is 4 in the ini, but its copy processes still take seconds each)
	londiste(s.leafINI, "worker", "-d")
	londiste(s.leafINI, "add-table", "public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_history", "public.pgbench_tellers")
	killLeaf := func() {
		_ = exec.Command("pkill", "-9", "-f", "londiste "+s.leafINI).Run()
		pgtest.Eventually(t, 10*time.Second, "londiste3's leaf processes gone", func() bool {
			return exec.Command("pgrep", "-f", "londiste "+s.leafINI).Run() != nil
		})
	}
	// kill once a table is ok and another half-way (or, if londiste3 is
	// quicker than that, a table half-way)
	halfway := func(needOK bool) bool {
		states := pgtest.Column[string](t, s.leaf, "select coalesce(merge_state, 'NULL') from londiste.get_table_list('replika') where local")
		ok, half := false, false
		for _, st := range states {
			ok = ok || st == "ok"
			half = half || (st != "NULL" && st != "ok")
		}
		return half && (ok || !needOK)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !halfway(true) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	pgtest.Eventually(t, 30*time.Second, "a table half-way through its copy", func() bool { return halfway(false) })
	killLeaf()
	before := pgtest.Column[string](t, s.leaf, "select table_name || '=' || coalesce(merge_state, 'NULL') from londiste.get_table_list('replika') where local order by 1")
	okBefore := pgtest.Column[string](t, s.leaf, "select table_name from londiste.get_table_list('replika') where local and merge_state = 'ok'")
	// an ok table must not be copied again: a marker row only the leaf has
	// would be wiped by a copy (and stays, since the table is ok)
	for _, tbl := range okBefore {
		if tbl == "public.pgbench_branches" {
			pgtest.Exec(t, s.leaf, "set session_replication_role = replica; insert into pgbench_branches values (-1, 0, 'leaf only'); reset session_replication_role")
		}
	}
	// a fifth table added by pgqgo while nothing runs: state NULL
	s.cli(t, s.leafINI, "add-table", "public.extra")
	t.Logf("londiste3 killed with tables %v", before)

	stopWorker := s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "90s")
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from pgbench_branches where bid = -1"); slices.Contains(okBefore, "public.pgbench_branches") && n != 1 {
		t.Errorf("pgbench_branches was ok when pgqgo took over, but was copied again")
	}
	pgtest.Exec(t, s.leaf, "set session_replication_role = replica; delete from pgbench_branches where bid = -1; reset session_replication_role")
	pgtest.Eventually(t, 30*time.Second, "no copy consumer left on the root", func() bool {
		return copyConsumers(t, s.root) == 0
	})
	t.Logf("pgqgo finished the copies: %v", pgtest.Column[string](t, s.leaf, "select table_name || '=' || merge_state from londiste.get_table_list('replika') where local order by 1"))
	<-loadDone
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	compareBoth := func() { s.compareBoth(t, londiste) }
	compareBoth()

	// and back: londiste3's worker continues from pgqgo's position
	stopWorker()
	londiste(s.leafINI, "worker", "-d")
	t.Cleanup(func() { exec.Command("londiste", s.leafINI, "-s").Run() })
	pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "150", "-T", "4")
	pgtest.Eventually(t, 60*time.Second, "londiste3 applying again: the leaf equal to the root", func() bool { return s.same(t) })
	compareBoth()
}

// TestLondisteApplyEdgeCases: one big batch of inserts, updates and
// deletes of the same keys (insert then delete, delete then insert again,
// several updates), awkward values (tabs, newlines, backslashes, NULLs,
// quotes, unicode, bytea, json), a composite key, a table with a second
// unique index (applied statement by statement), a sqltriga table
// (partial rows), and two tables that only get new rows (COPY'd into the
// table itself, unless it has rules, which only INSERT applies: the leaf's
// ALWAYS rule on hr must log every row), all applied by the leaf in one
// go; every table ends equal.
func TestLondisteApplyEdgeCases(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.tables = []string{"public.t", "public.u", "public.w", "public.q", "public.h", "public.hr"}
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		pgtest.Exec(t, c, `create table t (id int primary key, v text, n numeric, b bytea, j jsonb);
			create table u (a int, b text, x int, primary key (a, b));
			create table w (id int primary key, code text unique, x int);
			create table q (id int primary key, v text, x int);
			create table h (id bigserial primary key, note text, at timestamptz default now());
			create table hr (id int primary key, note text)`)
	}
	pgtest.Exec(t, s.leaf, `create table hr_log (id int);
		create rule hr_logged as on insert to hr do also insert into hr_log values (new.id);
		alter table hr enable always rule hr_logged`)
	pgtest.Exec(t, s.root, "insert into t select g, 'start ' || g, g, null, null from generate_series(1, 300) g")
	pgtest.Exec(t, s.root, "insert into w select g, 'c' || g, g from generate_series(1, 100) g")
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "public.t", "public.u", "public.w", "public.h", "public.hr")
	s.cli(t, s.rootINI, "add-table", "public.q", "--trigger-flags=AIUDQ")
	// a consumer that keeps a tick below the leaf's position for --rewind
	// (rotation and thinning delete the ticks no consumer stands on)
	pgtest.Exec(t, s.root, "select pgq.register_consumer('replika', 'pin')")
	pin := pgtest.Scalar[int64](t, s.root, "select last_tick from pgq.get_consumer_info('replika', 'pin')")
	stop := s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.leafINI, "add-table", "--all")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	provPos := func() int64 {
		return pgtest.Scalar[int64](t, s.root, "select last_tick from pgq.get_consumer_info('replika', 'l_leaf')")
	}
	pgtest.Exec(t, s.root, "select pgq.force_tick('replika')")
	pgtest.Eventually(t, 30*time.Second, "the leaf past the pinned tick", func() bool { return provPos() > pin })
	stop()
	// worker --reset and --rewind: each side's position put right from the other's
	leafPos := func() int64 {
		return pgtest.Scalar[int64](t, s.leaf, "select completed_tick from pgq_node.get_consumer_state('replika', 'l_leaf')")
	}
	pos := provPos()
	pgtest.Exec(t, s.leaf, "select * from pgq_node.set_consumer_completed('replika', 'l_leaf', $1)", pos-1)
	s.cli(t, s.leafINI, "worker", "--reset")
	if leafPos() != pos {
		t.Fatalf("worker --reset: completed tick %d, want the provider's %d", leafPos(), pos)
	}
	earlier := pgtest.Scalar[int64](t, s.root, "select max(tick_id) from pgq.tick where tick_id < $1", pos)
	pgtest.Exec(t, s.root, "select pgq.register_consumer_at('replika', 'l_leaf', $1)", earlier)
	s.cli(t, s.leafINI, "worker", "--rewind")
	if provPos() != pos {
		t.Fatalf("worker --rewind: provider position %d, want the leaf's %d", provPos(), pos)
	}
	pgtest.Exec(t, s.root, "select pgq.unregister_consumer('replika', 'pin')")
	pgtest.Exec(t, s.root, `begin;
		-- t: updated twice, deleted, deleted and inserted again, inserted and deleted
		update t set v = 'tab	and
newline \ backslash ''quote'' ü', n = n * 1.5 where id % 3 = 0;
		update t set v = null, b = '\x00ff5c'::bytea, j = '{"a": [1, "two", null]}' where id % 3 = 0;
		delete from t where id % 5 = 0;
		insert into t select g, 'again ' || g, null, null, '"s"' from generate_series(5, 300, 10) g;
		insert into t select g, 'short-lived', 1, null, null from generate_series(1001, 1100) g;
		delete from t where id between 1001 and 1050;
		update t set v = E'\\N is not null' where id = 7;
		-- u: composite key
		insert into u select g % 10, 'k' || g, g from generate_series(1, 200) g;
		update u set x = -x where a = 3;
		delete from u where a = 4;
		-- w: a swap through a second unique index (order matters)
		update w set code = 'tmp' where id = 1;
		update w set code = 'c1' where id = 2 and false;
		update w set code = 'c1-new' where id = 1;
		update w set code = 'c1' where id = 2;
		insert into w select g, 'c' || g, g from generate_series(101, 300) g;
		-- q: sqltriga events (partial rows)
		insert into q select g, 'q' || g, g from generate_series(1, 200) g;
		update q set x = x + 1 where id % 2 = 0;
		delete from q where id % 7 = 0;
		-- h, hr: new rows only
		insert into h (note) select 'h' || g from generate_series(1, 500) g;
		insert into h (note) values (E'tab\there'), (null);
		insert into hr select g, 'r' || g from generate_series(1, 300) g;
		commit`)
	pgtest.Exec(t, s.root, "update t set v = 'later' where id = 1")
	// this run of the worker serves its metrics: both apply paths were taken
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	metricsINI := pgtest.LondisteINI(t, s.dir, "leaf", s.leafDSN, "metrics_addr = "+addr+"\n")
	s.background(t, "londiste", metricsINI, "worker", "-q")
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(distinct id) from hr_log"); n != 300 {
		t.Fatalf("the leaf's ALWAYS rule on hr logged %d rows, want 300 (the rows went around it)", n)
	}
	if out := s.cli(t, s.leafINI, "compare"); strings.Contains(out, "do not match") {
		t.Fatalf("compare:\n%s", out)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, path := range []string{"bulk", "statement"} {
		m := regexp.MustCompile(`pgqgo_londiste_row_events_applied_total\{path="` + path + `"\} (\d+)`).FindStringSubmatch(string(body))
		if m == nil || m[1] == "0" {
			t.Errorf("no row events applied through the %s path:\n%s", path, body)
		}
	}
}

// TestLondisteApplyWhileReading: the leaf worker applies a full buffer
// (20,000 events) in a goroutine while it reads the next events; whatever
// else uses the leaf transaction waits for that flush. One batch holds, in
// this order: 20,000 inserts into a, so that the TRUNCATE of b right after
// them comes while they are applied, 20,000 inserts into b, an EXECUTE
// adding a column to a, and 20,000 updates of a that set it, one of them
// breaking a check the leaf alone has (the batch's end waits for that
// flush). The failing flush's error, and no other, reaches the worker
// (cur_error, its log), nothing of the batch stays on the leaf, and once
// the check is dropped the leaf ends equal to the root.
func TestLondisteApplyWhileReading(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.tables = []string{"public.a", "public.b"}
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		pgtest.Exec(t, c, "create table a (id int primary key, v text); create table b (id int primary key, v text)")
	}
	pgtest.Exec(t, s.root, "insert into b select g, 'old' from generate_series(1, 100) g")
	stopTicker := s.startRoot(t)
	stop := s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.leafINI, "add-table", "--all")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	stop()
	stopTicker() // no tick until the whole backlog is written: one batch

	pgtest.Exec(t, s.leaf, "alter table a add constraint not_poison check (v <> 'poison')")
	pgtest.Exec(t, s.root, `begin;
		insert into a select g, 'a' || g from generate_series(1, 20000) g;
		truncate b;
		insert into b select g, 'b' || g from generate_series(1, 20000) g;
		commit`)
	ddl := filepath.Join(s.dir, "add_n.sql")
	if err := os.WriteFile(ddl, []byte("alter table public.a add column n int;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cli(t, s.rootINI, "execute", ddl)
	pgtest.Exec(t, s.root, "update a set n = id % 7, v = case when id = 100 then 'poison' else v end")
	s.startTicker(t)
	if err := os.Truncate(filepath.Join(s.dir, "leaf.log"), 0); err != nil { // the first run's stop
		t.Fatal(err)
	}
	s.background(t, "londiste", s.leafINI, "worker", "-q")

	curError := func() string {
		return pgtest.Scalar[string](t, s.leaf, "select coalesce(cur_error, '') from pgq_node.get_consumer_info('replika') where consumer_name = 'l_leaf'")
	}
	pgtest.Eventually(t, 60*time.Second, "the failed flush's error in cur_error", func() bool { return strings.Contains(curError(), "not_poison") })
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from a"); n != 0 {
		t.Fatalf("a failed batch left %d rows in a on the leaf", n)
	}
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from b where v = 'old'"); n != 100 {
		t.Fatalf("a failed batch's TRUNCATE stayed on the leaf: %d of b's 100 old rows left", n)
	}
	pgtest.Exec(t, s.leaf, "alter table a drop constraint not_poison")
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from a where n is not null"); n != 20000 {
		t.Fatalf("%d rows of a have the new column set on the leaf, want 20000", n)
	}
	pgtest.Eventually(t, 30*time.Second, "cur_error cleared", func() bool { return curError() == "" })
	// a flush that ran into another use of the connection would fail the
	// batch too, and be hidden by the retry: only the check may have failed
	log, err := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			failed++
			if !strings.Contains(line, "not_poison") {
				t.Errorf("the leaf worker logged another failure: %s", line)
			}
		}
	}
	if failed == 0 {
		t.Errorf("the poisoned batch's failure is not in the leaf worker's log:\n%s", log)
	}
}

// TestLondisteRepair: 1,000 differences injected on the leaf (rows missing,
// extra and changed, the first and last keys of the order among them,
// NULLs both ways), in an integer-keyed table and a text-keyed one; repair
// writes them as fix.TABLE.sql, repair --apply fixes them, compare is then
// equal, and a second repair finds nothing.
func TestLondisteRepair(t *testing.T) { // not parallel: it changes the working directory
	s := newReplicaSetup(t, 1)
	s.tables = []string{"public.pgbench_accounts", "public.words"}
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		pgtest.Exec(t, c, "create table words (w text primary key, n int, note text)")
	}
	pgtest.Exec(t, s.root, "insert into words select 'w' || g || chr(64 + g % 58), g, case when g % 4 = 0 then null else 'n' || g end from generate_series(1, 2000) g")
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "public.pgbench_accounts", "public.words")
	s.cli(t, s.leafINI, "add-table", "public.pgbench_accounts", "public.words")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	pgtest.Exec(t, s.leaf, `set session_replication_role = replica;
		delete from pgbench_accounts where aid in (1, 100000) or aid % 1000 = 7;               -- 102 missing, first and last
		update pgbench_accounts set abalance = 42 where aid % 1000 = 500;                       -- 100 changed
		update pgbench_accounts set filler = null where aid % 1000 = 600;                       -- 100 NULL here
		insert into pgbench_accounts select g, 1, 0, 'extra' from generate_series(100001, 100199) g; -- 199 extra, past the last
		insert into pgbench_accounts values (0, 1, 0, 'before the first');                      -- 1 extra, before the first
		delete from words where n % 20 = 1;                                                      -- 100 missing
		update words set note = 'x''\' || n where n % 20 = 2;                                   -- 100 changed
		update words set note = 'was null' where n % 20 = 4;                                    -- 100 NULL on the root
		insert into words select 'zz' || g, g, null from generate_series(1, 100) g;             -- 100 extra, last
		insert into words select '0' || g, g, null from generate_series(1, 100) g;              -- 100 extra, first
		reset session_replication_role`)
	if out, err := runCLI(t, "londiste", s.leafINI, "compare"); err == nil || !strings.Contains(out, "do not match") {
		t.Fatalf("compare before the repair: %v\n%s", err, out)
	}
	// the fixes as files (in the working directory, as londiste3)
	wd, _ := os.Getwd()
	if err := os.Chdir(s.dir); err != nil {
		t.Fatal(err)
	}
	out := s.cli(t, s.leafINI, "repair")
	_ = os.Chdir(wd)
	for _, want := range []string{
		"finished public.pgbench_accounts: src: 100000 rows, dst: 100098 rows, missed: 102 inserts, 200 updates, 200 deletes",
		"finished public.words: src: 2000 rows, dst: 2100 rows, missed: 100 inserts, 200 updates, 200 deletes",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("repair: %q missing:\n%s", want, out)
		}
	}
	fix, err := os.ReadFile(filepath.Join(s.dir, "fix.public.words.sql"))
	if err != nil || strings.Count(string(fix), "\n") != 500 {
		t.Fatalf("fix.public.words.sql: %v, %d lines", err, strings.Count(string(fix), "\n"))
	}
	out = s.cli(t, s.leafINI, "repair", "--apply")
	if !strings.Contains(out, "missed: 102 inserts, 200 updates, 200 deletes") {
		t.Fatalf("repair --apply:\n%s", out)
	}
	if out := s.cli(t, s.leafINI, "compare"); strings.Contains(out, "do not match") {
		t.Fatalf("compare after the repair:\n%s", out)
	}
	if !s.same(t) {
		t.Fatal("tables differ after the repair")
	}
	out = s.cli(t, s.leafINI, "repair")
	if strings.Count(out, "missed: 0 inserts, 0 updates, 0 deletes") != 2 {
		t.Fatalf("second repair:\n%s", out)
	}
}

// TestLondisteCopyProgress: while a table is being copied, status shows
// the COPY's progress (rows so far of the provider's estimate, bytes, ETA),
// read by another process from pg_stat_progress_copy.
func TestLondisteCopyProgress(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	// over 1 MB: copied by a copy goroutine, not in the main worker's batch
	pgtest.Exec(t, s.root, "create table slow (id int primary key, v text); insert into slow select g, repeat(md5(g::text), 10) from generate_series(1, 4000) g; analyze slow")
	// on the leaf every copied row waits a millisecond (an ALWAYS trigger
	// fires in replica mode, and COPY fires row triggers)
	pgtest.Exec(t, s.leaf, `create table slow (id int primary key, v text);
		create function slowly() returns trigger language plpgsql as $$ begin perform pg_sleep(0.001); return new; end $$;
		create trigger slowly before insert on slow for each row execute function slowly();
		alter table slow enable always trigger slowly`)
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	s.startTicker(t)
	s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "public.slow")
	s.cli(t, s.leafINI, "add-table", "public.slow")
	re := regexp.MustCompile(`Copy: public\.slow in-copy (\d+)/4000 rows \(\d+%\), [\d.]+ MB, ETA \d+s`)
	var seen string
	pgtest.Eventually(t, 30*time.Second, "status showing the copy's progress", func() bool {
		out, _ := runCLI(t, "londiste", s.leafINI, "status")
		if m := re.FindStringSubmatch(out); m != nil && m[1] != "0" {
			seen = m[0]
			return true
		}
		return false
	})
	t.Logf("status during the copy: %s", seen)
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from slow"); n != 4000 {
		t.Fatalf("%d rows copied", n)
	}
}

// TestLondisteSplitCopy: pgbench_accounts (threaded_copy_tables) is copied
// as three page ranges read at once under one exported snapshot into one
// COPY FREEZE on the leaf, while pgbench writes on the root. The worker is
// killed while the COPY is held up (an ALWAYS trigger sleeps on one row):
// the copy's transaction (truncate, indexes dropped, COPY) is lost whole,
// so the table is in-copy with its primary key and index as they were;
// restarted, the worker copies it again, rebuilds both once, and the leaf
// ends equal to the root, its pages frozen by the COPY.
func TestLondisteSplitCopy(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.leafINI = pgtest.LondisteINI(t, s.dir, "leaf", s.leafDSN,
		"parallel_copies = 4\nthreaded_copy_tables = pgbench_acc*, typed, tagged\nthreaded_copy_pool_size = 3\n")
	// typed: awkward values of built-in types; tagged: an enum, and a
	// column whose type differs on the leaf
	for i, c := range []*pgx.Conn{s.root, s.leaf} {
		note := "varchar(20)"
		if i == 1 {
			note = "text"
		}
		pgtest.Exec(t, c, `create type mood as enum ('sad', 'ok', 'glad');
			create table typed (id int primary key, b bytea, j jsonb, a int[], ts timestamptz, n numeric, s text);
			create table tagged (id int primary key, m mood, note `+note+`)`)
	}
	pgtest.Exec(t, s.root, `insert into typed select g, decode(md5(g::text), 'hex'), jsonb_build_object('g', g, 't', E'a\tb'),
			array[g, null, -g], '2026-01-01'::timestamptz + g * interval '1 minute', g / 7.0, case when g % 5 = 0 then null else E'x\ny\\z' || g end
		  from generate_series(1, 3000) g;
		insert into tagged select g, (array['sad', 'ok', 'glad', null])[g % 4 + 1]::mood, 'n' || g from generate_series(1, 3000) g`)
	pgtest.Exec(t, s.leaf, `create index accounts_bid on pgbench_accounts (bid);
		create function hold() returns trigger language plpgsql as $$
		begin if new.aid = 50 then perform pg_sleep(60); end if; return new; end $$;
		create trigger hold before insert on pgbench_accounts for each row execute function hold();
		alter table pgbench_accounts enable always trigger hold`)
	s.startRoot(t)
	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "100", "-T", "12") }()
	worker := startWorkerProcess(t, s.leafINI)
	t.Cleanup(func() { _ = worker.Process.Kill() })
	s.cli(t, s.leafINI, "add-table", "--all")
	indexes := "select count(*) from pg_index where indrelid = 'pgbench_accounts'::regclass"
	pgtest.Eventually(t, 30*time.Second, "a range of the split copy held up by the trigger", func() bool {
		return pgtest.Scalar[int64](t, s.leaf, `select count(*) from pg_stat_activity
			where application_name like 'pgqgo londiste copy%' and wait_event = 'PgSleep'`) == 1
	})
	// the two small split tables are copied meanwhile (before the kill)
	pgtest.Eventually(t, 30*time.Second, "typed and tagged copied in 3 ranges", func() bool {
		log, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
		for _, want := range []string{`table=public.typed rows=3000 .*streams=3`, `table=public.tagged rows=3000 .*streams=3`} {
			if !regexp.MustCompile(`msg=copied .*` + want).Match(log) {
				return false
			}
		}
		return true
	})
	if n := pgtest.Scalar[int64](t, s.leaf, indexes); n != 2 {
		t.Fatalf("%d indexes on pgbench_accounts seen outside its copy's transaction, want 2", n)
	}
	_ = worker.Process.Kill()
	pgtest.Exec(t, s.leaf, "select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'pgqgo londiste%'")
	pgtest.Exec(t, s.leaf, "drop trigger hold on pgbench_accounts")
	if st := pgtest.Scalar[string](t, s.leaf, "select coalesce(merge_state, 'NULL') from londiste.table_info where table_name = 'public.pgbench_accounts'"); st != "in-copy" {
		t.Fatalf("pgbench_accounts is %s after the kill, want in-copy", st)
	}
	if n := pgtest.Scalar[int64](t, s.leaf, indexes); n != 2 {
		t.Fatalf("%d indexes on pgbench_accounts after the kill, want 2 (the copy's transaction lost whole)", n)
	}
	worker = startWorkerProcess(t, s.leafINI)
	s.dumpOnFailure(t)
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	<-loadDone
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	if n := pgtest.Scalar[int64](t, s.leaf, indexes); n != 2 {
		t.Fatalf("%d indexes on pgbench_accounts after the copy, want 2 (primary key, accounts_bid)", n)
	}
	if ddl := pgtest.Scalar[string](t, s.leaf, "select coalesce(dropped_ddl, '') from londiste.table_info where table_name = 'public.pgbench_accounts'"); ddl != "" {
		t.Fatalf("dropped_ddl left after the copy: %q", ddl)
	}
	// written frozen: the split tables nobody writes to after their copy
	// have every page all-visible and all-frozen
	pgtest.Exec(t, s.leaf, "create extension if not exists pg_visibility")
	for _, tbl := range []string{"typed", "tagged"} {
		if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from pg_visibility_map($1) where not all_frozen", tbl); n != 0 {
			t.Errorf("%s after its copy: %d pages not all-frozen", tbl, n)
		}
	}
	// compare: londiste3's numbers; a difference is then located by
	// hashing 16 key ranges on both sides
	type cmpRes struct {
		Table, Srcdb, Dstdb string
		Equal               bool
		KeyRanges           int `json:"key_ranges"`
		Differing           []struct {
			From, To *int64
		} `json:"differing_key_ranges"`
	}
	compareJSON := func() map[string]cmpRes {
		out, _ := runCLI(t, "londiste", s.leafINI, "compare", "--json")
		var rs []cmpRes
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("compare --json: %v\n%s", err, out)
		}
		m := map[string]cmpRes{}
		for _, r := range rs {
			m[r.Table] = r
		}
		return m
	}
	ours := compareJSON()
	if r := ours["public.pgbench_accounts"]; !r.Equal || r.KeyRanges != 0 {
		t.Fatalf("compare of pgbench_accounts: %+v", r)
	}
	theirs := pgtest.Londiste3(t, s.ctx, s.dir)(s.leafINI, "compare")
	if want := "dstdb: " + ours["public.pgbench_accounts"].Srcdb; !strings.Contains(theirs, want) {
		t.Fatalf("londiste3 compare disagrees with the key-range compare (%q):\n%s", want, theirs)
	}
	pgtest.Exec(t, s.leaf, "set session_replication_role = replica; update pgbench_accounts set abalance = abalance + 1 where aid in (1, 50000, 99999); reset session_replication_role")
	r := compareJSON()["public.pgbench_accounts"]
	d := r.Differing
	if r.Equal || r.KeyRanges != 16 || len(d) != 3 || d[0].From != nil || *d[0].To <= 1 ||
		*d[1].From > 50000 || *d[1].To <= 50000 || *d[2].From > 99999 || d[2].To != nil {
		t.Fatalf("compare after changing aids 1, 50000 and 99999 on the leaf: %+v", r)
	}
	pgtest.Exec(t, s.leaf, "set session_replication_role = replica; update pgbench_accounts set abalance = abalance - 1 where aid in (1, 50000, 99999); reset session_replication_role")
	for _, tbl := range []string{"typed", "tagged"} {
		q := "select count(*) || ' ' || md5(string_agg(x::text, ',' order by id)) from " + tbl + " x"
		if r, l := pgtest.Scalar[string](t, s.root, q), pgtest.Scalar[string](t, s.leaf, q); r != l || !strings.HasPrefix(r, "3000 ") {
			t.Errorf("%s: root %s, leaf %s", tbl, r, l)
		}
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
	if !regexp.MustCompile(`msg=copied .*table=public.pgbench_accounts.* rows=100000 .*streams=3`).Match(log) &&
		!regexp.MustCompile(`msg=copied .*rows=100000 .*streams=3`).Match(log) {
		t.Fatalf("no split copy of 100000 rows in 3 streams in the worker's log:\n%s", log)
	}
}

// TestLondiste3SixStatesTakenOver: londiste3's leaf is stopped dead (kill
// -9 of every process) with one table in each of the six states of the
// copy protocol, under load: pgbench_branches ok, pgbench_accounts
// in-copy, pgbench_tellers catching-up, extra do-sync, pgbench_history
// wanna-sync, extra2 NULL. Its copy processes are frozen (SIGSTOP) at the
// right moments to get there: the one of extra once it asked for its
// hand-off (the main worker then sets do-sync and waits for it, as
// londiste3 does), the one of pgbench_history let go on only then, so
// that its wanna-sync is left unanswered. pgqgo's worker then finishes
// every table, does not copy the ok one again, leaves no copy consumer,
// and both tools' compare agree.
func TestLondiste3SixStatesTakenOver(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 5)
	s.dumpOnFailure(t) // the log is londiste3's, then pgqgo's
	for _, c := range []*pgx.Conn{s.root, s.leaf} {
		pgtest.Exec(t, c, "create table extra (id int primary key, v text); create table extra2 (id int primary key, v text)")
	}
	pgtest.Exec(t, s.root, "insert into extra select g, md5(g::text) from generate_series(1, 1000) g; insert into extra2 select * from extra")
	s.tables = append(s.tables, "public.extra", "public.extra2")
	londiste := pgtest.Londiste3(t, s.ctx, s.dir)
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	londiste(s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "--all")
	killLeaf := func() {
		_ = exec.Command("pkill", "-9", "-f", "londiste "+s.leafINI).Run()
		pgtest.Eventually(t, 10*time.Second, "londiste3's leaf processes gone", func() bool {
			return exec.Command("pgrep", "-f", "londiste "+s.leafINI).Run() != nil
		})
	}
	t.Cleanup(killLeaf)
	loadCtx, stopLoad := context.WithCancel(s.ctx)
	defer stopLoad()
	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "100", "-T", "45") }()
	writer := pgtest.Conn(t, s.rootDSN)
	writing := make(chan struct{})
	go func() { // the extra tables are written to as well
		defer close(writing)
		for i := 0; loadCtx.Err() == nil; i++ {
			_, _ = writer.Exec(loadCtx, "update extra set v = $1 where id = $2; update extra2 set v = $1 where id = $2", fmt.Sprint(i), i%1000+1)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { stopLoad(); <-writing }) // before the writer's connection is closed
	londiste(s.leafINI, "worker", "-d")
	londiste(s.leafINI, "add-table", "public.pgbench_branches")
	pgtest.Eventually(t, 60*time.Second, "pgbench_branches ok under londiste3", func() bool {
		return pgtest.Scalar[string](t, s.leaf, "select coalesce(merge_state, '') from londiste.table_info where table_name = 'public.pgbench_branches'") == "ok"
	})
	// a marker row only the leaf has: a copy would wipe it
	pgtest.Exec(t, s.leaf, "set session_replication_role = replica; insert into pgbench_branches values (-1, 0, 'leaf only'); reset session_replication_role")

	londiste(s.leafINI, "add-table", "public.pgbench_accounts", "public.pgbench_tellers", "public.extra", "public.pgbench_history")
	copyPid := func(table string) int {
		out, _ := exec.Command("pgrep", "-f", "londiste "+s.leafINI+" copy "+table).Output()
		f := strings.Fields(string(out))
		if len(f) != 1 {
			return 0
		}
		pid, _ := strconv.Atoi(f[0])
		return pid
	}
	frozen := map[string]bool{}
	freeze := func(table string, sig syscall.Signal) bool {
		// only the copy process proper, registered on the leaf: before it
		// is (while it daemonizes) the main worker waits for it
		if pgtest.Scalar[int64](t, s.leaf, "select count(*) from pgq_node.local_state where queue_name = 'replika' and consumer_name = $1", "l_leaf.copy."+table) != 1 {
			return false
		}
		if pid := copyPid(table); pid != 0 && syscall.Kill(pid, sig) == nil {
			frozen[table] = sig == syscall.SIGSTOP
			return true
		}
		return false
	}
	want := map[string]string{"public.pgbench_accounts": "in-copy", "public.pgbench_tellers": "catching-up",
		"public.extra": "do-sync", "public.pgbench_history": "wanna-sync", "public.pgbench_branches": "ok"}
	reached := func(states map[string]string) bool {
		for tbl, st := range want {
			if strings.SplitN(states[tbl], ":", 2)[0] != st {
				return false
			}
		}
		return true
	}
	// londiste3's main worker turns a copy's wanna-sync into do-sync at
	// its next batch, which a busy machine's polling can miss: while extra
	// catches up, the main worker is held (its copy gets to wanna-sync on
	// its own), and let go once extra's copy is frozen there
	mainHeld := false
	holdMain := func(sig syscall.Signal) {
		out, _ := exec.Command("pgrep", "-f", "londiste "+s.leafINI+" worker").Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, sig)
			}
		}
		mainHeld = sig == syscall.SIGSTOP
	}
	t.Cleanup(func() {
		if mainHeld {
			holdMain(syscall.SIGCONT)
		}
	})
	historyLetGo := false
	var states map[string]string
	// londiste3 copies a table in 12 s or more (more on a loaded machine),
	// the states come one after another
	deadline := time.Now().Add(150 * time.Second)
	for {
		states = map[string]string{}
		for _, row := range pgtest.Column[string](t, s.leaf, "select table_name || '=' || coalesce(merge_state, 'NULL') from londiste.get_table_list('replika') where local") {
			name, st, _ := strings.Cut(row, "=")
			states[name] = st
		}
		if reached(states) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("six states not reached: %v (frozen copies: %v)", states, frozen)
		}
		if !frozen["public.pgbench_accounts"] && states["public.pgbench_accounts"] == "in-copy" {
			freeze("public.pgbench_accounts", syscall.SIGSTOP)
		}
		if !frozen["public.pgbench_tellers"] && states["public.pgbench_tellers"] == "catching-up" {
			freeze("public.pgbench_tellers", syscall.SIGSTOP)
		}
		if !frozen["public.extra"] && !mainHeld && states["public.extra"] == "catching-up" {
			holdMain(syscall.SIGSTOP)
		}
		if !frozen["public.extra"] && strings.HasPrefix(states["public.extra"], "wanna-sync:") {
			freeze("public.extra", syscall.SIGSTOP)
		}
		if frozen["public.extra"] && mainHeld {
			holdMain(syscall.SIGCONT)
		}
		switch {
		case !historyLetGo && !frozen["public.pgbench_history"]:
			freeze("public.pgbench_history", syscall.SIGSTOP) // held until extra is in do-sync
		case !historyLetGo && strings.HasPrefix(states["public.extra"], "do-sync:"):
			historyLetGo = freeze("public.pgbench_history", syscall.SIGCONT)
		case historyLetGo && !frozen["public.pgbench_history"] && strings.HasPrefix(states["public.pgbench_history"], "wanna-sync:"):
			freeze("public.pgbench_history", syscall.SIGSTOP)
		}
		time.Sleep(20 * time.Millisecond)
	}
	killLeaf()
	// the sixth: a table added while nothing runs stays NULL
	s.cli(t, s.leafINI, "add-table", "public.extra2")
	states["public.extra2"] = pgtest.Scalar[string](t, s.leaf, "select coalesce(merge_state, 'NULL') from londiste.table_info where table_name = 'public.extra2'")
	if states["public.extra2"] != "NULL" {
		t.Fatalf("extra2 is %s", states["public.extra2"])
	}
	t.Logf("londiste3 killed with the tables in %v", states)

	s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "90s")
	if n := pgtest.Scalar[int64](t, s.leaf, "select count(*) from pgbench_branches where bid = -1"); n != 1 {
		t.Errorf("pgbench_branches was ok when pgqgo took over, but was copied again")
	}
	pgtest.Exec(t, s.leaf, "set session_replication_role = replica; delete from pgbench_branches where bid = -1; reset session_replication_role")
	pgtest.Eventually(t, 30*time.Second, "no copy consumer left on the root", func() bool {
		return copyConsumers(t, s.root) == 0
	})
	<-loadDone
	stopLoad()
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	s.compareBoth(t, londiste)
}

// TestLondisteWorkerRefusesUntrustedSchema: a function slipped into the
// leaf's londiste schema by a role the worker does not trust makes the
// worker refuse the node (nothing copied, an error naming the function
// and its owner) until the role is listed in trusted_roles; the same for
// the provider's pgq_node schema.
func TestLondisteWorkerRefusesUntrustedSchema(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "public.pgbench_branches")
	s.cli(t, s.leafINI, "add-table", "public.pgbench_branches")
	for _, c := range []struct {
		conn   *pgx.Conn
		schema string
		where  string
	}{{s.leaf, "londiste", "this node"}, {s.root, "pgq_node", "provider root"}} {
		pgtest.Exec(t, c.conn, "do $$ begin if not exists (select 1 from pg_roles where rolname = 'mallory') then create role mallory; end if; end $$")
		pgtest.Exec(t, c.conn, "create function "+c.schema+".evil() returns int language sql as 'select 1'; alter function "+c.schema+".evil() owner to mallory")
		logFile := filepath.Join(s.dir, "leaf.log")
		_ = os.Remove(logFile)
		stop := s.background(t, "londiste", s.leafINI, "worker", "-q")
		pgtest.Eventually(t, 20*time.Second, "the worker refusing "+c.where, func() bool {
			log, _ := os.ReadFile(logFile)
			return strings.Contains(string(log), c.where+": refusing to call its functions") &&
				strings.Contains(string(log), "function "+c.schema+".evil() (owner mallory)")
		})
		time.Sleep(time.Second)
		if st := pgtest.Scalar[string](t, s.leaf, "select coalesce(merge_state, 'NULL') from londiste.table_info where table_name = 'public.pgbench_branches'"); st != "NULL" {
			t.Fatalf("untrusted %s: the worker worked anyway (pgbench_branches %s)", c.where, st)
		}
		stop()
		pgtest.Exec(t, c.conn, "drop function "+c.schema+".evil()")
	}
	// trusted_roles lets a role's objects be
	pgtest.Exec(t, s.leaf, "create function londiste.helper() returns int language sql as 'select 1'; alter function londiste.helper() owner to mallory")
	s.leafINI = pgtest.LondisteINI(t, s.dir, "leaf", s.leafDSN, "trusted_roles = mallory\n")
	s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
}

// TestLondisteLocalOnly: with local_only the provider sends the leaf the
// events of the tables it replicates and the control events only: a
// pgbench load writes four tables, the leaf replicates two of them, and
// its worker skips no event (none of the others reached it), while an
// EXECUTE still arrives; copy consumers get their own table's events only.
func TestLondisteLocalOnly(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.tables = []string{"public.pgbench_branches", "public.pgbench_tellers"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// tellers in threaded_copy_tables: copied by a copy consumer, not in the main worker's batch
	s.leafINI = pgtest.LondisteINI(t, s.dir, "leaf", s.leafDSN, "local_only = 1\nmetrics_addr = "+addr+"\nthreaded_copy_tables = pgbench_tellers\n")
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, s.leafINI, "create-leaf", "leaf", s.leafDSN, "--provider="+s.rootDSN)
	s.startTicker(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.background(t, "londiste", s.leafINI, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "--all")
	// branches in the main worker's batch, tellers by a copy consumer
	s.cli(t, s.leafINI, "add-table", "public.pgbench_branches")
	s.cli(t, s.leafINI, "add-table", "public.pgbench_tellers")
	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "200", "-T", "6") }()
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	<-loadDone
	ddl := filepath.Join(s.dir, "note.sql")
	if err := os.WriteFile(ddl, []byte("alter table pgbench_tellers add column note text;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cli(t, s.rootINI, "execute", ddl)
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.same(t) })
	pgtest.Eventually(t, 30*time.Second, "the EXECUTE applied on the leaf", func() bool {
		return pgtest.Scalar[int64](t, s.leaf, "select count(*) from pg_attribute where attrelid = 'pgbench_tellers'::regclass and attname = 'note'") == 1
	})
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, kind := range []string{"main", "copy"} {
		read := regexp.MustCompile(`pgqgo_londiste_events_total\{kind="` + kind + `"\} (\d+)`).FindStringSubmatch(string(body))
		other := regexp.MustCompile(`pgqgo_londiste_events_skipped_total\{kind="` + kind + `",reason="other_table"\} (\d+)`).FindStringSubmatch(string(body))
		if kind == "main" && (read == nil || read[1] == "0" || other == nil) {
			t.Fatalf("main consumer: no events read or no skip count:\n%s", body)
		}
		// a copy consumer may hand over before any batch with events
		if other != nil && other[1] != "0" {
			t.Errorf("the %s consumer skipped %s events of other tables: they were sent although local_only", kind, other[1])
		}
	}
}

// TestLondisteWorkerReload: `worker -r` (SIGHUP) makes the running worker
// read its ini again: local_only switched on takes effect without a
// restart (the main consumer skips other tables' events before, none
// after); a broken ini and a changed db are refused with the running
// configuration kept.
func TestLondisteWorkerReload(t *testing.T) {
	t.Parallel() // servers or databases of its own
	s := newReplicaSetup(t, 1)
	s.tables = []string{"public.pgbench_branches"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	extra := "metrics_addr = " + addr + "\n"
	s.leafINI = pgtest.LondisteINI(t, s.dir, "leaf", s.leafDSN, extra)
	s.startRoot(t)
	worker := startWorkerProcess(t, s.leafINI)
	t.Cleanup(func() { _ = worker.Process.Kill() })
	s.cli(t, s.leafINI, "add-table", "public.pgbench_branches")
	s.cli(t, s.leafINI, "wait-sync", "--timeout", "60s")
	otherSkipped := func() int64 {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`pgqgo_londiste_events_skipped_total\{kind="main",reason="other_table"\} (\d+)`).FindStringSubmatch(string(body))
		if m == nil {
			return 0
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-t", "100")
	pgtest.Eventually(t, 30*time.Second, "the leaf equal", func() bool { return s.same(t) })
	pgtest.Eventually(t, 10*time.Second, "other tables' events skipped by the worker", func() bool { return otherSkipped() > 0 })
	logFile := filepath.Join(s.dir, "leaf.log")
	reload := func(body, want string, viaCLI bool) {
		t.Helper()
		if err := os.WriteFile(s.leafINI, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if viaCLI {
			s.cli(t, s.leafINI, "worker", "-r")
		} else if err := worker.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		pgtest.Eventually(t, 10*time.Second, "the worker logging "+want, func() bool {
			log, _ := os.ReadFile(logFile)
			return strings.Contains(string(log), want)
		})
	}
	good, _ := os.ReadFile(s.leafINI)
	// a broken file, then another database: refused, the worker goes on
	reload(string(good)+"loop_delay = soon\n", "configuration not reloaded", false)
	reload(strings.Replace(string(good), "dbname=leaf", "dbname=other", 1), "db changed; restart the worker", false)
	// local_only on, live (pgqgo londiste leaf.ini worker -r)
	reload(string(good)+"local_only = 1\n", "SIGHUP: configuration reloaded", true)
	time.Sleep(time.Second) // the watcher restarts the main consumer within its loop
	before := otherSkipped()
	pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-t", "100")
	pgtest.Eventually(t, 30*time.Second, "the leaf equal", func() bool { return s.same(t) })
	if after := otherSkipped(); after != before {
		t.Fatalf("after the reload with local_only the worker still read %d events of other tables", after-before)
	}
	if worker.ProcessState != nil {
		t.Fatal("the worker exited")
	}
}
