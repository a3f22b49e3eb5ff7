-- pgq.register_consumer_at(queue, consumer, tick): subscribe a consumer at a
-- given tick (NULL: the latest). An existing subscription is moved to that tick
-- and loses its open batch. Returns 1 for a new subscription, 0 otherwise.
CREATE OR REPLACE FUNCTION pgq.register_consumer_at(x_queue_name text, x_consumer_name text, x_tick_pos bigint)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_queue    integer;
    v_consumer integer;
    v_tick     bigint;
BEGIN
    SELECT queue_id INTO v_queue FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Event queue not created yet';
    END IF;
    SELECT co_id INTO v_consumer FROM pgq.consumer WHERE co_name = x_consumer_name;
    IF NOT FOUND THEN
        IF x_consumer_name = '' THEN -- PgQ 3.5 accepts it; nothing can name it after
            RAISE EXCEPTION 'consumer name must not be empty';
        END IF;
        INSERT INTO pgq.consumer (co_name) VALUES (x_consumer_name) RETURNING co_id INTO v_consumer;
    END IF;
    IF x_tick_pos IS NOT NULL THEN
        PERFORM 1 FROM pgq.tick WHERE tick_queue = v_queue AND tick_id = x_tick_pos;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'cannot reposition, tick not found: %', x_tick_pos;
        END IF;
    END IF;

    PERFORM 1 FROM pgq.subscription WHERE sub_queue = v_queue AND sub_consumer = v_consumer FOR UPDATE;
    IF FOUND THEN
        IF x_tick_pos IS NOT NULL THEN
            UPDATE pgq.subscription
               SET sub_last_tick = x_tick_pos, sub_active = now(), sub_batch = NULL, sub_next_tick = NULL
             WHERE sub_queue = v_queue AND sub_consumer = v_consumer;
        END IF;
        RETURN 0;
    END IF;

    IF x_tick_pos IS NULL THEN
        SELECT tick_id INTO v_tick FROM pgq.tick WHERE tick_queue = v_queue
         ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
    ELSE
        v_tick := x_tick_pos;
    END IF;
    INSERT INTO pgq.subscription (sub_queue, sub_consumer, sub_last_tick)
    VALUES (v_queue, v_consumer, v_tick);
    RETURN 1;
END
$$;
