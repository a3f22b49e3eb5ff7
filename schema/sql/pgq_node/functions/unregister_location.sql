-- pgq_node.unregister_location(queue, node): forget a member of the cascade
-- (not this node itself); on the root the removal goes downstream as a
-- pgq.unregister-location event.
CREATE OR REPLACE FUNCTION pgq_node.unregister_location(i_queue_name text, i_node_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_node record;
BEGIN
    SELECT n.node_name, n.node_type INTO v_node FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name;
    IF FOUND AND v_node.node_name = i_node_name THEN
        ret_code := 403;
        ret_note := 'Cannot drop node''s own location';
        RETURN;
    END IF;
    -- a subscriber that is forgotten stops being one
    PERFORM pgq_node.unregister_subscriber(i_queue_name, i_node_name);
    DELETE FROM pgq_node.node_location WHERE queue_name = i_queue_name AND node_name = i_node_name;
    IF NOT FOUND THEN
        ret_code := 301;
        ret_note := 'Location not found: ' || i_queue_name || '/' || i_node_name;
        RETURN;
    END IF;
    IF v_node.node_type = 'root' THEN
        PERFORM pgq.insert_event(i_queue_name, 'pgq.unregister-location', i_node_name, i_queue_name, NULL, NULL, NULL);
    END IF;
    ret_code := 200;
    ret_note := 'Ok';
END
$$;
