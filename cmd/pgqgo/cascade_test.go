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
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// cascadeSetup is a root database on the suite's server and branch and
// leaf databases on servers of their own, all with pgbench's tables (data
// on the root only).
type cascadeSetup struct {
	*replicaSetup
	nodes map[string]*cascadeNode
}

type cascadeNode struct {
	name, dsn, ini string
	conn           *pgx.Conn
	cluster        *pgcluster.Cluster // nil for the root (the suite's server)
}

// newCascade makes the root and the leaf (newReplicaSetup's, named root
// and leaf) and one server per other node name.
func newCascade(t *testing.T, names ...string) *cascadeSetup {
	t.Helper()
	s := &cascadeSetup{replicaSetup: newReplicaSetup(t, 1), nodes: map[string]*cascadeNode{}}
	s.nodes["root"] = &cascadeNode{name: "root", dsn: s.rootDSN, ini: s.rootINI, conn: s.root}
	s.nodes["leaf"] = &cascadeNode{name: "leaf", dsn: s.leafDSN, ini: s.leafINI, conn: s.leaf, cluster: s.leafCluster}
	for _, name := range names {
		c := pgtest.OwnCluster(t, pgcluster.Options{})
		pgtest.Exec(t, pgtest.Conn(t, c.DSN("postgres")), "create database "+name)
		n := &cascadeNode{name: name, dsn: c.DSN(name), cluster: c}
		n.conn = pgtest.Conn(t, n.dsn)
		pgbench(t, s.ctx, n.dsn, "-i", "-q", "-I", "dtp")
		pgtest.Exec(t, n.conn, "alter table pgbench_history add column hid bigserial primary key")
		n.ini = pgtest.LondisteINI(t, s.dir, name, n.dsn, "parallel_copies = 4\n")
		s.nodes[name] = n
	}
	return s
}

// startTickerQuiet runs pgqgo ticker for the root with maintenance every
// ten minutes, so that no tick is thinned away while the test compares
// ticks.
func (s *cascadeSetup) startTickerQuiet(t *testing.T) {
	t.Helper()
	writeINI(t, filepath.Join(s.dir, "ticker.ini"), filepath.Join(s.dir, "ticker.pid"), filepath.Join(s.dir, "ticker.log"),
		mustParse(t, s.rootDSN).Database)
	f, err := os.OpenFile(filepath.Join(s.dir, "ticker.ini"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "maint_period = 600")
	f.Close()
	s.background(t, "ticker", "-q", filepath.Join(s.dir, "ticker.ini"))
}

// startTickerOn runs a pgqgo ticker for a node's own server (maintenance
// every ten minutes), as every server of a cascade has one: a branch's
// queue takes no ticks from it until a takeover makes it the root.
func (s *cascadeSetup) startTickerOn(t *testing.T, n *cascadeNode) {
	t.Helper()
	s.startTickerMaint(t, n, 600)
}

// startTickerMaint is startTickerOn with maintenance (rotation, retries,
// watermarks) every maint seconds.
func (s *cascadeSetup) startTickerMaint(t *testing.T, n *cascadeNode, maint int) {
	t.Helper()
	cfg := mustParse(t, n.dsn)
	ini := filepath.Join(s.dir, "ticker-"+n.name+".ini")
	body := fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\ndatabase_list = %s\n"+
		"pidfile = %s\nlogfile = %s\nsyslog = 0\nticker_period = 0.1\nmaint_period = %d\n",
		cfg.Host, cfg.Port, cfg.User, cfg.Database, filepath.Join(s.dir, "ticker-"+n.name+".pid"), filepath.Join(s.dir, "ticker-"+n.name+".log"), maint)
	if err := os.WriteFile(ini, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s.background(t, "ticker", "-q", ini)
}

func mustParse(t *testing.T, dsn string) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sameAs compares count and checksum of every table on two nodes.
func (s *cascadeSetup) sameAs(t *testing.T, a, b *pgx.Conn) bool {
	for _, tbl := range s.tables {
		q := "select count(*)::text || ' ' || coalesce(sum(hashtext(x::text)), 0)::text from " + tbl + " x"
		if pgtest.Scalar[string](t, a, q) != pgtest.Scalar[string](t, b, q) {
			return false
		}
	}
	return true
}

// dumpLogOnFailure logs the end of a node's worker log if the test fails.
func (s *cascadeSetup) dumpLogOnFailure(t *testing.T, node string) {
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(s.dir, node+".log"))
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			t.Logf("%s worker log (end):\n%s", node, data)
		}
	})
}

// queueTick is a tick of the replika queue as stored.
type queueTick struct {
	id, seq int64
	time    time.Time
	snap    string
}

