-- pgq_node.is_leaf_node(queue): whether this node is a leaf of the queue's
-- cascade; an error for a queue this node does not serve.
CREATE OR REPLACE FUNCTION pgq_node.is_leaf_node(i_queue_name text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_type text;
BEGIN
    SELECT n.node_type INTO v_type FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'queue does not exist: %', i_queue_name;
    END IF;
    RETURN v_type = 'leaf';
END
$$;
