package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// produceNumbered inserts events whose data are "0".."n-1", spread over the
// three producer paths (single, batch, COPY), in chunks of chunk events.
func produceNumbered(t *testing.T, p *pgq.Producer, n, chunk int) {
	t.Helper()
	ctx := context.Background()
	for start, round := 0, 0; start < n; start, round = start+chunk, round+1 {
		var evs []pgq.Event
		for i := start; i < min(start+chunk, n); i++ {
			evs = append(evs, pgq.Event{Type: "num", Data: strconv.Itoa(i), Extra1: "x"})
		}
		var err error
		switch round % 3 {
		case 0:
			err = p.InsertBatch(ctx, evs)
		case 1:
			_, err = p.Copy(ctx, evs)
		case 2:
			for _, ev := range evs {
				if _, err = p.Insert(ctx, ev); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoLossNoDuplicates: 10k events, a handler that fails a quarter of the
// time (per-event retry), sometimes fails whole batches, and gives up after 3
// retries. Every event ends up applied exactly once or dead-lettered, never
// both, never twice.
func TestNoLossNoDuplicates(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			const n = 10000
			dsn := newQueueDB(t, tpl, "q", "dlq")
			conn := pgtest.Conn(t, dsn)
			pgtest.Exec(t, conn, "create table done (data int not null)")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			cfg := pgq.ConsumerConfig{Queue: "q", Name: "c", MaxRetries: 3, PollInterval: 50 * time.Millisecond,
				ErrorBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
			if tpl == pgtest.Skytools {
				cfg.DeadLetter = pgq.DeadLetterQueue("dlq")
			}
			c, err := pgq.NewConsumer(dsn, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Register(ctx, conn); err != nil {
				t.Fatal(err)
			}
			dlqReader, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "dlq", Name: "ops"})
			if _, err := dlqReader.Register(ctx, conn); err != nil {
				t.Fatal(err)
			}
			startTicker(t, dsn)
			produceNumbered(t, pgq.NewProducer(pgtest.Pool(t, dsn), "q"), n, 250)

			var rng = rand.New(rand.NewPCG(1, 2))
			var mu sync.Mutex
			var batchFailures, eventFailures int
			failedBatchAt := map[int64]bool{} // events that failed their batch once
			done := make(chan error, 1)
			go func() {
				done <- c.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
					mu.Lock()
					r := rng.Float64()
					failBatch := ev.ID%97 == 0 && !failedBatchAt[ev.ID]
					if failBatch {
						failedBatchAt[ev.ID] = true
						batchFailures++
					}
					mu.Unlock()
					switch {
					case failBatch:
						return fmt.Errorf("injected: %w", pgq.ErrFailBatch)
					case r < 0.25:
						mu.Lock()
						eventFailures++
						mu.Unlock()
						return pgq.RetryAfter(0, errors.New("injected event failure"))
					}
					_, err := tx.Exec(ctx, "insert into done values ($1::int)", ev.Data)
					return err
				}))
			}()

			deadCount := func() int64 {
				if tpl == pgtest.Skytools {
					var k int64
					rows, err := conn.Query(ctx, "select count(*) from pgq.event_2") // dlq's tables (queue id 2)
					if err == nil {
						rows.Next()
						rows.Scan(&k)
						rows.Close()
					}
					return k
				}
				return pgtest.Scalar[int64](t, conn, "select count(*) from pgq.dead_letter")
			}
			var applied, dead, retrying int64
			defer func() {
				if t.Failed() {
					t.Logf("applied %d, dead-lettered %d, waiting for retry %d of %d", applied, dead, retrying, n)
				}
			}()
			pgtest.Eventually(t, 180*time.Second, "all events applied or dead-lettered", func() bool {
				applied = pgtest.Scalar[int64](t, conn, "select count(*) from done")
				dead = deadCount()
				retrying = pgtest.Scalar[int64](t, conn, "select count(*) from pgq.retry_queue")
				return applied+dead >= n && retrying == 0
			})
			time.Sleep(300 * time.Millisecond) // anything extra would show up now
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v", err)
			}

			if dup := pgtest.Scalar[int64](t, conn, "select count(*) - count(distinct data) from done"); dup != 0 {
				t.Fatalf("%d duplicates applied", dup)
			}
			var deadData []int
			if tpl == pgtest.Skytools {
				deadData = pgtest.Column[int](t, conn, "select ev_data::int from pgq.event_2")
			} else {
				deadData = pgtest.Column[int](t, conn, "select ev_data::int from pgq.dead_letter where dl_queue = 'q' and dl_consumer = 'c' and ev_retry >= 3 and dl_reason like '%injected%'")
			}
			pgtest.Exec(t, conn, "create temp table dead (data int)")
			for _, d := range deadData {
				pgtest.Exec(t, conn, "insert into dead values ($1)", d)
			}
			if both := pgtest.Scalar[int64](t, conn, "select count(*) from done join dead using (data)"); both != 0 {
				t.Fatalf("%d events both applied and dead-lettered", both)
			}
			missing := pgtest.Scalar[int64](t, conn, `select count(*) from generate_series(0, $1 - 1) g
				where g not in (select data from done union all select data from dead)`, n)
			if missing != 0 {
				ex := pgtest.Column[int](t, conn, `select g from generate_series(0, $1 - 1) g
					where g not in (select data from done union all select data from dead) limit 5`, n)
				t.Fatalf("%d events lost (dead %d, done %d), e.g. %v", missing, len(deadData),
					pgtest.Scalar[int64](t, conn, "select count(*) from done"), ex)
			}
			st := c.Stats()
			t.Logf("%s: applied %d, dead-lettered %d, event failures %d, batch failures %d, stats %+v",
				tpl, pgtest.Scalar[int64](t, conn, "select count(*) from done"), len(deadData), eventFailures, batchFailures, st)
			if len(deadData) == 0 || batchFailures == 0 || st.Retried == 0 || st.DeadLettered != int64(len(deadData)) {
				t.Fatalf("the test did not exercise every path: dead %d, batch failures %d, stats %+v", len(deadData), batchFailures, st)
			}
		})
	}
}

