-- pgq.dead_letter_event(batch, event fields..., reason): keep an event of an
-- open batch in pgq.dead_letter instead of retrying it again. The queue and
-- consumer are those of the batch. Returns the dead-letter id.
-- Touches pgq.subscription (read), pgq.dead_letter.
CREATE OR REPLACE FUNCTION pgq.dead_letter_event(i_batch_id bigint, i_ev_id bigint, i_ev_time timestamptz,
        i_ev_txid bigint, i_ev_retry integer, i_ev_type text, i_ev_data text,
        i_ev_extra1 text, i_ev_extra2 text, i_ev_extra3 text, i_ev_extra4 text, i_reason text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_queue    text;
    v_consumer text;
    v_id       bigint;
BEGIN
    SELECT q.queue_name, c.co_name INTO v_queue, v_consumer
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE s.sub_batch = i_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'batch not found: %', i_batch_id;
    END IF;
    INSERT INTO pgq.dead_letter (dl_queue, dl_consumer, dl_reason, ev_id, ev_time, ev_txid, ev_retry,
                                 ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    VALUES (v_queue, v_consumer, i_reason, i_ev_id, i_ev_time, i_ev_txid, i_ev_retry,
            i_ev_type, i_ev_data, i_ev_extra1, i_ev_extra2, i_ev_extra3, i_ev_extra4)
    RETURNING dl_id INTO v_id;
    RETURN v_id;
END
$$;

-- pgq.dead_letter_replay(dl_id): hand a dead-lettered event back to the
-- consumer that gave up on it (only that consumer), through its retry queue:
-- the next retry maintenance puts it into the queue again. The dead-letter row
-- is removed. Returns the event id, NULL when there is no such row.
-- Touches pgq.dead_letter, pgq.retry_queue.
CREATE OR REPLACE FUNCTION pgq.dead_letter_replay(i_dl_id bigint)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    d pgq.dead_letter%ROWTYPE;
BEGIN
    DELETE FROM pgq.dead_letter WHERE dl_id = i_dl_id RETURNING * INTO d;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN pgq.event_retry_raw(d.dl_queue, d.dl_consumer, now(), d.ev_id, d.ev_time, d.ev_retry,
                               d.ev_type, d.ev_data, d.ev_extra1, d.ev_extra2, d.ev_extra3, d.ev_extra4);
END
$$;
