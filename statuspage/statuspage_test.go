package statuspage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/statuspage"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// page starts a collector sampling a fresh pgqgo database every 200 ms and
// serves its page; it returns the server and a connection to the database.
func page(t *testing.T, opts statuspage.Options) (*httptest.Server, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	col := &statuspage.Collector{Interval: 200 * time.Millisecond,
		Targets: func() []statuspage.Target { return []statuspage.Target{{Name: "appdb", Config: cfg}} }}
	ctx, cancel := context.WithCancel(context.Background())
	go col.Run(ctx)
	srv := httptest.NewServer(statuspage.Handler(col, opts))
	t.Cleanup(func() { srv.Close(); cancel() })
	return srv, pgtest.Conn(t, dsn)
}

// browser starts headless Chromium (Debian's chromium; scripts/install-deps.sh
// installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no chromium found: run scripts/install-deps.sh")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.NoSandbox, // the suite runs as root
		chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx) // no timeout: it would stop the browser
	t.Cleanup(func() { cancel(); cancelA() })
	return ctx
}

// waitJS polls JavaScript expressions in the page, in order, until each is
// true (at most 30 s each).
func waitJS(ctx context.Context, exprs ...string) error {
	for _, expr := range exprs {
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			return fmt.Errorf("waiting for %s: %w", expr, err)
		}
	}
	return nil
}

// TestStatusPageInBrowser: the page, in a real browser, shows the queues and
// consumers of a live database, draws its charts, and follows events as they
// flow, without a reload. PGQGO_SCREENSHOT=docs/status-page.png keeps a
// screenshot.
func TestStatusPageInBrowser(t *testing.T) {
	srv, conn := page(t, statuspage.Options{Title: "pgqgo status: test"})
	pgtest.Exec(t, conn, `select pgq.create_queue('orders'); select pgq.register_consumer('orders', 'mailer');
		select pgq.register_consumer('orders', 'billing')`)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('tr[data-queue="orders"][data-consumer="billing"]') !== null`,
		// the charts: two per queue, a line per consumer, points once sampled twice
		`document.querySelectorAll('#charts svg.chart').length === 2 &&
			[...document.querySelectorAll('#charts polyline.line')].some(p => p.getAttribute('points').split(' ').length >= 2)`,
	); err != nil {
		t.Fatalf("page did not render the queue and its charts: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if title != "pgqgo status: test" {
		t.Fatalf("title %q", title)
	}

	// events flow: 120 in, ticked; the page shows them pending for both
	// consumers and a rate in, then, once mailer has consumed them, its
	// pending count falls to 0, all without reloading
	pgtest.Exec(t, conn, `select pgq.insert_event('orders', 'created', 'order ' || i) from generate_series(1, 120) i;
		select pgq.force_tick('orders'); select pgq.ticker('orders')`)
	// (pending counts event ids past the position; force_tick's jump of the
	// sequence counts too, as in PgQ)
	if err := waitJS(ctx, `parseInt(document.querySelector('tr[data-consumer="mailer"] td.pending').textContent) >= 120`,
		// the rate in, on its chart: a point of the "in" line above the baseline
		`[...document.querySelectorAll('polyline.line[data-series="in"]')].some(p => p.getAttribute('points').split(' ').some(xy => parseFloat(xy.split(',')[1]) < 150))`,
	); err != nil {
		t.Fatalf("page did not follow the events in: %v", err)
	}
	batch := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('orders', 'mailer')")
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", batch)
	if err := waitJS(ctx, `document.querySelector('tr[data-consumer="mailer"] td.pending').textContent.trim() === '0' &&
			parseInt(document.querySelector('tr[data-consumer="billing"] td.pending').textContent) >= 120`); err != nil {
		t.Fatalf("page did not follow the consumer: %v", err)
	}
	if path := os.Getenv("PGQGO_SCREENSHOT"); path != "" {
		time.Sleep(1500 * time.Millisecond)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// the data: status --json's shape, durations in seconds
	var api struct {
		Databases []struct {
			Queues []struct {
				Name             string   `json:"name"`
				TickerLagSeconds *float64 `json:"ticker_lag_seconds"`
				Consumers        []struct {
					Name       string   `json:"name"`
					LagSeconds *float64 `json:"lag_seconds"`
				} `json:"consumers"`
			} `json:"queues"`
		} `json:"databases"`
	}
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/api/status", "", "")), &api); err != nil || len(api.Databases) != 1 ||
		len(api.Databases[0].Queues) != 1 || api.Databases[0].Queues[0].TickerLagSeconds == nil ||
		len(api.Databases[0].Queues[0].Consumers) != 2 || api.Databases[0].Queues[0].Consumers[0].LagSeconds == nil {
		t.Fatalf("/api/status: %v %+v", err, api)
	}
	// no payload anywhere on the page or in its data
	for _, p := range []string{"/", "/fragment", "/api/status?history=1"} {
		if body := get(t, srv.URL+p, "", ""); strings.Contains(body, "order 1") {
			t.Fatalf("%s shows an event payload", p)
		}
	}
}

// TestStatusPageEscapesNames: a queue and consumer with markup in their
// names are shown as text, in the tables and in the charts.
func TestStatusPageEscapesNames(t *testing.T) {
	srv, conn := page(t, statuspage.Options{})
	evil := `<img src=x onerror="document.title='pwned'">`
	pgtest.Exec(t, conn, "select pgq.create_queue($1)", evil)
	pgtest.Exec(t, conn, "select pgq.register_consumer($1, $1)", evil)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('#charts svg.chart').length === 2 && document.querySelector('tr[data-consumer]') !== null`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // a refresh or two
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.body.innerText.includes(%q) && document.querySelectorAll('img').length === 0`, evil)))
	if err != nil {
		t.Fatal(err)
	}
	if title == "pwned" || !shown {
		t.Fatalf("markup in a name was run or not shown as text (title %q, shown as text %v)", title, shown)
	}
}

// TestStatusPageAuthAndReadOnly: with a user and password the page, its data
// and its script need them; nothing but GET and HEAD is served.
func TestStatusPageAuthAndReadOnly(t *testing.T) {
	srv, _ := page(t, statuspage.Options{User: "ops", Password: "s3cret"})
	for _, p := range []string{"/", "/fragment", "/status.js", "/api/status"} {
		if code := status(t, http.MethodGet, srv.URL+p, "", ""); code != http.StatusUnauthorized {
			t.Fatalf("GET %s without credentials: %d", p, code)
		}
		if code := status(t, http.MethodGet, srv.URL+p, "ops", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("GET %s with a wrong password: %d", p, code)
		}
		if code := status(t, http.MethodGet, srv.URL+p, "ops", "s3cret"); code != http.StatusOK {
			t.Fatalf("GET %s with credentials: %d", p, code)
		}
		if code := status(t, http.MethodPost, srv.URL+p, "ops", "s3cret"); code != http.StatusMethodNotAllowed {
			t.Fatalf("POST %s: %d", p, code)
		}
	}
	if _, _, err := statuspage.ParseAuth("nopassword"); err == nil {
		t.Fatal("ParseAuth accepted a value without a password")
	}
}

// request makes an HTTP request with basic auth when user is set, and
// returns the status code and body.
func request(t *testing.T, method, url, user, password string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func status(t *testing.T, method, url, user, password string) int {
	code, _ := request(t, method, url, user, password)
	return code
}

func get(t *testing.T, url, user, password string) string {
	_, body := request(t, http.MethodGet, url, user, password)
	return body
}
