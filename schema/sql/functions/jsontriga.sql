-- pgq.jsontriga(queue, args...): like logutriga, but ev_type is
-- {"op":"INSERT","table":["schema","table"],"pkey":[...]} and ev_data the row
-- as a JSON object: integers as numbers, booleans as true/false, dates and
-- timestamps in ISO form, everything else as the string of its text output.
CREATE OR REPLACE FUNCTION pgq.jsontriga()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o       record;
    c       record;
    tbl     text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    vals    text[];
    oldvals text[];
    jvals   text[];
    ev      text[];
    r       record;
    evtype  text;
    special record;
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
    c := pgq._trigger_columns(TG_RELID, o.pkey_cols);
    evtype := '{"op":' || to_json(TG_OP::text)::text || ',"table":[' || to_json(TG_TABLE_SCHEMA::text)::text || ','
              || to_json(TG_TABLE_NAME::text)::text || '],"pkey":['
              || coalesce((SELECT string_agg(to_json(p)::text, ',') FROM unnest(c.pkey) AS p), '') || ']}';
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pgq.insert_event(o.queue, evtype, '{}', tbl, NULL, NULL, NULL);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND cardinality(c.pkey) = 0 THEN
        RAISE EXCEPTION 'Update/Delete on table without pkey' USING ERRCODE = 'XX000';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        vals := pgq._record_fields(NEW::text);
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
    special := pgq._trigger_special(c.names, o.overrides); -- PgQ's special columns are not data
    EXECUTE pgq._trigger_json_sql(c.names, c.types) INTO jvals USING r;
    ev := ARRAY[evtype, pgq._json_row(c.names, jvals, o.ignore_cols || special.cols), tbl, NULL, NULL, NULL];
    IF o.backup AND TG_OP = 'UPDATE' THEN
        EXECUTE pgq._trigger_json_sql(c.names, c.types) INTO jvals USING OLD;
        ev[4] := pgq._json_row(c.names, jvals, o.ignore_cols || special.cols);
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

-- pgq._trigger_json_sql(names, types): a query giving each column of $1 as a
-- JSON value text.
CREATE OR REPLACE FUNCTION pgq._trigger_json_sql(names text[], types oid[])
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'SELECT ARRAY[' || string_agg(
        format('CASE WHEN ($1).%1$I IS NULL THEN ''null'' ELSE %2$s END', n,
               CASE
                   WHEN t IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN format('(($1).%I)::text', n)
                   WHEN t = 'bool'::regtype THEN format('CASE WHEN ($1).%I THEN ''true'' ELSE ''false'' END', n)
                   WHEN t IN ('timestamp'::regtype, 'timestamptz'::regtype, 'date'::regtype) THEN format('to_json(($1).%I)::text', n)
                   ELSE format('to_json(concat(($1).%I))::text', n)
               END), ', ' ORDER BY ord) || ']::text[]'
      FROM unnest(names, types) WITH ORDINALITY AS x(n, t, ord)
$$;

-- pgq._json_row(names, json values, ignore): the JSON object of a row.
CREATE OR REPLACE FUNCTION pgq._json_row(names text[], jvals text[], ignore_cols text[])
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '{' || coalesce(string_agg(to_json(n)::text || ':' || v, ',' ORDER BY ord), '') || '}'
      FROM unnest(names, jvals) WITH ORDINALITY AS x(n, v, ord)
     WHERE ignore_cols IS NULL OR NOT n = ANY (ignore_cols)
$$;
