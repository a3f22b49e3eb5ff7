package schema_test

import (
	"context"
	"testing"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	var v string
	if err := conn.QueryRow(ctx, "select pgq.version()").Scan(&v); err != nil || v != "3.5" {
		t.Fatalf("version %q %v", v, err)
	}
	for _, sql := range []string{
		"select pgq.create_queue('q')",
		"select pgq.register_consumer('q','c')",
		"select pgq.insert_event('q','t','d1')",
		"select pgq.insert_event('q','t','d2','a','b','c','d')",
		"select pgq.force_tick('q')",
		"select pgq.ticker()",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var batch int64
	if err := conn.QueryRow(ctx, "select pgq.next_batch('q','c')").Scan(&batch); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "select ev_data from pgq.get_batch_events($1)", batch)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var d string
		rows.Scan(&d)
		got = append(got, d)
	}
	if rows.Err() != nil || len(got) != 2 || got[0] != "d1" || got[1] != "d2" {
		t.Fatalf("events %v %v", got, rows.Err())
	}
}
