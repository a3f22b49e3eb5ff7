package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// BenchmarkBatchCycleInstructions counts the server instructions of a
// consumer's batch cycle, pgqgo's schema beside Skytools' PgQ, with
// cachegrind on a single-user backend (deterministic): per cycle, 30 events
// inserted, a tick, next_batch and finish_batch (the base), then the same
// with batch_event_sql (the SQL text every client asks for per batch), and
// with get_batch_events (the text built and run). Reported: the base, and
// what batch_event_sql and the whole read add, in thousands of instructions.
//
//	go test ./schema -run '^$' -bench BatchCycleInstructions -benchtime 1x
func BenchmarkBatchCycleInstructions(b *testing.B) {
	ctx := context.Background()
	cl, valgrind := instructionCluster(b)
	admin := pgtest.Conn(b, cl.DSN("postgres"))
	engines := []string{"pgqgo", "skytools"}
	for _, e := range engines {
		pgtest.Exec(b, admin, "create database "+e)
		conn := pgtest.Conn(b, cl.DSN(e))
		if e == "skytools" {
			pgtest.Exec(b, conn, "create extension pgq")
		} else if _, err := schema.Install(ctx, conn, schema.InstallOptions{}); err != nil {
			b.Fatal(err)
		}
		pgtest.Exec(b, conn, "select pgq.create_queue('q'); select pgq.register_consumer('q', 'c')")
		conn.Close(ctx)
	}
	admin.Close(ctx)
	if err := cl.Shutdown(); err != nil {
		b.Fatal(err)
	}
	const base = "select count(pgq.insert_event('q', 't', 'some data')) from generate_series(1, 30)\n" +
		"select pgq.force_tick('q')\nselect pgq.ticker('q')\n"
	cycles := map[string]string{
		"base":      base + "select pgq.finish_batch(b) from (select pgq.next_batch('q', 'c') b) x where b is not null\n",
		"event_sql": base + "select pgq.finish_batch(b) from (select pgq.next_batch('q', 'c') b) x where length(pgq.batch_event_sql(b)) > 0\n",
		"read":      base + "select pgq.finish_batch(b) from (select pgq.next_batch('q', 'c') b) x where (select count(*) from pgq.get_batch_events(b)) = 30\n",
	}
	perCycle := func(db, cycle string) float64 {
		// the session's start and first calls cancel out: 40 cycles minus 10
		return (singleUserInstructions(b, cl, valgrind, db, strings.Repeat(cycle, 40)) -
			singleUserInstructions(b, cl, valgrind, db, strings.Repeat(cycle, 10))) / 30
	}
	for range b.N {
		for _, e := range engines {
			bs := perCycle(e, cycles["base"])
			b.ReportMetric(bs/1000, e+"_base_kinstr")
			b.ReportMetric((perCycle(e, cycles["event_sql"])-bs)/1000, e+"_batch_event_sql_kinstr")
			b.ReportMetric((perCycle(e, cycles["read"])-bs)/1000, e+"_read_kinstr")
		}
	}
}
