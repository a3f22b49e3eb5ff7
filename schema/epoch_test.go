package schema_test

import (
	"context"
	"fmt"
	"github.com/pgqgo/pgqgo/internal/pgtest"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/schema"
)

// TestTxidWraparound runs a queue on a cluster whose 32-bit xid counter wraps
// during the test, in a later epoch: ticks, snapshots and batches use 64-bit
// txids, so every event is delivered once across the wrap, with open
// transactions spanning it.
func TestTxidWraparound(t *testing.T) {
	ctx := context.Background()
	const start = 3<<32 | (1<<32 - 1500) // epoch 3, 1500 xids before the wrap
	cl, err := pgcluster.Start(ctx, pgcluster.Options{NextXID: start})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	conn, err := pgx.Connect(ctx, cl.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := schema.Install(ctx, conn, schema.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, cl.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)

	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'c')")
	first := pgtest.Scalar[int64](t, conn, "select txid_current()")
	if first>>32 != 3 {
		t.Fatalf("txid %d is not in epoch 3", first)
	}
	seen := map[string]int{}
	want := 0
	consume := func() {
		pgtest.Exec(t, conn, "select pgq.force_tick('q')")
		pgtest.Exec(t, conn, "select pgq.ticker()")
		for {
			var batch *int64
			if err := conn.QueryRow(ctx, "select pgq.next_batch('q', 'c')").Scan(&batch); err != nil {
				t.Fatal(err)
			}
			if batch == nil {
				return
			}
			rows, _ := conn.Query(ctx, "select ev_data from pgq.get_batch_events($1)", *batch)
			data, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range data {
				seen[d]++
			}
			pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *batch)
		}
	}
	// an open transaction from before the wrap, committed after it
	pgtest.Exec(t, other, "begin")
	pgtest.Exec(t, other, "select pgq.insert_event('q', 'open', 'spanning')")
	want++
	for i := 0; i < 40; i++ {
		for j := 0; j < 50; j++ {
			pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', $1)", fmt.Sprintf("%d-%d", i, j))
			want++
		}
		consume()
	}
	pgtest.Exec(t, other, "commit")
	consume()
	last := pgtest.Scalar[int64](t, conn, "select txid_current()")
	if last>>32 != 4 {
		t.Fatalf("xid did not wrap into epoch 4: %d", last)
	}
	if len(seen) != want {
		t.Fatalf("delivered %d distinct events, want %d", len(seen), want)
	}
	for d, n := range seen {
		if n != 1 {
			t.Fatalf("event %s delivered %d times", d, n)
		}
	}
}
