package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// TestProducerInTransaction: events inserted through the caller's
// transaction, by every path, appear only if it commits.
func TestProducerInTransaction(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			pool := pgtest.Pool(t, dsn)
			p := pgq.NewProducer(pool, "q")
			for _, commit := range []bool{false, true} {
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.InsertTx(ctx, tx, pgq.Event{Type: "one", Data: "1"}); err != nil {
					t.Fatal(err)
				}
				if err := p.InsertBatchTx(ctx, tx, []pgq.Event{{Type: "batch", Data: "2"}, {Type: "batch", Data: "3", Extra2: "e2"}}); err != nil {
					t.Fatal(err)
				}
				if n, err := p.CopyTx(ctx, tx, []pgq.Event{{Type: "copy", Data: "4", Extra1: "t", Extra4: "e4"}}); err != nil || n != 1 {
					t.Fatalf("copy: %d %v", n, err)
				}
				if commit {
					err = tx.Commit(ctx)
				} else {
					err = tx.Rollback(ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got := pgtest.Column[string](t, conn, `select concat_ws('|', ev_type, ev_data, coalesce(ev_extra1, 'NULL'),
				coalesce(ev_extra2, 'NULL'), coalesce(ev_extra4, 'NULL'), ev_txid = (select min(ev_txid) from pgq.event_1))
				from pgq.event_1 order by ev_id`)
			want := "one|1|NULL|NULL|NULL|t batch|2|NULL|NULL|NULL|t batch|3|NULL|e2|NULL|t copy|4|t|NULL|e4|t"
			if strings.Join(got, " ") != want {
				t.Fatalf("events:\n got %s\nwant %s", strings.Join(got, " "), want)
			}
			// COPY took ids from the queue's sequence and now() as time, like insert_event
			if k := pgtest.Scalar[int64](t, conn, "select count(distinct ev_id) from pgq.event_1 where ev_time = (select min(ev_time) from pgq.event_1)"); k != 4 {
				t.Fatalf("events of one transaction with different ev_time: %d", k)
			}
		})
	}
}

// TestProducerBigAndBad: large batches (chunked, atomic), JSON helpers and
// the errors a producer can meet.
func TestProducerBigAndBad(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			p := pgq.NewProducer(conn, "q")
			evs := make([]pgq.Event, 12000)
			for i := range evs {
				evs[i] = pgq.Event{Type: "t", Data: "d"}
			}
			if err := p.InsertBatch(ctx, evs); err != nil {
				t.Fatal(err)
			}
			if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); n != 12000 {
				t.Fatalf("%d events", n)
			}
			ev, err := pgq.JSONEvent("order", map[string]any{"id": 7, "name": "ü \"q\""})
			if err != nil {
				t.Fatal(err)
			}
			id, err := p.Insert(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			back := pgq.Event{Data: pgtest.Scalar[string](t, conn, "select ev_data from pgq.event_1 where ev_id = $1", id)}
			var m struct {
				ID   int
				Name string
			}
			if err := back.DecodeJSON(&m); err != nil || m.ID != 7 || m.Name != "ü \"q\"" {
				t.Fatalf("JSON round trip: %+v %v", m, err)
			}
			if _, err := pgq.JSONEvent("bad", func() {}); err == nil {
				t.Fatal("JSONEvent accepted a func")
			}
			if err := (&pgq.Event{Data: "{"}).DecodeJSON(&m); err == nil {
				t.Fatal("DecodeJSON accepted bad JSON")
			}

			bad := pgq.NewProducer(conn, "no such queue")
			if _, err := bad.Insert(ctx, pgq.Event{Type: "t"}); err == nil || !strings.Contains(err.Error(), `"no such queue"`) {
				t.Fatalf("insert into a missing queue: %v", err)
			}
			if err := bad.InsertBatch(ctx, []pgq.Event{{Type: "t"}}); err == nil {
				t.Fatal("batch into a missing queue")
			}
			if _, err := bad.Copy(ctx, []pgq.Event{{Type: "t"}}); err == nil || !strings.Contains(err.Error(), "no such queue") {
				t.Fatalf("copy into a missing queue: %v", err)
			}
			before := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1")
			pgtest.Exec(t, conn, "update pgq.queue set queue_disable_insert = true where queue_name = 'q'")
			if _, err := p.Copy(ctx, []pgq.Event{{Type: "t"}}); !errors.Is(err, pgq.ErrInsertDisabled) {
				t.Fatalf("copy into a disabled queue: %v", err)
			}
			if err := p.InsertBatch(ctx, []pgq.Event{{Type: "t"}, {Type: "t"}}); err == nil {
				t.Fatal("batch into a disabled queue")
			}
			// replicas may write into a disabled queue (PgQ's rule)
			tx, _ := conn.Begin(ctx)
			pgtest.Exec(t, conn, "set local session_replication_role = replica")
			if _, err := p.CopyTx(ctx, tx, []pgq.Event{{Type: "replica"}}); err != nil {
				t.Fatalf("copy as replica: %v", err)
			}
			tx.Rollback(ctx)
			pgtest.Exec(t, conn, "update pgq.queue set queue_disable_insert = false where queue_name = 'q'")
			if after := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); after != before {
				t.Fatalf("refused inserts left %d events", after-before)
			}
			// a failing batch inside a transaction leaves the transaction usable up to a savepoint
			tx, _ = conn.Begin(ctx)
			if err := bad.InsertBatchTx(ctx, tx, make([]pgq.Event, 6000)); err == nil {
				t.Fatal("chunked batch into a missing queue")
			}
			if _, err := p.InsertTx(ctx, tx, pgq.Event{Type: "after"}); err != nil {
				t.Fatalf("transaction unusable after a failed chunked batch: %v", err)
			}
			tx.Commit(ctx)
		})
	}
}

