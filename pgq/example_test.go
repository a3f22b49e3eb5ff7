package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
)

// exampleDB returns a fresh database with pgqgo's schema, pgq_coop and the
// given queues, on the test cluster. In real code this is your database.
func exampleDB(queues ...string) string {
	dsn, err := pgtest.NewDBOutsideTest(pgtest.PgqGo)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := schema.InstallComponent(ctx, conn, schema.Coop); err != nil {
		log.Fatal(err)
	}
	for _, q := range queues {
		if _, err := conn.Exec(ctx, "select pgq.create_queue($1), pgq.set_queue_config($1, 'ticker_max_lag', '0')", q); err != nil {
			log.Fatal(err)
		}
	}
	return dsn
}

// tickNow does what the ticker daemon (pgqgo ticker) does continuously: close
// a batch boundary after the events inserted so far.
func tickNow(db pgq.DB, queue string) {
	if _, err := db.Exec(context.Background(), "select pgq.ticker($1)", queue); err != nil {
		log.Fatal(err)
	}
}

// runTicker does what pgqgo's ticker daemon does, every 20ms, until ctx ends:
// tick the queues and move due retry events back into them.
func runTicker(ctx context.Context, db pgq.DB) {
	go func() {
		for ctx.Err() == nil {
			db.Exec(ctx, "select pgq.ticker(), pgq.maint_retry_events()")
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}

// quiet keeps the examples' output to what they print.
var quiet = slog.New(slog.DiscardHandler)

// Events are inserted in the caller's transaction: they reach consumers only
// if the order itself is committed.
func ExampleProducer_InsertTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDB("orders"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "create table orders (id int primary key, item text)"); err != nil {
		log.Fatal(err)
	}
	producer := pgq.NewProducer(pool, "orders")

	for id, item := range map[int]string{1: "book"} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "insert into orders values ($1, $2)", id, item); err != nil {
			log.Fatal(err)
		}
		ev, err := pgq.JSONEvent("order.created", map[string]any{"id": id, "item": item})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := producer.InsertTx(ctx, tx, ev); err != nil {
			log.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// A rolled-back transaction takes its events with it.
	tx, _ := pool.Begin(ctx)
	producer.InsertTx(ctx, tx, pgq.Event{Type: "order.created", Data: `{"id": 2}`})
	tx.Rollback(ctx)

	var n int
	pool.QueryRow(ctx, "select count(*) from pgq.event_1").Scan(&n)
	fmt.Println("events in the queue:", n)
	// Output: events in the queue: 1
}

// Large numbers of events go in with one COPY.
func ExampleProducer_Copy() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDB("clicks"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	events := make([]pgq.Event, 10000)
	for i := range events {
		events[i] = pgq.Event{Type: "click", Data: fmt.Sprintf(`{"n": %d}`, i)}
	}
	n, err := pgq.NewProducer(pool, "clicks").Copy(ctx, events)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("copied", n)
	// Output: copied 10000
}

// A NULL type or data is marked in Event.Null, when written and when read.
func ExampleNulls() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDB("audit"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	// an event with a type and no data at all (NULL, not "")
	if _, err := pgq.NewProducer(pool, "audit").Insert(ctx, pgq.Event{Type: "ping", Null: pgq.NullData}); err != nil {
		log.Fatal(err)
	}
	var isNull bool
	pool.QueryRow(ctx, "select ev_data is null from pgq.event_1").Scan(&isNull)
	fmt.Println("ev_data is NULL:", isNull)
	// Output: ev_data is NULL: true
}

// A consumer with per-event retry: an event whose handler fails is delivered
// again after RetryDelay (here chosen per error with RetryAfter), and after
// MaxRetries failures it goes to the dead-letter table instead.
func ExampleConsumer_Run() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := exampleDB("mail")
	pool, _ := pgxpool.New(ctx, dsn)
	defer pool.Close()

	consumer, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{
		Queue: "mail", Name: "sender",
		RetryDelay: 30 * time.Second, MaxRetries: 5,
		PollInterval: 50 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := consumer.Register(ctx, pool); err != nil {
		log.Fatal(err)
	}
	pgq.NewProducer(pool, "mail").InsertBatch(ctx, []pgq.Event{
		{Type: "welcome", Data: "ann@example.com"},
		{Type: "welcome", Data: "bob@example.com"},
	})

	runTicker(ctx, pool)

	attempts := map[string]int{}
	var sent []string
	err = consumer.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
		attempts[ev.Data]++
		if ev.Data == "bob@example.com" && attempts[ev.Data] == 1 {
			// the mail server said "try later": retry this event at once
			// instead of after RetryDelay
			return pgq.RetryAfter(0, errors.New("421 try again later"))
		}
		sent = append(sent, ev.Data)
		if len(sent) == 2 {
			cancel() // an example must end: stop after this batch
		}
		return nil
	}))
	fmt.Println(errors.Is(err, context.Canceled), sent, attempts["bob@example.com"])
	// Output: true [ann@example.com bob@example.com] 2
}

