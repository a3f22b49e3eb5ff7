-- pgq.logutriga(queue, args...): row trigger that turns INSERT/UPDATE/DELETE
-- (and, as a statement trigger, TRUNCATE) into events: ev_type 'I:pk1,pk2'
-- ('U:', 'D:'; 'R' for TRUNCATE), ev_data the row urlencoded
-- (col=value&col2&...: a NULL has no '='), ev_extra1 the table, ev_extra2 the
-- old row with 'backup' on UPDATE. Arguments: SKIP, backup, deny, ignore=,
-- pkey=, when=, ev_type= ... ev_extra4= (see ../shared/reference).
--
-- Every row pays for this body, so the common case is a handful of cheap
-- statements and no catalogue query: a queue name alone needs no argument
-- parsing; the table's layout (names, key) is remembered per session and
-- checked against each row (pgq._trigger_layout_text); the row's text is
-- urlencoded in a few pieces (pgq._record_urlencoded) and put after the
-- column names by a single format().
CREATE OR REPLACE FUNCTION pgq.logutriga()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tbl       text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    o         record;
    queue     text;
    backup    boolean := false;
    skip      boolean := false;
    ignore    text[];
    pkey_cols text[];
    when_expr text;
    overrides text[];
    rec       text;
    js        text;
    lay       text;
    vals      text[];
    oldvals   text[];
    names     text[];
    fmt       text;
    old_js    text;
    k         text;
    data      text;
    old_data  text;
    ev_id     bigint;
