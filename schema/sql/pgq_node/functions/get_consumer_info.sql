-- pgq_node.get_consumer_info(queue): every cascaded consumer on this node.
CREATE OR REPLACE FUNCTION pgq_node.get_consumer_info(i_queue_name text,
        OUT consumer_name text, OUT provider_node text, OUT last_tick_id bigint,
        OUT paused boolean, OUT uptodate boolean, OUT cur_error text)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT s.consumer_name, s.provider_node, s.last_tick_id, s.paused, s.uptodate, s.cur_error
                   FROM pgq_node.local_state s WHERE s.queue_name = i_queue_name ORDER BY 1;
END
$$;
