-- pgq.maint_retry_events(): move retry events whose time has come back into
-- their queue's current event table, owned by their consumer. Works in chunks
-- of at most 10 events (as PgQ 3.5 does): call until it returns 0.
CREATE OR REPLACE FUNCTION pgq.maint_retry_events()
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    ev      record;
    v_count integer := 0;
BEGIN
    FOR ev IN
        SELECT r.ev_owner, r.ev_id, r.ev_time, r.ev_retry, r.ev_type, r.ev_data,
               r.ev_extra1, r.ev_extra2, r.ev_extra3, r.ev_extra4, q.queue_name
          FROM pgq.retry_queue r JOIN pgq.queue q ON q.queue_id = r.ev_queue
         WHERE r.ev_retry_after <= now()
         ORDER BY r.ev_retry_after
         LIMIT 10
           FOR UPDATE OF r SKIP LOCKED
    LOOP
        PERFORM pgq.insert_event_raw(ev.queue_name, ev.ev_id, ev.ev_time, ev.ev_owner, ev.ev_retry,
                                     ev.ev_type, ev.ev_data, ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4);
        DELETE FROM pgq.retry_queue WHERE ev_owner = ev.ev_owner AND ev_id = ev.ev_id;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;
