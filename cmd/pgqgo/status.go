package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/statuspage"
	"github.com/pgqgo/pgqgo/ticker"
)

// jsonQueue is a queue in --json output: the library's view (durations in
// seconds) and the names of its consumers.
type jsonQueue struct {
	pgq.QueueView
	Consumers []string `json:"consumers"`
}

func jsonConsumers(cs []pgq.ConsumerInfo) []pgq.ConsumerView {
	out := make([]pgq.ConsumerView, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.View())
	}
	return out
}

// toJSONQueue is q in the --json shape, with the names of its consumers
// among cs: one shape for status, queue list and queue config.
func toJSONQueue(q pgq.QueueInfo, cs []pgq.ConsumerInfo) jsonQueue {
	jq := jsonQueue{QueueView: q.View(), Consumers: []string{}}
	for _, c := range cs {
		if c.Queue == q.Name {
			jq.Consumers = append(jq.Consumers, c.Name)
		}
	}
	return jq
}

// statusReport is `pgqgo status --json`.
type statusReport struct {
	Database  string             `json:"database"`
	Schema    string             `json:"schema"`
	Time      string             `json:"time"`
	Ticker    string             `json:"ticker"` // who ticks the database, as far as can be seen
	Queues    []jsonQueue        `json:"queues"`
	Consumers []pgq.ConsumerView `json:"consumers"`
	Problems  []string           `json:"problems"`
}

// thresholds are status --check's limits (0: not checked).
type thresholds struct {
	consumerLag, tickerLag, lastSeen time.Duration
	pending                          int64
}

