-- pgq_coop.version(): the pgq_coop API level implemented (Skytools 3.1's).
CREATE OR REPLACE FUNCTION pgq_coop.version()
RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '3.1.1'::text $$;
