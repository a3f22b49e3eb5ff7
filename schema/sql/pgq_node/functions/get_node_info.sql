-- pgq_node.get_node_info(queue): this node's place in the queue's cascade:
-- type, name, watermarks, provider, combined queue, its worker's state, its
-- attributes and the queues that feed into it (target_for).
CREATE OR REPLACE FUNCTION pgq_node.get_node_info(i_queue_name text,
        OUT ret_code integer, OUT ret_note text, OUT node_type text, OUT node_name text,
        OUT global_watermark bigint, OUT local_watermark bigint, OUT provider_node text,
        OUT provider_location text, OUT combined_queue text, OUT combined_type text,
        OUT worker_name text, OUT worker_paused boolean, OUT worker_uptodate boolean,
        OUT worker_last_tick bigint, OUT node_attrs text, OUT target_for text[])
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record;
    w record;
BEGIN
    SELECT * INTO n FROM pgq_node.node_info i WHERE i.queue_name = i_queue_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Unknown queue: ' || i_queue_name;
        RETURN;
    END IF;
    node_type := n.node_type;
    node_name := n.node_name;
    combined_queue := n.combined_queue;
    node_attrs := n.node_attrs;
    worker_name := n.worker_name;
    SELECT m.global_watermark, m.local_watermark INTO global_watermark, local_watermark
      FROM pgq_node._watermarks(i_queue_name) m;
    SELECT s.provider_node, s.paused, s.uptodate, s.last_tick_id, l.node_location INTO w
      FROM pgq_node.local_state s
      LEFT JOIN pgq_node.node_location l ON l.queue_name = s.queue_name AND l.node_name = s.provider_node
     WHERE s.queue_name = i_queue_name AND s.consumer_name = n.worker_name;
    provider_node := w.provider_node;
    provider_location := w.node_location;
    worker_paused := w.paused;
    worker_uptodate := w.uptodate;
    worker_last_tick := w.last_tick_id;
    IF n.node_type = 'root' THEN
        -- the root's worker reads nothing: it is as far as the queue
        SELECT m.queue_top INTO worker_last_tick FROM pgq_node._watermarks(i_queue_name) m;
    END IF;
    IF n.combined_queue IS NOT NULL THEN
        SELECT c.node_type INTO combined_type FROM pgq_node.node_info c WHERE c.queue_name = n.combined_queue;
    END IF;
    SELECT array_agg(t.queue_name) INTO target_for FROM pgq_node.node_info t WHERE t.combined_queue = i_queue_name;
    ret_code := 100;
    ret_note := 'Ok';
END
$$;
