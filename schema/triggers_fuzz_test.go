package schema_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

// fuzzType is a column type and a generator of values for it (as SQL text
// accepted by the type's input function).
type fuzzType struct {
	name string
	gen  func(r *rand.Rand) string
}

var fuzzRunes = []rune("aZ09 _.-~!*'\"()%&=+/?:;,@#$\\\t\n\r{}[]<>|^`é€😀\u0001\u001f\u007f\u2028")

func fuzzText(r *rand.Rand) string {
	n := r.IntN(12)
	var b strings.Builder
	for range n {
		b.WriteRune(fuzzRunes[r.IntN(len(fuzzRunes))])
	}
	return b.String()
}

func pick(r *rand.Rand, xs ...string) string { return xs[r.IntN(len(xs))] }

var fuzzTypes = []fuzzType{
	{"int4", func(r *rand.Rand) string { return fmt.Sprint(r.Int32() - 1<<30) }},
	{"int8", func(r *rand.Rand) string { return pick(r, "0", "-1", "9223372036854775807", fmt.Sprint(r.Int64())) }},
	{"int2", func(r *rand.Rand) string { return fmt.Sprint(r.IntN(65535) - 32768) }},
	{"numeric", func(r *rand.Rand) string {
		return pick(r, "1.50", "-0.0001", "NaN", "1e-20", "123456789012345678901234567890.5", "0")
	}},
	{"float8", func(r *rand.Rand) string { return pick(r, "1.5", "NaN", "Infinity", "-Infinity", "-0", "1e300", "0.1") }},
	{"float4", func(r *rand.Rand) string { return pick(r, "1.5", "NaN", "3.4e38", "0.1") }},
	{"bool", func(r *rand.Rand) string { return pick(r, "t", "f") }},
	{"text", fuzzText},
	{"varchar(20)", fuzzText},
	{"char(5)", func(r *rand.Rand) string { s := []rune(fuzzText(r)); return string(s[:min(len(s), 5)]) }},
	{"bytea", func(r *rand.Rand) string {
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return fmt.Sprintf("\\x%x", b)
	}},
	{"date", func(r *rand.Rand) string {
		return pick(r, "2026-01-02", "infinity", "-infinity", "1999-12-31", "0044-03-15 BC")
	}},
	{"timestamp", func(r *rand.Rand) string {
		return pick(r, "2026-01-02 03:04:05", "2026-01-02 03:04:05.123456", "infinity", "2000-02-29 23:59:59.5")
	}},
	{"timestamptz", func(r *rand.Rand) string {
		return pick(r, "2026-01-02 03:04:05+00", "2026-01-02 03:04:05.1+05:30", "-infinity", "1970-01-01 00:00:00+00")
	}},
	{"time", func(r *rand.Rand) string { return pick(r, "03:04:05", "23:59:59.999999", "00:00") }},
	{"interval", func(r *rand.Rand) string { return pick(r, "1 day 2 hours", "-3 mons", "00:00:01.5", "0") }},
	{"uuid", func(r *rand.Rand) string { return "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1" + fmt.Sprint(r.IntN(10)) }},
	{"jsonb", func(r *rand.Rand) string { return pick(r, `{"a": [1, "x\"y"]}`, `"s"`, `[]`, `{"k": null, "é": 1.5}`) }},
	{"json", func(r *rand.Rand) string { return pick(r, `{"a":1,  "b" : [true]}`, `"s"`, `null`) }},
	{"text[]", func(r *rand.Rand) string { return pick(r, `{a,"b c",NULL}`, `{}`, `{"q\"uote","back\\slash"}`) }},
	{"int4[]", func(r *rand.Rand) string { return pick(r, `{1,2}`, `{}`, `{{1,2},{3,4}}`, `{NULL}`) }},
	{"inet", func(r *rand.Rand) string { return pick(r, "10.0.0.1/8", "::1", "192.168.1.1") }},
	{"money", func(r *rand.Rand) string { return pick(r, "12.34", "-1") }},
	{"oid", func(r *rand.Rand) string { return fmt.Sprint(r.Uint32()) }},
}

var fuzzNames = []string{"id", "a", "Odd Name", "select", "B k", `q"uote`, "ünï", "x1", "CamelCase", "with,comma", "end"}

func sqlLit(s, typ string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'::" + typ
}