func queueTicks(t testing.TB, c *pgx.Conn) map[int64]queueTick {
	t.Helper()
	rows, err := c.Query(context.Background(), `select t.tick_id, t.tick_event_seq, t.tick_time, t.tick_snapshot::text
	  from pgq.tick t join pgq.queue q on q.queue_id = t.tick_queue where q.queue_name = 'replika'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]queueTick{}
	for rows.Next() {
		var k queueTick
		if err := rows.Scan(&k.id, &k.seq, &k.time, &k.snap); err != nil {
			t.Fatal(err)
		}
		out[k.id] = k
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventsByTick reads every event of the replika queue on c and files it
// (as a digest of its row's text, NULLs and all) under the first of ticks
// (ids in order, snapshots as c has them) whose snapshot sees its
// transaction; events of the first tick or before, and after the last, are
// left out.
func eventsByTick(t testing.TB, c *pgx.Conn, ticks []int64) map[int64][]string {
	t.Helper()
	type snap struct {
		xmin, xmax int64
		xip        map[int64]bool
	}
	var snaps []snap
	for _, text := range pgtest.Column[string](t, c, `select t.tick_snapshot::text from unnest($1::bigint[]) with ordinality u(id, n)
	  join pgq.tick t on t.tick_id = u.id join pgq.queue q on q.queue_id = t.tick_queue and q.queue_name = 'replika' order by u.n`, ticks) {
		p := strings.Split(text, ":")
		var sn snap
		fmt.Sscan(p[0], &sn.xmin)
		fmt.Sscan(p[1], &sn.xmax)
		sn.xip = map[int64]bool{}
		for _, x := range strings.Split(p[2], ",") {
			var v int64
			if _, err := fmt.Sscan(x, &v); err == nil {
				sn.xip[v] = true
			}
		}
		snaps = append(snaps, sn)
	}
	if len(snaps) != len(ticks) {
		t.Fatalf("%d of %d ticks found", len(snaps), len(ticks))
	}
	sees := func(s snap, txid int64) bool {
		return txid < s.xmin || (txid < s.xmax && !s.xip[txid])
	}
	table := pgtest.Scalar[string](t, c, "select queue_data_pfx from pgq.queue where queue_name = 'replika'")
	rows, err := c.Query(context.Background(), "select ev_txid, md5((ev_id, ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)::text) from "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]string{}
	for rows.Next() {
		var txid int64
		var row string
		if err := rows.Scan(&txid, &row); err != nil {
			t.Fatal(err)
		}
		// later snapshots see all earlier ones see
		i := sort.Search(len(snaps), func(i int) bool { return sees(snaps[i], txid) })
		if i > 0 && i < len(snaps) {
			out[ticks[i]] = append(out[ticks[i]], row)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, evs := range out {
		slices.Sort(evs)
	}
	return out
}

// checkMirrored: every tick of the branch is one of the root's, with its
// time and event seq, and between each two of them the two queues hold the
// same events (ids, times, types, data, extras, NULLs). The ticks remade
// were made again after their root was lost: their time and event seq are
// not compared. Returns the ticks and events compared.
func checkMirrored(t testing.TB, root, branch *pgx.Conn, remade ...int64) (int, int) {
	t.Helper()
	rt, bt := queueTicks(t, root), queueTicks(t, branch)
	var ids []int64
	for id, b := range bt {
		r, ok := rt[id]
		if !ok {
			t.Fatalf("branch tick %d is not a root tick", id)
		}
		if slices.Contains(remade, id) {
			// made again without the root's own values, from its events
			// (compared below like the others')
			t.Logf("tick %d made again: time %v seq %d on one side, %v and %d on the other", id, r.time, r.seq, b.time, b.seq)
		} else if !r.time.Equal(b.time) || r.seq != b.seq {
			t.Fatalf("tick %d: root time %v seq %d, branch time %v seq %d", id, r.time, r.seq, b.time, b.seq)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// and every root tick in their span is on the branch: none was skipped
	for id := range rt {
		if _, ok := bt[id]; !ok && id > ids[0] && id < ids[len(ids)-1] {
			t.Fatalf("root tick %d is not on the branch", id)
		}
	}
	re, be := eventsByTick(t, root, ids), eventsByTick(t, branch, ids)
	n := 0
	for _, id := range ids[1:] {
		if !slices.Equal(re[id], be[id]) {
			t.Fatalf("tick %d: root has %d events, branch %d:\nroot %.600v\nbranch %.600v", id, len(re[id]), len(be[id]), re[id], be[id])
		}
		n += len(re[id])
	}
	return len(ids), n
}

// workerTick is the tick the node's worker at c has completed.
func workerTick(t testing.TB, c *pgx.Conn) int64 {
	t.Helper()
	return pgtest.Scalar[int64](t, c, "select coalesce(worker_last_tick, 0) from pgq_node.get_node_info('replika')")
}

// newRootBranchLeaf makes a root, a branch under it (serving its metrics
// at the returned address) and a leaf under the branch, each on a server of
// its own, with the root's ticker running.
func newRootBranchLeaf(t *testing.T) (s *cascadeSetup, br, lf *cascadeNode, metrics string) {
	s = newCascade(t, "branch")
	br, lf = s.nodes["branch"], s.nodes["leaf"]
	s.dumpOnFailure(t)
	s.dumpLogOnFailure(t, "branch")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics = ln.Addr().String()
	ln.Close()
	br.ini = pgtest.LondisteINI(t, s.dir, "branch", br.dsn, "parallel_copies = 4\nmetrics_addr = "+metrics+"\n")
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, br.ini, "create-branch", "branch", br.dsn, "--provider="+s.rootDSN)
	s.cli(t, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+br.dsn)
	s.startTickerQuiet(t)
	return s, br, lf, metrics
}

// TestCascadeRootBranchLeaf: a root, a branch under it and a leaf under the
// branch, each on a server of its own. pgbench writes on the root while
// the tables are copied to the branch and from the branch to the leaf;
// the branch's queue then holds the root's events with their ids and
// fields, every branch tick is a root tick with its time and event seq,
// and the tick ranges hold the same events on both; the leaf, fed by the
// branch alone, ends equal to the root, and compare against the branch
// provider works (londiste3's does not: skytools-legacy #58).
func TestCascadeRootBranchLeaf(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s, br, lf, addr := newRootBranchLeaf(t)
	stops := map[*cascadeNode]func(){}
	for _, n := range []*cascadeNode{s.nodes["root"], br, lf} {
		stops[n] = s.background(t, "londiste", n.ini, "worker", "-q")
	}
	s.cli(t, s.rootINI, "add-table", "--all")

	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "200", "-T", "20") }()
	start := time.Now()
	s.cli(t, br.ini, "add-table", "--all")
	s.cli(t, br.ini, "wait-sync", "--timeout", "90s")
	s.cli(t, lf.ini, "add-table", "--all")
	s.cli(t, lf.ini, "wait-sync", "--timeout", "90s")
	t.Logf("branch and leaf in sync under load in %v", time.Since(start).Round(time.Millisecond))
	// the branch's worker stopped for a while: it comes back to batches
	// of many ticks, which it must copy tick by tick
	stops[br]()
	pgbench(t, s.ctx, s.rootDSN, "-n", "-t", "200") // events for it whatever the load's state
	time.Sleep(time.Second)
	s.background(t, "londiste", br.ini, "worker", "-q")
	out := <-loadDone
	t.Logf("pgbench: %s", regexp.MustCompile(`tps = [\d.]+`).FindString(out))
	pgtest.Eventually(t, 60*time.Second, "branch and leaf equal to the root", func() bool {
		return s.sameAs(t, s.root, br.conn) && s.sameAs(t, s.root, lf.conn)
	})
	if log, _ := os.ReadFile(filepath.Join(s.dir, "branch.log")); !strings.Contains(string(log), "batch of several ticks copied tick by tick") {
		t.Error("the branch never had a batch of several ticks")
	}
	ticks, events := checkMirrored(t, s.root, br.conn)
	t.Logf("branch: %d ticks, %d events in their ranges, the same as the root's", ticks, events)
	if events < 4000 {
		t.Fatalf("only %d events compared", events)
	}

	for _, n := range []*cascadeNode{br, lf} {
		cmp := s.cli(t, n.ini, "compare")
		if strings.Contains(cmp, "do not match") || strings.Count(cmp, "srcdb:") != len(s.tables) {
			t.Fatalf("%s compare:\n%s", n.name, cmp)
		}
	}
	// the branch's metrics: the node it runs as, ticks and events copied
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{`pgqgo_londiste_node_info\{node="branch",provider="root",queue="replika",type="branch"\} 1`,
		`pgqgo_londiste_branch_ticks_total [1-9]`, `pgqgo_londiste_branch_events_total [1-9]`} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("branch metrics: no %s:\n%s", re, regexp.MustCompile(`(?m)^pgqgo_londiste_[a-z_]+(\{[^}]*\})? .*$`).FindAll(body, -1))
		}
	}
	// the branch's worker was paused for the leaf's compare, and resumed
	if paused := pgtest.Scalar[bool](t, br.conn, "select paused from pgq_node.get_consumer_state('replika', 'l_branch')"); paused {
		t.Fatal("the branch's worker left paused by compare")
	}
	// the provider loses the finish of batches the leaf applied (as a
	// crash of its server can: finishing does not wait for the WAL
	// flush): the leaf's worker moves its position there forward
	stops[lf]()
	at := pgtest.Scalar[int64](t, br.conn, "select last_tick from pgq.get_consumer_info('replika', 'l_leaf')")
	back := pgtest.Scalar[int64](t, br.conn, "select max(tick_id) from pgq.tick where tick_id < $1", at-3)
	pgtest.Exec(t, br.conn, "select pgq.register_consumer_at('replika', 'l_leaf', $1)", back)
	pgbench(t, s.ctx, s.rootDSN, "-n", "-t", "100")
	s.background(t, "londiste", lf.ini, "worker", "-q")
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root again", func() bool { return s.sameAs(t, s.root, lf.conn) })
	if log, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log")); !strings.Contains(string(log), "moved forward to the tick completed here") {
		t.Error("the leaf's worker did not move its position on the provider forward")
	}
	st := s.cli(t, lf.ini, "status")
	for _, want := range []string{"\nroot (root)\n", "+--: branch (branch)", "+--: leaf (leaf)", "Tables: 4/0/0"} {
		if !strings.Contains(st, want) {
			t.Errorf("status: %q missing:\n%s", want, st)
		}
	}
	// the branch's tables refuse local writes, and so does its queue
	if _, err := br.conn.Exec(s.ctx, "update pgbench_branches set bbalance = 0 where bid = 1"); err == nil {
		t.Error("a local write on a branch table was accepted")
	}
	if _, err := br.conn.Exec(s.ctx, "select pgq.insert_event('replika', 'x', 'y')"); err == nil {
		t.Error("an insert into the branch's queue was accepted")
	}
	if n := copyConsumers(t, s.root) +
		copyConsumers(t, br.conn); n != 0 {
		t.Errorf("%d copy consumers left", n)
	}
}

// TestCascadeBranchTicksApart: a branch copies a batch of many ticks one
// transaction per tick, and makes each tick first thing in the next one's
// transaction, which is right only while pgq.ticker takes its snapshot
// before the transaction has an id (or before a later one ended). Here
// the branch's pgq.ticker takes an id first and sees a later one end (a
// wrapper standing in for another PgQ's): the worker finds out on the
// first such tick, makes ticks in transactions of their own
// from then on, and the branch's tick ranges still hold the root's events.
func TestCascadeBranchTicksApart(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s, br, _, _ := newRootBranchLeaf(t)
	pgtest.Exec(t, br.conn, "alter function pgq.ticker(text, bigint, timestamptz, bigint) rename to ticker_inner")
	pgtest.Exec(t, br.conn, `create function pgq.ticker(i_queue_name text, i_tick_id bigint, i_orig_timestamp timestamptz, i_event_seq bigint)
	  returns bigint language plpgsql as $$
	  begin
	    perform pg_catalog.txid_current();
	    begin -- an aborted subtransaction moves the snapshots' xmax past this transaction's id
	      create temp table probe (x int);
	      raise exception 'undone';
	    exception when others then
	    end;
	    return pgq.ticker_inner(i_queue_name, i_tick_id, i_orig_timestamp, i_event_seq);
	  end $$`)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	stop := s.background(t, "londiste", br.ini, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "--all")
	s.cli(t, br.ini, "add-table", "--all")
	s.cli(t, br.ini, "wait-sync", "--timeout", "90s")
	stop()
	pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "100", "-T", "4") // ticks enough for a batch of many
	s.background(t, "londiste", br.ini, "worker", "-q")
	pgtest.Eventually(t, 60*time.Second, "the branch equal to the root", func() bool { return s.sameAs(t, s.root, br.conn) })
	log, _ := os.ReadFile(filepath.Join(s.dir, "branch.log"))
	for _, want := range []string{"batch of several ticks copied tick by tick", "ticks are made in transactions of their own"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("branch log: no %q", want)
		}
	}
	ticks, events := checkMirrored(t, s.root, br.conn)
	t.Logf("branch: %d ticks, %d events in their ranges, the same as the root's", ticks, events)
}

// TestCascadeCopyNode: a leaf under a branch copies tables from another
// node than its provider (--copy-node, --find-copy-node) under load: one
// the branch does not replicate at all (its queue still carries the
// table's events), and the biggest one again and again from the root, the
// copy's snapshot then in the root's transaction ids while the leaf's
// worker reads the branch's queue. The leaf ends equal to the root, the
// copies' consumers are gone from every node, and bad copy nodes are
// refused.
func TestCascadeCopyNode(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s, br, lf, _ := newRootBranchLeaf(t)
	rt := s.nodes["root"]
	s.dumpLogOnFailure(t, "leaf")
	for _, n := range []*cascadeNode{rt, br} {
		s.background(t, "londiste", n.ini, "worker", "-q")
	}
	worker := startWorkerProcess(t, lf.ini) // killed below
	t.Cleanup(func() { _ = worker.Process.Kill() })
	s.cli(t, rt.ini, "add-table", "--all")
	branchTables := []string{"public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers"}
	s.cli(t, br.ini, append([]string{"add-table"}, branchTables...)...)
	s.cli(t, br.ini, "wait-sync", "--timeout", "60s")
	for _, bad := range []struct{ node, want string }{{"nosuch", "no such member"}, {"leaf", "is this node"}} {
		if out, err := runCLI(t, "londiste", lf.ini, "add-table", "public.pgbench_history", "--copy-node="+bad.node); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("add-table --copy-node=%s: %v\n%s", bad.node, err, out)
		}
	}
	if out, err := runCLI(t, "londiste", lf.ini, "add-table", "public.pgbench_history"); err == nil || !strings.Contains(err.Error(), "not replicated on the provider") {
		t.Fatalf("add-table of a table the branch does not replicate: %v\n%s", err, out)
	}

	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "200", "-T", "40") }()
	s.cli(t, lf.ini, append([]string{"add-table"}, branchTables...)...)
	s.cli(t, lf.ini, "add-table", "public.pgbench_history", "--copy-node=root")
	s.cli(t, lf.ini, "wait-sync", "--timeout", "90s")
	for range 2 {
		s.cli(t, lf.ini, "resync", "public.pgbench_accounts", "--copy-node=root")
		s.cli(t, lf.ini, "wait-sync", "--timeout", "90s")
	}
	s.cli(t, lf.ini, "resync", "public.pgbench_tellers", "--find-copy-node")
	s.cli(t, lf.ini, "wait-sync", "--timeout", "90s")
	// once more from the root, the leaf's worker killed again and again
	// (in the copy, the catching-up, the hand-off) and restarted at once
	s.cli(t, lf.ini, "resync", "public.pgbench_accounts", "--copy-node=root")
	state := func() string {
		return pgtest.Scalar[string](t, lf.conn, "select coalesce(merge_state, 'NULL') from londiste.get_table_list('replika') where table_name = 'public.pgbench_accounts'")
	}
	hit := map[string]int{}
	for _, target := range []string{"in-copy", "catching-up", "wanna-sync", "do-sync", "catching-up", "do-sync"} {
		// kill it in each state of the copy it reaches (a state passed
		// by before the poll sees it is left)
		deadline := time.Now().Add(15 * time.Second)
		st := state()
		for !strings.HasPrefix(st, target) && st != "ok" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			st = state()
		}
		if !strings.HasPrefix(st, target) {
			continue
		}
		_ = worker.Process.Kill()
		hit[target]++
		worker = startWorkerProcess(t, lf.ini)
	}
	t.Logf("the leaf's worker killed with pgbench_accounts in these states: %v", hit)
	s.cli(t, lf.ini, "wait-sync", "--timeout", "90s")
	<-loadDone
	t.Cleanup(func() {
		if t.Failed() {
			for _, tbl := range s.tables {
				q := "select count(*)::text || ' ' || coalesce(sum(hashtext(x::text)), 0)::text from " + tbl + " x"
				t.Logf("%s: root %s, leaf %s", tbl, pgtest.Scalar[string](t, rt.conn, q), pgtest.Scalar[string](t, lf.conn, q))
			}
		}
	})
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", func() bool { return s.sameAs(t, rt.conn, lf.conn) })
	if n := pgtest.Scalar[int](t, br.conn, "select count(*) from pgbench_history"); n != 0 {
		t.Fatalf("the branch has %d pgbench_history rows: it was not to replicate it", n)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "leaf.log"))
	for _, want := range []string{`table=public.pgbench_history source=root`, `table=public.pgbench_accounts source=root`} {
		if !regexp.MustCompile(`msg=copied .*` + want).Match(log) {
			t.Errorf("leaf's log: no copy with %s", want)
		}
	}
	// pgbench_tellers copied twice: by add-table, and again by resync
	// --find-copy-node (from the provider, as it finds it here: no source
	// named); a table that small may be copied in the main worker's batch,
	// when that batch sees it waiting before the copy goroutine does
	if n := len(regexp.MustCompile(`(msg=copied|msg="copied in the main worker's batch") .*table=public.pgbench_tellers rows=`).FindAll(log, -1)); n < 2 {
		t.Errorf("leaf's log: %d copies of pgbench_tellers, want 2", n)
	}
	// the hand-offs from the root: the copy applied the hand-off batch and
	// gave the table the branch's snapshot of its tick
	if n := len(regexp.MustCompile(`msg="copy from another node handing over.*table=public.pgbench_accounts copy_node=root`).FindAll(log, -1)); n < 3 {
		t.Errorf("leaf's log: %d hand-offs of pgbench_accounts from another node, want 3 or more (a kill can repeat one); its lines:\n%s", n,
			strings.Join(regexp.MustCompile(`(?m)^.*pgbench_accounts.*$`).FindAllString(string(log), -1), "\n"))
	}
	t.Logf("leaf's log: %d copies of pgbench_accounts from the root, %d copies resumed after a kill",
		len(regexp.MustCompile(`msg=copied .*table=public.pgbench_accounts source=root`).FindAll(log, -1)),
		len(regexp.MustCompile(`msg="resuming the copy"`).FindAll(log, -1)))
	if attrs := pgtest.Scalar[string](t, lf.conn, "select table_attrs from londiste.get_table_list('replika') where table_name = 'public.pgbench_history'"); attrs != "copy_node=root" {
		t.Errorf("pgbench_history's table_attrs %q, want londiste3's copy_node=root", attrs)
	}
	for _, n := range []*cascadeNode{rt, br} {
		pgtest.Eventually(t, 10*time.Second, "no copy consumer left on "+n.name, func() bool {
			return copyConsumers(t, n.conn) == 0
		})
	}
}

