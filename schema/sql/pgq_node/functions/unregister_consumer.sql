-- pgq_node.unregister_consumer(queue, consumer): remove a cascaded consumer
-- from this node (whether or not it was there).
CREATE OR REPLACE FUNCTION pgq_node.unregister_consumer(i_queue_name text, i_consumer_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name) THEN
        ret_code := 404;
        ret_note := 'Unknown queue: ' || i_queue_name;
        RETURN;
    END IF;
    DELETE FROM pgq_node.local_state WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    ret_code := 200;
    ret_note := 'Consumer ' || i_consumer_name || ' unregistered from ' || i_queue_name;
END
$$;
