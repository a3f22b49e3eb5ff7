package pgq_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

const skytoolsPython = pgtest.SkytoolsPython

// backlog fills queue q with n events in batches of batchSize (one tick each),
// shaped like trigger or application events: a type, a ~120-byte JSON
// payload and a table name.
func backlog(b *testing.B, conn *pgx.Conn, n, batchSize int) {
	b.Helper()
	ctx := context.Background()
	p := pgq.NewProducer(conn, "q")
	evs := make([]pgq.Event, batchSize)
	for i := 0; i < n; i += batchSize {
		for j := range evs {
			evs[j] = pgq.Event{Type: "order.created", Extra1: "public.orders",
				Data: fmt.Sprintf(`{"id": %d, "customer": "c-%d", "total": "%d.50", "currency": "EUR", "items": [1, 2, 3], "note": "benchmark"}`, i+j, j, i)}
		}
		if _, err := p.Copy(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "select pgq.ticker('q')"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDrainSideBySide drains the same 200k-event backlog (200 batches of
// 1000) with the Go consumer and with Skytools' python3-pgq consumer, both with
// a no-op per-event handler, on the same database in one run. Reported:
// events/s of each (measured from the first batch, and for the Go consumer
// also including connecting) and their ratio.
func BenchmarkDrainSideBySide(b *testing.B) {
	if _, err := os.Stat(skytoolsPython); err != nil {
		b.Fatal("no /usr/bin/python3 (run scripts/install-deps.sh)")
	}
	if err := exec.Command(skytoolsPython, "-c", "import pgq").Run(); err != nil {
		b.Fatal("python3-pgq missing (run scripts/install-deps.sh)")
	}
	const n, batchSize = 200000, 1000
	for _, tpl := range templates {
		b.Run(tpl.String(), func(b *testing.B) {
			for range b.N {
				ctx := context.Background()
				dsn := pgtest.NewDB(b, tpl)
				conn := pgtest.Conn(b, dsn)
				pgtest.Exec(b, conn, "select pgq.create_queue('q')")
				pgtest.Exec(b, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '0')")
				goC, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "go", NoListen: true, PollInterval: 10 * time.Millisecond})
				if _, err := goC.Register(ctx, conn); err != nil {
					b.Fatal(err)
				}
				pgtest.Exec(b, conn, "select pgq.register_consumer('q', 'py')")
				backlog(b, conn, n, batchSize)

				// Go
				rctx, cancel := context.WithCancel(ctx)
				var count int
				var first time.Time
				start := time.Now()
				goC.Run(rctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
					if count == 0 {
						first = time.Now()
					}
					count++
					if count == n {
						cancel()
					}
					return nil
				}))
				end := time.Now()
				if count != n {
					b.Fatalf("go consumer saw %d events", count)
				}
				goRate := float64(n) / end.Sub(first).Seconds()
				goWall := float64(n) / end.Sub(start).Seconds()

				// Python (Skytools)
				pyStart := time.Now()
				pyEvents, pySecs := pgtest.SkytoolsConsumer(b, dsn, "q", "py")
				pyWallTime := time.Since(pyStart)
				if pyEvents != n {
					b.Fatalf("python consumer saw %d events", pyEvents)
				}
				pyRate := float64(n) / pySecs
				b.ReportMetric(goRate, "go_ev/s")
				b.ReportMetric(goWall, "go_incl_connect_ev/s")
				b.ReportMetric(pyRate, "python_ev/s")
				b.ReportMetric(float64(n)/pyWallTime.Seconds(), "python_incl_startup_ev/s")
				b.ReportMetric(goRate/pyRate, "go/python")
			}
		})
	}
}

// BenchmarkProducers measures the producer paths against pgq.insert_event
// called once per event (each its own transaction, as most applications
// produce), on both pgq implementations in one run. Reported: events/s.
func BenchmarkProducers(b *testing.B) {
	modes := []struct {
		name  string
		n     int // events per iteration
		chunk int
	}{
		{"insert_event_per_call", 10000, 1},
		{"insert_event_100_per_tx", 50000, 100},
		{"InsertBatch_100", 100000, 100},
		{"InsertBatch_1000", 200000, 1000},
		{"Copy_1000", 200000, 1000},
		{"Copy_10000", 200000, 10000},
	}
	for _, tpl := range templates {
		for _, m := range modes {
			b.Run(tpl.String()+"/"+m.name, func(b *testing.B) {
				ctx := context.Background()
				dsn := pgtest.NewDB(b, tpl)
				conn := pgtest.Conn(b, dsn)
				pgtest.Exec(b, conn, "select pgq.create_queue('q')")
				p := pgq.NewProducer(conn, "q")
				evs := make([]pgq.Event, m.chunk)
				for i := range evs {
					evs[i] = pgq.Event{Type: "order.created", Extra1: "public.orders",
						Data: fmt.Sprintf(`{"id": %d, "customer": "c-%d", "total": "12.50", "currency": "EUR"}`, i, i)}
				}
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					for done := 0; done < m.n; done += m.chunk {
						var err error
						switch m.name {
						case "insert_event_per_call":
							_, err = p.Insert(ctx, evs[0])
						case "insert_event_100_per_tx":
							var tx pgx.Tx
							if tx, err = conn.Begin(ctx); err == nil {
								for i := range evs {
									if _, err = p.InsertTx(ctx, tx, evs[i]); err != nil {
										break
									}
								}
								if err == nil {
									err = tx.Commit(ctx)
								}
							}
						case "InsertBatch_100", "InsertBatch_1000":
							err = p.InsertBatch(ctx, evs)
						default:
							_, err = p.Copy(ctx, evs)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(m.n*b.N)/time.Since(start).Seconds(), "ev/s")
			})
		}
	}
}
