-- pgq_node.register_consumer(queue, consumer, provider, tick): add a
-- cascaded consumer on this node, reading from the provider node from the
-- given tick on (the position is required). Registering it again moves
-- it to the provider given.
CREATE OR REPLACE FUNCTION pgq_node.register_consumer(i_queue_name text, i_consumer_name text,
        i_provider_node text, i_custom_tick_id bigint, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name) THEN
        ret_code := 404;
        ret_note := 'Unknown queue: ' || i_queue_name;
        RETURN;
    END IF;
    -- registered already: only the provider may change
    UPDATE pgq_node.local_state SET provider_node = i_provider_node
     WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    IF FOUND THEN
        ret_code := 201;
        ret_note := 'Consumer already registered: ' || i_queue_name || '/' || i_consumer_name;
        RETURN;
    END IF;
    INSERT INTO pgq_node.local_state (queue_name, consumer_name, provider_node, last_tick_id)
    VALUES (i_queue_name, i_consumer_name, i_provider_node, i_custom_tick_id);
    ret_code := 200;
    ret_note := 'Consumer ' || i_consumer_name || ' registered on queue ' || i_queue_name;
END
$$;
