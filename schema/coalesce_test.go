package schema_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// fastTicks makes n low-latency ticks of queue q, each after one event, as
// `pgqgo ticker` does on a busy queue; returns the ids of the events.
func fastTicks(t *testing.T, conn *pgx.Conn, q string, n int) []int64 {
	t.Helper()
	ids := make([]int64, 0, n)
	for range n {
		ids = append(ids, pgtest.Scalar[int64](t, conn, "select pgq.insert_event($1, 't', 'd')", q))
		if got := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.pgqgo_ticker('0', '0') where queue_name = $1", q); got != 1 {
			t.Fatalf("pgqgo_ticker ticked %s %d times, want 1", q, got)
		}
	}
	return ids
}

// firstTick gives a fresh queue its first event and a tick after it (a fresh
// event sequence reads the same before and after its first use, so that
// event is not seen by pgqgo_ticker's cheap look at once).
func firstTick(t *testing.T, conn *pgx.Conn, q string) {
	t.Helper()
	pgtest.Exec(t, conn, "select pgq.insert_event($1, 't', 'first')", q)
	pgtest.Exec(t, conn, "select pgq.force_tick($1)", q)
	pgtest.Exec(t, conn, "select pgq.ticker($1)", q)
}

// spaceTicks rewrites the times of the queue's ticks since its consumers'
// oldest position to 5 ms apart, ending now, as pgqgo's ticker makes them on
// a busy queue: the batch sizes then do not depend on how fast the test ran.
func spaceTicks(t *testing.T, conn *pgx.Conn, q string) {
	t.Helper()
	spaceTicksBy(t, conn, q, 5*time.Millisecond)
}

func spaceTicksBy(t *testing.T, conn *pgx.Conn, q string, gap time.Duration) {
	t.Helper()
	pgtest.Exec(t, conn, `update pgq.tick t set tick_time = now() - (x.last - t.tick_id) * $2::interval
		from (select q.queue_id, max(t.tick_id) as last, min(s.sub_last_tick) as first
		        from pgq.queue q join pgq.tick t on t.tick_queue = q.queue_id join pgq.subscription s on s.sub_queue = q.queue_id
		       where q.queue_name = $1 group by q.queue_id) x
		where t.tick_queue = x.queue_id and t.tick_id >= x.first`, q, gap)
}

// sizes lists the batches' event counts.
func sizes(batches []batchSpan) []int {
	var out []int
	for _, b := range batches {
		out = append(out, len(b.events))
	}
	return out
}

type batchSpan struct {
	id, prev, cur int64
	events        []int64
}

// drain reads every ready batch of consumer c, finishing each.
func drain(t *testing.T, conn *pgx.Conn, q, c string) []batchSpan {
	t.Helper()
	ctx := context.Background()
	var out []batchSpan
	for {
		var b batchSpan
		var id, prev, cur *int64
		if err := conn.QueryRow(ctx, "select batch_id, prev_tick_id, cur_tick_id from pgq.next_batch_info($1, $2)", q, c).
			Scan(&id, &prev, &cur); err != nil {
			t.Fatal(err)
		}
		if id == nil {
			return out
		}
		b.id, b.prev, b.cur = *id, *prev, *cur
		b.events = pgtest.Column[int64](t, conn, "select ev_id from pgq.get_batch_events($1) order by ev_id", b.id)
		pgtest.Exec(t, conn, "select pgq.finish_batch($1)", b.id)
		out = append(out, b)
	}
}

