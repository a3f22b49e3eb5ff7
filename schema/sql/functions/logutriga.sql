-- pgq.logutriga(queue, args...): row trigger that turns INSERT/UPDATE/DELETE
-- (and, as a statement trigger, TRUNCATE) into events: ev_type 'I:pk1,pk2'
-- ('U:', 'D:'; 'R' for TRUNCATE), ev_data the row urlencoded
-- (col=value&col2&...: a NULL has no '='), ev_extra1 the table, ev_extra2 the
-- old row with 'backup' on UPDATE. Arguments: SKIP, backup, deny, ignore=,
-- pkey=, when=, ev_type= ... ev_extra4= (see ../shared/reference).
CREATE OR REPLACE FUNCTION pgq.logutriga()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o       record;
    c       record;
    tbl     text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    vals    text[];
    oldvals text[];
    ev      text[];
    r       record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    o := pgq._trigger_args(TG_ARGV, TG_WHEN, TG_OP, tbl);
    IF o.queue IS NULL THEN
        -- session_replication_role = local: no event, no deny, no SKIP (as the C triggers)
        IF TG_WHEN = 'BEFORE' THEN
            RETURN r;
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pgq.insert_event(o.queue, 'R', '', tbl, NULL, NULL, NULL);
        RETURN NULL;
    END IF;
    c := pgq._trigger_layout(TG_RELID, o.pkey_cols, row_to_json(r));
    vals := pgq._record_fields(r::text);
    IF TG_OP = 'UPDATE' THEN
        oldvals := pgq._record_fields(OLD::text);
        -- a change of ignored columns only is no event (a change of nothing is)
        IF pgq._trigger_changes(c.names, c.is_pkey, vals, oldvals, o.ignore_cols) IS NULL THEN
            IF TG_WHEN = 'BEFORE' THEN
                RETURN NEW;
            END IF;
            RETURN NULL;
        END IF;
    END IF;
    IF o.when_expr IS NOT NULL AND NOT pgq._trigger_when(o.when_expr, r) THEN
        IF TG_WHEN = 'BEFORE' THEN
            RETURN r;
        END IF;
        RETURN NULL;
    END IF;
    ev := ARRAY[left(TG_OP, 1) || ':' || array_to_string(c.pkey, ','),
                pgq._urlencode_row(c.names, vals, o.ignore_cols), tbl, NULL, NULL, NULL];
    IF o.backup AND TG_OP = 'UPDATE' THEN
        ev[4] := pgq._urlencode_row(c.names, oldvals, o.ignore_cols);
    END IF;
    PERFORM pgq._trigger_emit(o.queue, o.overrides, ev, r);
    IF TG_WHEN = 'BEFORE' THEN
        IF o.skip THEN
            RETURN NULL;
        END IF;
        RETURN r;
    END IF;
    RETURN NULL;
END
$$;

-- pgq._urlencode_row(names, values, ignore): name=value&name2... in column
-- order, ignored columns left out, NULL values without '='.
CREATE OR REPLACE FUNCTION pgq._urlencode_row(names text[], vals text[], ignore_cols text[])
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out text := '';
BEGIN
    FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
        CONTINUE WHEN ignore_cols IS NOT NULL AND names[i] = ANY (ignore_cols);
        IF out <> '' THEN
            out := out || '&';
        END IF;
        out := out || pgq._urlencode(names[i]);
        IF vals[i] IS NOT NULL THEN
            out := out || '=' || pgq._urlencode(vals[i]);
        END IF;
    END LOOP;
    RETURN out;
END
$$;
