-- pgq_ext.version(): the pgq_ext API level implemented (Skytools 3.1's).
CREATE OR REPLACE FUNCTION pgq_ext.version()
RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '3.1'::text $$;

-- pgq_ext.upgrade_schema(): structure fixes for old installations; pgqgo's
-- installer does that work, so there is never anything left to do here.
CREATE OR REPLACE FUNCTION pgq_ext.upgrade_schema()
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
