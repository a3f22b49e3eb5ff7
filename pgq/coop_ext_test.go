package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
)

// TestExactlyOnce applies batches to a second database through ExactlyOnce
// while "crashing" between the target commit and finish_batch: sometimes the
// handler fails after the target committed, sometimes the source connection
// is terminated. Every event must be applied exactly once.
func TestExactlyOnce(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			const n = 3000
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			targetDSN := pgtest.NewDB(t, pgtest.Empty)
			target := pgtest.Pool(t, targetDSN)
			if err := schema.InstallComponent(ctx, target, schema.Ext); err != nil {
				t.Fatal(err)
			}
			if _, err := target.Exec(ctx, "create table applied (ev_id bigint not null, data text not null)"); err != nil {
				t.Fatal(err)
			}
			c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", PollInterval: 20 * time.Millisecond,
				ErrorBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			if _, err := c.Register(ctx, conn); err != nil {
				t.Fatal(err)
			}
			// 100 batches of 30 events, each ticked here and by no other
			// session: on Skytools' PgQ two sessions calling pgq.ticker at
			// once can cut ticks whose snapshots are out of id order (its
			// ticker takes no lock; pgqgo's does), and a batch between them
			// then holds events an earlier batch had (seen in 2 runs of 25
			// when a background ticker ran beside these calls)
			prod := pgq.NewProducer(conn, "q")
			for i := 0; i < n; i += 30 {
				evs := []pgq.Event{}
				for j := i; j < i+30; j++ {
					evs = append(evs, pgq.Event{Type: "num", Data: fmt.Sprint(j)})
				}
				if err := prod.InsertBatch(ctx, evs); err != nil {
					t.Fatal(err)
				}
				tick(t, conn, "q")
			}

			var applies, calls, crashes, kills atomic.Int64
			apply := pgq.ExactlyOnce(target, func(ctx context.Context, tx pgx.Tx, b *pgq.Batch) error {
				applies.Add(1)
				rows := [][]any{}
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					rows = append(rows, []any{ev.ID, ev.Data})
				}
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"applied"}, []string{"ev_id", "data"}, pgx.CopyFromRows(rows))
				return err
			})
			killer := pgtest.Conn(t, pgtest.DSNFor(t, "postgres"))
			rng := rand.New(rand.NewPCG(3, 4))
			var mu sync.Mutex
			runErr := make(chan error, 1)
			go func() {
				runErr <- c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
					calls.Add(1)
					if err := apply.HandleBatch(ctx, b); err != nil {
						return err
					}
					mu.Lock()
					r := rng.Float64()
					mu.Unlock()
					switch {
					case r < 0.2: // the process "dies" after the target commit
						crashes.Add(1)
						return errors.New("injected crash between the commits")
					case r < 0.35: // the source connection dies before finish_batch
						kills.Add(1)
						pgtest.Exec(t, killer, "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgqgo consumer q/c'")
					}
					return nil
				}))
			}()
			pgtest.Eventually(t, 60*time.Second, "all events applied", func() bool {
				var k int64
				_ = target.QueryRow(ctx, "select count(distinct ev_id) from applied").Scan(&k)
				return k >= n
			})
			// let any duplicate show up, then stop
			time.Sleep(200 * time.Millisecond)
			cancel()
			<-runErr
			var total, distinct, distinctData int64
			if err := target.QueryRow(context.Background(), "select count(*), count(distinct ev_id), count(distinct data) from applied").Scan(&total, &distinct, &distinctData); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: handler calls %d, applies %d, injected crashes %d, killed connections %d, batches %d",
				tpl, calls.Load(), applies.Load(), crashes.Load(), kills.Load(), c.Stats().Batches)
			if total != n || distinct != n || distinctData != n {
				t.Fatalf("applied rows %d, distinct ids %d, distinct data %d; want %d each", total, distinct, distinctData, n)
			}
			if crashes.Load() == 0 || kills.Load() == 0 || calls.Load() <= applies.Load() {
				t.Fatalf("the crash paths were not exercised: calls %d applies %d crashes %d kills %d", calls.Load(), applies.Load(), crashes.Load(), kills.Load())
			}
		})
	}
}

