package schema_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// TestLondisteDifferential runs the londiste scenarios (testdata/londiste)
// statement by statement on Debian's londiste 3.8 (over Skytools' pgq and
// pgq_node) and on pgqgo's londiste as far as it is written (over pgqgo's
// pgq and pgq_node), comparing results, return codes, notes and errors.
func TestLondisteDifferential(t *testing.T) {
	files, err := filepath.Glob("testdata/londiste/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no londiste scenarios: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var steps []step
		for _, l := range strings.Split(string(raw), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
				steps = append(steps, q(strings.TrimSuffix(l, ";")))
			}
		}
		t.Run(strings.TrimSuffix(filepath.Base(f), ".sql"), func(t *testing.T) {
			sky := pgtest.NewDB(t, pgtest.Skytools)
			pgtest.Exec(t, pgtest.Conn(t, sky), "create extension pgq_node; create extension londiste")
			ours := pgtest.NewDB(t, pgtest.PgqGo)
			conn := pgtest.Conn(t, ours)
			if err := schema.InstallComponent(context.Background(), conn, schema.Node); err != nil {
				t.Fatal(err)
			}
			pgtest.Exec(t, conn, schema.LondisteWIP())
			runDiffOn(t, sky, ours, steps)
		})
	}
}

// TestLondisteCatalogueSoFar: the londiste tables (columns, types,
// defaults, keys, checks, references) are Debian's londiste 3.8's, and every
// function written so far has Debian's signature, result, language and
// volatility.
func TestLondisteCatalogueSoFar(t *testing.T) {
	sky := pgtest.Conn(t, pgtest.NewDB(t, pgtest.Skytools))
	pgtest.Exec(t, sky, "create extension pgq_node; create extension londiste")
	ours := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	if err := schema.InstallComponent(context.Background(), ours, schema.Node); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, ours, schema.LondisteWIP())
	written := pgtest.Column[string](t, ours, "select distinct proname::text from pg_proc where pronamespace = 'londiste'::regnamespace")
	if len(written) < 15 {
		t.Fatalf("only %d londiste functions", len(written))
	}
	queries := map[string]string{
		"functions": `select p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
			|| ' ' || l.lanname || case when p.prosecdef then ' secdef' else '' end || ' ' || p.provolatile::text
			from pg_proc p join pg_language l on l.oid = p.prolang
			where p.pronamespace = 'londiste'::regnamespace and p.proname = any ($1) order by 1`,
		"columns": `select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			|| case when a.attnotnull then ' not null' else '' end || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
			from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
			left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
			where c.relnamespace = 'londiste'::regnamespace and c.relkind in ('r', 'S') and $1::text[] is not null
			order by c.relname, a.attnum`,
		"constraints": `select c.relname || ' ' || k.conname || ' ' || regexp_replace(pg_get_constraintdef(k.oid), '\s+', ' ', 'g')
			from pg_constraint k join pg_class c on c.oid = k.conrelid
			where c.relnamespace = 'londiste'::regnamespace and $1::text[] is not null order by 1`,
	}
	for what, sql := range queries {
		want := strings.Join(pgtest.Column[string](t, sky, sql, written), "\n")
		got := strings.Join(pgtest.Column[string](t, ours, sql, written), "\n")
		if want != got {
			t.Errorf("londiste %s differ from Debian's:\n%s", what, diffLines(want, got))
		}
	}
}
