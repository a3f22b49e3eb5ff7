-- londiste.create_trigger(queue, table, args, dest table, node type): (re)make
-- the triggers that capture a replicated table's changes into the queue, on
-- the table or on its destination table: a row trigger _londiste_<queue>
-- (pgq.logutriga by default; tgflags=[BA][IUD][LQJ][S] picks timing, events,
-- trigger function and SKIP) and a statement trigger _londiste_<queue>_truncate
-- (pgq.sqltriga). A SKIP trigger (arg skip or flag S) is named
-- zzz__londiste_<queue> so it fires last, and suppresses the write. The other
-- args go to the trigger; a destination table adds ev_extra1 with the
-- table's own name; on a leaf both triggers get deny (local writes refused).
CREATE OR REPLACE FUNCTION londiste.create_trigger(i_queue_name text, i_table_name text, i_trg_args text[],
        i_dest_table text, i_node_type text, OUT ret_code integer, OUT ret_note text, OUT trigger_name text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_tbl     text := londiste.make_fqname(coalesce(i_dest_table, i_table_name));
    v_flags   text := 'AIUDL';
    v_skip    boolean := false;
    v_args    text[] := '{}';
    v_events  text[] := '{}';
    v_func    text := 'pgq.logutriga';
    v_when    text := 'AFTER';
    v_trunc   text[] := '{}';
    a         text;
BEGIN
    FOREACH a IN ARRAY coalesce(i_trg_args, '{}') LOOP
        IF a LIKE 'tgflags=%' THEN
            v_flags := substr(a, 9);
        ELSIF a = 'skip' THEN
            v_skip := true;
        ELSIF a IN ('no_triggers', 'expect_sync', 'merge_all', 'no_merge', 'virtual_table') THEN
            NULL; -- londiste's own options, not the trigger's
        ELSE
            v_args := v_args || a;
        END IF;
    END LOOP;
    IF strpos(v_flags, 'S') > 0 THEN
        v_skip := true;
    END IF;
    IF strpos(v_flags, 'B') > 0 THEN
        v_when := 'BEFORE';
    END IF;
    IF strpos(v_flags, 'I') > 0 THEN v_events := v_events || 'INSERT'::text; END IF;
    IF strpos(v_flags, 'U') > 0 THEN v_events := v_events || 'UPDATE'::text; END IF;
    IF strpos(v_flags, 'D') > 0 THEN v_events := v_events || 'DELETE'::text; END IF;
    IF cardinality(v_events) = 0 THEN
        v_events := ARRAY['INSERT', 'UPDATE', 'DELETE'];
    END IF;
    IF strpos(v_flags, 'J') > 0 THEN
        v_func := 'pgq.jsontriga';
    ELSIF strpos(v_flags, 'Q') > 0 THEN
        v_func := 'pgq.sqltriga';
    END IF;
    IF i_dest_table IS NOT NULL THEN
        v_args := v_args || ('ev_extra1=' || quote_literal(i_table_name));
    END IF;
    IF i_node_type = 'leaf' THEN
        v_args := v_args || 'deny'::text;
        v_trunc := v_trunc || 'deny'::text;
    END IF;
    IF NOT v_skip AND v_when = 'AFTER' AND EXISTS (
            SELECT 1 FROM pg_catalog.pg_trigger t
             WHERE t.tgrelid = londiste.find_table_oid(v_tbl) AND t.tgname = 'zzz__londiste_' || i_queue_name) THEN
        ret_code := 403;
        ret_note := 'AFTER trigger cannot work with SKIP trigger(s)';
        RETURN;
    END IF;
    PERFORM londiste.drop_table_triggers(i_queue_name, v_tbl);
    IF v_skip THEN
        trigger_name := 'zzz__londiste_' || i_queue_name;
        v_args := v_args || 'SKIP'::text;
    ELSE
        trigger_name := '_londiste_' || i_queue_name;
    END IF;
    EXECUTE format('CREATE TRIGGER %I %s %s ON %s FOR EACH ROW EXECUTE PROCEDURE %s(%s)',
                   trigger_name, v_when, array_to_string(v_events, ' OR '), londiste.quote_fqname(v_tbl), v_func,
                   (SELECT string_agg(quote_literal(x), ', ' ORDER BY o)
                      FROM unnest(ARRAY[i_queue_name] || v_args) WITH ORDINALITY u(x, o)));
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE PROCEDURE pgq.sqltriga(%s)',
                   '_londiste_' || i_queue_name || '_truncate', londiste.quote_fqname(v_tbl),
                   (SELECT string_agg(quote_literal(x), ', ' ORDER BY o)
                      FROM unnest(ARRAY[i_queue_name] || v_trunc) WITH ORDINALITY u(x, o)));
    ret_code := 200;
    ret_note := 'Trigger created';
END
$$;
