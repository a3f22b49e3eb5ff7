package schema_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// functionBodies lists every pgq function with a digest of its body, so an
// upgraded database can be compared with a fresh one beyond signatures
// (generated insert paths excluded: they depend on the queues).
func functionBodies(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	rows, err := c.Query(context.Background(), `select p.oid::regprocedure::text || ' ' || md5(p.prosrc)
		from pg_proc p where p.pronamespace = 'pgq'::regnamespace
		  and p.proname not in ('insert_event', '_insert_dispatch', '_insert_bulk_dispatch', 'insert_event_bulk', '_trigger_fast_event')`)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestUpgradeFromEveryRelease installs each kept earlier release exactly as
// it shipped, fills it, upgrades it in place, and compares the result with a
// fresh install of the current release: same catalogue, same function
// bodies (obsolete functions dropped), the data still there and usable.
func TestUpgradeFromEveryRelease(t *testing.T) {
	if len(schema.OldReleases()) < 2 {
		t.Fatalf("kept releases: %v", schema.OldReleases())
	}
	ctx := context.Background()
	fresh := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, fresh, "select pgq.create_queue('q')")
	wantCat, wantBodies := schemaFingerprint(t, fresh), functionBodies(t, fresh)
	for _, rel := range schema.OldReleases() {
		t.Run(rel, func(t *testing.T) {
			conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Empty))
			if err := schema.InstallRelease(ctx, conn, rel); err != nil {
				t.Fatal(err)
			}
			in, err := schema.Inspect(ctx, conn)
			if err != nil || in.Release != rel {
				t.Fatalf("installed %+v, %v", in, err)
			}
			// releases before 0.2.0 had no change-capture triggers
			hadTriggers := pgtest.Scalar[bool](t, conn, "select to_regprocedure('pgq.logutriga()') is not null")
			pgtest.Exec(t, conn, "create table t (id int primary key, v text)")
			if hadTriggers {
				pgtest.Exec(t, conn, "create trigger cap after insert or update on t for each row execute procedure pgq.logutriga('q')")
			}
			// three transactions: events written in the one that created the
			// queue would be invisible to its batches (its own txid can count
			// as committed in the creation tick's snapshot), in PgQ as here
			pgtest.Exec(t, conn, `select pgq.create_queue('q'); select pgq.register_consumer('q', 'c')`)
			pgtest.Exec(t, conn, `insert into t values (1, 'before upgrade'); select pgq.insert_event('q', 'ev', 'before upgrade')`)
			pgtest.Exec(t, conn, `select pgq.ticker()`)
			res, err := schema.Install(ctx, conn, schema.InstallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Before.Release != rel || !res.Changed() {
				t.Fatalf("upgrade from %s: %+v", rel, res)
			}
			if got := schemaFingerprint(t, conn); got != wantCat {
				t.Errorf("catalogue after upgrade from %s differs from a fresh install:\n%s", rel, diffLines(wantCat, got))
			}
			if got := functionBodies(t, conn); got != wantBodies {
				t.Errorf("function bodies after upgrade from %s differ from a fresh install:\n%s", rel, diffLines(wantBodies, got))
			}
			if !hadTriggers {
				pgtest.Exec(t, conn, "create trigger cap after insert or update on t for each row execute procedure pgq.logutriga('q')")
			}
			pgtest.Exec(t, conn, `update t set v = 'after upgrade' where id = 1; select pgq.insert_event('q', 'ev', 'after upgrade')`)
			pgtest.Exec(t, conn, "select pgq.force_tick('q')")
			pgtest.Exec(t, conn, "select pgq.ticker()")
			var got []string
			for range 3 {
				id := pgtest.Scalar[*int64](t, conn, "select pgq.next_batch('q', 'c')")
				if id == nil {
					break
				}
				rows, err := conn.Query(ctx, "select ev_type || ' ' || ev_data from pgq.get_batch_events($1) order by ev_id", *id)
				if err != nil {
					t.Fatal(err)
				}
				evs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
				got = append(got, evs...)
				pgtest.Exec(t, conn, "select pgq.finish_batch($1)", *id)
			}
			want := []string{"I:id id=1&v=before+upgrade", "ev before upgrade", "U:id id=1&v=after+upgrade", "ev after upgrade"}
			if !hadTriggers {
				want = want[1:]
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("events across the upgrade:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// diffLines lists the lines only in a (-) or only in b (+).
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
