-- pgq_node.unregister_subscriber(queue, node): a node stops reading this
-- node's queue: its worker and watermark consumers are unregistered.
CREATE OR REPLACE FUNCTION pgq_node.unregister_subscriber(i_queue_name text, i_remote_node_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
BEGIN
    SELECT si.worker_name, si.watermark_name INTO s FROM pgq_node.subscriber_info si
     WHERE si.queue_name = i_queue_name AND si.subscriber_node = i_remote_node_name FOR UPDATE;
    IF NOT FOUND THEN
        ret_code := 304;
        ret_note := 'Subscriber not found';
        RETURN;
    END IF;
    DELETE FROM pgq_node.subscriber_info WHERE queue_name = i_queue_name AND subscriber_node = i_remote_node_name;
    PERFORM pgq.unregister_consumer(i_queue_name, s.worker_name);
    PERFORM pgq.unregister_consumer(i_queue_name, s.watermark_name);
    ret_code := 200;
    ret_note := 'Subscriber unregistered: ' || i_remote_node_name;
END
$$;
