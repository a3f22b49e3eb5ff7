package pgq_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
)

// TestDecodeChangeFromCTriggers decodes events made by Skytools' C triggers
// (and by pgqgo's, which must agree) and checks every decoded value against
// the row in the table: cast back to the column's type it must be equal.
func TestDecodeChangeFromCTriggers(t *testing.T) {
	for _, tpl := range templates {
		t.Run(tpl.String(), func(t *testing.T) {
			ctx := context.Background()
			conn := pgtest.Conn(t, pgtest.NewDB(t, tpl))
			pgtest.Exec(t, conn, "set timezone = 'UTC'")
			cols := map[string]string{"id": "int", "Odd Name": "text", "n": "numeric", "ts": "timestamptz", "arr": "int[]",
				"b": "bytea", "j": "jsonb", "flag": "bool", "f": "float8", "d": "date"}
			pgtest.Exec(t, conn, `create table t (id int primary key, "Odd Name" text, n numeric, ts timestamptz, arr int[], b bytea, j jsonb, flag bool, f float8, d date)`)
			for _, tr := range []string{"logutriga", "sqltriga", "jsontriga"} {
				pgtest.Exec(t, conn, "select pgq.create_queue($1)", tr)
				pgtest.Exec(t, conn, fmt.Sprintf("create trigger %s after insert or update or delete on t for each row execute procedure pgq.%s('%s')", tr, tr, tr))
				pgtest.Exec(t, conn, fmt.Sprintf("create trigger %s_r after truncate on t for each statement execute procedure pgq.%s('%s')", tr, tr, tr))
			}
			seen := map[string]int64{}
			check := func(stmt string, deleted map[string]*string) {
				t.Helper()
				pgtest.Exec(t, conn, stmt)
				for _, q := range []string{"logutriga", "sqltriga", "jsontriga"} {
					pfx := pgtest.Scalar[string](t, conn, "select queue_data_pfx from pgq.queue where queue_name = $1", q)
					rows, err := conn.Query(ctx, "select ev_id, ev_type, coalesce(ev_data, ''), coalesce(ev_extra1, '') from "+pfx+" where ev_id > $1 order by ev_id", seen[q])
					if err != nil {
						t.Fatal(err)
					}
					evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgq.Event, error) {
						var e pgq.Event
						return e, r.Scan(&e.ID, &e.Type, &e.Data, &e.Extra1)
					})
					if err != nil {
						t.Fatal(err)
					}
					if len(evs) == 0 {
						t.Fatalf("%s: no %s event", stmt, q)
					}
					for _, ev := range evs {
						seen[q] = ev.ID
						c, err := pgq.DecodeChange(&ev)
						if err != nil {
							t.Fatalf("%s: decode %s event %q / %q: %v", stmt, q, ev.Type, ev.Data, err)
						}
						if c.Table != "public.t" || c.Op != strings.ToUpper(strings.Fields(stmt)[0]) {
							t.Fatalf("%s: %s decoded as %+v", stmt, q, c)
						}
						if c.Op == "TRUNCATE" {
							continue
						}
						if len(c.Values) != len(c.Columns) {
							t.Fatalf("%s: %s: %d values for %d columns", stmt, q, len(c.Values), len(c.Columns))
						}
						for i, col := range c.Columns {
							if c.Values[i] != c.Row[col] {
								t.Fatalf("%s: %s: Values[%d] is not Row[%q]", stmt, q, i, col)
							}
						}
						values := c.Row
						if c.Op == "DELETE" && q == "sqltriga" {
							values = c.Where
						}
						id := values["id"]
						if c.Op == "UPDATE" && q == "sqltriga" {
							id = c.Where["id"]
						}
						if id == nil {
							t.Fatalf("%s: %s event without id: %+v", stmt, q, c)
						}
						for col, v := range values {
							typ, ok := cols[col]
							if !ok {
								t.Fatalf("%s: %s decoded unknown column %q", stmt, q, col)
							}
							var same bool
							if deleted != nil {
								same = (v == nil && deleted[col] == nil) || (v != nil && deleted[col] != nil &&
									pgtest.Scalar[bool](t, conn, fmt.Sprintf("select $1::%s = $2::%s", typ, typ), *v, *deleted[col]))
							} else {
								same = pgtest.Scalar[bool](t, conn, fmt.Sprintf("select $1::%s is not distinct from %s from t where id = $2::int",
									typ, pgx.Identifier{col}.Sanitize()), v, *id)
							}
							if !same {
								t.Errorf("%s: %s column %s decoded as %v, not the row's value", stmt, q, col, deref(v))
							}
						}
					}
				}
			}
			check(`insert into t values (1, 'a&b=c d ''q'' "dq" %', 1.50, '2026-01-02 03:04:05.5+00', '{1,2}', '\x00ff', '{"k": [1, null, "x\"y"]}', true, 1.5e300, '2026-01-02')`, nil)
			check(`insert into t values (2, null, null, null, null, null, null, null, null, null)`, nil)
			check(`insert into t values (3, E'ünï\ttab\nnl\\back', 'NaN', 'infinity', '{}', '', '"s"', false, 'NaN', 'infinity')`, nil)
			check(`update t set "Odd Name" = 'x,y=z', n = 2.50 where id = 1`, nil)
			row2 := map[string]*string{"id": ptr("2")}
			for c := range cols {
				if c != "id" {
					row2[c] = nil
				}
			}
			check(`delete from t where id = 2`, row2)
			check(`truncate t`, nil)
		})
	}
	if _, err := pgq.DecodeChange(&pgq.Event{Type: "order.created"}); err == nil {
		t.Fatal("a plain event decoded as a change")
	}
	if _, err := pgq.DecodeChange(&pgq.Event{Type: "I", Data: "(a) values ('x'"}); err == nil {
		t.Fatal("a broken sqltriga event decoded")
	}
}

func ptr(s string) *string { return &s }

func deref(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}

// BenchmarkDecodeChange: decoding a pgbench_accounts UPDATE as logutriga
// writes it, the replication worker's per-event cost before applying.
func BenchmarkDecodeChange(b *testing.B) {
	ev := &pgq.Event{Type: "U:aid", Extra1: "public.pgbench_accounts",
		Data: "aid=81234&bid=1&abalance=-2417&filler=" + strings.Repeat("+", 84)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pgq.DecodeChange(ev); err != nil {
			b.Fatal(err)
		}
	}
}
