package pgq_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// TestConsumerFilter: with ConsumerConfig.Filter the server reads only the
// events that meet the condition, in the first chunk and through the
// cursor of a batch bigger than FetchSize, on both engines; the condition
// is asked again before every batch.
func TestConsumerFilter(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			dsn := newQueueDB(t, tpl, "q")
			conn := pgtest.Conn(t, dsn)
			ctx := context.Background()
			asked := 0
			c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", FetchSize: 40, StopWhenIdle: true,
				PollInterval: 20 * time.Millisecond, Filter: func(context.Context) (string, error) {
					asked++
					return "ev_type = 'keep' and ev_extra1 <> 'it''s not'", nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Register(ctx, conn); err != nil {
				t.Fatal(err)
			}
			// one batch of 300 events, a third of them wanted
			pgtest.Exec(t, conn, `select pgq.insert_event('q', case when g % 3 = 0 then 'keep' else 'drop' end, g::text,
				case when g = 99 then 'it''s not' else 'x' end, null, null, null) from generate_series(1, 300) g`)
			pgtest.Exec(t, conn, "select pgq.ticker('q')")
			var got []string
			batches := 0
			err = c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
				batches++
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					if ev.Type != "keep" {
						t.Errorf("event %d of type %q read", ev.ID, ev.Type)
					}
					got = append(got, ev.Data)
				}
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 99 || got[0] != "3" || got[len(got)-1] != "300" {
				t.Fatalf("%d events read (first %v), want the 99 kept ones", len(got), got[:min(len(got), 3)])
			}
			if batches != 1 || asked < 2 {
				t.Fatalf("%d batches, the filter asked %d times (want 1 batch, and asked before it and before the idle poll)", batches, asked)
			}
		})
	}
}

// TestBatchEventsAreTheHandlersToKeep: events handed out by Batch.Events
// stay intact after later chunks of the same batch are read (the handler
// may keep them, e.g. to apply them from another goroutine).
func TestBatchEventsAreTheHandlersToKeep(t *testing.T) {
	dsn := newQueueDB(t, pgtest.PgqGo, "q")
	conn := pgtest.Conn(t, dsn)
	ctx := context.Background()
	c, err := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "c", FetchSize: 10, StopWhenIdle: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, conn); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't' || g, g::text) from generate_series(1, 95) g")
	pgtest.Exec(t, conn, "select pgq.ticker('q')")
	var kept []*pgq.Event
	err = c.Run(ctx, pgq.BatchFunc(func(ctx context.Context, b *pgq.Batch) error {
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			kept = append(kept, ev)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 95 {
		t.Fatalf("%d events", len(kept))
	}
	for i, ev := range kept {
		if want := strconv.Itoa(i + 1); ev.Data != want || ev.Type != "t"+want {
			t.Fatalf("event %d kept from the batch reads %q/%q, want %q: overwritten by a later chunk", i, ev.Type, ev.Data, want)
		}
	}
}
