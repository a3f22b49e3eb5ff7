-- pgq.drop_queue(name [, force]): drop a queue, its event tables, sequences,
-- ticks and retry events. Refuses while consumers are registered unless force
-- is true, in which case they are unregistered first. Returns 1.
CREATE OR REPLACE FUNCTION pgq.drop_queue(x_queue_name text, x_force boolean)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q   record;
    c   record;
BEGIN
    SELECT queue_id, queue_data_pfx, queue_event_seq, queue_tick_seq, queue_ntables INTO q
      FROM pgq.queue WHERE queue_name = x_queue_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such event queue';
    END IF;
    IF x_force THEN
        FOR c IN SELECT co.co_name FROM pgq.subscription s JOIN pgq.consumer co ON co.co_id = s.sub_consumer
                  WHERE s.sub_queue = q.queue_id ORDER BY s.sub_id
        LOOP
            PERFORM pgq.unregister_consumer(x_queue_name, c.co_name);
        END LOOP;
    ELSE
        PERFORM 1 FROM pgq.subscription WHERE sub_queue = q.queue_id;
        IF FOUND THEN
            RAISE EXCEPTION 'cannot drop queue, consumers still attached';
        END IF;
    END IF;

    DELETE FROM pgq.retry_queue WHERE ev_queue = q.queue_id;
    DELETE FROM pgq.tick WHERE tick_queue = q.queue_id;
    FOR t IN 0 .. q.queue_ntables - 1 LOOP
        EXECUTE 'DROP TABLE IF EXISTS ' || pgq.quote_fqname(q.queue_data_pfx || '_' || t);
    END LOOP;
    EXECUTE 'DROP TABLE IF EXISTS ' || pgq.quote_fqname(q.queue_data_pfx);
    EXECUTE 'DROP SEQUENCE IF EXISTS ' || pgq.quote_fqname(q.queue_event_seq);
    EXECUTE 'DROP SEQUENCE IF EXISTS ' || pgq.quote_fqname(q.queue_tick_seq);
    DELETE FROM pgq.queue WHERE queue_id = q.queue_id;
    PERFORM pgq._refresh_insert_dispatch();
    RETURN 1;
END
$$;

CREATE OR REPLACE FUNCTION pgq.drop_queue(x_queue_name text)
RETURNS integer LANGUAGE sql STRICT AS $$
    SELECT pgq.drop_queue(x_queue_name, false)
$$;
