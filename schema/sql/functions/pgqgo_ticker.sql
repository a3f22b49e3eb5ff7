-- pgq.pgqgo_ticker(min_interval, max_interval): pgqgo's low-latency tick (not
-- in PgQ 3.5). Ticks every queue with its own ticker, not paused, whose next
-- batch would not be empty, once its tick interval has passed since its last
-- tick. The interval adapts to the queue's event rate: min_interval for a
-- quiet queue (its first event after a pause is ticked at once), widening by
-- 1 ms for every 50 events/s the queue has received over its last two tick
-- intervals, up to max_interval; so ticks carry more events as the rate
-- rises, and their cost per event (a commit, a NOTIFY, a pgq.tick row, and a
-- batch cycle for every consumer) falls. A queue with ticker_max_count events
-- waiting is ticked once min_interval has passed, whatever its rate.
-- ticker_max_lag and ticker_idle_period only bound how long events may wait.
-- "Not empty" is decided cheaply: the event sequence moved past the last
-- tick's value. When it did not, committed events can still be pending: from
-- transactions open at the last tick, from ones that took their ids between
-- that tick's snapshot and its reading of the sequence, or a fresh queue's
-- first event (a fresh sequence reads 1 before and after its first use).
-- These are looked for in the event tables (the txids the tick's snapshot
-- did not see, through the ev_txid index), from 100 ms after the tick, at
-- most every 50 ms per queue, and no more
-- once every transaction older than the tick's own has ended (remembered in
-- session settings pgqgo.tickxid_<queue id> and pgqgo.settled_<queue id>: the
-- ticker daemon keeps its session). Idle queues get pgq.ticker()'s idle ticks
-- (once both ticker_idle_period and ticker_max_lag have passed, and at once
-- for a queue that has only its creation tick), so on a pgqgo schema this
-- function alone does all ticking. Each tick is announced with NOTIFY
-- pgq_tick, payload the queue name. Returns the queues ticked, their new tick
-- ids, and whether the tick was for events (not an idle tick), then a last row
-- with a NULL queue name whose next_check says when a call can next tick
-- anything (NULL: unknown, as soon as the caller polls again).
CREATE OR REPLACE FUNCTION pgq.pgqgo_ticker(i_min_interval interval, i_max_interval interval,
        OUT queue_name text, OUT tick_id bigint, OUT had_events boolean, OUT next_check interval)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q       record;
    v_seq   bigint;
    v_late  boolean;
    v_xip   bigint[];
    v_xmin  bigint;
    v_rate  float8;
    v_wait  interval;
    v_due   interval;
    v_quiet boolean := false;
