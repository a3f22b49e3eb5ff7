-- pgq_node.get_consumer_state(queue, consumer): where a cascaded consumer of
-- this node reads from and how far it is.
CREATE OR REPLACE FUNCTION pgq_node.get_consumer_state(i_queue_name text, i_consumer_name text,
        OUT ret_code integer, OUT ret_note text, OUT node_type text, OUT node_name text,
        OUT completed_tick bigint, OUT provider_node text, OUT provider_location text,
        OUT paused boolean, OUT uptodate boolean, OUT cur_error text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
BEGIN
    SELECT n.node_type, n.node_name INTO node_type, node_name FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Unknown queue: ' || i_queue_name;
        RETURN;
    END IF;
    SELECT c.last_tick_id, c.provider_node, l.node_location, c.paused, c.uptodate, c.cur_error INTO s
      FROM pgq_node.local_state c
      LEFT JOIN pgq_node.node_location l ON l.queue_name = c.queue_name AND l.node_name = c.provider_node
     WHERE c.queue_name = i_queue_name AND c.consumer_name = i_consumer_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Unknown consumer: ' || i_queue_name || '/' || i_consumer_name;
        RETURN;
    END IF;
    completed_tick := s.last_tick_id;
    provider_node := s.provider_node;
    provider_location := s.node_location;
    paused := s.paused;
    uptodate := s.uptodate;
    cur_error := s.cur_error;
    ret_code := 100;
    ret_note := 'Ok';
END
$$;
