package schema_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// safeSearchPath is the setting every SECURITY DEFINER function of pgqgo
// carries, unless it is one of fullyQualified.
const safeSearchPath = "search_path=pg_catalog, pg_temp"

// fullyQualified are the SECURITY DEFINER functions that carry no
// search_path setting (it would cost every event a configuration save and
// restore: docs/schema.md "search_path") and instead name everything they use
// with its schema. TestSearchPathAttack is their proof.
var fullyQualified = map[string]bool{
	"pgq.insert_event(text,text,text,text,text,text,text)":            true,
	"pgq._trigger_fast_event(text,oid,text,text,text,json,text,text)": true,
}

// shadowSQL, run by the intruder, puts a shadow of every pg_catalog function,
// aggregate, operator, type and relation that pgqgo's code mentions into the
// intruder's schema evil (and of every type and relation into its temporary
// schema, which PostgreSQL searches first for those unless told otherwise).
// Each shadow announces itself with a warning naming the role it runs as.
const shadowSQL = `
DO $pwn$
DECLARE
    words   text[];
    r       record;
    v_args  text[];
    v_ok    boolean;
    v_t     regtype;
    v_poly  boolean;
    v_ret   text;
    v_n     integer := 0;
    v_errs  text[] := '{}';
    polys   regtype[] := ARRAY['anyelement', 'anyarray', 'anynonarray', 'anycompatible',
                               'anycompatiblearray', 'anycompatiblenonarray', 'anyenum']::regtype[];
BEGIN
    SET LOCAL search_path = pg_catalog, pg_temp;
    CREATE SCHEMA evil;
    CREATE FUNCTION evil.pwn(what text) RETURNS boolean LANGUAGE plpgsql AS
        $b$BEGIN RAISE WARNING 'pgqgo-attack: % ran as %', what, current_user; RETURN true; END$b$;
    SELECT array_agg(DISTINCT m[1]) INTO words
      FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace,
           regexp_matches(lower(p.prosrc), '([a-z_][a-z0-9_]*)', 'g') m
     WHERE ns.nspname IN ('pgq', 'pgq_coop', 'pgq_ext', 'pgq_node', 'londiste');

    -- functions and aggregates
    FOR r IN SELECT p.oid, p.proname, p.prokind, p.proretset, p.prorettype::regtype AS ret,
                    string_to_array(p.proargtypes::text, ' ')::oid[]::regtype[] AS args, p.provariadic::regtype AS variadic
               FROM pg_proc p
              WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY (words)
                AND p.prokind IN ('f', 'a')
    LOOP
        v_args := '{}'; v_ok := true; v_poly := false;
        FOR i IN 1 .. coalesce(array_length(r.args, 1), 0) LOOP
            v_t := r.args[i];
            IF v_t = '"any"'::regtype THEN
                v_args := v_args || CASE WHEN i = array_length(r.args, 1) AND r.variadic = '"any"'::regtype
                                         THEN 'VARIADIC text[]' ELSE 'text' END;
            ELSIF v_t = ANY (polys) THEN
                v_args := v_args || v_t::text; v_poly := true;
            ELSIF (SELECT typtype FROM pg_type WHERE oid = v_t) = 'p' THEN
                v_ok := false;
            ELSE
                v_args := v_args || (CASE WHEN i = array_length(r.args, 1) AND r.variadic <> 0
                                          THEN 'VARIADIC ' ELSE '' END || v_t::text);
            END IF;
        END LOOP;
        v_ret := r.ret::text;
        IF r.ret = ANY (polys) AND NOT v_poly THEN v_ok := false; END IF;
        IF (SELECT typtype FROM pg_type WHERE oid = r.ret) = 'p' AND r.ret <> 'void'::regtype
           AND NOT r.ret = ANY (polys) THEN v_ok := false; END IF;
        CONTINUE WHEN NOT v_ok;
        BEGIN
            IF r.prokind = 'f' THEN
                EXECUTE format('CREATE FUNCTION evil.%I(%s) RETURNS %s%s LANGUAGE plpgsql AS %L',
                    r.proname, array_to_string(v_args, ', '), CASE WHEN r.proretset THEN 'SETOF ' ELSE '' END, v_ret,
                    format('BEGIN PERFORM evil.pwn(%L); RETURN%s; END', 'function ' || r.proname,
                           CASE WHEN r.proretset OR r.ret = 'void'::regtype THEN '' ELSE ' NULL' END));
            ELSIF coalesce(array_length(v_args, 1), 0) = 0 THEN   -- count(*)
                EXECUTE format('CREATE FUNCTION evil.pwn_sf_%s(bigint) RETURNS bigint LANGUAGE plpgsql AS %L', r.oid,
                    format('BEGIN PERFORM evil.pwn(%L); RETURN 0; END', 'aggregate ' || r.proname));
                EXECUTE format('CREATE AGGREGATE evil.%I(*) (sfunc = evil.pwn_sf_%s, stype = bigint, initcond = 0)', r.proname, r.oid);
            ELSIF v_poly THEN                                      -- array_agg(anynonarray) and the like
                EXECUTE format('CREATE FUNCTION evil.pwn_sf_%s(anyarray, anyelement) RETURNS anyarray LANGUAGE plpgsql AS %L', r.oid,
                    format('BEGIN PERFORM evil.pwn(%L); RETURN $1; END', 'aggregate ' || r.proname));
                EXECUTE format('CREATE AGGREGATE evil.%I(anyelement) (sfunc = evil.pwn_sf_%s, stype = anyarray)', r.proname, r.oid);
            ELSE
                EXECUTE format('CREATE FUNCTION evil.pwn_sf_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L', r.oid,
                    v_args[1], array_to_string(v_args, ', '), v_args[1],
                    format('BEGIN PERFORM evil.pwn(%L); RETURN $1; END', 'aggregate ' || r.proname));
                EXECUTE format('CREATE AGGREGATE evil.%I(%s) (sfunc = evil.pwn_sf_%s, stype = %s)',
                    r.proname, array_to_string(v_args, ', '), r.oid, v_args[1]);
            END IF;
            v_n := v_n + 1;
        EXCEPTION WHEN OTHERS THEN
            v_errs := v_errs || (SQLERRM || ' ' || r::text);
        END;
    END LOOP;

    -- operators
    FOR r IN SELECT o.oid, o.oprname, o.oprleft::regtype AS l, o.oprright::regtype AS rt, o.oprresult::regtype AS res
               FROM pg_operator o
              WHERE o.oprnamespace = 'pg_catalog'::regnamespace
                AND o.oprname IN ('=', '<>', '<', '>', '<=', '>=', '||', '+', '-', '*', '/', '%',
                                  '~~', '!~~', '~~*', '!~~*', '~', '!~', '@>', '<@', '&&', '->', '->>', '#>', '#>>', '?')
    LOOP
        CONTINUE WHEN (r.l <> 0 AND (SELECT typtype FROM pg_type WHERE oid = r.l) = 'p' AND NOT r.l = ANY (polys))
                   OR ((SELECT typtype FROM pg_type WHERE oid = r.rt) = 'p' AND NOT r.rt = ANY (polys))
                   OR ((SELECT typtype FROM pg_type WHERE oid = r.res) = 'p' AND NOT r.res = ANY (polys));
        BEGIN
            EXECUTE format('CREATE FUNCTION evil.pwn_op_%s(%s) RETURNS %s LANGUAGE plpgsql AS %L', r.oid,
                concat_ws(', ', CASE WHEN r.l <> 0 THEN r.l::text END, r.rt::text), r.res,
                format('BEGIN PERFORM evil.pwn(%L); RETURN NULL; END', 'operator ' || r.oprname));
            EXECUTE format('CREATE OPERATOR evil.%s (%s rightarg = %s, function = evil.pwn_op_%s)', r.oprname,
                CASE WHEN r.l <> 0 THEN format('leftarg = %s,', r.l) ELSE '' END, r.rt, r.oid);
            v_n := v_n + 1;
        EXCEPTION WHEN OTHERS THEN
            v_errs := v_errs || (SQLERRM || ' ' || r.oid);
        END;
    END LOOP;

    -- relations of the catalogue, in evil and in the temporary schema
    FOR r IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind IN ('r', 'v') AND c.relname = ANY (words)
    LOOP
        -- every column but those of a pseudo-type (pg_attribute.attmissingval)
        v_ret := (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                   WHERE a.attrelid = ('pg_catalog.' || quote_ident(r.relname))::regclass AND a.attnum > 0
                     AND NOT a.attisdropped AND t.typtype <> 'p');
        EXECUTE format('CREATE VIEW evil.%1$I AS SELECT %3$s FROM pg_catalog.%1$I WHERE evil.pwn(%2$L)', r.relname, 'relation ' || r.relname, v_ret);
        EXECUTE format('CREATE TEMP VIEW %1$I AS SELECT %3$s FROM pg_catalog.%1$I WHERE evil.pwn(%2$L)', r.relname, 'temp relation ' || r.relname, v_ret);
        v_n := v_n + 2;
    END LOOP;

    -- types, last (the DDL above names pg_catalog's), in evil and in the temporary schema
    FOR r IN SELECT t.typname FROM pg_type t
              WHERE t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype IN ('b', 'e', 'r', 'm')
                AND t.typname = ANY (words) AND t.typname NOT LIKE '\_%'
    LOOP
        BEGIN
            EXECUTE format('CREATE DOMAIN evil.%1$I AS pg_catalog.%1$I CHECK (evil.pwn(%2$L))', r.typname, 'type ' || r.typname);
            EXECUTE format('CREATE DOMAIN pg_temp.%1$I AS pg_catalog.%1$I CHECK (evil.pwn(%2$L))', r.typname, 'temp type ' || r.typname);
            v_n := v_n + 2;
        EXCEPTION WHEN OTHERS THEN
            v_errs := v_errs || (SQLERRM || ' ' || r::text);
        END;
    END LOOP;
    RAISE NOTICE 'pgqgo-shadows: % made, % refused: %', v_n, cardinality(v_errs),
        (SELECT string_agg(DISTINCT regexp_replace(e, '\d+', 'N', 'g'), '; ') FROM unnest(v_errs) e);
END
$pwn$`

