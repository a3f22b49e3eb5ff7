-- pgq_coop.register_subconsumer(queue, consumer, subconsumer): join a
-- sub-consumer to a consumer's group, registering the consumer first when it
-- is new. The sub-consumer is the pgq consumer '<consumer>.<subconsumer>',
-- subscribed with the group's sub_id at the group's position.
-- Returns 1 when the sub-consumer is new, 0 when it was already registered.
-- Touches pgq.consumer, pgq.subscription.
CREATE OR REPLACE FUNCTION pgq_coop.register_subconsumer(i_queue_name text, i_consumer_name text,
        i_subconsumer_name text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_full  text := i_consumer_name || '.' || i_subconsumer_name;
    v_main  pgq.subscription;
    v_co_id integer;
BEGIN
    -- the group's main row is locked first, as in every pgq_coop function
    v_main := pgq_coop._subscription(i_queue_name, i_consumer_name);
    IF v_main.sub_id IS NULL THEN
        PERFORM pgq.register_consumer(i_queue_name, i_consumer_name);
        v_main := pgq_coop._subscription(i_queue_name, i_consumer_name);
    END IF;
    IF v_main.sub_batch IS NOT NULL THEN
        RAISE EXCEPTION 'main consumer has batch open?'
              USING DETAIL = format('main consumer %s has an open batch on queue %s; finish it before adding sub-consumers',
                                    i_consumer_name, i_queue_name);
    END IF;

    SELECT co_id INTO v_co_id FROM pgq.consumer WHERE co_name = v_full;
    IF NOT FOUND THEN
        INSERT INTO pgq.consumer (co_name) VALUES (v_full) RETURNING co_id INTO v_co_id;
    END IF;
    PERFORM 1 FROM pgq.subscription WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_co_id;
    IF FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO pgq.subscription (sub_id, sub_queue, sub_consumer, sub_last_tick, sub_active)
    VALUES (v_main.sub_id, v_main.sub_queue, v_co_id, v_main.sub_last_tick, now());
    RETURN 1;
END
$$;
