package schema_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// Insert benchmarks: Skytools' PgQ 3.5 C extension and pgqgo's schema, on the
// same cluster, 4 clients each, driven identically. Run with
//
//	go test ./schema -run '^$' -bench Insert -benchtime 3x
//
// BenchmarkInsertSideBySide alternates the engines in short rounds so that
// machine noise hits both alike, and reports the rates and their ratios.

const benchClients = 4

var payload = `{"id": 12345, "name": "some row", "changed": ["a", "b"], "note": "typical small payload"}`

type insertMode struct {
	name  string
	perTx int
	// run performs one transaction's worth of inserts on conn.
	run func(ctx context.Context, conn *pgx.Conn) error
}

func modes(bulkSize int) map[string]insertMode {
	single := insertMode{"1 per tx", 1, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "select pgq.insert_event('bench', 'ev', $1)", payload)
		return err
	}}
	// 100 per tx as most applications write it: one round trip per event
	sequential := insertMode{"100 per tx", 100, func(ctx context.Context, c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		for i := 0; i < 100; i++ {
			if _, err := tx.Exec(ctx, "select pgq.insert_event('bench', 'ev', $1)", payload); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	}}
	// 100 per tx pipelined: all statements in one round trip (pgx batch)
	hundred := insertMode{"100 per tx pipelined", 100, func(ctx context.Context, c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue("begin")
		for i := 0; i < 100; i++ {
			b.Queue("select pgq.insert_event('bench', 'ev', $1)", payload)
		}
		b.Queue("commit")
		return c.SendBatch(ctx, b).Close()
	}}
	types := make([]string, bulkSize)
	datas := make([]string, bulkSize)
	for i := range types {
		types[i], datas[i] = "ev", payload
	}
	bulk := insertMode{fmt.Sprintf("bulk %d per call", bulkSize), bulkSize, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "select pgq.insert_event_bulk('bench', $1, $2)", types, datas)
		return err
	}}
	return map[string]insertMode{"single": single, "sequential": sequential, "hundred": hundred, "bulk": bulk}
}

// benchDB is a database with queue 'bench', and its client connections.
type benchDB struct {
	conns []*pgx.Conn
}

func newBenchDB(b *testing.B, tpl pgtest.Template) *benchDB {
	dsn := pgtest.NewDB(b, tpl)
	db := &benchDB{}
	for i := 0; i < benchClients; i++ {
		db.conns = append(db.conns, pgtest.Conn(b, dsn))
	}
	if _, err := db.conns[0].Exec(context.Background(), "select pgq.create_queue('bench')"); err != nil {
		b.Fatal(err)
	}
	return db
}

// runFor drives the clients with mode for d and returns events per second.
func (db *benchDB) runFor(b *testing.B, m insertMode, d time.Duration) float64 {
	ctx := context.Background()
	var events atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	errs := make(chan error, len(db.conns))
	for _, c := range db.conns {
		wg.Add(1)
		go func(c *pgx.Conn) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := m.run(ctx, c); err != nil {
					errs <- err
					return
				}
				events.Add(int64(m.perTx))
			}
		}(c)
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("%s: %v", m.name, err)
	default:
	}
	return float64(events.Load()) / time.Since(start).Seconds()
}

func BenchmarkInsertSideBySide(b *testing.B) {
	sky := newBenchDB(b, pgtest.Skytools)
	ours := newBenchDB(b, pgtest.PgqGo)
	m := modes(100)
	m1000 := modes(1000)
	round := 400 * time.Millisecond
	const rounds = 6
	var skySingle, ourSingle, skySeq, ourSeq, skyHundred, ourHundred, bulk100, bulk1000 float64
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			// alternate which engine goes first, so drift favours neither
			pair := func(mode insertMode, skyAcc, ourAcc *float64) {
				if r%2 == 0 {
					*skyAcc += sky.runFor(b, mode, round)
					*ourAcc += ours.runFor(b, mode, round)
				} else {
					*ourAcc += ours.runFor(b, mode, round)
					*skyAcc += sky.runFor(b, mode, round)
				}
			}
			pair(m["single"], &skySingle, &ourSingle)
			pair(m["sequential"], &skySeq, &ourSeq)
			pair(m["hundred"], &skyHundred, &ourHundred)
			bulk100 += ours.runFor(b, m["bulk"], round)
			bulk1000 += ours.runFor(b, m1000["bulk"], round)
		}
	}
	n := float64(rounds * b.N)
	b.ReportMetric(skySingle/n, "skytools_1pertx_ev/s")
	b.ReportMetric(ourSingle/n, "pgqgo_1pertx_ev/s")
	b.ReportMetric(ourSingle/skySingle, "ratio_1pertx")
	b.ReportMetric(skySeq/n, "skytools_100pertx_ev/s")
	b.ReportMetric(ourSeq/n, "pgqgo_100pertx_ev/s")
	b.ReportMetric(ourSeq/skySeq, "ratio_100pertx")
	b.ReportMetric(skyHundred/n, "skytools_100pertx_pipelined_ev/s")
	b.ReportMetric(ourHundred/n, "pgqgo_100pertx_pipelined_ev/s")
	b.ReportMetric(ourHundred/skyHundred, "ratio_100pertx_pipelined")
	b.ReportMetric(bulk100/n, "pgqgo_bulk100_ev/s")
	b.ReportMetric(bulk100/skySeq, "bulk100_vs_skytools_100pertx")
	b.ReportMetric(bulk100/skyHundred, "bulk100_vs_skytools_100pertx_pipelined")
	b.ReportMetric(bulk1000/n, "pgqgo_bulk1000_ev/s")
}

// BenchmarkInsertEvent is the classic per-operation form: ns per event for
// each engine and mode, 4 clients sharing b.N events.
func BenchmarkInsertEvent(b *testing.B) {
	engines := []struct {
		name string
		tpl  pgtest.Template
	}{{"skytools", pgtest.Skytools}, {"pgqgo", pgtest.PgqGo}}
	for _, e := range engines {
		db := newBenchDB(b, e.tpl)
		for _, key := range []string{"single", "sequential", "hundred", "bulk"} {
			m := modes(100)[key]
			if key == "bulk" && e.tpl == pgtest.Skytools {
				continue // the bulk function is pgqgo's own
			}
			b.Run(e.name+"/"+m.name, func(b *testing.B) {
				ctx := context.Background()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for _, c := range db.conns {
					wg.Add(1)
					go func(c *pgx.Conn) {
						defer wg.Done()
						for next.Add(int64(m.perTx)) <= int64(b.N)+int64(m.perTx)-1 {
							if err := m.run(ctx, c); err != nil {
								b.Error(err)
								return
							}
						}
					}(c)
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
