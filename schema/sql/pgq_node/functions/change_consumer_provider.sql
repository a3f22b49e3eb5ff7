-- pgq_node.change_consumer_provider(queue, consumer, new provider): point a
-- cascaded consumer at another node; the consumer acknowledges it.
CREATE OR REPLACE FUNCTION pgq_node.change_consumer_provider(i_queue_name text, i_consumer_name text,
        i_new_provider text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgq_node.node_location l
                    WHERE l.queue_name = i_queue_name AND l.node_name = i_new_provider) THEN
        ret_code := 404;
        ret_note := 'New node not found: ' || i_new_provider;
        RETURN;
    END IF;
    UPDATE pgq_node.local_state SET provider_node = i_new_provider, uptodate = false
     WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Unknown consumer: ' || i_queue_name || '/' || i_consumer_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Consumer provider node set to : ' || i_new_provider;
END
$$;
