-- pgq_node.get_queue_locations(queue): the members of the queue's cascade
-- this node knows.
CREATE OR REPLACE FUNCTION pgq_node.get_queue_locations(i_queue_name text,
        OUT node_name text, OUT node_location text, OUT dead boolean)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT l.node_name, l.node_location, l.dead
                   FROM pgq_node.node_location l WHERE l.queue_name = i_queue_name;
END
$$;
