package ticker

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newDB makes a database from tpl and returns its name and a connection.
func newDB(t *testing.T, tpl pgtest.Template) (string, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.NewDB(t, tpl)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database, pgtest.Conn(t, dsn)
}

func testConfig(t *testing.T, dbs ...string) Config {
	cfg := Defaults()
	cfg.BaseConnStr = pgtest.ServerDSN(t)
	cfg.InitialDatabase = "postgres"
	cfg.DatabaseList = dbs
	cfg.Syslog = false
	cfg.TickerPeriod = 100 * time.Millisecond
	cfg.RetryPeriod = 200 * time.Millisecond
	cfg.MaintPeriod = 200 * time.Millisecond
	cfg.CheckPeriod = 300 * time.Millisecond
	cfg.StatsPeriod = 500 * time.Millisecond
	return cfg
}

var testLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// start runs a daemon until the test ends (or stop is called).
func start(t *testing.T, cfg Config) (d *Daemon, stop func()) {
	t.Helper()
	log := testLog
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d = New(cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("daemon did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

// drain reads every ready batch of consumer c and returns the event data.
func drain(t *testing.T, conn *pgx.Conn, queue, consumer string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for {
		var batch *int64
		if err := conn.QueryRow(ctx, "select pgq.next_batch($1, $2)", queue, consumer).Scan(&batch); err != nil {
			t.Fatal(err)
		}
		if batch == nil {
			return out
		}
		rows, _ := conn.Query(ctx, "select ev_data from pgq.get_batch_events($1)", *batch)
		data, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data...)
		pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *batch)
	}
}

func setupQueue(t *testing.T, conn *pgx.Conn) {
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'c')")
}

// TestTicksEveryEngine runs one daemon over databases with pgqgo's schema,
// with Skytools' C extension, and with no pgq at all.
func TestTicksEveryEngine(t *testing.T) {
	ours1, c1 := newDB(t, pgtest.PgqGo)
	ours2, c2 := newDB(t, pgtest.PgqGo)
	sky, c3 := newDB(t, pgtest.Skytools)
	none, _ := newDB(t, pgtest.Empty)
	for _, c := range []*pgx.Conn{c1, c2, c3} {
		setupQueue(t, c)
		// PgQ's thresholds apply to pgq.ticker(): make a tick due quickly
		pgtest.Exec(t, c, "select pgq.set_queue_config('q', 'ticker_max_lag', '0.2')")
	}
	listener := pgtest.Conn(t, pgtest.DSNFor(t, ours1))
	pgtest.Exec(t, listener, "listen pgq_tick")

	d, _ := start(t, testConfig(t, ours1, ours2, sky, none))
	for i, c := range []*pgx.Conn{c1, c2, c3} {
		pgtest.Exec(t, c, "select pgq.insert_event('q', 't', $1)", []string{"one", "two", "three"}[i])
	}
	for i, c := range []*pgx.Conn{c1, c2, c3} {
		want := []string{"one", "two", "three"}[i]
		var got []string
		pgtest.Eventually(t, 5*time.Second, "event delivered in database "+want, func() bool {
			got = append(got, drain(t, c, "q", "c")...)
			return len(got) == 1 && got[0] == want
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(ctx)
	if err != nil || n.Channel != "pgq_tick" || n.Payload != "q" {
		t.Fatalf("notification: %+v %v", n, err)
	}
	states := map[string]string{}
	for _, s := range d.Statuses() {
		states[s.Database] = s.State + "/" + s.Engine
	}
	if states[ours1] != "active/pgqgo" || states[sky] != "active/pgq 3.5" || states[none] != "no-pgq/" {
		t.Fatalf("states: %v", states)
	}
}

// TestLowLatencyTick: with fast ticking, an event is ticked within
// milliseconds even though the queue's ticker_max_lag is PgQ's default 3 s.
func TestLowLatencyTick(t *testing.T) {
	name, conn := newDB(t, pgtest.PgqGo)
	setupQueue(t, conn)
	cfg := testConfig(t, name)
	cfg.TickerPeriod = time.Hour // only the fast path may tick
	start(t, cfg)
	time.Sleep(300 * time.Millisecond) // the creation tick pair is done
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'fast')")
	began := time.Now()
	var got []string
	pgtest.Eventually(t, 2*time.Second, "fast tick", func() bool {
		got = append(got, drain(t, conn, "q", "c")...)
		return len(got) == 1
	})
	if took := time.Since(began); took > time.Second {
		t.Fatalf("took %s", took)
	}
	// idle queues get no ticks from the fast path
	ticks := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.tick")
	time.Sleep(300 * time.Millisecond)
	if after := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.tick"); after != ticks {
		t.Fatalf("idle queue ticked: %d -> %d ticks", ticks, after)
	}
}

// TestRotationAndRetry: maintenance rotates the event tables and the retry
// duty redelivers retried events.
func TestRotationAndRetry(t *testing.T) {
	for _, tpl := range []pgtest.Template{pgtest.PgqGo, pgtest.Skytools} {
		t.Run(tpl.String(), func(t *testing.T) {
			name, conn := newDB(t, tpl)
			setupQueue(t, conn)
			pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'rotation_period', '0.5')")
			pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '0.1')")
			start(t, testConfig(t, name))
			pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'retry me')")
			var batch *int64
			pgtest.Eventually(t, 5*time.Second, "first batch with the event", func() bool {
				if conn.QueryRow(context.Background(), "select pgq.next_batch('q', 'c')").Scan(&batch) != nil || batch == nil {
					return false
				}
				// the daemon's first ticks may come before the insert: skip empty batches
				if pgtest.Scalar[int64](t, conn, "select count(*) from pgq.get_batch_events($1)", *batch) == 0 {
					pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *batch)
					return false
				}
				return true
			})
			pgtest.Exec(t, conn, "select pgq.event_retry($1, (select ev_id from pgq.get_batch_events($1) limit 1), 0)", *batch)
			pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *batch)
			var got []string
			pgtest.Eventually(t, 5*time.Second, "retried event redelivered", func() bool {
				got = append(got, drain(t, conn, "q", "c")...)
				return len(got) == 1 && got[0] == "retry me"
			})
			// traffic keeps ticks coming; the consumer keeps up, so rotation may proceed
			pgtest.Eventually(t, 10*time.Second, "tables rotated twice", func() bool {
				pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'traffic')")
				drain(t, conn, "q", "c")
				return pgtest.Scalar[int](t, conn, "select queue_cur_table from pgq.queue") == 2
			})
		})
	}
}

