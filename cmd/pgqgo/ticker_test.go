package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// pgqgo runs this test binary as the pgqgo command.
func pgqgo(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PGQGO_TEST_RUN_MAIN=1")
	return cmd
}

func pidIn(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// queueTicked inserts an event and waits for a tick that covers it.
func queueTicked(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var before int64
	if err := conn.QueryRow(ctx, "select max(tick_id) from pgq.tick").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "select pgq.insert_event('q', 't', 'x')"); err != nil {
		t.Fatal(err)
	}
	pgtest.Eventually(t, 10*time.Second, "tick in "+dsn, func() bool {
		var now int64
		return conn.QueryRow(ctx, "select max(tick_id) from pgq.tick").Scan(&now) == nil && now > before
	})
}

func tickerDB(t *testing.T) (name, dsn string) {
	dsn = pgtest.NewDB(t, pgtest.PgqGo)
	conn := pgtest.Conn(t, dsn)
	for _, sql := range []string{"select pgq.create_queue('q')", "select pgq.register_consumer('q', 'c')"} {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := pgx.ParseConfig(dsn)
	return cfg.Database, dsn
}

func writeINI(t *testing.T, path, pidfile, logfile string, dbs ...string) {
	cfg, _ := pgx.ParseConfig(pgtest.ServerDSN(t))
	ini := fmt.Sprintf(`[pgqd]
base_connstr = host=%s port=%d user=%s
initial_database = postgres
database_list = %s
pidfile = %s
logfile = %s
syslog = 0
ticker_period = 0.1
stats_period = 0.2
`, cfg.Host, cfg.Port, cfg.User, strings.Join(dbs, ","), pidfile, logfile)
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTickerProcessLifecycle drives the real command: pidfile, refusal of a
// second instance, SIGHUP reload (-r), stop (-s), stale pidfile, daemonizing
// (-d) and kill (-k).
func TestTickerProcessLifecycle(t *testing.T) {
	dir := t.TempDir()
	ini, pidfile, logfile := filepath.Join(dir, "pgqd.ini"), filepath.Join(dir, "pgqd.pid"), filepath.Join(dir, "pgqd.log")
	a, dsnA := tickerDB(t)
	b, dsnB := tickerDB(t)
	writeINI(t, ini, pidfile, logfile, a)

	first := pgqgo("ticker", "-q", ini)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	pgtest.Eventually(t, 10*time.Second, "pidfile written", func() bool { return pidIn(pidfile) == first.Process.Pid })
	queueTicked(t, dsnA)
	// status sees it through its advisory lock
	if out, err := pgqgo("status", "--db", dsnA).CombinedOutput(); err != nil || !strings.Contains(string(out), "ticker: pgqgo ticker active") {
		t.Fatalf("status with the ticker running: %v\n%s", err, out)
	}

	out, err := pgqgo("ticker", "-q", ini).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running") {
		t.Fatalf("second instance: %v\n%s", err, out)
	}

	writeINI(t, ini, pidfile, logfile, a, b)
	if out, err := pgqgo("ticker", "-r", ini).CombinedOutput(); err != nil {
		t.Fatalf("-r: %v\n%s", err, out)
	}
	queueTicked(t, dsnB)

	pgtest.Eventually(t, 10*time.Second, "periodic stats line logged", func() bool {
		log, _ := os.ReadFile(logfile)
		return strings.Contains(string(log), "{ticks: ")
	})
	if out, err := pgqgo("ticker", "-s", ini).CombinedOutput(); err != nil {
		t.Fatalf("-s: %v\n%s", err, out)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ticker exit after -s: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ticker did not stop on -s")
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile left behind: %v", err)
	}
	log, _ := os.ReadFile(logfile)
	for _, want := range []string{"Starting pgqgo ticker", "config reloaded", "{ticks: ", "stopped"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("logfile lacks %q:\n%s", want, log)
		}
	}

	// a stale pidfile (dead pid) does not block a start; -d returns at once
	if err := os.WriteFile(pidfile, []byte("999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := pgqgo("ticker", "-d", ini).CombinedOutput(); err != nil {
		t.Fatalf("-d: %v\n%s", err, out)
	}
	pid := pidIn(pidfile)
	if pid == 0 || pid == 999999 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("daemon pid %d not running", pid)
	}
	queueTicked(t, dsnA)
	if out, err := pgqgo("ticker", "-k", ini).CombinedOutput(); err != nil {
		t.Fatalf("-k: %v\n%s", err, out)
	}
	pgtest.Eventually(t, 15*time.Second, "daemon gone after -k", func() bool { return syscall.Kill(pid, 0) != nil })
}

func TestTickerBadConfig(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"nosection.ini": "[other]\nx = 1\n",
		"badkey.ini":    "[pgqd]\nticker_perod = 1\n",
		"badnum.ini":    "[pgqd]\nticker_period = soon\n",
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		out, err := pgqgo("ticker", path).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "config") {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	out, err := pgqgo("ticker", "-d", filepath.Join(dir, "badkey.ini")).CombinedOutput()
	if err == nil {
		t.Errorf("-d with bad config succeeded: %s", out)
	}
	out, err = pgqgo("ticker", "--ini").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "[pgqd]") {
		t.Fatalf("--ini: %v\n%s", err, out)
	}
	out, err = pgqgo("ticker", "-V").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pgqd 3.5 compatible") {
		t.Fatalf("-V: %v\n%s", err, out)
	}
}