// fuzzCase builds one random table, its triggers and a DML workload.
func fuzzCase(r *rand.Rand, n int) []string {
	tbl := fmt.Sprintf("f%d", n)
	ncol := 1 + r.IntN(5)
	perm := r.Perm(len(fuzzNames))
	type col struct {
		name string
		typ  fuzzType
	}
	var cols []col
	for i := range ncol {
		t := fuzzTypes[r.IntN(len(fuzzTypes))]
		if i == 0 {
			t = fuzzTypes[r.IntN(3)] // an integer key
			if r.IntN(4) == 0 {
				t = fuzzType{"text", fuzzText} // or a text one (its values: keyLit below)
			}
		}
		cols = append(cols, col{fuzzNames[perm[i]], t})
	}
	var defs []string
	for _, c := range cols {
		defs = append(defs, pgx.Identifier{c.name}.Sanitize()+" "+c.typ.name)
	}
	pk := r.IntN(4) // 0: none, 1: first column, 2: pkey= argument, 3: second and first column
	if pk == 2 && strings.Contains(cols[0].name, ",") {
		pk = 1 // pkey= and ignore= are comma-separated lists: such a name cannot be said there
	}
	if pk == 3 && (ncol < 2 || !strings.Contains(" int4 int8 int2 text varchar(20) char(5) numeric date timestamp uuid ", " "+cols[1].typ.name+" ")) {
		pk = 1
	}
	switch pk {
	case 1:
		defs = append(defs, "primary key ("+pgx.Identifier{cols[0].name}.Sanitize()+")")
	case 3:
		defs = append(defs, "primary key ("+pgx.Identifier{cols[1].name}.Sanitize()+", "+pgx.Identifier{cols[0].name}.Sanitize()+")")
	}
	stmts := []string{fmt.Sprintf("create table %s (%s)", tbl, strings.Join(defs, ", "))}
	var args []string
	if pk == 2 {
		args = append(args, "pkey="+cols[0].name)
	}
	if r.IntN(2) == 0 {
		args = append(args, "backup")
	}
	if ncol > 1 && r.IntN(3) == 0 && !strings.Contains(cols[ncol-1].name, ",") {
		args = append(args, "ignore="+cols[ncol-1].name)
	}
	// expressions only over plain identifiers: the C triggers' expression
	// parser rejects quoted names ("QB: syntax error"); pgqgo accepts them
	plain := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(cols[0].name) && cols[0].name != "select" && cols[0].name != "end"
	if plain && r.IntN(4) == 0 {
		args = append(args, "ev_extra3="+cols[0].name+"::text || 'x'")
	}
	if plain && r.IntN(4) == 0 {
		args = append(args, "when="+cols[0].name+" % 3 <> 0")
	}
	quoted := func(q string) string {
		out := []string{"'" + q + "'"}
		for _, a := range args {
			out = append(out, "'"+strings.ReplaceAll(a, "'", "''")+"'")
		}
		return strings.Join(out, ", ")
	}
	// all three triggers, or (a third of the cases) logutriga alone, so that
	// an error of the others does not hide one it misses
	triggers := [][2]string{{"logutriga", "qu"}, {"sqltriga", "qs"}, {"jsontriga", "qj"}}
	if r.IntN(3) == 0 {
		triggers = triggers[:1]
	}
	for _, tr := range triggers {
		stmts = append(stmts, fmt.Sprintf("create trigger %s after insert or update or delete on %s for each row execute procedure pgq.%s(%s)",
			tr[0], tbl, tr[0], quoted(tr[1])))
	}
	value := func(c col) string {
		if r.IntN(5) == 0 {
			return "NULL"
		}
		return sqlLit(c.typ.gen(r), c.typ.name)
	}
	// the key's k-th value: a number, or for a text key one that needs
	// quoting in ROW::text, encoding, or neither
	keyStyle := pick(r, "%d", "%d,x", "%d x", "a,%d&")
	keyLit := func(k int) string {
		if cols[0].typ.name == "text" {
			return sqlLit(fmt.Sprintf(keyStyle, k), "text")
		}
		return sqlLit(fmt.Sprint(k), cols[0].typ.name)
	}
	for k := 0; k < 3; k++ {
		var vals []string
		for i, c := range cols {
			if i == 0 {
				vals = append(vals, keyLit(k+1))
				continue
			}
			vals = append(vals, value(c))
		}
		stmts = append(stmts, fmt.Sprintf("insert into %s values (%s)", tbl, strings.Join(vals, ", ")))
	}
	key := pgx.Identifier{cols[0].name}.Sanitize()
	if ncol > 1 {
		c := cols[1+r.IntN(ncol-1)]
		stmts = append(stmts, fmt.Sprintf("update %s set %s = %s where %s = %s", tbl, pgx.Identifier{c.name}.Sanitize(), value(c), key, keyLit(1)))
	}
	changed := key + " + 10"
	if cols[0].typ.name == "text" {
		changed = key + " || " + pick(r, "'0'", "',y'", "' '", "'&'")
	}
	stmts = append(stmts, fmt.Sprintf("update %s set %s = %s where %s = %s", tbl, key, key, key, keyLit(2)))
	stmts = append(stmts, fmt.Sprintf("update %s set %s = %s where %s = %s", tbl, key, changed, key, keyLit(2)))
	stmts = append(stmts, fmt.Sprintf("update %s set %s = %s where %s = %s", tbl, key, key, key, keyLit(1)))
	stmts = append(stmts, fmt.Sprintf("delete from %s where %s = %s", tbl, key, keyLit(3)))
	return stmts
}

