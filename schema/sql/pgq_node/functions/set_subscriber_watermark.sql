-- pgq_node.set_subscriber_watermark(queue, node, tick): a subscriber
-- publishes how far its own consumers are (its local watermark); this
-- node keeps events until then. Never moves back.
CREATE OR REPLACE FUNCTION pgq_node.set_subscriber_watermark(i_queue_name text, i_node_name text,
        i_watermark bigint, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_name text;
    v_pos  bigint;
BEGIN
    SELECT si.watermark_name INTO v_name FROM pgq_node.subscriber_info si
     WHERE si.queue_name = i_queue_name AND si.subscriber_node = i_node_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'node ' || i_node_name || ' not subscribed to queue ';
        RETURN;
    END IF;
    SELECT s.sub_last_tick INTO v_pos
      FROM pgq.subscription s JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE q.queue_name = i_queue_name AND c.co_name = v_name;
    IF v_pos = i_watermark THEN
        ret_code := 100;
        ret_note := 'watermark already set';
        RETURN;
    ELSIF v_pos > i_watermark THEN
        ret_code := 405;
        ret_note := 'watermark must not be moved backwards';
        RETURN;
    END IF;
    PERFORM pgq.register_consumer_at(i_queue_name, v_name, i_watermark);
    ret_code := 200;
    ret_note := v_name || ' set to ' || i_watermark;
END
$$;
