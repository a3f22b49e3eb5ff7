-- pgq.get_queue_info([queue]): configuration and live state of queues:
-- ticker_lag (age of the last tick), ev_per_sec (event rate over the last two
-- ticks), ev_new (events not yet ticked), last_tick_id.
CREATE OR REPLACE FUNCTION pgq.get_queue_info(i_queue_name text,
        OUT queue_name text, OUT queue_ntables integer, OUT queue_cur_table integer,
        OUT queue_rotation_period interval, OUT queue_switch_time timestamptz,
        OUT queue_external_ticker boolean, OUT queue_ticker_paused boolean,
        OUT queue_ticker_max_count integer, OUT queue_ticker_max_lag interval,
        OUT queue_ticker_idle_period interval, OUT ticker_lag interval,
        OUT ev_per_sec double precision, OUT ev_new bigint, OUT last_tick_id bigint)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
    q    record;
    t1   record;
    t2   record;
BEGIN
    FOR q IN SELECT * FROM pgq.queue WHERE i_queue_name IS NULL OR pgq.queue.queue_name = i_queue_name
              ORDER BY pgq.queue.queue_name
    LOOP
        t1 := NULL;
        t2 := NULL;
        FOR t2 IN SELECT tick_id, tick_time, tick_event_seq FROM pgq.tick
                   WHERE tick_queue = q.queue_id ORDER BY tick_queue DESC, tick_id DESC LIMIT 1 LOOP
        END LOOP;
        IF t2.tick_id IS NOT NULL THEN
            FOR t1 IN SELECT tick_id, tick_time, tick_event_seq FROM pgq.tick
                       WHERE tick_queue = q.queue_id AND tick_id < t2.tick_id
                       ORDER BY tick_queue DESC, tick_id DESC LIMIT 1 LOOP
            END LOOP;
        END IF;
        queue_name := q.queue_name;
        queue_ntables := q.queue_ntables;
        queue_cur_table := q.queue_cur_table;
        queue_rotation_period := q.queue_rotation_period;
        queue_switch_time := q.queue_switch_time;
        queue_external_ticker := q.queue_external_ticker;
        queue_ticker_paused := q.queue_ticker_paused;
        queue_ticker_max_count := q.queue_ticker_max_count;
        queue_ticker_max_lag := q.queue_ticker_max_lag;
        queue_ticker_idle_period := q.queue_ticker_idle_period;
        ticker_lag := now() - t2.tick_time;
        last_tick_id := t2.tick_id;
        ev_new := pgq.seq_getval(q.queue_event_seq) - t2.tick_event_seq;
        IF t1.tick_id IS NOT NULL AND t2.tick_time > t1.tick_time THEN
            ev_per_sec := (t2.tick_event_seq - t1.tick_event_seq)::double precision
                          / extract(epoch FROM t2.tick_time - t1.tick_time);
        ELSE
            ev_per_sec := NULL;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION pgq.get_queue_info(
        OUT queue_name text, OUT queue_ntables integer, OUT queue_cur_table integer,
        OUT queue_rotation_period interval, OUT queue_switch_time timestamptz,
        OUT queue_external_ticker boolean, OUT queue_ticker_paused boolean,
        OUT queue_ticker_max_count integer, OUT queue_ticker_max_lag interval,
        OUT queue_ticker_idle_period interval, OUT ticker_lag interval,
        OUT ev_per_sec double precision, OUT ev_new bigint, OUT last_tick_id bigint)
RETURNS SETOF record LANGUAGE sql AS $$
    SELECT * FROM pgq.get_queue_info(NULL)
$$;