// TestLaggingConsumerGetsFewBigBatches: a consumer 1000 low-latency ticks
// behind gets batches of up to ticker_max_count events, every event once and
// in order; one that keeps up gets one tick per batch.
func TestLaggingConsumerGetsFewBigBatches(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '1 hour')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'behind')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'uptodate')")
	firstTick(t, conn, "q")
	drain(t, conn, "q", "behind")
	drain(t, conn, "q", "uptodate")

	var want []int64
	var keptUp []batchSpan
	for range 10 { // the keeping-up consumer reads after every tick
		want = append(want, fastTicks(t, conn, "q", 1)...)
		keptUp = append(keptUp, drain(t, conn, "q", "uptodate")...)
	}
	for _, b := range keptUp {
		if len(b.events) != 1 || b.cur != b.prev+1 {
			t.Fatalf("keeping-up consumer: batch %d spans ticks %d..%d with %d events, want one tick, one event",
				b.id, b.prev, b.cur, len(b.events))
		}
	}
	pgtest.Exec(t, conn, "select pgq.unregister_consumer('q', 'uptodate')") // or it is a meeting point
	want = append(want, fastTicks(t, conn, "q", 990)...)
	spaceTicks(t, conn, "q")

	batches := drain(t, conn, "q", "behind")
	var got []int64
	for _, b := range batches {
		if len(b.events) > 500 {
			t.Errorf("batch %d holds %d events, above ticker_max_count 500", b.id, len(b.events))
		}
		got = append(got, b.events...)
	}
	// ticks 5 ms apart: a batch is full at 500 events (2.5 s)
	if len(batches) != 2 {
		t.Errorf("1000 ticks behind: %d batches, want 2", len(batches))
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: got id %d, want %d", i, got[i], want[i])
		}
	}
	t.Logf("1000 ticks behind: %d batches", len(batches))

	// full means ticker_max_count events and a second: with 100, ticks 5 ms
	// apart make batches of 200 events (a second); with a ticker_max_lag of
	// 0.5 s, of 100 (the span bound)
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_count', '100')")
	fastTicks(t, conn, "q", 250)
	spaceTicks(t, conn, "q")
	if got := sizes(drain(t, conn, "q", "behind")); !slices.Equal(got, []int{200, 50}) {
		t.Errorf("ticker_max_count 100, 250 ticks of one event 5 ms apart: batches of %v events, want [200 50]", got)
	}
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '0.5 s')")
	fastTicks(t, conn, "q", 250)
	spaceTicks(t, conn, "q")
	if got := sizes(drain(t, conn, "q", "behind")); !slices.Equal(got, []int{100, 100, 50}) {
		t.Errorf("ticker_max_lag 0.5 s, 250 ticks of one event 5 ms apart: batches of %v events, want [100 100 50]", got)
	}
	// ticks pgq.ticker's thresholds cut are never merged: ticker_max_count
	// events each
	for range 3 {
		pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', g::text) from generate_series(1, 100) g")
		pgtest.Exec(t, conn, "select pgq.ticker('q')")
	}
	if got := sizes(drain(t, conn, "q", "behind")); !slices.Equal(got, []int{100, 100, 100}) {
		t.Errorf("three ticks of ticker_max_count events: batches of %v events, want [100 100 100]", got)
	}
}

// TestCoalescingStopsWhereAnotherConsumerStands: a lagging consumer's batch
// ends at the tick another consumer stands on (its position, or the end of
// its open batch), which is where londiste's copy hand-off meets; explicit
// thresholds and min_lag keep their PgQ meaning; an external-ticker queue
// gets one tick per batch.
func TestCoalescingStopsWhereAnotherConsumerStands(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '1 hour')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'copy')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'main')")
	firstTick(t, conn, "q")
	drain(t, conn, "q", "copy")
	fastTicks(t, conn, "q", 20)
	// main reads up to here and opens its next batch, which it holds
	drain(t, conn, "q", "main")
	fastTicks(t, conn, "q", 20)
	var mainBatch, mainEnd int64
	if err := conn.QueryRow(ctx, "select batch_id, cur_tick_id from pgq.next_batch_info('q', 'main')").Scan(&mainBatch, &mainEnd); err != nil {
		t.Fatal(err)
	}
	mainStart := pgtest.Scalar[int64](t, conn, "select prev_tick_id from pgq.get_batch_info($1)", mainBatch)
	fastTicks(t, conn, "q", 20)

	batches := drain(t, conn, "q", "copy")
	var ends []int64
	for _, b := range batches {
		ends = append(ends, b.cur)
	}
	if len(batches) != 3 || ends[0] != mainStart || ends[1] != mainEnd {
		t.Fatalf("copy's batches end at ticks %v; want 3, ending at main's position %d and its open batch's end %d",
			ends, mainStart, mainEnd)
	}
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", mainBatch)

	// min_count/min_interval: PgQ's first qualifying tick, not coalescing
	fastTicks(t, conn, "q", 30)
	var prev, cur int64
	if err := conn.QueryRow(ctx, "select prev_tick_id, cur_tick_id from pgq.next_batch_custom('q', 'copy', null, 5, null)").Scan(&prev, &cur); err != nil {
		t.Fatal(err)
	}
	if cur-prev != 5 {
		t.Errorf("min_count 5: batch spans %d ticks, want 5", cur-prev)
	}
	// min_lag: only ticks at least that old; none are yet
	var id *int64
	if err := conn.QueryRow(ctx, "select batch_id from pgq.next_batch_custom('q', 'main', '1 hour', null, null)").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != nil {
		t.Errorf("min_lag 1 hour: got batch %d over fresh ticks", *id)
	}

	// an external-ticker queue: one tick per batch
	pgtest.Exec(t, conn, "select pgq.create_queue('branch')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('branch', 'external_ticker', 'true')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('branch', 'ticker_max_lag', '1 hour')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('branch', 'c')")
	start := pgtest.Scalar[int64](t, conn, "select max(tick_id) from pgq.tick where tick_queue = (select queue_id from pgq.queue where queue_name = 'branch')")
	for i := int64(1); i <= 5; i++ {
		pgtest.Exec(t, conn, "select pgq.insert_event('branch', 't', 'd')")
		pgtest.Exec(t, conn, "select pgq.ticker('branch', $1, now(), $2)", start+i, 100+i)
	}
	if n := len(drain(t, conn, "branch", "c")); n != 5 {
		t.Errorf("external-ticker queue: %d batches over 5 ticks, want 5", n)
	}
}

