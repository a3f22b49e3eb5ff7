package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// TestDeadLetterReplay: an event given up on lands in pgq.dead_letter with
// its reason, and pgq.dead_letter_replay hands it back to that consumer only.
func TestDeadLetterReplay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := newQueueDB(t, pgtest.PgqGo, "q")
	conn := pgtest.Conn(t, dsn)
	other, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "other"})
	c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", MaxRetries: 1, PollInterval: 20 * time.Millisecond})
	for _, x := range []*pgq.Consumer{other, c} {
		if _, err := x.Register(ctx, conn); err != nil {
			t.Fatal(err)
		}
	}
	startTicker(t, dsn)
	if _, err := pgq.NewProducer(conn, "q").Insert(ctx, pgq.Event{Type: "poison", Data: "p", Extra3: "x3"}); err != nil {
		t.Fatal(err)
	}
	fail := true
	var delivered []int
	go c.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
		delivered = append(delivered, ev.Retry)
		if fail {
			return pgq.RetryAfter(0, errors.New("cannot parse"))
		}
		return nil
	}))
	pgtest.Eventually(t, 20*time.Second, "dead-lettered", func() bool {
		return pgtest.Scalar[int64](t, conn, "select count(*) from pgq.dead_letter") == 1
	})
	row := pgtest.Column[string](t, conn, "select concat_ws('|', dl_queue, dl_consumer, dl_reason, ev_retry, ev_type, ev_data, ev_extra3) from pgq.dead_letter")
	if row[0] != "q|c|retry after 0s: cannot parse|1|poison|p|x3" {
		t.Fatalf("dead letter row %q", row[0])
	}
	fail = false
	id := pgtest.Scalar[int64](t, conn, "select dl_id from pgq.dead_letter")
	if ev := pgtest.Scalar[int64](t, conn, "select pgq.dead_letter_replay($1)", id); ev == 0 {
		t.Fatal("replay returned no event")
	}
	if v := pgtest.Scalar[*int64](t, conn, "select pgq.dead_letter_replay($1)", id); v != nil {
		t.Fatal("replayed twice")
	}
	pgtest.Eventually(t, 20*time.Second, "replayed event delivered", func() bool { return c.Stats().Events == 3 })
	if got := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.dead_letter"); got != 0 || len(delivered) != 3 {
		t.Fatalf("dead letters %d, deliveries %v", got, delivered)
	}
	// the other consumer's stream holds the event once: replay went to c only
	pgtest.Exec(t, conn, "select pgq.ticker('q')")
	n := 0
	for {
		b := pgtest.Scalar[*int64](t, conn, "select pgq.next_batch('q', 'other')")
		if b == nil {
			break
		}
		n += len(pgtest.Column[int64](t, conn, "select ev_id from pgq.get_batch_events($1)", *b))
		pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *b)
	}
	if n != 1 {
		t.Fatalf("other consumer saw %d events", n)
	}
	// Skytools' schema has no dead-letter table: the error says what to do
	dsn2 := newQueueDB(t, pgtest.Skytools, "q")
	c2, _ := pgq.NewConsumer(dsn2, pgq.ConsumerConfig{Queue: "q", Name: "c", NoListen: true})
	conn2 := pgtest.Conn(t, dsn2)
	c2.Register(ctx, conn2)
	pgq.NewProducer(conn2, "q").Insert(ctx, pgq.Event{Type: "t"})
	tick(t, conn2, "q")
	ctx2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	var dlErr error
	c2.Run(ctx2, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
		for ev := range b.Events(ctx) {
			dlErr = b.DeadLetter(ctx, ev, errors.New("x"))
		}
		cancel2()
		return dlErr
	}))
	if dlErr == nil || !strings.Contains(dlErr.Error(), "DeadLetterQueue") {
		t.Fatalf("dead letter on Skytools: %v", dlErr)
	}
}

// TestWakesOnTick: with LISTEN, a consumer whose poll interval is long still
// gets a batch as soon as a tick is announced.
func TestWakesOnTick(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := newQueueDB(t, pgtest.PgqGo, "q")
	conn := pgtest.Conn(t, dsn)
	c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", PollInterval: time.Hour})
	if _, err := c.Register(ctx, conn); err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 10)
	go c.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
		got <- time.Now()
		return nil
	}))
	time.Sleep(300 * time.Millisecond) // the consumer is now waiting
	for i := range 3 {
		pgq.NewProducer(conn, "q").Insert(ctx, pgq.Event{Type: "t"})
		start := time.Now()
		tick(t, conn, "q") // pgqgo's pgq.ticker notifies pgq_tick
		select {
		case at := <-got:
			t.Logf("round %d: delivered %s after the tick", i, at.Sub(start))
		case <-time.After(5 * time.Second):
			t.Fatal("consumer did not wake on the tick notification")
		}
	}
	// other queues' notifications do not wake it for nothing
	pgtest.Exec(t, conn, "select pg_notify('pgq_tick', 'another_queue')")
}

