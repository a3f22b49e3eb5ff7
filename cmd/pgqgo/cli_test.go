package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
)

// run runs the real binary (this test executable running main(), see
// pgqgo in ticker_test.go) with stdin and returns its stdout, stderr and exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := pgqgo(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run pgqgo %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// ok runs pgqgo, expects exit 0 and the wanted substrings in stdout.
func ok(t *testing.T, stdin string, want []string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("pgqgo %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("pgqgo %v: %q not in output:\n%s", args, w, out)
		}
	}
	return out
}

// fails runs pgqgo and expects exit code code with the wanted text on stderr.
func fails(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	out, errOut, got := run(t, "", args...)
	if got != code || !strings.Contains(errOut, want) {
		t.Fatalf("pgqgo %v: exit %d (want %d), stderr %q (want %q), stdout %q", args, got, code, errOut, want, out)
	}
	if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "panic") {
		t.Fatalf("pgqgo %v printed a stack trace:\n%s", args, errOut)
	}
}

func TestCLIQueueConsumerProduceConsume(t *testing.T) {
	t.Parallel() // a database of its own; runs pgqgo processes
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	db := []string{"--db", dsn}
	ok(t, "", []string{"created queue orders"}, append([]string{"queue", "create", "orders"}, db...)...)
	ok(t, "", []string{"already exists"}, append([]string{"queue", "create", "orders"}, db...)...)
	ok(t, "", []string{"set ticker_max_lag = 0", "ticker_max_lag", "per_tx_limit"},
		append([]string{"queue", "config", "orders", "ticker_max_lag=0", "ticker_idle_period=1h"}, db...)...)
	out := ok(t, "", nil, append([]string{"queue", "list", "--json"}, db...)...)
	var qs []map[string]any
	if err := json.Unmarshal([]byte(out), &qs); err != nil || len(qs) != 1 || qs[0]["name"] != "orders" ||
		qs[0]["ticker_idle_period_seconds"] != 3600.0 {
		t.Fatalf("queue list --json (durations in seconds, as status --json): %v %s", err, out)
	}
	out = ok(t, "", nil, append([]string{"queue", "config", "orders", "--json"}, db...)...)
	var one map[string]any
	if err := json.Unmarshal([]byte(out), &one); err != nil || one["ticker_max_lag_seconds"] != 0.0 || one["rotation_period_seconds"] != 7200.0 {
		t.Fatalf("queue config --json (durations in seconds): %v %s", err, out)
	}
	ok(t, "", []string{"consumer mailer registered on queue orders"}, append([]string{"consumer", "register", "orders", "mailer"}, db...)...)
	ok(t, "", []string{"already registered"}, append([]string{"consumer", "register", "orders", "mailer"}, db...)...)
	ok(t, "", []string{"mailer"}, append([]string{"consumer", "list", "orders"}, db...)...)

	// produce: arguments, plain stdin lines, JSON lines
	ok(t, "", []string{"inserted 2 events into orders"}, append([]string{"produce", "orders", "--type", "greeting", "hello", "world"}, db...)...)
	ok(t, "line one\nline two\n", []string{"inserted 2 events into orders"}, append([]string{"produce", "orders"}, db...)...)
	ok(t, `{"type":"order.created","data":{"id":42,"item":"book"},"extra1":"public.orders"}`+"\n"+`{"data":"plain"}`+"\n",
		[]string{"inserted 2 events into orders"}, append([]string{"produce", "orders", "--json"}, db...)...)
	if out, errOut, code := run(t, "", append([]string{"tick", "orders"}, db...)...); code != exitOK ||
		!strings.Contains(out, "queue orders ticked") || !strings.Contains(errOut, "status counts that jump in EV/S and PENDING") {
		t.Fatalf("tick: exit %d, %q %q", code, out, errOut)
	}

	// consume: JSON lines, parsed and checked
	out = ok(t, "", nil, append([]string{"consume", "orders", "mailer", "--drain"}, db...)...)
	var events []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("consume output line %q: %v", line, err)
		}
		events = append(events, ev)
	}
	var got []string
	for _, ev := range events {
		got = append(got, ev["type"].(string)+":"+ev["data"].(string))
	}
	want := `greeting:hello greeting:world text:line one text:line two order.created:{"id":42,"item":"book"} text:plain`
	if strings.Join(got, " ") != want {
		t.Fatalf("consumed:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if events[4]["extra1"] != "public.orders" || events[0]["batch"].(float64) <= 0 {
		t.Fatalf("event fields: %v", events[4])
	}
	// caught up: --once prints nothing and exits 0
	if out := ok(t, "", nil, append([]string{"consume", "orders", "mailer", "--once"}, db...)...); out != "" {
		t.Fatalf("consume --once when caught up printed %q", out)
	}
	// produce piped into consume through another consumer
	ok(t, "", nil, append([]string{"consumer", "register", "orders", "copier"}, db...)...)
	ok(t, "", []string{"inserted 3"}, append([]string{"produce", "orders", "a", "b", "c"}, db...)...)
	ok(t, "", nil, append([]string{"tick", "orders"}, db...)...)
	piped := ok(t, "", nil, append([]string{"consume", "orders", "copier"}, db...)...)
	ok(t, "", nil, append([]string{"queue", "create", "copy"}, db...)...)
	ok(t, "", nil, append([]string{"consumer", "register", "copy", "reader"}, db...)...)
	ok(t, piped, []string{"inserted 3 events into copy"}, append([]string{"produce", "copy", "--json"}, db...)...)
	ok(t, "", nil, append([]string{"tick", "copy"}, db...)...)
	copied := ok(t, "", []string{`"data":"a"`, `"data":"b"`, `"data":"c"`}, append([]string{"consume", "copy", "reader", "--once"}, db...)...)
	if n := strings.Count(copied, "\n"); n != 3 {
		t.Fatalf("copied %d events: %s", n, copied)
	}

	ok(t, "", []string{"retry events moved"}, append([]string{"retry"}, db...)...)
	ok(t, "", []string{"operations:"}, append([]string{"maint"}, db...)...)
	ok(t, "", []string{"consumer copier unregistered"}, append([]string{"consumer", "unregister", "orders", "copier"}, db...)...)
	fails(t, 1, "consumers", append([]string{"queue", "drop", "copy"}, db...)...)
	ok(t, "", []string{"dropped queue copy"}, append([]string{"queue", "drop", "copy", "--force"}, db...)...)
}

