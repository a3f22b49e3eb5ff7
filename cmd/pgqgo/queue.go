package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/pgq"
)

func queueCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Create, drop, list and configure queues"}
	var force, asJSON bool
	create := &cobra.Command{
		Use: "create QUEUE", Short: "Create a queue (pgq.create_queue); an existing queue is left as it is",
		Args: usageArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				created, err := pgq.CreateQueue(ctx, db, args[0])
				if err != nil {
					return err
				}
				if created {
					fmt.Fprintf(cmd.OutOrStdout(), "created queue %s\n", args[0])
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "queue %s already exists\n", args[0])
				}
				return nil
			})
		},
	}
	drop := &cobra.Command{
		Use: "drop QUEUE", Short: "Drop a queue and its events (pgq.drop_queue); --force also with consumers",
		Args: usageArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				if err := pgq.DropQueue(ctx, db, args[0], force); err != nil {
					if !force && strings.Contains(err.Error(), "consumers still attached") {
						return withCode(exitError, "queue %s has consumers registered; drop it with them (their positions and pending events are lost): pgqgo queue drop %s --force",
							args[0], args[0])
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "dropped queue %s\n", args[0])
				return nil
			})
		},
	}
	drop.Flags().BoolVar(&force, "force", false, "drop even if consumers are registered")
	list := &cobra.Command{
		Use: "list", Short: "List queues with their ticker settings and activity",
		Args: usageArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				qs, err := pgq.Queues(ctx, db)
				if err != nil {
					return err
				}
				if asJSON {
					cs, err := pgq.Consumers(ctx, db, "")
					if err != nil {
						return err
					}
					out := make([]jsonQueue, 0, len(qs))
					for _, q := range qs {
						out = append(out, toJSONQueue(q, cs))
					}
					return writeJSON(cmd.OutOrStdout(), out)
				}
				tw := table(cmd.OutOrStdout(), "QUEUE", "TICKER LAG", "EV/S", "NEW", "LAST TICK", "MAX COUNT", "MAX LAG", "IDLE", "TABLE", "NEXT ROTATION")
				for _, q := range qs {
					fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d\t%s\t%s\t%d/%d\t%s\n", cell(q.Name), human(q.TickerLag), q.EventsPerSec,
						q.NewEvents, q.LastTick, q.TickerMaxCount, human(q.TickerMaxLag), human(q.TickerIdlePeriod),
						q.CurrentTable, q.Tables, human(q.NextRotationIn))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON (durations in seconds, as status --json)")
	config := &cobra.Command{
		Use:   "config QUEUE [PARAM=VALUE ...]",
		Short: "Show a queue's settings, or set them (pgq.set_queue_config)",
		Long: "Without assignments, prints the queue's settings. Parameters: ticker_max_count, ticker_max_lag,\n" +
			"ticker_idle_period, ticker_paused, rotation_period, external_ticker; on pgqgo's schema also\n" +
			"disable_insert and per_tx_limit. Example: pgqgo queue config orders ticker_max_lag='500 ms'",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || args[0] == "" {
				return withCode(exitUsage, "%s needs QUEUE; see --help", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				for _, kv := range args[1:] {
					k, v, ok := cut(kv)
					if !ok {
						return withCode(exitUsage, "bad setting %q: want PARAM=VALUE", kv)
					}
					if err := pgq.SetQueueConfig(ctx, db, args[0], k, v); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "set %s = %s\n", k, v)
				}
				qs, err := pgq.Queues(ctx, db, args[0])
				if err != nil {
					return err
				}
				if len(qs) == 0 {
					return fmt.Errorf("queue %q: %w", args[0], pgq.ErrNoQueue)
				}
				if asJSON {
					cs, err := pgq.Consumers(ctx, db, args[0])
					if err != nil {
						return err
					}
					return writeJSON(cmd.OutOrStdout(), toJSONQueue(qs[0], cs))
				}
				q := qs[0]
				tw := table(cmd.OutOrStdout())
				for _, row := range [][2]string{
					{"ticker_max_count", fmt.Sprint(q.TickerMaxCount)}, {"ticker_max_lag", human(q.TickerMaxLag)},
					{"ticker_idle_period", human(q.TickerIdlePeriod)}, {"ticker_paused", fmt.Sprint(q.TickerPaused)},
					{"rotation_period", human(q.RotationPeriod)}, {"external_ticker", fmt.Sprint(q.ExternalTicker)},
					{"disable_insert", fmt.Sprint(q.DisableInsert)}, {"per_tx_limit", optInt(q.PerTxLimit)},
				} {
					fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
				}
				return tw.Flush()
			})
		},
	}
	config.Flags().BoolVar(&asJSON, "json", false, "print JSON (durations in seconds, as status --json)")
	cmd.AddCommand(create, drop, list, config)
	return cmd
}

// withPgq connects, checks the schema and runs fn.
func withPgq(cmd *cobra.Command, fn func(ctx context.Context, db pgq.DB) error) error {
	conn, _, err := connectPgq(cmd)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(cmd.Context(), conn)
}

func table(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(header) > 0 {
		for i, h := range header {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, h)
		}
		fmt.Fprintln(tw)
	}
	return tw
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// human prints a duration rounded for people: 1.2s, 350ms, 2h0m0s.
func human(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func optInt(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], i > 0
		}
	}
	return "", "", false
}

// cell is a name as a table shows it: as it is when it is plain, quoted
// with escapes (Go syntax) when it is empty, holds a tab, a newline or
// another control character, or starts or ends with a space, which would
// otherwise misalign the columns or hide.
func cell(name string) string {
	if name != "" && strings.TrimSpace(name) == name && !strings.ContainsFunc(name, unicode.IsControl) {
		return name
	}
	return strconv.Quote(name)
}
