-- pgq.insert_event(queue, type, data [, extra1..extra4]): add an event to a
-- queue inside the caller's transaction. Returns the event id. The event is
-- seen by consumers once the transaction commits and a tick follows. The
-- 3-argument form is plain SQL so the planner inlines it into the caller.
CREATE OR REPLACE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT pgq.insert_event(queue_name, ev_type, ev_data, NULL, NULL, NULL, NULL)
$$;

CREATE OR REPLACE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text,
        ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
-- PL/pgSQL, not SQL: a SQL function called from a prepared statement is
-- re-planned on every execution; PL/pgSQL keeps its plans per session.
-- The common case goes straight to the insert dispatcher; anything unusual
-- (unknown queue, inserts disabled, per-transaction limit) takes the full
-- path through insert_event_raw, which raises the proper errors.
DECLARE
    v_txid  bigint := pg_catalog.txid_current(); -- before reading the queue row: see insert_event_raw
    v_qid   integer;
    v_table integer;
    v_plain boolean;
    v_id    bigint;
BEGIN
    SELECT q.queue_id, q.queue_cur_table, NOT q.queue_disable_insert AND q.queue_per_tx_limit IS NULL
      INTO v_qid, v_table, v_plain
      FROM pgq.queue q WHERE q.queue_name = insert_event.queue_name;
    IF v_plain THEN
        v_id := pgq._insert_dispatch(v_qid, v_table, NULL, now(), v_txid, NULL, NULL,
                    insert_event.ev_type, insert_event.ev_data, insert_event.ev_extra1,
                    insert_event.ev_extra2, insert_event.ev_extra3, insert_event.ev_extra4);
    END IF;
    IF v_id IS NULL THEN
        v_id := pgq.insert_event_raw(queue_name, NULL, now(), NULL, NULL, ev_type, ev_data,
                                     ev_extra1, ev_extra2, ev_extra3, ev_extra4);
    END IF;
    RETURN v_id;
END
$$;