// definerCalls say how the intruder calls each SECURITY DEFINER function; their
// placeholders come from the state set up before the call (see
// TestSearchPathAttack).
var definerCalls = map[string]string{
	"pgq.get_consumer_info()":                                    "select * from pgq.get_consumer_info()",
	"pgq.get_consumer_info(text)":                                "select * from pgq.get_consumer_info('q')",
	"pgq.get_consumer_info(text,text)":                           "select * from pgq.get_consumer_info('q', 'c')",
	"pgq.batch_retry(bigint,integer)":                            "select pgq.batch_retry({batch}, 0)",
	"pgq.event_retry(bigint,bigint,integer)":                     "select pgq.event_retry({batch}, {event}, 60)",
	"pgq.event_retry(bigint,bigint,timestamp with time zone)":    "select pgq.event_retry({batch}, {event}, pg_catalog.now())",
	"pgq.finish_batch(bigint)":                                   "select pgq.finish_batch({batch})",
	"pgq.force_tick(text)":                                       "select pgq.force_tick('q')",
	"pgq.get_batch_info(bigint)":                                 "select * from pgq.get_batch_info({batch})",
	"pgq.next_batch_custom(text,text,interval,integer,interval)": "select * from pgq.next_batch_custom('q', 'c', '0', 0, '0')",
	"pgq.register_consumer(text,text)":                           "select pgq.register_consumer('q', 'c2')",
	"pgq.register_consumer_at(text,text,bigint)":                 "select pgq.register_consumer_at('q', 'c3', {tick})",
	"pgq.unregister_consumer(text,text)":                         "select pgq.unregister_consumer('q', 'cu')",
	"pgq.dead_letter_event(bigint,bigint,timestamp with time zone,bigint,integer,text,text,text,text,text,text,text)": "select pgq.dead_letter_event({batch}, {event}, pg_catalog.now(), 1, 0, 't', 'd', null, null, null, null, 'why')",
	"pgq.dead_letter_replay(bigint)":                                        "select pgq.dead_letter_replay({deadletter})",
	"pgq.insert_event_bulk(text,text[],text[],text[],text[],text[],text[])": "select pgq.insert_event_bulk('q', '{t1,t2}', '{d1,d2}')",
	"pgq._trigger_fast_event(text,oid,text,text,text,json,text,text)": `select pgq._trigger_fast_event('q', 'public.evil_t'::pg_catalog.regclass, 'INSERT', '({n},row)', null, '{"id":{n},"v":"row"}', 'public', 'evil_t');
		select pgq._trigger_fast_event('q', 'public.evil_t'::pg_catalog.regclass, 'UPDATE', '(-1,row)', '(-1,clean)', '{"id":-1,"v":"row"}', 'public', 'evil_t')`,
	"pgq.create_queue(text)": "select pgq.create_queue('qnew{n}')",
	// londiste (its one SECURITY DEFINER function)
	"londiste.set_session_replication_role(text,boolean)": "select londiste.set_session_replication_role('replica', true)",
	// pgq_node, on the root of queue nq (n1, worker w1; subscriber n2)
	"pgq_node.change_consumer_provider(text,text,text)": "select * from pgq_node.change_consumer_provider('nq', 'w1', 'n2')",
	"pgq_node.create_node(text,text,text,text,text,bigint,text)": `select * from pgq_node.register_location('nq{n}', 'n1', 'dbname=n1', false);
		select * from pgq_node.create_node('nq{n}', 'root', 'n1', 'w1', null, null, null)`,
	"pgq_node.demote_root(text,integer,text)": `select * from pgq_node.register_location('nqd{n}', 'n1', 'dbname=n1', false);
		select * from pgq_node.create_node('nqd{n}', 'root', 'n1', 'w1', null, null, null);
		select * from pgq_node.demote_root('nqd{n}', 1, 'n2'); select * from pgq_node.demote_root('nqd{n}', 2, 'n2')`,
	"pgq_node.drop_node(text,text)":                      "select * from pgq_node.drop_node('nq', 'gone{n}')",
	"pgq_node.get_consumer_info(text)":                   "select * from pgq_node.get_consumer_info('nq')",
	"pgq_node.get_consumer_state(text,text)":             "select * from pgq_node.get_consumer_state('nq', 'w1')",
	"pgq_node.get_node_info(text)":                       "select * from pgq_node.get_node_info('nq')",
	"pgq_node.get_queue_locations(text)":                 "select * from pgq_node.get_queue_locations('nq')",
	"pgq_node.get_subscriber_info(text)":                 "select * from pgq_node.get_subscriber_info('nq')",
	"pgq_node.get_worker_state(text)":                    "select * from pgq_node.get_worker_state('nq')",
	"pgq_node.promote_branch(text)":                      "select * from pgq_node.promote_branch('nq')",
	"pgq_node.register_consumer(text,text,text,bigint)":  "select * from pgq_node.register_consumer('nq', 'c{n}', 'n1', 1)",
	"pgq_node.register_location(text,text,text,boolean)": "select * from pgq_node.register_location('nq', 'l{n}', 'dbname=l', false)",
	"pgq_node.register_subscriber(text,text,text,bigint)": `select * from pgq_node.register_location('nq', 's{n}', 'dbname=s', false);
		select * from pgq_node.register_subscriber('nq', 's{n}', 'sw{n}', null)`,
	"pgq_node.set_consumer_completed(text,text,bigint)":   "select * from pgq_node.set_consumer_completed('nq', 'w1', 1)",
	"pgq_node.set_consumer_error(text,text,text)":         "select * from pgq_node.set_consumer_error('nq', 'w1', 'boom {n}')",
	"pgq_node.set_consumer_paused(text,text,boolean)":     "select * from pgq_node.set_consumer_paused('nq', 'w1', true)",
	"pgq_node.set_consumer_uptodate(text,text,boolean)":   "select * from pgq_node.set_consumer_uptodate('nq', 'w1', true)",
	"pgq_node.set_global_watermark(text,bigint)":          "select * from pgq_node.set_global_watermark('nq', null)",
	"pgq_node.set_node_attrs(text,text)":                  "select * from pgq_node.set_node_attrs('nq', 'a={n}')",
	"pgq_node.set_partition_watermark(text,text,bigint)":  "select * from pgq_node.set_partition_watermark('nq', 'part', 1)",
	"pgq_node.set_subscriber_watermark(text,text,bigint)": "select * from pgq_node.set_subscriber_watermark('nq', 'n2', 1)",
	"pgq_node.unregister_consumer(text,text)":             "select * from pgq_node.unregister_consumer('nq', 'cu{n}')",
	"pgq_node.unregister_location(text,text)":             "select * from pgq_node.unregister_location('nq', 'l{n}x')",
	"pgq_node.unregister_subscriber(text,text)":           "select * from pgq_node.unregister_subscriber('nq', 'nobody')",
	"pgq.drop_queue(text,boolean)":                        "select pgq.drop_queue('qdrop', true)",
	"pgq.event_retry_raw(text,text,timestamp with time zone,bigint,timestamp with time zone,integer,text,text,text,text,text,text)": "select pgq.event_retry_raw('q', 'c', pg_catalog.now(), {retryid}, pg_catalog.now(), 0, 't', 'd', null, null, null, null)",
	"pgq.grant_perms(text)":                "select pgq.grant_perms('q')",
	"pgq.set_queue_config(text,text,text)": "select pgq.set_queue_config('q', 'ticker_max_count', '500')",
	"pgq.ticker()":                         "select pgq.ticker()",
	"pgq.ticker(text)":                     "select pgq.ticker('q')",
	"pgq.ticker(text,bigint,timestamp with time zone,bigint)":                       "select pgq.ticker('qext', {exttick}, pg_catalog.now(), 1)",
	"pgq.pgqgo_ticker(interval)":                                                    "select * from pgq.pgqgo_ticker('0')",
	"pgq.pgqgo_ticker(interval,interval)":                                           "select * from pgq.pgqgo_ticker('0', '1s')",
	"pgq.pgqgo_thin_ticks()":                                                        "select pgq.pgqgo_thin_ticks()",
	"pgq.insert_event(text,text,text,text,text,text,text)":                          "select pgq.insert_event('q', 't', 'd', 'e1', null, null, null)",
	"pgq.pgqgo_queue_changed()":                                                     "update pgq.queue set queue_ticker_max_count = 500",
	"pgq_coop.next_batch(text,text,text)":                                           "select pgq_coop.next_batch('q', 'g', 's1')",
	"pgq_coop.next_batch(text,text,text,interval)":                                  "select pgq_coop.next_batch('q', 'g', 's1', '1 hour')",
	"pgq_coop.next_batch_custom(text,text,text,interval,integer,interval)":          "select pgq_coop.next_batch_custom('q', 'g', 's1', '0', 0, '0')",
	"pgq_coop.next_batch_custom(text,text,text,interval,integer,interval,interval)": "select pgq_coop.next_batch_custom('q', 'g', 's1', '0', 0, '0', '1 hour')",
	"pgq_coop.register_subconsumer(text,text,text)":                                 "select pgq_coop.register_subconsumer('q', 'g', 's{n}')",
	"pgq_coop.unregister_subconsumer(text,text,text,integer)":                       "select pgq_coop.unregister_subconsumer('q', 'g', 'su', 0)",
	"pgq_coop.finish_batch(bigint)":                                                 "select pgq_coop.finish_batch({coopbatch})",
	"pgq_coop.finish_batch(bigint,text,text,text)":                                  "select pgq_coop.finish_batch({coopbatch}, 'q', 'g', 's1')",
}