func mustInstall(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	if _, err := schema.Install(context.Background(), conn, schema.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestLateCommitTicked: an event from a transaction that was open across a
// tick, committed when nothing else happens, is still ticked promptly (PgQ's
// thresholds would leave it to the next idle tick, a minute later).
func TestLateCommitTicked(t *testing.T) {
	name, conn := newDB(t, pgtest.PgqGo)
	setupQueue(t, conn)
	cfg := testConfig(t, name)
	start(t, cfg)
	late := pgtest.Conn(t, pgtest.DSNFor(t, name))
	pgtest.Exec(t, late, "begin")
	pgtest.Exec(t, late, "select pgq.insert_event('q', 't', 'late')")
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'early')")
	var got []string
	pgtest.Eventually(t, 3*time.Second, "early event", func() bool {
		got = append(got, drain(t, conn, "q", "c")...)
		return len(got) == 1
	})
	time.Sleep(300 * time.Millisecond) // ticks have passed with the late transaction open
	var lateTx int64
	late.QueryRow(context.Background(), "select txid_current()").Scan(&lateTx)
	pgtest.Exec(t, late, "commit")
	began := time.Now()
	defer func() {
		if t.Failed() {
			rows, _ := conn.Query(context.Background(), "select format('%s %s %s %s', tick_id, tick_event_seq, tick_snapshot, tick_time) from pgq.tick")
			r, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Logf("late tx %d ticks %v", lateTx, r)
			rows, _ = conn.Query(context.Background(), "select format('%s %s %s', ev_id, ev_txid, ev_data) from pgq.event_1")
			r, _ = pgx.CollectRows(rows, pgx.RowTo[string])
			t.Logf("events %v", r)
		}
	}()
	pgtest.Eventually(t, 3*time.Second, "late event", func() bool {
		got = append(got, drain(t, conn, "q", "c")...)
		return len(got) == 2
	})
	if got[1] != "late" || time.Since(began) > time.Second {
		t.Fatalf("got %v after %s", got, time.Since(began))
	}
}

// TestLockedNextTableDoesNotStopTicking: a transaction holding a lock on the
// event table the next rotation would empty (pg_dump holds ACCESS SHARE on
// every table for its whole run) postpones the rotation; ticking goes on
// meanwhile, and the rotation happens once the lock is gone.
func TestLockedNextTableDoesNotStopTicking(t *testing.T) {
	for _, tpl := range []pgtest.Template{pgtest.PgqGo, pgtest.Skytools} {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			name, conn := newDB(t, tpl)
			setupQueue(t, conn)
			pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'rotation_period', '0.2')")
			pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '0.05')")
			next := pgtest.Scalar[string](t, conn, "select queue_data_pfx || '_' || ((queue_cur_table + 1) % queue_ntables) from pgq.queue")
			locker := pgtest.Conn(t, pgtest.DSNFor(t, name))
			tx, err := locker.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pgtest.Exec(t, tx.Conn(), "lock table "+next+" in access share mode")
			start(t, testConfig(t, name))

			// 4 s of traffic under the lock: ticks must keep coming
			var last int64
			lastAt, worst := time.Now(), time.Duration(0)
			for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'x')")
				drain(t, conn, "q", "c")
				if id := pgtest.Scalar[int64](t, conn, "select max(tick_id) from pgq.tick"); id != last {
					last, lastAt = id, time.Now()
				}
				worst = max(worst, time.Since(lastAt))
			}
			t.Logf("%s: longest time without a tick while the next table was locked: %v", tpl, worst)
			if worst > 1500*time.Millisecond {
				t.Errorf("no tick for %v while the next event table was locked", worst)
			}
			if cur := pgtest.Scalar[int](t, conn, "select queue_cur_table from pgq.queue"); cur != 0 {
				t.Errorf("rotated into a locked table (current table %d)", cur)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			pgtest.Eventually(t, 10*time.Second, "rotation after the lock is gone", func() bool {
				pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'traffic')")
				drain(t, conn, "q", "c")
				return pgtest.Scalar[int](t, conn, "select queue_cur_table from pgq.queue") != 0
			})
		})
	}
}