// tickerSeen says who ticks the database, as far as can be seen: a pgqgo
// ticker holds its advisory lock while active (standby daemons wait with
// their sessions named "pgqgo ticker"); pgqd cannot be seen (it names no
// session and takes no lock), so status --check judges tick ages instead.
func tickerSeen(ctx context.Context, conn *pgx.Conn) (string, error) {
	var active, sessions int
	err := conn.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_catalog.pg_locks l
			  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			    AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
			    AND l.classid::bigint = $1 AND l.objid::bigint = $2),
			(SELECT count(*) FROM pg_catalog.pg_stat_activity
			  WHERE datname = current_database() AND application_name = 'pgqgo ticker')`,
		ticker.LockKey>>32, ticker.LockKey&0xffffffff).Scan(&active, &sessions)
	if err != nil {
		return "", fmt.Errorf("look for a ticker: %w", err)
	}
	switch {
	case active > 0:
		return "pgqgo ticker active", nil
	case sessions > 0:
		return "pgqgo ticker connected, not active (standby?)", nil
	}
	return "no pgqgo ticker seen (pgqd cannot be seen; tick ages tell)", nil
}

// tickGrace is how late a healthy ticker may tick a queue beyond the queue's
// own rules (pgqd's ticker_period is 1 s; a round trip; the sampling).
const tickGrace = 5 * time.Second

func (th thresholds) check(qs []pgq.QueueInfo, cs []pgq.ConsumerInfo) []string {
	var p []string
	for _, q := range qs {
		if th.tickerLag <= 0 || q.TickerPaused {
			continue
		}
		// a healthy ticker ticks waiting events within ticker_max_lag, and an
		// idle queue only once both ticker_idle_period and ticker_max_lag have
		// passed: the threshold is never tighter than the queue's own rule.
		// Compared and printed in whole seconds, so "1m0s > 1m0s" cannot happen.
		wait := q.TickerMaxLag
		if q.NewEvents == 0 {
			wait = max(q.TickerIdlePeriod, q.TickerMaxLag)
		}
		allowed := max(th.tickerLag, wait+tickGrace).Round(time.Second)
		if lag := q.TickerLag.Round(time.Second); lag > allowed {
			p = append(p, fmt.Sprintf("queue %s: last tick %s ago > %s (is a ticker running?)", q.Name, lag, allowed))
		}
	}
	for _, c := range cs {
		if th.consumerLag > 0 && c.Lag > th.consumerLag {
			p = append(p, fmt.Sprintf("consumer %s/%s: lag %s > %s", c.Queue, c.Name, human(c.Lag), th.consumerLag))
		}
		if th.lastSeen > 0 && c.LastSeen > th.lastSeen {
			p = append(p, fmt.Sprintf("consumer %s/%s: last seen %s ago > %s", c.Queue, c.Name, human(c.LastSeen), th.lastSeen))
		}
		if th.pending > 0 && c.Pending > th.pending {
			p = append(p, fmt.Sprintf("consumer %s/%s: %d pending events > %d", c.Queue, c.Name, c.Pending, th.pending))
		}
	}
	return p
}

func statusCmd() *cobra.Command {
	var asJSON, check bool
	var watch time.Duration
	var th thresholds
	var webAddr, webAuth string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Every queue and consumer: ticker lag, consumer lag, last seen, pending, open batch, retries, rotation",
		Long: "Prints the state of every queue and consumer of the database. --watch refreshes in place.\n" +
			"--check exits with status 6 when a threshold is exceeded (for monitoring probes), e.g.\n" +
			"  pgqgo status --check --max-lag 5m --max-ticker-lag 30s",
		Args: usageArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check && th == (thresholds{}) {
				th = thresholds{consumerLag: 5 * time.Minute, tickerLag: time.Minute}
			}
			conn, in, err := connectPgq(cmd)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			if webAddr != "" {
				return serveStatusPage(cmd, conn, webAddr, webAuth)
			}
			schemaDesc := "Skytools PgQ " + in.APILevel
			if in.Managed {
				schemaDesc = fmt.Sprintf("pgqgo %s (migration %d)", in.Release, in.Migration)
			}
			out := cmd.OutOrStdout()
			for {
				ctx := cmd.Context()
				qs, err := pgq.Queues(ctx, conn)
				var cs []pgq.ConsumerInfo
				if err == nil {
					cs, err = pgq.Consumers(ctx, conn, "")
				}
				if err != nil {
					if ctx.Err() != nil {
						return nil // Ctrl-C while refreshing
					}
					return err
				}
				problems := th.check(qs, cs)
				seen, err := tickerSeen(ctx, conn)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if watch > 0 {
					fmt.Fprint(out, "\033[H\033[2J") // home and clear: refresh in place
				}
				if asJSON {
					rep := statusReport{Database: conn.Config().Database, Schema: schemaDesc, Ticker: seen,
						Time: time.Now().UTC().Format(time.RFC3339), Consumers: jsonConsumers(cs), Problems: problems}
					if rep.Problems == nil {
						rep.Problems = []string{}
					}
					for _, q := range qs {
						rep.Queues = append(rep.Queues, toJSONQueue(q, cs))
					}
					if rep.Queues == nil {
						rep.Queues = []jsonQueue{}
					}
					if err := writeJSON(out, rep); err != nil {
						return err
					}
				} else {
					printStatus(out, conn.Config().Database, schemaDesc+"; ticker: "+seen, qs, cs, problems)
				}
				if watch <= 0 {
					if check && len(problems) > 0 {
						return withCode(exitCheckFailed, "status check failed: %s", strings.Join(problems, "; "))
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(watch):
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON (durations in seconds)")
	f.DurationVar(&watch, "watch", 0, "refresh every 2s, or --watch=INTERVAL, until Ctrl-C")
	f.Lookup("watch").NoOptDefVal = "2s"
	f.BoolVar(&check, "check", false, "exit with status 6 when a threshold is exceeded (defaults: --max-lag 5m --max-ticker-lag 1m)")
	f.DurationVar(&th.consumerLag, "max-lag", 0, "with --check: largest acceptable consumer lag")
	f.DurationVar(&th.tickerLag, "max-ticker-lag", 0, "with --check: largest acceptable time since a queue's last tick")
	f.DurationVar(&th.lastSeen, "max-last-seen", 0, "with --check: largest acceptable time since a consumer was last seen")
	f.Int64Var(&th.pending, "max-pending", 0, "with --check: largest acceptable number of pending events per consumer")
	f.StringVar(&webAddr, "web", "", "serve the status page (tables and charts, refreshing live) on this address, e.g. 127.0.0.1:9188, until Ctrl-C")
	f.StringVar(&webAuth, "web-auth", "", "with --web: require HTTP basic auth, user:password (default: $PGQGO_WEB_AUTH)")
	return cmd
}

// serveStatusPage serves the status page of the connected database on addr
// until Ctrl-C.
func serveStatusPage(cmd *cobra.Command, conn *pgx.Conn, addr, auth string) error {
	if auth == "" {
		auth = os.Getenv("PGQGO_WEB_AUTH")
	}
	user, password, err := statuspage.ParseAuth(auth)
	if err != nil {
		return withCode(exitUsage, "--web-auth: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return withCode(exitUsage, "--web %s: %v", addr, err)
	}
	defer ln.Close()
	if host, _, _ := net.SplitHostPort(addr); host == "" || host == "0.0.0.0" || host == "::" {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: the status page listens on every interface (%s); give a host such as 127.0.0.1 to keep it local\n", addr)
	}
	db := conn.Config().Database
	col := &statuspage.Collector{Targets: func() []statuspage.Target {
		return []statuspage.Target{{Name: db, Config: conn.Config()}}
	}}
	ctx := cmd.Context()
	go col.Run(ctx)
	srv := &http.Server{Handler: statuspage.Handler(col, statuspage.Options{Title: "pgqgo status: " + db, User: user, Password: password}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintf(cmd.OutOrStdout(), "serving the status page of %s on http://%s/ (Ctrl-C stops)\n", db, ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func printStatus(out interface{ Write([]byte) (int, error) }, db, schemaDesc string, qs []pgq.QueueInfo, cs []pgq.ConsumerInfo, problems []string) {
	fmt.Fprintf(out, "database %s: %s, %d queue(s), %d consumer(s)  [%s]\n\n", db, schemaDesc, len(qs), len(cs), time.Now().Format("15:04:05"))
	tw := table(out, "QUEUE", "TICKER LAG", "EV/S", "NEW", "LAST TICK", "TABLE", "LAST ROTATION", "NEXT ROTATION", "STATE")
	for _, q := range qs {
		state := "ok"
		switch {
		case q.TickerPaused:
			state = "ticker paused"
		case q.DisableInsert:
			state = "inserts disabled"
		case q.ExternalTicker:
			state = "external ticker"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d/%d\t%s ago\t%s\t%s\n", cell(q.Name), human(q.TickerLag), q.EventsPerSec, q.NewEvents,
			q.LastTick, q.CurrentTable, q.Tables, human(time.Since(q.SwitchTime)), human(q.NextRotationIn), state)
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = table(out, "QUEUE", "CONSUMER", "LAG", "LAST SEEN", "PENDING", "BATCH", "RETRY")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%d\t%s\t%s\n", cell(c.Queue), cell(c.Name), human(c.Lag), human(c.LastSeen), c.Pending,
			optInt64(c.CurrentBatch), retryCount(c.Retry))
	}
	tw.Flush()
	for _, p := range problems {
		fmt.Fprintln(out, "PROBLEM:", p)
	}
}