// TestCascadeBranchWorkerKilled: the branch's worker, a process of its
// own, is killed with SIGKILL again and again under a pgbench load (after
// pauses that leave it batches of many ticks, and at random moments), and
// the branch's server is crashed once: no tick missing, no event twice in
// the branch's queue, every tick range the same as the root's, and the
// leaf under the branch equal to the root.
func TestCascadeBranchWorkerKilled(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s, br, lf, _ := newRootBranchLeaf(t)
	s.background(t, "londiste", s.rootINI, "worker", "-q")
	s.background(t, "londiste", lf.ini, "worker", "-q")
	s.cli(t, s.rootINI, "add-table", "--all")
	worker := startWorkerProcess(t, br.ini)
	t.Cleanup(func() { _ = worker.Process.Kill() })
	s.cli(t, br.ini, "add-table", "--all")
	s.cli(t, br.ini, "wait-sync", "--timeout", "60s")
	s.cli(t, lf.ini, "add-table", "--all")

	// PGQGO_CASCADE_KILLS=100: the longer run (about 0.75 s a kill)
	target, _ := strconv.Atoi(os.Getenv("PGQGO_CASCADE_KILLS"))
	seconds := max(16, target*85/100+2)
	loadDone := make(chan string)
	go func() {
		loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "200", "-T", strconv.Itoa(seconds))
	}()
	// the branch's server refuses ticks for a second: batches get their
	// events in and their ticks not, and the worker makes them later
	pgtest.Exec(t, br.conn, `create table refuse_ticks (x int);
	create function refuse_tick() returns trigger language plpgsql as
	  $$ begin if exists (select 1 from public.refuse_ticks) then raise exception 'tick refused by the test'; end if; return new; end $$;
	create trigger refuse_tick before insert on pgq.tick for each row execute function refuse_tick()`)
	time.Sleep(500 * time.Millisecond)
	pgtest.Exec(t, br.conn, "insert into refuse_ticks values (1)")
	// until the worker has met a refusal (a second, or longer on a loaded
	// machine, where a suite run once saw the worker make no tick within it)
	pgtest.Eventually(t, 60*time.Second, "a tick refused on the branch", func() bool {
		log, _ := os.ReadFile(filepath.Join(s.dir, "branch.log"))
		return strings.Contains(string(log), "tick refused by the test")
	})
	pgtest.Exec(t, br.conn, "delete from refuse_ticks")
	kills, crashed := 0, false
	deadline := time.Now().Add(time.Duration(seconds-1) * time.Second)
	for i := 0; time.Now().Before(deadline) && (target == 0 || kills < target); i++ {
		if i%4 == 0 {
			// a backlog: the next batches span many ticks
			_ = worker.Process.Kill()
			time.Sleep(1500 * time.Millisecond)
			worker = startWorkerProcess(t, br.ini)
		}
		time.Sleep(time.Duration(100+(i*137)%500) * time.Millisecond)
		_ = worker.Process.Kill()
		kills++
		if !crashed && kills == 8 {
			if err := br.cluster.Crash(s.ctx); err != nil {
				t.Fatal(err)
			}
			br.conn = pgtest.Conn(t, br.dsn)
			crashed = true
		}
		worker = startWorkerProcess(t, br.ini)
	}
	out := <-loadDone
	t.Logf("pgbench: %s", regexp.MustCompile(`tps = [\d.]+`).FindString(out))
	s.cli(t, lf.ini, "wait-sync", "--timeout", "60s")
	pgtest.Eventually(t, 60*time.Second, "branch and leaf equal to the root", func() bool {
		return s.sameAs(t, s.root, br.conn) && s.sameAs(t, s.root, lf.conn)
	})
	ticks, events := checkMirrored(t, s.root, br.conn)
	t.Logf("%d SIGKILLs of the branch worker and a crash of its server; branch: %d ticks, %d events, the same as the root's", kills, ticks, events)
	log, _ := os.ReadFile(filepath.Join(s.dir, "branch.log"))
	remade := strings.Count(string(log), "making the tick a crash left out")
	t.Logf("branch log: %d ticks made again after a failure, %d batches of several ticks", remade, strings.Count(string(log), "batch of several ticks"))
	if remade == 0 {
		t.Error("no tick was made again after the refused ones")
	}
	if dup := pgtest.Scalar[int64](t, br.conn, "select count(*) - count(distinct ev_id) from pgq.event_1"); dup != 0 {
		t.Fatalf("%d events twice in the branch's queue", dup)
	}
}

