package pgq_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgqgo/internal/pgtest"
)

func BenchmarkProbeRead(b *testing.B) {
	for _, tpl := range templates {
		ctx := context.Background()
		dsn := pgtest.NewDB(b, tpl)
		conn := pgtest.Conn(b, dsn)
		pgtest.Exec(b, conn, "select pgq.create_queue('q')")
		pgtest.Exec(b, conn, "select pgq.register_consumer('q', 'c')")
		backlog(b, conn, 20000, 1000)
		var batch int64
		conn.QueryRow(ctx, "select pgq.next_batch('q','c')").Scan(&batch)
		var sql string
		conn.QueryRow(ctx, "select pgq.batch_event_sql($1)", batch).Scan(&sql)
		drain := func(rows pgx.Rows, err error) int {
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				n++
			}
			if rows.Err() != nil {
				b.Fatal(rows.Err())
			}
			return n
		}
		for _, m := range []struct {
			name string
			f    func() int
		}{
			{"get_batch_events", func() int { return drain(conn.Query(ctx, "select * from pgq.get_batch_events($1)", batch)) }},
			{"get_batch_cursor_500", func() int {
				tx, _ := conn.Begin(ctx)
				defer tx.Rollback(ctx)
				n := drain(tx.Query(ctx, "select * from pgq.get_batch_cursor($1, 'c', 500)", batch))
				n += drain(tx.Query(ctx, "fetch 500 from c"))
				n += drain(tx.Query(ctx, "fetch 500 from c"))
				return n
			}},
			{"_batch_sql", func() int { drain(conn.Query(ctx, "select pgq._batch_sql($1, null)", batch)); return 1000 }},
			{"batch_event_tables", func() int { drain(conn.Query(ctx, "select * from pgq.batch_event_tables($1)", batch)); return 1000 }},
			{"raw_sql", func() int { return drain(conn.Query(ctx, sql)) }},
			{"declare_fetch_500", func() int {
				tx, _ := conn.Begin(ctx)
				defer tx.Rollback(ctx)
				tx.Exec(ctx, "declare c no scroll cursor for "+sql)
				n := drain(tx.Query(ctx, "fetch 500 from c"))
				n += drain(tx.Query(ctx, "fetch 500 from c"))
				n += drain(tx.Query(ctx, "fetch 500 from c"))
				return n
			}},
		} {
			b.Run(tpl.String()+"/"+m.name, func(b *testing.B) {
				start := time.Now()
				for range b.N {
					if n := m.f(); n != 1000 {
						b.Fatalf("%d rows", n)
					}
				}
				b.ReportMetric(float64(1000*b.N)/time.Since(start).Seconds(), "ev/s")
			})
		}
	}
}
