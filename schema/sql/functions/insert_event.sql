-- pgq.insert_event(queue, type, data [, extra1..extra4]): add an event to a
-- queue inside the caller's transaction. Returns the event id. The event is
-- seen by consumers once the transaction commits and a tick follows.
CREATE OR REPLACE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT pgq.insert_event(queue_name, ev_type, ev_data, NULL, NULL, NULL, NULL)
$$;

CREATE OR REPLACE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text,
        ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$
    SELECT pgq.insert_event_raw(queue_name, NULL, now(), NULL, NULL, ev_type, ev_data,
                                ev_extra1, ev_extra2, ev_extra3, ev_extra4)
$$;