// TestCascadeChangeProvider: a root, two branches and a leaf, each on a
// server of its own; under a pgbench load the leaf moves between the
// branches and the root, and a branch moves under the other branch and
// back; a move that would make a loop is refused. Every node ends equal
// to the root, its completed tick never went back, and both branches'
// queues are the root's.
func TestCascadeChangeProvider(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s := newCascade(t, "b1", "b2")
	b1, b2, lf := s.nodes["b1"], s.nodes["b2"], s.nodes["leaf"]
	s.dumpOnFailure(t)
	s.dumpLogOnFailure(t, "b1")
	s.dumpLogOnFailure(t, "b2")
	s.cli(t, s.rootINI, "create-root", "root", s.rootDSN)
	s.cli(t, b1.ini, "create-branch", "b1", b1.dsn, "--provider="+s.rootDSN)
	s.cli(t, b2.ini, "create-branch", "b2", b2.dsn, "--provider="+s.rootDSN)
	s.cli(t, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+b1.dsn)
	s.startTickerQuiet(t)
	for _, n := range []*cascadeNode{s.nodes["root"], b1, b2, lf} {
		s.background(t, "londiste", n.ini, "worker", "-q")
	}
	s.cli(t, s.rootINI, "add-table", "--all")
	for _, n := range []*cascadeNode{b1, b2} {
		s.cli(t, n.ini, "add-table", "--all")
	}
	for _, n := range []*cascadeNode{b1, b2} {
		s.cli(t, n.ini, "wait-sync", "--timeout", "60s")
	}
	s.cli(t, lf.ini, "add-table", "--all")
	s.cli(t, lf.ini, "wait-sync", "--timeout", "60s")

	completed := func(n *cascadeNode) int64 {
		return workerTick(t, n.conn)
	}
	provider := func(n *cascadeNode) string {
		return pgtest.Scalar[string](t, n.conn, "select provider_node from pgq_node.get_node_info('replika')")
	}
	wctx, stopWriter := context.WithCancel(s.ctx)
	writer := &rootWriter{nodes: []*cascadeNode{s.nodes["root"]}}
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); writer.run(wctx, t, 200) }()
	moves := []struct {
		node *cascadeNode
		to   string
	}{{lf, "b2"}, {lf, "root"}, {b2, "b1"}, {lf, "b2"}, {lf, "b1"}, {b2, "root"}, {lf, "b2"}}
	for i, m := range moves {
		time.Sleep(time.Duration(500+i*211%900) * time.Millisecond)
		before := completed(m.node)
		start := time.Now()
		s.cli(t, m.node.ini, "change-provider", "--provider="+m.to)
		if got := provider(m.node); got != m.to {
			t.Fatalf("%s's provider is %s after change-provider to %s", m.node.name, got, m.to)
		}
		pgtest.Eventually(t, 30*time.Second, m.node.name+" applying again", func() bool { return completed(m.node) > before })
		t.Logf("%s -> %s in %v (ticks %d -> %d)", m.node.name, m.to, time.Since(start).Round(time.Millisecond), before, completed(m.node))
	}
	// b1 under b2 while b2 reads from... b1 would be a loop only if b2
	// read from b1: make it so, then try
	s.cli(t, b2.ini, "change-provider", "--provider=b1")
	if out, err := runCLI(t, "londiste", b1.ini, "change-provider", "--provider=b2"); err == nil || !strings.Contains(out+err.Error(), "loop") {
		t.Fatalf("a loop was not refused: %v\n%s", err, out)
	}
	if got := provider(b1); got != "root" {
		t.Fatalf("b1's provider is %s after a refused move", got)
	}
	s.cli(t, lf.ini, "change-provider", "--provider=b2") // a leaf two branches down
	time.Sleep(time.Second)
	stopWriter()
	<-writerDone
	t.Logf("writer: %d transactions", writer.written)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []*cascadeNode{b1, b2, lf} {
				for _, tbl := range s.tables {
					q := "select count(*)::text || ' ' || coalesce(sum(hashtext(x::text)), 0)::text from " + tbl + " x"
					if a, b := pgtest.Scalar[string](t, s.root, q), pgtest.Scalar[string](t, n.conn, q); a != b {
						t.Logf("%s %s: root %s, here %s", n.name, tbl, a, b)
					}
				}
			}
		}
	})
	// catching up takes what the machine's load makes it take (a busy CI
	// machine mirrors ticks slower than the root made them): waited for
	// while the nodes' completed ticks keep growing
	pgtest.EventuallyProgressing(t, 60*time.Second, 8*time.Minute, "every node equal to the root",
		func() int64 { return completed(b1) + completed(b2) + completed(lf) },
		func() bool {
			return s.sameAs(t, s.root, b1.conn) && s.sameAs(t, s.root, b2.conn) && s.sameAs(t, s.root, lf.conn)
		})
	for _, n := range []*cascadeNode{b1, b2} {
		ticks, events := checkMirrored(t, s.root, n.conn)
		t.Logf("%s: %d ticks, %d events, the same as the root's", n.name, ticks, events)
	}
	// old providers keep no subscription of a node that moved away
	for _, n := range []*cascadeNode{s.nodes["root"], b1, b2} {
		subs := pgtest.Column[string](t, n.conn, "select node_name from pgq_node.get_subscriber_info('replika') order by 1")
		t.Logf("%s's subscribers: %v", n.name, subs)
	}
	if subs := pgtest.Column[string](t, s.root, "select node_name from pgq_node.get_subscriber_info('replika') order by 1"); !slices.Equal(subs, []string{"b1"}) {
		t.Errorf("root's subscribers: %v, want [b1]", subs)
	}
	st := s.cli(t, lf.ini, "status")
	for _, want := range []string{"\nroot (root)\n", "+--: b1 (branch)", "+--: b2 (branch)", "+--: leaf (leaf)"} {
		if !strings.Contains(st, want) {
			t.Errorf("status: %q missing:\n%s", want, st)
		}
	}
	t.Logf("status:\n%s", st)
}

