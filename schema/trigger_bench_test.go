package schema_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// pgbenchRun runs pgbench's TPC-B-like script against dsn and returns tps
// and the server's CPU time per transaction in µs: the user and system time
// of the backends, which the postmaster collects when they exit at the end
// of the run (a measure that other load on the machine disturbs much less
// than tps).
func pgbenchRun(b *testing.B, dsn string, seconds, clients int) (tps, cpuPerTx float64) {
	b.Helper()
	cl := pgtest.Cluster(b)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	baseline := children(cl.Pid())
	before := childCPUTicks(b, cl.Pid())
	cmd := exec.Command(filepath.Join(cl.BinDir, "pgbench"), "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User,
		"-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(clients), "-T", strconv.Itoa(seconds), cfg.Database)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	n := regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`).FindSubmatch(out)
	if m == nil || n == nil {
		b.Fatalf("pgbench output: %s", out)
	}
	tps, _ = strconv.ParseFloat(string(m[1]), 64)
	txs, _ := strconv.ParseFloat(string(n[1]), 64)
	// the backends are reaped a moment after pgbench disconnects
	for i := 0; children(cl.Pid()) > baseline && i < 250; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return tps, (childCPUTicks(b, cl.Pid()) - before) * 1e6 / clockTicks / txs
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100

// children counts pid's live child processes.
func children(pid int) int {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	return len(strings.Fields(string(raw)))
}

// childCPUTicks reads the user and system time of pid's exited children.
func childCPUTicks(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// fields after the command name (which may hold spaces) in parentheses
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	cu, _ := strconv.ParseFloat(f[13], 64) // field 16 of the whole line: cutime
	cs, _ := strconv.ParseFloat(f[14], 64) // field 17: cstime
	return cu + cs
}

// benchVariants are the databases the trigger benchmarks compare.
var benchVariants = []struct{ name, setup string }{
	{"none", "pgqgo"}, {"skytools_c", "skytools"}, {"pgqgo", "pgqgo"}, {"plpgsql_floor", "pgqgo"},
}

// setupTriggerBench fills a database for one variant: pgbench's tables, a
// queue, and the variant's trigger on all four tables. The database already
// holds its pgq schema (Skytools' extension, or pgqgo's).
func setupTriggerBench(b *testing.B, binDir, dsn, variant string) {
	b.Helper()
	cfg, _ := pgx.ParseConfig(dsn)
	out, err := exec.Command(filepath.Join(binDir, "pgbench"), "-i", "-q", "-s", "1", "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User, cfg.Database).CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	conn := pgtest.Conn(b, dsn)
	pgtest.Exec(b, conn, "select pgq.create_queue('bench')")
	switch variant {
	case "plpgsql_floor":
		// The least any PL/pgSQL trigger can cost here: one insert_event
		// call with the data made by one format() of the row's text and a
		// format string written by hand per table (wrong for quoted values:
		// a bound, not a trigger).
		pgtest.Exec(b, conn, `create function floor_trigger() returns trigger language plpgsql as $f$
			declare rec text; v bigint;
			begin
				if TG_OP = 'DELETE' then rec := OLD::text; else rec := NEW::text; end if;
				v := pgq.insert_event(TG_ARGV[0], left(TG_OP, 1) || ':' || TG_ARGV[1],
					format(TG_ARGV[2], VARIADIC string_to_array('=' || replace(substr(rec, 2, length(rec) - 2), ',', ',='), ',', '=')),
					TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, null, null, null);
				return null;
			end $f$`)
		for tbl, args := range map[string]string{
			"pgbench_accounts": "'aid', 'aid%s&bid%s&abalance%s&filler%s'",
			"pgbench_tellers":  "'tid', 'tid%s&bid%s&tbalance%s&filler%s'",
			"pgbench_branches": "'bid', 'bid%s&bbalance%s&filler%s'",
			"pgbench_history":  "'', 'tid%s&bid%s&aid%s&delta%s&mtime%s&filler%s'",
		} {
			pgtest.Exec(b, conn, fmt.Sprintf("create trigger cap after insert or update or delete on %s for each row execute procedure floor_trigger('bench', %s)", tbl, args))
		}
	case "skytools_c", "pgqgo":
		for _, tbl := range []string{"pgbench_accounts", "pgbench_tellers", "pgbench_branches", "pgbench_history"} {
			pgtest.Exec(b, conn, fmt.Sprintf("create trigger cap after insert or update or delete on %s for each row execute procedure pgq.logutriga('bench')", tbl))
		}
	}
}

// BenchmarkTriggerOverhead runs pgbench's TPC-B-like load on four databases
// of one cluster: no trigger, Skytools' C logutriga, pgqgo's PL/pgSQL
// logutriga, and the PL/pgSQL floor (a hand-written trigger that only calls
// insert_event), on all four pgbench tables, in alternating rounds. Reported:
// tps of each and the overhead per transaction of pgqgo and of the floor
// relative to C's.
func BenchmarkTriggerOverhead(b *testing.B) {
	type variant struct {
		name string
		dsn  string
	}
	cl := pgtest.Cluster(b)
	var vs []*variant
	for _, bv := range benchVariants {
		tpl := pgtest.PgqGo
		if bv.setup == "skytools" {
			tpl = pgtest.Skytools
		}
		v := &variant{name: bv.name, dsn: pgtest.NewDB(b, tpl)}
		setupTriggerBench(b, cl.BinDir, v.dsn, v.name)
		vs = append(vs, v)
	}
	// The machine's speed drifts over minutes: each round runs every variant
	// once, back to back, and the ratios are taken per round; reported are
	// the medians over all rounds. PGQGO_BENCH_ROUNDS and
	// PGQGO_BENCH_SECONDS make a longer run (default 5 rounds of 3 s).
	const clients = 2
	rounds, seconds := envInt(b, "PGQGO_BENCH_ROUNDS", 5), envInt(b, "PGQGO_BENCH_SECONDS", 3)
	median := func(xs []float64) float64 {
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	tps, cpu := map[string][]float64{}, map[string][]float64{}
	var ratio, floor, cpuRatio, cpuFloor []float64
	for range b.N {
		for r := 0; r < rounds; r++ {
			got, gotCPU := map[string]float64{}, map[string]float64{}
			for i := range vs {
				v := vs[(i+r)%len(vs)]
				got[v.name], gotCPU[v.name] = pgbenchRun(b, v.dsn, seconds, clients)
				tps[v.name] = append(tps[v.name], got[v.name])
				cpu[v.name] = append(cpu[v.name], gotCPU[v.name])
			}
			cpuOver := func(name string) float64 { return gotCPU[name] - gotCPU["none"] }
			cpuRatio = append(cpuRatio, cpuOver("pgqgo")/cpuOver("skytools_c"))
			cpuFloor = append(cpuFloor, cpuOver("plpgsql_floor")/cpuOver("skytools_c"))
			over := func(name string) float64 { return 1e6/got[name] - 1e6/got["none"] } // µs per transaction
			ratio = append(ratio, over("pgqgo")/over("skytools_c"))
			floor = append(floor, over("plpgsql_floor")/over("skytools_c"))
		}
	}
	for _, v := range vs {
		b.ReportMetric(median(tps[v.name]), v.name+"_tps")
		b.ReportMetric(median(cpu[v.name]), v.name+"_cpu_us/tx")
	}
	b.ReportMetric(median(cpuRatio), "cpu_overhead_ratio")
	b.ReportMetric(median(cpuFloor), "cpu_floor_overhead_ratio")
	b.ReportMetric(median(ratio), "overhead_ratio")
	b.ReportMetric(median(floor), "floor_overhead_ratio")
	b.Logf("per-round pgqgo/C overhead ratios (sorted): tps %.2f, server CPU %.2f", ratio, cpuRatio)
}

// BenchmarkTriggerInstructions counts the CPU instructions the server spends
// on one transaction of a single-row statement (and of pgbench's TPC-B-like
// transaction), with cachegrind on a
// single-user backend (`postgres --single`) of a shut-down copy of the
// benchmark cluster: deterministic, unlike times on a shared machine. Per
// statement and variant (see benchVariants), reported in thousands of
// instructions per transaction, and the overheads relative to C's.
//
//	go test ./schema -run '^$' -bench TriggerInstructions -benchtime 1x
//
// PGQGO_BENCH_STMTS=history_insert,tpcb_tx measures only those statements.
func BenchmarkTriggerInstructions(b *testing.B) {
	ctx := context.Background()
	cl, valgrind := instructionCluster(b)
	admin := pgtest.Conn(b, cl.DSN("postgres"))
	for _, v := range benchVariants {
		pgtest.Exec(b, admin, "create database "+v.name)
		conn := pgtest.Conn(b, cl.DSN(v.name))
		if v.setup == "skytools" {
			pgtest.Exec(b, conn, "create extension pgq")
		} else if _, err := schema.Install(ctx, conn, schema.InstallOptions{}); err != nil {
			b.Fatal(err)
		}
		setupTriggerBench(b, cl.BinDir, cl.DSN(v.name), v.name)
		conn.Close(ctx)
	}
	admin.Close(ctx)
	if err := cl.Shutdown(); err != nil {
		b.Fatal(err)
	}
	// instructions of a single-user session running the statement n times
	irefs := func(db, stmt string, n int) float64 {
		return singleUserInstructions(b, cl, valgrind, db, strings.Repeat(stmt+"\n", n))
	}
	stmts := []struct {
		name, sql string
		k         int  // statements counted beyond the first two
		direct    bool // no trigger: a producer's own call (no overhead ratios)
	}{
		{"insert_event_call", "select pgq.insert_event('bench', 'type', 'some data')", 50, true},
		{"tellers_update", "update pgbench_tellers set tbalance = tbalance + 1 where tid = 3", 50, false},
		{"accounts_update", "update pgbench_accounts set abalance = abalance + 1 where aid = 77", 50, false},
		{"history_insert", "insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 1, 5, CURRENT_TIMESTAMP)", 50, false},
		// pgbench's TPC-B-like transaction, the load of BenchmarkTriggerOverhead:
		// four triggers fire in one transaction. 400 of them: over 50 or 100
		// the count per transaction moves by +-10k from run to run (the
		// updated rows' version chains), two runs of 400 agreed to the 1k
		{"tpcb_tx", "begin; update pgbench_accounts set abalance = abalance + 5 where aid = 77; " +
			"select abalance from pgbench_accounts where aid = 77; " +
			"update pgbench_tellers set tbalance = tbalance + 5 where tid = 3; " +
			"update pgbench_branches set bbalance = bbalance + 5 where bid = 1; " +
			"insert into pgbench_history (tid, bid, aid, delta, mtime) values (3, 1, 77, 5, CURRENT_TIMESTAMP); end", 400, false},
	}
	for range b.N {
		for _, st := range stmts {
			if only := os.Getenv("PGQGO_BENCH_STMTS"); only != "" && !slices.Contains(strings.Split(only, ","), st.name) {
				continue
			}
			per := map[string]float64{}
			for _, v := range benchVariants {
				// the session's start, the first call's compilation and the
				// first use of the table's layout (two statements: the first
				// fills it, the second is the first to take a fast path)
				// cancel out: what is left is the steady state
				per[v.name] = (irefs(v.name, st.sql, 2+st.k) - irefs(v.name, st.sql, 2)) / float64(st.k)
				b.ReportMetric(per[v.name]/1000, st.name+"_"+v.name+"_kinstr/tx")
			}
			if st.direct {
				continue
			}
			over := func(name string) float64 { return per[name] - per["none"] }
			b.ReportMetric(over("pgqgo")/over("skytools_c"), st.name+"_overhead_ratio")
			b.ReportMetric(over("plpgsql_floor")/over("skytools_c"), st.name+"_floor_overhead_ratio")
		}
	}
}

// envInt reads a positive integer setting of a benchmark from the environment.
func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// instructionCluster starts a cluster for an instruction-count benchmark
// (its directory kept until the benchmark ends: single-user backends run on
// it once it is shut down) and finds valgrind.
func instructionCluster(b *testing.B) (*pgcluster.Cluster, string) {
	b.Helper()
	valgrind, err := exec.LookPath("valgrind")
	if err != nil {
		b.Fatalf("valgrind not installed (scripts/install-deps.sh installs it): %v", err)
	}
	cl, err := pgcluster.Start(context.Background(), pgcluster.Options{KeepDir: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cl.Stop()
		os.RemoveAll(cl.Dir)
	})
	return cl, valgrind
}

// singleUserInstructions counts the CPU instructions (cachegrind) of a
// single-user backend of the shut-down cluster cl running script (one
// statement per line) in database db.
func singleUserInstructions(b *testing.B, cl *pgcluster.Cluster, valgrind, db, script string) float64 {
	b.Helper()
	cmd := cl.SingleUser(db, valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")
	cmd.Stdin = strings.NewReader(script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("valgrind postgres --single %s: %v\n%s", db, err, stderr.String())
	}
	m := regexp.MustCompile(`I\s+refs:\s+([\d,]+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		b.Fatalf("no instruction count:\n%s", stderr.String())
	}
	ir, _ := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	return ir
}
