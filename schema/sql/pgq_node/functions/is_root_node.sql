-- pgq_node.is_root_node(queue): whether this node is the queue's root; an
-- error for a queue this node does not serve.
CREATE OR REPLACE FUNCTION pgq_node.is_root_node(i_queue_name text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_type text;
BEGIN
    SELECT n.node_type INTO v_type FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'queue does not exist: %', i_queue_name;
    END IF;
    RETURN v_type = 'root';
END
$$;