// addAll adds every table and sequence on each node (the first is the
// root) and waits for the others' copies.
func (s *cascadeSetup) addAll(t *testing.T, nodes ...*cascadeNode) {
	t.Helper()
	for i, n := range nodes {
		s.cli(t, n.ini, "add-table", "--all")
		s.cli(t, n.ini, "add-seq", "--all")
		if i > 0 {
			s.cli(t, n.ini, "wait-sync", "--timeout", "60s")
		}
	}
}

// rootWriter is a load generator that writes to whichever node takes
// writes: pgbench-like transactions (an account updated, a history row
// inserted) on its current node, moving to the next node when one is
// refused, and measuring how long writes were refused.
type rootWriter struct {
	nodes   []*cascadeNode
	mu      sync.Mutex
	gaps    []time.Duration
	written int
	errs    map[string]int // refusals by node and message
}

func (w *rootWriter) run(ctx context.Context, t testing.TB, rate int) {
	conns := make([]*pgx.Conn, len(w.nodes))
	for i, n := range w.nodes {
		c, err := pgx.Connect(ctx, n.dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		conns[i] = c
	}
	cur := 0
	var refused time.Time
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		aid, delta := 1+i*7919%100000, i%1000-500
		_, err := conns[cur].Exec(ctx, `with u as (update pgbench_accounts set abalance = abalance + $2 where aid = $1 returning aid)
		  insert into pgbench_history (tid, bid, aid, delta, mtime) select 1, 1, aid, $2, now() from u`, aid, delta)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if refused.IsZero() {
				refused = time.Now()
			}
			w.mu.Lock()
			if w.errs == nil {
				w.errs = map[string]int{}
			}
			w.errs[w.nodes[cur].name+": "+err.Error()]++
			w.mu.Unlock()
			cur = (cur + 1) % len(conns)
			continue
		}
		w.mu.Lock()
		w.written++
		if !refused.IsZero() {
			w.gaps = append(w.gaps, time.Since(refused))
			refused = time.Time{}
		}
		w.mu.Unlock()
	}
}

