-- pgq_coop.unregister_subconsumer(queue, consumer, subconsumer, batch_handling):
-- remove a sub-consumer from its group. When it holds a batch, batch_handling
-- 0 refuses and 1 drops the batch: its events are then skipped for the whole
-- group. The group's retry events stay (they belong to the group's sub_id).
-- Returns 1 when removed, 0 when there was no such sub-consumer.
-- Touches pgq.subscription, pgq.consumer.
CREATE OR REPLACE FUNCTION pgq_coop.unregister_subconsumer(i_queue_name text, i_consumer_name text,
        i_subconsumer_name text, i_batch_handling integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_sub pgq.subscription;
BEGIN
    -- the group's main row first, as in every pgq_coop function
    PERFORM pgq_coop._subscription(i_queue_name, i_consumer_name);
    v_sub := pgq_coop._subscription(i_queue_name, i_consumer_name || '.' || i_subconsumer_name);
    IF v_sub.sub_id IS NULL THEN
        RETURN 0;
    END IF;
    IF v_sub.sub_batch IS NOT NULL THEN
        IF i_batch_handling = 1 THEN
            NULL; -- the batch goes away with the row; the group has already moved past it
        ELSE
            -- PgQ's wording, which clients may match
            RAISE EXCEPTION 'subconsumer has active batch';
        END IF;
    END IF;
    DELETE FROM pgq.subscription WHERE sub_queue = v_sub.sub_queue AND sub_consumer = v_sub.sub_consumer;
    PERFORM 1 FROM pgq.subscription WHERE sub_consumer = v_sub.sub_consumer;
    IF NOT FOUND THEN
        DELETE FROM pgq.consumer WHERE co_id = v_sub.sub_consumer;
    END IF;
    RETURN 1;
END
$$;
