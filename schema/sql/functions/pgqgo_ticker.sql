-- pgq.pgqgo_ticker(min_interval): pgqgo's low-latency tick (not in PgQ 3.5).
-- Ticks every queue with its own ticker, not paused, whose next batch would
-- not be empty, once min_interval has passed since its last tick; ignores
-- ticker_max_count/ticker_max_lag, which only bound how long events may wait.
-- "Not empty" is decided cheaply: the event sequence moved past the last
-- tick's value. When it did not, two cases still hide committed events: a
-- transaction that was open at the last tick and has committed since, and the
-- queue's very first event (a fresh sequence reads 1 both before and after
-- its first use); these are checked in the event tables through the ev_txid
-- index, at most every 100 ms per queue. Idle queues get pgq.ticker()'s idle
-- ticks (once both ticker_idle_period and ticker_max_lag have passed, and at
-- once for a queue that has only its creation tick), so on a pgqgo schema this
-- function alone does all ticking. Each tick is announced with NOTIFY
-- pgq_tick, payload the queue name. Returns the queues ticked and their new
-- tick ids.
CREATE OR REPLACE FUNCTION pgq.pgqgo_ticker(i_min_interval interval, OUT queue_name text, OUT tick_id bigint)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    q      record;
    v_late boolean;
BEGIN
    FOR q IN
        SELECT x.queue_id, x.queue_name, x.queue_tick_seq, x.queue_data_pfx,
               greatest(x.queue_ticker_idle_period, x.queue_ticker_max_lag) AS idle_after,
               coalesce(pg_sequence_last_value(x.queue_event_seq::regclass), 1) AS seq, last.tick_id,
               last.tick_event_seq, last.tick_time, last.tick_snapshot
          FROM pgq.queue x,
               LATERAL (SELECT t.tick_id, t.tick_event_seq, t.tick_time, t.tick_snapshot FROM pgq.tick t
                         WHERE t.tick_queue = x.queue_id
                         ORDER BY t.tick_queue DESC, t.tick_id DESC LIMIT 1) last
         WHERE NOT x.queue_external_ticker AND NOT x.queue_ticker_paused
           AND now() - last.tick_time >= i_min_interval
         ORDER BY x.queue_id
    LOOP
        IF q.seq <= q.tick_event_seq
           AND now() - q.tick_time < q.idle_after
           AND EXISTS (SELECT 1 FROM pgq.tick t WHERE t.tick_queue = q.queue_id AND t.tick_id <> q.tick_id) THEN
            IF now() - q.tick_time < interval '100 ms'
               OR NOT (q.tick_event_seq = 1 OR txid_snapshot_xmin(q.tick_snapshot) < txid_snapshot_xmax(q.tick_snapshot)) THEN
                CONTINUE;
            END IF;
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM ' || pgq.quote_fqname(q.queue_data_pfx) || ' ev'
                 || ' WHERE (ev.ev_txid = ANY ($1) OR ($2 AND ev.ev_id = 1))'
                 || ' AND NOT txid_visible_in_snapshot(ev.ev_txid, $3)'
                 || ' AND txid_visible_in_snapshot(ev.ev_txid, txid_current_snapshot()))'
               INTO v_late
              USING ARRAY(SELECT txid_snapshot_xip(q.tick_snapshot)), q.tick_event_seq = 1, q.tick_snapshot;
            IF NOT v_late THEN
                CONTINUE;
            END IF;
        END IF;
        tick_id := nextval(q.queue_tick_seq);
        INSERT INTO pgq.tick (tick_queue, tick_id, tick_event_seq) VALUES (q.queue_id, tick_id, q.seq);
        PERFORM pg_notify('pgq_tick', q.queue_name);
        queue_name := q.queue_name;
        RETURN NEXT;
    END LOOP;
END
$$;
