// Package demo runs pgqgo's guided demo on a throwaway local cluster: it
// starts PostgreSQL, installs the pgq schema, and walks one event from a
// producer's transaction through a tick into a consumer's batch.
package demo

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"pgqgo/internal/pgcluster"
	"pgqgo/schema"
)

// Run performs the demo, narrating to w. The cluster is removed afterwards.
func Run(ctx context.Context, w io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	say("starting a throwaway PostgreSQL cluster ...")
	cl, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		return err
	}
	defer cl.Stop()
	say("  running on %s, port %d (removed when the demo ends)", cl.SocketDir, cl.Port)

	conn, err := pgx.Connect(ctx, cl.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	res, err := schema.Install(ctx, conn, schema.InstallOptions{})
	if err != nil {
		return err
	}
	say("installed the pgq schema: pgqgo %s, PgQ API %s (%d steps)", res.Release, schema.APILevel, len(res.Steps))

	run := func(sql string, args ...any) (string, error) {
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			return "", fmt.Errorf("%s: %w", sql, err)
		}
		vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			v, err := r.Values()
			cells := make([]string, len(v))
			for i, c := range v {
				cells[i] = fmt.Sprint(c)
			}
			return strings.Join(cells, " | "), err
		})
		if err != nil {
			return "", fmt.Errorf("%s: %w", sql, err)
		}
		out := strings.Join(vals, ", ")
		say("  %-58s -> %s", sql, out)
		return out, nil
	}
	steps := []string{
		"select pgq.create_queue('demo')",
		"select pgq.register_consumer('demo', 'printer')",
	}
	say("\ncreating a queue and a consumer:")
	for _, s := range steps {
		if _, err := run(s); err != nil {
			return err
		}
	}

	say("\nproducing three events in one transaction (they commit with it):")
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	for i, kind := range []string{"order.created", "order.paid", "order.shipped"} {
		var id int64
		data := fmt.Sprintf(`{"order": 42, "step": %d}`, i+1)
		if err := tx.QueryRow(ctx, "select pgq.insert_event('demo', $1, $2)", kind, data).Scan(&id); err != nil {
			tx.Rollback(ctx) //nolint:errcheck
			return err
		}
		say("  insert_event('demo', '%s', '%s') -> event %d", kind, data, id)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}

	say("\nticking (the ticker daemon does this continuously):")
	if _, err := run("select pgq.force_tick('demo')"); err != nil {
		return err
	}
	if _, err := run("select pgq.ticker()"); err != nil {
		return err
	}

	say("\nconsuming: the batch is every event committed between two ticks:")
	batch, err := run("select pgq.next_batch('demo', 'printer')")
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, "select ev_id, ev_type, ev_data from pgq.get_batch_events($1)", batch)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var typ, data string
		if err := rows.Scan(&id, &typ, &data); err != nil {
			return err
		}
		say("  batch %s: event %d %-14s %s", batch, id, typ, data)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := run("select pgq.finish_batch($1)", batch); err != nil {
		return err
	}
	if _, err := run("select consumer_name, pending_events from pgq.get_consumer_info('demo')"); err != nil {
		return err
	}
	say("\ndone: the cluster is being removed.")
	return nil
}
