-- pgq_node.register_subscriber(queue, node, worker, tick): a node starts
-- reading this node's queue: its worker and its watermark consumer
-- (.<node>.watermark) are registered on the queue at the tick (by default at
-- this node's global watermark). Returns the global watermark, where the
-- subscriber's own queue starts.
CREATE OR REPLACE FUNCTION pgq_node.register_subscriber(i_queue_name text, i_remote_node_name text,
        i_remote_worker_name text, i_custom_tick_id bigint,
        OUT ret_code integer, OUT ret_note text, OUT global_watermark bigint)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_wm_name text := '.' || i_remote_node_name || '.watermark';
    v_pos     bigint;
    v_type    text;
BEGIN
    SELECT n.node_type INTO v_type FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Unknown queue: ' || i_queue_name;
        RETURN;
    ELSIF v_type = 'leaf' THEN
        ret_code := 401;
        ret_note := 'Cannot subscribe to leaf node';
        RETURN;
    END IF;
    SELECT m.global_watermark INTO global_watermark FROM pgq_node._watermarks(i_queue_name) m;
    v_pos := coalesce(i_custom_tick_id, global_watermark);
    IF v_pos IS NULL THEN
        PERFORM pgq.register_consumer(i_queue_name, i_remote_worker_name);
        PERFORM pgq.register_consumer(i_queue_name, v_wm_name);
    ELSE
        PERFORM pgq.register_consumer_at(i_queue_name, i_remote_worker_name, v_pos);
        PERFORM pgq.register_consumer_at(i_queue_name, v_wm_name, v_pos);
    END IF;
    INSERT INTO pgq_node.subscriber_info (queue_name, subscriber_node, worker_name, watermark_name)
    VALUES (i_queue_name, i_remote_node_name, i_remote_worker_name, v_wm_name);
    ret_code := 200;
    ret_note := 'Subscriber registered: ' || i_remote_node_name;
END
$$;
