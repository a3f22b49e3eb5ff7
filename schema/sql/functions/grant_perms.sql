-- pgq.grant_perms(queue): give the PgQ roles their rights on a queue's event
-- tables (copied from pgq.event_template) and sequences. Returns 1.
CREATE OR REPLACE FUNCTION pgq.grant_perms(x_queue_name text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q record;
BEGIN
    SELECT queue_data_pfx, queue_ntables, queue_event_seq, queue_tick_seq INTO q
      FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Queue not found';
    END IF;
    PERFORM pgq._grant_perms_from('pgq', 'event_template', 'pgq', substr(q.queue_data_pfx, 5));
    FOR t IN 0 .. q.queue_ntables - 1 LOOP
        PERFORM pgq._grant_perms_from('pgq', 'event_template', 'pgq', substr(q.queue_data_pfx, 5) || '_' || t);
    END LOOP;
    EXECUTE 'GRANT SELECT ON ' || pgq.quote_fqname(q.queue_event_seq) || ' TO PUBLIC';
    EXECUTE 'GRANT SELECT ON ' || pgq.quote_fqname(q.queue_tick_seq) || ' TO PUBLIC';
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_admin') THEN
        EXECUTE 'GRANT USAGE ON ' || pgq.quote_fqname(q.queue_event_seq) || ' TO pgq_admin';
    END IF;
    RETURN 1;
END
$$;
