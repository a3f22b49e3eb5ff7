// Package demo runs pgqgo's live demo: a throwaway PostgreSQL cluster (or an
// existing database), the pgq schema, the ticker daemon, a producer and two
// consumers, with progress every second and a summary at the end.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
	"github.com/pgqgo/pgqgo/ticker"
)

// Options tune the demo.
type Options struct {
	// DB runs the demo in an existing database instead of a throwaway
	// cluster; the demo's queue is dropped at the end.
	DB string
	// Duration bounds the producing phase (default 10s); Ctrl-C ends it early.
	Duration time.Duration
	// Rate is the producer's target in events per second (default 2000).
	Rate int
	// Keep leaves the throwaway cluster running and says how to reach it.
	Keep bool
}

// Summary is what the demo measured.
type Summary struct {
	Produced  int64
	Consumed  map[string]int64
	Batches   map[string]int64
	LatencyMS map[string][2]float64 // median and p99, insert to handler
	// Dir and DSN describe a kept cluster (empty otherwise).
	Dir, DSN string
	Pid      int
}

const queue = "pgqgo_demo"

var consumers = []string{"billing", "shipping"}

// Run performs the demo, narrating to w.
func Run(ctx context.Context, w io.Writer, opts Options) (Summary, error) {
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Rate <= 0 {
		opts.Rate = 2000
	}
	sum := Summary{Consumed: map[string]int64{}, Batches: map[string]int64{}, LatencyMS: map[string][2]float64{}}
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	dsn := opts.DB
	if dsn == "" {
		say("starting a throwaway PostgreSQL cluster ...")
		cl, err := pgcluster.Start(ctx, pgcluster.Options{Detached: opts.Keep, Durable: true})
		if err != nil {
			return sum, err
		}
		dsn = cl.DSN("postgres")
		if opts.Keep {
			sum.Dir, sum.DSN, sum.Pid = cl.Dir, dsn, cl.Pid()
		} else {
			defer cl.Stop()
		}
		say("  PostgreSQL on %s, port %d", cl.SocketDir, cl.Port)
	}
	// the demo's own work must not be cut short by Ctrl-C: only producing is
	work := context.WithoutCancel(ctx)
	pool, err := pgxpool.New(work, dsn)
	if err != nil {
		return sum, fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()

	var fsync, syncCommit, fpw string
	if err := pool.QueryRow(work, `SELECT current_setting('fsync'), current_setting('synchronous_commit'),
		current_setting('full_page_writes')`).Scan(&fsync, &syncCommit, &fpw); err != nil {
		return sum, fmt.Errorf("read settings: %w", err)
	}
	note := "as production runs: every commit waits for its WAL flush"
	if fsync != "on" || syncCommit == "off" || fpw != "on" {
		note = "durability relaxed: commits cost less than in production"
	}
	say("  fsync=%s, synchronous_commit=%s, full_page_writes=%s (%s)", fsync, syncCommit, fpw, note)
	in, err := schema.Inspect(work, pool)
	if err != nil {
		return sum, err
	}
	if !in.HasPgq || in.Managed {
		res, err := schema.Install(work, pool, schema.InstallOptions{})
		if err != nil {
			return sum, err
		}
		say("pgq schema: pgqgo %s, PgQ API %s", res.Release, schema.APILevel)
		if opts.DB != "" && !in.HasPgq {
			say("  (installed in this database by the demo, and left there: its queue is dropped at the end, the schema is not)")
		}
	} else {
		say("pgq schema: Skytools PgQ %s (used as it is)", in.APILevel)
	}
	if ok, err := pgq.QueueExists(work, pool, queue); err != nil {
		return sum, err
	} else if ok {
		return sum, fmt.Errorf("queue %s already exists in this database (an earlier demo with --keep?); drop it with: pgqgo queue drop %s --force", queue, queue)
	}
	if _, err := pgq.CreateQueue(work, pool, queue); err != nil {
		return sum, err
	}
	if opts.DB != "" {
		defer func() {
			if err := pgq.DropQueue(context.Background(), pool, queue, true); err != nil {
				say("could not drop the demo queue: %v", err)
			}
		}()
	}

	// the ticker daemon, in-process, for this one database
	cfg := ticker.Defaults()
	cfg.BaseConnStr = dsn
	dbName := pool.Config().ConnConfig.Database
	cfg.DatabaseList = []string{dbName}
	cfg.Syslog = false
	tctx, stopTicker := context.WithCancel(work)
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); _ = ticker.New(cfg, slog.New(slog.DiscardHandler)).Run(tctx) }()
	defer func() { stopTicker(); bg.Wait() }()
	say("ticker daemon started (low-latency ticking, NOTIFY pgq_tick)")

	// two consumers, each sees every event
	type stats struct {
		events, batches atomic.Int64
		mu              sync.Mutex
		latencies       []float64
	}
	st := map[string]*stats{}
	cctx, stopConsumers := context.WithCancel(work)
	var cwg sync.WaitGroup
	for _, name := range consumers {
		s := &stats{}
		st[name] = s
		c, err := pgq.NewConsumerConfig(pool.Config().ConnConfig, pgq.ConsumerConfig{Queue: queue, Name: name,
			Logger: slog.New(slog.DiscardHandler), OnBatch: func(pgq.BatchStats) { s.batches.Add(1) }})
		if err != nil {
			stopConsumers()
			return sum, err
		}
		if _, err := c.Register(work, pool); err != nil {
			stopConsumers()
			return sum, err
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			_ = c.Run(cctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
				s.events.Add(1)
				s.mu.Lock()
				s.latencies = append(s.latencies, float64(time.Since(ev.Time).Microseconds())/1000)
				s.mu.Unlock()
				return nil
			}))
		}()
	}
	defer func() { stopConsumers(); cwg.Wait() }()
	say("consumers %v registered; producing %d events/s for %s (Ctrl-C ends early)\n", consumers, opts.Rate, opts.Duration)

	// the producer: small transactions, each one an order and its event
	var produced atomic.Int64
	started := time.Now()
	pctx, stopProducer := context.WithTimeout(ctx, opts.Duration)
	defer stopProducer()
	var perr error
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		p := pgq.NewProducer(pool, queue)
		const perTx = 20
		every := time.Second * perTx / time.Duration(opts.Rate)
		next := time.Now()
		for n := 0; pctx.Err() == nil; n++ {
			evs := make([]pgq.Event, perTx)
			for i := range evs {
				id := n*perTx + i
				evs[i], _ = pgq.JSONEvent("order.created", map[string]any{"order": id, "total": fmt.Sprintf("%d.%02d", id%500, id%100)})
			}
			if err := p.InsertBatch(work, evs); err != nil {
				perr = err
				return
			}
			produced.Add(perTx)
			next = next.Add(every)
			select {
			case <-pctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
	}()

	// progress, once a second
	start := time.Now()
	last := map[string]int64{}
	tick := time.NewTicker(time.Second)
	progress := func() {
		line := fmt.Sprintf("  %4.0fs  in %6d ev/s", time.Since(start).Seconds(), produced.Load()-last["in"])
		last["in"] = produced.Load()
		for _, name := range consumers {
			n := st[name].events.Load()
			line += fmt.Sprintf(" | %s out %6d ev/s, behind %5d", name, n-last[name], produced.Load()-n)
			last[name] = n
		}
		say("%s", line)
	}
	for waiting := true; waiting; {
		select {
		case <-pctx.Done():
			waiting = false
		case <-tick.C:
			progress()
		}
	}
	tick.Stop()
	pwg.Wait()
	producedFor := time.Since(started) // Ctrl-C ends it early: the real time, not the requested one
	if perr != nil {
		return sum, fmt.Errorf("producer: %w", perr)
	}
	sum.Produced = produced.Load()
	say("\nproducer stopped after %d events; waiting for the consumers to catch up ...", sum.Produced)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, name := range consumers {
			done = done && st[name].events.Load() >= sum.Produced
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopConsumers()
	cwg.Wait()

	say("\nsummary")
	say("  produced %d events in %s", sum.Produced, producedFor.Round(100*time.Millisecond))
	for _, name := range consumers {
		s := st[name]
		sum.Consumed[name], sum.Batches[name] = s.events.Load(), s.batches.Load()
		slices.Sort(s.latencies)
		med, p99 := percentile(s.latencies, 0.5), percentile(s.latencies, 0.99)
		sum.LatencyMS[name] = [2]float64{med, p99}
		verdict := "every event, once"
		if sum.Consumed[name] != sum.Produced {
			verdict = fmt.Sprintf("MISSING %d", sum.Produced-sum.Consumed[name])
		}
		say("  %-8s consumed %d in %d batches (%s); insert-to-handler latency median %.1f ms, p99 %.1f ms",
			name, sum.Consumed[name], sum.Batches[name], verdict, med, p99)
	}
	for _, name := range consumers {
		if sum.Consumed[name] != sum.Produced {
			return sum, errors.New("a consumer did not receive every event")
		}
	}
	if opts.Keep && opts.DB == "" {
		say("\nthe cluster keeps running (postgres pid %d):", sum.Pid)
		say("  psql '%s'", sum.DSN)
		say("  pgqgo status --db '%s'", sum.DSN)
		say("stop and remove it with:  kill -INT %d && rm -rf %s", sum.Pid, sum.Dir)
	} else if opts.DB == "" {
		say("\ndone: the cluster is being removed.")
	} else {
		say("\ndone: the demo queue is being dropped.")
	}
	return sum, nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