// freeAddr is a local TCP address nobody listens on (for metrics_addr).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestStatusPageServed: with metrics_addr the daemon serves the status page
// at / (and /metrics, /healthz), behind status_auth when set, showing the
// databases it works on with their queues, consumers and its own state.
func TestStatusPageServed(t *testing.T) {
	name, conn := newDB(t, pgtest.PgqGo)
	setupQueue(t, conn)
	addr := freeAddr(t)
	cfg := testConfig(t, name)
	cfg.MetricsAddr, cfg.StatusAuth = addr, "ops:s3cret"
	start(t, cfg)
	get := func(path string, auth bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if auth {
			req.SetBasicAuth("ops", "s3cret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var body string
	pgtest.Eventually(t, 20*time.Second, "the status page shows the queue, its consumer and the daemon's state", func() bool {
		var code int
		code, body = get("/", true)
		return code == http.StatusOK && strings.Contains(body, `data-queue="q" data-consumer="c"`) &&
			strings.Contains(body, "ticker: active") && strings.Contains(body, `data-database="`+name+`"`)
	})
	for _, p := range []string{"/", "/metrics", "/healthz", "/api/status"} {
		if code, _ := get(p, false); code != http.StatusUnauthorized {
			t.Fatalf("GET %s without credentials: %d", p, code)
		}
	}
	if code, m := get("/metrics", true); code != http.StatusOK || !strings.Contains(m, "pgqgo_ticker_ticks_total") {
		t.Fatalf("GET /metrics: %d", code)
	}
	if strings.Contains(body, "postgres\"") {
		t.Fatalf("a database without pgq is on the page:\n%s", body)
	}
}

// TestGrafanaDashboardMatchesMetrics: the dashboard in docs/grafana is valid
// JSON and every metric its panels query is one the daemon exports.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana/pgqgo-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	m := NewMetrics()
	// touch every vector so that Gather lists it
	m.ticks.WithLabelValues("d", "fast")
	m.maint.WithLabelValues("d")
	m.retries.WithLabelValues("d")
	m.errors.WithLabelValues("d", "tick")
	m.active.WithLabelValues("d")
	m.queueRate.WithLabelValues("d", "q")
	m.tickerLag.WithLabelValues("d", "q")
	m.consumerLag.WithLabelValues("d", "q", "c")
	m.pending.WithLabelValues("d", "q", "c")
	m.nodeInfo.WithLabelValues("d", "q", "n", "root", "n")
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(`pgqgo_[a-z_]+`).FindAllString(tg.Expr, -1) {
				used[name] = true
				if !exported[name] {
					t.Errorf("panel %q queries %s, which the daemon does not export", p.Title, name)
				}
			}
		}
	}
	for name := range exported {
		if !used[name] {
			t.Errorf("metric %s is on no panel", name)
		}
	}
}

// TestMetricsCarryCascadeNode: a database that is a cascade node (pgq_node)
// has its queue labelled with the node, type and provider on /metrics, and
// the labels go when pgq_node is no longer trusted (not read at all).
func TestMetricsCarryCascadeNode(t *testing.T) {
	name, conn := newDB(t, pgtest.PgqGo)
	ctx := context.Background()
	if err := schema.InstallComponent(ctx, conn, schema.Node); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, conn, "select * from pgq_node.register_location('q', 'n1', 'dbname="+name+"', false)")
	pgtest.Exec(t, conn, "select * from pgq_node.create_node('q', 'root', 'n1', 'w1', null, null, null)")
	addr := freeAddr(t)
	cfg := testConfig(t, name)
	cfg.MetricsAddr = addr
	start(t, cfg)
	metrics := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want := `pgqgo_queue_node_info{database="` + name + `",node="n1",provider="n1",queue="q",type="root"} 1`
	pgtest.Eventually(t, 20*time.Second, "the node's labels on /metrics", func() bool {
		return strings.Contains(metrics(), want)
	})
	pgtest.Exec(t, conn, "create role pgqgo_metrics_intruder")
	t.Cleanup(func() {
		pgtest.Exec(t, conn, "alter function pgq_node.get_node_info(text) owner to current_user")
		pgtest.Exec(t, conn, "drop role pgqgo_metrics_intruder")
	})
	pgtest.Exec(t, conn, "alter function pgq_node.get_node_info(text) owner to pgqgo_metrics_intruder")
	pgtest.Eventually(t, 20*time.Second, "no node labels from an untrusted pgq_node", func() bool {
		m := metrics()
		return strings.Contains(m, "pgqgo_consumer_lag_seconds") && !strings.Contains(m, "pgqgo_queue_node_info{")
	})
}