// TestCoalescingJoinsAnOpenBatch: a consumer standing where another has a
// merged batch open gets that batch's span, even when a third consumer has
// meanwhile been moved into its middle (a watermark); before, it stopped
// there and the two batches no longer ended together, which londiste3's
// copy hand-off relies on.
func TestCoalescingJoinsAnOpenBatch(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '1 hour')")
	for _, c := range []string{"copy", "main", "mark"} {
		pgtest.Exec(t, conn, "select pgq.register_consumer('q', $1)", c)
	}
	firstTick(t, conn, "q")
	for _, c := range []string{"copy", "main", "mark"} {
		drain(t, conn, "q", c)
	}
	start := pgtest.Scalar[int64](t, conn, "select last_tick from pgq.get_consumer_info('q', 'main')")
	fastTicks(t, conn, "q", 20)
	spaceTicks(t, conn, "q")
	var copyBatch, prev, end int64
	if err := conn.QueryRow(ctx, "select batch_id, prev_tick_id, cur_tick_id from pgq.next_batch_info('q', 'copy')").Scan(&copyBatch, &prev, &end); err != nil {
		t.Fatal(err)
	}
	if prev != start || end != start+20 {
		t.Fatalf("copy's batch (%d, %d], want the 20 ticks (%d, %d]", prev, end, start, start+20)
	}
	pgtest.Exec(t, conn, "select pgq.register_consumer_at('q', 'mark', $1)", start+7)
	if err := conn.QueryRow(ctx, "select prev_tick_id, cur_tick_id from pgq.next_batch_info('q', 'main')").Scan(&prev, &end); err != nil {
		t.Fatal(err)
	}
	if prev != start || end != start+20 {
		t.Fatalf("main's batch (%d, %d], want copy's open batch (%d, %d]", prev, end, start, start+20)
	}
	// not from another start: mark, at start+7, stops at the others' end
	if err := conn.QueryRow(ctx, "select prev_tick_id, cur_tick_id from pgq.next_batch_info('q', 'mark')").Scan(&prev, &end); err != nil {
		t.Fatal(err)
	}
	if prev != start+7 || end != start+20 {
		t.Fatalf("mark's batch (%d, %d], want (%d, %d]", prev, end, start+7, start+20)
	}
	// min_lag: an open batch too young is not joined
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", copyBatch)
	pgtest.Exec(t, conn, "select pgq.finish_batch(current_batch) from pgq.get_consumer_info('q') where consumer_name in ('main', 'mark')")
	fastTicks(t, conn, "q", 5)
	var id *int64
	pgtest.Exec(t, conn, "select pgq.next_batch('q', 'copy')")
	if err := conn.QueryRow(ctx, "select batch_id from pgq.next_batch_custom('q', 'main', '1 hour', null, null)").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != nil {
		t.Errorf("min_lag 1 hour: main joined a batch over fresh ticks (%d)", *id)
	}
}