// Cooperative consumers: members of the group "indexer" share its batches,
// each batch going to exactly one of them.
func ExampleConsumerConfig_cooperative() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := exampleDB("docs")
	pool, _ := pgxpool.New(ctx, dsn)
	defer pool.Close()
	producer := pgq.NewProducer(pool, "docs")

	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	for _, member := range []string{"w1", "w2"} {
		c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{
			Queue: "docs", Name: "indexer", Subconsumer: member,
			DeadInterval: time.Minute, // take over a member's batch after a minute of silence
			PollInterval: 20 * time.Millisecond, Logger: quiet,
		})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.Register(ctx, pool); err != nil {
			log.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Run(ctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, ev.Data)
				if len(seen) == 4 {
					cancel()
				}
				return nil
			}))
		}()
	}
	for i := 1; i <= 4; i++ {
		producer.Insert(ctx, pgq.Event{Type: "doc", Data: fmt.Sprint("doc", i)})
		tickNow(pool, "docs") // one batch per document
	}
	wg.Wait()
	sort.Strings(seen)
	fmt.Println(strings.Join(seen, " "))
	// Output: doc1 doc2 doc3 doc4
}

// Exactly-once into another database: the target transaction applies the
// batch and records it in pgq_ext, so a crash before finish_batch does not
// apply it twice.
func ExampleExactlyOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := exampleDB("payments")
	warehouseDSN, _ := pgtest.NewDBOutsideTest(pgtest.Empty) // the target database
	warehouse, _ := pgxpool.New(ctx, warehouseDSN)
	defer warehouse.Close()
	if err := schema.InstallComponent(ctx, warehouse, schema.Ext); err != nil {
		log.Fatal(err)
	}
	warehouse.Exec(ctx, "create table payments (ev_id bigint primary key, body text)")

	pool, _ := pgxpool.New(ctx, dsn)
	defer pool.Close()
	consumer, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "payments", Name: "to_warehouse", Logger: quiet,
		OnBatch: func(pgq.BatchStats) { cancel() }}) // an example must end: stop after one batch
	consumer.Register(ctx, pool)
	pgq.NewProducer(pool, "payments").Insert(ctx, pgq.Event{Type: "paid", Data: "42.00 EUR"})
	tickNow(pool, "payments")

	consumer.Run(ctx, pgq.ExactlyOnce(warehouse, func(ctx context.Context, tx pgx.Tx, b *pgq.Batch) error {
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "insert into payments values ($1, $2)", ev.ID, ev.Data); err != nil {
				return err
			}
		}
		return nil
	}))
	var body string
	warehouse.QueryRow(context.Background(), "select body from payments").Scan(&body)
	fmt.Println(body)
	// Output: 42.00 EUR
}
