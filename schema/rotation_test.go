package schema_test

import (
	"context"
	"testing"

	"pgqgo/internal/pgtest"
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