// TestAdaptiveTickInterval: pgq.pgqgo_ticker widens a busy queue's interval
// with its rate (up to max_interval), ticks at once when ticker_max_count
// events wait, and ends its result with a row saying when to call again.
func TestAdaptiveTickInterval(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	firstTick(t, conn, "q")
	call := func(min, max string) (ticked int, next *time.Duration) {
		t.Helper()
		rows, err := conn.Query(ctx, "select queue_name, next_check from pgq.pgqgo_ticker($1, $2)", min, max)
		if err != nil {
			t.Fatal(err)
		}
		var name *string
		var check *time.Duration
		last := false
		if _, err := pgx.ForEachRow(rows, []any{&name, &check}, func() error {
			if last {
				t.Fatal("rows after the last row")
			}
			if name != nil {
				ticked++
			} else {
				last, next = true, check
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !last {
			t.Fatal("no last row with next_check")
		}
		return ticked, next
	}
	// a quiet queue: nothing to tick, poll as usual
	if n, next := call("0", "1 hour"); n != 0 || next != nil {
		t.Fatalf("quiet queue: ticked %d, next_check %v; want 0, NULL", n, next)
	}
	// 100 events after the last tick: the queue waits for its interval;
	// next_check says when ticker_max_count (500) would be reached at the
	// queue's rate
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'x')")
	if n, _ := call("0", "0"); n != 1 {
		t.Fatalf("fixed interval 0: ticked %d, want 1", n)
	}
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', g::text) from generate_series(1, 100) g")
	// times fixed, so the rate does not depend on the machine's speed: the
	// tick before the last a second ago (101 ev/s), the last one in the future
	// (its interval cannot have passed)
	pgtest.Exec(t, conn, `update pgq.tick set tick_time = case when tick_id = (select max(tick_id) from pgq.tick)
		then now() + interval '1 minute' else now() - interval '1 second' end
		where tick_id >= (select max(tick_id) - 1 from pgq.tick)`)
	n, next := call("0", "1 hour")
	if n != 0 || next == nil || *next <= 0 || *next >= time.Hour {
		t.Fatalf("busy queue: ticked %d, next_check %v; want no tick and a wait below an hour", n, next)
	}
	if *next > 5*time.Second || *next < 3*time.Second {
		t.Fatalf("busy queue at 101 ev/s with 101 events waiting: next_check %v, want ~4 s (until 500 events)", *next)
	}
	// ticker_max_count events waiting: ticked at once
	pgtest.Exec(t, conn, "update pgq.tick set tick_time = now() - interval '1 second' where tick_id = (select max(tick_id) from pgq.tick)")
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', g::text) from generate_series(1, 400) g")
	if n, _ := call("0", "1 hour"); n != 1 {
		t.Fatalf("500 events waiting: ticked %d, want 1", n)
	}
	// the one-argument form (pgqgo 0.2's daemons) has no last row
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'x')")
	if got := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.pgqgo_ticker('0') where queue_name is null"); got != 0 {
		t.Fatalf("pgqgo_ticker(interval) returned %d rows without a queue", got)
	}
}

