package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// TestLondisteThroughAdoption: Skytools' londiste (Debian python3-londiste)
// replicates a table from a root to a leaf database, both on Skytools PgQ
// ticked by Debian's pgqd, while a writer keeps changing the table. Then the
// procedure: stop pgqd, `pgqgo upgrade` on both databases (adopted,
// londiste's extensions dissolved), start `pgqgo ticker`. The
// londiste workers are never restarted; the leaf must end equal to the root
// and londiste's own compare must agree.
func TestLondisteThroughAdoption(t *testing.T) {
	t.Parallel() // servers or databases of its own
	ctx := context.Background()
	src, dst := pgtest.NewDB(t, pgtest.Empty), pgtest.NewDB(t, pgtest.Empty)
	srcConn, dstConn := pgtest.Conn(t, src), pgtest.Conn(t, dst)
	for _, c := range []*pgx.Conn{srcConn, dstConn} {
		pgtest.Exec(t, c, "create table t (id int primary key, v text, n numeric)")
	}
	dir := t.TempDir()
	londiste := pgtest.Londiste3(t, ctx, dir)
	root, leaf := pgtest.LondisteINI(t, dir, "root", src, ""), pgtest.LondisteINI(t, dir, "leaf", dst, "")
	londiste(root, "create-root", "root", src)
	londiste(leaf, "create-leaf", "leaf", dst, "--provider="+src)
	if pgtest.Scalar[int64](t, srcConn, "select count(*) from pg_extension where extname in ('pgq', 'pgq_node', 'londiste')") != 3 {
		t.Fatal("londiste did not install Skytools' extensions")
	}

	cfgSrc, _ := pgx.ParseConfig(src)
	cfgDst, _ := pgx.ParseConfig(dst)
	ini, pidfile, logfile := filepath.Join(dir, "ticker.ini"), filepath.Join(dir, "ticker.pid"), filepath.Join(dir, "ticker.log")
	writeINI(t, ini, pidfile, logfile, cfgSrc.Database, cfgDst.Database)
	appendFile(t, ini, "maint_period = 1\n") // maintenance (pgq_node's and londiste's too) every second
	pgqd := exec.Command("pgqd", "-q", ini)
	if err := pgqd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{root, leaf} {
		londiste(node, "worker", "-d")
		t.Cleanup(func() { exec.Command("londiste", node, "-s").Run() })
	}
	londiste(root, "add-table", "public.t")
	londiste(leaf, "add-table", "public.t")

	// the writer: inserts, updates and deletes, one statement per transaction
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var written int
	wg.Add(1)
	t.Cleanup(func() { stopWriter(); wg.Wait() })
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, src)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for i := 1; wctx.Err() == nil; i++ {
			sql := "insert into t values ($1::int, 'row ' || $1::int || ', ünï', $1::int * 1.5)"
			switch {
			case i%7 == 0:
				sql = "delete from t where id = $1::int - 3"
			case i%3 == 0:
				sql = "update t set v = 'upd ' || $1::int, n = n + 1 where id = $1::int - 1"
			}
			if _, err := conn.Exec(ctx, sql, i); err != nil {
				if wctx.Err() == nil {
					t.Errorf("writer: %v", err)
				}
				return
			}
			written = i
			time.Sleep(5 * time.Millisecond)
		}
	}()
	same := func() bool {
		q := "select count(*)::text || ' ' || coalesce(sum(hashtext(t::text)), 0)::text from t"
		return pgtest.Scalar[string](t, srcConn, q) == pgtest.Scalar[string](t, dstConn, q)
	}
	pgtest.Eventually(t, 60*time.Second, "the leaf replicating", func() bool {
		return pgtest.Scalar[int64](t, dstConn, "select count(*) from t") > 50
	})

	londiste(leaf, "wait-sync") // the initial copy is done: the leaf replays events

	// stop pgqd, adopt both databases, start pgqgo ticker
	if err := pgqd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pgqd.Wait()
	// (one database at a time: --all-databases would also visit the other
	// tests' databases on this shared cluster; TestCLIUpgradeAllDatabases
	// covers it on a cluster of its own)
	for _, db := range []string{src, dst} {
		out, err := pgqgo("upgrade", "--db", db).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "over Skytools PgQ 3.5") {
			t.Fatalf("pgqgo upgrade: %v\n%s", err, out)
		}
	}
	// after adoption pgq.maint_operations still lists pgq_node's and
	// londiste's maintenance, as PgQ 3.5 did, and the ticker runs it
	ops := strings.Join(pgtest.Column[string](t, srcConn,
		"select func_name || coalesce('(' || func_arg || ')', '()') from pgq.maint_operations()"), " ")
	for _, want := range []string{"pgq_node.maint_watermark(replika)", "londiste.periodic_maintenance()"} {
		if !strings.Contains(ops, want) {
			t.Fatalf("after adoption pgq.maint_operations() lists %q, without %s", ops, want)
		}
	}
	pgtest.Exec(t, srcConn, fmt.Sprintf("alter database %s set track_functions = 'all'", pgx.Identifier{cfgSrc.Database}.Sanitize()))
	watermark := func() int64 {
		return pgtest.Scalar[int64](t, srcConn, `select s.sub_last_tick from pgq.subscription s
			join pgq.consumer c on c.co_id = s.sub_consumer where c.co_name = '.global_watermark'`)
	}
	// pgq_node.maint_watermark moves the root's global watermark once it lags
	// 5 minutes: make it look that old
	wm0 := watermark()
	pgtest.Exec(t, srcConn, "update pgq.tick set tick_time = tick_time - interval '10 minutes' where tick_id <= $1", wm0)
	ticker := pgqgo("ticker", "-q", ini)
	if err := ticker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ticker.Process.Signal(syscall.SIGTERM)
		ticker.Wait()
	}()
	for _, fn := range []string{"pgq_node.maint_watermark", "londiste.periodic_maintenance"} {
		pgtest.Eventually(t, 30*time.Second, fn+" run by the ticker after adoption", func() bool {
			return pgtest.Scalar[int64](t, srcConn, `select coalesce(sum(calls), 0) from pg_stat_user_functions
				where schemaname || '.' || funcname = $1`, fn) > 0
		})
	}
	pgtest.Eventually(t, 60*time.Second, "the global watermark moving after adoption", func() bool {
		return watermark() > wm0
	})
	time.Sleep(3 * time.Second)
	stopWriter()
	wg.Wait()
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", same)
	londiste(leaf, "wait-sync")
	if n := pgtest.Scalar[int64](t, srcConn, "select count(*) from pg_extension where extname in ('pgq', 'pgq_node', 'londiste')"); n != 0 {
		t.Fatalf("%d Skytools extensions left", n)
	}
	cmp := londiste(leaf, "compare")
	m := regexp.MustCompile(`srcdb: (\d+ rows, checksum=-?\d+)[\s\S]*dstdb: (\d+ rows, checksum=-?\d+)`).FindStringSubmatch(cmp)
	if m == nil || m[1] != m[2] || strings.Contains(strings.ToLower(cmp), "error") {
		t.Fatalf("londiste compare:\n%s", cmp)
	}
	t.Logf("%d writes replicated through the adoption; londiste compare:\n%s", written, cmp)
}

// appendFile adds text at the end of a file.
func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
