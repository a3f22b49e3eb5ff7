package pgq_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// templates are the two pgq implementations every library test runs against.
var templates = []pgtest.Template{pgtest.PgqGo, pgtest.Skytools}

// newQueueDB returns a fresh database of tpl with pgq_coop installed and
// the queues created, ticking at every event so tests control batch sizes.
func newQueueDB(t *testing.T, tpl pgtest.Template, queues ...string) string {
	t.Helper()
	dsn := pgtest.NewDB(t, tpl)
	conn := pgtest.Conn(t, dsn)
	if err := schema.InstallComponent(context.Background(), conn, schema.Coop); err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		pgtest.Exec(t, conn, "select pgq.create_queue($1)", q)
		pgtest.Exec(t, conn, "select pgq.set_queue_config($1, 'ticker_max_lag', '0')", q)
		// idle ticks soon, so an event whose transaction commits after the tick that
		// followed its insert is not left waiting (pgqgo's ticker daemon ticks such
		// late commits at once; the plain pgq.ticker() used here only on idle ticks)
		pgtest.Exec(t, conn, "select pgq.set_queue_config($1, 'ticker_idle_period', '100 milliseconds')", q)
	}
	return dsn
}

// startTicker ticks every queue and runs retry maintenance every 10ms until
// the test ends: a stand-in for the ticker daemon that the test controls.
func startTicker(t *testing.T, dsn string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	conn := pgtest.Conn(t, dsn)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_, _ = conn.Exec(ctx, "select pgq.ticker()")
			_, _ = conn.Exec(ctx, "select pgq.maint_retry_events()")
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// tick cuts a tick on queue now if it has new events (ticker_max_lag is 0).
func tick(t *testing.T, conn *pgx.Conn, queue string) {
	t.Helper()
	pgtest.Exec(t, conn, "select pgq.ticker($1)", queue)
}
