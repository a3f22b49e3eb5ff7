-- pgq.sqltriga(queue, args...): like logutriga, but ev_data is the change as
-- SQL fragments: I "(cols) values (...)", U "col='v',... where pk='v' and ...",
-- D "pk='v' and ...", R '' for TRUNCATE; ev_type is just I/U/D/R. An UPDATE
-- that changes only ignored columns makes no event; one that changes nothing
-- assigns the key to itself. UPDATE and DELETE need a key.
CREATE OR REPLACE FUNCTION pgq.sqltriga()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o        record;
    c        record;
    tbl      text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    vals     text[];
    oldvals  text[];
    ev       text[];
    r        record;
    sets     text[] := '{}';
    conds    text[] := '{}';
    changed  integer[];
    i        integer;
    data     text;
    special  record;
    ign      text[];
BEGIN
    IF TG_LEVEL <> 'ROW' AND TG_OP <> 'TRUNCATE' AND current_setting('session_replication_role') <> 'local' THEN
        RAISE EXCEPTION 'pgq Ins/Upd/Del trigger must be fired FOR EACH ROW' USING ERRCODE = 'XX000'; -- PgQ's wording
    END IF;
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
    special := pgq._trigger_special(c.names, o.overrides);
    ign := o.ignore_cols || special.cols; -- PgQ's special columns are not data
    vals := pgq._record_fields(r::text);
    IF TG_OP = 'UPDATE' THEN
        oldvals := pgq._record_fields(OLD::text);
        -- (as the C sqltriga: a change of special columns only is no event)
        changed := pgq._trigger_changes(c.names, c.is_pkey, vals, oldvals, ign);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND cardinality(c.pkey) = 0 THEN
        RAISE EXCEPTION 'Update/Delete on table without pkey' USING ERRCODE = 'XX000';
    END IF;
    IF o.when_expr IS NOT NULL AND NOT pgq._trigger_when(o.when_expr, r) THEN
        IF TG_WHEN = 'BEFORE' THEN
            RETURN r;
        END IF;
        RETURN NULL;
    END IF;

    FOR i IN 1 .. array_length(c.names, 1) LOOP
        IF c.is_pkey[i] THEN
            conds := conds || (quote_ident(c.names[i]) || '=' || coalesce(quote_literal(vals[i]), 'NULL'));
        END IF;
    END LOOP;
    IF TG_OP = 'INSERT' THEN
        SELECT '(' || string_agg(quote_ident(n), ',' ORDER BY ord) || ') values ('
               || string_agg(coalesce(quote_literal(v), 'null'), ',' ORDER BY ord) || ')'
          INTO data
          FROM unnest(c.names, vals) WITH ORDINALITY AS x(n, v, ord)
         WHERE ign IS NULL OR NOT n = ANY (ign);
    ELSIF TG_OP = 'UPDATE' THEN
        IF changed IS NULL THEN
            -- only ignored columns changed: no event
            IF TG_WHEN = 'BEFORE' THEN
                RETURN r;
            END IF;
            RETURN NULL;
        END IF;
        FOREACH i IN ARRAY changed LOOP
            sets := sets || (quote_ident(c.names[i]) || '=' || coalesce(quote_literal(vals[i]), 'NULL'));
        END LOOP;
        IF cardinality(sets) = 0 THEN
            sets := conds[1:1]; -- nothing changed: the first key column (in table order) is assigned to itself
        END IF;
        data := array_to_string(sets, ',') || ' where ' || array_to_string(conds, ' and ');
    ELSE
        data := array_to_string(conds, ' and ');
    END IF;

    ev := ARRAY[left(TG_OP, 1), data, tbl, NULL, NULL, NULL];
    IF o.backup AND TG_OP = 'UPDATE' THEN
        ev[4] := pgq._urlencode_row(c.names, oldvals, ign);
    END IF;
    PERFORM pgq._trigger_emit(o.queue, special.ovr, ev, r);
    IF TG_WHEN = 'BEFORE' THEN
        IF o.skip THEN
            RETURN NULL;
        END IF;
        RETURN r;
    END IF;
    RETURN NULL;
END
$$;