// TestTriggersFuzz generates random tables (types, odd column names, keys),
// trigger arguments and values, and compares the C triggers' events and
// errors with pgqgo's. PGQGO_TRIGGER_FUZZ=10m runs it for that long; the
// default is a short run.
func TestTriggersFuzz(t *testing.T) {
	dur := 15 * time.Second
	if v := os.Getenv("PGQGO_TRIGGER_FUZZ"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PGQGO_TRIGGER_FUZZ: %v", err)
		}
		dur = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PGQGO_TRIGGER_FUZZ_SEED"); v != "" { // to replay a failure
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PGQGO_TRIGGER_FUZZ_SEED: %v", err)
		}
	}
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	ctx := context.Background()
	conns := map[pgtest.Template]*pgx.Conn{}
	for _, tpl := range []pgtest.Template{pgtest.Skytools, pgtest.PgqGo} {
		c := pgtest.Conn(t, pgtest.NewDB(t, tpl))
		pgtest.Exec(t, c, "set timezone = 'UTC'")
		for _, q := range []string{"qu", "qs", "qj"} {
			pgtest.Exec(t, c, "select pgq.create_queue($1)", q)
		}
		conns[tpl] = c
	}
	run := func(c *pgx.Conn, stmts []string, tbl string) []string {
		var out []string
		for _, s := range stmts {
			if _, err := c.Exec(ctx, s); err != nil {
				out = append(out, "ERROR "+err.Error())
			}
		}
		for _, q := range []string{"qu", "qs", "qj"} {
			var pfx string
			if err := c.QueryRow(ctx, "select queue_data_pfx from pgq.queue where queue_name = $1", q).Scan(&pfx); err != nil {
				t.Fatal(err)
			}
			rows, err := c.Query(ctx, `select concat_ws(' | ', coalesce(ev_type,'<null>'), coalesce(ev_data,'<null>'),
				coalesce(ev_extra2,'<null>'), coalesce(ev_extra3,'<null>'), coalesce(ev_extra4,'<null>'))
				from `+pfx+` where ev_extra1 = $1 order by ev_id`, "public."+tbl)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				out = append(out, q+": "+e)
			}
		}
		return out
	}
	deadline := time.Now().Add(dur)
	cases, events := 0, 0
	for n := 0; time.Now().Before(deadline); n++ {
		stmts := fuzzCase(r, n)
		tbl := fmt.Sprintf("f%d", n)
		want := run(conns[pgtest.Skytools], stmts, tbl)
		got := run(conns[pgtest.PgqGo], stmts, tbl)
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Fatalf("case %d differs (seed %d)\nworkload:\n  %s\nskytools:\n  %s\npgqgo:\n  %s", n, seed,
				strings.Join(stmts, ";\n  "), strings.Join(want, "\n  "), strings.Join(got, "\n  "))
		}
		cases++
		events += len(want)
	}
	t.Logf("%d random cases, %d events and errors compared, all identical", cases, events)
	if cases == 0 {
		t.Fatal("no case ran")
	}
}
