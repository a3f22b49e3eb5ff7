package schema_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgqgo/internal/pgtest"
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

// BenchmarkTriggerOverhead runs pgbench's TPC-B-like load on four databases
// of one cluster: no trigger, Skytools' C logutriga, pgqgo's PL/pgSQL
// logutriga, and the PL/pgSQL floor (a hand-written trigger that only calls
// insert_event), on all four pgbench tables, in alternating rounds. Reported:
// tps of each and the overhead per transaction of pgqgo and of the floor
// relative to C's.
func BenchmarkTriggerOverhead(b *testing.B) {
	type variant struct {
		name string
		tpl  pgtest.Template
		trig bool
		dsn  string
	}
	vs := []*variant{{name: "none", tpl: pgtest.PgqGo}, {name: "skytools_c", tpl: pgtest.Skytools, trig: true}, {name: "pgqgo", tpl: pgtest.PgqGo, trig: true},
		{name: "plpgsql_floor", tpl: pgtest.PgqGo}}
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
		if v.name == "plpgsql_floor" {
			// The least any PL/pgSQL trigger can cost here: one insert_event
			// call with the data made by one format() of the row's text and
			// a format string written by hand per table (wrong for quoted
			// values: a bound, not a trigger).
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
		}
		if v.trig {
			for _, tbl := range []string{"pgbench_accounts", "pgbench_tellers", "pgbench_branches", "pgbench_history"} {
				pgtest.Exec(b, conn, fmt.Sprintf("create trigger cap after insert or update or delete on %s for each row execute procedure pgq.logutriga('bench')", tbl))
			}
		}
	}
	// The machine's speed drifts over minutes: each round runs every variant
	// once, back to back, and the ratios are taken per round; reported are
	// the medians over all rounds.
	const rounds, seconds, clients = 5, 3, 2
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
