package ticker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// BenchmarkProducersWithTickers: what the ticker costs the producers. Four
// clients call pgq.insert_event (~200-byte payloads; one event per
// transaction, then 100 per transaction, one statement each) on a durable
// cluster, against Skytools' PgQ ticked by pgqd and against pgqgo ticked by
// `pgqgo ticker`, each with its own daemon running, in interleaved 2 s rounds
// (the order alternating) so machine noise hits both alike. Reported: each
// engine's events/s and pgqgo's ratio to Skytools' (issue 14 asks >= 1.0).
//
//	go test ./ticker -run '^$' -bench ProducersWithTickers -benchtime 1x -timeout 30m
func BenchmarkProducersWithTickers(b *testing.B) {
	durable(b)
	const payload = `{"id": 1, "customer": "ACME Corporation", "items": [{"sku": "X-1", "qty": 3}], "note": "a typical order of about two hundred bytes, realistic enough"}`
	type side struct {
		name  string
		conns []*pgx.Conn
	}
	var sides []*side
	for _, e := range engines {
		dsn := pgtest.NewDB(b, e.tpl)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			b.Fatal(err)
		}
		s := &side{name: e.name}
		for range 4 {
			s.conns = append(s.conns, pgtest.Conn(b, dsn))
		}
		pgtest.Exec(b, s.conns[0], "select pgq.create_queue('q')")
		pgtest.Exec(b, s.conns[0], "select pgq.register_consumer('q', 'c')")
		startDaemonProc(b, e.daemon, benchINI(b, []string{cfg.Database}, ""))
		sides = append(sides, s)
	}
	time.Sleep(2 * time.Second)
	modes := []struct {
		name  string
		perTx int
	}{{"1pertx", 1}, {"100pertx", 100}}
	run := func(s *side, perTx int, d time.Duration) float64 {
		ctx := context.Background()
		var events atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for _, c := range s.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < d {
					tx, err := c.Begin(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					for range perTx {
						if _, err := tx.Exec(ctx, "select pgq.insert_event('q', 'order', $1)", payload); err != nil {
							b.Error(err)
							tx.Rollback(ctx) //nolint:errcheck
							return
						}
					}
					if err := tx.Commit(ctx); err != nil {
						b.Error(err)
						return
					}
					events.Add(int64(perTx))
				}
			}()
		}
		wg.Wait()
		return float64(events.Load()) / time.Since(start).Seconds()
	}
	const rounds = 5
	for range b.N {
		for _, m := range modes {
			total := map[string]float64{}
			for r := range rounds {
				order := []*side{sides[0], sides[1]}
				if r%2 == 1 {
					order[0], order[1] = order[1], order[0]
				}
				for _, s := range order {
					total[s.name] += run(s, m.perTx, 2*time.Second)
				}
			}
			b.ReportMetric(total["skytools"]/rounds, "skytools_"+m.name+"_ev/s")
			b.ReportMetric(total["pgqgo"]/rounds, "pgqgo_"+m.name+"_ev/s")
			b.ReportMetric(total["pgqgo"]/total["skytools"], "ratio_"+m.name)
			b.Logf("%s: Skytools+pgqd %.0f ev/s, pgqgo+pgqgo ticker %.0f ev/s, ratio %.2f",
				m.name, total["skytools"]/rounds, total["pgqgo"]/rounds, total["pgqgo"]/total["skytools"])
		}
	}
}
