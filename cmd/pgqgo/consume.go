package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/pgq"
)

// eventLine is one line of consume's output.
type eventLine struct {
	Batch  int64     `json:"batch"`
	ID     int64     `json:"id"`
	Time   time.Time `json:"time"`
	TxID   int64     `json:"txid"`
	Retry  int       `json:"retry"`
	Type   *string   `json:"type"` // null for a NULL ev_type
	Data   *string   `json:"data"` // null for a NULL ev_data
	Extra1 string    `json:"extra1,omitempty"`
	Extra2 string    `json:"extra2,omitempty"`
	Extra3 string    `json:"extra3,omitempty"`
	Extra4 string    `json:"extra4,omitempty"`
}

func consumeCmd() *cobra.Command {
	var once, drain, follow, register bool
	cmd := &cobra.Command{
		Use:   "consume QUEUE CONSUMER",
		Short: "Print the consumer's events as JSON lines and finish their batches",
		Long: "Reads batches as CONSUMER and prints one JSON object per event. --once: one batch;\n" +
			"--drain (the default): until no batch is ready; --follow: keep waiting for new batches until\n" +
			"Ctrl-C. Batches are finished after their events are printed, so they are consumed: use a\n" +
			"consumer name of its own for inspection. The consumer must be registered (or --register).",
		Args: usageArgs("QUEUE", "CONSUMER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			modes := 0
			for _, m := range []bool{once, drain, follow} {
				if m {
					modes++
				}
			}
			if modes > 1 {
				return withCode(exitUsage, "choose one of --once, --drain, --follow")
			}
			queue, name := args[0], args[1]
			conn, _, err := connectPgq(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			err = needQueue(ctx, conn, queue)
			if err == nil && !register {
				err = needConsumer(ctx, conn, queue, name)
			}
			connCfg := conn.Config()
			conn.Close(context.Background())
			if err != nil {
				return err
			}
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			cfg := pgq.ConsumerConfig{Queue: queue, Name: name, StopWhenIdle: !follow, NoRegister: !register,
				PollInterval: time.Second, MaxBackoff: 5 * time.Second}
			if once {
				cfg.OnBatch = func(pgq.BatchStats) { cancel() }
			}
			c, err := pgq.NewConsumerConfig(connCfg, cfg)
			if err != nil {
				return withCode(exitUsage, "%v", err)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			err = c.Run(rctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					if err := enc.Encode(eventLine{Batch: b.ID, ID: ev.ID, Time: ev.Time, TxID: ev.TxID, Retry: ev.Retry,
						Type: orNull(ev.Type, ev.Null&pgq.NullType != 0), Data: orNull(ev.Data, ev.Null&pgq.NullData != 0), Extra1: ev.Extra1, Extra2: ev.Extra2, Extra3: ev.Extra3, Extra4: ev.Extra4}); err != nil {
						return err
					}
				}
				return nil
			}))
			if errors.Is(err, context.Canceled) && (once || ctx.Err() != nil) {
				err = nil // --once done, or Ctrl-C
			}
			st := c.Stats()
			fmt.Fprintf(cmd.ErrOrStderr(), "consumed %s in %s\n", count(st.Events, "event"), count(st.Batches, "batch"))
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "consume one batch, then exit")
	f.BoolVar(&drain, "drain", false, "consume until no batch is ready (default)")
	f.BoolVar(&follow, "follow", false, "keep consuming until interrupted")
	f.BoolVar(&register, "register", false, "register the consumer if it is not registered")
	return cmd
}

// orNull is s, or nil (JSON null) when null.
func orNull(s string, null bool) *string {
	if null {
		return nil
	}
	return &s
}
