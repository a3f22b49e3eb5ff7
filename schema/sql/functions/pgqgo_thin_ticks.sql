-- pgq.pgqgo_thin_ticks(): keep pgq.tick small under low-latency ticking (not
-- in PgQ 3.5). pgqgo's ticker ticks a busy queue up to 200 times a second;
-- rotation removes ticks older than the previous switch, which leaves up to
-- two rotation periods of them (hundreds of thousands per busy queue). For
-- every queue with its own ticker, this keeps, of the ticks older than a
-- minute, only the last of each second, the ticks consumers stand on and
-- every tick of an open batch; newer ticks stay for consumers that keep up.
-- An open batch keeps its ticks inside too: a cascaded branch applies a
-- batch tick by tick and may have completed one of them when it stops, and
-- it goes on from that tick (a takeover or resurrect may register there). A consumer behind reads the same events in batches of about a
-- second, as pgqd's ticks would give it; register_consumer_at finds a tick a
-- second.
-- pgq.subscription is locked first (EXCLUSIVE: readers go on, next_batch and
-- finish_batch wait the few milliseconds this takes), so no consumer picks a
-- tick as a batch end while it is being deleted; if the lock is not had
-- within 200 ms, nothing is done this time. Returns the ticks deleted.
CREATE OR REPLACE FUNCTION pgq.pgqgo_thin_ticks()
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q       record;
    v_n     bigint;
    v_total bigint := 0;
BEGIN
    PERFORM set_config('lock_timeout', '200ms', true);
    BEGIN
        LOCK TABLE pgq.subscription IN EXCLUSIVE MODE;
    EXCEPTION WHEN lock_not_available THEN
        RETURN 0; -- consumers are busy: next time
    END;
    FOR q IN SELECT x.queue_id FROM pgq.queue x WHERE NOT x.queue_external_ticker ORDER BY x.queue_id LOOP
        DELETE FROM pgq.tick t
         USING (SELECT x.tick_id,
                       x.tick_id <> max(x.tick_id) OVER (PARTITION BY date_trunc('second', x.tick_time)) AS thin
                  FROM pgq.tick x
                 WHERE x.tick_queue = q.queue_id AND x.tick_time < now() - interval '1 minute') c
         WHERE t.tick_queue = q.queue_id AND t.tick_id = c.tick_id AND c.thin
           AND NOT EXISTS (SELECT 1 FROM pgq.subscription s
                            WHERE s.sub_queue = q.queue_id
                              AND (c.tick_id = s.sub_last_tick OR c.tick_id BETWEEN s.sub_last_tick AND s.sub_next_tick));
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_total := v_total + v_n;
    END LOOP;
    RETURN v_total;
END
$$;
