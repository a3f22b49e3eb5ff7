-- pgq_node.unregister_consumer(queue, consumer): remove a cascaded consumer
-- from this node (whether or not it was there).
CREATE OR REPLACE FUNCTION pgq_node.unregister_consumer(i_queue_name text, i_consumer_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM pgq_node.local_state WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    ret_code := 200;
    ret_note := 'Consumer ' || i_consumer_name || ' unregistered from ' || i_queue_name;
END
$$;