// TestCopyRoundTrip: awkward payloads survive COPY exactly, as they do
// insert_event: tabs, newlines, backslashes, a literal \N, unicode, long data.
func TestCopyRoundTrip(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			p := pgq.NewProducer(conn, "q")
			awkward := []string{"a\tb", "line1\nline2\r\n", `back\slash\\`, `\N`, "ünï☃😀", strings.Repeat("x", 100000), " ", `\.`, "\\\t\n"}
			var evs []pgq.Event
			for i, a := range awkward {
				evs = append(evs, pgq.Event{Type: a, Data: a, Extra1: a, Extra2: "", Extra3: strings.Repeat(a, i%3), Extra4: a})
			}
			if n, err := p.Copy(ctx, evs); err != nil || n != int64(len(evs)) {
				t.Fatalf("copy: %d %v", n, err)
			}
			rows := pgtest.Column[string](t, conn, `select concat_ws('|', ev_type = ev_data, ev_data = ev_extra1, ev_extra2 is null, ev_extra4 = ev_data) || '|' || ev_data from pgq.event_1 order by ev_id`)
			for i, r := range rows {
				want := "t|t|t|t|" + awkward[i]
				if r != want {
					t.Errorf("row %d: got %.60q want %.60q", i, r, want)
				}
			}
			if len(rows) != len(awkward) {
				t.Fatalf("%d rows", len(rows))
			}
		})
	}
}

// TestCopyNeedsInsertOnEventTables: a plain pgq_writer may insert events
// through the functions but not COPY into the event tables (PgQ 3.5's
// grants): Copy says so and which call to use; a pgq_admin member copies.
func TestCopyNeedsInsertOnEventTables(t *testing.T) {
	ctx := context.Background()
	dsn := newQueueDB(t, pgtest.PgqGo, "q")
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	for _, sql := range []string{"CREATE ROLE pgqgo_copy_writer LOGIN IN ROLE pgq_writer", "CREATE ROLE pgqgo_copy_admin LOGIN IN ROLE pgq_admin"} {
		if _, err := admin.Exec(ctx, sql); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	evs := []pgq.Event{{Type: "t", Data: "1"}, {Type: "t", Data: "2"}}
	writer := pgq.NewProducer(pgtest.Conn(t, dsn+" user=pgqgo_copy_writer"), "q")
	if _, err := writer.Copy(ctx, evs); !errors.Is(err, pgq.ErrCopyNotAllowed) || !strings.Contains(err.Error(), "InsertBatch") {
		t.Fatalf("Copy as a pgq_writer: %v, want ErrCopyNotAllowed naming InsertBatch", err)
	}
	if err := writer.InsertBatch(ctx, evs); err != nil {
		t.Fatalf("InsertBatch as a pgq_writer: %v", err)
	}
	if n, err := pgq.NewProducer(pgtest.Conn(t, dsn+" user=pgqgo_copy_admin"), "q").Copy(ctx, evs); err != nil || n != 2 {
		t.Fatalf("Copy as a pgq_admin: %d, %v", n, err)
	}
	if n := pgtest.Scalar[int64](t, pgtest.Conn(t, dsn), "select count(*) from pgq.event_1"); n != 4 {
		t.Fatalf("%d events, want 4", n)
	}
}

// TestNullTypeAndData: a NULL ev_type, ev_data or ev_extra is marked in Event.Null when
// read, and written as NULL by every way of producing (one event, a batch,
// COPY), on both pgq implementations; big events read on their own too.
func TestNullTypeAndData(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'c')")
			p := pgq.NewProducer(conn, "q")
			evs := []pgq.Event{
				{Type: "t", Null: pgq.NullData},
				{Data: "d", Null: pgq.NullType},
				{Null: pgq.NullType | pgq.NullData},
				{Type: "", Data: "", Extra2: "x"}, // empty strings, not NULL
				{Type: "big", Data: strings.Repeat("x", 1<<20), Extra1: "e", Null: 0},
			}
			if _, err := p.Insert(ctx, evs[0]); err != nil {
				t.Fatal(err)
			}
			if err := p.InsertBatch(ctx, evs[1:3]); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Copy(ctx, evs[3:]); err != nil {
				t.Fatal(err)
			}
			got := pgtest.Column[string](t, conn, `select concat(coalesce(ev_type, '<null>'), '/', coalesce(left(ev_data, 3), '<null>')) from pgq.event_1 order by ev_id`)
			if want := "t/<null> <null>/d <null>/<null> / big/xxx"; strings.Join(got, " ") != want {
				t.Fatalf("stored %q, want %q", strings.Join(got, " "), want)
			}
			pgtest.Exec(t, conn, "select pgq.force_tick('q'); select pgq.ticker('q')")
			var read []pgq.Nulls
			c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", StopWhenIdle: true, FetchBytes: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Run(ctx, pgq.EventFunc(func(_ context.Context, _ pgx.Tx, ev *pgq.Event) error {
				read = append(read, ev.Null)
				return nil
			})); err != nil {
				t.Fatal(err)
			}
			// extras written empty are stored NULL, and read so
			extras := pgq.NullExtra1 | pgq.NullExtra2 | pgq.NullExtra3 | pgq.NullExtra4
			want := []pgq.Nulls{pgq.NullData | extras, pgq.NullType | extras, pgq.NullType | pgq.NullData | extras,
				extras &^ pgq.NullExtra2, extras &^ pgq.NullExtra1}
			if fmt.Sprint(read) != fmt.Sprint(want) {
				t.Fatalf("read Null %v, want %v", read, want)
			}
		})
	}
}
