-- pgq_node.get_worker_state(queue): the node's worker as get_consumer_state
-- reports it, with the node's watermarks, its queue's last tick and its
-- combined queue.
CREATE OR REPLACE FUNCTION pgq_node.get_worker_state(i_queue_name text,
        OUT ret_code integer, OUT ret_note text, OUT node_type text, OUT node_name text,
        OUT completed_tick bigint, OUT provider_node text, OUT provider_location text,
        OUT paused boolean, OUT uptodate boolean, OUT cur_error text, OUT worker_name text,
        OUT global_watermark bigint, OUT local_watermark bigint, OUT local_queue_top bigint,
        OUT combined_queue text, OUT combined_type text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record;
BEGIN
    SELECT * INTO n FROM pgq_node.node_info i WHERE i.queue_name = i_queue_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Unknown queue: ' || i_queue_name;
        RETURN;
    END IF;
    SELECT s.ret_code, s.ret_note, s.node_type, s.node_name, s.completed_tick, s.provider_node,
           s.provider_location, s.paused, s.uptodate, s.cur_error
      INTO ret_code, ret_note, node_type, node_name, completed_tick, provider_node,
           provider_location, paused, uptodate, cur_error
      FROM pgq_node.get_consumer_state(i_queue_name, n.worker_name) s;
    worker_name := n.worker_name;
    combined_queue := n.combined_queue;
    IF n.combined_queue IS NOT NULL THEN
        SELECT c.node_type INTO combined_type FROM pgq_node.node_info c WHERE c.queue_name = n.combined_queue;
    END IF;
    SELECT m.global_watermark, m.local_watermark, m.queue_top INTO global_watermark, local_watermark, local_queue_top
      FROM pgq_node._watermarks(i_queue_name) m;
END
$$;
