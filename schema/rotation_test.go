package schema_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// TestMillionEventsLeaveNoDeadTuples pushes 1M events through a queue whose
// tables rotate continuously while a consumer keeps up: every event is read
// exactly once, the event tables are emptied by TRUNCATE only, and no dead
// tuple is left anywhere in them.
func TestMillionEventsLeaveNoDeadTuples(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "create extension if not exists pgstattuple")
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'rotation_period', '0')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'c')")

	const rounds, perTx, txPerRound = 20, 5000, 10 // 1,000,000 events
	var consumed, prevMax int64
	rotations := 0
	lastTable := 0
	for r := 0; r < rounds; r++ {
		for i := 0; i < txPerRound; i++ {
			pgtest.Exec(t, conn, `select pgq.insert_event_bulk('q',
				array_fill('t'::text, array[$1::int]),
				(select array_agg(g::text) from generate_series(1, $1::int) g))`, perTx)
		}
		pgtest.Exec(t, conn, "select pgq.force_tick('q')")
		pgtest.Exec(t, conn, "select pgq.ticker()")
		batch := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'c')")
		var n, distinct, minID, maxID int64
		if err := conn.QueryRow(ctx, "select count(*), count(distinct ev_id), min(ev_id), max(ev_id) from pgq.get_batch_events($1)",
			batch).Scan(&n, &distinct, &minID, &maxID); err != nil {
			t.Fatal(err)
		}
		if n != perTx*txPerRound || distinct != n || minID <= prevMax {
			t.Fatalf("round %d: %d events, %d distinct, ids %d..%d after %d", r, n, distinct, minID, maxID, prevMax)
		}
		consumed += n
		prevMax = maxID
		pgtest.Exec(t, conn, "select pgq.finish_batch($1)", batch)
		// what the ticker daemon does: step 1, then step 2 in its own transaction
		pgtest.Exec(t, conn, "select pgq.maint_rotate_tables_step1('q')")
		pgtest.Exec(t, conn, "select pgq.maint_rotate_tables_step2()")
		if cur := pgtest.Scalar[int](t, conn, "select queue_cur_table from pgq.queue where queue_name = 'q'"); cur != lastTable {
			rotations++
			lastTable = cur
		}
	}
	total := int64(rounds * perTx * txPerRound)
	if consumed != total {
		t.Fatalf("consumed %d events, want %d", consumed, total)
	}
	if rotations < rounds/2 {
		t.Fatalf("only %d rotations in %d rounds", rotations, rounds)
	}
	for _, tbl := range []string{"pgq.event_1", "pgq.event_1_0", "pgq.event_1_1", "pgq.event_1_2"} {
		dead := pgtest.Scalar[int64](t, conn, "select dead_tuple_count from pgstattuple($1)", tbl)
		if dead != 0 {
			t.Errorf("%s has %d dead tuples", tbl, dead)
		}
	}
	left := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1")
	if left >= total {
		t.Fatalf("%d events still stored: tables were never truncated", left)
	}
	t.Logf("1M events, %d rotations, %d rows left in event tables, 0 dead tuples", rotations, left)
}

// TestTicksPrunedByRotation: the same load on both engines (a tick and a
// batch per round, rotation due every round), 200 rounds: ticks older than
// the previous switch that no consumer needs go with the rotation, so the
// tick table stays as small as PgQ 3.5's; every event is still delivered.
func TestTicksPrunedByRotation(t *testing.T) {
	counts := map[pgtest.Template]int64{}
	for _, tpl := range []pgtest.Template{pgtest.PgqGo, pgtest.Skytools} {
		conn := pgtest.Conn(t, pgtest.NewDB(t, tpl))
		for _, sql := range []string{"select pgq.create_queue('q')", "select pgq.create_queue('idle')",
			"select pgq.set_queue_config('q', 'rotation_period', '0')", "select pgq.set_queue_config('idle', 'rotation_period', '0')",
			"select pgq.register_consumer('q', 'c')"} {
			pgtest.Exec(t, conn, sql)
		}
		var got int64
		for r := 0; r < 200; r++ {
			pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', $1)", fmt.Sprint(r))
			pgtest.Exec(t, conn, "select pgq.force_tick('q')")
			pgtest.Exec(t, conn, "select pgq.force_tick('idle')")
			pgtest.Exec(t, conn, "select pgq.ticker()")
			if batch := pgtest.Scalar[*int64](t, conn, "select pgq.next_batch('q', 'c')"); batch != nil {
				got += pgtest.Scalar[int64](t, conn, "select count(*) from pgq.get_batch_events($1)", *batch)
				pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *batch)
			}
			for _, q := range []string{"q", "idle"} {
				pgtest.Exec(t, conn, "select pgq.maint_rotate_tables_step1($1)", q)
			}
			pgtest.Exec(t, conn, "select pgq.maint_rotate_tables_step2()")
		}
		if got != 200 {
			t.Errorf("%s: %d events delivered, want 200", tpl, got)
		}
		counts[tpl] = pgtest.Scalar[int64](t, conn, "select count(*) from pgq.tick")
		t.Logf("%s: %d ticks left after 200 rounds of two queues", tpl, counts[tpl])
	}
	if counts[pgtest.PgqGo] > 20 || counts[pgtest.PgqGo] > 2*counts[pgtest.Skytools]+4 {
		t.Errorf("pgqgo keeps %d ticks, Skytools %d", counts[pgtest.PgqGo], counts[pgtest.Skytools])
	}
}
