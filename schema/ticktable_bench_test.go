package schema_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// BenchmarkTickTableHour: the size of pgq.tick after an hour of load. pgqgo's
// ticker ticks a busy queue about 20 times a second (72,000 ticks an hour);
// pgqd ticks it once a second (3,600). The ticks are made for real (an event
// and a pgqgo_ticker call each; pgq.ticker after force_tick on Skytools' PgQ)
// and then spread over the last hour (their tick_time rewritten). A consumer
// that keeps up reads to the end; another stays at the start (it fell
// behind). Then one maintenance round runs (pgq.Maintenance: what the ticker
// daemon runs every maint_period, with VACUUM). Reported: rows and bytes of
// pgq.tick (table and indexes) before and after, for both engines.
//
//	go test ./schema -run '^$' -bench TickTableHour -benchtime 1x -timeout 30m
func BenchmarkTickTableHour(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		for _, side := range []struct {
			name  string
			tpl   pgtest.Template
			ticks int
			tick  string
		}{
			{"skytools", pgtest.Skytools, 3600, "select pgq.force_tick('q'), pgq.ticker('q')"},
			{"pgqgo", pgtest.PgqGo, 72000, "select count(*) from pgq.pgqgo_ticker('0', '0')"},
		} {
			conn := pgtest.Conn(b, pgtest.NewDB(b, side.tpl))
			pgtest.Exec(b, conn, "select pgq.create_queue('q')")
			pgtest.Exec(b, conn, "select pgq.register_consumer('q', 'lagging')")
			pgtest.Exec(b, conn, "select pgq.register_consumer('q', 'keepup')")
			pgtest.Exec(b, conn, "select pgq.insert_event('q', 't', 'first')")
			pgtest.Exec(b, conn, "select pgq.force_tick('q'), pgq.ticker('q')")
			for range side.ticks {
				pgtest.Exec(b, conn, "select pgq.insert_event('q', 'order', '{\"id\": 1, \"note\": \"a small order\"}')")
				pgtest.Exec(b, conn, side.tick)
			}
			// spread over the hour, ending now
			gap := time.Hour / time.Duration(side.ticks)
			pgtest.Exec(b, conn, `update pgq.tick set tick_time = now() - ((select max(tick_id) from pgq.tick) - tick_id) * $1::interval`, gap)
			for {
				id := pgtest.Scalar[*int64](b, conn, "select pgq.next_batch('q', 'keepup')")
				if id == nil {
					break
				}
				pgtest.Exec(b, conn, "select pgq.finish_batch($1)", *id)
			}
			pgtest.Exec(b, conn, "vacuum analyze pgq.tick")
			rows0 := pgtest.Scalar[int64](b, conn, "select count(*) from pgq.tick")
			size0 := pgtest.Scalar[int64](b, conn, "select pg_total_relation_size('pgq.tick')")
			if _, err := pgq.Maintenance(ctx, conn); err != nil {
				b.Fatal(err)
			}
			pgtest.Exec(b, conn, "vacuum analyze pgq.tick")
			rows1 := pgtest.Scalar[int64](b, conn, "select count(*) from pgq.tick")
			size1 := pgtest.Scalar[int64](b, conn, "select pg_total_relation_size('pgq.tick')")
			// the lagging consumer still gets every event
			n := int64(0)
			for {
				id := pgtest.Scalar[*int64](b, conn, "select pgq.next_batch('q', 'lagging')")
				if id == nil {
					break
				}
				n += pgtest.Scalar[int64](b, conn, "select count(*) from pgq.get_batch_events($1)", *id)
				pgtest.Exec(b, conn, "select pgq.finish_batch($1)", *id)
			}
			if n != int64(side.ticks)+1 {
				b.Fatalf("%s: the lagging consumer read %d events, want %d", side.name, n, side.ticks+1)
			}
			b.ReportMetric(float64(rows0), side.name+"_tick_rows_before")
			b.ReportMetric(float64(rows1), side.name+"_tick_rows_after")
			b.ReportMetric(float64(size0)/1024, side.name+"_tick_KiB_before")
			b.ReportMetric(float64(size1)/1024, side.name+"_tick_KiB_after")
			b.Logf("%s, %d ticks in an hour: pgq.tick %d rows, %d KiB (table and indexes) before maintenance; %d rows, %d KiB after",
				side.name, side.ticks, rows0, size0/1024, rows1, size1/1024)
		}
	}
}
