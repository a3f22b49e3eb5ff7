package ticker

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// BenchmarkBacklogDrain: two pgqgo databases on one durable cluster get the
// same producer load at the same time (pgbench, 2 clients, 1,000
// pgq.insert_event transactions/s of ~200-byte payloads, for the phase
// length); one is ticked by `pgqgo ticker`, the other by Debian's pgqd (same
// ini, defaults). Then, tickers still running, two consumers registered
// before the load drain each backlog: Skytools' python3-pgq Consumer and the
// Go library's, one after the other. Reported per ticker: ticks written,
// events, and each client's drain time, rate and batches; and the ratio of
// pgqgo ticker's drain rate to pgqd's for each client (issue 14 asks >= 0.8).
//
//	go test ./ticker -run '^$' -bench BacklogDrain -benchtime 1x -timeout 30m
func BenchmarkBacklogDrain(b *testing.B) {
	durable(b)
	phase := benchSeconds()
	for range b.N {
		type side struct {
			daemon, dsn, db string
			ticks, events   int64
			py, goc         drainResult
		}
		sides := []*side{{daemon: "pgqgo"}, {daemon: "pgqd"}}
		for _, s := range sides {
			s.dsn = pgtest.NewDB(b, pgtest.PgqGo)
			cfg, err := pgx.ParseConfig(s.dsn)
			if err != nil {
				b.Fatal(err)
			}
			s.db = cfg.Database
			conn := pgtest.Conn(b, s.dsn)
			pgtest.Exec(b, conn, "select pgq.create_queue('q')")
			pgtest.Exec(b, conn, "select pgq.register_consumer('q', 'py')")
			pgtest.Exec(b, conn, "select pgq.register_consumer('q', 'go')")
			startDaemonProc(b, s.daemon, benchINI(b, []string{s.db}, ""))
		}
		time.Sleep(2 * time.Second) // connected, creation ticks done

		// the same load on both at once
		script := filepath.Join(b.TempDir(), "produce.sql")
		if err := os.WriteFile(script, []byte(`select pgq.insert_event('q', 'order', '{"id": 1, "customer": "ACME Corporation", "items": [{"sku": "X-1", "qty": 3}], "note": "a typical order of about two hundred bytes, realistic enough"}');`+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, s := range sides {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg, _ := pgx.ParseConfig(s.dsn)
				out, err := exec.Command("/usr/lib/postgresql/15/bin/pgbench", "-n", "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)),
					"-U", cfg.User, "-f", script, "-c", "2", "-j", "2", "-R", "1000", "-T", strconv.Itoa(int(phase.Seconds())), s.db).CombinedOutput()
				if err != nil {
					b.Errorf("pgbench: %v\n%s", err, out)
				}
			}()
		}
		wg.Wait()
		for _, s := range sides {
			conn := pgtest.Conn(b, s.dsn)
			// wait for the ticker to cover every event (pgqd: within ticker_max_lag)
			deadline := time.Now().Add(30 * time.Second)
			for {
				if pgtest.Scalar[bool](b, conn, `select max(t.tick_event_seq) >= pgq.seq_getval(q.queue_event_seq)
					from pgq.queue q join pgq.tick t on t.tick_queue = q.queue_id where q.queue_name = 'q' group by q.queue_event_seq`) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%s: the last events were not ticked within 30 s", s.daemon)
				}
				time.Sleep(100 * time.Millisecond)
			}
			s.events = pgtest.Scalar[int64](b, conn, "select count(*) from pgq.event_1")
			s.ticks = pgtest.Scalar[int64](b, conn, "select count(*) from pgq.tick")
			s.py = drainPython(b, s.dsn)
			s.goc = drainGo(b, s.dsn)
			if s.py.events != s.events || s.goc.events != s.events {
				b.Fatalf("%s: %d events, python read %d, go read %d", s.daemon, s.events, s.py.events, s.goc.events)
			}
		}
		for _, s := range sides {
			b.ReportMetric(float64(s.ticks), s.daemon+"_ticks")
			b.ReportMetric(float64(s.events), s.daemon+"_events")
			b.ReportMetric(s.py.rate(), s.daemon+"_python_ev/s")
			b.ReportMetric(s.goc.rate(), s.daemon+"_go_ev/s")
			b.ReportMetric(float64(s.py.batches), s.daemon+"_python_batches")
			b.ReportMetric(float64(s.goc.batches), s.daemon+"_go_batches")
			b.Logf("ticked by %s: %d ticks, %d events; python3-pgq drain %.2f s (%.0f ev/s, %d batches); Go library drain %.2f s (%.0f ev/s, %d batches)",
				s.daemon, s.ticks, s.events, s.py.secs, s.py.rate(), s.py.batches, s.goc.secs, s.goc.rate(), s.goc.batches)
		}
		b.ReportMetric(sides[0].py.rate()/sides[1].py.rate(), "python_pgqgo/pgqd")
		b.ReportMetric(sides[0].goc.rate()/sides[1].goc.rate(), "go_pgqgo/pgqd")
	}
}

type drainResult struct {
	events, batches int64
	secs            float64
}

func (r drainResult) rate() float64 { return float64(r.events) / r.secs }

// drainPython runs Skytools' Consumer as consumer "py" until it has nothing
// left.
func drainPython(b *testing.B, dsn string) drainResult {
	conn := pgtest.Conn(b, dsn)
	batch0 := pgtest.Scalar[int64](b, conn, "select last_value from pgq.batch_id_seq")
	var r drainResult
	r.events, r.secs = pgtest.SkytoolsConsumer(b, dsn, "q", "py")
	// batch ids come from one sequence; nobody else opens batches meanwhile
	// (the "go" consumer waits its turn)
	r.batches = pgtest.Scalar[int64](b, conn, "select last_value from pgq.batch_id_seq") - batch0
	return r
}

// drainGo runs the Go library's consumer "go" until it has nothing left.
func drainGo(b *testing.B, dsn string) drainResult {
	c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "go", StopWhenIdle: true, Logger: testLog})
	if err != nil {
		b.Fatal(err)
	}
	var r drainResult
	start := time.Now()
	err = c.Run(context.Background(), pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
		r.events++
		return nil
	}))
	r.secs = time.Since(start).Seconds()
	if err != nil {
		b.Fatal(err)
	}
	r.batches = c.Stats().Batches
	return r
}
