package ticker

// Benchmarks of `pgqgo ticker` against Debian's pgqd (Skytools' C daemon) on
// the same throwaway cluster, one after the other in one run:
//
//	go test ./ticker -run '^$' -bench . -benchtime 1x -timeout 30m
//
// BenchmarkTickerLatency: end-to-end delivery latency at 100 events/s, a
// producer committing one event per transaction and a consumer that waits for
// ticks (LISTEN pgq_tick, else polling every 5 ms).
// BenchmarkTickerManyDatabases: 200 databases x 3 queues: time of the first
// full tick round, and CPU seconds of the daemon and of PostgreSQL per minute
// of steady state.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgqgo/internal/pgtest"
)

var (
	buildOnce sync.Once
	pgqgoBin  string
	buildErr  error
)

// binaries returns the commands to run for each daemon.
func daemonCommand(b *testing.B, which, ini string) *exec.Cmd {
	switch which {
	case "pgqd":
		path, err := exec.LookPath("pgqd")
		if err != nil {
			b.Fatalf("pgqd not installed (scripts/install-deps.sh installs it): %v", err)
		}
		return exec.Command(path, "-q", ini)
	default:
		buildOnce.Do(func() {
			pgqgoBin = filepath.Join(os.TempDir(), fmt.Sprintf("pgqgo-bench-%d", os.Getpid()))
			out, err := exec.Command("go", "build", "-o", pgqgoBin, "../cmd/pgqgo").CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			}
		})
		if buildErr != nil {
			b.Fatal(buildErr)
		}
		return exec.Command(pgqgoBin, "ticker", "-q", ini)
	}
}

func benchINI(b *testing.B, dbs []string, extra string) string {
	cfg, err := pgx.ParseConfig(pgtest.ServerDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "ticker.ini")
	body := fmt.Sprintf("[pgqd]\nbase_connstr = host=%s port=%d user=%s\ninitial_database = postgres\n"+
		"database_list = %s\nlogfile = %s\nsyslog = 0\n%s", cfg.Host, cfg.Port, cfg.User,
		strings.Join(dbs, ","), filepath.Join(filepath.Dir(path), "ticker.log"), extra)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func startDaemonProc(b *testing.B, which, ini string) *exec.Cmd {
	cmd := daemonCommand(b, which, ini)
	cmd.Dir = filepath.Dir(ini)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stopProc(cmd) })
	return cmd
}

func stopProc(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// cpuTicks returns utime+stime of a process, in clock ticks (1/100 s).
func cpuTicks(pid int) (ppid int, ticks int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ppid, _ = strconv.Atoi(fields[1])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return ppid, ut + st
}

// serverTicks sums the CPU of the postmaster and its children.
func serverTicks(b *testing.B) int64 {
	data, err := os.ReadFile(filepath.Join(pgtest.Cluster(b).DataDir, "postmaster.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pm, _ := strconv.Atoi(strings.SplitN(string(data), "\n", 2)[0])
	_, total := cpuTicks(pm)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, t := cpuTicks(pid); ppid == pm {
			total += t
		}
	}
	return total
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func benchSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("PGQGO_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 15 * time.Second
}

func BenchmarkTickerLatency(b *testing.B) {
	for _, which := range []string{"pgqd", "pgqgo"} {
		b.Run(which, func(b *testing.B) {
			tpl := pgtest.PgqGo
			if which == "pgqd" {
				tpl = pgtest.Skytools
			}
			dsn := pgtest.NewDB(b, tpl)
			cfg, _ := pgx.ParseConfig(dsn)
			setup := pgtest.Conn(b, dsn)
			for _, sql := range []string{"select pgq.create_queue('q')", "select pgq.register_consumer('q', 'c')"} {
				if _, err := setup.Exec(context.Background(), sql); err != nil {
					b.Fatal(err)
				}
			}
			startDaemonProc(b, which, benchINI(b, []string{cfg.Database}, ""))
			time.Sleep(1500 * time.Millisecond) // connected, creation ticks done
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				lat = append(lat, measureLatency(b, dsn, benchSeconds())...)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(len(lat)), "events")
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99_ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
		})
	}
}

// measureLatency produces 100 events/s for d and returns each event's delay
// from just before its insert to its delivery in a batch.
func measureLatency(b *testing.B, dsn string, d time.Duration) []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	producer := pgtest.Conn(b, dsn)
	consumer := pgtest.Conn(b, dsn)
	listener := pgtest.Conn(b, dsn)
	if _, err := listener.Exec(ctx, "listen pgq_tick"); err != nil {
		b.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := listener.WaitForNotification(ctx); err != nil {
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	var sent atomic.Int64
	var finished atomic.Bool
	go func() {
		defer finished.Store(true)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(d)
		for now := range tick.C {
			if now.After(end) {
				return
			}
			stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
			if _, err := producer.Exec(ctx, "select pgq.insert_event('q', 'lat', $1)", stamp); err != nil {
				b.Error(err)
				return
			}
			sent.Add(1)
		}
	}()
	var lat []time.Duration
	deadline := time.Now().Add(d + 15*time.Second)
	for time.Now().Before(deadline) {
		if finished.Load() && int64(len(lat)) >= sent.Load() {
			break
		}
		var batch *int64
		if err := consumer.QueryRow(ctx, "select pgq.next_batch('q', 'c')").Scan(&batch); err != nil {
			b.Fatal(err)
		}
		if batch == nil {
			select {
			case <-wake:
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		rows, _ := consumer.Query(ctx, "select ev_data from pgq.get_batch_events($1)", *batch)
		stamps, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for _, s := range stamps {
			ns, _ := strconv.ParseInt(s, 10, 64)
			lat = append(lat, now.Sub(time.Unix(0, ns)))
		}
		if _, err := consumer.Exec(ctx, "select pgq.finish_batch($1)", *batch); err != nil {
			b.Fatal(err)
		}
	}
	if int64(len(lat)) != sent.Load() {
		b.Fatalf("%d events sent, %d delivered", sent.Load(), len(lat))
	}
	return lat
}