BEGIN
    FOR q IN
        SELECT x.queue_id, x.queue_name, x.queue_tick_seq, x.queue_data_pfx,
               greatest(x.queue_ticker_idle_period, x.queue_ticker_max_lag) AS idle_after,
               pg_sequence_last_value(x.queue_event_seq::regclass) AS used_seq, last.tick_id,
               last.tick_event_seq, last.tick_time, last.tick_snapshot, x.queue_ticker_max_count,
               prev.tick_event_seq AS prev_seq, prev.tick_time AS prev_time
          FROM pgq.queue x
         CROSS JOIN LATERAL (SELECT t.tick_id, t.tick_event_seq, t.tick_time, t.tick_snapshot FROM pgq.tick t
                              WHERE t.tick_queue = x.queue_id
                              ORDER BY t.tick_queue DESC, t.tick_id DESC LIMIT 1) last
          LEFT JOIN LATERAL (SELECT t.tick_event_seq, t.tick_time FROM pgq.tick t
                              WHERE t.tick_queue = x.queue_id AND t.tick_id < last.tick_id
                              ORDER BY t.tick_queue DESC, t.tick_id DESC LIMIT 1) prev ON true
         WHERE NOT x.queue_external_ticker AND NOT x.queue_ticker_paused
         ORDER BY x.queue_id
    LOOP
        v_seq := coalesce(q.used_seq, 1); -- what pgq.seq_getval reports for a fresh sequence
        v_rate := NULL;
        had_events := v_seq > q.tick_event_seq;
        IF NOT had_events THEN
            -- its next event may come any moment: the caller keeps polling
            v_quiet := true;
            IF now() - q.tick_time < i_min_interval THEN
                CONTINUE;
            END IF;
        ELSE
            -- a busy queue: its interval widens with its rate (events since the
            -- tick before the last one, per second); ticker_max_count waiting
            -- events cut it short
            v_rate := coalesce((v_seq - q.prev_seq) / greatest(extract(epoch FROM now() - q.prev_time), 0.001), 0);
            v_wait := least(i_max_interval, i_min_interval + interval '1 ms' * v_rate / 50);
            IF v_seq - q.tick_event_seq >= q.queue_ticker_max_count THEN
                v_wait := i_min_interval;
            END IF;
            IF now() - q.tick_time < v_wait THEN
                -- not yet: when it is due, or when it would reach ticker_max_count
                v_wait := v_wait - (now() - q.tick_time);
                IF v_rate > 0 THEN
                    v_wait := least(v_wait, interval '1 s' * (q.queue_ticker_max_count - (v_seq - q.tick_event_seq)) / v_rate);
                END IF;
                v_due := least(v_due, v_wait);
                CONTINUE;
            END IF;
        END IF;
        IF v_seq <= q.tick_event_seq
           AND now() - q.tick_time < q.idle_after
           AND EXISTS (SELECT 1 FROM pgq.tick t WHERE t.tick_queue = q.queue_id AND t.tick_id <> q.tick_id) THEN
            -- no new sequence values and no idle tick due: only late commits can
            -- be pending: transactions open at the last tick, or ones that took
            -- their ids after its snapshot but before it read the sequence
            IF now() - q.tick_time < interval '100 ms'
               OR current_setting('pgqgo.settled_' || q.queue_id, true)
                  = q.tick_id || ':' || (q.used_seq IS NOT NULL) THEN
                CONTINUE;
            END IF;
            -- at most one look per queue every 50 ms: a transaction left open
            -- keeps the question unsettled, and the daemon polls every 5 ms
            IF coalesce(current_setting('pgqgo.looked_' || q.queue_id, true), '') <> ''
               AND clock_timestamp() - current_setting('pgqgo.looked_' || q.queue_id)::timestamptz < interval '50 ms' THEN
                CONTINUE;
            END IF;
            PERFORM set_config('pgqgo.looked_' || q.queue_id, clock_timestamp()::text, false);
            -- the oldest running transaction is read before the look: one that
            -- commits between the look and this reading must not count as settled
            v_xmin := txid_snapshot_xmin(txid_current_snapshot());
            -- only the txids the tick did not see: past its xmax, or running
            -- at it (a short list): never every event since the oldest
            -- transaction open anywhere
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM ' || pgq.quote_fqname(q.queue_data_pfx) || ' ev'
                 || ' WHERE (ev.ev_txid >= $1 OR ev.ev_txid = ANY ($3))'
                 || ' AND NOT txid_visible_in_snapshot(ev.ev_txid, $2)'
                 || ' AND txid_visible_in_snapshot(ev.ev_txid, txid_current_snapshot()))'
               INTO v_late
              USING txid_snapshot_xmax(q.tick_snapshot), q.tick_snapshot,
                    ARRAY(SELECT txid_snapshot_xip(q.tick_snapshot));
            had_events := v_late;
            IF NOT v_late THEN
                -- every such transaction is older than the tick's own: once all
                -- transactions up to it have ended, the answer cannot change
                v_xip := string_to_array(current_setting('pgqgo.tickxid_' || q.queue_id, true), ':')::bigint[];
                IF v_xip[1] = q.tick_id AND v_xmin > v_xip[2] THEN
                    -- (keyed on whether the sequence was used: a fresh sequence reads
                    -- 1 before and after its first use, so that use needs a look)
                    PERFORM set_config('pgqgo.settled_' || q.queue_id,
                                       q.tick_id || ':' || (q.used_seq IS NOT NULL), false);
                END IF;
                CONTINUE;
            END IF;
        END IF;
        -- ticks of a queue commit in id order (see pgq.ticker(text))
        PERFORM pg_advisory_xact_lock(1885827444, q.queue_id);
        tick_id := nextval(q.queue_tick_seq);
        INSERT INTO pgq.tick (tick_queue, tick_id, tick_event_seq) VALUES (q.queue_id, tick_id, v_seq);
        PERFORM set_config('pgqgo.tickxid_' || q.queue_id, tick_id || ':' || txid_current(), false);
        -- a queue adopted with a name too long for a payload wakes every listener
        PERFORM pg_notify('pgq_tick', CASE WHEN octet_length(q.queue_name) < 8000 THEN q.queue_name ELSE '' END);
        queue_name := q.queue_name;
        RETURN NEXT;
        IF v_rate > 0 THEN
            -- a busy queue just ticked: at its rate, its next tick is due after
            -- its interval (or when ticker_max_count events are waiting), so
            -- the caller need not poll before (a burst that ends meanwhile
            -- changes nothing: its next event would wait for the interval anyway)
            v_due := least(v_due, least(i_max_interval, i_min_interval + interval '1 ms' * v_rate / 50),
                           interval '1 s' * q.queue_ticker_max_count / v_rate);
        ELSE
            v_quiet := true; -- whether more events follow is not known yet
        END IF;
    END LOOP;
    -- the last row: when to call again. NULL: at the caller's poll period (a
    -- queue is quiet or just ticked its first events, and its next event may
    -- come any moment); otherwise every queue is busy, with events waiting for
    -- their interval or just ticked, and none is due before next_check
    queue_name := NULL;
    tick_id := NULL;
    had_events := NULL;
    next_check := CASE WHEN v_quiet THEN NULL ELSE v_due END;
    RETURN NEXT;
END
$$;

-- pgq.pgqgo_ticker(min_interval): the same with a fixed interval and without
-- the last row (the function of pgqgo 0.1 and 0.2, which their ticker
-- daemons call).
CREATE OR REPLACE FUNCTION pgq.pgqgo_ticker(i_min_interval interval,
        OUT queue_name text, OUT tick_id bigint, OUT had_events boolean)
RETURNS SETOF record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.queue_name, t.tick_id, t.had_events FROM pgq.pgqgo_ticker(i_min_interval, i_min_interval) t
     WHERE t.queue_name IS NOT NULL
$$;
