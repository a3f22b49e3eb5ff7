package schema_test

// Differential tests: the same scenario runs against Skytools' PgQ 3.5 C
// extension in one database and pgqgo's schema in another, on the same
// cluster, step by step, and every result is compared after normalising the
// values that legitimately differ (times, txids, snapshots).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// step is one SQL statement run on both engines.
type step struct {
	conn string // connection to use ("" = "a"); scenarios may open several for overlapping transactions
	sql  string // may reference captured values as {{name}}
	set  string // capture the first column of the first row under this name
	// runResult executes the SQL text the statement returned and compares
	// those rows instead (for batch_event_sql, whose text differs by design).
	runResult bool
	// differs explains a deliberate difference (see docs/differences.md); the
	// step still runs on both and must succeed on pgqgo.
	differs string
	// refuses: pgqgo refuses on purpose what PgQ 3.5 accepts (see
	// docs/differences.md); pgqgo's error must contain this text
	refuses string
	sleep   time.Duration // wait before the step (for time thresholds)
}

type engine struct {
	name  string
	dsn   string
	conns map[string]*pgx.Conn
	vars  map[string]string
}

func (e *engine) conn(t *testing.T, name string) *pgx.Conn {
	if name == "" {
		name = "a"
	}
	if c, ok := e.conns[name]; ok {
		return c
	}
	c := pgtest.Conn(t, e.dsn)
	if _, err := c.Exec(context.Background(), "SET TimeZone = 'UTC'; SET client_min_messages = error"); err != nil {
		t.Fatal(err)
	}
	e.conns[name] = c
	return c
}

var varRef = regexp.MustCompile(`\{\{(\w+)\}\}`)

func (e *engine) expand(sql string) string {
	return varRef.ReplaceAllStringFunc(sql, func(m string) string {
		v, ok := e.vars[m[2:len(m)-2]]
		if !ok {
			return "NULL"
		}
		return v
	})
}

// masked columns hold values that differ between any two runs.
var masked = map[string]bool{
	"ev_time": true, "tick_time": true, "ev_txid": true, "tick_snapshot": true,
	"queue_switch_step1": true, "queue_switch_step2": true, "queue_switch_time": true,
	"sub_active": true, "lag": true, "last_seen": true, "ticker_lag": true, "ev_per_sec": true,
	"batch_start": true, "batch_end": true, "cur_tick_time": true, "prev_tick_time": true,
	"ev_retry_after": true, "next_tick_time": true, "txid_current": true,
}

// result is a normalised outcome: rows or an error.
type result struct {
	cols []string
	rows []string
	err  string
}

func (r result) String() string {
	if r.err != "" {
		return "ERROR: " + r.err
	}
	return strings.Join(r.cols, "|") + "\n  " + strings.Join(r.rows, "\n  ")
}

func query(ctx context.Context, c *pgx.Conn, sql string) result {
	rows, err := c.Query(ctx, sql)
	if err != nil {
		return errResult(err)
	}
	defer rows.Close()
	var res result
	for _, f := range rows.FieldDescriptions() {
		res.cols = append(res.cols, f.Name)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return errResult(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			switch {
			case v == nil:
				cells[i] = "NULL"
			case masked[res.cols[i]]:
				cells[i] = "<set>"
			default:
				cells[i] = fmt.Sprint(v)
			}
		}
		res.rows = append(res.rows, strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		return errResult(err)
	}
	return res
}

func errResult(err error) result {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return result{err: pg.Message + " (SQLSTATE " + pg.Code + ")"}
	}
	return result{err: err.Error()}
}

func (e *engine) run(t *testing.T, s step) result {
	ctx := context.Background()
	c := e.conn(t, s.conn)
	sql := e.expand(s.sql)
	res := query(ctx, c, sql)
	if s.set != "" && res.err == "" && len(res.rows) > 0 {
		e.vars[s.set] = strings.SplitN(res.rows[0], "|", 2)[0]
	}
	if s.runResult && res.err == "" && len(res.rows) == 1 {
		res = query(ctx, c, res.rows[0])
	}
	return res
}

// runDiff runs steps against both engines and reports every mismatch.
func runDiff(t *testing.T, steps []step) {
	t.Helper()
	runDiffOn(t, pgtest.NewDB(t, pgtest.Skytools), pgtest.NewDB(t, pgtest.PgqGo), steps)
}

// runDiffOn runs steps against a Skytools database and a pgqgo database
// made ready by the caller (extra schemas installed) and reports every
// mismatch.
func runDiffOn(t *testing.T, skyDSN, oursDSN string, steps []step) {
	t.Helper()
	sky := &engine{name: "skytools", dsn: skyDSN, conns: map[string]*pgx.Conn{}, vars: map[string]string{}}
	ours := &engine{name: "pgqgo", dsn: oursDSN, conns: map[string]*pgx.Conn{}, vars: map[string]string{}}
	for i, s := range steps {
		if s.sleep > 0 {
			time.Sleep(s.sleep)
		}
		want := sky.run(t, s)
		got := ours.run(t, s)
		if s.refuses != "" {
			if want.err != "" || !strings.Contains(got.err, s.refuses) {
				t.Errorf("step %d %q: want Skytools to accept it and pgqgo to refuse it with %q; got %q and %q",
					i, s.sql, s.refuses, want.err, got.err)
			}
			continue
		}
		if s.differs != "" {
			if got.err != "" && want.err == "" {
				t.Errorf("step %d %q: pgqgo failed where the difference is documented (%s): %s", i, s.sql, s.differs, got.err)
			}
			continue
		}
		if want.String() != got.String() {
			t.Errorf("step %d: %s\n skytools: %s\n pgqgo:    %s", i, s.sql, want, got)
		}
	}
}

func q(sql string) step                  { return step{sql: sql} }
func on(conn, sql string) step           { return step{conn: conn, sql: sql} }
func capture(name, sql string) step      { return step{sql: sql, set: name} }
func executes(sql string) step           { return step{sql: sql, runResult: true} }
func differs(why, sql string) step       { return step{sql: sql, differs: why} }
func refuses(err, sql string) step       { return step{sql: sql, refuses: err} }
func after(d time.Duration, s step) step { s.sleep = d; return s }

// scenarioFiles reads the differential scenarios in testdata/<dir>: one
// scenario per file (named after it), one statement per line, "--" lines
// are comments.
func scenarioFiles(t *testing.T, dir string) map[string][]step {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s scenarios: %v", dir, err)
	}
	out := map[string][]step{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var steps []step
		for _, l := range strings.Split(string(raw), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
				steps = append(steps, q(strings.TrimSuffix(l, ";")))
			}
		}
		out[strings.TrimSuffix(filepath.Base(f), ".sql")] = steps
	}
	return out
}

// uncalled lists, sorted, the functions of fns that no scenario of
// testdata/<dir> calls as <schema>.<name>(.
func uncalled(t *testing.T, dir, schema string, fns []string) []string {
	t.Helper()
	called := map[string]bool{}
	re := regexp.MustCompile(regexp.QuoteMeta(schema) + `\.(\w+)\(`)
	for _, steps := range scenarioFiles(t, dir) {
		for _, s := range steps {
			for _, m := range re.FindAllStringSubmatch(s.sql, -1) {
				called[m[1]] = true
			}
		}
	}
	var missing []string
	for _, f := range fns {
		if !called[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	return missing
}