// TestCoopConsumers runs three members of a cooperative group: the stream is
// split between them with no event seen twice, then one member stops
// answering while holding a batch, and another takes that batch over.
func TestCoopConsumers(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			const n = 4000
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			pgtest.Exec(t, conn, "create table seen (member text, batch bigint, ev_id bigint)")
			members := []string{"a", "b", "c"}
			consumers := map[string]*pgq.Consumer{}
			for _, m := range members {
				c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "g", Subconsumer: m,
					DeadInterval: time.Second, PollInterval: 20 * time.Millisecond, ErrorBackoff: 10 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Register(ctx, conn); err != nil {
					t.Fatal(err)
				}
				consumers[m] = c
			}
			startTicker(t, dsn)

			record := func(member string) pgq.Handler {
				return pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
					for ev, err := range b.Events(ctx) {
						if err != nil {
							return err
						}
						if _, err := b.Tx().Exec(ctx, "insert into seen values ($1, $2, $3)", member, b.ID, ev.ID); err != nil {
							return err
						}
					}
					time.Sleep(5 * time.Millisecond) // let the others have a turn
					return nil
				})
			}
			var wg sync.WaitGroup
			for _, m := range members {
				wg.Add(1)
				go func() { defer wg.Done(); consumers[m].Run(ctx, record(m)) }()
			}
			produceNumbered(t, pgq.NewProducer(pgtest.Pool(t, dsn), "q"), n, 20)
			deadline := time.Now().Add(60 * time.Second)
			for pgtest.Scalar[int64](t, conn, "select count(*) from seen") < n {
				if time.Now().After(deadline) {
					t.Logf("missing events: %v", pgtest.Column[string](t, conn, `select concat_ws(' ', ev_id, ev_txid, ev_data) from pgq.event_1 where ev_id not in (select ev_id from seen) order by ev_id`))
					t.Logf("ticks: %v", pgtest.Column[string](t, conn, `select concat_ws(' ', tick_id, tick_snapshot, tick_event_seq) from pgq.tick order by tick_id`))
					t.Fatalf("stream not consumed: seen %d of %d; subscriptions %v; stats a %+v b %+v c %+v",
						pgtest.Scalar[int64](t, conn, "select count(*) from seen"), n,
						pgtest.Column[string](t, conn, "select concat_ws(' ', co_name, sub_id, sub_last_tick, sub_batch, sub_next_tick, now() - sub_active) from pgq.subscription s join pgq.consumer c on c.co_id = s.sub_consumer order by 1"),
						consumers["a"].Stats(), consumers["b"].Stats(), consumers["c"].Stats())
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			wg.Wait()
			if d := pgtest.Scalar[int64](t, conn, "select count(*) - count(distinct ev_id) from seen"); d != 0 {
				t.Fatalf("%d events seen twice", d)
			}
			if k := pgtest.Scalar[int64](t, conn, "select count(*) from (select batch from seen group by batch having count(distinct member) > 1) x"); k != 0 {
				t.Fatalf("%d batches went to several members", k)
			}
			perMember := pgtest.Column[string](t, conn, "select member || ':' || count(distinct batch) from seen group by member order by 1")
			t.Logf("%s: batches per member %v", tpl, perMember)
			if len(perMember) != 3 {
				t.Fatalf("not every member got work: %v", perMember)
			}

			// takeover: "b" takes a batch and goes silent
			ctx2, cancel2 := context.WithCancel(context.Background())
			defer cancel2()
			pgtest.Exec(t, conn, "truncate seen")
			hung := make(chan int64, 1)
			release := make(chan struct{})
			go consumers["b"].Run(ctx2, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
				hung <- b.ID
				<-release
				for ev, err := range b.Events(context.Background()) {
					if err != nil {
						return err
					}
					if _, err := b.Tx().Exec(context.Background(), "insert into seen values ('b-late', $1, $2)", b.ID, ev.ID); err != nil {
						return err
					}
				}
				return nil
			}))
			produceNumbered(t, pgq.NewProducer(conn, "q"), 10, 10)
			batchB := <-hung
			// "a" runs with a one-second dead interval and takes b's batch
			tookOver := make(chan struct{})
			var once sync.Once
			go consumers["a"].Run(ctx2, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					if _, err := b.Tx().Exec(ctx, "insert into seen values ('a', $1, $2)", b.ID, ev.ID); err != nil {
						return err
					}
				}
				if b.ID == batchB {
					once.Do(func() { close(tookOver) })
				}
				return nil
			}))
			select {
			case <-tookOver:
			case <-time.After(20 * time.Second):
				t.Fatalf("batch %d of the silent member was not taken over", batchB)
			}
			// the silent member wakes up: its finish must fail and its work roll back
			close(release)
			pgtest.Eventually(t, 10*time.Second, "late member noticed the takeover", func() bool {
				return consumers["b"].Stats().Failures > 0
			})
			cancel2()
			if got := strings.Join(pgtest.Column[string](t, conn, "select member || ':' || count(*) from seen group by member order by 1"), ","); got != "a:10" {
				t.Fatalf("after takeover: %s", got)
			}
		})
	}
}

