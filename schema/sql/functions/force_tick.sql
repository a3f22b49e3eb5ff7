-- pgq.force_tick(queue): make the next ticker() run tick this queue by moving
-- its event sequence past ticker_max_count. Returns the last tick id before
-- that tick: callers poll until the last tick id changes.
CREATE OR REPLACE FUNCTION pgq.force_tick(i_queue_name text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q      record;
    v_tick bigint;
BEGIN
    SELECT queue_id, queue_event_seq, queue_ticker_max_count, queue_ticker_paused, queue_external_ticker INTO q
      FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT tick_id INTO v_tick FROM pgq.tick WHERE tick_queue = q.queue_id
     ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
    IF q.queue_ticker_paused OR q.queue_external_ticker THEN
        RETURN v_tick; -- nothing to force: this ticker does not tick the queue
    END IF;
    PERFORM pgq.seq_setval(q.queue_event_seq,
                           nextval(q.queue_event_seq) + 2 * q.queue_ticker_max_count + 1000);
    RETURN v_tick;
END
$$;
