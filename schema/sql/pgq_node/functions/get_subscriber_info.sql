-- pgq_node.get_subscriber_info(queue): the nodes that read this node's
-- queue, with the watermark each has published.
CREATE OR REPLACE FUNCTION pgq_node.get_subscriber_info(i_queue_name text,
        OUT node_name text, OUT worker_name text, OUT node_watermark bigint)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT si.subscriber_node, si.worker_name, sub.sub_last_tick
      FROM pgq_node.subscriber_info si
      LEFT JOIN pgq.queue q ON q.queue_name = si.queue_name
      LEFT JOIN pgq.consumer c ON c.co_name = si.watermark_name
      LEFT JOIN pgq.subscription sub ON sub.sub_queue = q.queue_id AND sub.sub_consumer = c.co_id
     WHERE si.queue_name = i_queue_name
     ORDER BY 1;
END
$$;
