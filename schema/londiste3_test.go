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
// Skytools SQL installed: create-root and create-leaf, add-table and
// add-seq on both, the copy and its hand-over to the main worker, a writer
// inserting, updating and deleting throughout, an EXECUTE script carried to
// the leaf, then compare (equal), status, members, tables, seqs and missing.
func TestLondiste3OnPgqgoSchemas(t *testing.T) {
	if _, err := exec.LookPath("londiste"); err != nil {
		t.Fatalf("londiste not installed (scripts/install-deps.sh installs python3-londiste): %v", err)
	}
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
		pgtest.Exec(t, c, "create table t (id int primary key, v text, n numeric); create sequence s")
	}
	dir := t.TempDir()
	londiste := func(ini string, args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, "londiste", append([]string{ini}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("londiste %s %v: %v\n%s", filepath.Base(ini), args, err, out)
		}
		return string(out)
	}
	nodeINI := func(name, dsn string) string {
		path := filepath.Join(dir, name+".ini")
		body := fmt.Sprintf("[londiste]\njob_name = l_%s\ndb = %s\nqueue_name = replika\nlogfile = %s\npidfile = %s\nloop_delay = 0.1\n"+
			"local_wm_publish_period = 1\n", name, dsn, filepath.Join(dir, name+".log"), filepath.Join(dir, name+".pid"))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	root, leaf := nodeINI("root", src), nodeINI("leaf", dst)
	londiste(root, "create-root", "root", src)
	londiste(leaf, "create-leaf", "leaf", dst, "--provider="+src)
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
	londiste(root, "add-table", "public.t")
	londiste(leaf, "add-table", "public.t")
	londiste(root, "add-seq", "public.s")
	londiste(leaf, "add-seq", "public.s")

	// the writer
	wctx, stopWriter := context.WithCancel(ctx)
	var written int
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, src)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for i := 1; wctx.Err() == nil; i++ {
			sql := "insert into t values ($1::int, 'row ' || $1::int || ', ünï', nextval('s'))"
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
	pgtest.Eventually(t, 90*time.Second, "the leaf replicating", func() bool {
		return pgtest.Scalar[int64](t, dstConn, "select count(*) from t") > 50
	})
	londiste(leaf, "wait-sync")

	// an EXECUTE script, run on the root and carried to the leaf
	ddl := filepath.Join(dir, "add_note.sql")
	if err := os.WriteFile(ddl, []byte("--*-- Local-Table: public.t\nalter table @public.t@ add column note text;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	londiste(root, "execute", ddl)
	pgtest.Eventually(t, 60*time.Second, "the EXECUTE script applied on the leaf", func() bool {
		return pgtest.Scalar[int64](t, dstConn, "select count(*) from information_schema.columns where table_name = 't' and column_name = 'note'") == 1
	})
	time.Sleep(2 * time.Second)
	stopWriter()
	same := func() bool {
		q := "select count(*)::text || ' ' || coalesce(sum(hashtext(t::text)), 0)::text from t"
		return pgtest.Scalar[string](t, srcConn, q) == pgtest.Scalar[string](t, dstConn, q)
	}
	pgtest.Eventually(t, 60*time.Second, "the leaf equal to the root", same)
	cmp := londiste(leaf, "compare")
	m := regexp.MustCompile(`srcdb: (\d+ rows, checksum=-?\d+)[\s\S]*dstdb: (\d+ rows, checksum=-?\d+)`).FindStringSubmatch(cmp)
	if m == nil || m[1] != m[2] {
		t.Fatalf("londiste compare:\n%s", cmp)
	}
	pgtest.Eventually(t, 60*time.Second, "the sequence carried to the leaf", func() bool {
		return pgtest.Scalar[int64](t, dstConn, "select last_value from s") >= pgtest.Scalar[int64](t, srcConn, "select last_value from s")
	})
	for cmd, want := range map[string]string{"status": "leaf (leaf)", "members": "leaf", "tables": "public.t", "seqs": "public.s", "missing": ""} {
		if out := londiste(leaf, cmd); !strings.Contains(out, want) {
			t.Errorf("londiste %s: %q not in\n%s", cmd, want, out)
		}
	}
	if out := londiste(leaf, "tables"); !regexp.MustCompile(`public\.t\s+ok`).MatchString(out) {
		t.Errorf("londiste tables: public.t not ok:\n%s", out)
	}
	t.Logf("%d writes replicated by londiste3 on pgqgo's pgq, pgq_node and londiste; compare: %s = %s", written, m[1], m[2])
}
