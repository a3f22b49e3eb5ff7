-- pgq.maint_tables_to_vacuum(): the small, hot PgQ tables that need frequent
-- VACUUM. Empty when autovacuum is on (it looks after them then).
CREATE OR REPLACE FUNCTION pgq.maint_tables_to_vacuum()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    IF current_setting('autovacuum') = 'on' THEN
        RETURN;
    END IF;
    FOREACH t IN ARRAY ARRAY['pgq.subscription', 'pgq.consumer', 'pgq.queue', 'pgq.tick', 'pgq.retry_queue'] LOOP
        IF to_regclass(t) IS NOT NULL THEN
            RETURN NEXT t;
        END IF;
    END LOOP;
END
$$;
