-- pgq.insert_event(queue, type, data [, extra1..extra4]): add an event to a
-- queue inside the caller's transaction. Returns the event id. The event is
-- seen by consumers once the transaction commits and a tick follows. The
-- 3-argument form is plain SQL so the planner inlines it into the caller.
CREATE OR REPLACE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT pgq.insert_event(queue_name, ev_type, ev_data, NULL, NULL, NULL, NULL)
$$;

-- The 7-argument form, the hot path, is generated code: see
-- _refresh_insert_dispatch.sql, which writes it with a static INSERT per event
-- table whenever queues are created or dropped (and at install).
