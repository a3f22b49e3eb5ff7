-- pgq_node.register_location(queue, node, location, dead): add or update a
-- member of the cascade. A NULL location keeps the known one (tag-dead). On
-- the root the change also goes downstream as a pgq.location-info event
-- (data: node, extra1: queue, extra2: location, extra3: dead).
CREATE OR REPLACE FUNCTION pgq_node.register_location(i_queue_name text, i_node_name text,
        i_node_location text, i_dead boolean, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pgq_node.node_location
       SET node_location = coalesce(i_node_location, node_location), dead = i_dead
     WHERE queue_name = i_queue_name AND node_name = i_node_name;
    IF NOT FOUND AND i_node_location IS NOT NULL THEN
        INSERT INTO pgq_node.node_location (queue_name, node_name, node_location, dead)
        VALUES (i_queue_name, i_node_name, i_node_location, i_dead);
    END IF;
    IF EXISTS (SELECT 1 FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name AND n.node_type = 'root') THEN
        PERFORM pgq.insert_event(i_queue_name, 'pgq.location-info', i_node_name, i_queue_name,
                                 i_node_location, i_dead::text, NULL);
    END IF;
    ret_code := 200;
    ret_note := 'Location registered';
END
$$;
