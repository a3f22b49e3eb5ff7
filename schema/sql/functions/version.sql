-- pgq.version(): the PgQ API level this schema implements. Tools compare it
-- with '3' or '3.x', so it is the bare API level, exactly as PgQ 3.5 reports.
-- pgqgo's own release is pgq.pgqgo_version().
CREATE OR REPLACE FUNCTION pgq.version()
RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '3.5'::text $$;

-- pgq.pgqgo_version(): the pgqgo release that installed or last upgraded the
-- schema, and its migration level, e.g. '0.1.0 (migration 1)'.
CREATE OR REPLACE FUNCTION pgq.pgqgo_version()
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT release || ' (migration ' || migration || ')' FROM pgq.pgqgo_schema
$$;
