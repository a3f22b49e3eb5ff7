package schema_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// TestLondiste3OnPgqgoSchemas: Skytools' own londiste3 (Debian
// python3-londiste) runs on pgqgo's pgq, pgq_node and londiste, with no
// Skytools SQL installed: create-root and create-leaf, add-table of
// pgbench's four tables and add-seq on both, the copies and their hand-over
// to the main worker, a pgbench load (TPC-B) throughout, an EXECUTE script
// carried to the leaf, then compare (equal for every table), status,
// members, tables, seqs and missing.
func TestLondiste3OnPgqgoSchemas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, dst := pgtest.NewDB(t, pgtest.PgqGo), pgtest.NewDB(t, pgtest.PgqGo)
	srcConn, dstConn := pgtest.Conn(t, src), pgtest.Conn(t, dst)
	for _, c := range []*pgx.Conn{srcConn, dstConn} {
		if err := schema.InstallComponent(ctx, c, schema.Node); err != nil {
			t.Fatal(err)
		}
		if err := schema.InstallComponent(ctx, c, schema.Londiste); err != nil {
			t.Fatal(err)
		}
		pgtest.Exec(t, c, "create sequence s")
	}
	pgbench := func(dsn string, args ...string) {
		t.Helper()
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "/usr/lib/postgresql/15/bin/pgbench", append(args, "-h", cfg.Host,
			"-p", fmt.Sprint(cfg.Port), "-U", cfg.User, cfg.Database)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
	}
	// pgbench's tables: data on the root, empty on the leaf; history gets a
	// key (londiste replicates tables with a primary key)
	pgbench(src, "-i", "-q", "-s", "1")
	pgbench(dst, "-i", "-q", "-I", "dtp")
	for _, c := range []*pgx.Conn{srcConn, dstConn} {
		pgtest.Exec(t, c, "alter table pgbench_history add column hid bigserial primary key")
	}
	tables := []string{"public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers", "public.pgbench_history"}
	dir := t.TempDir()
	londiste := pgtest.Londiste3(t, ctx, dir)
	root, leaf := pgtest.LondisteINI(t, dir, "root", src, "parallel_copies = 4\n"), pgtest.LondisteINI(t, dir, "leaf", dst, "parallel_copies = 4\n")
	londiste(root, "create-root", "root", src)
	londiste(leaf, "create-leaf", "leaf", dst, "--provider="+src)
	// idle ticks every second: a copy waits for a tick after the load stops
	pgtest.Exec(t, srcConn, "select pgq.set_queue_config('replika', 'ticker_idle_period', '1 second')")
	for _, c := range []*pgx.Conn{srcConn, dstConn} {
		if n := pgtest.Scalar[int64](t, c, "select count(*) from pg_extension where extname in ('pgq', 'pgq_node', 'londiste')"); n != 0 {
			t.Fatalf("londiste installed %d of Skytools' extensions", n)
		}
	}

	// ticking, as pgqgo ticker does it
	var wg sync.WaitGroup
	for _, dsn := range []string{src, dst} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(context.Background())
			for ctx.Err() == nil {
				_, _ = conn.Exec(ctx, "select count(*) from pgq.pgqgo_ticker('5 ms', '50 ms')")
				_, _ = conn.Exec(ctx, "select pgq.maint_retry_events()")
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	for _, node := range []string{root, leaf} {
		londiste(node, "worker", "-d")
		t.Cleanup(func() { exec.Command("londiste", node, "-s").Run() })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	londiste(root, append([]string{"add-table"}, tables...)...)
	londiste(leaf, append([]string{"add-table"}, tables...)...)
	londiste(root, "add-seq", "public.s")
	londiste(leaf, "add-seq", "public.s")

	// the load: pgbench's TPC-B at 200 tps for 12 s, and the sequence used
	pgtest.Exec(t, srcConn, "select nextval('s') from generate_series(1, 100)")
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		pgbench(src, "-n", "-c", "2", "-R", "200", "-T", "12")
	}()
	pgtest.Eventually(t, 90*time.Second, "the leaf copying pgbench_accounts", func() bool {
		return pgtest.Scalar[int64](t, dstConn, "select count(*) from pgbench_accounts") == 100000
	})
	londiste(leaf, "wait-sync")

	// an EXECUTE script, run on the root and carried to the leaf
	ddl := filepath.Join(dir, "add_note.sql")
	if err := os.WriteFile(ddl, []byte("--*-- Local-Table: public.pgbench_history\nalter table @public.pgbench_history@ add column note text;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	londiste(root, "execute", ddl)
	pgtest.Eventually(t, 60*time.Second, "the EXECUTE script applied on the leaf", func() bool {
		return pgtest.Scalar[int64](t, dstConn, "select count(*) from information_schema.columns where table_name = 'pgbench_history' and column_name = 'note'") == 1
	})
	<-loadDone
	same := func() bool {
		for _, tbl := range tables {
			q := "select count(*)::text || ' ' || coalesce(sum(hashtext(x::text)), 0)::text from " + tbl + " x"
			if pgtest.Scalar[string](t, srcConn, q) != pgtest.Scalar[string](t, dstConn, q) {
				return false
			}
		}
		return true
	}
	pgtest.Eventually(t, 90*time.Second, "the leaf equal to the root", same)
	cmp := londiste(leaf, "compare")
	m := regexp.MustCompile(`srcdb: (\d+ rows, checksum=-?\d+)\s*\n[^\n]*dstdb: (\d+ rows, checksum=-?\d+)`).FindAllStringSubmatch(cmp, -1)
	if len(m) != len(tables) {
		t.Fatalf("londiste compare: %d tables compared, want %d:\n%s", len(m), len(tables), cmp)
	}
	for _, p := range m {
		if p[1] != p[2] {
			t.Fatalf("londiste compare:\n%s", cmp)
		}
	}
	pgtest.Eventually(t, 60*time.Second, "the sequence carried to the leaf", func() bool {
		return pgtest.Scalar[int64](t, dstConn, "select last_value from s") >= pgtest.Scalar[int64](t, srcConn, "select last_value from s")
	})
	for cmd, want := range map[string]string{"status": "leaf (leaf)", "members": "leaf", "tables": "public.pgbench_history", "seqs": "public.s", "missing": ""} {
		if out := londiste(leaf, cmd); !strings.Contains(out, want) {
			t.Errorf("londiste %s: %q not in\n%s", cmd, want, out)
		}
	}
	if out := londiste(leaf, "tables"); len(regexp.MustCompile(`pgbench_\w+\s+ok`).FindAllString(out, -1)) != len(tables) {
		t.Errorf("londiste tables: not every table ok:\n%s", out)
	}
	history := pgtest.Scalar[int64](t, dstConn, "select count(*) from pgbench_history")
	t.Logf("londiste3 on pgqgo's pgq, pgq_node and londiste: pgbench replicated (%d transactions in history), compare equal for %d tables", history, len(m))
}
