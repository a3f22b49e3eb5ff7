-- PgQ 2.1's pgq.logtriga(queue, spec), the column-spec form of sqltriga that
-- PgQ 3 dropped: spec has one letter per column in column order, k (key),
-- v (data) or i (ignored; also every column past the spec's end); events are
-- sqltriga's (I/U/D, partial SQL, ev_extra1 the table). pgqgo makes it only
-- where it exists already (a PgQ 2.1 installation it adopted, whose tables'
-- triggers use it): pgq._refresh_logtriga() rewrites it, at every install,
-- as pgq.sqltriga's body reading its options from the spec.

-- pgq._logtriga_args(args, table): logtriga's arguments as sqltriga's
-- (queue, pkey=..., ignore=...).
CREATE OR REPLACE FUNCTION pgq._logtriga_args(args text[], tbl oid)
RETURNS text[] LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keys   text[] := '{}';
    ignore text[] := '{}';
    col    record;
    kind   text;
    pos    integer := 0;
    queue  text;
    spec   text;
BEGIN
    -- a third argument, the table's name, is what londiste 2.1 passes
    -- (londiste.provider_create_trigger); events name the table itself, as
    -- PgQ's C logtriga does
    IF coalesce(cardinality(args), 0) NOT IN (2, 3) THEN
        RAISE EXCEPTION 'pgq.logtriga takes 2 or 3 arguments (queue name, column type spec[, table name]), got %', coalesce(cardinality(args), 0);
    END IF;
    -- TG_ARGV counts from 0: go by the array's own bounds
    queue := args[array_lower(args, 1)];
    spec := args[array_lower(args, 1) + 1];
    IF spec IS NULL OR spec !~ '^[kvi]*$' THEN
        RAISE EXCEPTION 'pgq.logtriga: bad column type spec %: one of k (key), v (data), i (ignore) per column',
            coalesce(quote_literal(spec), 'NULL');
    END IF;
    FOR col IN SELECT a.attname::text AS name FROM pg_attribute a
                WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LOOP
        pos := pos + 1;
        kind := coalesce(nullif(substr(spec, pos, 1), ''), 'i');
        IF kind = 'k' THEN
            keys := keys || col.name;
        ELSIF kind = 'i' THEN
            ignore := ignore || col.name;
        END IF;
    END LOOP;
    IF cardinality(keys) = 0 THEN
        RAISE EXCEPTION 'pgq.logtriga: column type spec % has no key column (k) among the table''s % columns', quote_literal(spec), pos;
    END IF;
    RETURN ARRAY[queue]
        || CASE WHEN cardinality(keys) > 0 THEN ARRAY['pkey=' || array_to_string(keys, ',')] ELSE '{}'::text[] END
        || CASE WHEN cardinality(ignore) > 0 THEN ARRAY['ignore=' || array_to_string(ignore, ',')] ELSE '{}'::text[] END;
END
$$;

-- pgq._refresh_logtriga(): makes pgq.logtriga() pgqgo's where it exists;
-- reports whether it does.
CREATE OR REPLACE FUNCTION pgq._refresh_logtriga()
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src    text;
    marker text := 'o := pgq._trigger_args(TG_ARGV,';
BEGIN
    IF to_regprocedure('pgq.logtriga()') IS NULL THEN
        RETURN false;
    END IF;
    SELECT p.prosrc INTO src FROM pg_proc p WHERE p.oid = 'pgq.sqltriga()'::regprocedure;
    IF strpos(src, marker) = 0 THEN
        RAISE EXCEPTION 'pgq.sqltriga() is not pgqgo''s: pgq.logtriga() cannot be made from it';
    END IF;
    src := replace(src, marker, 'o := pgq._trigger_args(pgq._logtriga_args(TG_ARGV, TG_RELID),');
    EXECUTE 'CREATE OR REPLACE FUNCTION pgq.logtriga() RETURNS trigger LANGUAGE plpgsql AS ' || quote_literal(src);
    EXECUTE 'COMMENT ON FUNCTION pgq.logtriga() IS '
        || quote_literal('PgQ 2.1''s column-spec trigger (queue, k/v/i per column), kept by pgqgo for the tables that use it');
    RETURN true;
END
$$;
