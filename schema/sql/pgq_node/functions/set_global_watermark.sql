-- pgq_node.set_global_watermark(queue, tick): move the position up to which
-- every node of the cascade has the queue's events (.global_watermark; the
-- queue keeps events from there on). The root computes it (NULL: its local
-- watermark) and sends it downstream as a pgq.global-watermark event;
-- other nodes take it from that event, skipping ticks they do not have.
CREATE OR REPLACE FUNCTION pgq_node.set_global_watermark(i_queue_name text, i_watermark bigint,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n    record;
    v_wm bigint := i_watermark;
BEGIN
    SELECT i.node_type INTO n FROM pgq_node.node_info i WHERE i.queue_name = i_queue_name FOR UPDATE;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Queue' || i_queue_name || ' not found';
        RETURN;
    END IF;
    IF n.node_type = 'leaf' THEN
        ret_code := 100;
        ret_note := 'Ignoring global watermark in leaf';
        RETURN;
    END IF;
    IF v_wm IS NULL THEN
        IF n.node_type <> 'root' THEN
            ret_code := 500;
            ret_note := 'bad usage: wm=null on ' || n.node_type || ' node';
            RETURN;
        END IF;
        SELECT m.local_watermark INTO v_wm FROM pgq_node._watermarks(i_queue_name) m;
    END IF;
    IF n.node_type <> 'root' AND NOT EXISTS (
            SELECT 1 FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue
             WHERE q.queue_name = i_queue_name AND t.tick_id = v_wm) THEN
        ret_code := 200;
        ret_note := 'Skipping global watermark update to ' || v_wm;
        RETURN;
    END IF;
    PERFORM pgq.register_consumer_at(i_queue_name, '.global_watermark', v_wm);
    IF n.node_type = 'root' THEN
        -- the root's worker has completed what every node has
        UPDATE pgq_node.local_state s SET last_tick_id = v_wm
          FROM pgq_node.node_info i
         WHERE i.queue_name = i_queue_name AND s.queue_name = i.queue_name AND s.consumer_name = i.worker_name;
        PERFORM pgq.insert_event(i_queue_name, 'pgq.global-watermark', v_wm::text, i_queue_name, NULL, NULL, NULL);
    END IF;
    ret_code := 200;
    ret_note := 'Global watermark set to ' || v_wm;
END
$$;