// TestCascadeSwitchover: the root and a branch on two servers (a leaf
// under the branch), each server with its ticker; under a load that writes
// to whichever node takes writes, the branch takes the root's place
// (takeover), and then the old root takes it back. Each time the old root
// goes on as a branch of the new one, writes are refused only briefly,
// and at the end every node is equal and the queues hold the same ticks
// and events.
func TestCascadeSwitchover(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s := newCascade(t, "b1")
	rt, b1, lf := s.nodes["root"], s.nodes["b1"], s.nodes["leaf"]
	s.dumpOnFailure(t)
	s.dumpLogOnFailure(t, "root")
	s.dumpLogOnFailure(t, "b1")
	s.cli(t, rt.ini, "create-root", "root", rt.dsn)
	s.cli(t, b1.ini, "create-branch", "b1", b1.dsn, "--provider="+rt.dsn)
	s.cli(t, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+b1.dsn)
	s.startTickerQuiet(t)
	s.startTickerOn(t, b1)
	for _, n := range []*cascadeNode{rt, b1, lf} {
		s.background(t, "londiste", n.ini, "worker", "-q")
	}
	// the serial of pgbench_history's key too: the new root goes on from
	// the value the old one published (ahead of its own)
	s.addAll(t, rt, b1, lf)

	ctx, stop := context.WithCancel(s.ctx)
	w := &rootWriter{nodes: []*cascadeNode{rt, b1}}
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, t, 200) }()
	typ := func(n *cascadeNode) string {
		return pgtest.Scalar[string](t, n.conn, "select node_type from pgq_node.get_node_info('replika')")
	}
	for i, sw := range []struct{ newRoot, old *cascadeNode }{{b1, rt}, {rt, b1}} {
		time.Sleep(2 * time.Second)
		start := time.Now()
		s.cli(t, sw.newRoot.ini, "takeover", sw.old.name)
		t.Logf("switchover %d: %s took %s's place in %v", i+1, sw.newRoot.name, sw.old.name, time.Since(start).Round(time.Millisecond))
		if a, b := typ(sw.newRoot), typ(sw.old); a != "root" || b != "branch" {
			t.Fatalf("after takeover: %s is %s, %s is %s", sw.newRoot.name, a, sw.old.name, b)
		}
		// the old root applies the new root's writes as a branch
		before := workerTick(t, sw.old.conn)
		pgtest.Eventually(t, 30*time.Second, sw.old.name+" replicating from "+sw.newRoot.name, func() bool {
			return workerTick(t, sw.old.conn) > before
		})
	}
	time.Sleep(2 * time.Second)
	stop()
	<-done
	w.mu.Lock()
	t.Logf("writer: %d transactions, writes refused for %v: %v", w.written, w.gaps, w.errs)
	if len(w.gaps) != 2 {
		t.Errorf("writes refused %d times, want 2 (one per switchover)", len(w.gaps))
	}
	for _, g := range w.gaps {
		if g > 30*time.Second { // speed is BenchmarkCascadeSwitchover's: this runs beside other tests
			t.Errorf("writes refused for %v", g)
		}
	}
	w.mu.Unlock()
	pgtest.Eventually(t, 60*time.Second, "every node equal", func() bool {
		return s.sameAs(t, rt.conn, b1.conn) && s.sameAs(t, rt.conn, lf.conn)
	})
	ticks, events := checkMirrored(t, rt.conn, b1.conn)
	t.Logf("root and b1: %d ticks, %d events in their ranges, the same on both", ticks, events)
	cmp := s.cli(t, b1.ini, "compare")
	if strings.Contains(cmp, "do not match") {
		t.Fatalf("compare:\n%s", cmp)
	}
	if out := s.cli(t, lf.ini, "status"); !strings.Contains(out, "\nroot (root)\n") || !strings.Contains(out, "+--: b1 (branch)") {
		t.Errorf("status:\n%s", out)
	}
}