func TestCLIStatus(t *testing.T) {
	t.Parallel() // a database of its own; runs pgqgo processes
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	db := []string{"--db", dsn}
	ok(t, "", nil, append([]string{"queue", "create", "q"}, db...)...)
	ok(t, "", nil, append([]string{"consumer", "register", "q", "slow"}, db...)...)
	ok(t, "", nil, append([]string{"produce", "q", "x"}, db...)...)
	ok(t, "", nil, append([]string{"tick", "q"}, db...)...)
	out := ok(t, "", []string{"QUEUE", "CONSUMER", "slow"}, append([]string{"status"}, db...)...)
	_ = out
	out = ok(t, "", nil, append([]string{"status", "--json"}, db...)...)
	var rep struct {
		Schema    string `json:"schema"`
		Queues    []struct{ Name string }
		Consumers []struct {
			Name       string  `json:"name"`
			Pending    int64   `json:"pending_events"`
			LagSeconds float64 `json:"lag_seconds"`
		}
		Problems []string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Queues) != 1 || len(rep.Consumers) != 1 ||
		rep.Consumers[0].Name != "slow" || !strings.HasPrefix(rep.Schema, "pgqgo ") {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	// the consumer has not moved since the tick: a tiny lag threshold fails the check
	conn := pgtest.Conn(t, dsn)
	pgtest.Exec(t, conn, "update pgq.tick set tick_time = tick_time - interval '10 minutes'")
	fails(t, exitCheckFailed, "consumer q/slow: lag", append([]string{"status", "--check", "--max-lag", "1m"}, db...)...)
	ok(t, "", nil, append([]string{"status", "--check", "--max-lag", "1h", "--max-ticker-lag", "1h"}, db...)...)
	out, _, code := run(t, "", append([]string{"status", "--json", "--check", "--max-lag", "1m"}, db...)...)
	if code != exitCheckFailed || !strings.Contains(out, `"problems": [`) || !strings.Contains(out, "q/slow") {
		t.Fatalf("status --json --check: exit %d\n%s", code, out)
	}

	// the age of the last tick is judged against the queue's own rules: an
	// idle queue ticks once ticker_idle_period (60 s) has passed, so 61 s is
	// healthy even with --max-ticker-lag 30s; 70 s is not; and events that
	// wait 31 s for a tick are late (ticker_max_lag is 3 s)
	ok(t, "", nil, append([]string{"consumer", "unregister", "q", "slow"}, db...)...)
	age := func(d string) {
		pgtest.Exec(t, conn, "update pgq.tick set tick_time = now() - $1::interval where tick_id = (select max(tick_id) from pgq.tick)", d)
	}
	age("61 s")
	ok(t, "", []string{"no pgqgo ticker seen"}, append([]string{"status", "--check", "--max-ticker-lag", "30s"}, db...)...)
	age("70 s")
	fails(t, exitCheckFailed, "ago > 1m5s (is a ticker running?)", append([]string{"status", "--check", "--max-ticker-lag", "30s"}, db...)...)
	ok(t, "", nil, append([]string{"produce", "q", "waiting"}, db...)...)
	age("31 s")
	fails(t, exitCheckFailed, "ago > 30s (is a ticker running?)", append([]string{"status", "--check", "--max-ticker-lag", "30s"}, db...)...)
	age("25 s")
	ok(t, "", nil, append([]string{"status", "--check", "--max-ticker-lag", "30s"}, db...)...)
}

// TestTickAgeRounding: tick ages are compared in whole seconds, as printed:
// 30.4 s is not over 30 s, 30.6 s is (and says 31s > 30s).
func TestTickAgeRounding(t *testing.T) {
	th := thresholds{tickerLag: 30 * time.Second}
	q := pgq.QueueInfo{Name: "q", NewEvents: 1, TickerMaxLag: 3 * time.Second, TickerIdlePeriod: time.Minute}
	q.TickerLag = 30400 * time.Millisecond
	if p := th.check([]pgq.QueueInfo{q}, nil); len(p) != 0 {
		t.Fatalf("30.4 s: %v", p)
	}
	q.TickerLag = 30600 * time.Millisecond
	if p := th.check([]pgq.QueueInfo{q}, nil); len(p) != 1 || p[0] != "queue q: last tick 31s ago > 30s (is a ticker running?)" {
		t.Fatalf("30.6 s: %v", p)
	}
	q.NewEvents, q.TickerLag = 0, 64*time.Second // idle: 60 s + 5 s allowed
	if p := th.check([]pgq.QueueInfo{q}, nil); len(p) != 0 {
		t.Fatalf("idle queue at 64 s: %v", p)
	}
}

func TestCLIBadInput(t *testing.T) {
	t.Parallel() // a database of its own; runs pgqgo processes
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	empty := pgtest.NewDB(t, pgtest.Empty)
	db := []string{"--db", dsn}
	ok(t, "", nil, append([]string{"queue", "create", "q"}, db...)...)

	fails(t, exitUsage, "unknown command", "frobnicate")
	// typos in a command group's subcommand: exit 2 with a suggestion, not help and 0
	fails(t, exitUsage, `unknown command "craete" for "pgqgo queue" (did you mean create?)`, append([]string{"queue", "craete", "x"}, db...)...)
	fails(t, exitUsage, `unknown command "lst" for "pgqgo consumer"`, "consumer", "lst")
	ok(t, "", []string{"pgqgo " + schema.Release}, "--version")
	fails(t, exitSchema, "has no pgq schema", "install", "--only", "pgq_coop", "--db", empty)
	// the ticker's usage and config errors are usage errors too
	bad := filepath.Join(t.TempDir(), "bad.ini")
	if err := os.WriteFile(bad, []byte("[pgqd]\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, exitUsage, "config file argument required", "ticker")
	fails(t, exitUsage, `unknown key "bogus"`, "ticker", bad)
	fails(t, exitUsage, "takes one config file", "ticker", bad, bad)
	good := filepath.Join(t.TempDir(), "good.ini")
	if err := os.WriteFile(good, []byte("[pgqd]\nbase_connstr = host=/nonexistent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, exitUsage, "--db is not used", "ticker", good, "--db", dsn)
	if err := os.WriteFile(bad, []byte("[pgqd]\nbase_connstr = host=/tmp port=abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, exitUsage, "base_connstr", "ticker", bad)
	ok(t, "", nil, append([]string{"consumer", "register", "q", "holder"}, db...)...)
	fails(t, exitError, "pgqgo queue drop q --force", append([]string{"queue", "drop", "q"}, db...)...)
	ok(t, "", nil, append([]string{"consumer", "unregister", "q", "holder"}, db...)...)
	// pgq and its components commit together: a component that fails to
	// install leaves no pgq schema behind either
	pgtest.Exec(t, pgtest.Conn(t, empty), "create schema pgq_coop; create function pgq_coop.version() returns integer language sql as 'select 1'")
	if _, errOut, code := run(t, "", "install", "--with", "pgq_coop", "--db", empty); code == exitOK {
		t.Fatalf("install --with a component that cannot be installed: exit 0\n%s", errOut)
	}
	if n := pgtest.Scalar[int64](t, pgtest.Conn(t, empty), "select count(*) from pg_namespace where nspname = 'pgq'"); n != 0 {
		t.Fatal("install --with: the component failed but the pgq schema was committed")
	}
	pgtest.Exec(t, pgtest.Conn(t, empty), "drop schema pgq_coop cascade")
	// a bad component name is refused before anything is installed
	fails(t, exitUsage, `unknown schema "foo"`, "install", "--with", "pgq_coop,foo", "--db", empty)
	if n := pgtest.Scalar[int64](t, pgtest.Conn(t, empty), "select count(*) from pg_namespace where nspname in ('pgq', 'pgq_coop')"); n != 0 {
		t.Fatalf("install --with with a bad name left %d schemas", n)
	}
	fails(t, exitUsage, "unknown flag", "status", "--frob")
	fails(t, exitUsage, "needs QUEUE", append([]string{"queue", "create"}, db...)...)
	fails(t, exitUsage, "needs QUEUE CONSUMER", append([]string{"consume", "q"}, db...)...)
	fails(t, exitUsage, "bad --db", "status", "--db", "postgres://%zz")
	fails(t, exitConnect, "cannot connect to database", "status", "--db", "host=/nonexistent/socket port=5999 dbname=x user=u connect_timeout=2")
	// a refused TCP connection: one line, the failure said once
	if _, errOut, code := run(t, "", "status", "--db", "host=127.0.0.1 port=1 dbname=x user=u connect_timeout=2"); code != exitConnect ||
		strings.Count(errOut, "\n") != 1 || strings.Count(errOut, "connection refused") != 1 {
		t.Fatalf("refused TCP connection: exit %d, %q", code, errOut)
	}
	fails(t, exitSchema, "has no pgq schema; install it with: pgqgo install", "status", "--db", empty)
	fails(t, exitSchema, "no pgq schema to upgrade", "upgrade", "--db", empty)
	fails(t, exitNotFound, `queue "nope"`, append([]string{"consume", "nope", "c"}, db...)...)
	fails(t, exitNotFound, "register it with: pgqgo consumer register q nobody", append([]string{"consume", "q", "nobody"}, db...)...)
	// every unknown-queue error carries the same hint
	fails(t, exitNotFound, "no such queue (pgqgo queue list shows the queues)", append([]string{"tick", "nope"}, db...)...)
	fails(t, exitNotFound, "no such queue (pgqgo queue list shows the queues)", append([]string{"queue", "drop", "nope"}, db...)...)
	fails(t, exitNotFound, "no such queue (pgqgo queue list shows the queues)", append([]string{"queue", "config", "nope"}, db...)...)
	fails(t, exitNotFound, `consumer "ghost"`, append([]string{"consumer", "unregister", "q", "ghost"}, db...)...)
	fails(t, exitNotFound, `queue "nope"`, append([]string{"produce", "nope", "x"}, db...)...)
	fails(t, exitUsage, "bad setting", append([]string{"queue", "config", "q", "ticker_max_lag"}, db...)...)
	fails(t, exitError, "cannot change parameter", append([]string{"queue", "config", "q", "bogus=1"}, db...)...)
	// per_tx_limit can be set and cleared again
	ok(t, "", nil, append([]string{"queue", "config", "q", "per_tx_limit=5"}, db...)...)
	ok(t, "", nil, append([]string{"queue", "config", "q", "per_tx_limit="}, db...)...)
	if out := ok(t, "", nil, append([]string{"queue", "config", "q", "--json"}, db...)...); strings.Contains(out, `"per_tx_limit": 5`) {
		t.Fatalf("per_tx_limit not cleared:\n%s", out)
	}
	ok(t, "", nil, append([]string{"queue", "config", "q", "per_tx_limit=7"}, db...)...)
	ok(t, "", nil, append([]string{"queue", "config", "q", "per_tx_limit=None"}, db...)...)
	fails(t, exitUsage, "--at wants a tick id", append([]string{"consumer", "register", "q", "c", "--at", "x"}, db...)...)
	fails(t, exitUsage, "choose one of", append([]string{"consume", "q", "c", "--once", "--follow"}, db...)...)
	fails(t, exitUsage, "unknown schema", append([]string{"install", "--only", "nope"}, db...)...)

	// a bad JSON line: the lines before it are kept, and the message says so
	out, errOut, code := run(t, `{"data":"ok"}`+"\n"+`{"data": nope}`+"\n", append([]string{"produce", "q", "--json"}, db...)...)
	if code != exitUsage || !strings.Contains(errOut, "line 2") || !strings.Contains(errOut, "inserted before it: 1 event") {
		t.Fatalf("bad JSON line: exit %d, %q %q", code, out, errOut)
	}
	conn := pgtest.Conn(t, dsn)
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); n != 1 {
		t.Fatalf("%d events after the bad line, want 1", n)
	}
	// two objects on a line, or anything after the object: the line is refused
	for _, line := range []string{`{"type":"t"}{"type":"u"}`, `{"type":"t"} trailing`} {
		if _, errOut, code := run(t, line+"\n", append([]string{"produce", "q", "--json"}, db...)...); code != exitUsage ||
			!strings.Contains(errOut, "more than one JSON value on the line") {
			t.Fatalf("%s: exit %d, %q", line, code, errOut)
		}
	}
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); n != 1 {
		t.Fatalf("%d events after the lines with two values, want 1", n)
	}
	// a line longer than the old 64 MB input limit is one event like any other
	long := strings.Repeat("x", 70<<20)
	if _, errOut, code := run(t, "short\n"+long+"\n", append([]string{"produce", "q"}, db...)...); code != exitOK {
		t.Fatalf("a 70 MB line: exit %d, %s", code, errOut)
	}
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1 where octet_length(ev_data) = 70 << 20"); n != 1 {
		t.Fatalf("%d events of 70 MB, want 1", n)
	}
	// a pgqgo schema older than the binary: say how to upgrade
	pgtest.Exec(t, conn, "update pgq.pgqgo_schema set migration = 1")
	fails(t, exitSchema, "upgrade it with: pgqgo upgrade", append([]string{"status"}, db...)...)
}

func TestCLIDemoEndsAndCleansUp(t *testing.T) {
	start := time.Now()
	out := ok(t, "", []string{"summary", "every event, once", "cluster is being removed"}, "demo", "--duration", "1s", "--rate", "200")
	if took := time.Since(start); took > time.Minute {
		t.Fatalf("demo took %s", took)
	}
	rest := out[strings.Index(out, "PostgreSQL on ")+len("PostgreSQL on "):]
	dir := strings.TrimSuffix(strings.Fields(rest)[0], ",")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("demo left %s behind", dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), dir) {
			t.Fatalf("a process still runs in %s: %q", dir, b)
		}
	}
	fails(t, exitUsage, "unknown flag", "demo", "--bogus")
}

func TestCLIConsumerPositionsAndGroups(t *testing.T) {
	t.Parallel() // a database of its own; runs pgqgo processes
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	db := []string{"--db", dsn}
	ok(t, "", nil, append([]string{"install", "--with", "pgq_coop"}, db...)...)
	ok(t, "", nil, append([]string{"queue", "create", "q"}, db...)...)
	ok(t, "", nil, append([]string{"consumer", "register", "q", "first"}, db...)...)
	ok(t, "", nil, append([]string{"produce", "q", "early"}, db...)...)
	ok(t, "", nil, append([]string{"tick", "q"}, db...)...)
	// a consumer copying first's position sees what first sees
	ok(t, "", []string{"registered on queue q at tick"}, append([]string{"consumer", "register", "q", "twin", "--copy-from", "first"}, db...)...)
	ok(t, "", []string{`"data":"early"`}, append([]string{"consume", "q", "twin"}, db...)...)
	fails(t, exitNotFound, `"ghost"`, append([]string{"consumer", "register", "q", "x", "--copy-from", "ghost"}, db...)...)
	// cooperative members
	ok(t, "", []string{"sub-consumer w1 of workers registered"}, append([]string{"consumer", "register", "q", "workers", "--subconsumer", "w1"}, db...)...)
	ok(t, "", []string{"workers.w1"}, append([]string{"consumer", "list", "q"}, db...)...)
	ok(t, "", []string{"unregistered"}, append([]string{"consumer", "unregister", "q", "workers", "--subconsumer", "w1"}, db...)...)
	fails(t, exitNotFound, "not registered", append([]string{"consumer", "unregister", "q", "workers", "--subconsumer", "w1"}, db...)...)
}

func TestCLIStatusWatchAndMissingCoop(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	db := []string{"--db", dsn}
	ok(t, "", nil, append([]string{"queue", "create", "q"}, db...)...)
	fails(t, exitSchema, "install it with: pgqgo install --with pgq_coop", append([]string{"consumer", "register", "q", "g", "--subconsumer", "s"}, db...)...)

	// --watch refreshes in place until interrupted, then exits 0
	cmd := pgqgo(append([]string{"status", "--watch=200ms"}, db...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("status --watch after Ctrl-C: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if n := strings.Count(out.String(), "\033[H\033[2J"); n < 3 {
		t.Fatalf("status --watch refreshed %d times:\n%q", n, out.String())
	}
}

func TestCLIUpgradeAndSkytools(t *testing.T) {
	t.Parallel() // a database of its own; runs pgqgo processes
	dsn := pgtest.NewDB(t, pgtest.Empty)
	conn := pgtest.Conn(t, dsn)
	if _, err := schema.Install(context.Background(), conn, schema.InstallOptions{UpToMigration: 1}); err != nil {
		t.Fatal(err)
	}
	db := []string{"--db", dsn}
	fails(t, exitSchema, "upgrade it with: pgqgo upgrade", append([]string{"queue", "list"}, db...)...)
	ok(t, "", []string{"would:", "apply migration 0002_dead_letter"}, append([]string{"upgrade", "--dry-run"}, db...)...)
	ok(t, "", []string{"installed pgqgo " + schema.Release}, append([]string{"upgrade"}, db...)...)
	ok(t, "", []string{"nothing to do"}, append([]string{"upgrade"}, db...)...)
	ok(t, "", nil, append([]string{"queue", "list"}, db...)...)

	// Skytools' PgQ: the commands work on it as they are; install refuses it,
	// upgrade adopts it in place (schema.TestAdoptSkytools checks the details)
	skyDSN := pgtest.NewDB(t, pgtest.Skytools)
	sky := []string{"--db", skyDSN}
	ok(t, "", nil, append([]string{"queue", "create", "q"}, sky...)...)
	ok(t, "", nil, append([]string{"consumer", "register", "q", "c"}, sky...)...)
	ok(t, "", nil, append([]string{"produce", "q", "from the CLI"}, sky...)...)
	ok(t, "", nil, append([]string{"tick", "q"}, sky...)...)
	ok(t, "", []string{`"data":"from the CLI"`}, append([]string{"consume", "q", "c", "--once"}, sky...)...)
	ok(t, "", []string{"Skytools PgQ 3.5"}, append([]string{"status"}, sky...)...)
	fails(t, exitSchema, "to take it over in place run: pgqgo upgrade", append([]string{"install"}, sky...)...)
	fails(t, exitUsage, "takes no arguments", append([]string{"retry", "extra"}, sky...)...)
	ok(t, "", []string{"would:", "adopt Skytools PgQ 3.5 (extensions pgq 3.5)"}, append([]string{"upgrade", "--dry-run"}, sky...)...)
	ok(t, "", []string{"installed pgqgo " + schema.Release + fmt.Sprintf(" (migration %d) over", len(schema.Migrations())) + " Skytools PgQ 3.5", "detach every object"},
		append([]string{"upgrade"}, sky...)...)
	ok(t, "", nil, append([]string{"produce", "q", "after adoption"}, sky...)...)
	ok(t, "", nil, append([]string{"tick", "q"}, sky...)...)
	ok(t, "", []string{`"data":"after adoption"`}, append([]string{"consume", "q", "c", "--once"}, sky...)...)

	// an old PgQ is refused with its reason, changing nothing
	old := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	pgtest.Exec(t, old, "create or replace function pgq.version() returns text language sql as $$ select '3.1' $$")
	fails(t, exitSchema, "it is PgQ 3.1, pgqgo adopts PgQ 2.1 and 3.5 only", "upgrade", "--db", old.Config().ConnString())
}

func TestCLIEnvironmentAndFollow(t *testing.T) {
	t.Parallel() // a database of its own; runs pgqgo processes
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// PG* variables apply without --db
	cmd := pgqgo("queue", "create", "envq")
	cmd.Env = append(cmd.Env, "PGHOST="+cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port), "PGDATABASE="+cfg.Database, "PGUSER="+cfg.User, "PGSSLMODE=disable")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "created queue envq") {
		t.Fatalf("queue create from PG* environment: %v\n%s", err, out)
	}

	// consume --follow keeps waiting for new batches until interrupted
	db := []string{"--db", dsn}
	ok(t, "", nil, append([]string{"consumer", "register", "envq", "tail"}, db...)...)
	follow := pgqgo(append([]string{"consume", "envq", "tail", "--follow"}, db...)...)
	pr, pw := io.Pipe()
	follow.Stdout = pw
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for _, word := range []string{"first", "second"} {
		ok(t, "", nil, append([]string{"produce", "envq", word}, db...)...)
		ok(t, "", nil, append([]string{"tick", "envq"}, db...)...)
		select {
		case l := <-lines:
			if !strings.Contains(l, `"data":"`+word+`"`) {
				t.Fatalf("followed line %q, want %s", l, word)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("consume --follow did not print %q", word)
		}
	}
	_ = follow.Process.Signal(os.Interrupt)
	err = follow.Wait()
	pw.Close()
	if err != nil {
		t.Fatalf("consume --follow after Ctrl-C: %v", err)
	}
}

func TestCLIUpgradeAllDatabases(t *testing.T) {
	// a cluster of its own: --all-databases touches every database in it
	ctx := context.Background()
	cl := pgtest.OwnCluster(t, pgcluster.Options{})
	admin := pgtest.Conn(t, cl.DSN("postgres"))
	for _, db := range []string{"old", "sky", "empty"} {
		pgtest.Exec(t, admin, "create database "+db)
	}
	if _, err := schema.Install(ctx, pgtest.Conn(t, cl.DSN("old")), schema.InstallOptions{UpToMigration: 1}); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, pgtest.Conn(t, cl.DSN("sky")), "create extension pgq")
	out := ok(t, "", []string{"database old:", "database sky:", "over Skytools PgQ 3.5",
		"installed pgqgo " + schema.Release + fmt.Sprintf(" (migration %d) over", len(schema.Migrations())) + " pgqgo"}, "upgrade", "--all-databases", "--db", cl.DSN("empty"))
	if strings.Contains(out, "database empty") || strings.Contains(out, "database postgres") {
		t.Fatalf("a database without pgq was touched:\n%s", out)
	}
	for _, db := range []string{"old", "sky"} {
		in, err := schema.Inspect(ctx, pgtest.Conn(t, cl.DSN(db)))
		if err != nil || !in.Managed || in.Release != schema.Release {
			t.Fatalf("%s after --all-databases: %+v %v", db, in, err)
		}
	}
	ok(t, "", []string{"nothing to do"}, "upgrade", "--all-databases", "--db", cl.DSN("empty"))
}

// TestCLIInstallGrantsRolesMadeLater: installed by a database owner who may
// not create roles, the schema works but PgQ's roles are missing; install
// says so and what a DBA must run. Once the DBA has made them, installing
// again grants them their rights (it said "nothing to do" before, and the
// roles' members were refused), queues made meanwhile included.
func TestCLIInstallGrantsRolesMadeLater(t *testing.T) {
	ctx := context.Background()
	// a cluster of its own: PgQ's roles are cluster-wide
	cl := pgtest.OwnCluster(t, pgcluster.Options{})
	admin := pgtest.Conn(t, cl.DSN("postgres"))
	pgtest.Exec(t, admin, "create role owner login nosuperuser nocreaterole")
	pgtest.Exec(t, admin, "create database d owner owner")
	dsn := cl.DSN("d") + " user=owner"

	out, errOut, code := run(t, "", "install", "--db", dsn)
	if code != 0 || !strings.Contains(errOut, "role(s) pgq_reader, pgq_writer, pgq_admin do not exist and owner may not create them") ||
		!strings.Contains(errOut, "CREATE ROLE pgq_reader NOLOGIN; CREATE ROLE pgq_writer NOLOGIN; CREATE ROLE pgq_admin NOLOGIN; GRANT pgq_reader, pgq_writer TO pgq_admin;") {
		t.Fatalf("install without roles: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	ok(t, "", []string{"created queue q"}, "queue", "create", "q", "--db", dsn)

	pgtest.Exec(t, admin, schema.RolesHint([]string{"pgq_reader", "pgq_writer", "pgq_admin"}))
	pgtest.Exec(t, admin, "create role app login in role pgq_writer; create role worker login in role pgq_reader")
	app := pgtest.Conn(t, cl.DSN("d")+" user=app")
	if _, err := app.Exec(ctx, "select pgq.insert_event_bulk('q', array['t'], array['x'])"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("a pgq_writer member before the grants: %v, want permission denied", err)
	}
	out, errOut, code = run(t, "", "install", "--db", dsn)
	if code != 0 || !strings.Contains(out, "grant rights to pgq_reader, pgq_writer, pgq_admin") || strings.Contains(errOut, "warning") {
		t.Fatalf("install after the DBA made the roles: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	ok(t, "", []string{"nothing to do"}, "install", "--db", dsn)

	if n := pgtest.Scalar[int64](t, app, "select pgq.insert_event_bulk('q', array['t', 't'], array['x', 'y'])"); n != 2 {
		t.Fatalf("bulk insert as a writer: %d", n)
	}
	owner := pgtest.Conn(t, dsn)
	worker := pgtest.Conn(t, cl.DSN("d")+" user=worker")
	pgtest.Exec(t, worker, "select pgq.register_consumer('q', 'w')")
	pgtest.Exec(t, app, "select pgq.insert_event('q', 't', 'z')")
	pgtest.Exec(t, owner, "select pgq.force_tick('q'); select pgq.ticker('q')")
	batch := pgtest.Scalar[int64](t, worker, "select pgq.next_batch('q', 'w')")
	if got := strings.Join(pgtest.Column[string](t, worker, "select ev_data from pgq.get_batch_events($1) order by ev_id", batch), ","); got != "x,y,z" {
		t.Fatalf("a pgq_reader member read %v", got)
	}
	if n := pgtest.Scalar[int64](t, worker, "select count(*) from pgq.event_1_0"); n != 3 {
		t.Fatalf("a pgq_reader member sees %d rows of the queue's event table (made before the role), want 3", n)
	}
}

// TestCLIUpgradeSkytoolsNeedsOwner: adopting Skytools' PgQ needs a superuser
// or the owner of its extensions and objects; anyone else is told so (not
// pointed to the pgq roles), by a dry run too, and nothing changes.
func TestCLIUpgradeSkytoolsNeedsOwner(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.Skytools)
	admin := pgtest.Conn(t, dsn)
	pgtest.Exec(t, admin, `do $$ begin
		if not exists (select 1 from pg_roles where rolname = 'pgqgo_not_owner') then
		    create role pgqgo_not_owner login in role pgq_admin;
		end if; end $$`)
	pgtest.Exec(t, admin, "grant create on database "+pgx.Identifier{pgtest.Scalar[string](t, admin, "select current_database()")}.Sanitize()+" to pgqgo_not_owner")
	for _, args := range [][]string{{"upgrade", "--dry-run"}, {"upgrade"}} {
		fails(t, exitSchema, "needs a superuser or the owner of its extensions, schemas, functions and tables; pgqgo_not_owner is neither",
			append(args, "--db", dsn+" user=pgqgo_not_owner")...)
	}
	if v := pgtest.Scalar[string](t, admin, "select extversion from pg_extension where extname = 'pgq'"); v == "" {
		t.Fatal("the extension is gone")
	}
}

// TestCLIStatusWeb: pgqgo status --web serves the status page of the
// database until interrupted, behind --web-auth when given.
func TestCLIStatusWeb(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	ok(t, "", nil, "queue", "create", "webq", "--db", dsn)
	ok(t, "", nil, "consumer", "register", "webq", "watcher", "--db", dsn)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := pgqgo("status", "--web", addr, "--web-auth", "ops:pw", "--db", dsn)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // already ended when the test passes
	get := func(user string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		if user != "" {
			req.SetBasicAuth(user, "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	pgtest.Eventually(t, 20*time.Second, "the page shows the queue and its consumer", func() bool {
		code, body := get("ops")
		return code == http.StatusOK && strings.Contains(body, `data-queue="webq" data-consumer="watcher"`)
	})
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", code)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("status --web after Ctrl-C: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "serving the status page") {
		t.Fatalf("output: %s", out.String())
	}
	fails(t, exitUsage, "--web-auth: want user:password", "status", "--web", addr, "--web-auth", "nopassword", "--db", dsn)
}

// TestCLIProduceInterrupted: Ctrl-C while produce reads an open standard
// input stops it at once, and the lines read so far are inserted, as it says.
func TestCLIProduceInterrupted(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	ok(t, "", nil, "queue", "create", "q", "--db", dsn)
	cmd := pgqgo("produce", "q", "--db", dsn)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if _, err := io.WriteString(stdin, "one\ntwo\nthree\n"); err != nil {
		t.Fatal(err)
	}
	// connected (so past its start-up, Ctrl-C handling in place), then a
	// moment to read the lines; it waits for more (the chunk is 1000)
	conn := pgtest.Conn(t, dsn)
	pgtest.Eventually(t, 30*time.Second, "produce connected", func() bool {
		return pgtest.Scalar[int64](t, conn, `select count(*) from pg_stat_activity
			where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`) > 0
	})
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("produce did not stop on Ctrl-C while its standard input was open")
	}
	if !strings.Contains(errOut.String(), "interrupted after line 3, every line read so far inserted (inserted before it: 3 events)") {
		t.Fatalf("stderr: %s", errOut.String())
	}
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); n != 3 {
		t.Fatalf("%d events inserted, want the 3 lines read", n)
	}
}

// TestCLIFollowQueueDropped: consume --follow whose queue is dropped meanwhile
// ends with "not found" (5), as for a queue that was never there.
func TestCLIFollowQueueDropped(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	ok(t, "", nil, "queue", "create", "gone", "--db", dsn)
	ok(t, "", nil, "consumer", "register", "gone", "c", "--db", dsn)
	cmd := pgqgo("consume", "gone", "c", "--follow", "--db", dsn)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	ok(t, "", nil, "queue", "drop", "gone", "--force", "--db", dsn)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitNotFound {
			t.Fatalf("consume --follow after its queue was dropped: %v\n%s", err, errOut.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("consume --follow did not end when its queue was dropped")
	}
}

// TestCLIOddNamesInTables: names with a tab, a newline or only spaces are
// shown quoted, so every row keeps its columns.
func TestCLIOddNamesInTables(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	conn := pgtest.Conn(t, dsn)
	for _, name := range []string{"tab\there", "new\nline", "   "} {
		pgtest.Exec(t, conn, "select pgq.create_queue($1)", name)
		pgtest.Exec(t, conn, "select pgq.register_consumer($1, $1)", name)
	}
	for _, args := range [][]string{{"status"}, {"queue", "list"}, {"consumer", "list"}} {
		out := ok(t, "", []string{`"tab\there"`, `"new\nline"`, `"   "`}, append(args, "--db", dsn)...)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.Contains(l, "\t") {
				t.Fatalf("pgqgo %v: a raw tab in %q", args, l)
			}
		}
	}
}

// TestCLINullRoundTrip: consume prints a NULL type or data as JSON null, and
// produce --json writes null as NULL, so `consume A | produce B --json`
// copies events as they are.
func TestCLINullRoundTrip(t *testing.T) {
	t.Parallel() // a database of its own; runs pgqgo processes
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	conn := pgtest.Conn(t, dsn)
	db := []string{"--db", dsn}
	for _, q := range []string{"a", "b"} {
		ok(t, "", nil, append([]string{"queue", "create", q}, db...)...)
	}
	ok(t, "", nil, append([]string{"consumer", "register", "a", "copier"}, db...)...)
	pgtest.Exec(t, conn, `select pgq.insert_event('a', null, null); select pgq.insert_event('a', 't', null);
		select pgq.insert_event('a', null, 'd'); select pgq.insert_event('a', '', '')`)
	ok(t, "", nil, append([]string{"tick", "a"}, db...)...)
	out := ok(t, "", []string{`"type":null,"data":null`}, append([]string{"consume", "a", "copier"}, db...)...)
	ok(t, out, []string{"inserted 4 events into b"}, append([]string{"produce", "b", "--json"}, db...)...)
	shape := func(table string) string {
		return pgtest.Scalar[string](t, conn, `select string_agg(concat(coalesce(ev_type, '<null>'), '/', coalesce(ev_data, '<null>')), ' ' order by ev_id) from pgq.`+table)
	}
	if a, b := shape("event_1"), shape("event_2"); a != b || a != "<null>/<null> t/<null> <null>/d /" {
		t.Fatalf("queue a %q, copied to b %q", a, b)
	}
}
