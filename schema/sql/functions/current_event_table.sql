-- pgq.current_event_table(queue): the event table that inserts go to right
-- now. Writers that bypass insert_event (COPY) must write here and must stop
-- using the name when the queue rotates (re-read it per transaction). A queue
-- with inserts disabled refuses, except to a replica session
-- (session_replication_role = replica), which may still write.
CREATE OR REPLACE FUNCTION pgq.current_event_table(x_queue_name text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v         text;
    v_disable boolean;
BEGIN
    SELECT queue_data_pfx || '_' || queue_cur_table::text, queue_disable_insert INTO v, v_disable
      FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Event queue not found';
    END IF;
    IF v_disable AND current_setting('session_replication_role') <> 'replica' THEN
        RAISE EXCEPTION 'Writing to queue disabled';
    END IF;
    RETURN v;
END
$$;
