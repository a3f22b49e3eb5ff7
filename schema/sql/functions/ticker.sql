-- pgq.ticker(queue): tick one queue when its thresholds say so: at least
-- ticker_max_count new events; or new events and ticker_max_lag passed since
-- the last tick; or no new events and both ticker_max_lag and
-- ticker_idle_period passed. Returns the new tick id, or NULL when no tick was
-- needed. Each tick is announced with NOTIFY pgq_tick, payload the queue name.
CREATE OR REPLACE FUNCTION pgq.ticker(i_queue_name text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q      record;
    v_seq  bigint;
    v_last record;
    v_tick bigint;
BEGIN
    SELECT queue_id, queue_tick_seq, queue_event_seq, queue_external_ticker, queue_ticker_paused,
           queue_ticker_max_count, queue_ticker_max_lag, queue_ticker_idle_period
      INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such queue';
    END IF;
    IF q.queue_external_ticker THEN
        RAISE EXCEPTION 'This queue has external tick source.';
    END IF;
    IF q.queue_ticker_paused THEN
        RAISE EXCEPTION 'Ticker has been paused for this queue';
    END IF;
    -- ticks of a queue commit in id order, whoever cuts them (the daemon,
    -- a tool asking for a tick at once): a consumer that read up to a tick
    -- never finds an earlier one appearing after it (a branch mirroring
    -- the ticks would miss it), and later ticks' snapshots see all earlier
    -- ones see. A transaction lock per queue, held until commit (pgqgo
    -- addition).
    PERFORM pg_advisory_xact_lock(1885827444, q.queue_id);
    v_seq := pgq.seq_getval(q.queue_event_seq);
    SELECT tick_id, tick_time, tick_event_seq INTO v_last FROM pgq.tick WHERE tick_queue = q.queue_id
     ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
    IF FOUND THEN
        IF v_seq = v_last.tick_event_seq
           AND NOT EXISTS (SELECT 1 FROM pgq.tick t WHERE t.tick_queue = q.queue_id AND t.tick_id <> v_last.tick_id) THEN
            NULL; -- a queue with only its creation tick gets a second one at once, as in PgQ 3.5
        ELSIF v_seq - v_last.tick_event_seq >= q.queue_ticker_max_count THEN
            NULL; -- enough events
        ELSIF now() - v_last.tick_time < q.queue_ticker_max_lag THEN
            RETURN NULL; -- too early
        ELSIF v_seq = v_last.tick_event_seq AND now() - v_last.tick_time < q.queue_ticker_idle_period THEN
            RETURN NULL; -- idle, and the idle period has not passed
        END IF;
    END IF;
    v_tick := nextval(q.queue_tick_seq);
    INSERT INTO pgq.tick (tick_queue, tick_id, tick_event_seq) VALUES (q.queue_id, v_tick, v_seq);
    -- wake listening consumers at commit (pgqgo addition; see docs/ticker.md)
    -- a queue adopted with a name too long for a payload wakes every listener
    PERFORM pg_notify('pgq_tick', CASE WHEN octet_length(i_queue_name) < 8000 THEN i_queue_name ELSE '' END);
    RETURN v_tick;
END
$$;

-- pgq.ticker(queue, tick id, time, event seq): record a tick chosen elsewhere
-- (cascaded queues copy their provider's ticks). Only for queues with
-- external_ticker set. Returns the tick id.
CREATE OR REPLACE FUNCTION pgq.ticker(i_queue_name text, i_tick_id bigint, i_orig_timestamp timestamptz, i_event_seq bigint)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q record;
BEGIN
    SELECT queue_id, queue_tick_seq, queue_event_seq INTO q FROM pgq.queue
     WHERE queue_name = i_queue_name AND queue_external_ticker AND NOT queue_ticker_paused;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'queue not found or ticker disabled: %', i_queue_name;
    END IF;
    INSERT INTO pgq.tick (tick_queue, tick_id, tick_time, tick_event_seq)
    VALUES (q.queue_id, i_tick_id, i_orig_timestamp, i_event_seq);
    PERFORM pgq.seq_setval(q.queue_tick_seq, i_tick_id);
    PERFORM pgq.seq_setval(q.queue_event_seq, i_event_seq);
    RETURN i_tick_id;
END
$$;

-- pgq.ticker(): tick every queue that has its own ticker and is not paused,
-- as far as its thresholds ask for it. Returns the number of queues ticked.
CREATE OR REPLACE FUNCTION pgq.ticker()
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_name  text;
    v_count bigint := 0;
BEGIN
    FOR v_name IN SELECT queue_name FROM pgq.queue
                   WHERE NOT queue_external_ticker AND NOT queue_ticker_paused ORDER BY queue_id
    LOOP
        IF pgq.ticker(v_name) IS NOT NULL THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END
$$;
