package schema_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"pgqgo/internal/pgtest"
)

// pgbenchTPS runs pgbench's TPC-B-like script against dsn and returns tps.
func pgbenchTPS(b *testing.B, dsn string, seconds, clients int) float64 {
	b.Helper()
	cl := pgtest.Cluster(b)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(cl.BinDir, "pgbench"), "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User,
		"-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(clients), "-T", strconv.Itoa(seconds), cfg.Database)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("pgbench output: %s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps
}

// BenchmarkTriggerOverhead runs pgbench's TPC-B-like load on three databases
// of one cluster: no trigger, Skytools' C logutriga, pgqgo's PL/pgSQL
// logutriga, on all four pgbench tables, in alternating rounds. Reported: tps
// of each and pgqgo's overhead per transaction relative to C's.
func BenchmarkTriggerOverhead(b *testing.B) {
	type variant struct {
		name string
		tpl  pgtest.Template
		trig bool
		dsn  string
	}
	vs := []*variant{{name: "none", tpl: pgtest.PgqGo}, {name: "skytools_c", tpl: pgtest.Skytools, trig: true}, {name: "pgqgo", tpl: pgtest.PgqGo, trig: true}}
	cl := pgtest.Cluster(b)
	for _, v := range vs {
		v.dsn = pgtest.NewDB(b, v.tpl)
		cfg, _ := pgx.ParseConfig(v.dsn)
		out, err := exec.Command(filepath.Join(cl.BinDir, "pgbench"), "-i", "-q", "-s", "1", "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User, cfg.Database).CombinedOutput()
		if err != nil {
			b.Fatalf("pgbench -i: %v\n%s", err, out)
		}
		conn := pgtest.Conn(b, v.dsn)
		pgtest.Exec(b, conn, "select pgq.create_queue('bench')")
		if v.trig {
			for _, tbl := range []string{"pgbench_accounts", "pgbench_tellers", "pgbench_branches", "pgbench_history"} {
				pgtest.Exec(b, conn, fmt.Sprintf("create trigger cap after insert or update or delete on %s for each row execute procedure pgq.logutriga('bench')", tbl))
			}
		}
	}
	const rounds, seconds, clients = 2, 4, 2
	tps := map[string]float64{}
	for range b.N {
		for r := 0; r < rounds; r++ {
			for i := range vs {
				v := vs[(i+r)%len(vs)]
				tps[v.name] += pgbenchTPS(b, v.dsn, seconds, clients) / rounds
			}
		}
	}
	for _, v := range vs {
		tps[v.name] /= float64(b.N)
		b.ReportMetric(tps[v.name], v.name+"_tps")
	}
	lat := func(name string) float64 { return 1e6 / tps[name] } // µs per transaction (per client pair)
	overC, overGo := lat("skytools_c")-lat("none"), lat("pgqgo")-lat("none")
	b.ReportMetric(overC, "c_overhead_us/tx")
	b.ReportMetric(overGo, "pgqgo_overhead_us/tx")
	b.ReportMetric(overGo/overC, "overhead_ratio")
}