// TestTicksThinned: pgq.pgqgo_thin_ticks keeps, of the ticks older than a
// minute after the oldest consumer position, the last of each second, those
// consumers stand on and every tick of an open batch; every consumer still
// reads every event once, in
// order; and it gives up at once rather than wait behind a consumer.
func TestTicksThinned(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	conn := pgtest.Conn(t, dsn)
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'ticker_max_lag', '1 hour')")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'slow')")
	firstTick(t, conn, "q")
	first := pgtest.Scalar[int64](t, conn, "select max(tick_id) from pgq.tick")
	want := fastTicks(t, conn, "q", 3000)
	// 50 ms apart, ending now: 150 s of ticks, the first 90 s older than a minute
	spaceTicksBy(t, conn, "q", 50*time.Millisecond)
	pgtest.Exec(t, conn, "select pgq.register_consumer_at('q', 'mid', $1)", first+1000)
	pgtest.Exec(t, conn, "select pgq.register_consumer_at('q', 'open', $1)", first+1200)
	openBatch := pgtest.Scalar[int64](t, conn, "select pgq.next_batch('q', 'open')")
	openEnd := pgtest.Scalar[int64](t, conn, "select tick_id from pgq.get_batch_info($1)", openBatch)
	opened := pgtest.Column[int64](t, conn, "select ev_id from pgq.get_batch_events($1) order by ev_id", openBatch)

	// a consumer busy in its transaction: thinning does nothing, at once
	busy := pgtest.Conn(t, dsn)
	pgtest.Exec(t, busy, "begin")
	pgtest.Exec(t, busy, "select 1 from pgq.subscription where sub_consumer = (select co_id from pgq.consumer where co_name = 'mid') for update")
	start := time.Now()
	if n := pgtest.Scalar[int64](t, conn, "select pgq.pgqgo_thin_ticks()"); n != 0 {
		t.Fatalf("thinned %d ticks while a consumer held its row", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("thinning waited %v behind a consumer", d)
	}
	pgtest.Exec(t, busy, "rollback")

	before := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.tick")
	var thinned, again int64
	var at time.Time // the thinning's now(): what was older than a minute then
	// twice in one transaction (one now()): the second finds nothing left to
	// thin (apart, ticks crossing the minute meanwhile would be its due)
	pgtest.Exec(t, conn, "begin")
	if err := conn.QueryRow(context.Background(), "select pgq.pgqgo_thin_ticks(), now()").Scan(&thinned, &at); err != nil {
		t.Fatal(err)
	}
	again = pgtest.Scalar[int64](t, conn, "select pgq.pgqgo_thin_ticks()")
	pgtest.Exec(t, conn, "commit")
	if again != 0 {
		t.Fatalf("a second thinning at the same moment deleted %d more ticks", again)
	}
	after := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.tick")
	// every tick of the open batch stays (a cascaded branch applies a batch
	// tick by tick and goes on from the one it completed)
	openStart := int64(first + 1200)
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.tick where tick_id between $1 and $2", openStart, openEnd); n != openEnd-openStart+1 {
		t.Fatalf("%d of the %d ticks of the open batch (%d..%d) left", n, openEnd-openStart+1, openStart, openEnd)
	}
	old := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.tick where tick_id > $1 and tick_id not between $3 and $4 and tick_time < $2::timestamptz - interval '1 minute'",
		first, at, openStart, openEnd)
	// the seconds the open batch spans would have kept one tick each
	openSecs := pgtest.Scalar[int64](t, conn, "select count(distinct date_trunc('second', tick_time)) from pgq.tick where tick_id between $1 and $2 and tick_time < $3::timestamptz - interval '1 minute'",
		openStart, openEnd, at)
	t.Logf("%d ticks, %d thinned, %d left (%d older than a minute, besides the open batch's %d over %d s)", before, thinned, after, old, openEnd-openStart+1, openSecs)
	if old += openSecs; thinned != before-after || old > 100 || old < 85 {
		t.Fatalf("thinned %d of %d ticks; %d older than a minute left, want about 90 (one a second) and the positions", thinned, before, old)
	}
	if n := pgtest.Scalar[int64](t, conn, `select count(*) from pgq.subscription s, unnest(array[s.sub_last_tick, s.sub_next_tick]) p
		where p is not null and not exists (select 1 from pgq.tick t where t.tick_queue = s.sub_queue and t.tick_id = p)`); n != 0 {
		t.Fatalf("%d ticks where consumers stand were deleted", n)
	}
	if !pgtest.Scalar[bool](t, conn, "select exists (select 1 from pgq.tick where tick_id = $1)", openEnd) {
		t.Fatalf("tick %d, where an open batch ends, was deleted", openEnd)
	}
	pgtest.Exec(t, conn, "select pgq.finish_batch($1)", openBatch)

	// every consumer reads every event from its position once, in order
	all := pgtest.Column[int64](t, conn, "select ev_id from pgq.event_1 order by ev_id") // want, and the first tick's event
	for c, from := range map[string]int{"slow": -1, "mid": 1000, "open": 1200} {
		var got []int64
		batches := drain(t, conn, "q", c)
		for _, b := range batches {
			got = append(got, b.events...)
		}
		if c == "open" {
			got = append(slices.Clone(opened), got...)
		}
		exp := all
		if from >= 0 {
			exp = want[from:]
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("%s read %d events (%d batches), want %d", c, len(got), len(batches), len(exp))
		}
		t.Logf("%s: %d events in %d batches", c, len(got), len(batches))
	}
}