// TestKilledConsumerRedelivers terminates the consumer's connection while a
// batch is being handled: the batch was not finished, and after reconnecting
// the consumer gets the same batch with the same events.
func TestKilledConsumerRedelivers(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", PollInterval: 50 * time.Millisecond, ErrorBackoff: 20 * time.Millisecond})
			if _, err := c.Register(ctx, conn); err != nil {
				t.Fatal(err)
			}
			produceNumbered(t, pgq.NewProducer(conn, "q"), 50, 50)
			tick(t, conn, "q")

			type delivery struct {
				batch int64
				ids   []int64
			}
			var deliveries []delivery
			killed := make(chan struct{})
			inHandler := make(chan struct{}, 1)
			runErr := make(chan error, 1)
			go func() {
				runErr <- c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
					d := delivery{batch: b.ID}
					for ev, err := range b.Events(ctx) {
						if err != nil {
							return err
						}
						d.ids = append(d.ids, ev.ID)
					}
					deliveries = append(deliveries, d)
					if len(deliveries) == 1 {
						inHandler <- struct{}{}
						<-killed
						_, err := b.Tx().Exec(ctx, "select 1")
						return err // the connection is gone
					}
					cancel()
					return nil
				}))
			}()
			<-inHandler
			n := pgtest.Scalar[int64](t, conn, "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = 'pgqgo consumer q/c'")
			if n != 1 {
				t.Fatalf("terminated %d backends", n)
			}
			close(killed)
			if err := <-runErr; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			if len(deliveries) != 2 || deliveries[0].batch != deliveries[1].batch || len(deliveries[0].ids) != 50 ||
				fmt.Sprint(deliveries[0].ids) != fmt.Sprint(deliveries[1].ids) {
				t.Fatalf("deliveries: %+v", deliveries)
			}
			if st := c.Stats(); st.Reconnects != 1 || st.Batches != 1 || st.Failures != 1 {
				t.Fatalf("stats %+v", st)
			}
			// finished: the consumer's position moved past the batch
			if v := pgtest.Scalar[*int64](t, conn, "select batch_id from pgq.next_batch_info('q', 'c')"); v != nil {
				t.Fatalf("batch still open: %d", *v)
			}
		})
	}
}

// TestStopFinishesOrLeaves: cancelling the context while a handler runs lets a
// handler that completes finish its batch, and one that gives up leave it
// unfinished.
func TestStopFinishesOrLeaves(t *testing.T) {
	dsn := newQueueDB(t, pgtest.PgqGo, "q")
	conn := pgtest.Conn(t, dsn)
	p := pgq.NewProducer(conn, "q")
	for _, giveUp := range []bool{false, true} {
		c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c" + strconv.FormatBool(giveUp), NoListen: true})
		if _, err := c.Register(context.Background(), conn); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Insert(context.Background(), pgq.Event{Type: "t", Data: "d"}); err != nil {
			t.Fatal(err)
		}
		tick(t, conn, "q")
		ctx, cancel := context.WithCancel(context.Background())
		var seen atomic.Int32
		err := c.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
			seen.Add(1)
			cancel()
			if giveUp {
				return fmt.Errorf("stopping: %w", pgq.ErrFailBatch)
			}
			return nil
		}))
		if !errors.Is(err, context.Canceled) || seen.Load() != 1 {
			t.Fatalf("giveUp=%v: Run %v, seen %d", giveUp, err, seen.Load())
		}
		open := pgtest.Scalar[*int64](t, conn, "select sub_batch from pgq.subscription s join pgq.consumer c on c.co_id = s.sub_consumer where co_name = $1", "c"+strconv.FormatBool(giveUp))
		if giveUp != (open != nil) {
			t.Fatalf("giveUp=%v: open batch %v", giveUp, open)
		}
		if st := c.Stats(); (st.Batches == 1) == giveUp {
			t.Fatalf("giveUp=%v: stats %+v", giveUp, st)
		}
	}
}
