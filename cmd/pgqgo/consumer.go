package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/pgq"
)

func consumerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "consumer", Short: "Register, unregister and list consumers"}
	var at, copyFrom, sub string
	var asJSON, closeBatch bool
	register := &cobra.Command{
		Use:   "register QUEUE CONSUMER",
		Short: "Register a consumer at the queue's end, or --at TICK (pgq.register_consumer[_at])",
		Args:  usageArgs("QUEUE", "CONSUMER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				if err := needQueue(ctx, db, args[0]); err != nil {
					return err
				}
				c, err := pgq.NewConsumerConfig(nil, pgq.ConsumerConfig{Queue: args[0], Name: args[1], Subconsumer: sub})
				if err != nil {
					return withCode(exitUsage, "%v", err)
				}
				if copyFrom != "" {
					if at != "" {
						return withCode(exitUsage, "use --at or --copy-from, not both")
					}
					cs, err := pgq.Consumers(ctx, db, args[0])
					if err != nil {
						return err
					}
					for _, o := range cs {
						if o.Name == copyFrom {
							at = strconv.FormatInt(o.LastTick, 10)
						}
					}
					if at == "" {
						return fmt.Errorf("consumer %q to copy the position of, on queue %q: %w", copyFrom, args[0], errNoConsumer)
					}
				}
				if at != "" {
					tick, err := strconv.ParseInt(at, 10, 64)
					if err != nil || tick < 0 {
						return withCode(exitUsage, "--at wants a tick id (a non-negative integer), got %q", at)
					}
					if err := c.RegisterAt(ctx, db, tick); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "consumer %s registered on queue %s at tick %d\n", args[1], args[0], tick)
					return nil
				}
				isNew, err := c.Register(ctx, db)
				if err != nil {
					return err
				}
				who := args[1]
				if sub != "" {
					who = "sub-consumer " + sub + " of " + args[1]
				}
				if isNew {
					fmt.Fprintf(cmd.OutOrStdout(), "consumer %s registered on queue %s\n", who, args[0])
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "consumer %s was already registered on queue %s\n", who, args[0])
				}
				return nil
			})
		},
	}
	register.Flags().StringVar(&at, "at", "", "start after this tick id (pgq.register_consumer_at)")
	register.Flags().StringVar(&copyFrom, "copy-from", "", "start at another consumer's position")
	register.Flags().StringVar(&sub, "subconsumer", "", "register a member of the cooperative group CONSUMER (needs pgq_coop)")
	unregister := &cobra.Command{
		Use:   "unregister QUEUE CONSUMER",
		Short: "Remove a consumer with its position and retry events (pgq.unregister_consumer)",
		Args:  usageArgs("QUEUE", "CONSUMER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				if err := needQueue(ctx, db, args[0]); err != nil {
					return err
				}
				var ok bool
				var err error
				if sub != "" {
					handling := 0
					if closeBatch {
						handling = 1
					}
					var n int
					err = db.QueryRow(ctx, `SELECT pgq_coop.unregister_subconsumer($1, $2, $3, $4)`, args[0], args[1], sub, handling).Scan(&n)
					ok = n == 1
				} else {
					c, _ := pgq.NewConsumerConfig(nil, pgq.ConsumerConfig{Queue: args[0], Name: args[1]})
					ok, err = c.Unregister(ctx, db)
				}
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("consumer %q on queue %q: %w", args[1], args[0], errNoConsumer)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "consumer %s unregistered from queue %s\n", args[1], args[0])
				return nil
			})
		},
	}
	unregister.Flags().StringVar(&sub, "subconsumer", "", "unregister a member of the cooperative group CONSUMER")
	unregister.Flags().BoolVar(&closeBatch, "close-batch", false, "with --subconsumer: drop the member's open batch (its events are skipped) instead of refusing")
	list := &cobra.Command{
		Use:   "list [QUEUE]",
		Short: "List consumers with lag, pending events and open batch",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return withCode(exitUsage, "%s takes at most one QUEUE", cmd.CommandPath())
			}
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				queue := ""
				if len(args) == 1 {
					queue = args[0]
					if err := needQueue(ctx, db, queue); err != nil {
						return err
					}
				}
				cs, err := pgq.Consumers(ctx, db, queue)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), jsonConsumers(cs))
				}
				tw := table(cmd.OutOrStdout(), "QUEUE", "CONSUMER", "LAG", "LAST SEEN", "PENDING", "BATCH", "RETRY")
				for _, c := range cs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(c.Queue), cell(c.Name), human(c.Lag), human(c.LastSeen),
						c.Pending, optInt64(c.CurrentBatch), retryCount(c.Retry))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(register, unregister, list)
	return cmd
}

// needQueue turns a missing queue into a not-found error.
func needQueue(ctx context.Context, db pgq.DB, queue string) error {
	ok, err := pgq.QueueExists(ctx, db, queue)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("queue %q: %w %s", queue, pgq.ErrNoQueue, noQueueHint)
	}
	return nil
}

// needConsumer turns an unregistered consumer into a not-found error.
func needConsumer(ctx context.Context, db pgq.DB, queue, consumer string) error {
	cs, err := pgq.Consumers(ctx, db, queue)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.Name == consumer {
			return nil
		}
	}
	return fmt.Errorf("consumer %q on queue %q: %w; register it with: pgqgo consumer register %s %s",
		consumer, queue, errNoConsumer, queue, consumer)
}

func optInt64(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func retryCount(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}
