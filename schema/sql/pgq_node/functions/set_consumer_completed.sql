-- pgq_node.set_consumer_completed(queue, consumer, tick): the consumer has
-- applied everything up to the tick (called in the transaction that applied
-- it, which makes the apply exactly-once).
CREATE OR REPLACE FUNCTION pgq_node.set_consumer_completed(i_queue_name text, i_consumer_name text,
        i_tick_id bigint, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pgq_node.local_state SET last_tick_id = i_tick_id
     WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Consumer not known: ' || i_queue_name || '/' || i_consumer_name;
        RETURN;
    END IF;
    ret_code := 100;
    ret_note := 'Consumer ' || i_consumer_name || ' completed tick = ' || i_tick_id;
END
$$;
