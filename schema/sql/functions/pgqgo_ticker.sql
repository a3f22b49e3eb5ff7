-- pgq.pgqgo_ticker(min_interval): pgqgo's low-latency tick (not in PgQ 3.5).
-- Ticks every queue with its own ticker, not paused, that has events newer
-- than its last tick, once min_interval has passed since that tick; ignores
-- ticker_max_count/ticker_max_lag, which only bound how long events may wait.
-- Idle queues get no tick here (pgq.ticker() keeps their idle ticks). Cheap
-- when nothing happened: one pass over pgq.queue and each queue's last tick.
-- Each tick is announced with NOTIFY pgq_tick, payload the queue name.
-- Returns the queues ticked and their new tick ids.
CREATE OR REPLACE FUNCTION pgq.pgqgo_ticker(i_min_interval interval, OUT queue_name text, OUT tick_id bigint)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    q record;
BEGIN
    FOR q IN
        SELECT x.queue_id, x.queue_name, x.queue_tick_seq, pg_sequence_last_value(x.queue_event_seq::regclass) AS seq
          FROM pgq.queue x,
               LATERAL (SELECT t.tick_event_seq, t.tick_time FROM pgq.tick t WHERE t.tick_queue = x.queue_id
                         ORDER BY t.tick_queue DESC, t.tick_id DESC LIMIT 1) last
         WHERE NOT x.queue_external_ticker AND NOT x.queue_ticker_paused
           AND pg_sequence_last_value(x.queue_event_seq::regclass) > last.tick_event_seq
           AND now() - last.tick_time >= i_min_interval
         ORDER BY x.queue_id
    LOOP
        tick_id := nextval(q.queue_tick_seq);
        INSERT INTO pgq.tick (tick_queue, tick_id, tick_event_seq) VALUES (q.queue_id, tick_id, q.seq);
        PERFORM pg_notify('pgq_tick', q.queue_name);
        queue_name := q.queue_name;
        RETURN NEXT;
    END LOOP;
END
$$;