// TestCascadeFailover: a root, two branches under it and a leaf under the
// second branch, each on a server of its own; under a load writing to the
// root, the first branch is held back, then the root's server is stopped
// with an immediate shutdown. takeover --dead-root on the held-back branch
// catches up from the other branch (which got further), promotes it, moves
// the other branch under it, and writes go on there; the surviving nodes end
// equal and their queues hold the same ticks and events.
func TestCascadeFailover(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s := newCascade(t, "r", "b1", "b2")
	r, b1, b2, lf := s.nodes["r"], s.nodes["b1"], s.nodes["b2"], s.nodes["leaf"]
	pgbench(t, s.ctx, r.dsn, "-i", "-q", "-s", "1")
	pgtest.Exec(t, r.conn, "alter table pgbench_history add column hid bigserial primary key")
	s.dumpOnFailure(t)
	for _, n := range []string{"r", "b1", "b2"} {
		s.dumpLogOnFailure(t, n)
	}
	s.cli(t, r.ini, "create-root", "r", r.dsn)
	s.cli(t, b1.ini, "create-branch", "b1", b1.dsn, "--provider="+r.dsn)
	s.cli(t, b2.ini, "create-branch", "b2", b2.dsn, "--provider="+r.dsn)
	s.cli(t, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+b2.dsn)
	for _, n := range []*cascadeNode{r, b1, b2} {
		s.startTickerOn(t, n)
	}
	stops := map[*cascadeNode]func(){}
	for _, n := range []*cascadeNode{r, b1, b2, lf} {
		stops[n] = s.background(t, "londiste", n.ini, "worker", "-q")
	}
	s.addAll(t, r, b1, b2, lf)
	ctx, stop := context.WithCancel(s.ctx)
	w := &rootWriter{nodes: []*cascadeNode{r, b1}}
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, t, 200) }()
	time.Sleep(2 * time.Second)
	// b1 falls behind: b2 has events b1 has not when the root dies; and
	// b2 a little: the root has events nobody has
	stops[b1]()
	time.Sleep(time.Second)
	// the leaf (under b2) stops a little before b2, so that no consumer
	// stands on b2's last tick, taken away below
	stops[lf]()
	leafAt := pgtest.Scalar[int64](t, b2.conn, "select last_tick from pgq.get_consumer_info('replika', 'l_leaf')")
	pgtest.Eventually(t, 10*time.Second, "b2 past the leaf", func() bool { return workerTick(t, b2.conn) > leafAt+1 })
	stops[b2]()
	time.Sleep(300 * time.Millisecond)
	if err := r.cluster.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// b2's worker as if killed between its last tick's events and the
	// tick: its queue one tick short of its completed tick, which only a
	// batch from the dead root would make; the takeover makes it
	b2Done := workerTick(t, b2.conn)
	pgtest.Exec(t, b2.conn, "delete from pgq.tick where tick_queue = (select queue_id from pgq.queue where queue_name = 'replika') and tick_id = $1", b2Done)
	s.background(t, "londiste", b1.ini, "worker", "-q")
	s.background(t, "londiste", b2.ini, "worker", "-q")
	s.background(t, "londiste", lf.ini, "worker", "-q")
	b1Tick := pgtest.Scalar[int64](t, b1.conn, "select last_tick_id from pgq.get_queue_info('replika')")
	b2Tick := pgtest.Scalar[int64](t, b2.conn, "select last_tick_id from pgq.get_queue_info('replika')")
	if b2Tick <= b1Tick {
		t.Fatalf("b2 at tick %d is not ahead of b1 at %d", b2Tick, b1Tick)
	}
	start := time.Now()
	s.cli(t, b1.ini, "takeover", "r", "--dead-root")
	took := time.Since(start)
	t.Logf("takeover --dead-root in %v (b1 was at tick %d, b2 at %d)", took.Round(time.Millisecond), b1Tick, b2Tick)
	if took > 30*time.Second {
		t.Errorf("takeover took %v", took)
	}
	if typ := pgtest.Scalar[string](t, b1.conn, "select node_type from pgq_node.get_node_info('replika')"); typ != "root" {
		t.Fatalf("b1 is %s", typ)
	}
	if p := pgtest.Scalar[string](t, b2.conn, "select provider_node from pgq_node.get_node_info('replika')"); p != "b1" {
		t.Fatalf("b2 reads from %s", p)
	}
	if n := pgtest.Scalar[int64](t, b1.conn, "select count(*) from pgq_node.get_subscriber_info('replika') where worker_name = 'r.gravestone'"); n != 1 {
		t.Errorf("no gravestone of r on b1")
	}
	time.Sleep(2 * time.Second)
	stop()
	<-done
	w.mu.Lock()
	t.Logf("writer: %d transactions, writes refused for %v from the root's death (%v after it)", w.written, w.gaps, time.Since(killed).Round(time.Millisecond))
	if len(w.gaps) != 1 {
		t.Errorf("write gaps %v, want one", w.gaps)
	}
	w.mu.Unlock()
	pgtest.Eventually(t, 60*time.Second, "the surviving nodes equal", func() bool {
		return s.sameAs(t, b1.conn, b2.conn) && s.sameAs(t, b1.conn, lf.conn)
	})
	ticks, events := checkMirrored(t, b1.conn, b2.conn)
	t.Logf("b1 and b2: %d ticks, %d events, the same on both", ticks, events)
	for _, n := range []*cascadeNode{b2, lf} {
		if cmp := s.cli(t, n.ini, "compare"); strings.Contains(cmp, "do not match") {
			t.Fatalf("%s compare:\n%s", n.name, cmp)
		}
	}
	if out := s.cli(t, lf.ini, "status"); !strings.Contains(out, "\nb1 (root)\n") {
		t.Errorf("status:\n%s", out)
	}

	// the old root comes back: resurrect dumps exactly the events past the
	// gravestone's tick (they never left it), and it goes on as a branch
	if err := r.cluster.Up(s.ctx); err != nil {
		t.Fatal(err)
	}
	r.conn = pgtest.Conn(t, r.dsn)
	grave := pgtest.Scalar[int64](t, b1.conn, "select last_tick from pgq.get_consumer_info('replika', 'r.gravestone')")
	snap := pgtest.Scalar[string](t, r.conn, "select tick_snapshot::text from pgq.tick where tick_id = $1", grave)
	lost := pgtest.Column[int64](t, r.conn, "select ev_id from pgq.event_1 where not txid_visible_in_snapshot(ev_txid, $1) order by 1", snap)
	dump := filepath.Join(s.dir, "lost.json")
	out := s.cli(t, r.ini, "resurrect", "--dump-file", dump)
	t.Logf("resurrect: %s", out)
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	var dumped []struct {
		ID   int64  `json:"ev_id"`
		Type string `json:"ev_type"`
	}
	if err := json.Unmarshal(data, &dumped); err != nil {
		t.Fatalf("dump: %v\n%.500s", err, data)
	}
	// the old root's worker, back as a root until resurrect, may add its
	// root duties' events (watermarks, sequences) after lost was read:
	// those never left it either and are dumped too
	var ids []int64
	for _, e := range dumped {
		if !slices.Contains(lost, e.ID) && (strings.HasPrefix(e.Type, "pgq.") || strings.HasPrefix(e.Type, "londiste.")) {
			t.Logf("also dumped: event %d %s, made by the old root's worker after it came back", e.ID, e.Type)
			continue
		}
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, lost) || len(lost) == 0 {
		t.Fatalf("dumped %d events %v, the old root had %d past tick %d: %v", len(ids), ids, len(lost), grave, lost)
	}
	t.Logf("%d events past the gravestone's tick %d dumped", len(lost), grave)
	if n := pgtest.Scalar[int64](t, r.conn, "select count(*) from pgq.event_1 where not txid_visible_in_snapshot(ev_txid, $1)", snap); n != 0 {
		t.Errorf("%d lost events left in the old root's queue", n)
	}
	if typ := pgtest.Scalar[string](t, r.conn, "select node_type || ' ' || provider_node || ' ' || worker_paused from pgq_node.get_node_info('replika')"); typ != "branch b1 true" {
		t.Fatalf("old root after resurrect: %s", typ)
	}
	before := pgtest.Scalar[int64](t, r.conn, "select worker_last_tick from pgq_node.get_node_info('replika')")
	s.cli(t, r.ini, "resume")
	pgbench(t, s.ctx, b1.dsn, "-n", "-t", "50", "-f", writeScript(t, s.dir))
	pgtest.Eventually(t, 30*time.Second, "the old root replicating from b1", func() bool {
		return pgtest.Scalar[int64](t, r.conn, "select worker_last_tick from pgq_node.get_node_info('replika')") > before
	})
	ticks, events = checkMirrored(t, b1.conn, r.conn, b2Done)
	t.Logf("b1 and the resurrected r: %d ticks, %d events, the same on both", ticks, events)
}