BEGIN
    IF TG_NARGS = 1 AND current_setting('session_replication_role') <> 'local' THEN
        queue := TG_ARGV[0];
    ELSE
        o := pgq._trigger_args(TG_ARGV, TG_WHEN, TG_OP, tbl);
        IF o.queue IS NULL THEN
            -- session_replication_role = local: no event, no deny, no SKIP (as the C triggers)
            IF TG_WHEN = 'BEFORE' THEN
                IF TG_OP = 'DELETE' THEN
                    RETURN OLD;
                END IF;
                RETURN NEW;
            END IF;
            RETURN NULL;
        END IF;
        queue := o.queue;
        backup := o.backup;
        skip := o.skip;
        ignore := o.ignore_cols;
        pkey_cols := o.pkey_cols;
        when_expr := o.when_expr;
        IF o.overrides <> '{NULL,NULL,NULL,NULL,NULL,NULL}' THEN
            overrides := o.overrides;
        END IF;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pgq.insert_event(queue, 'R', '', tbl, NULL, NULL, NULL);
        RETURN NULL;
    END IF;

    IF TG_OP = 'DELETE' THEN
        rec := OLD::text;
        js := row_to_json(OLD)::text;
    ELSE
        rec := NEW::text;
        js := row_to_json(NEW)::text;
    END IF;
    IF rec ~ '^\([A-Za-z0-9_.,-]*\)$' THEN
        -- nothing to encode
        vals := string_to_array('=' || replace(substr(rec, 2, length(rec) - 2), ',', ',='), ',', '=');
    ELSIF rec ~ '^\((?:[A-Za-z0-9_.:+-]*|"[A-Za-z0-9_.:+ -]+")(?:,(?:[A-Za-z0-9_.:+-]*|"[A-Za-z0-9_.:+ -]+"))*\)$' THEN
        -- only spaces (always quoted), ':' and '+' to encode, and no comma,
        -- quote or backslash inside the quotes (timestamps, padded text):
        -- the quotes can go, the rest is encoded character by character
        vals := string_to_array('=' || replace(replace(replace(replace(replace(
                    substr(rec, 2, length(rec) - 2), '"', ''), '+', '%2b'), ':', '%3a'), ' ', '+'), ',', ',='), ',', '=');
    ELSE
        vals := pgq._record_urlencoded(rec);
    END IF;
    lay := nullif(current_setting('pgqgo.lt_' || TG_RELID, true), ''); -- '' after a rollback
    IF lay IS NULL
       OR substr(split_part(lay, E'\x01', 1), 2) <> coalesce(pg_catalog.pg_get_replica_identity_index(TG_RELID)::oid::text, '')
       OR split_part(lay, E'\x01', 2)::integer <> cardinality(vals)
       OR js NOT LIKE split_part(lay, E'\x01', 3) THEN
        lay := pgq._trigger_layout_text(TG_RELID, js);
    END IF;
    IF ignore IS NULL AND pkey_cols IS NULL AND lay IS NOT NULL THEN
        fmt := split_part(lay, E'\x01', 4);
        IF left(lay, 1) = 'p' THEN
            pkey_cols := split_part(lay, E'\x01', 5)::text[];
        ELSIF lay LIKE E'-\x01%' AND NOT (SELECT c.relhasindex FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID) THEN
            pkey_cols := '{}'; -- no identity index and never had an index: no key
        ELSE
            pkey_cols := pgq._trigger_pkey(TG_RELID);
        END IF;
    ELSE
        names := ARRAY(SELECT json_object_keys(js::json));
        fmt := pgq._urlencode_format(names, ignore);
        pkey_cols := coalesce(pkey_cols, pgq._trigger_pkey(TG_RELID));
    END IF;

    IF TG_OP = 'UPDATE' THEN
        old_js := row_to_json(OLD)::text;
        IF old_js IS DISTINCT FROM js THEN
            FOREACH k IN ARRAY pkey_cols LOOP
                IF (js::json ->> k) IS DISTINCT FROM (old_js::json ->> k) THEN
                    RAISE EXCEPTION 'primary key update not allowed' USING ERRCODE = 'XX000';
                END IF;
            END LOOP;
        END IF;
        IF backup OR ignore IS NOT NULL THEN
            oldvals := pgq._record_urlencoded(OLD::text);
        END IF;
        -- a change of ignored columns only is no event (a change of nothing
        -- is); nested, because a condition with a subquery is run as a query
        -- even when its first part is false
        IF ignore IS NOT NULL AND vals IS DISTINCT FROM oldvals THEN
            IF NOT EXISTS (SELECT FROM unnest(names, vals, oldvals) AS x(n, v, ov)
                            WHERE v IS DISTINCT FROM ov AND NOT n = ANY (ignore)) THEN
                IF TG_WHEN = 'BEFORE' THEN
                    RETURN NEW;
                END IF;
                RETURN NULL;
            END IF;
        END IF;
    END IF;

    IF when_expr IS NOT NULL THEN
        IF NOT (CASE WHEN TG_OP = 'DELETE' THEN pgq._trigger_when(when_expr, OLD)
                     ELSE pgq._trigger_when(when_expr, NEW) END) THEN
            IF TG_WHEN = 'BEFORE' THEN
                IF TG_OP = 'DELETE' THEN
                    RETURN OLD;
                END IF;
                RETURN NEW;
            END IF;
            RETURN NULL;
        END IF;
    END IF;

    data := format(fmt, VARIADIC vals);
    IF strpos(data, '=*') > 0 THEN
        data := replace(data, '=*', '=');
    END IF;
    IF backup AND TG_OP = 'UPDATE' THEN
        old_data := replace(format(fmt, VARIADIC oldvals), '=*', '=');
    END IF;

    IF overrides IS NULL THEN
        ev_id := pgq.insert_event(queue, left(TG_OP, 1) || ':' || array_to_string(pkey_cols, ','), data, tbl, old_data, NULL, NULL);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pgq._trigger_emit(queue, overrides, ARRAY[left(TG_OP, 1) || ':' || array_to_string(pkey_cols, ','), data, tbl, old_data, NULL, NULL], OLD);
    ELSE
        PERFORM pgq._trigger_emit(queue, overrides, ARRAY[left(TG_OP, 1) || ':' || array_to_string(pkey_cols, ','), data, tbl, old_data, NULL, NULL], NEW);
    END IF;
    IF TG_WHEN = 'BEFORE' THEN
        IF skip THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RETURN NULL;
END
$$;

-- pgq._urlencode_row(names, values, ignore): name=value&name2... in column
-- order, ignored columns left out, NULL values without '='.
CREATE OR REPLACE FUNCTION pgq._urlencode_row(names text[], vals text[], ignore_cols text[])
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out text;
    n   text;
    v   text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
        n := names[i];
        CONTINUE WHEN ignore_cols IS NOT NULL AND n = ANY (ignore_cols);
        IF n !~ '^[A-Za-z0-9_.-]*$' THEN
            n := pgq._urlencode(n);
        END IF;
        v := vals[i];
        IF v IS NULL THEN
            out := concat(out || '&', n);
        ELSIF v ~ '^[A-Za-z0-9_.-]*$' THEN
            out := concat(out || '&', n, '=', v);
        ELSE
            out := concat(out || '&', n, '=', pgq._urlencode(v));
        END IF;
    END LOOP;
    RETURN coalesce(out, '');
END
$$;