// TestRegistration: register, register at a tick, unregister, and errors for
// unknown queues and bad configurations.
func TestRegistration(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", NoListen: true})
			if isNew, err := c.Register(ctx, conn); err != nil || !isNew {
				t.Fatalf("register: %v %v", isNew, err)
			}
			if isNew, err := c.Register(ctx, conn); err != nil || isNew {
				t.Fatalf("register again: %v %v", isNew, err)
			}
			p := pgq.NewProducer(conn, "q")
			p.Insert(ctx, pgq.Event{Type: "t", Data: "before"})
			tick(t, conn, "q")
			mark := pgtest.Scalar[int64](t, conn, "select max(tick_id) from pgq.tick")
			p.Insert(ctx, pgq.Event{Type: "t", Data: "after"})
			tick(t, conn, "q")
			if err := c.RegisterAt(ctx, conn, mark); err != nil {
				t.Fatal(err)
			}
			var seen []string
			rctx, cancel := context.WithCancel(ctx)
			c.Run(rctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
				seen = append(seen, ev.Data)
				cancel()
				return nil
			}))
			if strings.Join(seen, ",") != "after" {
				t.Fatalf("after RegisterAt: %v", seen)
			}
			if ok, err := c.Unregister(ctx, conn); err != nil || !ok {
				t.Fatalf("unregister: %v %v", ok, err)
			}
			if ok, err := c.Unregister(ctx, conn); err != nil || ok {
				t.Fatalf("unregister again: %v %v", ok, err)
			}
			sub, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "g", Subconsumer: "s1"})
			if err := sub.RegisterAt(ctx, conn, mark); err == nil {
				t.Fatal("RegisterAt accepted for a group member")
			}

			// Run stops with a clear error for what retrying cannot fix
			missing, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "nope", Name: "c", NoListen: true})
			ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
			defer ecancel()
			if err := missing.Run(ectx, pgq.BatchFunc(func(context.Context, *pgq.Batch) error { return nil })); err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"nope"`) {
				t.Fatalf("consumer of a missing queue: %v", err)
			}
			for _, bad := range []pgq.ConsumerConfig{{Queue: "q"}, {Name: "c"}, {Queue: "q", Name: "c", RetryDelay: -1}} {
				if _, err := pgq.NewConsumer(dsn, bad); err == nil {
					t.Errorf("config %+v accepted", bad)
				}
			}
			if _, err := pgq.NewConsumer("host=/nonexistent port=x", pgq.ConsumerConfig{Queue: "q", Name: "c"}); err == nil {
				t.Error("bad DSN accepted")
			}
		})
	}
}

// TestThresholdsAndBatchRetry: MinCount makes batches span several ticks, and
// RetryAll sends a whole batch back once.
func TestThresholdsAndBatchRetry(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			var sizes []int64
			big, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "big", MinCount: 50, NoListen: true,
				PollInterval: 20 * time.Millisecond, OnBatch: func(s pgq.BatchStats) { sizes = append(sizes, s.Events) }})
			retrier, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "retrier", NoListen: true, PollInterval: 20 * time.Millisecond})
			for _, c := range []*pgq.Consumer{big, retrier} {
				if _, err := c.Register(ctx, conn); err != nil {
					t.Fatal(err)
				}
			}
			p := pgq.NewProducer(conn, "q")
			for i := 0; i < 200; i += 10 {
				evs := make([]pgq.Event, 10)
				for j := range evs {
					evs[j] = pgq.Event{Type: "t", Data: strconv.Itoa(i + j)}
				}
				if err := p.InsertBatch(ctx, evs); err != nil {
					t.Fatal(err)
				}
				tick(t, conn, "q")
			}

			rctx, stop := context.WithCancel(ctx)
			var seen int64
			big.Run(rctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
				if seen++; seen >= 150 { // the tail stays below MinCount until more events come
					stop()
				}
				return nil
			}))
			for _, s := range sizes {
				if s < 50 {
					t.Fatalf("a batch smaller than MinCount 50: %v", sizes)
				}
			}
			if len(sizes) == 0 || len(sizes) > 4 {
				t.Fatalf("batch sizes with MinCount 50: %v", sizes)
			}

			startTicker(t, dsn) // ticks and moves retried events back
			rctx, stop = context.WithCancel(ctx)
			retried := 0
			var firstRound, secondRound int
			err := retrier.Run(rctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
				n := 0
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					if ev.Retry == 0 {
						firstRound++
					} else {
						secondRound++
					}
					n++
				}
				if retried == 0 {
					k, err := b.RetryAll(ctx, 0)
					if err != nil || k != n {
						return fmt.Errorf("RetryAll: %d of %d, %v", k, n, err)
					}
					retried = k
				}
				if firstRound == 200 && secondRound == retried {
					stop()
				}
				return nil
			}))
			if !errors.Is(err, context.Canceled) || retried == 0 {
				t.Fatalf("Run: %v (first round %d, second %d of %d)", err, firstRound, secondRound, retried)
			}
		})
	}
}

// TestConfigFromLiveConn: a consumer configured from a live connection's
// Config() (which carries pgx's notification hook) still wakes on ticks.
func TestConfigFromLiveConn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dsn := newQueueDB(t, pgtest.PgqGo, "q")
	conn := pgtest.Conn(t, dsn)
	c, err := pgq.NewConsumerConfig(conn.Config(), pgq.ConsumerConfig{Queue: "q", Name: "c", PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, conn); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go c.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
		got <- ev.Data
		return nil
	}))
	time.Sleep(300 * time.Millisecond) // waiting for a notification now
	pgq.NewProducer(conn, "q").Insert(ctx, pgq.Event{Type: "t", Data: "woke"})
	tick(t, conn, "q")
	select {
	case d := <-got:
		if d != "woke" {
			t.Fatalf("got %q", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("consumer did not wake on the tick")
	}
}
