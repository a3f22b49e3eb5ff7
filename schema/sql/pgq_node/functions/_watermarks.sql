-- pgq_node._watermarks(queue): the node's global watermark (the position of
-- its .global_watermark consumer), its local watermark (the lowest position
-- of every other consumer of its queue, the queue's last tick when there is
-- none; on a node without a queue, the worker's position) and the queue's
-- last tick. Shared by get_node_info and get_worker_state.
CREATE OR REPLACE FUNCTION pgq_node._watermarks(i_queue_name text,
        OUT global_watermark bigint, OUT local_watermark bigint, OUT queue_top bigint)
RETURNS record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_qid integer;
BEGIN
    SELECT q.queue_id INTO v_qid FROM pgq.queue q WHERE q.queue_name = i_queue_name;
    IF v_qid IS NULL THEN
        SELECT s.last_tick_id INTO local_watermark
          FROM pgq_node.node_info n JOIN pgq_node.local_state s
            ON s.queue_name = n.queue_name AND s.consumer_name = n.worker_name
         WHERE n.queue_name = i_queue_name;
        RETURN;
    END IF;
    SELECT max(t.tick_id) INTO queue_top FROM pgq.tick t WHERE t.tick_queue = v_qid;
    SELECT s.sub_last_tick INTO global_watermark
      FROM pgq.subscription s JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE s.sub_queue = v_qid AND c.co_name = '.global_watermark';
    SELECT min(s.sub_last_tick) INTO local_watermark
      FROM pgq.subscription s JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE s.sub_queue = v_qid AND c.co_name <> '.global_watermark';
    local_watermark := coalesce(local_watermark, queue_top);
END
$$;
