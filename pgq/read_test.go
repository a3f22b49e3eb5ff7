package pgq_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// TestBatchReadMatchesPgQ: the consumer's own read of a batch (its first
// chunk comes in the round trip that opens it, by a prepared statement on
// the queue's event tables) returns exactly what the engine's
// pgq.get_batch_events returns for the same batch, on both engines, through
// what makes batches hard: transactions open across several ticks (late
// commits), table rotations every second, events retried by another
// consumer (owned by it, so not this one's), events too big for their chunk,
// batches bigger than FetchSize (continued through a cursor).
func TestBatchReadMatchesPgQ(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'rotation_period', '1 second')")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const fetch = 40
			mk := func(name string) *pgq.Consumer {
				c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: name, FetchSize: fetch,
					FetchBytes: fetch * 16 << 10, PollInterval: 20 * time.Millisecond, ErrorBackoff: 10 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Register(ctx, conn); err != nil {
					t.Fatal(err)
				}
				return c
			}
			c, r := mk("c"), mk("r")

			// ticks, retries and rotations, as a ticker with a short rotation period
			var wg sync.WaitGroup
			var switches atomic.Int32
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := pgtest.Conn(t, dsn)
				last := ""
				for ctx.Err() == nil {
					for _, q := range []string{"select pgq.ticker()", "select pgq.maint_retry_events()",
						"select pgq.maint_rotate_tables_step1('q')", "select pgq.maint_rotate_tables_step2()"} {
						_, _ = m.Exec(ctx, q)
					}
					var sw string
					if m.QueryRow(ctx, "select queue_switch_time::text from pgq.queue where queue_name = 'q'").Scan(&sw) == nil && sw != last {
						if last != "" {
							switches.Add(1)
						}
						last = sw
					}
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()

			// producers: transactions of 1-60 events, a tenth of them held open
			// across ticks, one event in 50 of 30 KiB, for 3.5 s (three rotations)
			// and on until the second rotation (a loaded machine's consumers
			// lag, and a rotation waits for them), 30 s at most
			var mu sync.Mutex
			produced := map[int64]bool{}
			var pwg sync.WaitGroup
			for p := range 3 {
				pwg.Add(1)
				go func() {
					defer pwg.Done()
					pc := pgtest.Conn(t, dsn)
					rng := rand.New(rand.NewPCG(uint64(p), 7))
					for start := time.Now(); time.Since(start) < 3500*time.Millisecond ||
						switches.Load() < 2 && time.Since(start) < 30*time.Second; {
						tx, err := pc.Begin(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						var ids []int64
						for range 1 + rng.IntN(60) {
							data := fmt.Sprint(rng.Int64())
							if rng.IntN(50) == 0 {
								data = strings.Repeat("x", 30<<10)
							}
							var id int64
							if err := tx.QueryRow(ctx, "select pgq.insert_event('q', 't', $1)", data).Scan(&id); err != nil {
								t.Error(err)
								return
							}
							ids = append(ids, id)
						}
						time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
						if rng.IntN(10) == 0 {
							time.Sleep(time.Duration(30+rng.IntN(200)) * time.Millisecond)
						}
						if err := tx.Commit(ctx); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for _, id := range ids {
							produced[id] = true
						}
						mu.Unlock()
					}
				}()
			}

			// r retries a third of what it gets, once
			go func() {
				_ = r.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
					if ev.Retry == 0 && ev.ID%3 == 0 {
						return pgq.RetryAfter(0, fmt.Errorf("later"))
					}
					return nil
				}))
			}()

			var (
				got                          = map[int64]int{}
				mismatches                   []string
				big, late, overFetch, events int
			)
			done := make(chan error, 1)
			go func() {
				done <- c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
					var ids []int64
					for ev, err := range b.Events(ctx) {
						if err != nil {
							return err
						}
						if len(ev.Data) == 30<<10 {
							big++
						} else if ev.Data == "" || strings.Contains(ev.Data, "x") {
							mismatches = append(mismatches, fmt.Sprintf("event %d: data %.20q", ev.ID, ev.Data))
						}
						ids = append(ids, ev.ID)
					}
					rows, err := b.Tx().Query(ctx, "select ev_id from pgq.get_batch_events($1) order by ev_id", b.ID)
					if err != nil {
						return err
					}
					want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
					if err != nil {
						return err
					}
					if !slices.Equal(ids, want) {
						mismatches = append(mismatches, fmt.Sprintf("batch %d (ticks %d-%d): read %v, get_batch_events %v",
							b.ID, b.PrevTickID, b.TickID, ids, want))
					}
					var n int
					if err := b.Tx().QueryRow(ctx, `select count(*) from pgq.get_batch_events($1) e, pgq.tick t, pgq.queue q
						where q.queue_name = 'q' and t.tick_queue = q.queue_id and t.tick_id = $2
						and e.ev_txid < txid_snapshot_xmax(t.tick_snapshot)`, b.ID, b.PrevTickID).Scan(&n); err != nil {
						return err
					}
					late += n
					if len(ids) > fetch {
						overFetch++
					}
					events += len(ids)
					for _, id := range ids {
						got[id]++
					}
					return nil
				}))
			}()
			pwg.Wait()
			mu.Lock()
			total := len(produced)
			mu.Unlock()
			// a tick after the last commit: pgq.ticker() alone may wait for
			// ticker_max_lag before it ticks a few last events, and c would
			// stand at the newest tick with them still unread. A transaction
			// begun after every producer's commit, seen done by a tick's
			// snapshot, makes that tick late enough.
			after := pgtest.Scalar[int64](t, conn, "select txid_current()")
			pgtest.Exec(t, conn, "select pgq.force_tick('q')")
			pgtest.Eventually(t, 30*time.Second, "a tick after the last event", func() bool {
				return pgtest.Scalar[bool](t, conn, "select exists (select 1 from pgq.tick where txid_visible_in_snapshot($1, tick_snapshot))", after)
			})
			pgtest.Eventually(t, 60*time.Second, "every event read by c", func() bool {
				return pgtest.Scalar[int64](t, conn, `select count(*) from pgq.get_consumer_info('q', 'c')
					where last_tick = (select max(tick_id) from pgq.tick) and current_batch is null`) == 1 &&
					pgtest.Scalar[int64](t, conn, "select count(*) from pgq.retry_queue") == 0
			})
			time.Sleep(100 * time.Millisecond)
			cancel()
			<-done
			wg.Wait()

			for _, m := range mismatches[:min(len(mismatches), 5)] {
				t.Error(m)
			}
			missing, twice := 0, 0
			for id := range produced {
				switch got[id] {
				case 0:
					missing++
				case 1:
				default:
					twice++
				}
			}
			t.Logf("%s: %d events, %d read by c (%d big), %d late commits, %d batches over FetchSize, %d rotations",
				tpl, total, events, big, late, overFetch, switches.Load())
			if missing != 0 || twice != 0 || len(got) != total {
				t.Fatalf("of %d events: %d missing, %d twice, %d read that were not produced", total, missing, twice, len(got)-total+missing)
			}
			if big == 0 || late == 0 || overFetch == 0 || switches.Load() < 2 {
				t.Fatalf("the run did not exercise every case: big %d, late %d, over FetchSize %d, rotations %d", big, late, overFetch, switches.Load())
			}
			if r.Stats().Retried == 0 {
				t.Fatal("no event was retried by r")
			}
		})
	}
}

