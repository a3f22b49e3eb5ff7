-- londiste.upgrade_schema(): Skytools' in-place fixes of older londiste
-- tables; pgqgo's installer does that work, so there is never anything left.
CREATE OR REPLACE FUNCTION londiste.upgrade_schema()
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN 0;
END
$$;