// TestBigBatchStreams reads one batch of 100k events of 2 KB (200 MB of
// payload) and checks the heap never holds more than a small multiple of one
// fetch.
func TestBigBatchStreams(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) { testBigBatchStreams(t, tpl) })
	}
}

func testBigBatchStreams(t *testing.T, tpl pgtest.Template) {
	const n, size = 100000, 2048
	ctx := context.Background()
	dsn := newQueueDB(t, tpl, "q")
	conn := pgtest.Conn(t, dsn)
	c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", FetchSize: 1000, NoListen: true})
	if _, err := c.Register(ctx, conn); err != nil {
		t.Fatal(err)
	}
	p := pgq.NewProducer(conn, "q")
	payload := strings.Repeat("x", size)
	evs := make([]pgq.Event, 10000)
	for i := range evs {
		evs[i] = pgq.Event{Type: "big", Data: payload}
	}
	for range n / len(evs) {
		if _, err := p.Copy(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	evs = nil
	tick(t, conn, "q")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	var count int
	rctx, cancel := context.WithCancel(ctx)
	err := c.Run(rctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			if len(ev.Data) != size {
				return fmt.Errorf("event %d: %d bytes", ev.ID, len(ev.Data))
			}
			count++
			if count%5000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
		cancel()
		return nil
	}))
	if !errors.Is(err, context.Canceled) || count != n {
		t.Fatalf("Run %v, %d events", err, count)
	}
	growth := int64(peak) - int64(base)
	t.Logf("heap before %d MB, peak while reading %d MB (growth %d MB) for %d MB of events", base>>20, peak>>20, growth>>20, n*size>>20)
	if growth > 64<<20 {
		t.Fatalf("heap grew by %d MB while streaming a batch: events are being held", growth>>20)
	}
}

// TestBigEventsBoundedInBytes: three 100 MB events and small ones around
// them in one batch. FetchSize alone would read the three at once (with the
// driver's copies, 700 MB of heap in the issue that found it, 400-500 MB
// here); FetchBytes leaves them out of their chunk and reads each on its own
// (200-300 MB here).
func TestBigEventsBoundedInBytes(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			const big = 100 << 20
			ctx := context.Background()
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			c, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", NoListen: true})
			if _, err := c.Register(ctx, conn); err != nil {
				t.Fatal(err)
			}
			p := pgq.NewProducer(conn, "q")
			payload := strings.Repeat("b", big)
			for i := 0; i < 3; i++ {
				if _, err := p.Insert(ctx, pgq.Event{Type: "small", Data: fmt.Sprint("before ", i)}); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Insert(ctx, pgq.Event{Type: "big", Data: payload, Extra1: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			payload = ""
			tick(t, conn, "q")
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() { // the heap is sampled while the batch is read
				defer close(sampled)
				var ms runtime.MemStats
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peak.Load() {
						peak.Store(ms.HeapAlloc)
					}
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
					}
				}
			}()
			var got []string
			rctx, cancel := context.WithCancel(ctx)
			err := c.Run(rctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
				if ev.Type == "big" {
					if len(ev.Data) != big || strings.Count(ev.Data, "b") != big {
						return fmt.Errorf("big event %d: %d bytes", ev.ID, len(ev.Data))
					}
					got = append(got, "big "+ev.Extra1)
				} else {
					got = append(got, ev.Data)
				}
				if len(got) == 6 {
					cancel()
				}
				runtime.GC() // what the handler let go of is not counted
				return nil
			}))
			close(stop)
			<-sampled
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			if want := "before 0,big 0,before 1,big 1,before 2,big 2"; strings.Join(got, ",") != want {
				t.Fatalf("events %v, want %s", got, want)
			}
			growth := int64(peak.Load()) - int64(base)
			t.Logf("%s: heap peak %d MB above the start while reading 3 x 100 MB events", tpl, growth>>20)
			// one big event in flight costs two copies (the driver's read
			// buffer, kept in its pool for a while, and the string), a third
			// until the collector catches up; read together the three took
			// 400-500 MB here
			if growth > 7*big/2 {
				t.Fatalf("heap grew by %d MB: the big events were held together", growth>>20)
			}
		})
	}
}
