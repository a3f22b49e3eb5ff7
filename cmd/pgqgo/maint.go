package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/pgq"
)

func tickCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tick QUEUE",
		Short: "Cut a tick on the queue now (pgq.force_tick + pgq.ticker), closing a batch boundary",
		Args:  usageArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				tick, err := pgq.ForceTick(ctx, db, args[0])
				if err != nil {
					return err
				}
				if tick == 0 {
					return fmt.Errorf("queue %s did not tick (paused, or ticked by an external ticker)", args[0])
				}
				fmt.Fprintf(cmd.OutOrStdout(), "queue %s ticked: tick %d\n", args[0], tick)
				// PgQ's force_tick moves the event sequence on, which PgQ's own
				// figures count as events: say so where it happens
				fmt.Fprintln(cmd.ErrOrStderr(), "note: a forced tick advances the event sequence by 2 x ticker_max_count + 1000 (PgQ's force_tick);"+
					" status counts that jump in EV/S and PENDING until the queue's next ticks")
				return nil
			})
		},
	}
}

func retryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "retry",
		Short: "Move due retry events back into their queues once (what the ticker does continuously)",
		Args:  usageArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				n, err := pgq.RetryMaintenance(ctx, db)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d retry events moved back into their queues\n", n)
				return nil
			})
		},
	}
}

func maintCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "maint",
		Short: "Run one maintenance round (rotation steps, vacuum) as the ticker does",
		Args:  usageArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				res, err := pgq.Maintenance(ctx, db)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "operations: %s\n", orNone(res.Operations))
				fmt.Fprintf(out, "vacuumed: %s\n", orNone(res.Vacuumed))
				if len(res.Skipped) > 0 {
					fmt.Fprintf(out, "skipped (not plain names): %s\n", strings.Join(res.Skipped, ", "))
				}
				return nil
			})
		},
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
