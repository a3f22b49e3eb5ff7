-- pgq.logutriga(queue, args...): row trigger that turns INSERT/UPDATE/DELETE
-- (and, as a statement trigger, TRUNCATE) into events: ev_type 'I:pk1,pk2'
-- ('U:', 'D:'; 'R' for TRUNCATE), ev_data the row urlencoded
-- (col=value&col2&...: a NULL has no '='), ev_extra1 the table, ev_extra2 the
-- old row with 'backup' on UPDATE. Arguments: SKIP, backup, deny, ignore=,
-- pkey=, when=, ev_type= ... ev_extra4= (see ../shared/reference).
--
-- Every row pays for this body, and in PL/pgSQL the price is mostly per
-- expression and per function in it: each is prepared again in every
-- transaction, once per trigger (PL/pgSQL keeps one copy of a trigger
-- function per trigger). So the common case takes a fast path: a trigger with
-- just a queue name, on a table whose layout this session knows for this
-- operation (the setting pgqgo.lf_<op><table oid>, made by
-- pgq._trigger_layout_text), outside session_replication_role = local, is
-- handled by pgq._trigger_fast_event (generated with insert_event's dispatch
-- tree, see _refresh_insert_dispatch.sql): one function for every table, so
-- its expressions are prepared once per transaction however many tables'
-- triggers fire in it, and it writes the event itself instead of calling
-- insert_event. Everything else goes on to the general path below, which
-- handles every argument and refills the layouts.
CREATE OR REPLACE FUNCTION pgq.logutriga()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- the fast path: pgq._trigger_fast_event checks the layout and writes the
    -- event, or says no (false) and changes nothing
    IF TG_NARGS = 1 AND pgq._trigger_fast_event(TG_ARGV[0], TG_RELID, TG_OP, NEW::text, OLD::text,
                                                row_to_json(coalesce(NEW, OLD)), TG_TABLE_SCHEMA, TG_TABLE_NAME) THEN
        RETURN coalesce(NEW, OLD); -- what a BEFORE trigger returns; an AFTER trigger's is ignored
    END IF;

    -- the general path, in a block of its own: its variables are set up only
    -- when it runs
    DECLARE
        tbl       text;
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
        special   record;
        dropped   text[]; -- PgQ's special columns, left out of the data
    BEGIN
        IF TG_LEVEL <> 'ROW' AND TG_OP <> 'TRUNCATE' AND current_setting('session_replication_role') <> 'local' THEN
            RAISE EXCEPTION 'pgq Ins/Upd/Del trigger must be fired FOR EACH ROW' USING ERRCODE = 'XX000'; -- PgQ's wording
        END IF;
        tbl := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
        rec := coalesce(NEW, OLD)::text;
        -- a quoted value may hold a comma, which pgq._trigger_row_values would cut
        vals := CASE WHEN strpos(rec, '"') > 0 THEN pgq._trigger_row_urlencoded(rec)
                     ELSE pgq._trigger_row_values(rec) END;
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

        vals := vals[2 : cardinality(vals) - 1];
        IF TG_OP = 'DELETE' THEN
            js := row_to_json(OLD)::text;
        ELSE
            js := row_to_json(NEW)::text;
        END IF;
        IF strpos(js, '"_pgq_ev_') > 0 THEN
            special := pgq._trigger_special(ARRAY(SELECT json_object_keys(js::json)), overrides);
            IF special.cols IS NOT NULL THEN
                overrides := special.ovr;
                dropped := special.cols;
            END IF;
        END IF;
        lay := current_setting('pgqgo.lu_' || TG_RELID, true);
        -- the same checks as the fast path's, for every kind of layout; kinds
        -- 'P', 'N', 'K' are tables whose JSON can nest objects (json, composite
        -- columns), where a key inside a value could pass for a column name:
        -- their names are compared exactly
        IF NOT coalesce(left(lay, 1) IN ('p', 'n', 'k', 'P', 'N', 'K')
               AND split_part(lay, E'\x01', 2) = coalesce(pg_catalog.pg_get_replica_identity_index(TG_RELID)::oid::text, '')
               AND (lower(left(lay, 1)) <> 'n' OR pg_catalog.pg_indexes_size(TG_RELID) = 0)
               AND split_part(lay, E'\x01', 3)::integer = cardinality(vals)
               AND js LIKE split_part(lay, E'\x01', 4), false) THEN
            lay := pgq._trigger_layout_text(TG_RELID, js);
        ELSIF left(lay, 1) IN ('P', 'N', 'K') THEN
            IF ARRAY(SELECT json_object_keys(js::json)) IS DISTINCT FROM split_part(lay, E'\x01', 7)::text[] THEN
                lay := pgq._trigger_layout_text(TG_RELID, js);
            END IF;
        END IF;
        IF ignore IS NULL AND dropped IS NULL AND pkey_cols IS NULL AND lay IS NOT NULL THEN
            fmt := split_part(lay, E'\x01', 5);
            IF lower(left(lay, 1)) IN ('p', 'n') THEN
                pkey_cols := split_part(lay, E'\x01', 6)::text[];
            ELSE
                pkey_cols := pgq._trigger_pkey(TG_RELID);
            END IF;
        ELSE
            names := ARRAY(SELECT json_object_keys(js::json));
            fmt := pgq._urlencode_format(names, ignore || dropped);
            pkey_cols := coalesce(pkey_cols, pgq._trigger_pkey(TG_RELID));
        END IF;

        IF TG_OP IN ('UPDATE', 'DELETE') AND cardinality(pkey_cols) = 0 THEN
            RAISE EXCEPTION 'Update/Delete on table without pkey' USING ERRCODE = 'XX000';
        END IF;
        IF TG_OP = 'UPDATE' THEN
            IF backup OR ignore IS NOT NULL THEN
                oldvals := pgq._trigger_row_urlencoded(OLD::text);
                oldvals := oldvals[2 : cardinality(oldvals) - 1];
            END IF;
            old_js := row_to_json(OLD)::text;
            IF old_js IS DISTINCT FROM js THEN
                FOREACH k IN ARRAY pkey_cols LOOP
                    IF (js::json ->> k) IS DISTINCT FROM (old_js::json ->> k) THEN
                        RAISE EXCEPTION 'primary key update not allowed' USING ERRCODE = 'XX000';
                    END IF;
                END LOOP;
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
    END;
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
