-- pgq.upgrade_schema(): PgQ's in-database structure fix-up hook. pgqgo
-- upgrades through `pgqgo install` (versioned migrations), so there is never
-- anything left to fix here. Returns the number of fixes applied: 0.
CREATE OR REPLACE FUNCTION pgq.upgrade_schema()
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
