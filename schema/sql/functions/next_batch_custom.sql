-- pgq.next_batch_custom(queue, consumer, min_lag, min_count, min_interval):
-- open the consumer's next batch: the events between its last tick and the
-- next tick. With thresholds, the batch closes only at a tick that is at least
-- min_lag old and ends a batch of min_count events or min_interval length.
-- An open batch is returned again. batch_id is NULL when nothing is ready.
-- Without min_count and min_interval, a consumer more than one tick behind
-- gets a batch spanning several ticks (pgqgo; PgQ 3.5 always gives one): the
-- small ticks pgqgo's low-latency ticker makes are merged until the batch
-- holds ticker_max_count events and spans a second (what pgqd, calling
-- pgq.ticker() every second, would have cut), or would span more than
-- ticker_max_lag; a tick pgq.ticker's thresholds cut (ticker_max_count events
-- or ticker_max_lag after the tick before) always makes a batch of its own, so
-- pgqd's ticks stay one per batch. Such a batch never passes a tick where another
-- consumer of the queue stands (its last tick or its open batch's end: hand-
-- offs between consumers, such as londiste's copy, meet on those ticks), and
-- queues with an external ticker (cascade branches, whose ticks are their
-- provider's batches) always get one tick. A consumer standing where another
-- has a batch open gets that batch's span: consumers that stand together
-- move together, whatever moved (a watermark) or was cut (ticks made meanwhile)
-- between their openings; londiste3's copy hands its table over at the end of
-- the main worker's batch, leaving that batch to it, which is only right when
-- the two started at the same tick.
-- The subscription row is locked first: a second session asking for the same
-- consumer's batch meanwhile waits, then gets the same open batch (without
-- the lock both would open a batch each over the same ticks).
CREATE OR REPLACE FUNCTION pgq.next_batch_custom(i_queue_name text, i_consumer_name text,
        i_min_lag interval, i_min_count integer, i_min_interval interval,
        OUT batch_id bigint, OUT cur_tick_id bigint, OUT prev_tick_id bigint,
        OUT cur_tick_time timestamptz, OUT prev_tick_time timestamptz,
        OUT cur_tick_event_seq bigint, OUT prev_tick_event_seq bigint)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    s      record;
    v_next record;
    v_meet bigint;
    v_join record;
    v_tick record;
    v_end  record;
BEGIN
    -- a look without the row lock first: with no open batch and no tick past
    -- the consumer's position there is nothing to do, and the poll writes
    -- nothing (the lock would give it a transaction id, a WAL record and a
    -- commit to flush: most polls of a consumer that keeps up find nothing)
    SELECT sb.sub_queue, sb.sub_last_tick, sb.sub_batch INTO s
      FROM pgq.queue q
      JOIN pgq.subscription sb ON sb.sub_queue = q.queue_id
     WHERE q.queue_name = i_queue_name
       AND sb.sub_consumer = (SELECT c.co_id FROM pgq.consumer c WHERE c.co_name = i_consumer_name);
    IF FOUND AND s.sub_batch IS NULL
       AND EXISTS (SELECT 1 FROM pgq.tick t WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick)
       AND NOT EXISTS (SELECT 1 FROM pgq.tick t WHERE t.tick_queue = s.sub_queue AND t.tick_id > s.sub_last_tick
                        AND (i_min_lag IS NULL OR t.tick_time <= now() - i_min_lag)) THEN
        RETURN;
    END IF;

    SELECT sb.sub_id, sb.sub_queue, sb.sub_consumer, sb.sub_last_tick, sb.sub_batch, sb.sub_next_tick,
           t.tick_id AS last_tick_id, t.tick_time AS last_tick_time, t.tick_event_seq AS last_tick_seq,
           q.queue_external_ticker, q.queue_ticker_max_count, q.queue_ticker_max_lag
      INTO s
      FROM pgq.queue q
      JOIN pgq.subscription sb ON sb.sub_queue = q.queue_id
      LEFT JOIN LATERAL (SELECT x.tick_id, x.tick_time, x.tick_event_seq FROM pgq.tick x
                          WHERE x.tick_queue = sb.sub_queue AND x.tick_id = sb.sub_last_tick OFFSET 0) t ON true
     WHERE q.queue_name = i_queue_name
       AND sb.sub_consumer = (SELECT c.co_id FROM pgq.consumer c WHERE c.co_name = i_consumer_name)
       FOR UPDATE OF sb; -- key lookups only (see get_batch_info)
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Not subscriber to queue: %/%', coalesce(i_queue_name, 'NULL'), coalesce(i_consumer_name, 'NULL');
    END IF;
    IF s.last_tick_id IS NULL THEN
        RAISE EXCEPTION 'next_batch: consumer % on queue % has lost its position (tick % not found)',
                        i_consumer_name, i_queue_name, s.sub_last_tick;
    END IF;

    IF s.sub_batch IS NOT NULL THEN
        -- the batch is already open: hand it out again
        SELECT t.tick_id, t.tick_time, t.tick_event_seq INTO v_next
          FROM pgq.tick t WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_next_tick;
    ELSIF i_min_count IS NULL AND i_min_interval IS NULL THEN
        SELECT t.tick_id, t.tick_time, t.tick_event_seq INTO v_next
          FROM pgq.tick t
         WHERE t.tick_queue = s.sub_queue AND t.tick_id > s.sub_last_tick
           AND (i_min_lag IS NULL OR t.tick_time <= now() - i_min_lag)
         ORDER BY t.tick_queue, t.tick_id LIMIT 1;
        IF v_next.tick_id IS NOT NULL AND NOT s.queue_external_ticker
           AND EXISTS (SELECT 1 FROM pgq.tick t WHERE t.tick_queue = s.sub_queue AND t.tick_id > v_next.tick_id) THEN
            -- behind by more than one tick: another consumer's batch open
            -- from the same tick is joined; else ticks are merged up to where
            -- another consumer stands
            SELECT t.tick_id, t.tick_time, t.tick_event_seq INTO v_join
              FROM pgq.subscription o
              JOIN pgq.tick t ON t.tick_queue = o.sub_queue AND t.tick_id = o.sub_next_tick
             WHERE o.sub_queue = s.sub_queue AND o.sub_consumer <> s.sub_consumer
               AND o.sub_last_tick = s.sub_last_tick AND o.sub_batch IS NOT NULL
               AND (i_min_lag IS NULL OR t.tick_time <= now() - i_min_lag)
             ORDER BY t.tick_id LIMIT 1;
            IF FOUND THEN
                v_next := v_join;
            ELSIF v_next.tick_event_seq - s.last_tick_seq < s.queue_ticker_max_count
              AND v_next.tick_time - s.last_tick_time < s.queue_ticker_max_lag THEN
                SELECT min(p.tick) INTO v_meet
                  FROM pgq.subscription o, LATERAL (VALUES (o.sub_last_tick), (o.sub_next_tick)) p(tick)
                 WHERE o.sub_queue = s.sub_queue AND o.sub_consumer <> s.sub_consumer AND p.tick >= v_next.tick_id;
                IF v_meet IS DISTINCT FROM v_next.tick_id THEN
                    v_end := v_next;
                    FOR v_tick IN
                        SELECT t.tick_id, t.tick_time, t.tick_event_seq FROM pgq.tick t
                         WHERE t.tick_queue = s.sub_queue AND t.tick_id > v_next.tick_id
                           AND (v_meet IS NULL OR t.tick_id <= v_meet)
                         ORDER BY t.tick_queue, t.tick_id
                    LOOP
                        -- a tick pgq.ticker's thresholds cut (ticker_max_count
                        -- events, or ticker_max_lag after the one before) is not
                        -- merged; the batch spans at most ticker_max_lag, and is
                        -- full once it holds ticker_max_count events and one
                        -- second (pgqd's ticker_period): the batches pgqd cuts
                        EXIT WHEN v_tick.tick_event_seq - v_end.tick_event_seq >= s.queue_ticker_max_count
                               OR v_tick.tick_time - v_end.tick_time >= s.queue_ticker_max_lag
                               OR v_tick.tick_time - s.last_tick_time > s.queue_ticker_max_lag
                               OR (v_end.tick_event_seq - s.last_tick_seq >= s.queue_ticker_max_count
                                   AND v_end.tick_time - s.last_tick_time >= interval '1 second')
                               OR v_tick.tick_time > now() - i_min_lag;
                        v_end := v_tick;
                    END LOOP;
                    v_next := v_end;
                END IF;
            END IF;
        END IF;
    ELSE
        SELECT h.next_tick_id AS tick_id, h.next_tick_time AS tick_time, h.next_tick_seq AS tick_event_seq
          INTO v_next
          FROM pgq.find_tick_helper(s.sub_queue, s.last_tick_id, s.last_tick_time, s.last_tick_seq,
                                    i_min_count, i_min_interval) h;
        IF v_next.tick_id IS NOT NULL AND i_min_lag IS NOT NULL AND v_next.tick_time > now() - i_min_lag THEN
            v_next := NULL;
        END IF;
    END IF;

    IF v_next.tick_id IS NULL THEN
        -- nothing ready: the subscription is left alone, as in PgQ 3.5 (an
        -- update per poll would also pile up row versions under a long
        -- transaction)
        RETURN;
    END IF;

    IF s.sub_batch IS NULL THEN
        batch_id := nextval('pgq.batch_id_seq');
        UPDATE pgq.subscription
           SET sub_batch = batch_id, sub_next_tick = v_next.tick_id, sub_active = now()
         WHERE sub_id = s.sub_id AND sub_consumer = s.sub_consumer;
    ELSE
        batch_id := s.sub_batch;
        UPDATE pgq.subscription SET sub_active = now() WHERE sub_id = s.sub_id AND sub_consumer = s.sub_consumer;
    END IF;
    cur_tick_id := v_next.tick_id;
    cur_tick_time := v_next.tick_time;
    cur_tick_event_seq := v_next.tick_event_seq;
    prev_tick_id := s.last_tick_id;
    prev_tick_time := s.last_tick_time;
    prev_tick_event_seq := s.last_tick_seq;
END
$$;
