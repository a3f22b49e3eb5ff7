-- pgq.tune_storage(queue): storage options for the event tables. They are only
-- ever inserted into and truncated, so pages are packed full and autovacuum
-- has nothing to do there. Returns 1.
CREATE OR REPLACE FUNCTION pgq.tune_storage(i_queue_name text)
RETURNS integer LANGUAGE plpgsql STRICT AS $$
DECLARE
    q record;
BEGIN
    SELECT queue_data_pfx, queue_ntables INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such queue';
    END IF;
    FOR t IN 0 .. q.queue_ntables - 1 LOOP
        EXECUTE 'ALTER TABLE ' || pgq.quote_fqname(q.queue_data_pfx || '_' || t)
             || ' SET (fillfactor = 100, autovacuum_enabled = off, toast.autovacuum_enabled = off)';
    END LOOP;
    RETURN 1;
END
$$;