// TestBigBatchReadFromCursor: a batch whose ticks' event sequence says it
// holds more than FetchSize events is read through a cursor from its first
// event (the opening reads none of it); one that says less gets its first
// chunk with the opening. The estimate is only a hint: each case where it
// is wrong (ids given out to a transaction that rolled back, or to one that
// was still open at the batch's first tick) still reads exactly the batch.
func TestBigBatchReadFromCursor(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", FetchSize: 10,
				PollInterval: 10 * time.Millisecond, ErrorBackoff: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Register(ctx, conn); err != nil {
				t.Fatal(err)
			}
			type seen struct {
				prev, tick int64
				ids        []int64
				cursorAt   int // events read when a cursor first existed; -1: never
			}
			batches := make(chan seen, 10)
			done := make(chan error, 1)
			go func() {
				done <- c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
					s := seen{prev: b.PrevTickID, tick: b.TickID, cursorAt: -1}
					cursor := func() error {
						if s.cursorAt >= 0 {
							return nil
						}
						var n int
						if err := b.Tx().QueryRow(ctx, "select count(*) from pg_cursors where name like 'pgqgo_batch_%'").Scan(&n); err != nil {
							return err
						}
						if n > 0 {
							s.cursorAt = len(s.ids)
						}
						return nil
					}
					for ev, err := range b.Events(ctx) {
						if err != nil {
							return err
						}
						if err := cursor(); err != nil {
							return err
						}
						s.ids = append(s.ids, ev.ID)
					}
					if err := cursor(); err != nil {
						return err
					}
					batches <- s
					return nil
				}))
			}()
			insert := func(db interface {
				QueryRow(context.Context, string, ...any) pgx.Row
			}, n int) []int64 {
				var ids []int64
				for range n {
					var id int64
					if err := db.QueryRow(ctx, "select pgq.insert_event('q', 't', 'd')").Scan(&id); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, id)
				}
				return ids
			}
			tick := func() int64 {
				// pgq.ticker ticks when events wait, else after the idle period
				var id *int64
				pgtest.Eventually(t, 10*time.Second, "a tick", func() bool {
					id = pgtest.Scalar[*int64](t, conn, "select pgq.ticker('q')")
					return id != nil
				})
				return *id
			}
			expect := func(what string, ids []int64, viaCursor bool) {
				t.Helper()
				end := tick()
				for {
					select {
					case s := <-batches:
						if s.tick != end {
							if len(s.ids) > 0 {
								t.Fatalf("%s: batch %d..%d read %v before the tick %d", what, s.prev, s.tick, s.ids, end)
							}
							continue // an idle tick of the queue's own
						}
						if !slices.Equal(s.ids, ids) {
							t.Fatalf("%s: read %v, want %v", what, s.ids, ids)
						}
						if (s.cursorAt == 0) != viaCursor {
							t.Fatalf("%s: a cursor was there after %d events (-1: never); read through it from the start: %v", what, s.cursorAt, viaCursor)
						}
						return
					case err := <-done:
						t.Fatalf("%s: the consumer stopped: %v", what, err)
					case <-time.After(30 * time.Second):
						t.Fatalf("%s: no batch up to tick %d", what, end)
					}
				}
			}
			tick()
			expect("25 events, estimated 25", insert(conn, 25), true)
			expect("5 events, estimated 5", insert(conn, 5), false)

			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			insert(tx, 40)
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			expect("3 events, estimated 43 (40 rolled back)", insert(conn, 3), true)

			other := pgtest.Conn(t, dsn)
			open, err := other.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			late := insert(open, 30)
			expect("no event, estimated 30 (their transaction still open)", nil, true)
			if err := open.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			expect("30 events committed late, estimated 0", late, false)
			cancel()
			<-done
		})
	}
}
