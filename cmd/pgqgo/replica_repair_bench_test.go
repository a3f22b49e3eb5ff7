package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// BenchmarkLondisteRepairBig: repair of pgbench_accounts at scale 100 (10M
// rows on each side) with 1,000 differences on the leaf, at both ends of
// the key order and in between. pgqgo's repair --apply runs as a process of
// its own: its peak RSS (getrusage) and the temporary files it and the two
// servers wrote (pg_stat_database.temp_files) are reported; then londiste3's
// repair of its leaf in the same run (PGQGO_BENCH_ONLY_PGQGO=1 leaves it out).
// Issue 18 asks: RSS <= 200 MB, no temporary files.
//
//	go test ./cmd/pgqgo -run '^$' -bench LondisteRepairBig -benchtime 1x -timeout 60m
func BenchmarkLondisteRepairBig(b *testing.B) {
	for range b.N {
		n := newBenchNodes(b, benchSetup{scale: 100})
		n.cli(n.goINI, "add-table", "public.pgbench_accounts", "--expect-sync")
		n.startGo(b)
		only := os.Getenv("PGQGO_BENCH_ONLY_PGQGO") == "1"
		if !only {
			n.londiste(n.pyINI, "add-table", "public.pgbench_accounts", "--expect-sync")
			n.startPy(b)
		}
		// 1,000 differences: 300 rows missing (the first key among them),
		// 400 changed (the last key among them), 300 extra past the end
		differ := `set session_replication_role = replica;
			delete from pgbench_accounts where aid = 1 or aid % 33331 = 7 and aid <= 9999000;
			update pgbench_accounts set abalance = abalance + 1, filler = 'leaf' where aid = 10000000 or aid % 25013 = 11 and aid < 10000000;
			insert into pgbench_accounts select 10000000 + g, 1, g, 'extra' from generate_series(1, 300) g`
		for name, dsn := range map[string]string{"leaf_go": n.goDSN, "leaf_py": n.pyDSN} {
			c := pgtest.Conn(b, dsn)
			pgtest.Exec(b, c, differ)
			var missing, changed int64
			_ = c.QueryRow(b.Context(), "select 10000000 - count(*) filter (where aid <= 10000000), count(*) filter (where filler = 'leaf') from pgbench_accounts").Scan(&missing, &changed)
			b.Logf("%s: %d rows missing, %d changed, 300 extra", name, missing, changed)
		}
		tempFiles := func() string {
			var out []string
			for _, dsn := range []string{n.rootDSN, n.goDSN} {
				c := pgtest.Conn(b, dsn)
				var files, bytes int64
				_ = c.QueryRow(b.Context(), "select temp_files, temp_bytes from pg_stat_database where datname = current_database()").Scan(&files, &bytes)
				out = append(out, fmt.Sprintf("%d files/%d bytes", files, bytes))
				c.Close(b.Context())
			}
			return strings.Join(out, ", ")
		}
		before := tempFiles()
		dir := b.TempDir()
		start := time.Now()
		cmd := exec.Command(os.Args[0], "londiste", n.goINI, "repair", "public.pgbench_accounts", "--apply")
		cmd.Env = append(os.Environ(), "PGQGO_TEST_RUN_MAIN=1")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		goTime := time.Since(start)
		if err != nil {
			b.Fatalf("pgqgo repair: %v\n%s", err, out)
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
		// pg_stat_database is updated at the end of each statement; a
		// moment for the counters
		time.Sleep(time.Second)
		after := tempFiles()
		left, _ := os.ReadDir(dir)
		b.Logf("pgqgo repair --apply: %v, peak RSS %.1f MB, files left in its directory %d, server temp files before %s, after %s\n%s",
			goTime.Round(time.Millisecond), float64(rss)/1024, len(left), before, after, strings.TrimSpace(string(out)))
		if !strings.Contains(string(out), "missed: ") {
			b.Fatalf("no repair summary:\n%s", out)
		}
		if cmp, err := runCLIb(b, "londiste", n.goINI, "compare"); err != nil || strings.Contains(cmp, "do not match") {
			b.Fatalf("compare after the repair: %v\n%s", err, cmp)
		}
		b.ReportMetric(goTime.Seconds(), "pgqgo-s")
		b.ReportMetric(float64(rss)/1024, "pgqgo-RSS-MB")
		if only {
			continue
		}
		pdir := b.TempDir()
		start = time.Now()
		pcmd := exec.Command("londiste", n.pyINI, "repair", "public.pgbench_accounts")
		pcmd.Dir = pdir
		pout, err := pcmd.CombinedOutput()
		pyTime := time.Since(start)
		if err != nil {
			b.Fatalf("londiste3 repair: %v\n%s", err, pout)
		}
		var sizes []string
		_ = filepath.Walk(pdir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				sizes = append(sizes, fmt.Sprintf("%s %.1f MB", filepath.Base(p), float64(fi.Size())/1e6))
			}
			return nil
		})
		b.Logf("londiste3 repair: %v, peak RSS %.1f MB (its own process), files left: %v\n%s", pyTime.Round(time.Millisecond),
			float64(pcmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024, sizes, lastLines(string(pout), 3))
		b.ReportMetric(pyTime.Seconds(), "londiste3-s")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