// TestSearchPathAttack: a role that may create a schema puts shadows of
// everything pgqgo's SQL could resolve through the caller's search_path
// (functions, aggregates, operators, types, relations) before pg_catalog, and
// into its temporary schema, then calls every SECURITY DEFINER function of
// every schema pgqgo installs. No shadow may ever run as anyone but the
// intruder, and every call must still do its job. Each SECURITY DEFINER
// function either has the fixed search_path or is on the short list of
// fully qualified hot paths.
func TestSearchPathAttack(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t, pgtest.PgqGo)
	owner := pgtest.Conn(t, dsn)
	for _, c := range []schema.Component{schema.Coop, schema.Ext, schema.Node, schema.Londiste} {
		if err := schema.InstallComponent(ctx, owner, c); err != nil {
			t.Fatal(err)
		}
	}
	admin := pgtest.Conn(t, pgtest.ServerDSN(t))
	if _, err := admin.Exec(ctx, "CREATE ROLE pgqgo_intruder LOGIN IN ROLE pgq_admin"); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	pgtest.Exec(t, admin, "GRANT londiste_writer TO pgqgo_intruder")
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, owner, fmt.Sprintf(`grant create on database %s to pgqgo_intruder;
		select pgq.create_queue('q'); select pgq.create_queue('qext');
		select pgq.set_queue_config('qext', 'external_ticker', 'true');
		select pgq.register_consumer('q', 'c');
		select pgq_coop.register_subconsumer('q', 'g', 's1');
		create table public.evil_t (id int primary key, v text);
		grant all on public.evil_t to pgqgo_intruder;
		create trigger cap after insert on public.evil_t for each row execute procedure pgq.logutriga('q');
		select pgq_node.register_location('nq', 'n1', 'dbname=n1', false);
		select pgq_node.register_location('nq', 'n2', 'dbname=n2', false);
		select pgq_node.create_node('nq', 'root', 'n1', 'w1', null, null, null);
		select pgq_node.register_subscriber('nq', 'n2', 'w2', null)`,
		pgx.Identifier{cfg.Database}.Sanitize()))

	// the static half: every SECURITY DEFINER function has the setting, or is qualified
	type fn struct{ sig, config string }
	var defs []fn
	rows, err := owner.Query(ctx, `select p.oid::regprocedure::text, coalesce(array_to_string(p.proconfig, ';'), '')
		from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		where p.prosecdef and n.nspname in ('pgq', 'pgq_coop', 'pgq_ext', 'pgq_node', 'londiste') order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var f fn
		if err := rows.Scan(&f.sig, &f.config); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, f)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for _, f := range defs {
		if fullyQualified[f.sig] {
			if f.config != "" {
				t.Errorf("%s: listed as fully qualified but has settings %q", f.sig, f.config)
			}
		} else if f.config != safeSearchPath && f.config != safeSearchPath+";enable_seqscan=off" {
			t.Errorf("%s: SECURITY DEFINER with settings %q, want %q", f.sig, f.config, safeSearchPath)
		}
		if _, ok := definerCalls[f.sig]; !ok {
			t.Errorf("%s: SECURITY DEFINER function without a call in definerCalls: add one", f.sig)
		}
	}
	if len(defs) < 30 {
		t.Fatalf("only %d SECURITY DEFINER functions found", len(defs))
	}

	// the dynamic half: the intruder's session
	var mu sync.Mutex
	var escalations, shadows []string
	icfg, err := pgx.ParseConfig(dsn + " user=pgqgo_intruder")
	if err != nil {
		t.Fatal(err)
	}
	ran := regexp.MustCompile(`^pgqgo-attack: (.*) ran as (.*)$`)
	icfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		if m := ran.FindStringSubmatch(n.Message); m != nil && m[2] != "pgqgo_intruder" {
			escalations = append(escalations, m[1]+" as "+m[2])
		}
		if strings.HasPrefix(n.Message, "pgqgo-shadows: ") {
			shadows = append(shadows, n.Message)
		}
	}
	intruder, err := pgx.ConnectConfig(ctx, icfg)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close(ctx)
	// the fast path of the trigger needs the table's layout kept by this session
	for i := 1; i <= 2; i++ {
		pgtest.Exec(t, intruder, fmt.Sprintf("insert into public.evil_t values (%d, 'clean')", -i))
		pgtest.Exec(t, intruder, fmt.Sprintf("update public.evil_t set v = 'clean' where id = %d", -i))
	}
	pgtest.Exec(t, intruder, shadowSQL)
	t.Logf("%v", shadows)
	pgtest.Exec(t, intruder, "set search_path = evil, pg_catalog")

	// state for each call, made by the owner with a clean search_path
	state := func(n int) map[string]string {
		s := map[string]string{"{n}": fmt.Sprint(n)}
		for _, sql := range []string{"select pgq.create_queue('qdrop')", "select pgq.register_consumer('q', 'cu')",
			"select pgq_coop.register_subconsumer('q', 'g', 'su')", "select pgq.insert_event('q', 't', 'd')",
			"select pgq.set_queue_config('q', 'ticker_max_count', '1')", "select pgq.ticker('q')"} {
			pgtest.Exec(t, owner, sql)
		}
		batch := pgtest.Scalar[int64](t, owner, "select pgq.next_batch('q', 'c')")
		s["{batch}"] = fmt.Sprint(batch)
		s["{event}"] = fmt.Sprint(pgtest.Scalar[int64](t, owner, "select ev_id from pgq.get_batch_events($1) limit 1", batch))
		s["{tick}"] = fmt.Sprint(pgtest.Scalar[int64](t, owner, "select max(tick_id) from pgq.tick t join pgq.queue q on q.queue_id = t.tick_queue where queue_name = 'q'"))
		s["{exttick}"] = fmt.Sprint(1000 + n)
		s["{retryid}"] = fmt.Sprint(2000000 + n) // the intruder's own + is its shadow
		coop := pgtest.Scalar[*int64](t, owner, "select pgq_coop.next_batch('q', 'g', 's1')")
		if coop == nil {
			t.Fatalf("no cooperative batch for the call")
		}
		s["{coopbatch}"] = fmt.Sprint(*coop)
		s["{deadletter}"] = fmt.Sprint(pgtest.Scalar[int64](t, owner,
			"select pgq.dead_letter_event($1, 1000000 + $2, now(), 1, 0, 't', 'd', null, null, null, null, 'why')", batch, s["{event}"]))
		return s
	}
	sigs := make([]string, 0, len(definerCalls))
	for sig := range definerCalls {
		sigs = append(sigs, sig)
	}
	sort.Strings(sigs)
	for i, sig := range sigs {
		sql := definerCalls[sig]
		for k, v := range state(i) {
			sql = strings.ReplaceAll(sql, k, v)
		}
		mu.Lock()
		before := len(escalations)
		mu.Unlock()
		_, err := intruder.Exec(ctx, sql)
		mu.Lock()
		got := escalations[before:]
		mu.Unlock()
		if len(got) > 0 {
			t.Errorf("%s: the intruder's code ran with other rights: %s", sig, strings.Join(dedup(got), ", "))
		}
		if err != nil {
			t.Errorf("%s: %s: %v", sig, sql, err)
		}
	}
	// the trigger's fast path really ran under the hostile path
	if n := pgtest.Scalar[int64](t, owner, "select count(*) from pgq.event_1 where ev_extra1 = 'public.evil_t' and ev_data like 'id=%&v=row'"); n != 2 {
		t.Errorf("events of the trigger's fast path under the intruder's search_path: %d, want 2", n)
	}
	if n := pgtest.Scalar[int64](t, owner, "select count(*) from pgq.event_1 where ev_extra1 = 'e1'"); n != 1 {
		t.Errorf("events of insert_event under the intruder's search_path: %d, want 1", n)
	}
}

func dedup(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