// writeScript is a pgbench script that writes what rootWriter writes,
// without pgbench's own :scale lookup.
func writeScript(t *testing.T, dir string) string {
	path := filepath.Join(dir, "write.sql")
	if err := os.WriteFile(path, []byte("\\set aid random(1, 100000)\nupdate pgbench_accounts set abalance = abalance + 1 where aid = :aid;\n"+
		"insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, :aid, 1, now());\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCascadeMixedWithLondiste3: one branch run by Skytools' londiste3
// (its worker, its CLI), the other nodes by pgqgo, on pgqgo's schemas and
// four servers. Under a load the leaf below londiste3's branch (a pgqgo
// worker) replicates; then londiste3's takeover makes the pgqgo branch the
// root, and pgqgo's takeover makes londiste3's branch the root. Every node
// ends equal.
func TestCascadeMixedWithLondiste3(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s := newCascade(t, "b1", "b2")
	rt, b1, b2, lf := s.nodes["root"], s.nodes["b1"], s.nodes["b2"], s.nodes["leaf"]
	s.dumpOnFailure(t)
	for _, n := range []string{"root", "b1", "b2"} {
		s.dumpLogOnFailure(t, n)
	}
	for _, n := range []*cascadeNode{rt, b1, b2, lf} {
		if out, err := runCLI(t, "install", "--db", n.dsn, "--with", "pgq_node,londiste"); err != nil {
			t.Fatalf("install: %v\n%s", err, out)
		}
	}
	londiste := pgtest.Londiste3(t, s.ctx, s.dir)
	s.cli(t, rt.ini, "create-root", "root", rt.dsn)
	londiste(b1.ini, "create-branch", "b1", b1.dsn, "--provider="+rt.dsn)
	s.cli(t, b2.ini, "create-branch", "b2", b2.dsn, "--provider="+rt.dsn)
	s.cli(t, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+b1.dsn)
	// an idle tick every second: londiste3's copy starts at one (and its
	// handoffs wait for them)
	for _, n := range []*cascadeNode{rt, b1, b2} {
		pgtest.Exec(t, n.conn, "select pgq.set_queue_config('replika', 'ticker_idle_period', '1 second')")
	}
	s.startTickerQuiet(t)
	s.startTickerOn(t, b1)
	s.startTickerOn(t, b2)
	for _, n := range []*cascadeNode{rt, b2, lf} {
		s.background(t, "londiste", n.ini, "worker", "-q")
	}
	londiste(b1.ini, "worker", "-d")
	t.Cleanup(func() {
		_ = exec.Command("londiste", b1.ini, "-s").Run()
		_ = exec.Command("pkill", "-9", "-f", "londiste "+b1.ini).Run()
	})
	for _, n := range []*cascadeNode{rt, b1, b2, lf} {
		if n == b1 {
			londiste(n.ini, "add-table", "--all")
			londiste(n.ini, "add-seq", "--all")
			s.cli(t, n.ini, "wait-sync", "--timeout", "120s")
			continue
		}
		s.cli(t, n.ini, "add-table", "--all")
		s.cli(t, n.ini, "add-seq", "--all")
		if n != rt {
			s.cli(t, n.ini, "wait-sync", "--timeout", "60s")
		}
	}
	ctx, stop := context.WithCancel(s.ctx)
	w := &rootWriter{nodes: []*cascadeNode{rt, b2, b1}}
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, t, 100) }()
	typ := func(n *cascadeNode) string {
		return pgtest.Scalar[string](t, n.conn, "select node_type from pgq_node.get_node_info('replika')")
	}
	time.Sleep(time.Second)
	// londiste3's CLI against pgqgo's workers
	out := londiste(b2.ini, "takeover", "root")
	if a, b := typ(b2), typ(rt); a != "root" || b != "branch" {
		t.Fatalf("after londiste3's takeover: b2 %s, root %s\n%s", a, b, out)
	}
	time.Sleep(time.Second)
	// pgqgo's CLI against londiste3's worker
	s.cli(t, b1.ini, "takeover", "b2")
	if a, b := typ(b1), typ(b2); a != "root" || b != "branch" {
		t.Fatalf("after pgqgo's takeover: b1 %s, b2 %s", a, b)
	}
	time.Sleep(time.Second)
	stop()
	<-done
	w.mu.Lock()
	t.Logf("writer: %d transactions, writes refused for %v: %v", w.written, w.gaps, w.errs)
	w.mu.Unlock()
	pgtest.Eventually(t, 90*time.Second, "every node equal", func() bool {
		return s.sameAs(t, b1.conn, b2.conn) && s.sameAs(t, b1.conn, rt.conn) && s.sameAs(t, b1.conn, lf.conn)
	})
	st := s.cli(t, lf.ini, "status")
	t.Logf("status:\n%s", st)
	if !strings.Contains(st, "\nb1 (root)\n") {
		t.Errorf("status:\n%s", st)
	}
}

// TestCascadeWatermarksRotation: root, branch and leaf with rotation every
// 2 s and watermarks published every second. Under a pgbench load the
// root's and the branch's event tables rotate; with the leaf's worker
// stopped both stop rotating (the branch keeps the leaf's events, the root
// the branch's, through the watermarks) and status --check names the
// consumers that hold them; with the leaf back both rotate again.
func TestCascadeWatermarksRotation(t *testing.T) {
	t.Parallel() // servers of its own: waits overlap with the other cascade tests'
	s := newCascade(t, "branch")
	rt, br, lf := s.nodes["root"], s.nodes["branch"], s.nodes["leaf"]
	s.dumpOnFailure(t)
	s.dumpLogOnFailure(t, "branch")
	for _, n := range []*cascadeNode{rt, br, lf} {
		f, err := os.OpenFile(n.ini, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "global_wm_publish_period = 1")
		f.Close()
	}
	s.cli(t, rt.ini, "create-root", "root", rt.dsn)
	s.cli(t, br.ini, "create-branch", "branch", br.dsn, "--provider="+rt.dsn)
	s.cli(t, lf.ini, "create-leaf", "leaf", lf.dsn, "--provider="+br.dsn)
	for _, n := range []*cascadeNode{rt, br} {
		pgtest.Exec(t, n.conn, "select pgq.set_queue_config('replika', 'rotation_period', '2 seconds')")
		s.startTickerMaint(t, n, 1)
	}
	stops := map[*cascadeNode]func(){}
	for _, n := range []*cascadeNode{rt, br, lf} {
		stops[n] = s.background(t, "londiste", n.ini, "worker", "-q")
	}
	for _, n := range []*cascadeNode{rt, br, lf} {
		s.cli(t, n.ini, "add-table", "--all")
		if n != rt {
			s.cli(t, n.ini, "wait-sync", "--timeout", "60s")
		}
	}
	loadDone := make(chan string)
	go func() { loadDone <- pgbench(t, s.ctx, s.rootDSN, "-n", "-c", "2", "-R", "200", "-T", "20") }()
	switched := func(n *cascadeNode) time.Time {
		return pgtest.Scalar[time.Time](t, n.conn, "select queue_switch_time from pgq.queue where queue_name = 'replika'")
	}
	rotating := func(what string) {
		a, b := switched(rt), switched(br)
		pgtest.Eventually(t, 20*time.Second, "root and branch rotating "+what, func() bool {
			return switched(rt).After(a) && switched(br).After(b)
		})
	}
	rotating("under load")
	stops[lf]()
	time.Sleep(4 * time.Second) // each may rotate once more
	a, b := switched(rt), switched(br)
	time.Sleep(5 * time.Second)
	if !switched(rt).Equal(a) || !switched(br).Equal(b) {
		t.Fatalf("rotation went on with the leaf stopped: root %v -> %v, branch %v -> %v", a, switched(rt), b, switched(br))
	}
	out, err := runCLI(t, "londiste", lf.ini, "status", "--check", "--max-lag", "3s")
	if err == nil {
		t.Fatalf("status --check passed with the leaf stopped:\n%s", out)
	}
	msg := out + err.Error()
	for _, want := range []string{"branch: consumer l_leaf", "branch: consumer .leaf.watermark", "node leaf", "root: consumer .branch.watermark", "rotation waits"} {
		if !strings.Contains(msg, want) {
			t.Errorf("status --check: %q missing:\n%s", want, msg)
		}
	}
	t.Logf("status --check with the leaf stopped: %s", err)
	s.background(t, "londiste", lf.ini, "worker", "-q")
	rotating("with the leaf back")
	<-loadDone
	pgtest.Eventually(t, 60*time.Second, "leaf equal to the root", func() bool { return s.sameAs(t, rt.conn, lf.conn) })
}
