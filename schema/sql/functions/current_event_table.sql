-- pgq.current_event_table(queue): the event table that inserts go to right
-- now. Writers that bypass insert_event (COPY) must write here and must stop
-- using the name when the queue rotates (re-read it per transaction).
CREATE OR REPLACE FUNCTION pgq.current_event_table(x_queue_name text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    SELECT queue_data_pfx || '_' || queue_cur_table::text INTO v
      FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Event queue not found';
    END IF;
    RETURN v;
END
$$;
